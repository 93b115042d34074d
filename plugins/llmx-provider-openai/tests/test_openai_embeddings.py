"""Embeddings of the ``openai`` and ``azure`` providers against the fakes, over real HTTP.

Every request body is validated against the vendor's OpenAPI document
(``CreateEmbeddingRequest``; Azure's inline embeddings body, api-version 2024-10-21), and
the fakes' answers against ``CreateEmbeddingResponse`` (with the documented erratum for
base64 vectors, ``llmx.testing.openapi.ERRATA``).
"""

from __future__ import annotations

import base64
import json
import struct
from array import array
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx.testing import ErrorReply, RawReply, Reply, fake_embedding
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer

KEY = "test-key"

EMBED = "fake/text-embedding-3-small"


def check_requests(server: FakeOpenAIServer) -> None:
    spec = vendor_validator("openai", "official")
    for recorded in server.model_requests:
        spec.check("/embeddings", "post", recorded.json)


async def test_fake_answers_match_openais_document(http: aiohttp.ClientSession) -> None:
    spec = vendor_validator("openai", "official")
    headers = {"Authorization": f"Bearer {KEY}"}
    async with FakeOpenAIServer(api_key=KEY) as server:
        url = f"{server.base_url}/embeddings"
        for encoding in ("float", "base64"):
            body = {
                "model": "text-embedding-3-small",
                "input": ["a b", "c"],
                "encoding_format": encoding,
            }
            async with http.post(url, json=body, headers=headers) as resp:
                answer = await resp.json()
            spec.check_schema("CreateEmbeddingResponse", answer)
            assert [d["index"] for d in answer["data"]] == [0, 1]
            assert answer["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
        first = answer["data"][0]["embedding"]
        assert len(base64.b64decode(first)) == 4 * 1536
        too_many = {"model": "text-embedding-3-small", "input": ["x"] * 2049}
        async with http.post(url, json=too_many, headers=headers) as resp:
            assert resp.status == 400
            spec.check_schema("ErrorResponse", await resp.json())
        ada = {"model": "text-embedding-ada-002", "input": "x", "dimensions": 8}
        async with http.post(url, json=ada, headers=headers) as resp:
            assert resp.status == 400
            assert (
                "does not support specifying dimensions" in (await resp.json())["error"]["message"]
            )


@pytest.mark.parametrize("encoding", ["base64", "float"])
async def test_vectors_usage_and_cost(
    server: FakeOpenAIServer, make_client: Callable[..., llmx.Client], encoding: str
) -> None:
    client = make_client(embedding_encoding=encoding)
    texts = ["the cat sat", "a dog ran", "the cat ran"]
    response = await client.embed(model=EMBED, input=texts)

    assert [list(v) for v in response.vectors] == [fake_embedding(t, 1536) for t in texts]
    assert all(isinstance(v, array) and v.typecode == "f" for v in response.vectors)
    assert (response.provider, response.model) == ("fake", "text-embedding-3-small")
    assert response.usage == llmx.Usage(sum((len(t) + 3) // 4 for t in texts), 0)
    assert response.cost == pytest.approx(response.usage.input_tokens * 0.02 / 1e6)
    (recorded,) = server.model_requests
    assert recorded.json == {
        "model": "text-embedding-3-small",
        "input": texts,
        "encoding_format": encoding,
    }
    check_requests(server)


async def test_the_default_encoding_is_float_off_api_openai_com(
    server: FakeOpenAIServer, client: llmx.Client
) -> None:
    await client.embed(model=EMBED, input="x")
    assert server.model_requests[0].json["encoding_format"] == "float"


async def test_dimensions_task_and_extra_fields(
    server: FakeOpenAIServer, client: llmx.Client
) -> None:
    response = await client.embed(
        model=EMBED, input=["x", "y"], dimensions=64, task="query", extra={"user": "u-1"}
    )
    assert response.dimensions == 64
    body = server.model_requests[0].json
    assert (body["dimensions"], body["user"]) == (64, "u-1")
    assert "task" not in json.dumps(body), "OpenAI has no task type: the hint is not sent"
    check_requests(server)


async def test_vectors_are_put_in_input_order_by_index(
    server: FakeOpenAIServer, client: llmx.Client
) -> None:
    data = [
        {"object": "embedding", "index": 1, "embedding": [2.0, 2.5]},
        {"object": "embedding", "index": 0, "embedding": [1.0, 1.5]},
    ]
    body = {
        "object": "list",
        "data": data,
        "model": "m",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    server.enqueue(RawReply(body=json.dumps(body)))
    response = await client.embed(model=EMBED, input=["first", "second"])
    assert [list(v) for v in response.vectors] == [[1.0, 1.5], [2.0, 2.5]]


async def test_a_server_without_usage_gets_an_estimate(
    server: FakeOpenAIServer, client: llmx.Client
) -> None:
    server.enqueue(Reply(omit_usage=True))
    response = await client.embed(model=EMBED, input="12345678")
    assert response.usage == llmx.Usage(2, 0, estimated=True)
    assert client.stats().for_instance("fake")[0].estimated_usage == 1


@pytest.mark.parametrize(
    "body",
    [
        {"object": "list", "data": [], "model": "m"},
        {"object": "list", "data": [{"index": 0, "embedding": "not base64!"}], "model": "m"},
        {"object": "list", "data": [{"index": 0, "embedding": "AAAA"}], "model": "m"},
        {"object": "list", "data": [{"index": 3, "embedding": [1.0]}], "model": "m"},
        {"error": None},
    ],
)
async def test_malformed_answers_are_typed(
    server: FakeOpenAIServer, client: llmx.Client, body: dict[str, Any]
) -> None:
    server.enqueue(RawReply(body=json.dumps(body)))
    with pytest.raises(llmx.MalformedResponseError, match="unexpected embeddings answer"):
        await client.embed(model=EMBED, input="x")


async def test_errors_are_typed_like_chat(server: FakeOpenAIServer, client: llmx.Client) -> None:
    server.enqueue(ErrorReply(429, headers={"retry-after": "3"}))
    with pytest.raises(llmx.RateLimitError) as info:
        await client.embed(model=EMBED, input="x")
    assert info.value.retry_after == 3
    with pytest.raises(llmx.BadRequestError, match="does not support specifying dimensions"):
        await client.embed(model="fake/text-embedding-ada-002", input="x", dimensions=8, timeout=30)


async def test_more_tokens_than_one_request_takes_are_split(
    server: FakeOpenAIServer, client: llmx.Client
) -> None:
    """40 inputs of ~7,500 tokens: 300,000 tokens in one request would be refused."""
    texts = [f"{i} " + "y" * 30_000 for i in range(40)]
    response = await client.embed(model=EMBED, input=texts, dimensions=4)
    assert len(response.vectors) == 40
    assert len(server.model_requests) >= 2
    assert response.vectors[-1] == array("f", fake_embedding(texts[-1], 4))
    check_requests(server)


def test_base64_decodes_faster_than_json_numbers() -> None:
    """The reason for base64 on the wire: the same 256 vectors of 1,536 float32 numbers
    are read several times faster from base64 than from JSON numbers (real vectors:
    float32 values printed as JSON doubles, ~20 characters each), and are less than half
    the bytes."""
    import random
    import time

    from llmx.plugin import EmbeddingRequest
    from llmx_openai._embed import parse_embeddings

    rng = random.Random(0)
    as32 = struct.Struct("<f")
    vectors = [
        [as32.unpack(as32.pack(rng.gauss(0, 0.03)))[0] for _ in range(1536)] for _ in range(256)
    ]
    request = EmbeddingRequest("m", [f"text {i}" for i in range(256)])

    def answer(encode: Callable[[list[float]], Any]) -> bytes:
        data = [
            {"object": "embedding", "index": i, "embedding": encode(v)}
            for i, v in enumerate(vectors)
        ]
        return json.dumps({"object": "list", "data": data, "model": "m"}).encode()

    as_floats = answer(lambda v: v)
    as_base64 = answer(lambda v: base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode())

    def best(data: bytes) -> float:
        times = []
        for _ in range(5):
            t0 = time.process_time()
            parsed = parse_embeddings(data, request, "p")
            times.append(time.process_time() - t0)
        assert parsed.vectors[7] == array("f", vectors[7])
        return min(times)

    assert best(as_base64) * 3 < best(as_floats)
    assert len(as_base64) * 2 < len(as_floats)


# -- Azure -----------------------------------------------------------------------------------


async def test_azure_embeddings_use_the_deployment_path() -> None:
    spec = vendor_validator("openai", "azure")
    async with FakeAzureOpenAIServer(api_key=KEY, deployments=["emb-prod"]) as server:
        config = {
            "providers": {
                "az": {
                    "type": "azure",
                    "base_url": server.url,
                    "api_key": KEY,
                    "models": {"text-embedding-3-small": "emb-prod"},
                    "retry": {"attempts": 1},
                }
            }
        }
        async with llmx.Client(config) as client:
            response = await client.embed(model="az/text-embedding-3-small", input=["a", "b"])
            with pytest.raises(llmx.ModelNotFoundError, match="deployment"):
                await client.embed(model="az/other", input="a")
    assert response.provider == "az"
    assert [list(v) for v in response.vectors] == [fake_embedding(t, 16) for t in "ab"]
    assert response.cost is not None  # the deployment's facts come from the name it maps
    recorded = server.model_requests[0]
    assert recorded.path == "/openai/deployments/emb-prod/embeddings"
    assert recorded.query == {"api-version": "2024-10-21"}
    assert recorded.json == {"input": ["a", "b"], "encoding_format": "base64"}
    assert recorded.headers["api-key"] == KEY
    spec.check("/deployments/{deployment-id}/embeddings", "post", recorded.json)


_FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(
    vectors=st.lists(st.lists(_FLOAT32, max_size=8), min_size=1, max_size=6),
    encoding=st.sampled_from(["float", "base64"]),
    order=st.randoms(use_true_random=False),
)
def test_any_answer_parses_to_its_vectors_in_index_order(
    vectors: list[list[float]], encoding: str, order: Any
) -> None:
    from llmx.plugin import EmbeddingRequest
    from llmx_openai._embed import parse_embeddings

    def encode(v: list[float]) -> Any:
        if encoding == "float":
            return v
        return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()

    data = [
        {"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)
    ]
    order.shuffle(data)
    body = {
        "object": "list",
        "data": data,
        "model": "m",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    request = EmbeddingRequest("m", [str(i) for i in range(len(vectors))])
    response = parse_embeddings(json.dumps(body).encode(), request, "p")
    assert [list(v) for v in response.vectors] == vectors
    assert response.usage == llmx.Usage(3, 0)

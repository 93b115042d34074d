"""Embeddings of the ``gemini`` provider (``batchEmbedContents``) against the fake Gemini
server, over real HTTP; every request body is validated against the discovery document
(``BatchEmbedContentsRequest``) and the fake's answers against
``BatchEmbedContentsResponse``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import ErrorReply, RawReply, Reply, fake_embedding
from llmx.testing.openapi import vendor_validator

EMBED = "fake/gemini-embedding-001"
METHOD = "generativelanguage.models.batchEmbedContents"


def check_requests(server: FakeGeminiServer) -> None:
    spec = vendor_validator("gemini", "official")
    for recorded in server.model_requests:
        assert recorded.path.endswith(":batchEmbedContents")
        spec.check(METHOD, "post", recorded.json)


async def test_fake_answers_match_the_discovery_document(http: aiohttp.ClientSession) -> None:
    spec = vendor_validator("gemini", "official")
    headers = {"x-goog-api-key": "test-key"}
    async with FakeGeminiServer(api_key="test-key") as server:
        url = f"{server.base_url}/models/gemini-embedding-001:batchEmbedContents"
        one = {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a b"}]}}
        async with http.post(url, json={"requests": [one, one]}, headers=headers) as resp:
            answer = await resp.json()
        spec.check_schema("BatchEmbedContentsResponse", answer)
        assert [len(e["values"]) for e in answer["embeddings"]] == [3072, 3072]
        assert answer["usageMetadata"]["promptTokenCount"] == 2
        for body, message in [
            ({"requests": [one] * 101}, "at most 100 requests"),
            ({"requests": [{**one, "model": "models/other"}]}, "should be the same"),
            ({"requests": [{**one, "task": "x"}]}, 'Unknown name "task"'),
        ]:
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 400
                error = await resp.json()
            assert message in error["error"]["message"]
            assert error["error"]["status"] == "INVALID_ARGUMENT"


async def test_vectors_usage_cost_and_the_request(
    server: FakeGeminiServer, client: llmx.Client
) -> None:
    texts = ["the cat sat", "a dog ran"]
    response = await client.embed(model=EMBED, input=texts)

    assert [list(v) for v in response.vectors] == [fake_embedding(t, 3072) for t in texts]
    assert (response.provider, response.model) == ("fake", "gemini-embedding-001")
    assert response.usage == llmx.Usage(6, 0)
    assert response.cost == pytest.approx(6 * 0.15 / 1e6)
    (recorded,) = server.model_requests
    assert recorded.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert recorded.json == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}
            for t in texts
        ]
    }
    check_requests(server)


@pytest.mark.parametrize(
    ("task", "task_type"),
    [
        ("query", "RETRIEVAL_QUERY"),
        ("document", "RETRIEVAL_DOCUMENT"),
        ("similarity", "SEMANTIC_SIMILARITY"),
        ("classification", "CLASSIFICATION"),
        ("clustering", "CLUSTERING"),
    ],
)
async def test_task_and_dimensions_map_to_task_type_and_output_dimensionality(
    server: FakeGeminiServer, client: llmx.Client, task: Any, task_type: str
) -> None:
    response = await client.embed(model=EMBED, input=["x"], task=task, dimensions=768)
    assert response.dimensions == 768
    (request,) = server.model_requests[0].json["requests"]
    assert (request["taskType"], request["outputDimensionality"]) == (task_type, 768)
    check_requests(server)


async def test_more_than_100_inputs_are_split_and_reassembled(
    server: FakeGeminiServer, client: llmx.Client
) -> None:
    texts = [f"input {i}" for i in range(230)]
    response = await client.embed(model=EMBED, input=texts, dimensions=4)
    assert [list(v) for v in response.vectors] == [fake_embedding(t, 4) for t in texts]
    sizes = sorted(len(r.json["requests"]) for r in server.model_requests)
    assert sizes == [30, 100, 100]
    assert response.usage.input_tokens == sum((len(t) + 3) // 4 for t in texts)
    check_requests(server)


async def test_a_rate_limit_is_typed_with_its_retry_delay(
    server: FakeGeminiServer, client: llmx.Client
) -> None:
    server.enqueue(server.error_for("rate_limit", retry_after=5))
    with pytest.raises(llmx.RateLimitError) as info:
        await client.embed(model=EMBED, input="x")
    assert info.value.retry_after == 5


async def test_missing_usage_is_estimated_and_wrong_counts_are_malformed(
    server: FakeGeminiServer, client: llmx.Client
) -> None:
    server.enqueue(Reply(omit_usage=True))
    response = await client.embed(model=EMBED, input="12345678")
    assert response.usage == llmx.Usage(2, 0, estimated=True)
    server.enqueue(RawReply(body=json.dumps({"embeddings": [{"values": [1.0]}]})))
    with pytest.raises(llmx.MalformedResponseError, match="1 embeddings for 2 inputs"):
        await client.embed(model=EMBED, input=["a", "b"])
    server.enqueue(ErrorReply(500))
    with pytest.raises(llmx.ServerError):
        await client.embed(model=EMBED, input=["a"])


async def test_a_chat_model_is_refused_before_sending(
    server: FakeGeminiServer, client: llmx.Client
) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError, match="does not make embeddings"):
        await client.embed(model="fake/gemini-2.5-flash", input="x")
    assert not server.model_requests


@given(
    vectors=st.lists(
        st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=8),
        min_size=1,
        max_size=6,
    ),
    usage=st.none() | st.integers(0, 10_000),
)
def test_any_answer_parses_to_its_vectors(vectors: list[list[float]], usage: int | None) -> None:
    from llmx_gemini._embed import parse_embeddings

    from llmx.plugin import EmbeddingRequest

    body: dict[str, Any] = {"embeddings": [{"values": v} for v in vectors]}
    if usage is not None:
        body["usageMetadata"] = {"promptTokenCount": usage}
    texts = ["abcd" * (i + 1) for i in range(len(vectors))]
    response = parse_embeddings(json.dumps(body).encode(), EmbeddingRequest("m", texts), "p")
    assert [list(v) for v in response.vectors] == vectors
    if usage is None:
        assert response.usage.estimated
        assert response.usage.input_tokens == sum(len(t) for t in texts) // 4
    else:
        assert response.usage == llmx.Usage(usage, 0)

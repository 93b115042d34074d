"""Token logprobs on the ``openai-responses`` type: ``include:
["message.output_text.logprobs"]`` and ``top_logprobs`` in, the ``output_text`` parts'
``logprobs`` (streamed: each ``response.output_text.delta``'s) out, as llmx's
``TokenLogprob``s. Bodies are validated against ``CreateResponse``; the fake's answers
against ``Response`` and ``ResponseStreamEvent``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import llmx
from llmx.testing import Reply
from llmx.testing.openapi import vendor_validator
from llmx.types import LogprobsDelta, TokenLogprob
from llmx_openai.testing import FakeOpenAIServer
from llmx_openai.testing._responses import response_events, response_object

MODEL = "fake/gpt-4o-mini"


def sent(server: FakeOpenAIServer) -> dict[str, Any]:
    recorded = server.model_requests[-1]
    assert recorded.path == "/v1/responses"
    vendor_validator("openai", "official").check("/responses", "post", recorded.json)
    body: dict[str, Any] = recorded.json
    return body


async def ask(client: llmx.Client, streamed: bool, **options: Any) -> llmx.Response:
    if streamed:
        return await client.stream(model=MODEL, prompt="x", **options).collect()
    return await client.complete(model=MODEL, prompt="x", **options)


@pytest.fixture
def rclient(make_client: Callable[..., llmx.Client]) -> llmx.Client:
    return make_client(type="openai-responses")


@pytest.mark.parametrize("streamed", [False, True])
async def test_logprobs_with_alternatives(
    rclient: llmx.Client, server: FakeOpenAIServer, streamed: bool
) -> None:
    server.enqueue(Reply("Hi you", chunk_size=2))
    options: dict[str, Any] = {"logprobs": True, "top_logprobs": 2}
    if streamed:
        chunks = []
        async with rclient.stream(model=MODEL, prompt="x", **options) as stream:
            chunks = [c async for c in stream]
        response = stream.response
        assert response is not None
        pieces = [c for c in chunks if type(c) is LogprobsDelta]
        assert ["".join(t.token for t in p.logprobs) for p in pieces] == ["Hi", " y", "ou"]
    else:
        response = await rclient.complete(model=MODEL, prompt="x", **options)
    body = sent(server)
    assert body["include"] == ["message.output_text.logprobs"]
    assert body["top_logprobs"] == 2
    tokens = response.logprobs
    assert tokens is not None
    assert "".join(t.token for t in tokens) == response.text == "Hi you"
    first = tokens[0]
    assert first.logprob == 0.0
    assert [a.token for a in first.top] == ["x", "y"]
    assert all(a.top == () for a in first.top)
    if not streamed:  # the delta events carry no bytes (ResponseLogProb)
        assert first.bytes == tuple(b"H")
    assert response.choices[0].logprobs == tokens


async def test_logprobs_alone_and_beside_encrypted_reasoning(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(type="openai-responses", encrypted_reasoning="always")
    response = await client.complete(model=MODEL, prompt="abc", logprobs=True)
    body = sent(server)
    assert body["include"] == ["reasoning.encrypted_content", "message.output_text.logprobs"]
    assert "top_logprobs" not in body
    assert response.logprobs is not None
    assert [t.top for t in response.logprobs] == [(), (), ()]


async def test_without_logprobs_nothing_is_asked_or_kept(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    response = await rclient.complete(model=MODEL, prompt="abc")
    assert "include" not in sent(server)
    assert "top_logprobs" not in sent(server)
    assert response.logprobs is None
    assert response.choices == ()


@pytest.mark.parametrize("streamed", [False, True])
async def test_n_is_still_refused_before_sending(
    rclient: llmx.Client, server: FakeOpenAIServer, streamed: bool
) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError) as info:
        await ask(rclient, streamed, n=2, logprobs=True)
    assert info.value.feature == "n"
    assert server.model_requests == []


async def test_logprobs_are_part_of_the_cache_key(server: FakeOpenAIServer) -> None:
    """The same prompt with and without logprobs is two requests; each is cached, the
    logprobs with it (whole and replayed as a stream)."""
    config = {
        "providers": {
            "fake": {"type": "openai-responses", "base_url": server.base_url, "api_key": "test-key"}
        },
        "cache": {"backend": "memory"},
    }
    async with llmx.Client(config) as client:
        plain = await client.complete(model=MODEL, prompt="abc", temperature=0)
        first = await client.complete(model=MODEL, prompt="abc", temperature=0, logprobs=True)
        again = await client.complete(model=MODEL, prompt="abc", temperature=0, logprobs=True)
        replayed = await client.stream(
            model=MODEL, prompt="abc", temperature=0, logprobs=True
        ).collect()
    assert plain.logprobs is None
    assert first.logprobs
    assert again.cached
    assert again.logprobs == first.logprobs == replayed.logprobs
    assert all(type(t) is TokenLogprob for t in again.logprobs or ())
    assert len(server.model_requests) == 2


def test_the_fakes_logprobs_match_the_documented_shapes() -> None:
    validator = vendor_validator("openai", "official")
    body = {
        "model": "gpt-4o-mini",
        "input": "x",
        "include": ["message.output_text.logprobs"],
        "top_logprobs": 3,
    }
    validator.check("/responses", "post", body)
    reply = Reply("Hello", chunk_size=2)
    obj = response_object(reply, body, 1)
    validator.check_schema("Response", obj)
    [part] = obj["output"][0]["content"]
    assert len(part["logprobs"]) == 5
    assert len(part["logprobs"][0]["top_logprobs"]) == 3
    deltas = []
    for event in response_events(reply, body, 1):
        validator.check_schema("ResponseStreamEvent", event.data)
        if event.name == "response.output_text.delta":
            deltas.append(event.data["logprobs"])
    assert [len(d) for d in deltas] == [2, 2, 1]

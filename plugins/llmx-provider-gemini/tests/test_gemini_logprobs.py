"""Token logprobs on Gemini: ``logprobs=``/``top_logprobs=`` as
``generationConfig.responseLogprobs``/``logprobs``, each candidate's ``logprobsResult``
(``chosenCandidates`` with the ``topCandidates`` of each step) as llmx's
``TokenLogprob``s, whole, streamed (a ``LogprobsDelta`` per chunk) and per candidate
with ``n``. Request bodies are validated against Gemini's discovery document
(``GenerateContentRequest``), the fake's answers against ``GenerateContentResponse``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import Reply, sse_events
from llmx.testing.openapi import vendor_validator
from llmx.types import LogprobsDelta

MODEL = "fake/gemini-2.5-flash"


def config(server: FakeGeminiServer) -> dict[str, Any]:
    return {
        "providers": {
            "fake": {
                "type": "gemini",
                "base_url": server.base_url,
                "api_key": "test-key",
                "retry": {"attempts": 1},
            }
        },
    }


def generation(server: FakeGeminiServer) -> dict[str, Any]:
    """The last request's ``generationConfig``, the body validated first."""
    recorded = server.model_requests[-1]
    vendor_validator("gemini", "official").check_schema("GenerateContentRequest", recorded.json)
    config: dict[str, Any] = recorded.json.get("generationConfig", {})
    return config


@pytest.mark.parametrize("streamed", [False, True])
async def test_logprobs_with_alternatives(server: FakeGeminiServer, streamed: bool) -> None:
    server.enqueue(Reply("Hi you", chunk_size=2))
    async with llmx.Client(config(server)) as client:
        options: dict[str, Any] = {"logprobs": True, "top_logprobs": 2}
        if streamed:
            async with client.stream(model=MODEL, prompt="x", **options) as stream:
                chunks = [c async for c in stream]
            response = stream.response
            assert response is not None
            pieces = [c for c in chunks if type(c) is LogprobsDelta]
            assert ["".join(t.token for t in p.logprobs) for p in pieces] == ["Hi", " y", "ou"]
        else:
            response = await client.complete(model=MODEL, prompt="x", **options)
    assert generation(server) == {"responseLogprobs": True, "logprobs": 2}
    tokens = response.logprobs
    assert tokens is not None
    assert "".join(t.token for t in tokens) == response.text == "Hi you"
    assert [a.token for a in tokens[1].top] == ["x", "y"]
    assert tokens[1].logprob == pytest.approx(-0.1)
    assert tokens[1].bytes is None  # Gemini sends no bytes
    assert response.choices[0].logprobs == tokens


async def test_logprobs_alone_and_per_candidate(server: FakeGeminiServer) -> None:
    server.enqueue(Reply("ab", choices=("cde",)), Reply("ab"))
    async with llmx.Client(config(server)) as client:
        several = await client.complete(model=MODEL, prompt="x", n=2, logprobs=True)
        assert generation(server) == {"candidateCount": 2, "responseLogprobs": True}
        plain = await client.complete(model=MODEL, prompt="x")
        assert generation(server) == {}
    assert [c.text for c in several.choices] == ["ab", "cde"]
    assert [[t.token for t in c.logprobs or ()] for c in several.choices] == [
        ["a", "b"],
        ["c", "d", "e"],
    ]
    assert all(t.top == () for t in several.logprobs or ())
    assert (plain.logprobs, plain.choices) == (None, ())


async def test_the_fakes_logprobs_match_the_discovery_document(
    server: FakeGeminiServer, http: aiohttp.ClientSession
) -> None:
    spec = vendor_validator("gemini", "official")
    body = {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"responseLogprobs": True, "logprobs": 3},
    }
    spec.check_schema("GenerateContentRequest", body)
    server.enqueue(Reply("Hello"), Reply("Hello", chunk_size=2))
    base = f"{server.base_url}/models/gemini-2.5-flash"
    headers = {"x-goog-api-key": "test-key"}
    async with http.post(f"{base}:generateContent", json=body, headers=headers) as resp:
        answer = await resp.json()
    spec.check_schema("GenerateContentResponse", answer)
    [candidate] = answer["candidates"]
    result = candidate["logprobsResult"]
    assert [c["token"] for c in result["chosenCandidates"]] == list("Hello")
    assert all(len(step["candidates"]) == 3 for step in result["topCandidates"])
    assert candidate["avgLogprobs"] == pytest.approx(result["logProbabilitySum"] / 5)
    async with http.post(
        f"{base}:streamGenerateContent?alt=sse", json=body, headers=headers
    ) as resp:
        raw = await resp.read()
    chunks = [json.loads(data) for _, data in sse_events(raw)]
    for chunk in chunks:
        spec.check_schema("GenerateContentResponse", chunk)
    assert [len(c["candidates"][0]["logprobsResult"]["chosenCandidates"]) for c in chunks] == [
        2,
        2,
        1,
    ]

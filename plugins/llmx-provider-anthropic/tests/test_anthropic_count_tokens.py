"""``client.count_tokens`` on the anthropic provider: ``POST /v1/messages/count_tokens``
on the fake, every body validated against ``CountMessageTokensParams`` of Anthropic's
OpenAPI document."""

from __future__ import annotations

import pytest
from llmx_anthropic.testing import FakeAnthropicServer

import llmx
from llmx.testing import ErrorReply, RawReply
from llmx.testing.openapi import vendor_validator

TOOL = llmx.Tool(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def request(**params: object) -> llmx.Request:
    return llmx.Request(
        "fake/claude-sonnet-4-6",
        [llmx.Message.system("Answer briefly."), llmx.Message.user("What is the capital of Peru?")],
        **params,  # type: ignore[arg-type]
    )


async def test_the_count_equals_what_the_message_then_reports(
    server: FakeAnthropicServer, client: llmx.Client
) -> None:
    spec = vendor_validator("anthropic", "official")
    req = request(tools=[TOOL], tool_choice="auto", max_tokens=64, temperature=0.3)
    counted = await client.count_tokens(req)
    reply = await client.complete(req)
    assert not counted.estimated
    assert counted.input_tokens == reply.usage.input_tokens > 0
    count, message = server.requests
    assert count.path == "/v1/messages/count_tokens"
    spec.check("/v1/messages/count_tokens", "post", count.json)
    # the prompt's fields as the message sends them; nothing about sampling or length
    assert count.json == {
        k: message.json[k] for k in ("model", "messages", "system", "tools", "tool_choice")
    }
    assert server.model_requests == [message]  # a count takes no scripted reply


async def test_errors_are_typed(server: FakeAnthropicServer, client: llmx.Client) -> None:
    server.enqueue(ErrorReply(429, headers={"retry-after": "7"}))
    with pytest.raises(llmx.RateLimitError) as info:
        await client.count_tokens(request())
    assert info.value.retry_after == 7
    assert info.value.provider == "fake"
    server.enqueue(RawReply(body=b'{"tokens": 12}'))
    with pytest.raises(llmx.MalformedResponseError, match="unexpected token count"):
        await client.count_tokens(request())
    server.enqueue(RawReply(body=b"<html>oops</html>", content_type="text/html"))
    with pytest.raises(llmx.MalformedResponseError, match="not JSON"):
        await client.count_tokens(request())


async def test_the_fake_refuses_what_the_api_refuses() -> None:
    """max_tokens and stream are not count fields: the API (and the fake) say so."""
    import aiohttp

    headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    async with FakeAnthropicServer() as server, aiohttp.ClientSession() as http:
        url = f"{server.url}/v1/messages/count_tokens"
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 400
            error = await resp.json()
        assert error["error"]["message"] == "max_tokens: Extra inputs are not permitted"
        del body["max_tokens"]
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200
            answer = await resp.json()
    vendor_validator("anthropic", "official").check_schema("CountMessageTokensResponse", answer)
    assert answer == {"input_tokens": 1}

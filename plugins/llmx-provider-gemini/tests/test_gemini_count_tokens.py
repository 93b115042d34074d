"""``client.count_tokens`` on the gemini provider: ``models/{model}:countTokens`` with
the whole ``generateContentRequest`` on the fake, every body validated against the
discovery document's ``CountTokensRequest``."""

from __future__ import annotations

import pytest
from llmx_gemini.testing import FakeGeminiServer

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
        "fake/gemini-2.5-flash",
        [llmx.Message.system("Answer briefly."), llmx.Message.user("What is the capital of Peru?")],
        **params,  # type: ignore[arg-type]
    )


async def test_the_count_equals_what_the_answer_then_reports(
    server: FakeGeminiServer, client: llmx.Client
) -> None:
    validator = vendor_validator("gemini", "official")
    req = request(tools=[TOOL], max_tokens=64, temperature=0.3)
    counted = await client.count_tokens(req)
    reply = await client.complete(req)
    assert not counted.estimated
    assert counted.input_tokens == reply.usage.input_tokens > 0
    count, generate = server.requests
    assert count.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    validator.check("generativelanguage.models.countTokens", "post", count.json)
    whole = count.json["generateContentRequest"]
    assert whole == {**generate.json, "model": "models/gemini-2.5-flash"}
    assert server.model_requests == [generate]


async def test_errors_are_typed(server: FakeGeminiServer, client: llmx.Client) -> None:
    server.enqueue(ErrorReply(429))
    with pytest.raises(llmx.RateLimitError) as info:
        await client.count_tokens(request())
    assert info.value.provider == "fake"
    server.enqueue(RawReply(body=b'{"totalTokens": "many"}'))
    with pytest.raises(llmx.MalformedResponseError, match="unexpected token count"):
        await client.count_tokens(request())


async def test_zero_tokens_is_left_out_of_the_answer(
    server: FakeGeminiServer, client: llmx.Client
) -> None:
    """proto3 JSON omits a zero: ``{}`` is a count of 0, not a malformed answer."""
    server.enqueue(RawReply(body=b"{}"))
    assert await client.count_tokens(request()) == llmx.Usage(0)

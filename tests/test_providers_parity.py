"""Switching providers without changing application code: the same scripted answer,
served by each vendor's fake in its own wire format, gives the same ``llmx.Response``
through every first-party provider type — streamed or not (text, tool calls, usage with
cache and reasoning details as each vendor reports them, finish reason, id)."""

from __future__ import annotations

from typing import Any

import pytest
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import FakeServer, Reply
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer

CASES: list[tuple[str, str, type[FakeServer], dict[str, int]]] = [
    ("openai", "gpt-4o-mini", FakeOpenAIServer, {"cache_read_tokens": 20, "reasoning_tokens": 4}),
    ("azure", "gpt-4o", FakeAzureOpenAIServer, {"cache_read_tokens": 20, "reasoning_tokens": 4}),
    (
        "openai-responses",
        "gpt-4o-mini",
        FakeOpenAIServer,
        {"cache_read_tokens": 20, "reasoning_tokens": 4},
    ),
    (
        "anthropic",
        "claude-sonnet-4-6",
        FakeAnthropicServer,
        {"cache_read_tokens": 20, "cache_write_tokens": 6, "reasoning_tokens": 4},
    ),
    (
        "gemini",
        "gemini-2.5-flash",
        FakeGeminiServer,
        {"cache_read_tokens": 20, "reasoning_tokens": 4},
    ),
]

WEATHER = llmx.Tool(
    "get_weather",
    "Weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}},
)


def essentials(response: llmx.Response) -> tuple[Any, ...]:
    return (
        response.text,
        response.tool_calls,
        response.usage,
        response.finish_reason,
        response.id,
        response.model,
        response.cost,
    )


@pytest.mark.parametrize(
    ("kind", "model", "server_class", "details"), CASES, ids=[c[0] for c in CASES]
)
async def test_streamed_and_whole_answers_are_the_same_response(
    kind: str, model: str, server_class: type[FakeServer], details: dict[str, int]
) -> None:
    reply = Reply(
        "Let me check the weather in Oslo for you.",
        tool_calls=[("call_7", "get_weather", '{"city": "Oslo"}')],
        usage=(100, 40),
        cached_tokens=details.get("cache_read_tokens", 0),
        cache_write_tokens=details.get("cache_write_tokens", 0),
        reasoning_tokens=details.get("reasoning_tokens", 0),
        id="answer-7",
        chunk_size=5,
    )
    async with server_class(api_key="k") as server:  # type: ignore[call-arg]
        server.enqueue(reply, reply)
        provider = {
            "type": kind,
            "base_url": server.base_url,
            "api_key": "k",
            "retry": {"attempts": 1},
        }
        async with llmx.Client({"providers": {kind: provider}}) as client:
            ref = f"{kind}/{model}"
            whole = await client.complete(model=ref, prompt="Weather in Oslo?", tools=[WEATHER])
            async with client.stream(
                model=ref, prompt="Weather in Oslo?", tools=[WEATHER]
            ) as stream:
                deltas = [c async for c in stream]
            streamed = stream.response
    assert streamed is not None
    assert essentials(streamed) == essentials(whole)
    assert "".join(c.text for c in deltas if isinstance(c, llmx.TextDelta)) == whole.text
    assert whole.tool_calls[0].args() == {"city": "Oslo"}
    assert whole.finish_reason == "tool_calls"
    assert whole.usage == llmx.Usage(100, 40, **details)
    assert whole.cost is not None
    assert whole.provider == streamed.provider == kind

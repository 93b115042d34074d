"""Reasoning on Chat Completions: ``reasoning=`` as ``reasoning_effort`` (OpenAI and
Azure), reasoning tokens, the reasoning text of compatible servers (``reasoning_content``),
and no reasoning ever sent back (the API has no field for it)."""

from __future__ import annotations

from typing import Any

import pytest

import llmx
from llmx.testing import Reply
from llmx.testing.openapi import vendor_validator
from llmx_openai._wire import build_body, effort_for, parse_completion
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer, OpenAIQuirks

WEATHER = llmx.Tool("get_weather", "w", {"type": "object", "properties": {"city": {}}})


def _body(request: llmx.Request, efforts: tuple[str, ...] | None) -> Any:
    body = build_body(
        request,
        provider="o",
        max_tokens_field="max_completion_tokens",
        stream=False,
        stream_usage=True,
        efforts=efforts,
    )
    vendor_validator("openai", "official").check("/chat/completions", "post", body)
    return body


@pytest.mark.parametrize(
    ("value", "efforts", "sent"),
    [
        ("high", None, "high"),  # an unknown model (a compatible server): as asked
        ("none", None, "none"),
        (0, None, "none"),
        (1, None, "minimal"),
        (512, None, "minimal"),
        (513, None, "low"),
        (8192, None, "medium"),
        (100_000, None, "high"),
        ("none", ("low", "medium", "high"), "low"),  # o-series: its lowest
        ("minimal", ("low", "medium", "high"), "low"),
        ("minimal", ("none", "low", "medium", "high"), "low"),  # GPT-5.1+: no minimal
        ("none", ("minimal", "low", "medium", "high"), "minimal"),  # GPT-5: no none
        ("medium", ("minimal", "low", "medium", "high"), "medium"),
    ],
)
def test_reasoning_becomes_reasoning_effort(
    value: str | int, efforts: tuple[str, ...] | None, sent: str
) -> None:
    assert effort_for(value, efforts) == sent
    assert _body(llmx.Request("m", "hi", reasoning=value), efforts)["reasoning_effort"] == sent


def test_none_on_a_model_without_reasoning_sends_nothing() -> None:
    assert "reasoning_effort" not in _body(llmx.Request("gpt-4o", "hi", reasoning="none"), ())
    assert "reasoning_effort" not in _body(llmx.Request("o3", "hi"), ("low",))


def test_reasoning_parts_are_never_sent() -> None:
    convo = [
        llmx.Message.user("q"),
        llmx.Message.assistant(
            "a", reasoning=[llmx.Reasoning("THOUGHT", signature="SIG", protocol="openai")]
        ),
        llmx.Message.user("again"),
    ]
    body = _body(llmx.Request("o3", convo, reasoning="low"), ("low", "medium", "high"))
    assert body["messages"][1] == {"role": "assistant", "content": "a"}


def test_compatible_servers_reasoning_content_is_parsed() -> None:
    data = (
        b'{"id":"c","object":"chat.completion","model":"deepseek-reasoner","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"42","reasoning_content":"6 x 7"},'
        b'"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":9,'
        b'"completion_tokens_details":{"reasoning_tokens":6}}}'
    )
    response = parse_completion(data, llmx.Request("deepseek-reasoner", "x"), "o")
    assert response.reasoning == (llmx.Reasoning("6 x 7", protocol="openai"),)
    assert response.usage.output_tokens == 9  # reasoning included, as OpenAI counts it
    assert response.usage.reasoning_tokens == 6


def _config(server: Any, kind: str = "openai", **extra: Any) -> dict[str, Any]:
    table = {"type": kind, "base_url": server.base_url, "api_key": "test-key"}
    table.update({"retry": {"attempts": 1}, **extra})
    return {"providers": {"o": table}}


async def test_a_model_without_reasoning_is_refused_before_sending() -> None:
    async with FakeOpenAIServer() as server, llmx.Client(_config(server)) as client:
        with pytest.raises(llmx.UnsupportedFeatureError) as info:
            await client.complete(model="o/gpt-4o", prompt="x", reasoning="high")
        assert info.value.feature == "reasoning"
        assert not server.model_requests
        # "none" asks for what the model does anyway: sent, without the parameter
        await client.complete(model="o/gpt-4o", prompt="x", reasoning="none")
        assert "reasoning_effort" not in server.model_requests[-1].json


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_multi_turn_tool_use_with_reasoning(streamed: bool) -> None:
    """A tool loop on a reasoning model: reasoning tokens counted each turn, and the
    follow-up carries no reasoning (Chat Completions keeps none between calls)."""
    quirks = OpenAIQuirks(reasoning_field="reasoning_content")
    async with FakeOpenAIServer(quirks=quirks) as server, llmx.Client(_config(server)) as client:
        server.enqueue(
            Reply(
                reasoning="Use the tool.",
                tool_calls=[("call_1", "get_weather", '{"city":"Oslo"}')],
                usage=(10, 30),
                reasoning_tokens=25,
            ),
            Reply("Grey.", reasoning="Answer now.", usage=(20, 10), reasoning_tokens=8),
        )
        convo: list[llmx.Message] = [llmx.Message.user("Oslo?")]
        ask: dict[str, Any] = {"tools": [WEATHER], "reasoning": "high"}
        if streamed:
            first = await client.stream(model="o/o4-mini", messages=convo, **ask).collect()
        else:
            first = await client.complete(model="o/o4-mini", messages=convo, **ask)
        assert first.reasoning_text == "Use the tool."
        assert (first.usage.output_tokens, first.usage.reasoning_tokens) == (30, 25)
        convo += [first.message, llmx.Message.tool("call_1", "grey")]
        second = await client.complete(model="o/o4-mini", messages=convo, **ask)
        assert second.text == "Grey."
        assert second.cost is not None
        assert second.cost > 0
        body = server.model_requests[-1].json
        vendor_validator("openai", "official").check("/chat/completions", "post", body)
        assert body["reasoning_effort"] == "high"
        assert "Use the tool." not in str(body)


async def test_azure_needs_an_api_version_with_reasoning_effort() -> None:
    async with FakeAzureOpenAIServer() as server:
        async with llmx.Client(_config(server, "azure")) as client:
            with pytest.raises(llmx.UnsupportedFeatureError, match="2024-12-01-preview"):
                await client.complete(model="o/o4-mini", prompt="x", reasoning="low")
            assert not server.model_requests
        preview = {"api_version": "2025-04-01-preview"}
        async with llmx.Client(_config(server, "azure", **preview)) as client:
            await client.complete(model="o/o4-mini", prompt="x", reasoning="low")
        recorded = server.model_requests[-1]
        assert recorded.json["reasoning_effort"] == "low"
        vendor_validator("openai", "azure-preview").check(
            "/deployments/{deployment-id}/chat/completions", "post", recorded.json
        )

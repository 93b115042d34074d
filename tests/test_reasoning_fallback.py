"""Reasoning across vendors: a conversation with one vendor's reasoning state falls back to
another mid-conversation (in a tool loop), and none of the first vendor's state is sent.

Each fake refuses what its vendor refuses: Anthropic a tool loop with thinking on whose
last assistant turn does not start with a thinking block, or a thinking block whose
signature it did not issue; Gemini 3 a call of the current turn without a thought
signature, or a signature it did not issue. So a provider that sent another vendor's
state, or failed to adapt, fails here with the vendor's 400.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import ErrorReply, FakeServer, Reply
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeOpenAIServer

WEATHER = llmx.Tool(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

FAKES: dict[str, tuple[type[FakeServer], str]] = {
    "anthropic": (FakeAnthropicServer, "claude-sonnet-4-6"),
    "gemini": (FakeGeminiServer, "gemini-3-pro-preview"),
    "openai": (FakeOpenAIServer, "o4-mini"),
}


def _validate(kind: str, body: Any) -> None:
    if kind == "anthropic":
        vendor_validator("anthropic", "official").check("/v1/messages", "post", body)
    elif kind == "gemini":
        vendor_validator("gemini", "official").check(
            "generativelanguage.models.generateContent", "post", body
        )
    else:
        vendor_validator("openai", "official").check("/chat/completions", "post", body)


def _strings(value: Any) -> set[str]:
    """Every string in a JSON value (keys excluded)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("anthropic", "gemini"),
        ("anthropic", "openai"),
        ("gemini", "anthropic"),
        ("gemini", "openai"),
        ("openai", "anthropic"),
        ("openai", "gemini"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_fallback_mid_tool_loop_sends_no_foreign_state(
    first: str, then: str, streamed: bool
) -> None:
    """Turn 1 on ``first`` (reasoning + a tool call); turn 2 (the tool result) goes to an
    alias whose ``first`` candidate fails, and ``then`` answers: accepted, with none of
    ``first``'s reasoning text, signatures or encrypted data in its request."""
    (first_cls, first_model), (then_cls, then_model) = FAKES[first], FAKES[then]
    server_a = FakeAnthropicServer(redact_thinking=True) if first == "anthropic" else first_cls()
    async with server_a as a, then_cls() as b:
        config = {
            "providers": {
                "one": {"type": first, "base_url": a.base_url, "api_key": "test-key"},
                "two": {"type": then, "base_url": b.base_url, "api_key": "test-key"},
            },
            "aliases": {"agent": {"candidates": [f"one/{first_model}", f"two/{then_model}"]}},
            "retry": {"attempts": 1},
        }
        async with llmx.Client(config) as client:
            a.enqueue(
                Reply(
                    reasoning="SECRET-PLAN: look the weather up first.",
                    tool_calls=[("call_1", "get_weather", '{"city":"Paris"}')],
                    chunk_size=7,
                )
            )
            question = llmx.Message.user("Weather in Paris?")
            ask = {"tools": [WEATHER], "reasoning": "high"}
            if streamed:
                turn1 = await client.stream(
                    model=f"one/{first_model}", messages=[question], **ask
                ).collect()
            else:
                turn1 = await client.complete(
                    model=f"one/{first_model}", messages=[question], **ask
                )
            assert turn1.tool_calls
            if first != "openai":
                assert turn1.reasoning, "the first vendor returned reasoning state"
            opaque = {
                value
                for part in turn1.reasoning
                for value in (part.text, part.signature, part.data)
                if value
            }
            convo = [question, turn1.message, llmx.Message.tool("call_1", '{"sky":"sunny"}')]
            a.enqueue(ErrorReply(503))  # the first vendor is down for turn 2
            b.enqueue(Reply("Sunny in Paris.", reasoning="The tool said sunny."))
            if streamed:
                turn2 = await client.stream(model="agent", messages=convo, **ask).collect()
            else:
                turn2 = await client.complete(model="agent", messages=convo, **ask)
            assert turn2.text == "Sunny in Paris."
            assert turn2.provider == "two"
            (sent,) = b.model_requests
            _validate(then, sent.json)
            leaked = opaque & _strings(sent.json)
            assert not leaked, f"{first}'s reasoning state reached {then}: {leaked}"
            assert b"SECRET-PLAN" not in sent.body
            text = json.dumps(sent.json)
            assert "get_weather" in text, "the tool call itself is kept"


async def test_same_vendor_keeps_its_state_across_instances() -> None:
    """Falling back between two instances of the same protocol keeps the state (it is
    the vendor's, valid on either), so the second accepts the tool loop with thinking on."""
    async with FakeAnthropicServer() as a, FakeAnthropicServer() as b:
        config = {
            "providers": {
                "one": {"type": "anthropic", "base_url": a.base_url, "api_key": "test-key"},
                "two": {"type": "anthropic", "base_url": b.base_url, "api_key": "test-key"},
            },
            "aliases": {"claude": {"candidates": ["one/claude-sonnet-4-6", "two/claude-opus-4-6"]}},
            "retry": {"attempts": 1},
        }
        async with llmx.Client(config) as client:
            a.enqueue(
                Reply(reasoning="Plan.", tool_calls=[("call_1", "get_weather", '{"city":"Rome"}')])
            )
            question = llmx.Message.user("Rome?")
            turn1 = await client.complete(
                model="claude", messages=[question], tools=[WEATHER], reasoning=2048
            )
            a.enqueue(ErrorReply(529))
            b.enqueue(Reply("Warm.", reasoning="Done."))
            convo = [question, turn1.message, llmx.Message.tool("call_1", "warm")]
            turn2 = await client.complete(
                model="claude", messages=convo, tools=[WEATHER], reasoning=2048
            )
            assert turn2.reasoning_text == "Done."
            body = b.model_requests[0].json
            assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
            assert body["messages"][1]["content"][0]["type"] == "thinking"

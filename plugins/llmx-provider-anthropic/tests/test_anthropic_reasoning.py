"""Extended thinking: ``reasoning=`` as ``thinking``, thinking blocks in and out, their
signatures kept across a tool loop (the fake refuses a follow-up without them, as
Anthropic does), whole and streamed; every body validated against Anthropic's document."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmx_anthropic._wire import build_body, parse_message
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_anthropic.testing._server import thinking_signature

import llmx
import llmx.types
from llmx.testing import Reply, sse_events
from llmx.testing.openapi import vendor_validator

WEATHER = llmx.Tool("get_weather", "w", {"type": "object", "properties": {"city": {}}})


def _body(request: llmx.Request, default: int = 4096, limit: int | None = 64_000) -> Any:
    body = build_body(
        request,
        provider="a",
        max_tokens=default,
        stream=False,
        fixed_sampling=False,
        output_limit=limit,
    )
    vendor_validator("anthropic", "official").check("/v1/messages", "post", body)
    return body


@pytest.mark.parametrize(
    ("value", "budget", "max_tokens"),
    [
        ("minimal", 1024, 1024 + 4096),  # raised to Anthropic's minimum
        ("low", 2048, 2048 + 4096),
        ("medium", 8192, 8192 + 4096),
        ("high", 24576, 24576 + 4096),
        (5000, 5000, 5000 + 4096),
        (100, 1024, 1024 + 4096),
    ],
)
def test_reasoning_becomes_a_thinking_budget(
    value: str | int, budget: int, max_tokens: int
) -> None:
    body = _body(llmx.Request("claude-sonnet-4-6", "hi", reasoning=value))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == max_tokens  # room for the answer on top of the budget


@pytest.mark.parametrize("value", ["none", 0])
def test_none_disables_thinking(value: str | int) -> None:
    body = _body(llmx.Request("claude-sonnet-4-6", "hi", reasoning=value))
    assert body["thinking"] == {"type": "disabled"}
    assert body["max_tokens"] == 4096


def test_no_reasoning_sends_no_thinking() -> None:
    assert "thinking" not in _body(llmx.Request("claude-sonnet-4-6", "hi"))


def test_max_tokens_caps_the_budget() -> None:
    body = _body(llmx.Request("claude-sonnet-4-6", "hi", max_tokens=6000, reasoning="high"))
    assert body["max_tokens"] == 6000
    assert body["thinking"]["budget_tokens"] == 3000
    body = _body(llmx.Request("claude-sonnet-4-6", "hi", reasoning="high"), limit=16_000)
    assert body["max_tokens"] == 16_000  # the model's output limit
    assert body["thinking"]["budget_tokens"] == 8000


@pytest.mark.parametrize(
    ("kwargs", "feature"),
    [
        ({"max_tokens": 1500}, "reasoning"),
        ({"temperature": 0.2}, "temperature"),
        ({"top_p": 0.5}, "top_p"),
        ({"tools": [WEATHER], "tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "get_weather"}, "tool_choice"),
    ],
)
def test_what_thinking_forbids_is_refused(kwargs: dict[str, Any], feature: str) -> None:
    request = llmx.Request("claude-sonnet-4-6", "hi", reasoning="low", **kwargs)
    with pytest.raises(llmx.UnsupportedFeatureError) as info:
        _body(request)
    assert info.value.feature == feature
    assert info.value.model == "claude-sonnet-4-6"


def test_a_tool_loop_begun_without_thinking_continues_without_it() -> None:
    call = llmx.ToolCall("call_1", "get_weather", '{"city":"Oslo"}')
    foreign = llmx.Reasoning("their thought", signature="sig", protocol="gemini")
    convo = [
        llmx.Message.user("Oslo?"),
        llmx.Message.assistant(tool_calls=[call], reasoning=[foreign]),
        llmx.Message.tool("call_1", "grey"),
    ]
    body = _body(llmx.Request("claude-sonnet-4-6", convo, tools=[WEATHER], reasoning="high"))
    assert "thinking" not in body
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}
    ]


def test_own_thinking_goes_back_first_and_verbatim() -> None:
    call = llmx.ToolCall("call_1", "get_weather", '{"city":"Oslo"}')
    parts = [
        llmx.Reasoning("mine", signature="SIG", protocol="anthropic"),
        llmx.Reasoning(data="ENC", protocol="anthropic"),
        llmx.Reasoning("no signature: cannot go back", protocol="anthropic"),
    ]
    convo = [
        llmx.Message.user("Oslo?"),
        llmx.Message.assistant("Looking.", tool_calls=[call], reasoning=parts),
        llmx.Message.tool("call_1", "grey"),
    ]
    body = _body(llmx.Request("claude-sonnet-4-6", convo, tools=[WEATHER], reasoning=2048))
    assert [b["type"] for b in body["messages"][1]["content"]] == [
        "thinking",
        "redacted_thinking",
        "text",
        "tool_use",
    ]
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "mine",
        "signature": "SIG",
    }
    assert body["messages"][1]["content"][1] == {"type": "redacted_thinking", "data": "ENC"}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_thinking_blocks_are_parsed() -> None:
    data = (
        b'{"id":"m","type":"message","role":"assistant","model":"claude-sonnet-4-6",'
        b'"content":[{"type":"thinking","thinking":"hmm","signature":"S1"},'
        b'{"type":"redacted_thinking","data":"D1"},{"type":"text","text":"ok"}],'
        b'"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":9,'
        b'"output_tokens_details":{"thinking_tokens":6}}}'
    )
    response = parse_message(data, llmx.Request("claude-sonnet-4-6", "x"), "a")
    assert response.reasoning == (
        llmx.Reasoning("hmm", signature="S1", protocol="anthropic"),
        llmx.Reasoning(data="D1", protocol="anthropic"),
    )
    assert response.reasoning_text == "hmm"
    assert response.text == "ok"
    assert response.usage.output_tokens == 9  # thinking included, as Anthropic bills it
    assert response.usage.reasoning_tokens == 6


def _config(server: FakeAnthropicServer) -> dict[str, Any]:
    return {
        "providers": {
            "claude": {
                "type": "anthropic",
                "base_url": server.base_url,
                "api_key": "test-key",
                "retry": {"attempts": 1},
            }
        }
    }


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_multi_turn_tool_use_with_thinking(streamed: bool) -> None:
    """Two tool calls in a row, then the answer: each follow-up carries the thinking and
    redacted blocks back; the fake checks their signatures and that the last assistant
    turn starts with them."""
    async with (
        FakeAnthropicServer(redact_thinking=True) as server,
        llmx.Client(_config(server)) as client,
    ):
        server.enqueue(
            Reply(
                reasoning="Paris first.",
                tool_calls=[("c1", "get_weather", '{"city":"Paris"}')],
                reasoning_tokens=4,
                usage=(10, 20),
                chunk_size=3,
            ),
            Reply(reasoning="Now Rome.", tool_calls=[("c2", "get_weather", '{"city":"Rome"}')]),
            Reply("Both sunny.", reasoning="Done."),
        )
        convo: list[llmx.Message] = [llmx.Message.user("Paris and Rome?")]
        for call_id in ("c1", "c2"):
            if streamed:
                chunks: list[llmx.types.StreamChunk] = []
                stream = client.stream(
                    model="claude/claude-sonnet-4-6",
                    messages=convo,
                    tools=[WEATHER],
                    reasoning="low",
                )
                async with stream:
                    chunks.extend([c async for c in stream])
                turn = stream.response
                assert turn is not None
                kinds = {type(c) for c in chunks}
                assert llmx.ReasoningDelta in kinds
            else:
                turn = await client.complete(
                    model="claude/claude-sonnet-4-6",
                    messages=convo,
                    tools=[WEATHER],
                    reasoning="low",
                )
            assert [r.redacted for r in turn.reasoning] == [False, True]
            assert turn.reasoning[0].signature == thinking_signature(turn.reasoning_text)
            convo += [turn.message, llmx.Message.tool(call_id, "sunny")]
        final = await client.complete(
            model="claude/claude-sonnet-4-6", messages=convo, tools=[WEATHER], reasoning="low"
        )
        assert final.text == "Both sunny."
        assert final.reasoning_text == "Done."
        for recorded in server.model_requests:
            vendor_validator("anthropic", "official").check("/v1/messages", "post", recorded.json)
        last = server.model_requests[-1].json
        assistant = [m for m in last["messages"] if m["role"] == "assistant"]
        assert [[b["type"] for b in m["content"]] for m in assistant] == [
            ["thinking", "redacted_thinking", "tool_use"]
        ] * 2


async def test_the_fake_refuses_a_follow_up_without_the_thinking_blocks() -> None:
    """What the vendor does when the state is lost: thinking forced on (``extra``) for a
    tool loop whose assistant turn lacks its thinking block is a 400, and so is a
    thinking block with a signature Anthropic did not issue."""
    async with FakeAnthropicServer() as server, llmx.Client(_config(server)) as client:
        server.enqueue(Reply(reasoning="Plan.", tool_calls=[("c1", "get_weather", "{}")]))
        question = llmx.Message.user("Weather?")
        turn = await client.complete(
            model="claude/claude-sonnet-4-6",
            messages=[question],
            tools=[WEATHER],
            reasoning="low",
        )
        stripped = llmx.Message.assistant(tool_calls=turn.tool_calls)
        forced = {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 8000}
        with pytest.raises(llmx.BadRequestError, match="must start with a thinking block"):
            await client.complete(
                model="claude/claude-sonnet-4-6",
                messages=[question, stripped, llmx.Message.tool("c1", "x")],
                tools=[WEATHER],
                extra=forced,
            )
        forged = llmx.Message.assistant(
            tool_calls=turn.tool_calls,
            reasoning=[
                llmx.Reasoning("Plan!", signature=turn.reasoning[0].signature, protocol="anthropic")
            ],
        )
        with pytest.raises(llmx.BadRequestError, match="Invalid `signature`"):
            await client.complete(
                model="claude/claude-sonnet-4-6",
                messages=[question, forged, llmx.Message.tool("c1", "x")],
                tools=[WEATHER],
                reasoning="low",
            )


def test_the_fake_streams_thinking_as_anthropic_does() -> None:
    server = FakeAnthropicServer(redact_thinking=True)
    from llmx.testing import RecordedRequest

    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 9000,
        "messages": [],
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    recorded = RecordedRequest("POST", "/v1/messages", {}, {}, b"", body)
    events = server.stream_events(Reply("ok", reasoning="abcdef", chunk_size=4), recorded)
    import json

    parsed = [json.loads(data) for _, data in sse_events(b"".join(events))]
    kinds = [(p["type"], p.get("delta", p.get("content_block", {})).get("type")) for p in parsed]
    assert kinds[:7] == [
        ("message_start", None),
        ("content_block_start", "thinking"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
        ("content_block_start", "redacted_thinking"),
    ]


@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=1, max_size=40), size=st.integers(1, 10))
def test_streamed_thinking_reassembles_for_any_split(text: str, size: int) -> None:
    """The decoder's reasoning deltas fold back into the block the whole answer has."""
    import asyncio

    async def main() -> tuple[llmx.Response, llmx.Response]:
        async with FakeAnthropicServer() as server, llmx.Client(_config(server)) as client:
            reply = Reply("x", reasoning=text, chunk_size=size)
            server.enqueue(reply, reply)
            ref = "claude/claude-sonnet-4-6"
            whole = await client.complete(model=ref, prompt="q", reasoning="low")
            streamed = await client.stream(model=ref, prompt="q", reasoning="low").collect()
            return whole, streamed

    whole, streamed = asyncio.run(main())
    assert whole.reasoning == streamed.reasoning
    assert streamed.reasoning_text == text


async def test_none_on_a_model_that_does_not_think_sends_nothing() -> None:
    async with FakeAnthropicServer() as server, llmx.Client(_config(server)) as client:
        await client.complete(model="claude/claude-3-haiku-20240307", prompt="hi", reasoning="none")
        assert "thinking" not in server.model_requests[-1].json
        with pytest.raises(llmx.UnsupportedFeatureError):
            await client.complete(
                model="claude/claude-3-haiku-20240307", prompt="hi", reasoning=2048
            )

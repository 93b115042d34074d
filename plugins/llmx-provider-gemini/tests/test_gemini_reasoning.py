"""Thinking on Gemini: ``reasoning=`` as ``thinkingConfig``, thought parts in and out,
``thoughtSignature`` kept where Gemini put it across a tool loop (the fake refuses a
Gemini 3 follow-up without it, as Gemini does), whole and streamed; bodies validated
against the discovery document."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmx_gemini._wire import SKIP_SIGNATURE, build_body, parse_response
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import Reply
from llmx.testing.openapi import vendor_validator

WEATHER = llmx.Tool("get_weather", "w", {"type": "object", "properties": {"city": {}}})
CALL = llmx.ToolCall("call_1", "get_weather", '{"city":"Oslo"}')


def _body(request: llmx.Request) -> Any:
    body = build_body(request, provider="g", safety_settings={})
    vendor_validator("gemini", "official").check(
        "generativelanguage.models.generateContent", "post", body
    )
    return body


@pytest.mark.parametrize(
    ("model", "value", "config"),
    [
        ("gemini-2.5-flash", "low", {"thinkingBudget": 2048, "includeThoughts": True}),
        ("gemini-2.5-flash", 3000, {"thinkingBudget": 3000, "includeThoughts": True}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-pro", "none", {"thinkingBudget": 128}),  # Pro cannot stop thinking
        ("gemini-3-pro-preview", "high", {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ("gemini-3-pro-preview", 1000, {"thinkingLevel": "LOW", "includeThoughts": True}),
        ("gemini-3-pro-preview", "none", {"thinkingLevel": "MINIMAL"}),
    ],
)
def test_reasoning_becomes_a_thinking_config(
    model: str, value: str | int, config: dict[str, Any]
) -> None:
    body = _body(llmx.Request(model, "hi", reasoning=value))
    assert body["generationConfig"]["thinkingConfig"] == config


def test_no_reasoning_sends_no_thinking_config() -> None:
    assert "generationConfig" not in _body(llmx.Request("gemini-2.5-flash", "hi"))


def test_signatures_go_back_where_gemini_put_them() -> None:
    second = llmx.ToolCall("call_2", "get_weather", '{"city":"Rome"}')
    parts = [
        llmx.Reasoning("thought summary", protocol="gemini"),
        llmx.Reasoning(signature="U0lHMQ==", protocol="gemini"),
        llmx.Reasoning("other vendor", signature="X", data="Y", protocol="anthropic"),
    ]
    convo = [
        llmx.Message.user("Oslo and Rome?"),
        llmx.Message.assistant("Checking.", tool_calls=[CALL, second], reasoning=parts),
        llmx.Message("tool", [llmx.ToolResult("call_1", "grey"), llmx.ToolResult("call_2", "sun")]),
    ]
    body = _body(llmx.Request("gemini-2.5-flash", convo, tools=[WEATHER], reasoning="low"))
    model_parts = body["contents"][1]["parts"]
    assert model_parts[0] == {"text": "thought summary", "thought": True}
    assert model_parts[1] == {"text": "Checking."}
    assert model_parts[2]["thoughtSignature"] == "U0lHMQ=="  # the first call of the step
    assert "thoughtSignature" not in model_parts[3]
    assert "other vendor" not in json.dumps(body)


def test_a_text_signature_goes_on_the_last_text_part() -> None:
    convo = [
        llmx.Message.user("Hi"),
        llmx.Message.assistant(
            "Hello.", reasoning=[llmx.Reasoning(signature="VFhU", protocol="gemini")]
        ),
        llmx.Message.user("Again"),
    ]
    body = _body(llmx.Request("gemini-2.5-flash", convo))
    assert body["contents"][1]["parts"] == [{"text": "Hello.", "thoughtSignature": "VFhU"}]


def test_gemini3_calls_without_a_signature_get_the_documented_stand_in() -> None:
    """A call Gemini did not make (another vendor's, or built by hand) in the current
    turn; earlier turns are left alone, as Gemini validates only the current one."""
    old = llmx.ToolCall("call_0", "get_weather", '{"city":"Bern"}')
    convo = [
        llmx.Message.user("Bern?"),
        llmx.Message.assistant(tool_calls=[old]),
        llmx.Message.tool("call_0", "cold"),
        llmx.Message.assistant("Cold."),
        llmx.Message.user("Oslo?"),
        llmx.Message.assistant(tool_calls=[CALL]),
        llmx.Message.tool("call_1", "grey"),
    ]
    body = _body(llmx.Request("gemini-3-pro-preview", convo, tools=[WEATHER]))
    calls = [p for c in body["contents"] for p in c["parts"] if "functionCall" in p]
    assert "thoughtSignature" not in calls[0]
    assert calls[1]["thoughtSignature"] == SKIP_SIGNATURE
    body = _body(llmx.Request("gemini-2.5-flash", convo, tools=[WEATHER]))
    assert all("thoughtSignature" not in p for c in body["contents"] for p in c["parts"])


def test_thought_parts_and_signatures_are_parsed() -> None:
    data = json.dumps(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "Let me ", "thought": True},
                            {"text": "think.", "thought": True},
                            {"text": "Answer."},
                            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "QUJD"},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 5,
                "candidatesTokenCount": 7,
                "thoughtsTokenCount": 11,
            },
        }
    ).encode()
    response = parse_response(data, llmx.Request("gemini-2.5-flash", "x"), "g")
    assert response.text == "Answer."
    assert response.reasoning == (
        llmx.Reasoning("Let me think.", protocol="gemini"),
        llmx.Reasoning(signature="QUJD", protocol="gemini"),
    )
    # Gemini counts thoughts apart; llmx's output_tokens include them (priced as output).
    assert (response.usage.output_tokens, response.usage.reasoning_tokens) == (18, 11)


def _config(server: FakeGeminiServer) -> dict[str, Any]:
    return {
        "providers": {
            "g": {
                "type": "gemini",
                "base_url": server.base_url,
                "api_key": "test-key",
                "retry": {"attempts": 1},
            }
        }
    }


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-2.5-flash"])
async def test_multi_turn_tool_use_with_thinking(model: str, streamed: bool) -> None:
    """Two steps of calls, then the answer; each follow-up carries the signatures back on
    the calls (the Gemini 3 fake refuses one without, and any it did not issue)."""
    async with FakeGeminiServer() as server, llmx.Client(_config(server)) as client:
        server.enqueue(
            Reply(
                reasoning="Oslo first.",
                tool_calls=[("call_1", "get_weather", '{"city":"Oslo"}')],
                chunk_size=4,
            ),
            Reply(reasoning="Now Rome.", tool_calls=[("call_2", "get_weather", '{"city":"Rome"}')]),
            Reply("Grey, then sunny.", reasoning="Done.", reasoning_tokens=3, usage=(9, 9)),
        )
        ref = f"g/{model}"
        convo: list[llmx.Message] = [llmx.Message.user("Oslo, then Rome?")]
        for call_id in ("call_1", "call_2"):
            ask = {"messages": convo, "tools": [WEATHER], "reasoning": "medium"}
            if streamed:
                turn = await client.stream(model=ref, **ask).collect()
            else:
                turn = await client.complete(model=ref, **ask)
            assert turn.reasoning[0].text
            assert turn.reasoning[-1].signature
            convo += [turn.message, llmx.Message.tool(call_id, "ok")]
        final = await client.complete(
            model=ref, messages=convo, tools=[WEATHER], reasoning="medium"
        )
        assert final.text == "Grey, then sunny."
        assert final.usage.reasoning_tokens == 3
        for recorded in server.model_requests:
            vendor_validator("gemini", "official").check(
                "generativelanguage.models.generateContent", "post", recorded.json
            )
        last = server.model_requests[-1].json
        calls = [p for c in last["contents"] for p in c["parts"] if "functionCall" in p]
        assert all(p["thoughtSignature"] != SKIP_SIGNATURE for p in calls)


async def test_the_fake_refuses_what_gemini_refuses() -> None:
    """A Gemini 3 call of the current turn without a signature, and a signature the
    server did not issue (sent straight to the fake: llmx never sends either)."""
    async with FakeGeminiServer() as server, aiohttp.ClientSession() as session:
        url = f"{server.base_url}/models/gemini-3-pro-preview:generateContent"
        headers = {"x-goog-api-key": "test-key"}
        contents = [
            {"role": "user", "parts": [{"text": "Oslo?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"x": 1}}}],
            },
        ]
        async with session.post(url, json={"contents": contents}, headers=headers) as answer:
            assert answer.status == 400
            assert "missing a thought_signature" in (await answer.json())["error"]["message"]
        contents[1]["parts"][0]["thoughtSignature"] = "Zm9yZ2Vk"
        async with session.post(url, json={"contents": contents}, headers=headers) as answer:
            assert answer.status == 400
            assert (await answer.json())["error"]["message"] == "Corrupted thought signature."
        contents[1]["parts"][0]["thoughtSignature"] = SKIP_SIGNATURE
        async with session.post(url, json={"contents": contents}, headers=headers) as answer:
            assert answer.status == 200


@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=1, max_size=40), size=st.integers(1, 10))
def test_streamed_thoughts_reassemble_for_any_split(text: str, size: int) -> None:
    async def main() -> tuple[llmx.Response, llmx.Response]:
        async with FakeGeminiServer() as server, llmx.Client(_config(server)) as client:
            reply = Reply("x", reasoning=text, chunk_size=size)
            server.enqueue(reply, reply)
            ref = "g/gemini-2.5-flash"
            whole = await client.complete(model=ref, prompt="q", reasoning="low")
            streamed = await client.stream(model=ref, prompt="q", reasoning="low").collect()
            return whole, streamed

    whole, streamed = asyncio.run(main())
    assert whole.reasoning == streamed.reasoning
    assert streamed.reasoning_text == text


async def test_gemini3_tool_loop_without_asking_for_reasoning() -> None:
    """Gemini 3 always thinks and signs its calls: without ``reasoning=`` the signatures
    still come back in ``response.message``, so the loop is accepted."""
    async with FakeGeminiServer() as server, llmx.Client(_config(server)) as client:
        server.enqueue(
            Reply(tool_calls=[("call_1", "get_weather", '{"city":"Oslo"}')]), Reply("Grey.")
        )
        ref = "g/gemini-3-pro-preview"
        question = llmx.Message.user("Oslo?")
        first = await client.complete(model=ref, messages=[question], tools=[WEATHER])
        assert [r.text for r in first.reasoning] == [""]
        assert first.reasoning[0].signature
        convo = [question, first.message, llmx.Message.tool("call_1", "grey")]
        assert (await client.complete(model=ref, messages=convo, tools=[WEATHER])).text == "Grey."
        body = server.model_requests[-1].json
        assert "generationConfig" not in body
        (call,) = [p for c in body["contents"] for p in c["parts"] if "functionCall" in p]
        assert call["thoughtSignature"] == first.reasoning[0].signature


_sig = st.from_regex(r"[A-Za-z0-9+/]{4,12}={0,2}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    thoughts=st.lists(st.text(min_size=1, max_size=10), max_size=2),
    text=st.text(max_size=10),
    calls=st.integers(0, 3),
    signature=_sig,
    text_signature=st.booleans(),
)
def test_a_parsed_answer_goes_back_as_gemini_sent_it(
    thoughts: list[str], text: str, calls: int, signature: str, text_signature: bool
) -> None:
    """parse -> Response.message -> request: the non-thought parts come back exactly as
    Gemini sent them, signature on the same part; the thoughts as one thought part."""
    parts: list[dict[str, Any]] = [{"text": t, "thought": True} for t in thoughts]
    answer: list[dict[str, Any]] = [{"text": text}] if text else []
    answer += [
        {"functionCall": {"name": f"f{i}", "args": {"i": i}, "id": f"c{i}"}} for i in range(calls)
    ]
    if answer and (calls or text_signature):
        target = next((p for p in answer if "functionCall" in p), answer[-1])
        target["thoughtSignature"] = signature
    parts += answer
    if not parts:
        return
    data = json.dumps(
        {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
    ).encode()
    response = parse_response(data, llmx.Request("gemini-2.5-flash", "x"), "g")
    convo = [llmx.Message.user("q"), response.message]
    if calls:
        convo.append(llmx.Message("tool", [llmx.ToolResult(f"c{i}", "ok") for i in range(calls)]))
    else:
        convo.append(llmx.Message.user("more"))
    sent = build_body(llmx.Request("gemini-2.5-flash", convo), provider="g", safety_settings={})
    model_parts = sent["contents"][1]["parts"] if len(sent["contents"]) > 2 else []
    sent_thoughts = [p for p in model_parts if p.get("thought")]
    assert [p["text"] for p in sent_thoughts] == (["".join(thoughts)] if thoughts else [])
    assert [p for p in model_parts if not p.get("thought")] == answer


async def test_none_on_a_model_that_does_not_think_sends_nothing() -> None:
    async with FakeGeminiServer() as server, llmx.Client(_config(server)) as client:
        await client.complete(model="g/gemini-2.0-flash", prompt="hi", reasoning="none")
        assert "generationConfig" not in server.model_requests[-1].json
        with pytest.raises(llmx.UnsupportedFeatureError):
            await client.complete(model="g/gemini-2.0-flash", prompt="hi", reasoning="low")

"""Reasoning in the core: the request field, the effort <-> budget table, reasoning parts
and deltas through the stream builder, the cache (keys and entries), the capability
check, and ``Stream.text()`` keeping to the answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmx
from llmx._cache import decode_entry, encode_entry
from llmx._cachekey import cache_key, canonical_body, canonical_body_general
from llmx._convert import from_json, to_json
from llmx._stream import ResponseBuilder, chunks_of
from llmx.plugin import (
    REASONING_BUDGETS,
    reasoning_budget,
    reasoning_effort,
    reasoning_off,
    reasoning_off_unsaid,
)
from llmx.testing import scripted_client

LEVELS = ["none", "minimal", "low", "medium", "high"]
PARTS = (
    llmx.Reasoning("I should check.", signature="c2ln", protocol="anthropic"),
    llmx.Reasoning(data="ZW5j", protocol="anthropic"),
)


# -- the request field and the table ---------------------------------------------------------


@pytest.mark.parametrize("value", [*LEVELS, "HIGH", " Low "])
def test_levels_are_accepted_case_insensitively(value: str) -> None:
    assert llmx.Request("m", "x", reasoning=value).reasoning == value.strip().lower()


@pytest.mark.parametrize("value", ["max", "", "very high", -1, 1.5, True, [1]])
def test_anything_else_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="reasoning="):
        llmx.Request("m", "x", reasoning=value)


@given(st.integers(0, 10**7))
def test_budgets_are_kept_and_survive_with_model(budget: int) -> None:
    request = llmx.Request("m", "x", reasoning=budget)
    assert request.reasoning == budget
    assert request.with_model("n").reasoning == budget
    assert from_json(to_json(request), llmx.Request) == request


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_the_budget_to_effort_mapping_is_monotonic(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert LEVELS.index(reasoning_effort(low) or "") <= LEVELS.index(reasoning_effort(high) or "")


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_round_trips_through_its_budget(level: str) -> None:
    assert reasoning_budget(level) == REASONING_BUDGETS[level]
    assert reasoning_effort(reasoning_budget(level)) == level
    assert reasoning_off(level) == (level == "none")
    assert reasoning_off(0)
    assert reasoning_budget(None) is None
    assert reasoning_effort(None) is None


@pytest.mark.parametrize("value", ["none", 0, "low", 512, None])
def test_reasoning_off_is_unsaid_only_for_a_model_known_not_to_think(value: Any) -> None:
    facts = {
        "thinker": llmx.ModelInfo("thinker", capabilities={llmx.Capability.REASONING}),
        "plain": llmx.ModelInfo("plain"),
    }
    for model in ("thinker", "plain", "unknown"):
        request = llmx.Request(model, "x", reasoning=value)
        unsaid = reasoning_off_unsaid(request, facts.get)
        dropped = model == "plain" and reasoning_off(value)
        assert unsaid == (llmx.Request(model, "x") if dropped else request)


def test_the_response_gives_back_its_message() -> None:
    call = llmx.ToolCall("c1", "f", "{}")
    response = llmx.Response("Hi.", "m", "p", tool_calls=(call,), reasoning=PARTS)
    assert response.reasoning_text == "I should check."
    assert response.message == llmx.Message("assistant", [*PARTS, llmx.Text("Hi."), call])
    assert PARTS[1].redacted
    assert not PARTS[0].redacted


# -- cache keys -------------------------------------------------------------------------


def test_the_cache_key_includes_reasoning() -> None:
    keys = {
        cache_key(llmx.Request("m", "x", reasoning=value), instance="i", model="m")
        for value in [None, "low", "high", 2048, 0, "none"]
    }
    assert len(keys) == 6


def test_keys_of_requests_without_reasoning_did_not_change() -> None:
    """The field is left out when None: the canonical body has no ``reasoning`` key."""
    assert '"reasoning"' not in canonical_body(llmx.Request("m", "x"))
    assert '"reasoning"' not in canonical_body_general(llmx.Request("m", "x"))


_reasoning_values = st.none() | st.sampled_from(LEVELS) | st.integers(0, 10**6)
_parts = st.builds(
    llmx.Reasoning,
    st.text(max_size=20),
    signature=st.none() | st.text(max_size=10),
    data=st.none() | st.text(max_size=10),
    protocol=st.none() | st.sampled_from(["anthropic", "gemini"]),
)


@settings(max_examples=50)
@given(value=_reasoning_values, parts=st.lists(_parts, max_size=3))
def test_the_direct_key_path_equals_the_general_one(value: Any, parts: list[Any]) -> None:
    convo = [llmx.Message.user("q"), llmx.Message.assistant("a", reasoning=parts)]
    request = llmx.Request("m", convo, reasoning=value, extra={"z": 1, "response_format": 2})
    assert canonical_body(request) == canonical_body_general(request)


# -- builder, cache entries ----------------------------------------------------------------


@settings(max_examples=50)
@given(parts=st.lists(_parts, max_size=3), cuts=st.lists(st.integers(1, 5), max_size=5))
def test_deltas_fold_into_the_parts_whatever_the_split(parts: list[Any], cuts: list[int]) -> None:
    builder = ResponseBuilder("m")
    for index, part in enumerate(parts):
        text, pieces, at = part.text, [], 0
        for cut in cuts:
            pieces.append(text[at : at + cut])
            at += cut
        pieces.append(text[at:])
        for n, piece in enumerate(pieces):
            opaque: dict[str, Any] = {}
            if n == len(pieces) - 1:  # the state arrives whole, in one piece
                opaque = {"signature": part.signature, "data": part.data, "id": part.id}
            builder.add(llmx.ReasoningDelta(piece, index, protocol=part.protocol, **opaque))
    assert builder.build(provider="p").reasoning == tuple(parts)


async def test_chunks_of_replays_reasoning_first() -> None:
    response = llmx.Response("Hi.", "m", "p", reasoning=PARTS)
    chunks = [c async for c in chunks_of(response)]
    assert isinstance(chunks[0], llmx.ReasoningDelta)
    builder = ResponseBuilder()
    for chunk in chunks:
        builder.add(chunk)
    assert builder.build(provider="p").reasoning == PARTS


def test_cache_entries_keep_the_reasoning() -> None:
    response = llmx.Response("Hi.", "m", "p", reasoning=PARTS)
    chunks = [llmx.ReasoningDelta("I should", 0, protocol="anthropic"), llmx.TextDelta("Hi.")]
    decoded, replay = decode_entry(encode_entry(response, chunks))
    assert decoded.reasoning == PARTS
    assert replay == chunks
    plain, _ = decode_entry(encode_entry(llmx.Response("Hi.", "m", "p")))
    assert plain.reasoning == ()


# -- through the client -----------------------------------------------------------------------


async def test_stream_text_has_no_reasoning_and_the_cache_replays_it() -> None:
    answer = llmx.Response("The answer.", "m", "scripted", finish_reason="stop", reasoning=PARTS)
    async with scripted_client(
        [answer, answer, answer], config={"cache": {"backend": "memory"}}
    ) as client:
        texts = [
            t async for t in client.stream(model="scripted/m", prompt="q", reasoning="low").text()
        ]
        assert "".join(texts) == "The answer."
        chunks = [c async for c in client.stream(model="scripted/m", prompt="r", reasoning="low")]
        assert [type(c) for c in chunks][:2] == [llmx.ReasoningDelta, llmx.ReasoningDelta]
        again = client.stream(model="scripted/m", prompt="r", reasoning="low")
        replayed = [c async for c in again]
        assert again.response is not None
        assert again.response.cached
        assert again.response.reasoning == PARTS
        assert replayed == chunks
        whole = await client.complete(model="scripted/m", prompt="s", reasoning="high")
        assert whole.reasoning == PARTS
        cached = await client.complete(model="scripted/m", prompt="s", reasoning="high")
        assert cached.cached
        assert cached.reasoning == PARTS
        other = await client.complete(model="scripted/m", prompt="s", reasoning="low")
        assert not other.cached, "another reasoning level is another cache key"


async def test_a_model_known_not_to_reason_is_refused_before_sending() -> None:
    models = {
        "plain": llmx.ModelInfo("plain", capabilities=["streaming"]),
        "thinker": llmx.ModelInfo("thinker", capabilities=["streaming", "reasoning"]),
    }
    async with scripted_client(["a", "b", "c"], models=models) as client:
        with pytest.raises(llmx.UnsupportedFeatureError) as info:
            await client.complete(model="scripted/plain", prompt="q", reasoning="high")
        assert info.value.feature == "reasoning"
        assert (
            await client.complete(model="scripted/plain", prompt="q", reasoning="none")
        ).text == "a"
        assert (
            await client.complete(model="scripted/thinker", prompt="q", reasoning=4096)
        ).text == "b"


async def test_stats_count_reasoning_tokens_within_output_tokens() -> None:
    usage = llmx.Usage(10, 50, reasoning_tokens=40)
    answer = llmx.Response("ok", "m", "scripted", usage=usage, reasoning=PARTS)
    async with scripted_client([answer, answer]) as client:
        await client.complete(model="scripted/m", prompt="q", reasoning="high")
        await client.stream(model="scripted/m", prompt="q", reasoning="high").collect()
        (stats,) = client.stats().models
    assert (stats.output_tokens, stats.reasoning_tokens) == (100, 80)


def test_batch_lines_carry_reasoning() -> None:
    """``llmx batch``: a line's ``reasoning`` (and an OpenAI batch line's
    ``reasoning_effort``) becomes ``Request.reasoning``, so any provider takes it."""
    import json

    from llmx._batch import parse_line

    plain = parse_line(json.dumps({"id": "a", "prompt": "q", "reasoning": "high"}))
    assert plain.request.reasoning == "high"
    openai_line = {
        "custom_id": "b",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "o3",
            "messages": [{"role": "user", "content": "q"}],
            "reasoning_effort": "low",
        },
    }
    item = parse_line(json.dumps(openai_line))
    assert item.request.reasoning == "low"
    assert "reasoning_effort" not in item.request.extra
    with pytest.raises(ValueError, match="reasoning="):
        parse_line(json.dumps({"id": "c", "prompt": "q", "reasoning": "max"}))

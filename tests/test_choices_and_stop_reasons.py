"""n > 1, logprobs and normalised stop reasons (issue 15, item 7) through the whole
pipeline: the vendors' published finish reasons each mapped (and listed in the docs'
table), OpenAI's choices, logprobs and refusals whole and streamed, through the cache and
a fallback, Anthropic's refusal and pause, and refusals before sending elsewhere. Real
providers, real HTTP, the fakes (which validate every body against the vendor's
schema)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmx_anthropic import _wire as anthropic_wire
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini import _wire as gemini_wire
from llmx_gemini.testing import FakeGeminiServer

import llmx
import llmx.types
from llmx.testing import ErrorReply, Reply
from llmx.testing.openapi import load_vendor_spec, vendor_validator
from llmx.types import FinishReason, LogprobsDelta, RefusalDelta, TokenLogprob
from llmx_openai import _responses_wire as responses_wire
from llmx_openai import _wire as openai_wire
from llmx_openai.testing import FakeOpenAIServer

DOC = Path(__file__).parents[1] / "docs" / "features" / "choices-logprobs-and-stop-reasons.md"
REASONS = set(get_args(FinishReason))


# -- every vendor reason of the published schemas is mapped, and in the docs' table --------


def _openai_reasons() -> set[str]:
    schemas = load_vendor_spec("openai", "official")["components"]["schemas"]
    out = set()
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse"):
        choice = schemas[name]["properties"]["choices"]["items"]["properties"]
        out |= {v for v in choice["finish_reason"]["enum"] if v is not None}
    return out


def _anthropic_reasons() -> set[str]:
    schemas = load_vendor_spec("anthropic", "official")["components"]["schemas"]
    return set(schemas["StopReason"]["enum"]) | set(schemas["BetaStopReason"]["enum"])


def _gemini_reasons() -> set[str]:
    candidate = load_vendor_spec("gemini", "official")["schemas"]["Candidate"]
    return set(candidate["properties"]["finishReason"]["enum"]) - {"FINISH_REASON_UNSPECIFIED"}


def _responses_reasons() -> set[str]:
    schemas = load_vendor_spec("openai", "official")["components"]["schemas"]
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            details = node.get("properties", {}).get("incomplete_details")
            if details is not None:
                for branch in details.get("anyOf", [details]):
                    reason = branch.get("properties", {}).get("reason", {})
                    found.update(reason.get("enum", ()))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schemas["Response"])
    assert found, "no incomplete_details.reason enum in the Responses schema"
    return found


VENDORS = {
    "openai": (_openai_reasons, openai_wire._FINISH),
    "anthropic": (_anthropic_reasons, anthropic_wire._STOP),
    "gemini": (_gemini_reasons, gemini_wire._FINISH),
    "openai-responses": (_responses_reasons, responses_wire._INCOMPLETE),
}


def _doc_table() -> dict[tuple[str, str], str]:
    """``(vendor, vendor reason) -> llmx reason`` from the docs page's table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`") and cells[2].startswith("`"):
            rows[(cells[0], cells[1].strip("`"))] = cells[2].strip("`")
    return rows


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_every_published_reason_is_mapped_and_documented(vendor: str) -> None:
    published, table = VENDORS[vendor]
    reasons = published()
    assert reasons, f"no {vendor} reasons found in the vendor's schema"
    missing = reasons - set(table)
    assert not missing, f"{vendor} reasons without an explicit llmx mapping: {sorted(missing)}"
    assert set(table.values()) <= REASONS
    documented = _doc_table()
    for reason in reasons:
        assert documented.get((vendor, reason)) == table[reason], (
            f"docs table row for {vendor} {reason!r} is missing or says something else"
        )


def test_the_mapping_functions_use_the_tables() -> None:
    assert anthropic_wire.map_stop_reason("pause_turn") == "pause"
    assert anthropic_wire.map_stop_reason("model_context_window_exceeded") == "length"
    assert gemini_wire.map_finish_reason("MALFORMED_FUNCTION_CALL", False) == "error"
    assert gemini_wire.map_finish_reason("FINISH_REASON_UNSPECIFIED", False) is None
    assert openai_wire.map_finish_reason("function_call") == "tool_calls"


# -- logprobs parsing -----------------------------------------------------------------------

_token = st.fixed_dictionaries(
    {
        "token": st.text(max_size=8),
        "logprob": st.floats(max_value=0, allow_nan=False, allow_infinity=False),
        "bytes": st.one_of(st.none(), st.lists(st.integers(0, 255), max_size=8)),
    }
)
_entry = st.builds(lambda t, top: {**t, "top_logprobs": top}, _token, st.lists(_token, max_size=3))


@given(st.lists(_entry, max_size=6))
def test_logprobs_parse_to_the_same_numbers(entries: list[dict[str, Any]]) -> None:
    parsed = openai_wire.parse_logprobs({"content": entries}, "p", "m")
    assert parsed is not None
    assert len(parsed) == len(entries)
    for token, entry in zip(parsed, entries, strict=True):
        assert (token.token, token.logprob) == (entry["token"], entry["logprob"])
        assert token.bytes == (None if entry["bytes"] is None else tuple(entry["bytes"]))
        assert [t.token for t in token.top] == [t["token"] for t in entry["top_logprobs"]]
        assert all(t.top == () for t in token.top)


@given(st.recursive(st.none() | st.integers() | st.text(max_size=3), st.lists, max_leaves=5))
def test_malformed_logprobs_are_a_typed_error(junk: Any) -> None:
    try:
        openai_wire.parse_logprobs({"content": junk}, "p", "m")
    except llmx.MalformedResponseError:
        pass


# -- OpenAI: n, logprobs and refusals through the pipeline ------------------------------------


def _config(**servers: Any) -> dict[str, Any]:
    types = {"oa": "openai", "claude": "anthropic", "gem": "gemini"}
    return {
        "providers": {
            name: {"type": types[name], "base_url": s.base_url, "api_key": "k"}
            for name, s in servers.items()
        },
        "retry": {"attempts": 1},
    }


async def test_n_logprobs_are_sent_and_the_choices_come_back_through_the_cache() -> None:
    async with FakeOpenAIServer(api_key="k") as server:
        server.enqueue(Reply("ab", choices=("cd", "ef"), usage=(10, 6)))
        config = {**_config(oa=server), "cache": {"backend": "memory"}}
        async with llmx.Client(config) as client:
            ask = {"model": "oa/gpt-4o-mini", "prompt": "x", "n": 3, "top_logprobs": 1}
            first = await client.complete(**ask)
            again = await client.complete(**ask)
            server.enqueue(Reply("plain"))
            plain = await client.complete(model="oa/gpt-4o-mini", prompt="x")
        body = server.model_requests[0].json
        vendor_validator("openai", "official").check("/chat/completions", "post", body)
        assert (body["n"], body["logprobs"], body["top_logprobs"]) == (3, True, 1)
        assert "n" not in server.model_requests[1].json  # another cache key
    assert len(server.model_requests) == 2
    assert [c.text for c in first.choices] == ["ab", "cd", "ef"]
    assert first.text == "ab"
    assert first.usage == llmx.Usage(10, 6)
    assert first.cost is not None
    assert first.cost > 0
    assert [t.token for t in first.choices[2].logprobs or ()] == ["e", "f"]
    assert all(len(t.top) == 1 for t in first.logprobs or ())
    assert again.cached
    assert again.choices == first.choices
    assert plain.text == "plain"
    assert plain.choices == ()


async def test_n_falls_back_past_a_provider_that_refuses_it() -> None:
    async with (
        FakeAnthropicServer(api_key="k") as claude,
        FakeOpenAIServer(api_key="k") as openai,
    ):
        openai.enqueue(Reply("one", choices=("two",)))
        config = {
            **_config(claude=claude, oa=openai),
            "aliases": {"smart": ["claude/claude-sonnet-4-5", "oa/gpt-4o"]},
        }
        async with llmx.Client(config) as client:
            answer = await client.complete(model="smart", prompt="x", n=2)
    assert claude.model_requests == []  # refused before sending
    assert answer.provider == "oa"
    assert [c.text for c in answer.choices] == ["one", "two"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_logprobs_fall_back_from_anthropic_to_gemini_and_the_responses_api(
    streamed: bool,
) -> None:
    """An alias over Anthropic (no logprobs: refused before sending), Gemini and the
    Responses API: Gemini answers with its logprobs; when Gemini fails, the Responses
    API does. Both streamed and not."""
    async with (
        FakeAnthropicServer(api_key="k") as claude,
        FakeGeminiServer(api_key="k") as gemini,
        FakeOpenAIServer(api_key="k") as openai,
    ):
        config = _config(claude=claude, gem=gemini)
        config["providers"]["resp"] = {
            "type": "openai-responses",
            "base_url": openai.base_url,
            "api_key": "k",
        }
        config["aliases"] = {
            "any": ["claude/claude-sonnet-4-5", "gem/gemini-2.5-flash", "resp/gpt-4o-mini"]
        }
        gemini.enqueue(Reply("ok"))
        async with llmx.Client(config) as client:

            async def ask() -> llmx.Response:
                if streamed:
                    return await client.stream(model="any", prompt="x", logprobs=True).collect()
                return await client.complete(model="any", prompt="x", logprobs=True)

            first = await ask()
            gemini.enqueue(ErrorReply(503))
            second = await ask()
    assert claude.model_requests == []
    assert (first.provider, second.provider) == ("gem", "resp")
    assert [t.token for t in first.logprobs or ()] == ["o", "k"]
    assert "".join(t.token for t in second.logprobs or ()) == second.text == "x"


async def test_streamed_logprobs_and_refusals() -> None:
    async with FakeOpenAIServer(api_key="k") as server:
        server.enqueue(Reply("Hi!", chunk_size=1))
        server.enqueue(Reply("", refusal="No.", chunk_size=2))
        async with llmx.Client(_config(oa=server)) as client:
            async with client.stream(model="oa/gpt-4o-mini", prompt="x", logprobs=True) as s:
                chunks = [c async for c in s]
            with_logprobs = s.response
            async with client.stream(model="oa/gpt-4o-mini", prompt="x") as s:
                refused_chunks = [c async for c in s]
            refused = s.response
            pieces = [p async for p in client.stream(model="oa/gpt-4o-mini", prompt="x").text()]
    kinds = [type(c).__name__ for c in chunks]
    assert kinds == ["TextDelta", "LogprobsDelta"] * 3 + ["StreamEnd"]
    assert with_logprobs is not None
    assert [t.token for t in with_logprobs.logprobs or ()] == ["H", "i", "!"]
    assert [c for c in refused_chunks if type(c) is RefusalDelta] == [
        RefusalDelta("No"),
        RefusalDelta("."),
    ]
    assert refused is not None
    assert (refused.refusal, refused.text, refused.finish_reason) == (
        "No.",
        "No.",
        "content_filter",
    )
    assert pieces == ["x"]  # the fake echoes the prompt when nothing is queued
    assert not any(type(c) is LogprobsDelta for c in refused_chunks)


async def test_a_whole_refusal_keeps_its_text_and_reason() -> None:
    async with FakeOpenAIServer(api_key="k") as server:
        server.enqueue(Reply("", refusal="I won't."))
        async with llmx.Client(_config(oa=server)) as client:
            answer = await client.complete(model="oa/gpt-4o-mini", prompt="x")
    assert answer.text == answer.refusal == "I won't."
    assert answer.finish_reason == "content_filter"
    assert answer.choices == (llmx.types.Choice(0, "I won't.", (), "content_filter", "I won't."),)


# -- Anthropic: refusal and pause; it refuses n and logprobs (Gemini takes both) ------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_anthropic_refusal_and_pause(streamed: bool) -> None:
    async with FakeAnthropicServer(api_key="k") as server:
        server.enqueue(Reply("", refusal="Sorry"))
        server.enqueue(Reply("Searching", finish_reason="pause"))
        server.enqueue(Reply("Done"))
        async with llmx.Client(_config(claude=server)) as client:

            async def ask(messages: Any) -> llmx.Response:
                model = "claude/claude-sonnet-4-5"
                if streamed:
                    return await client.stream(model=model, messages=messages).collect()
                return await client.complete(model=model, messages=messages)

            refused = await ask("x")
            paused = await ask("Look it up")
            conversation = [llmx.Message.user("Look it up"), paused.message]
            done = await ask(conversation)
    assert (refused.finish_reason, refused.refusal, refused.text) == ("content_filter", "", "Sorry")
    assert paused.finish_reason == "pause"
    assert paused.refusal is None
    continued = server.model_requests[2].json["messages"]
    assert continued[-1] == {"role": "assistant", "content": "Searching"}
    assert done.text == "Done"
    assert done.finish_reason == "stop"


@pytest.mark.parametrize("options", [{"n": 2}, {"logprobs": True}, {"top_logprobs": 3}], ids=str)
async def test_anthropic_refuses_before_sending(options: dict[str, Any]) -> None:
    # Gemini maps n to candidateCount and logprobs to responseLogprobs
    # (plugins/llmx-provider-gemini/tests/test_gemini_logprobs.py).
    models = ["claude/claude-sonnet-4-5"]
    async with (
        FakeAnthropicServer(api_key="k") as claude,
        FakeGeminiServer(api_key="k") as gemini,
        llmx.Client(_config(claude=claude, gem=gemini)) as client,
    ):
        for model in models:
            with pytest.raises(llmx.UnsupportedFeatureError) as info:
                await client.complete(model=model, prompt="x", **options)
            assert info.value.feature == ("n" if "n" in options else "logprobs")
            assert info.value.provider == model.split("/")[0]
            assert info.value.model == model.split("/")[1]
    assert claude.model_requests == []
    assert gemini.model_requests == []


async def test_gemini_candidate_count() -> None:
    async with FakeGeminiServer(api_key="k") as server:
        server.enqueue(Reply("one", choices=("two",), usage=(5, 4)))
        async with llmx.Client(_config(gem=server)) as client:
            answer = await client.complete(model="gem/gemini-2.5-flash", prompt="x", n=2)
        body = server.model_requests[0].json
    # streamed: tests/test_choices_streamed.py
    vendor_validator("gemini", "official").check(
        "generativelanguage.models.generateContent", "post", body
    )
    assert body["generationConfig"]["candidateCount"] == 2
    assert [c.text for c in answer.choices] == ["one", "two"]
    assert answer.text == "one"
    assert answer.usage == llmx.Usage(5, 4)


def test_request_fields_validate() -> None:
    assert llmx.Request("a/b", "x", n=1).n is None  # one answer is the default request
    with pytest.raises(ValueError, match="n=0"):
        llmx.Request("a/b", "x", n=0)
    with pytest.raises(ValueError, match="top_logprobs=21"):
        llmx.Request("a/b", "x", top_logprobs=21)
    assert llmx.Request("a/b", "x", n=3, logprobs=True).with_model("c/d").n == 3


def test_token_logprob_is_a_value() -> None:
    token = TokenLogprob("a", -0.5, (97,), (TokenLogprob("b", -1.0),))
    assert token == TokenLogprob("a", -0.5, (97,), (TokenLogprob("b", -1.0),))
    assert hash(token) == hash(TokenLogprob("a", -0.5, (97,), (TokenLogprob("b", -1.0),)))
    assert re.search("token='a'", repr(token))

"""``n > 1`` streamed (issue 15, item 7; docs/features/choices-logprobs-and-stop-reasons.md):
OpenAI/Azure chat and Gemini stream every answer, interleaved as the vendors send them;
answer 0's chunks are plain, the others' ``llmx.types.ChoiceDelta``; ``stream.response``
equals the whole answer; through the cache (a hit replays every answer), a fallback (a
candidate that refuses ``n`` is skipped), stats and cost. The other providers refuse
before sending. Real providers, real HTTP, the fakes (which validate every body against
the vendor's schema); the folding of chunks is checked with hypothesis."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx._cache import decode_entry, encode_entry
from llmx._stream import ResponseBuilder, chunks_of
from llmx.testing import Reply
from llmx.testing.openapi import vendor_validator
from llmx.types import Choice, ChoiceDelta, LogprobsDelta, RefusalDelta, TokenLogprob
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer


def _config(**servers: Any) -> dict[str, Any]:
    types = {"oa": "openai", "claude": "anthropic", "gem": "gemini", "resp": "openai-responses"}
    return {
        "providers": {
            name: {"type": types[name], "base_url": s.base_url, "api_key": "k"}
            for name, s in servers.items()
        },
        "retry": {"attempts": 1},
    }


async def _stream(client: llmx.Client, **options: Any) -> tuple[list[Any], llmx.Response]:
    async with client.stream(prompt="x", **options) as stream:
        chunks = [c async for c in stream]
    assert stream.response is not None
    return chunks, stream.response


def _answer(chunks: list[Any], index: int) -> str:
    if index == 0:
        return "".join(c.text for c in chunks if type(c) is llmx.TextDelta)
    deltas = [c.delta for c in chunks if type(c) is ChoiceDelta and c.index == index]
    return "".join(d.text for d in deltas if type(d) is llmx.TextDelta)


# -- OpenAI ------------------------------------------------------------------------------


async def test_openai_streams_n_answers_interleaved_as_the_whole_answer() -> None:
    reply = Reply("Tom", choices=("Felix", "Luna"), usage=(7, 9), chunk_size=2)
    async with FakeOpenAIServer(api_key="k") as server:
        server.enqueue(reply, reply, reply, Reply("one"))
        async with llmx.Client(_config(oa=server)) as client:
            whole = await client.complete(model="oa/gpt-4o-mini", prompt="x", n=3)
            chunks, streamed = await _stream(client, model="oa/gpt-4o-mini", n=3)
            pieces = [
                p async for p in client.stream(model="oa/gpt-4o-mini", prompt="x", n=3).text()
            ]
            single, one = await _stream(client, model="oa/gpt-4o-mini")
            stats = client.stats().models
        bodies = [r.json for r in server.model_requests]
    for body in bodies:
        vendor_validator("openai", "official").check("/chat/completions", "post", body)
    assert bodies[1]["n"] == 3
    assert bodies[1]["stream"] is True
    assert "n" not in bodies[3]  # n=1: the body and the chunks of one answer, as before
    assert not any(type(c) is ChoiceDelta for c in single)
    assert one.choices == ()
    assert streamed.choices == whole.choices
    assert [c.text for c in streamed.choices] == ["Tom", "Felix", "Luna"]
    assert (streamed.text, streamed.finish_reason) == ("Tom", "stop")
    assert streamed.usage == whole.usage == llmx.Usage(7, 9)  # once, for the whole request
    assert streamed.cost == whole.cost
    assert streamed.cost is not None
    assert streamed.cost > 0
    assert [_answer(chunks, i) for i in range(3)] == ["Tom", "Felix", "Luna"]
    # interleaved: answer 1's first piece comes before answer 0's last
    first_other = next(i for i, c in enumerate(chunks) if type(c) is ChoiceDelta)
    last_plain = max(i for i, c in enumerate(chunks) if type(c) is llmx.TextDelta)
    assert first_other < last_plain
    ends = [(c.index, c.delta) for c in chunks if type(c) is ChoiceDelta]
    ends = [(i, d) for i, d in ends if type(d) is llmx.StreamEnd]
    assert sorted(ends) == [(1, llmx.StreamEnd("stop")), (2, llmx.StreamEnd("stop"))]
    assert type(chunks[-1]) is llmx.StreamEnd
    assert chunks[-1].usage == llmx.Usage(7, 9)
    assert "".join(pieces) == "Tom"  # text(): answer 0 only
    (model,) = stats
    assert model.successes == 4
    assert model.output_tokens == 9 * 3 + one.usage.output_tokens


async def test_openai_streamed_answers_keep_their_logprobs_refusals_and_tool_calls() -> None:
    call = llmx.ToolCall("call_1", "lookup", '{"q": "x"}')
    async with FakeOpenAIServer(api_key="k") as server:
        reply = Reply("ab", choices=("cde",), chunk_size=1)
        server.enqueue(reply, reply)
        refused = Reply("", refusal="No.", chunk_size=2)
        server.enqueue(refused, refused)
        calls = Reply("", tool_calls=(call,))
        server.enqueue(calls, calls)
        async with llmx.Client(_config(oa=server)) as client:
            ask: dict[str, Any] = {"model": "oa/gpt-4o-mini", "n": 2}
            whole = await client.complete(prompt="x", top_logprobs=1, **ask)
            chunks, streamed = await _stream(client, top_logprobs=1, **ask)
            whole_refusal = await client.complete(prompt="x", **ask)
            refusal_chunks, streamed_refusal = await _stream(client, **ask)
            whole_calls = await client.complete(prompt="x", tools=[_TOOL], **ask)
            _, streamed_calls = await _stream(client, tools=[_TOOL], **ask)
    # the fake's numbers are per piece: compare the tokens, and the rest whole
    assert [attrs.evolve(c, logprobs=None) for c in streamed.choices] == [
        attrs.evolve(c, logprobs=None) for c in whole.choices
    ]
    assert [[t.token for t in c.logprobs or ()] for c in streamed.choices] == [
        ["a", "b"],
        ["c", "d", "e"],
    ]
    assert any(type(c) is ChoiceDelta and type(c.delta) is LogprobsDelta for c in chunks)
    assert streamed_refusal.choices == whole_refusal.choices
    assert [c.refusal for c in streamed_refusal.choices] == ["No.", "No."]
    assert [c.finish_reason for c in streamed_refusal.choices] == ["content_filter"] * 2
    assert any(type(c) is ChoiceDelta and type(c.delta) is RefusalDelta for c in refusal_chunks)
    assert streamed_calls.choices == whole_calls.choices
    assert [c.tool_calls for c in streamed_calls.choices] == [(call,), (call,)]
    assert [c.finish_reason for c in streamed_calls.choices] == ["tool_calls"] * 2


_TOOL = llmx.Tool(
    "lookup", "Look it up", {"type": "object", "properties": {"q": {"type": "string"}}}
)


async def test_azure_streams_n_answers() -> None:
    async with FakeAzureOpenAIServer(api_key="k") as server:
        reply = Reply("one", choices=("two",))
        server.enqueue(reply, reply)
        config = {
            "providers": {"az": {"type": "azure", "base_url": server.base_url, "api_key": "k"}}
        }
        async with llmx.Client(config) as client:
            whole = await client.complete(model="az/gpt-4o", prompt="x", n=2)
            chunks, streamed = await _stream(client, model="az/gpt-4o", n=2)
        body = server.model_requests[1].json
    vendor_validator("openai", "azure").check(
        "/deployments/{deployment-id}/chat/completions", "post", body
    )
    assert body["n"] == 2
    assert streamed.choices == whole.choices
    assert [_answer(chunks, i) for i in range(2)] == ["one", "two"]


# -- Gemini ------------------------------------------------------------------------------


@pytest.mark.parametrize("logprobs", [False, True])
async def test_gemini_streams_candidates_as_the_whole_answer(logprobs: bool) -> None:
    reply = Reply("one", choices=("two", "three"), usage=(5, 4))
    async with FakeGeminiServer(api_key="k") as server:
        server.enqueue(reply, reply)
        async with llmx.Client(_config(gem=server)) as client:
            ask: dict[str, Any] = {"model": "gem/gemini-2.5-flash", "n": 3, "logprobs": logprobs}
            whole = await client.complete(prompt="x", **ask)
            chunks, streamed = await _stream(client, **ask)
        recorded = server.model_requests[1]
    assert recorded.path.endswith(":streamGenerateContent")
    vendor_validator("gemini", "official").check(
        "generativelanguage.models.streamGenerateContent", "post", recorded.json
    )
    assert recorded.json["generationConfig"]["candidateCount"] == 3
    assert [c.text for c in streamed.choices] == ["one", "two", "three"]
    assert [c.finish_reason for c in streamed.choices] == ["stop"] * 3
    assert [c.index for c in streamed.choices] == [0, 1, 2]
    assert streamed.usage == whole.usage == llmx.Usage(5, 4)
    assert (streamed.text, streamed.finish_reason) == (whole.text, whole.finish_reason)
    assert [_answer(chunks, i) for i in range(3)] == ["one", "two", "three"]
    if logprobs:  # the fake's tokens are per piece: compare the tokens, not the numbers
        tokens = [[t.token for t in c.logprobs or ()] for c in streamed.choices]
        assert tokens == [list("one"), list("two"), list("three")]
    else:
        assert streamed.choices == whole.choices


# -- the pipeline: cache, fallback, refusals elsewhere ---------------------------------------


async def test_a_cached_n_stream_replays_every_answer() -> None:
    async with FakeOpenAIServer(api_key="k") as server:
        server.enqueue(Reply("ab", choices=("cd", "ef"), usage=(10, 6)))
        config = {**_config(oa=server), "cache": {"backend": "memory"}}
        async with llmx.Client(config) as client:
            ask: dict[str, Any] = {"model": "oa/gpt-4o-mini", "n": 3}
            chunks, first = await _stream(client, **ask)
            again_chunks, again = await _stream(client, **ask)
            text = [p async for p in client.stream(prompt="x", **ask).text()]
    assert len(server.model_requests) == 1
    assert again.cached
    assert again.choices == first.choices
    assert [c.text for c in again.choices] == ["ab", "cd", "ef"]
    assert again.usage == first.usage == llmx.Usage(10, 6)
    assert again_chunks == chunks
    assert "".join(text) == "ab"


async def test_a_streamed_n_falls_back_past_providers_that_refuse_it() -> None:
    async with (
        FakeAnthropicServer(api_key="k") as claude,
        FakeOpenAIServer(api_key="k") as openai,
    ):
        openai.enqueue(Reply("one", choices=("two",)))
        config = {
            **_config(claude=claude, resp=openai, oa=openai),
            "aliases": {"any": ["claude/claude-sonnet-4-5", "resp/gpt-4o", "oa/gpt-4o"]},
        }
        async with llmx.Client(config) as client:
            chunks, answer = await _stream(client, model="any", n=2)
    assert claude.model_requests == []  # refused before sending
    assert len(openai.model_requests) == 1  # the Responses API refused too; chat answered
    assert answer.provider == "oa"
    assert [c.text for c in answer.choices] == ["one", "two"]
    assert [_answer(chunks, i) for i in range(2)] == ["one", "two"]


@pytest.mark.parametrize("model", ["claude/claude-sonnet-4-5", "resp/gpt-4o"])
async def test_other_providers_refuse_a_streamed_n_before_sending(model: str) -> None:
    async with (
        FakeAnthropicServer(api_key="k") as claude,
        FakeOpenAIServer(api_key="k") as openai,
        llmx.Client(_config(claude=claude, resp=openai)) as client,
    ):
        with pytest.raises(llmx.UnsupportedFeatureError) as info:
            await client.stream(model=model, prompt="x", n=2).collect()
    assert info.value.feature == "n"
    assert claude.model_requests == openai.model_requests == []


# -- folding chunks: property ----------------------------------------------------------------

_text = st.text(max_size=6)
_tokens = st.none() | st.lists(st.builds(TokenLogprob, _text, st.floats(-5, 0)), max_size=3)
_calls = st.lists(st.builds(llmx.ToolCall, st.just("c1"), st.just("f"), st.just("{}")), max_size=1)
_reason = st.sampled_from(["stop", "length", "tool_calls", "content_filter"])


@st.composite
def _responses(draw: st.DrawFn) -> llmx.Response:
    count = draw(st.integers(2, 4))
    choices = []
    for index in range(count):
        refusal = draw(st.none() | st.text(min_size=1, max_size=4))
        text = refusal if refusal is not None else draw(_text)
        tokens = draw(_tokens)
        choices.append(
            Choice(
                index,
                text,
                tuple(draw(_calls)),
                draw(_reason),
                refusal,
                None if tokens is None else tuple(tokens),
            )
        )
    first = choices[0]
    return llmx.Response(
        first.text,
        "m",
        "p",
        first.tool_calls,
        first.finish_reason,
        llmx.Usage(3, 4),
        choices=tuple(choices),
    )


@given(_responses())
async def test_chunks_of_n_answers_fold_back_and_survive_the_cache(
    response: llmx.Response,
) -> None:
    chunks = [c async for c in chunks_of(response)]
    builder = ResponseBuilder("m")
    for chunk in chunks:
        builder.add(chunk)
    rebuilt = builder.build(provider="p")
    assert rebuilt.choices == response.choices
    assert (rebuilt.text, rebuilt.finish_reason, rebuilt.usage) == (
        response.text,
        response.finish_reason,
        response.usage,
    )
    stored, stored_chunks = decode_entry(encode_entry(response, chunks))
    assert stored_chunks == chunks
    assert stored.choices == response.choices

"""Streaming: SSE parsing across arbitrary TCP read boundaries, tool-call deltas, usage,
early ends, mid-stream errors and cancellation, over real HTTP to the fake server.

The fake reproduces OpenAI's documented stream: ``chat.completion.chunk`` objects as
``data: {...}`` events, ``data: [DONE]`` last, tool calls streamed by ``index`` with id
and name in the first delta, and with ``stream_options.include_usage`` a final chunk
with ``"choices": []`` and the usage; a failure mid-stream arrives as a
``data: {"error": {...}}`` event (what openai-python's stream decoder raises on).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmx
import llmx.types
from llmx.testing import MidStreamError, RawReply, Reply
from llmx_openai.testing import FakeOpenAIServer

MODEL = "fake/gpt-4o-mini"

_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
)  # includes 2-, 3- and 4-byte UTF-8 characters
_calls = st.lists(
    st.tuples(
        st.from_regex(r"call_[a-z0-9]{1,8}", fullmatch=True),
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3).map(
            json.dumps
        ),
    ),
    max_size=2,
    unique_by=lambda c: c[0],
)


async def collect(stream: llmx.Stream) -> tuple[list[llmx.types.StreamChunk], llmx.Response]:
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert stream.response is not None
    return chunks, stream.response


async def drain(stream: llmx.Stream, into: list[llmx.types.StreamChunk]) -> None:
    """Consume ``stream`` into ``into`` (so chunks before an error are kept)."""
    async with stream:
        async for chunk in stream:
            into.append(chunk)  # noqa: PERF401 - keep what arrived before an error


def text_of(chunks: list[llmx.types.StreamChunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, llmx.TextDelta))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=_texts,
    calls=_calls,
    offsets=st.lists(st.integers(1, 1500), max_size=6),
    chunk_size=st.none() | st.integers(1, 7),
    line_ending=st.sampled_from(["\n", "\r\n", "\r"]),
)
async def test_streamed_equals_non_streamed_with_any_read_boundaries(
    client: llmx.Client,
    server: FakeOpenAIServer,
    text: str,
    calls: list[tuple[str, str, str]],
    offsets: list[int],
    chunk_size: int | None,
    line_ending: str,
) -> None:
    reply = Reply(text, tool_calls=calls, chunk_size=chunk_size, line_ending=line_ending)
    server.enqueue(
        reply,
        Reply(
            text, tool_calls=calls, split_at=offsets, chunk_size=chunk_size, line_ending=line_ending
        ),
    )
    whole = await client.complete(model=MODEL, prompt="same prompt")
    chunks, streamed = await collect(client.stream(model=MODEL, prompt="same prompt"))
    assert text_of(chunks) == streamed.text == whole.text == text
    assert streamed.tool_calls == whole.tool_calls == tuple(llmx.ToolCall(*c) for c in calls)
    assert streamed.usage == whole.usage
    assert streamed.finish_reason == whole.finish_reason
    assert isinstance(chunks[-1], llmx.StreamEnd)
    assert sum(isinstance(c, llmx.StreamEnd) for c in chunks) == 1


async def test_boundaries_inside_a_utf8_character_and_between_cr_and_lf(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    """Cut the byte stream inside '€' (3 bytes) and '🙂' (4 bytes) and inside every CRLF."""
    text = "price: 5€ 🙂"
    server.enqueue(Reply(text, id="chatcmpl-same", line_ending="\r\n"))
    await collect(client.stream(model=MODEL, prompt="x"))
    # Render the identical body through the server once more to find the offsets.
    body = server.requests[-1].json
    whole = b"".join(
        server.stream_events(Reply(text, id="chatcmpl-same", line_ending="\r\n"), body)
    )
    offsets = [
        whole.index("€".encode()) + 1,
        whole.index("€".encode()) + 2,
        whole.index("🙂".encode()) + 2,
    ]
    offsets += [m.start() + 1 for m in re.finditer(rb"\r\n", whole)]
    server.enqueue(Reply(text, id="chatcmpl-same", line_ending="\r\n", split_at=offsets))
    chunks, response = await collect(client.stream(model=MODEL, prompt="x"))
    assert text_of(chunks) == response.text == text


async def test_repeated_tool_call_ids_are_emitted_once(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    """Some OpenAI-compatible servers repeat id and name in every tool-call delta."""
    server.enqueue(
        Reply(
            tool_calls=[("call_9", "search", '{"query": "llmx"}')],
            chunk_size=4,
            repeat_tool_call_ids=True,
        )
    )
    chunks, response = await collect(client.stream(model=MODEL, prompt="x"))
    deltas = [c for c in chunks if isinstance(c, llmx.ToolCallDelta)]
    assert len(deltas) > 2
    assert [(d.id, d.name) for d in deltas if d.id or d.name] == [("call_9", "search")]
    assert response.tool_calls == (llmx.ToolCall("call_9", "search", '{"query": "llmx"}'),)
    assert response.finish_reason == "tool_calls"


async def test_usage_chunk_is_requested_and_mapped(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(Reply("hi", usage=(120, 30), cached_tokens=100, reasoning_tokens=12))
    _, response = await collect(client.stream(model=MODEL, prompt="x"))
    assert server.requests[-1].json["stream"] is True
    assert server.requests[-1].json["stream_options"] == {"include_usage": True}
    assert server.requests[-1].headers["accept"] == "text/event-stream"
    assert response.usage == llmx.Usage(120, 30, cache_read_tokens=100, reasoning_tokens=12)
    assert response.id is not None
    assert response.model == "gpt-4o-mini"


async def test_stream_usage_off(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(stream_usage=False)
    _, response = await collect(client.stream(model=MODEL, prompt="x"))
    assert "stream_options" not in server.requests[-1].json
    # No usage on the wire: estimated from the prompt and the text, and marked so.
    assert response.usage.estimated
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens == 1  # "x": one token by the estimate
    assert response.text == "x"


async def test_omitted_usage_chunk_and_done_are_tolerated(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    """A finish reason is a complete answer even if a server never sends [DONE]."""
    server.enqueue(Reply("complete", omit_usage=True, omit_done=True))
    _, response = await collect(client.stream(model=MODEL, prompt="x"))
    assert response.text == "complete"
    assert response.finish_reason == "stop"


async def test_stream_ending_without_finish_or_done_is_an_error(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(Reply("never finished", chunk_size=2, end_after=3))
    received: list[llmx.types.StreamChunk] = []
    with pytest.raises(llmx.ProviderConnectionError, match="stream ended early") as info:
        await drain(client.stream(model=MODEL, prompt="x"), received)
    assert text_of(received) == "neve"
    assert info.value.retryable
    assert info.value.provider == "fake"


async def test_connection_dropped_mid_stream(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("a" * 50, chunk_size=5, drop_after=700))
    received: list[llmx.types.StreamChunk] = []
    with pytest.raises(llmx.ProviderConnectionError, match="reading the stream") as info:
        await drain(client.stream(model=MODEL, prompt="x"), received)
    assert received  # some deltas arrived before the drop
    assert isinstance(info.value.__cause__, Exception)
    assert info.value.retryable


async def test_mid_stream_error_event(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(MidStreamError(after_events=3, text="partial answer here"))
    received: list[llmx.types.StreamChunk] = []
    with pytest.raises(llmx.ServerError, match="Sorry about that") as info:
        await drain(client.stream(model=MODEL, prompt="x"), received)
    assert text_of(received)
    assert info.value.retryable
    assert info.value.status is None
    assert info.value.code == "server_error"


async def test_mid_stream_context_error_and_vllm_style_code(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(
        MidStreamError(
            after_events=1,
            error={
                "message": "This model's maximum context length is 8192 tokens.",
                "type": "invalid_request_error",
            },
        ),
        MidStreamError(
            after_events=1,
            error={"object": "error", "message": "overloaded", "type": "Busy", "code": 503},
        ),
    )
    with pytest.raises(llmx.ContextWindowExceededError):
        await client.stream(model=MODEL, prompt="x").collect()
    with pytest.raises(llmx.ServerError) as info:
        await client.stream(model=MODEL, prompt="x").collect()
    assert info.value.status == 503


async def test_http_error_on_a_stream_request(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    from llmx.testing import ErrorReply

    server.enqueue(ErrorReply(429, headers={"retry-after": "7"}))
    with pytest.raises(llmx.RateLimitError) as info:
        await client.stream(model=MODEL, prompt="x").collect()
    assert info.value.retry_after == 7.0
    assert info.value.status == 429


async def test_malformed_event(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(RawReply(200, b'data: {"choices": [\n\n', content_type="text/event-stream"))
    with pytest.raises(llmx.MalformedResponseError, match="unexpected stream event") as info:
        await client.stream(model=MODEL, prompt="x").collect()
    assert info.value.provider == "fake"


async def test_json_answer_to_a_stream_request(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    """A server that ignores ``stream`` and answers a whole ``chat.completion``."""
    body = server.completion(Reply("whole answer"), {"model": "gpt-4o-mini", "messages": []})
    server.enqueue(RawReply(200, json.dumps(body)))
    chunks, response = await collect(client.stream(model=MODEL, prompt="x"))
    assert text_of(chunks) == response.text == "whole answer"
    assert response.finish_reason == "stop"


async def test_leaving_a_stream_early_drops_the_connection(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    """Breaking out closes the HTTP response at once: the server sees the client go."""
    server.enqueue(Reply("x" * 200, chunk_size=1, chunk_delay=0.01))  # ~2 s if read to the end
    started = time.perf_counter()
    async with client.stream(model=MODEL, prompt="x") as stream:
        async for chunk in stream:
            if isinstance(chunk, llmx.TextDelta):
                break
    await server.wait_for_disconnects(1, timeout=2)
    assert time.perf_counter() - started < 1.0
    assert (await client.complete(model=MODEL, prompt="still usable")).text == "still usable"


async def test_cancelling_the_consumer_drops_the_connection(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(Reply("y" * 200, chunk_size=1, chunk_delay=0.01))
    first = asyncio.Event()

    async def consume() -> None:
        async with client.stream(model=MODEL, prompt="x") as stream:
            async for _ in stream:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await server.wait_for_disconnects(1, timeout=2)

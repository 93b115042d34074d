"""llmx-otel end to end: a real ``llmx.Client`` against fake OpenAI servers on 127.0.0.1,
its spans and metrics read back from the SDK's in-memory exporter and from a real
OTLP/HTTP receiver (the ``telemetry`` fixture runs each test against both)."""

from __future__ import annotations

from typing import Any

import pytest
from otel_support import SpanRecord, Telemetry

import llmx
from llmx.testing import ErrorReply, Reply
from llmx_openai.testing import FakeOpenAIServer

FAST_RETRY = {"policy": "stamina", "attempts": 3, "wait_initial": 0.01, "wait_jitter": 0.0}
KEY = "sk-otel-canary-4f9e1d"


def provider(server: FakeOpenAIServer) -> dict[str, Any]:
    """A provider table for ``server``."""
    return {"type": "openai", "base_url": server.base_url, "api_key": KEY}


def client(config: dict[str, Any], listener: object) -> llmx.Client:
    """A client whose registry has ``listener`` registered (the ``otel-test`` plugin)."""
    registry = llmx.Registry()
    registry.register(listener, name="otel-test")
    return llmx.Client(config, registry=registry)


def tree(spans: list[SpanRecord]) -> tuple[SpanRecord, list[SpanRecord]]:
    """The one request span and its attempt spans (children, in start order); every
    span of the trace is one of them."""
    roots = [s for s in spans if s.parent_id is None]
    assert len(roots) == 1, spans
    (root,) = roots
    children = sorted((s for s in spans if s.parent_id == root.span_id), key=lambda s: s.start)
    assert len(children) + 1 == len(spans), "a span outside the request's tree"
    assert all(s.trace_id == root.trace_id for s in spans)
    for child in children:
        assert root.start <= child.start <= child.end <= root.end
    return root, children


async def test_success(telemetry: Telemetry) -> None:
    """One answer: a request span (INTERNAL) with one attempt span (CLIENT), the GenAI
    attributes on both, and the three metrics with the conventions' units and buckets."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(Reply("Hello.", usage=(12, 3), model="gpt-4o-mini-2024", id="chatcmpl-1"))
        config = {"providers": {"main": provider(server)}}
        async with client(config, telemetry.instrumentation()) as c:
            answer = await c.complete(model="main/gpt-4o-mini", prompt="Hi", max_tokens=50)
    root, (attempt,) = tree(telemetry.spans())
    assert root.name == "chat main/gpt-4o-mini"
    assert root.kind == "INTERNAL"
    assert root.status == "UNSET"
    assert root.attributes["gen_ai.operation.name"] == "chat"
    assert root.attributes["gen_ai.request.model"] == "main/gpt-4o-mini"
    assert root.attributes["gen_ai.request.max_tokens"] == 50
    assert root.attributes["gen_ai.provider.name"] == "openai"
    assert root.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert root.attributes["gen_ai.response.id"] == "chatcmpl-1"
    assert root.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert root.attributes["gen_ai.usage.input_tokens"] == 12
    assert root.attributes["gen_ai.usage.output_tokens"] == 3
    assert root.attributes["llmx.request_id"]
    assert root.attributes["llmx.cache_hit"] is False
    assert root.attributes["llmx.stream"] is False
    assert root.attributes["llmx.attempts"] == 1
    assert root.attributes["llmx.provider.instance"] == "main"
    assert "gen_ai.input.messages" not in root.attributes  # content capture is opt-in
    assert attempt.name == "chat gpt-4o-mini"
    assert attempt.kind == "CLIENT"
    assert attempt.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attempt.attributes["gen_ai.provider.name"] == "openai"
    assert attempt.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert attempt.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attempt.attributes["gen_ai.usage.output_tokens"] == 3
    assert attempt.attributes["llmx.attempt"] == 1
    assert attempt.attributes["llmx.attempt.kind"] == "first"
    assert "llmx.retry" not in attempt.attributes
    # the span lasted as long as llmx measured the attempt (to the microsecond)
    assert abs((attempt.end - attempt.start) / 1e9 - answer.latency) < 1e-3
    assert "traceparent" not in server.requests[-1].headers  # propagation is opt-in

    metrics = telemetry.metrics()
    units = telemetry.units()
    assert units["gen_ai.client.operation.duration"] == "s"
    assert units["gen_ai.client.token.usage"] == "{token}"
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert duration.bounds[:3] == (0.01, 0.02, 0.04)
    assert duration.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "main/gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024",
        "llmx.cache_hit": False,
    }
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]}
    assert (tokens["input"].sum, tokens["output"].sum) == (12, 3)
    assert tokens["input"].bounds[:3] == (1, 4, 16)
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics  # not a stream


async def test_retry_then_success(telemetry: Telemetry) -> None:
    """A 500 then an answer: two attempt spans, the failed one with error.type and an
    ERROR status, the second marked as a retry."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(ErrorReply(500, "boom"), Reply("ok"))
        config = {"providers": {"main": provider(server)}, "retry": FAST_RETRY}
        async with client(config, telemetry.instrumentation()) as c:
            await c.complete(model="main/m", prompt="Hi")
    root, (first, second) = tree(telemetry.spans())
    assert root.status == "UNSET"
    assert root.attributes["llmx.attempts"] == 2
    assert first.status == "ERROR"
    assert first.attributes["error.type"] == "ServerError"
    assert "boom" in first.description
    assert first.attributes["llmx.attempt.kind"] == "first"
    assert second.status == "UNSET"
    assert second.attributes["llmx.attempt.kind"] == "retry"
    assert second.attributes["llmx.retry"] is True
    assert second.attributes["llmx.attempt"] == 2
    assert "error.type" not in second.attributes


async def test_fallback(telemetry: Telemetry) -> None:
    """The first candidate fails, the second answers: the second attempt is a fallback
    on the other instance, and the request says which instance answered."""
    async with FakeOpenAIServer(api_key=KEY) as a, FakeOpenAIServer(api_key=KEY) as b:
        a.enqueue(ErrorReply(503, "overloaded"))
        b.enqueue(Reply("from b"))
        config = {
            "providers": {"a": provider(a), "b": provider(b)},
            "aliases": {"smart": {"candidates": ["a/m1", "b/m2"]}},
            "retry": {"policy": "none"},
        }
        async with client(config, telemetry.instrumentation()) as c:
            await c.complete(model="smart", prompt="Hi")
    root, (first, second) = tree(telemetry.spans())
    assert root.name == "chat smart"
    assert root.attributes["gen_ai.request.model"] == "smart"
    assert root.attributes["llmx.provider.instance"] == "b"
    assert first.attributes["llmx.provider.instance"] == "a"
    assert first.attributes["gen_ai.request.model"] == "m1"
    assert first.attributes["error.type"] == "ServerError"
    assert second.attributes["llmx.provider.instance"] == "b"
    assert second.attributes["llmx.attempt.kind"] == "fallback"
    assert second.attributes["llmx.fallback"] is True


async def test_hedge(telemetry: Telemetry) -> None:
    """The first candidate is slow, a hedge goes to the second and wins: three spans,
    the loser marked abandoned (not an error), the hedge marked as such."""
    async with FakeOpenAIServer(api_key=KEY) as slow, FakeOpenAIServer(api_key=KEY) as fast:
        slow.enqueue(Reply("slow", delay=2.0))
        fast.enqueue(Reply("fast"))
        config = {
            "providers": {"slow": provider(slow), "fast": provider(fast)},
            "aliases": {"smart": {"candidates": ["slow/m", "fast/m"], "strategy": "hedged"}},
            "routing": {"strategy": "hedged", "delay": 0.05, "min_delay": 0.01, "budget": 1.0},
        }
        async with client(config, telemetry.instrumentation()) as c:
            answer = await c.complete(model="smart", prompt="Hi")
    assert answer.text == "fast"
    root, (first, hedge) = tree(telemetry.spans())
    assert root.attributes["llmx.provider.instance"] == "fast"
    assert first.attributes["llmx.provider.instance"] == "slow"
    assert first.attributes["llmx.attempt.abandoned"]
    assert first.status == "UNSET"
    assert hedge.attributes["llmx.attempt.kind"] == "hedge"
    assert hedge.attributes["llmx.hedge"] is True
    assert hedge.attributes["llmx.attempt"] == 2  # numbered apart although they overlap
    assert hedge.attributes["gen_ai.response.finish_reasons"] == ("stop",)


async def test_stream(telemetry: Telemetry) -> None:
    """A stream: the request span says so, the attempt span carries the time to the
    first chunk, and the time-to-first-chunk histogram gets one point."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(Reply("one two three", chunk_delay=0.02, usage=(5, 3)))
        config = {"providers": {"main": provider(server)}}
        async with client(config, telemetry.instrumentation()) as c:
            stream = c.stream(model="main/m", prompt="Hi")
            text = "".join([piece async for piece in stream.text()])
    assert text == "one two three"
    root, (attempt,) = tree(telemetry.spans())
    assert root.attributes["llmx.stream"] is True
    ttfc = attempt.attributes["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttfc < (attempt.end - attempt.start) / 1e9
    assert root.attributes["gen_ai.response.time_to_first_chunk"] == ttfc
    assert root.attributes["gen_ai.usage.output_tokens"] == 3
    (point,) = telemetry.metrics()["gen_ai.client.operation.time_to_first_chunk"]
    assert point.count == 1
    assert point.sum == pytest.approx(ttfc)
    assert telemetry.units()["gen_ai.client.operation.time_to_first_chunk"] == "s"


async def test_cache_hit(telemetry: Telemetry) -> None:
    """The second identical request is answered from the cache: its span says
    ``llmx.cache_hit`` and has no attempt child; no tokens are counted for it."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(Reply("cached answer", usage=(7, 2)))
        config = {"providers": {"main": provider(server)}, "cache": {"backend": "memory"}}
        async with client(config, telemetry.instrumentation()) as c:
            await c.complete(model="main/m", prompt="Hi", temperature=0)
            hit = await c.complete(model="main/m", prompt="Hi", temperature=0)
    assert hit.cached
    assert len(server.model_requests) == 1
    spans = telemetry.spans()
    hits = [s for s in spans if s.attributes.get("llmx.cache_hit") is True]
    (hit_span,) = hits
    assert hit_span.parent_id is None
    assert [s for s in spans if s.parent_id == hit_span.span_id] == []
    assert hit_span.attributes["llmx.attempts"] == 0
    assert hit_span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    metrics = telemetry.metrics()
    durations = {
        p.attributes["llmx.cache_hit"]: p.count for p in metrics["gen_ai.client.operation.duration"]
    }
    assert durations == {False: 1, True: 1}
    input_points = [
        p
        for p in metrics["gen_ai.client.token.usage"]
        if p.attributes["gen_ai.token.type"] == "input"
    ]
    assert sum(p.count for p in input_points) == 1  # the miss only


async def test_failure(telemetry: Telemetry) -> None:
    """A request that fails: the request span and its attempt's have an ERROR status
    and error.type; the duration metric records the error type."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(ErrorReply(400, "bad request: messages too long"))
        config = {"providers": {"main": provider(server)}}
        async with client(config, telemetry.instrumentation()) as c:
            with pytest.raises(llmx.BadRequestError):
                await c.complete(model="main/m", prompt="Hi")
    root, (attempt,) = tree(telemetry.spans())
    assert root.status == "ERROR"
    assert root.attributes["error.type"] == "BadRequestError"
    assert root.attributes["gen_ai.provider.name"] == "openai"
    assert "messages too long" in root.description
    assert attempt.status == "ERROR"
    assert attempt.attributes["error.type"] == "BadRequestError"
    (duration,) = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "BadRequestError"
    assert "gen_ai.client.token.usage" not in telemetry.metrics()


async def test_trace_context_propagation(telemetry: Telemetry) -> None:
    """With ``propagate=True`` each attempt's HTTP request carries a W3C ``traceparent``
    naming that attempt's span; the provider's own headers are unchanged."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(ErrorReply(500, "boom"), Reply("ok"))
        config = {"providers": {"main": provider(server)}, "retry": FAST_RETRY}
        async with client(config, telemetry.instrumentation(propagate=True)) as c:
            await c.complete(model="main/m", prompt="Hi")
    _, attempts = tree(telemetry.spans())
    sent = [r.headers for r in server.model_requests]
    assert len(sent) == len(attempts) == 2
    for headers, span in zip(sent, attempts, strict=True):
        version, trace_id, span_id, flags = headers["traceparent"].split("-")
        assert version == "00"
        assert int(flags, 16) & 1  # sampled
        assert int(trace_id, 16) == span.trace_id
        assert int(span_id, 16) == span.span_id
        assert headers["authorization"] == f"Bearer {KEY}"


async def test_content_capture_is_opt_in_and_redacted(telemetry: Telemetry) -> None:
    """``capture_content=True`` records the messages and the answer in the conventions'
    shape; an API key llmx knows is replaced by ``***`` wherever it appears."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(Reply(f"echo {KEY}"))
        config = {"providers": {"main": provider(server)}}
        async with client(config, telemetry.instrumentation(capture_content=True)) as c:
            await c.complete(model="main/m", prompt=f"my key is {KEY}", system="Be brief.")
    spans = telemetry.spans()
    root, _ = tree(spans)
    inputs = root.attributes["gen_ai.input.messages"]
    outputs = root.attributes["gen_ai.output.messages"]
    assert '"role":"system","parts":[{"type":"text","content":"Be brief."}]' in inputs
    assert "my key is ***" in inputs
    assert '"finish_reason":"stop"' in outputs
    assert "echo ***" in outputs
    assert all(KEY not in repr(s) for s in spans)


async def test_captured_media_are_named_never_included(telemetry: Telemetry) -> None:
    """An image in a captured message is recorded as ``{"type": "image"}``: its bytes
    never reach a span."""
    pixel = b"\x89PNG-canary-bytes"
    message = llmx.Message(
        "user", [llmx.Text("What is this?"), llmx.Image(data=pixel, media_type="image/png")]
    )
    async with FakeOpenAIServer(api_key=KEY) as server:
        config = {"providers": {"main": provider(server)}}
        async with client(config, telemetry.instrumentation(capture_content=True)) as c:
            await c.complete(model="main/m", messages=[message])
    root, _ = tree(telemetry.spans())
    inputs = root.attributes["gen_ai.input.messages"]
    assert '{"type":"text","content":"What is this?"},{"type":"image"}' in inputs
    assert "canary" not in inputs
    assert "iVBOR" not in inputs

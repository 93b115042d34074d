"""The engine's one-attempt model: whole answers and streams end each attempt exactly
once (succeeded, failed or abandoned) with the same accounting, streams hedge until
their first chunk, a stream's usage is never a silent zero, and an idle watchdog
guards a stream without charging the caller's own pauses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import llmx
import llmx.types
from llmx.plugin import ProviderContext, Register, hookimpl

from core_support import FailAfter, FlexPlugin, Sleep, flex_client

TWO = {
    "providers": {
        "a": {"type": "flex", "priority": 1},
        "b": {"type": "flex", "priority": 2},
    },
    "aliases": {"smart": ["a/m", "b/m"]},
}


class AttemptLog:
    """A plugin that records every AttemptEnd event."""

    def __init__(self) -> None:
        self.ends: list[Any] = []

    @hookimpl
    def llmx_attempt_end(self, event: Any) -> None:
        self.ends.append(event)


def registry_with(*plugins: Any) -> llmx.Registry:
    import importlib_metadata

    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    for i, plugin in enumerate(plugins):
        registry.register(plugin, name=f"extra{i}")
    return registry


async def drain(stream: llmx.Stream, into: list[llmx.types.StreamChunk]) -> None:
    async for chunk in stream:
        into.append(chunk)  # noqa: PERF401 - we want what arrived before an error


# -- a stream that fails after its first chunk ------------------------------------------------


async def test_mid_stream_failure_carries_attempts_and_ttft() -> None:
    """The typed error names the attempt it came from, and the stats show the TTFT of
    the chunks that did arrive (one attempt object for both modes)."""
    plugin = FlexPlugin()
    plugin.scripts["a"] = [FailAfter(2, llmx.ProviderConnectionError("cut", provider="a"))]
    log = AttemptLog()
    async with flex_client(plugin, TWO, registry=registry_with(log)) as client:
        got: list[llmx.types.StreamChunk] = []
        with pytest.raises(llmx.ProviderConnectionError) as info:
            await drain(client.stream(model="a/m", prompt="w1 w2 w3"), got)
        (stats,) = client.stats().for_instance("a")
        assert client.stats().instances["a"].in_flight == 0
    assert len(got) == 2
    (attempt,) = info.value.attempts
    assert (attempt.provider, attempt.error_type) == ("a", "ProviderConnectionError")
    assert stats.ttft is not None
    assert stats.ttft.count == 1
    assert stats.errors == {"ProviderConnectionError": 1}
    assert stats.successes == 0
    (end,) = log.ends
    assert isinstance(end.error, llmx.ProviderConnectionError)
    assert end.ttft is not None


async def test_every_attempt_ends_once_in_both_modes() -> None:
    """Retry then fallback: one AttemptEnd per attempt record, whole and streamed."""
    for stream in (False, True):
        plugin = FlexPlugin()
        plugin.scripts["a"] = [llmx.ServerError("down", provider="a", status=503)] * 3
        log = AttemptLog()
        cfg = {**TWO, "retry": {"attempts": 2, "wait_initial": 0, "wait_jitter": 0}}
        async with flex_client(plugin, cfg, registry=registry_with(log)) as client:
            if stream:
                reply = await client.stream(model="smart", prompt="x").collect()
            else:
                reply = await client.complete(model="smart", prompt="x")
            stats = client.stats()
        assert reply.provider == "b"
        assert [(a.provider, a.error_type) for a in reply.attempts] == [
            ("a", "ServerError"),
            ("a", "ServerError"),
            ("b", None),
        ]
        assert [(e.provider, e.attempt) for e in log.ends] == [("a", 1), ("a", 2), ("b", 3)]
        (a_stats,) = stats.for_instance("a")
        assert (a_stats.requests, a_stats.retries, a_stats.failures) == (2, 1, 2)
        assert stats.instances["a"].in_flight == 0
        assert stats.instances["b"].in_flight == 0


# -- usage the server never reported -----------------------------------------------------------


class NoUsageProvider:
    """Streams its answer with no usage at all (as llama.cpp's server does)."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    async def complete(self, request: llmx.Request) -> llmx.Response:
        return llmx.Response("unused", request.model, self.ctx.instance)

    async def stream(self, request: llmx.Request) -> AsyncIterator[llmx.types.StreamChunk]:
        yield llmx.TextDelta("twelve chars")
        yield llmx.StreamEnd("stop", None, request.model)

    def model_info(self, model: str) -> llmx.ModelInfo:
        return llmx.ModelInfo(model, input_price=1.0, output_price=2.0)


class NoUsagePlugin:
    @hookimpl
    def llmx_register_providers(self, register: Register) -> None:
        register("nousage", lambda ctx: NoUsageProvider(ctx))


async def test_unreported_stream_usage_is_estimated_and_marked() -> None:
    config = {"providers": {"n": {"type": "nousage"}}}
    async with llmx.Client(config, registry=registry_with(NoUsagePlugin())) as client:
        response = await client.stream(model="n/m", prompt="a prompt of some length").collect()
        (stats,) = client.stats().for_instance("n")
    assert response.usage.estimated
    assert response.usage.output_tokens == 3  # 12 characters, ~4 per token
    assert response.usage.input_tokens > 0
    assert response.cost is not None
    assert response.cost > 0
    assert stats.estimated_usage == 1
    assert stats.output_tokens == 3


# -- hedged streams ------------------------------------------------------------------------------


def hedged(delay: float = 0.05) -> dict[str, Any]:
    return {
        **TWO,
        "aliases": {"smart": {"candidates": ["a/m", "b/m"], "strategy": "hedged"}},
        "routing": {"strategy": "hedged", "base": "priority", "delay": delay, "budget": 1.0},
    }


async def test_stream_hedges_until_the_first_chunk() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(1.0)  # no first chunk for a second
    async with flex_client(plugin, hedged()) as client:
        started = time.monotonic()
        response = await client.stream(model="smart", prompt="x y").collect()
        elapsed = time.monotonic() - started
        stats = client.stats()
    assert response.provider == "b"
    assert response.text == "b:x y"
    assert elapsed < 0.5
    (a_stats,) = stats.for_instance("a")
    assert a_stats.abandoned_attempts == 1
    assert stats.instances["a"].in_flight == 0
    assert ("a", "Abandoned") in [(a.provider, a.error_type) for a in response.attempts]


async def test_stream_not_hedged_once_the_first_chunk_arrived() -> None:
    """After its first chunk a stream is committed: a slow rest is not hedged."""
    plugin = FlexPlugin()
    plugin.scripts["a"] = [FailAfter(1, stall=0.2)]
    async with flex_client(plugin, hedged(delay=0.05)) as client:
        response = await client.stream(model="smart", prompt="x y").collect()
    assert response.provider == "a"
    assert plugin.calls_to("b") == 0


# -- the idle watchdog ---------------------------------------------------------------------------


async def test_idle_timeout_fires_on_silence_but_not_on_a_slow_reader() -> None:
    cfg = {"providers": {"a": {"type": "flex", "idle_timeout": 0.1, "retry": {"attempts": 1}}}}
    plugin = FlexPlugin()
    plugin.scripts["a"] = [FailAfter(1, stall=0.5)]
    async with flex_client(plugin, cfg) as client:
        with pytest.raises(llmx.ProviderTimeoutError, match="idle_timeout"):
            await client.stream(model="a/m", prompt="x y z").collect()
    plugin = FlexPlugin()
    async with flex_client(plugin, cfg) as client:
        words = []
        async with client.stream(model="a/m", prompt="w1 w2 w3 w4") as stream:
            async for chunk in stream:
                words.append(chunk)
                await asyncio.sleep(0.15)  # the reader's own pause is not the server's silence
        assert stream.response is not None
        assert stream.response.text == "a:w1 w2 w3 w4"


# -- declared contracts ----------------------------------------------------------------------------


class TwoArgStrategy:
    def __init__(self, *settings: Any) -> None:
        del settings

    def order(self, candidates: Any, request: Any) -> Any:
        return candidates


class BadStrategyPlugin:
    @hookimpl
    def llmx_register_routing_strategies(self, register: Register) -> None:
        register("twoarg", TwoArgStrategy)


async def test_a_strategy_without_view_is_refused_naming_its_plugin() -> None:
    plugin = FlexPlugin()
    registry = registry_with(BadStrategyPlugin())
    cfg = {**TWO, "aliases": {"smart": {"candidates": ["a/m", "b/m"], "strategy": "twoarg"}}}
    async with flex_client(plugin, cfg, registry=registry) as client:
        with pytest.raises(llmx.PluginError, match=r"twoarg.*order\(candidates, request, view\)"):
            await client.complete(model="smart", prompt="x")


async def test_a_stream_left_by_break_is_abandoned_and_closed() -> None:
    """``async for ... : break`` without ``async with``: the engine's generator is
    finalized by the event loop, which ends the attempt as abandoned."""
    plugin = FlexPlugin()
    async with flex_client(plugin, TWO) as client:
        async for _ in client.stream(model="a/m", prompt="w1 w2 w3"):
            break
        for _ in range(5):
            await asyncio.sleep(0)
        (stats,) = client.stats().for_instance("a")
        assert client.stats().instances["a"].in_flight == 0
    assert stats.abandoned_attempts == 1

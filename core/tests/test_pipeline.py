"""The resilient pipeline with in-process providers: retries, fallback, breakers,
deadlines, routing strategies, hedging, adaptive concurrency, stats and health.

Over real HTTP with injected faults: tests/reliability/test_pipeline_faults.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import stamina

import llmx
import llmx.types
from llmx.plugin import AttemptEnd, BreakerTransition, ProviderContext, Register, hookimpl

from core_support import FailAfter, FlexPlugin, Sleep, flex_client, server_error

THREE = {
    "providers": {
        "a": {"type": "flex", "priority": 1},
        "b": {"type": "flex", "priority": 2},
        "c": {"type": "flex", "priority": 3},
    },
    "aliases": {"smart": ["a/m", "b/m", "c/m"]},
}


def config(**changes: Any) -> dict[str, Any]:
    """THREE with top-level keys replaced."""
    return {**THREE, **changes}


# -- retries -------------------------------------------------------------------------------


async def test_retry_then_success_records_attempts() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [server_error("a"), server_error("a")]
    async with flex_client(plugin, THREE) as client:
        reply = await client.complete(model="a/m", prompt="hi")
        stats = client.stats()
    assert reply.text == "a:hi"
    assert [a.error_type for a in reply.attempts] == ["ServerError", "ServerError", None]
    (model_stats,) = stats.for_instance("a")
    assert (model_stats.requests, model_stats.retries, model_stats.successes) == (3, 2, 1)
    assert model_stats.errors == {"ServerError": 2}


@pytest.mark.parametrize(
    "error",
    [
        llmx.BadRequestError("bad", provider="a", status=400),
        llmx.AuthenticationError("no", provider="a", status=401),
        llmx.PermissionDeniedError("no", provider="a", status=403),
        llmx.ModelNotFoundError("no", provider="a", status=404),
        llmx.ContextWindowExceededError("long", provider="a", status=400),
    ],
)
async def test_non_retryable_errors_are_not_retried(error: llmx.ProviderError) -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [error]
    async with flex_client(plugin, THREE) as client:
        with pytest.raises(type(error)) as info:
            await client.complete(model="a/m", prompt="hi")
    assert plugin.calls_to("a") == 1
    assert len(info.value.attempts) == 1


@pytest.mark.parametrize(
    "error",
    [
        llmx.RateLimitError("slow", provider="a", status=429),
        llmx.ProviderTimeoutError("slow", provider="a", status=408),
        llmx.ConflictError("lock", provider="a", status=409),
        llmx.ServerError("overloaded", provider="a", status=529),
        llmx.ProviderConnectionError("reset", provider="a"),
        llmx.ProviderTimeoutError("timeout", provider="a"),
        llmx.MalformedResponseError("bad json", provider="a"),
    ],
)
async def test_retryable_errors_are_retried(error: llmx.ProviderError) -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [error]
    async with flex_client(plugin, THREE) as client:
        reply = await client.complete(model="a/m", prompt="x")
    assert reply.text == "a:x"
    assert plugin.calls_to("a") == 2


async def test_attempts_are_capped() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = lambda: server_error("a")
    cfg = config(retry={"policy": "stamina", "attempts": 2})
    async with flex_client(plugin, cfg) as client:
        with pytest.raises(llmx.ServerError) as info:
            await client.complete(model="a/m", prompt="x")
    assert plugin.calls_to("a") == 2
    assert len(info.value.attempts) == 2


async def test_retry_budget_caps_retries_during_an_outage() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = lambda: server_error("a")
    cfg = config(
        retry_budget={"ratio": 0.2, "min_retries": 2, "window": 60.0},
        breaker={"enabled": False},
    )
    async with flex_client(plugin, cfg) as client:
        for _ in range(50):
            with pytest.raises(llmx.ServerError):
                await client.complete(model="a/m", prompt="x")
        (stats,) = client.stats().for_instance("a")
    # 50 requests: retries <= 2 + 20% of 50 = 12, not 100 (3 attempts each)
    assert stats.retries <= 12
    assert stats.requests == 50 + stats.retries


async def test_real_backoff_waits() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [server_error("a"), server_error("a")]
    cfg = config(
        retry={"wait_initial": 0.2, "wait_jitter": 0.0, "wait_exp_base": 2.0, "wait_max": 5.0}
    )
    with stamina.set_testing(False):
        async with flex_client(plugin, cfg) as client:
            started = time.monotonic()
            await client.complete(model="a/m", prompt="x")
            elapsed = time.monotonic() - started
    gaps = [b[2] - a[2] for a, b in zip(plugin.calls, plugin.calls[1:], strict=False)]
    assert gaps[0] >= 0.19  # 0.2 s
    assert gaps[1] >= 0.39  # 0.4 s: exponential
    assert elapsed < 2.0


async def test_retry_after_is_honoured_with_real_waits() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [llmx.RateLimitError("slow", provider="a", status=429, retry_after=0.5)]
    with stamina.set_testing(False):
        async with flex_client(plugin, THREE) as client:
            await client.complete(model="a/m", prompt="x")
    assert plugin.calls[1][2] - plugin.calls[0][2] >= 0.49


async def test_retry_after_beyond_the_deadline_fails_fast() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [llmx.RateLimitError("slow", provider="a", status=429, retry_after=5.0)]
    async with flex_client(plugin, THREE) as client:
        started = time.monotonic()
        with pytest.raises(llmx.RateLimitError) as info:
            await client.complete(model="a/m", prompt="x", timeout=1.0)
    assert time.monotonic() - started < 0.5
    assert "Retry-After 5 s exceeds" in str(info.value)


async def test_429_cools_the_instance_down_while_others_serve() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [llmx.RateLimitError("slow", provider="a", status=429, retry_after=2.0)]
    async with flex_client(plugin, THREE) as client:
        first = await client.complete(model="smart", prompt="1")
        assert first.provider == "b"  # a asked to wait: the next candidate answered at once
        second = await client.complete(model="smart", prompt="2")
        assert second.provider == "b"  # a is still cooling down
        assert client.stats().instances["a"].cooldown_remaining > 1.5
    assert plugin.calls_to("a") == 1


# -- fallback -----------------------------------------------------------------------------


async def test_fallback_lists_every_attempt() -> None:
    plugin = FlexPlugin()
    for name in "abc":
        plugin.defaults[name] = lambda name=name: server_error(name)
    async with flex_client(plugin, config(retry={"attempts": 2})) as client:
        with pytest.raises(llmx.AllCandidatesFailedError) as info:
            await client.complete(model="smart", prompt="x")
    err = info.value
    assert [(a.provider, a.error_type) for a in err.attempts] == [
        ("a", "ServerError"), ("a", "ServerError"),
        ("b", "ServerError"), ("b", "ServerError"),
        ("c", "ServerError"), ("c", "ServerError"),
    ]  # fmt: skip
    assert "all candidates failed (3 tried, 6 attempts)" in str(err)
    assert all(isinstance(e, llmx.ServerError) for e in err.errors)


async def test_fallback_to_next_candidate() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = lambda: llmx.AuthenticationError("bad key", provider="a", status=401)
    async with flex_client(plugin, THREE) as client:
        reply = await client.complete(model="smart", prompt="x")
    assert reply.provider == "b"
    assert [(a.provider, a.error_type) for a in reply.attempts] == [
        ("a", "AuthenticationError"),
        ("b", None),
    ]


async def test_fail_fast_stops_on_bad_request_try_all_does_not() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = lambda: llmx.BadRequestError("bad", provider="a", status=400)
    async with flex_client(plugin, THREE) as client:
        with pytest.raises(llmx.AllCandidatesFailedError):
            await client.complete(model="smart", prompt="x")
    assert plugin.calls_to("b") == 0
    try_all = config(aliases={"smart": {"candidates": ["a/m", "b/m"], "fallback": "try_all"}})
    plugin2 = FlexPlugin()
    plugin2.defaults["a"] = lambda: llmx.BadRequestError("bad", provider="a", status=400)
    async with flex_client(plugin2, try_all) as client:
        assert (await client.complete(model="smart", prompt="x")).provider == "b"


async def test_context_window_fallback_by_model_info() -> None:
    plugin = FlexPlugin()
    plugin.models[("a", "m")] = llmx.ModelInfo("m", context_window=50)
    plugin.models[("b", "m")] = llmx.ModelInfo("m", context_window=100_000)
    async with flex_client(plugin, THREE) as client:
        short = await client.complete(model="smart", prompt="hi")
        long = await client.complete(model="smart", prompt="word " * 200)
    assert short.provider == "a"
    assert long.provider == "b"
    assert plugin.calls_to("a") == 1  # never sent the long prompt


async def test_context_window_fallback_from_provider_error() -> None:
    plugin = FlexPlugin()
    plugin.models[("a", "m")] = llmx.ModelInfo("m", context_window=8000)
    plugin.models[("b", "m")] = llmx.ModelInfo("m", context_window=4000)
    plugin.models[("c", "m")] = llmx.ModelInfo("m", context_window=128_000)
    plugin.scripts["a"] = [llmx.ContextWindowExceededError("too long", provider="a", status=400)]
    async with flex_client(plugin, THREE) as client:
        reply = await client.complete(model="smart", prompt="x")
    assert reply.provider == "c"  # b's window is smaller than a's: skipped
    assert plugin.calls_to("b") == 0


async def test_unsupported_feature_falls_back() -> None:
    plugin = FlexPlugin()
    plugin.models[("a", "m")] = llmx.ModelInfo("m", capabilities=["streaming"])
    plugin.models[("b", "m")] = llmx.ModelInfo("m", capabilities=["streaming", "vision"])
    image = llmx.Image(url="https://example.com/a.png")
    async with flex_client(plugin, THREE) as client:
        reply = await client.complete(model="smart", messages=[llmx.Message.user("see", image)])
    assert reply.provider == "b"
    assert plugin.calls_to("a") == 0


# -- circuit breaker -------------------------------------------------------------------------


class Transitions:
    """Records breaker transition events."""

    llmx_contract = "1.0"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def llmx_breaker_transition(self, event: BreakerTransition) -> None:
        self.seen.append((event.instance, event.old, event.new))


async def test_breaker_opens_skips_and_recovers() -> None:
    plugin = FlexPlugin()
    down = {"a": True}
    plugin.defaults["a"] = lambda: server_error("a") if down["a"] else "a back"
    cfg = config(
        breaker={"failure_threshold": 3, "cooldown": 0.3},
        retry={"attempts": 1},
    )
    registry = llmx.Registry(entry_points=[])
    transitions = Transitions()
    registry.register(transitions, name="transitions")
    from importlib_metadata import EntryPoint

    registry._given_entry_points = [
        EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    ]
    registry._plugins = None
    async with flex_client(plugin, cfg, registry) as client:
        for _ in range(3):
            assert (await client.complete(model="smart", prompt="x")).provider == "b"
        assert client.stats().instances["a"].breaker == "open"
        calls_before = plugin.calls_to("a")
        for _ in range(10):
            assert (await client.complete(model="smart", prompt="x")).provider == "b"
        assert plugin.calls_to("a") == calls_before  # open: skipped, not tried
        down["a"] = False
        await asyncio.sleep(0.35)
        reply = await client.complete(model="smart", prompt="x")
        assert reply.provider == "a"  # the half-open probe succeeded
        assert client.stats().instances["a"].breaker == "closed"
    assert transitions.seen == [
        ("a", "closed", "open"),
        ("a", "open", "half_open"),
        ("a", "half_open", "closed"),
    ]


async def test_half_open_admits_exactly_one_probe() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [server_error("a")] * 2 + [Sleep(0.2, "probe ok")]
    cfg = config(breaker={"failure_threshold": 2, "cooldown": 0.1}, retry={"attempts": 1})
    async with flex_client(plugin, cfg) as client:
        for _ in range(2):
            await client.complete(model="smart", prompt="x")
        await asyncio.sleep(0.15)
        replies = await asyncio.gather(
            *(client.complete(model="smart", prompt="x") for _ in range(5))
        )
    assert sorted(r.provider for r in replies) == ["a", "b", "b", "b", "b"]
    assert plugin.calls_to("a") == 3


async def test_breaker_opens_on_failure_rate() -> None:
    plugin = FlexPlugin()
    flip = iter(range(1000))
    plugin.defaults["a"] = lambda: server_error("a") if next(flip) % 2 else "ok"
    cfg = config(
        breaker={"failure_threshold": 100, "failure_rate": 0.5, "min_requests": 10, "window": 30},
        retry={"attempts": 1},
    )
    async with flex_client(plugin, cfg) as client:
        for _ in range(12):
            await client.complete(model="smart", prompt="x")
        assert client.stats().instances["a"].breaker == "open"


async def test_only_candidate_with_open_breaker_fails_fast() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = lambda: server_error("a")
    cfg = config(breaker={"failure_threshold": 1, "cooldown": 60}, retry={"attempts": 1})
    async with flex_client(plugin, cfg) as client:
        with pytest.raises(llmx.ServerError):
            await client.complete(model="a/m", prompt="x")
        with pytest.raises(llmx.CircuitOpenError, match="circuit open"):
            await client.complete(model="a/m", prompt="x")
    assert plugin.calls_to("a") == 1


# -- deadlines and timeouts -------------------------------------------------------------------


async def test_deadline_cuts_a_slow_attempt() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(5, "late")
    async with flex_client(plugin, THREE) as client:
        started = time.monotonic()
        with pytest.raises(llmx.DeadlineExceededError, match="deadline"):
            await client.complete(model="a/m", prompt="x", timeout=0.2)
        elapsed = time.monotonic() - started
        (stats,) = client.stats().for_instance("a")
    assert elapsed < 1.0
    assert stats.abandoned_attempts == 1


async def test_deadline_across_fallbacks() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(0.3, server_error("a"))
    plugin.defaults["b"] = Sleep(0.3, "b late")
    cfg = config(
        aliases={"smart": {"candidates": ["a/m", "b/m", "c/m"], "deadline": 0.45}},
        retry={"attempts": 1},
    )
    async with flex_client(plugin, cfg) as client:
        started = time.monotonic()
        with pytest.raises(llmx.AllCandidatesFailedError) as info:
            await client.complete(model="smart", prompt="x")
    assert time.monotonic() - started < 0.9
    assert plugin.calls_to("c") == 0
    assert "deadline" in str(info.value)


async def test_first_byte_timeout_falls_back_for_streams() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(2.0, "too slow")
    cfg = config(
        providers={
            "a": {"type": "flex", "priority": 1, "first_byte_timeout": 0.1},
            "b": {"type": "flex", "priority": 2},
            "c": {"type": "flex", "priority": 3},
        },
        retry={"attempts": 1},
    )
    async with flex_client(plugin, cfg) as client:
        started = time.monotonic()
        response = await client.stream(model="smart", prompt="fast answer").collect()
    assert response.provider == "b"
    assert time.monotonic() - started < 1.0
    assert response.attempts[0].error_type == "ProviderTimeoutError"


async def test_idle_timeout_between_chunks() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [FailAfter(1, stall=2.0)]
    cfg = {"providers": {"a": {"type": "flex", "idle_timeout": 0.1}}}
    chunks: list[llmx.types.StreamChunk] = []

    async def consume(stream: llmx.Stream) -> None:
        async for chunk in stream:
            chunks.append(chunk)  # noqa: PERF401 - we want what arrived before the error

    async with flex_client(plugin, cfg) as client:
        started = time.monotonic()
        with pytest.raises(llmx.ProviderTimeoutError, match="idle_timeout"):
            await consume(client.stream(model="a/m", prompt="one two"))
    assert time.monotonic() - started < 1.0
    assert chunks == [llmx.TextDelta("a:one")]  # the first chunk arrived, then silence


# -- streams fall back only before the first chunk ----------------------------------------------


async def test_stream_falls_back_before_first_chunk_only() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [server_error("a"), server_error("a"), server_error("a")]
    async with flex_client(plugin, THREE) as client:
        response = await client.stream(model="smart", prompt="x y").collect()
    assert response.provider == "b"
    plugin2 = FlexPlugin()
    plugin2.scripts["a"] = [FailAfter(1, llmx.ProviderConnectionError("cut", provider="a"))]
    got: list[llmx.types.StreamChunk] = []

    async def consume(stream: llmx.Stream) -> None:
        async for chunk in stream:
            got.append(chunk)  # noqa: PERF401 - we want what arrived before the error

    async with flex_client(plugin2, THREE) as client:
        with pytest.raises(llmx.ProviderConnectionError):
            await consume(client.stream(model="smart", prompt="x y z"))
    assert got == [llmx.TextDelta("a:x")]
    assert plugin2.calls_to("b") == 0  # never spliced with another candidate's answer


async def test_abandoned_stream_is_counted() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, THREE) as client:
        async with client.stream(model="a/m", prompt="w1 w2 w3") as stream:
            async for _ in stream:
                break
        (stats,) = client.stats().for_instance("a")
        assert client.stats().instances["a"].in_flight == 0
    assert stats.abandoned_attempts == 1


# -- routing strategies ------------------------------------------------------------------------


async def strategy_providers(strategy: str, n: int, **extra: Any) -> list[str]:
    plugin = FlexPlugin()
    cfg = config(
        aliases={"smart": {"candidates": ["a/m", "b/m", "c/m"], "strategy": strategy}},
        routing={"strategy": strategy, **extra},
    )
    async with flex_client(plugin, cfg) as client:
        return [(await client.complete(model="smart", prompt="x")).provider for _ in range(n)]


async def test_round_robin() -> None:
    assert await strategy_providers("round_robin", 6) == ["a", "b", "c", "a", "b", "c"]


async def test_weighted_random_follows_weights() -> None:
    plugin = FlexPlugin()
    cfg = {
        "providers": {
            "a": {"type": "flex", "weight": 8.0},
            "b": {"type": "flex", "weight": 1.0},
            "c": {"type": "flex", "weight": 1.0},
        },
        "aliases": {"smart": {"candidates": ["a/m", "b/m", "c/m"], "strategy": "weighted"}},
        "routing": {"strategy": "weighted", "seed": 7},
    }
    async with flex_client(plugin, cfg) as client:
        picks = [(await client.complete(model="smart", prompt="x")).provider for _ in range(400)]
    share = picks.count("a") / len(picks)
    assert 0.7 < share < 0.9


async def test_lowest_cost() -> None:
    plugin = FlexPlugin()
    plugin.models[("a", "m")] = llmx.ModelInfo("m", input_price=10.0, output_price=30.0)
    plugin.models[("b", "m")] = llmx.ModelInfo("m", input_price=0.1, output_price=0.4)
    plugin.models[("c", "m")] = llmx.ModelInfo("m", input_price=1.0, output_price=2.0)
    cfg = config(
        aliases={"smart": {"candidates": ["a/m", "b/m", "c/m"], "strategy": "lowest_cost"}}
    )
    async with flex_client(plugin, cfg) as client:
        reply = await client.complete(model="smart", prompt="x")
    assert reply.provider == "b"


async def test_lowest_latency_learns_and_explores_unknowns_first() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(0.03, "a")
    plugin.defaults["b"] = Sleep(0.001, "b")
    plugin.defaults["c"] = Sleep(0.06, "c")
    cfg = config(
        aliases={"smart": {"candidates": ["a/m", "b/m", "c/m"], "strategy": "lowest_latency"}},
        routing={"strategy": "lowest_latency", "explore": 0.0},
    )
    async with flex_client(plugin, cfg) as client:
        first = [(await client.complete(model="smart", prompt="x")).provider for _ in range(3)]
        later = [(await client.complete(model="smart", prompt="x")).provider for _ in range(5)]
    assert sorted(first) == ["a", "b", "c"]  # each measured once
    assert later == ["b"] * 5


async def test_least_busy() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(0.2, "a")
    plugin.defaults["b"] = Sleep(0.2, "b")
    plugin.defaults["c"] = Sleep(0.2, "c")
    cfg = config(aliases={"smart": {"candidates": ["a/m", "b/m", "c/m"], "strategy": "least_busy"}})
    async with flex_client(plugin, cfg) as client:
        replies = await asyncio.gather(
            *(client.complete(model="smart", prompt="x") for _ in range(6))
        )
    assert sorted(r.provider for r in replies) == ["a", "a", "b", "b", "c", "c"]


async def test_unknown_strategy_is_a_config_error() -> None:
    cfg = config(aliases={"smart": {"candidates": ["a/m"], "strategy": "fastest"}})
    # Found when the client is built (llmx._validate), not at the first request.
    with pytest.raises(
        llmx.ConfigError, match=r"routing strategy 'fastest'.*\$\.aliases\.smart\.strategy"
    ):
        flex_client(FlexPlugin(), cfg)


# -- hedging ------------------------------------------------------------------------------------


def hedge_config(delay: float = 0.05, budget: float = 1.0) -> dict[str, Any]:
    return config(
        aliases={"smart": {"candidates": ["a/m", "b/m"], "strategy": "hedged"}},
        routing={"strategy": "hedged", "base": "priority", "delay": delay, "budget": budget},
    )


async def test_hedge_takes_the_first_answer_and_cancels_the_other() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(1.0, "slow a")
    plugin.defaults["b"] = Sleep(0.01, "fast b")
    async with flex_client(plugin, hedge_config()) as client:
        started = time.monotonic()
        reply = await client.complete(model="smart", prompt="x")
        elapsed = time.monotonic() - started
        stats = client.stats()
    assert reply.provider == "b"
    assert elapsed < 0.5
    (a_stats,) = stats.for_instance("a")
    assert a_stats.abandoned_attempts == 1  # the cancelled primary may still be billed
    assert stats.instances["a"].in_flight == 0


async def test_hedge_not_sent_when_primary_is_fast() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, hedge_config(delay=0.2)) as client:
        for _ in range(5):
            assert (await client.complete(model="smart", prompt="x")).provider == "a"
    assert plugin.calls_to("b") == 0


async def test_hedge_budget_caps_hedges() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(0.05, "a")
    async with flex_client(plugin, hedge_config(delay=0.001, budget=0.1)) as client:
        for _ in range(40):
            await client.complete(model="smart", prompt="x")
    assert plugin.calls_to("b") <= 4  # at most 10% of 40 requests hedged


# -- adaptive concurrency ----------------------------------------------------------------------


async def test_adaptive_concurrency_shrinks_on_overload_and_grows_back() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [llmx.ServerError("overloaded", provider="a", status=529)] * 3
    cfg = {
        "providers": {"a": {"type": "flex", "adaptive_concurrency": True, "max_concurrent": 64}},
        "retry": {"policy": "none"},
        "breaker": {"enabled": False},
    }
    async with flex_client(plugin, cfg) as client:
        for _ in range(3):
            with pytest.raises(llmx.ServerError):
                await client.complete(model="a/m", prompt="x")
            await asyncio.sleep(0.06)  # decreases are spaced by a round trip
        shrunk = client.stats().instances["a"].concurrency_limit
        for _ in range(50):
            await client.complete(model="a/m", prompt="x")
        grown = client.stats().instances["a"].concurrency_limit
    assert shrunk is not None
    assert grown is not None
    assert shrunk <= 32 / 8
    assert grown > shrunk


async def test_adaptive_limit_queues_excess_requests() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(0.05, "ok")
    cfg = {"providers": {"a": {"type": "flex", "adaptive_concurrency": True, "max_concurrent": 2}}}
    peak = 0
    async with flex_client(plugin, cfg) as client:

        async def watch() -> None:
            nonlocal peak
            for _ in range(40):
                instance = client.stats().instances.get("a")
                if instance is not None:
                    peak = max(peak, instance.in_flight)
                await asyncio.sleep(0.01)

        watcher = asyncio.ensure_future(watch())
        await asyncio.gather(*(client.complete(model="a/m", prompt="x") for _ in range(8)))
        await watcher
    assert peak <= 2


# -- stats, events, health --------------------------------------------------------------------


async def test_stats_quantiles_and_cost() -> None:
    plugin = FlexPlugin()
    plugin.models[("a", "m")] = llmx.ModelInfo("m", input_price=1.0, output_price=2.0)
    async with flex_client(plugin, THREE) as client:
        for _ in range(30):
            await client.complete(model="a/m", prompt="x")
        await client.stream(model="a/m", prompt="x y").collect()
        stats = client.stats()
    (a,) = stats.for_instance("a")
    assert a.requests == a.successes == 31
    assert a.input_tokens == 310
    assert a.cost == pytest.approx(31 * (10 * 1.0 + 5 * 2.0) / 1e6)
    assert a.latency is not None
    assert a.latency.count == 31
    assert a.latency.p50 <= a.latency.p95 <= a.latency.p99 <= a.latency.max
    assert a.ttft is not None
    assert a.ttft.count == 1
    assert stats.total_cost() == pytest.approx(a.cost)


async def test_attempt_events_number_retries() -> None:
    class Recorder:
        llmx_contract = "1.0"

        def __init__(self) -> None:
            self.attempts: list[AttemptEnd] = []

        @hookimpl
        def llmx_attempt_end(self, event: AttemptEnd) -> None:
            self.attempts.append(event)

    plugin = FlexPlugin()
    plugin.scripts["a"] = [server_error("a")]
    from importlib_metadata import EntryPoint

    registry = llmx.Registry(
        entry_points=[EntryPoint(name="builtins", value="llmx._builtins", group="llmx")]
    )
    recorder = Recorder()
    registry.register(recorder, name="recorder")
    async with flex_client(plugin, THREE, registry) as client:
        await client.complete(model="a/m", prompt="x")
    assert [
        (e.attempt, type(e.error).__name__ if e.error else None) for e in recorder.attempts
    ] == [
        (1, "ServerError"),
        (2, None),
    ]
    assert len({e.request_id for e in recorder.attempts}) == 1


async def test_health_reports_each_instance() -> None:
    class Listing:
        llmx_contract = "1.0"

        @hookimpl
        def llmx_register_providers(self, register: Register) -> None:
            class Lister:
                def __init__(self, ctx: ProviderContext) -> None:
                    self.ctx = ctx

                async def complete(self, request: llmx.Request) -> llmx.Response:
                    raise AssertionError("not used")

                async def list_models(self) -> list[llmx.ModelInfo]:
                    if self.ctx.instance == "down":
                        raise llmx.ProviderConnectionError("refused", provider="down")
                    if self.ctx.instance == "slow":
                        await asyncio.sleep(5)
                    return [llmx.ModelInfo("m")]

            register("lister", Lister)

    plugin = FlexPlugin()
    cfg = {
        "providers": {
            "up": {"type": "lister"},
            "down": {"type": "lister"},
            "slow": {"type": "lister"},
            "flexy": {"type": "flex", "health_model": "m"},
            "blind": {"type": "flex"},
        }
    }
    from importlib_metadata import EntryPoint

    registry = llmx.Registry(
        entry_points=[EntryPoint(name="builtins", value="llmx._builtins", group="llmx")]
    )
    registry.register(Listing(), name="listing")
    async with flex_client(plugin, cfg, registry) as client:
        started = time.monotonic()
        report = {h.instance: h for h in await client.health(timeout=0.3)}
        assert time.monotonic() - started < 1.0  # concurrent, bounded
    assert report["up"].status == "ok"
    assert report["up"].probe == "list_models"
    assert report["down"].status == "error"
    assert "refused" in (report["down"].error or "")
    assert report["slow"].status == "timeout"
    assert report["flexy"].status == "ok"
    assert report["flexy"].probe == "complete(m)"
    assert report["blind"].status == "unknown"


async def test_model_info_follows_the_instance_mapping() -> None:
    """A deployment named differently from its model (Azure style) still gets the
    model's facts: cost and capability checks work through the mapping."""
    plugin = FlexPlugin()
    plugin.models["gpt-4o"] = llmx.ModelInfo("gpt-4o", input_price=2.5, output_price=10.0)
    cfg = {"providers": {"az": {"type": "flex", "models": {"gpt-4o": "prod-chat"}}}}
    async with flex_client(plugin, cfg) as client:
        reply = await client.complete(model="az/gpt-4o", prompt="x")
    assert reply.model == "prod-chat"
    assert reply.cost == pytest.approx((10 * 2.5 + 5 * 10.0) / 1e6)

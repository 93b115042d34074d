"""Reliability over real HTTP: the pipeline against fake OpenAI servers with injected faults.

The servers are ``llmx_openai.testing.FakeOpenAIServer`` instances on 127.0.0.1 with chaos
(``Faults``, ``Fault`` schedules, ``set_down``); the client is a real ``llmx.Client``
with the ``openai`` provider plugin. Figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
import stamina

import llmx
from llmx.plugin import AttemptEnd, BreakerTransition, hookimpl
from llmx.testing import Fault, Faults
from llmx_openai.testing import FakeOpenAIServer


def provider(server: FakeOpenAIServer, **extra: Any) -> dict[str, Any]:
    """A provider instance table for ``server``."""
    return {"type": "openai", "base_url": server.base_url, "api_key": "test-key", **extra}


class AttemptLog:
    """An event-hook plugin recording every attempt (instance, start, outcome)."""

    llmx_contract = "1.0"

    def __init__(self) -> None:
        self.attempts: list[AttemptEnd] = []
        self.transitions: list[tuple[str, str, str]] = []

    @hookimpl
    def llmx_attempt_end(self, event: AttemptEnd) -> None:
        self.attempts.append(event)

    @hookimpl
    def llmx_breaker_transition(self, event: BreakerTransition) -> None:
        self.transitions.append((event.instance, event.old, event.new))


def registry_with(plugin: object) -> llmx.Registry:
    """The installed plugins plus an in-process one."""
    registry = llmx.Registry()
    registry.register(plugin, name="attempt-log")
    return registry


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_outage_and_flaky_instance_lose_nothing() -> None:
    """2,000 requests at concurrency 100 through three instances: one fails 30 % of
    requests (500, 503, and 429 with Retry-After), one is down (refuses connections).
    Every request is answered exactly once, retries stay within the budget, the down
    instance's breaker opens and stops its traffic, and it recovers once the server is
    back."""
    log = AttemptLog()
    async with (
        FakeOpenAIServer() as healthy,
        FakeOpenAIServer() as flaky,
        FakeOpenAIServer() as down,
    ):
        flaky.chaos(Faults(p_error=0.3, statuses=(500, 503, 429), retry_after=0.05, seed=7))
        down.set_down(True)
        config = {
            "providers": {
                "healthy": provider(healthy),
                "flaky": provider(flaky),
                "down": provider(down),
            },
            "aliases": {
                "smart": {
                    "candidates": ["down/m", "flaky/m", "healthy/m"],
                    "strategy": "round_robin",
                }
            },
            "breaker": {"failure_threshold": 5, "cooldown": 1.0},
            "retry_budget": {"ratio": 0.2, "min_retries": 10, "window": 60},
        }
        async with llmx.Client(config, registry=registry_with(log)) as client:
            semaphore = asyncio.Semaphore(100)

            async def one(i: int) -> tuple[int, str]:
                async with semaphore:
                    reply = await client.complete(model="smart", prompt=f"request {i}")
                    return i, reply.text

            started = time.monotonic()
            results = await asyncio.gather(*(one(i) for i in range(2000)))
            elapsed = time.monotonic() - started
            stats = client.stats()
            down_calls_when_open = down.injected["down"]
            assert stats.instances["down"].breaker == "open"

            # nothing lost, nothing answered twice, every answer is its own request's
            assert len(results) == 2000
            assert all(text == f"request {i}" for i, text in results)
            assert Counter(i for i, _ in results) == Counter(range(2000))

            # the breaker stopped the traffic to the down instance: after it opened, only
            # the one-at-a-time half-open probes (one per 1 s cool-down) reach it
            assert down_calls_when_open < 100  # vs ~670 for its round-robin share without a breaker
            extra_started = time.monotonic()
            for i in range(200):
                await client.complete(model="smart", prompt=f"more {i}")
            probes = down.injected["down"] - down_calls_when_open
            assert probes <= (time.monotonic() - extra_started) / 1.0 + 1

            # retries stayed within the budget
            retries = sum(m.retries for m in stats.models)
            sent = sum(m.requests for m in stats.models)
            first_attempts = sent - retries
            per_instance_cap = 10 + 0.2 * first_attempts
            assert retries <= 3 * per_instance_cap
            for m in stats.models:
                assert m.retries <= 10 + 0.2 * (m.requests - m.retries) + 1

            # recovery: the server comes back, the half-open probe closes the breaker
            down.set_down(False)
            await asyncio.sleep(1.1)
            served = Counter()
            for i in range(30):
                served[(await client.complete(model="smart", prompt=f"after {i}")).provider] += 1
            assert client.stats().instances["down"].breaker == "closed"
            assert served["down"] >= 5

    print(
        f"\nreliability: 2000 requests in {elapsed:.2f} s ({2000 / elapsed:.0f} req/s), "
        f"{retries} retries of {sent} attempts; flaky injected {flaky.injected['error']} errors; "
        f"down instance saw {down_calls_when_open} connections before its breaker opened; "
        f"transitions {log.transitions}"
    )
    assert ("down", "closed", "open") in log.transitions
    assert ("down", "half_open", "closed") in log.transitions


async def test_hedging_cuts_the_tail() -> None:
    """An instance with a slow tail (5 % of requests stall 0.4 s): hedging after 50 ms
    to a second instance cuts p99, within a 10 % hedge budget."""

    async def run(hedged: bool) -> tuple[float, float, int]:
        async with FakeOpenAIServer() as slow_tail, FakeOpenAIServer() as backup:
            slow_tail.chaos(Faults(p_stall=0.05, stall_seconds=0.4, seed=3))
            strategy = "hedged" if hedged else "priority"
            config = {
                "providers": {
                    "primary": provider(slow_tail, priority=1),
                    "backup": provider(backup, priority=2),
                },
                "aliases": {
                    "smart": {"candidates": ["primary/m", "backup/m"], "strategy": strategy}
                },
                "routing": {
                    "strategy": strategy,
                    **({"delay": 0.05, "budget": 0.1} if hedged else {}),
                },
            }
            latencies = []
            async with llmx.Client(config) as client:
                for i in range(200):
                    t0 = time.perf_counter()
                    reply = await client.complete(model="smart", prompt=f"q{i}")
                    latencies.append(time.perf_counter() - t0)
                    assert reply.text == f"q{i}"
            return quantile(latencies, 0.5), quantile(latencies, 0.99), backup.request_count

    p50_plain, p99_plain, _ = await run(hedged=False)
    p50_hedged, p99_hedged, hedges = await run(hedged=True)
    print(
        f"\nhedging: without p50 {p50_plain * 1000:.1f} ms p99 {p99_plain * 1000:.1f} ms; "
        f"with p50 {p50_hedged * 1000:.1f} ms p99 {p99_hedged * 1000:.1f} ms; {hedges} hedges of 200"
    )
    assert p99_plain >= 0.35
    assert p99_hedged < p99_plain / 2
    assert hedges <= 20


async def test_retry_after_delays_that_instance_while_others_serve() -> None:
    """A 429 with Retry-After: 2 keeps that instance's next attempt at least 2 s away;
    the other candidate answers meanwhile."""
    log = AttemptLog()
    async with FakeOpenAIServer() as limited, FakeOpenAIServer() as other:
        limited.schedule([Fault.error(429, retry_after=2)])
        config = {
            "providers": {
                "limited": provider(limited, priority=1),
                "other": provider(other, priority=2),
            },
            "aliases": {"smart": ["limited/m", "other/m"]},
        }
        async with llmx.Client(config, registry=registry_with(log)) as client:
            served = []
            started = time.monotonic()
            while time.monotonic() - started < 3.0:
                served.append((await client.complete(model="smart", prompt="x")).provider)
                await asyncio.sleep(0.05)
    limited_starts = [a.started for a in log.attempts if a.provider == "limited"]
    assert len(limited_starts) >= 2
    assert limited_starts[1] - limited_starts[0] >= 2.0
    assert served[0] == "other"
    assert served.count("other") >= 10  # served while "limited" cooled down
    assert served[-1] == "limited"  # back after the wait


@pytest.mark.parametrize(
    "fault",
    [
        Fault.reset(),
        Fault.drop(),
        Fault.truncate(),
        Fault.malformed(),
        Fault.error(500),
        Fault.error(502),
        Fault.error(503),
        Fault.error(529),
        Fault.error(429),
    ],
    ids=lambda f: f"{f.kind}-{f.status}" if f.kind == "error" else f.kind,
)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_each_fault_is_retried_to_success(fault: Fault, streaming: bool) -> None:
    """Every transient fault before the answer is retried on the same instance; a
    stream cut after its first chunk reached the caller is surfaced, never retried
    (that would splice two answers)."""
    async with FakeOpenAIServer() as server:
        server.schedule([fault])
        async with llmx.Client({"providers": {"p": provider(server)}}) as client:
            if streaming and fault.kind in ("drop", "truncate"):
                got: list[str] = []

                async def read() -> None:
                    async for piece in client.stream(model="p/m", prompt="hello there").text():
                        got.append(piece)  # noqa: PERF401 - the pieces before the cut

                with pytest.raises(llmx.ProviderConnectionError):
                    await read()
                assert "".join(got) != "hello there"
                assert server.request_count == 1
                return
            if streaming:
                reply = await client.stream(model="p/m", prompt="hello there").collect()
            else:
                reply = await client.complete(model="p/m", prompt="hello there")
    assert reply.text == "hello there"
    assert len(reply.attempts) == 2
    assert reply.attempts[0].error_type is not None


async def test_stall_before_headers_hits_the_deadline_and_falls_back() -> None:
    async with FakeOpenAIServer() as stuck, FakeOpenAIServer() as fine:
        stuck.schedule([Fault.stall(3.0)])
        config = {
            "providers": {"stuck": provider(stuck, priority=1), "fine": provider(fine, priority=2)},
            "aliases": {"smart": ["stuck/m", "fine/m"]},
        }
        async with llmx.Client(config) as client:
            with stamina.set_testing(True, attempts=1):
                started = time.monotonic()
                with pytest.raises(llmx.DeadlineExceededError):
                    await client.complete(model="stuck/m", prompt="x", timeout=0.3)
                assert time.monotonic() - started < 1.0
            stuck.schedule([Fault.stall(3.0)])
            config_timeout = await client.stream(model="smart", prompt="y", timeout=5).collect()
            assert config_timeout.text == "y"


async def test_first_byte_timeout_over_http() -> None:
    async with FakeOpenAIServer() as stuck, FakeOpenAIServer() as fine:
        stuck.schedule([Fault.stall(3.0)] * 3)
        config = {
            "providers": {
                "stuck": provider(stuck, priority=1, first_byte_timeout=0.2),
                "fine": provider(fine, priority=2),
            },
            "aliases": {"smart": ["stuck/m", "fine/m"]},
            "retry": {"attempts": 1},
        }
        async with llmx.Client(config) as client:
            started = time.monotonic()
            reply = await client.stream(model="smart", prompt="quick").collect()
    assert reply.provider == "fine"
    assert time.monotonic() - started < 1.5
    assert reply.attempts[0].error_type == "ProviderTimeoutError"

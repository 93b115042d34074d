"""The guard around shared stores (issue 14, defect 5): a deadline per call that a
client library cannot stretch, a breaker that turns to local state and back, one log
line per transition, and the shared limiter's local stand-in at its share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import pytest

from llmx._errors import RateLimitError
from llmx._ratelimit import InstanceLimiter, SharedLimiter
from llmx._settings import LimitSettings, StoreSettings
from llmx._state import StoreGuard
from llmx.plugin import Bucket
from llmx.testing import scripted_client


async def _stubborn(seconds: float) -> str:
    """A call that swallows the first cancellation (as redis-py does while it finishes a
    read up to its socket_timeout)."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        await asyncio.sleep(seconds)
    return "late"


async def test_a_call_is_cut_at_the_deadline_even_if_it_ignores_the_cancel() -> None:
    guard = StoreGuard("cache", "test", StoreSettings(timeout=0.05))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await guard.call(_stubborn(1.0))
    assert time.monotonic() - started < 0.3
    assert guard.timeouts == 1
    assert await guard.call(asyncio.sleep(0, "ok")) == "ok"


async def test_degraded_after_failures_then_probed_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="llmx.store")
    healthy = False

    async def probe() -> None:
        if not healthy:
            raise ConnectionError("down")

    settings = StoreSettings(timeout=0.05, failures=2, probe_interval=0.05)
    guard = StoreGuard("limiter", "redis", settings, probe=probe)

    async def fail() -> None:
        raise ConnectionError("down")

    for _ in range(2):
        assert guard.allow()
        with pytest.raises(ConnectionError):
            await guard.call(fail())
    assert guard.degraded
    assert not guard.allow()  # local state; starts the background probe
    await asyncio.sleep(0.2)
    assert guard.degraded  # probes fail while the store is down
    healthy = True
    deadline = time.monotonic() + 2
    while guard.degraded:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert guard.allow()
    stats = guard.stats()
    assert (stats.transitions, stats.recoveries, stats.errors) == (2, 1, 2)
    assert stats.skipped >= 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "degraded" in lines[0]
    assert "recovered" in lines[1]
    await guard.aclose()


class _DeadBackend:
    """A shared limiter backend that is always down."""

    async def acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        raise ConnectionError("down")

    async def release(self, grant: str, buckets: Sequence[Bucket]) -> None:
        raise ConnectionError("down")


@pytest.mark.parametrize(("processes", "allowed"), [(1, 4), (2, 2), (8, 1)])
async def test_a_degraded_shared_limiter_enforces_its_share_locally(
    processes: int, allowed: int
) -> None:
    backend = _DeadBackend()
    shared = SharedLimiter("dead", StoreSettings(expected_processes=processes), backend=backend)
    limiter = InstanceLimiter("main", LimitSettings(rpm=4, max_wait=0), backend, shared=shared)
    from llmx._types import Message, Request

    request = Request(model="m", messages=(Message("user", "hi"),))
    granted = 0
    for _ in range(6):
        try:
            permit = await limiter.acquire("m", request, 10.0)
        except RateLimitError:
            continue
        granted += 1
        permit.release(None)
    assert granted == allowed
    assert limiter.stats().local_grants >= 6
    await limiter.aclose()


async def test_store_keys_in_the_config() -> None:
    config = {
        "cache": {"backend": "memory", "store_timeout": 0.02, "store_probe_interval": 0.5},
        "limiter": {"backend": "local", "expected_processes": 4, "store_failures": 5},
    }
    async with scripted_client(config=config) as client:
        cfg = client.config
        assert cfg.cache.store == StoreSettings(timeout=0.02, probe_interval=0.5)
        assert cfg.limiter.store == StoreSettings(failures=5, expected_processes=4)
        assert client.stats().stores == {}  # in-process backends: nothing guarded

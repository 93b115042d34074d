"""Client-side rate limits: config, the local backend's invariants, queueing, giving up."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx._ratelimit import CLIENT_LIMIT_CODE, LocalRateLimiter
from llmx._settings import LimitSettings
from llmx.plugin import Bucket

from core_support import FlexPlugin, Sleep, flex_client


def config(limits: dict[str, Any], **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "providers": {"a": {"type": "flex", "limits": limits}, "b": {"type": "flex"}},
        "retry": {"attempts": 1},
    }
    base.update(extra)
    return base


# -- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"rpm": -1}, "rpm must be a positive number @ $.providers.a.limits"),
        ({"rpmm": 3}, "extra fields found (rpmm) @ $.providers.a.limits"),
        ({"tpm": "lots"}, "$.providers.a.limits.tpm"),
        ({"max_concurrent": 0}, "max_concurrent must be at least 1"),
        ({"rpm": 6, "period": 5}, "raise period to at least 10"),
        ({"models": {"m": {"tpm": True}}}, "$.providers.a.limits.models"),
        ({"models": {"m": {"burst": 1}}}, "extra fields found (burst)"),
        ({"max_wait": -1}, "max_wait"),
    ],
)
def test_limit_config_errors_name_the_path(limits: dict[str, Any], expected: str) -> None:
    with pytest.raises(llmx.ConfigError) as info:
        flex_client(FlexPlugin(), config(limits))
    assert expected in str(info.value), str(info.value)


def test_limiter_backend_is_a_component() -> None:
    with pytest.raises(llmx.ConfigError, match=r"@ \$\.limiter\.backend"):
        flex_client(FlexPlugin(), config({"rpm": 60}, limiter={"backend": "nope"}))
    with pytest.raises(llmx.ConfigError, match=r"extra fields found \(url\) @ \$\.limiter"):
        flex_client(FlexPlugin(), config({"rpm": 60}, limiter={"url": "x"}))


# -- the local backend --------------------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.floats(0, 3, allow_nan=False),  # time passing before the request
        st.integers(1, 12),  # tokens it takes
        st.integers(0, 12),  # tokens it really used (the correction)
    ),
    min_size=1,
    max_size=40,
)


@given(steps, st.integers(5, 20), st.sampled_from([1.0, 2.5, 10.0]))
def test_a_window_never_holds_more_than_its_limit(
    steps: list[tuple[float, int, int]], limit: int, period: float
) -> None:
    """Whatever the arrivals and corrections: the units granted within any ``period``
    never exceed ``limit`` (counting corrected amounts), a refused request is told a
    wait after which it fits, and a request larger than the limit is told never."""
    now = [0.0]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    granted: list[tuple[float, float]] = []  # (time, amount as finally recorded)
    for i, (advance, amount, used) in enumerate(steps):
        now[0] += advance
        bucket = Bucket("a", "tpm", limit, period, float(amount))
        wait = limiter.try_acquire(f"g{i}", [bucket])
        if amount > limit:
            assert wait == math.inf
            continue
        if wait > 0:
            now[0] += wait
            assert limiter.try_acquire(f"g{i}", [bucket]) == 0.0
        recorded = float(min(used, limit))
        limiter.release_nowait(f"g{i}", [Bucket("a", "tpm", limit, period, recorded)])
        granted.append((now[0], recorded if recorded < amount else float(amount)))
        # the invariant, over every window ending at a grant
        end = now[0]
        assert sum(a for t, a in granted if end - period + 1e-6 < t <= end) <= limit + 1e-6


@given(st.lists(st.sampled_from(["acquire", "release", "wait"]), max_size=40), st.integers(1, 4))
def test_slots_never_exceed_their_limit(ops: list[str], limit: int) -> None:
    now = [0.0]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    bucket = Bucket("a", "concurrent", limit, 1000.0, 1, "slots")
    held: list[str] = []
    for i, op in enumerate(ops):
        if op == "acquire":
            if limiter.try_acquire(f"g{i}", [bucket]) == 0:
                held.append(f"g{i}")
        elif op == "release" and held:
            limiter.release_nowait(held.pop(0), [bucket])
        elif op == "wait":
            now[0] += 10
        assert len(held) <= limit
        assert limiter.usage("a", "concurrent") == len(held)
    now[0] += 1001  # holders that vanished lose their slots after the lease
    assert limiter.try_acquire("late", [bucket]) == 0


def test_all_or_nothing() -> None:
    limiter = LocalRateLimiter(clock=lambda: 0.0)
    rpm = Bucket("a", "rpm", 5, 60)
    tpm = Bucket("a", "tpm", 100, 60, 80)
    assert limiter.try_acquire("g1", [rpm, tpm]) == 0
    assert limiter.try_acquire("g2", [rpm, tpm]) > 0  # tokens do not fit...
    assert limiter.usage("a", "rpm") == 1  # ...so no request unit was taken either


# -- through the client --------------------------------------------------------------------------


def _max_in_window(times: list[float], period: float) -> int:
    times = sorted(times)
    best = 0
    for i, start in enumerate(times):
        best = max(best, sum(1 for t in times[i:] if t < start + period - 1e-3))
    return best


async def test_rpm_is_kept_in_every_window_and_waiters_go_in_order() -> None:
    plugin = FlexPlugin()
    # 240 rpm over 0.5 s windows: 2 requests per half second
    async with flex_client(plugin, config({"rpm": 240, "period": 0.5})) as client:
        tasks = [
            asyncio.ensure_future(client.complete(model="a/m", prompt=f"q{i}")) for i in range(7)
        ]
        await asyncio.sleep(0)
        results = await asyncio.gather(*tasks)
    assert [r.text for r in results] == [f"a:q{i}" for i in range(7)]
    times = [t for name, _, t in plugin.calls if name == "a"]
    order = [int(r.text[3:]) for r in sorted(results, key=lambda r: r.text)]
    assert order == list(range(7))
    assert _max_in_window(times, 0.5) <= 2
    assert times[-1] - times[0] >= 1.4  # 7 requests at 2 per 0.5 s take at least 1.5 s


async def test_waiting_past_max_wait_fails_with_a_clear_error_or_falls_back() -> None:
    plugin = FlexPlugin()
    cfg = config({"rpm": 1, "max_wait": 0.2}, aliases={"duo": ["a/m", "b/m"]})
    async with flex_client(plugin, cfg) as client:
        await client.complete(model="a/m", prompt="first")
        with pytest.raises(llmx.RateLimitError) as info:
            await client.complete(model="a/m", prompt="second")
        err = info.value
        assert err.code == CLIENT_LIMIT_CODE
        assert not err.retryable
        assert "client-side rate limit" in str(err)
        assert "not the provider's" in str(err)
        assert "rpm 1" in str(err)
        assert err.retry_after is not None
        assert err.retry_after > 50
        assert not err.attempts  # nothing was sent
        fallback = await client.complete(model="duo", prompt="third")
        assert fallback.provider == "b"
        assert client.stats().instances["a"].cooldown_remaining == 0  # not a provider 429
    assert plugin.calls_to("a") == 1


async def test_tokens_are_estimated_then_corrected() -> None:
    plugin = FlexPlugin()  # answers with usage 10 in + 5 out
    async with flex_client(plugin, config({"tpm": 600, "period": 1})) as client:  # 10 per s
        deployment = client._pool.get("a")
        limiter = deployment.limiter
        assert limiter is not None
        with pytest.raises(llmx.RateLimitError, match="can never fit"):
            await client.complete(model="a/m", prompt="x" * 400, max_tokens=1)
        # 10 tokens per 1 s window; the estimate (prompt + max_tokens) fits, the real 15 is recorded
        await client.complete(model="a/m", prompt="hi", max_tokens=4)
        assert limiter.backend.usage("a", "tpm") == 15
        with pytest.raises(llmx.RateLimitError):
            await client.complete(model="a/m", prompt="hi", max_tokens=4, timeout=0.3)


async def test_max_concurrent_and_per_model_limits() -> None:
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(0.05, "done")
    limits = {"max_concurrent": 3, "models": {"small": {"max_concurrent": 1}}}
    cfg = config(limits)
    cfg["providers"]["a"]["models"] = {"small": "tiny-1"}  # limits.models follows the mapping
    in_flight = peak = 0
    peak_small = in_small = 0

    async def one(model: str) -> None:
        nonlocal in_flight, peak, in_small, peak_small
        await client.complete(model=f"a/{model}", prompt="x")

    async with flex_client(plugin, cfg) as client:

        async def watch() -> None:
            nonlocal peak, peak_small
            while True:
                deployment = client._pool.get("a")
                peak = max(peak, deployment.in_flight)
                await asyncio.sleep(0.005)

        watcher = asyncio.ensure_future(watch())
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(one("big") for _ in range(6)))
        big_time = asyncio.get_running_loop().time() - started
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(one("small") for _ in range(3)))
        small_time = asyncio.get_running_loop().time() - started
        watcher.cancel()
        limiter = client._pool.get("a").limiter
        assert limiter is not None
        assert limiter.backend.usage("a", "concurrent") == 0  # every slot came back
    assert peak <= 3
    assert big_time >= 0.09  # 6 requests, 3 at a time, 50 ms each
    assert small_time >= 0.14  # the model allows one at a time
    assert [m for _, m, _ in plugin.calls][-3:] == ["tiny-1"] * 3


async def test_streams_hold_their_slot_until_they_end() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config({"max_concurrent": 1, "max_wait": 0.1})) as client:
        stream = client.stream(model="a/m", prompt="one two")
        async with stream:
            first = await stream.__anext__()
            assert isinstance(first, llmx.TextDelta)
            with pytest.raises(llmx.RateLimitError):
                await client.complete(model="a/m", prompt="meanwhile")
            await stream.collect()
        assert (await client.complete(model="a/m", prompt="after")).text == "a:after"


async def test_the_deadline_bounds_the_wait() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config({"max_concurrent": 1, "max_wait": 30})) as client:
        plugin.defaults["a"] = Sleep(0.5, "slow")
        slow = asyncio.ensure_future(client.complete(model="a/m", prompt="x"))
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(llmx.RateLimitError, match=r"within 0\.\d+ s"):
            await client.complete(model="a/m", prompt="y", timeout=0.1)
        assert loop.time() - started < 1.0  # the deadline, not max_wait (30 s)
        await slow


async def test_cancelled_waiters_leave_the_queue() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config({"rpm": 120, "period": 0.5})) as client:
        await client.complete(model="a/m", prompt="0")  # the window (1 per 0.5 s) is full
        waiting = [
            asyncio.ensure_future(client.complete(model="a/m", prompt=str(i))) for i in (1, 2)
        ]
        await asyncio.sleep(0.05)
        waiting[0].cancel()
        assert (await waiting[1]).text == "a:2"
        with pytest.raises(asyncio.CancelledError):
            await waiting[0]
        limiter = client._pool.get("a").limiter
        assert limiter is not None
        assert not any(limiter._queues.values())


def test_window_memory_is_bounded_whatever_the_rate() -> None:
    """100,000 grants in one period share at most ~1,000 slices, and corrected grants
    are forgotten: the limiter's memory does not grow with the request rate."""
    from llmx._ratelimit import _SLICES, LocalRateLimiter

    now = [0.0]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    bucket = Bucket("i", "rpm", 1e9, 60.0)
    for n in range(100_000):
        now[0] = n * 0.0005  # 2,000 requests per second for 50 s
        assert limiter.try_acquire(f"g{n}", [bucket]) == 0.0
        limiter.release_nowait(f"g{n}", [bucket])
    window = limiter._windows[("i", "rpm")]
    assert len(window.entries) <= _SLICES + 1
    assert not window.by_grant
    assert limiter.usage("i", "rpm") == 100_000


def test_grants_never_corrected_are_forgotten_once_their_slice_expires() -> None:
    """A caller of the backend that never releases (allowed: window units expire on
    their own) leaves the window holding only the grants still inside it."""
    from llmx._ratelimit import _SWEEP_FROM, LocalRateLimiter

    now = [0.0]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    bucket = Bucket("i", "tpm", 1e9, 1.0, 5.0)
    for n in range(100_000):
        now[0] = n * 0.001  # 1,000 grants per 1 s window, for 100 s
        assert limiter.try_acquire(f"g{n}", [bucket]) == 0.0
        window = limiter._windows[("i", "tpm")]
        assert len(window.by_grant) <= max(_SWEEP_FROM, 2 * 1_001) + 1
    assert limiter.usage("i", "tpm") == pytest.approx(5.0 * 1_000, rel=0.01)


async def test_limiter_counts_are_readable() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config({"rpm": 1, "max_wait": 0.05})) as client:
        limiter = client._pool.get("a").limiter
        assert limiter is not None
        assert limiter.stats() == llmx_stats(0, 0, 0)
        await client.complete(model="a/m", prompt="first")
        with pytest.raises(llmx.RateLimitError):
            await client.complete(model="a/m", prompt="second")  # refused at once
        assert limiter.stats() == llmx_stats(0, 1, 0)
        # ... and through the client's own statistics, per instance
        assert client.stats().instances["a"].limiter == llmx_stats(0, 1, 0)
        assert client.stats().instances["b"].limiter is None  # no limits configured there


def llmx_stats(waited: int, refused: int, backend_errors: int) -> Any:
    from llmx._stats import LimiterStats

    return LimiterStats(waited=waited, refused=refused, backend_errors=backend_errors)


def test_in_process_backends_are_recognised_by_their_protocol() -> None:
    from llmx._components import InProcessAcquire, InProcessRelease
    from llmx._ratelimit import InstanceLimiter

    class Shared:  # only the RateLimiter protocol: awaited
        async def acquire(self, grant: str, buckets: Any) -> float:
            return 0.0

        async def release(self, grant: str, buckets: Any) -> None:
            return None

    local = LocalRateLimiter()
    assert isinstance(local, InProcessAcquire)
    assert isinstance(local, InProcessRelease)
    assert not isinstance(Shared(), InProcessAcquire | InProcessRelease)
    settings = LimitSettings(rpm=60)
    assert InstanceLimiter("a", settings, local)._try_acquire is not None
    shared = InstanceLimiter("a", settings, Shared())
    assert shared._try_acquire is None
    assert shared._release_nowait is None


class _GenericLocal(LocalRateLimiter):
    """The local backend seen as any in-process backend (through its Bucket API), so the
    bound fast path of the exact class can be compared with it."""


@given(
    st.lists(
        st.tuples(
            st.floats(0, 2, allow_nan=False),  # time passing before the request
            st.integers(1, 400),  # its prompt's length
            st.one_of(st.none(), st.integers(0, 300)),  # the tokens it really used
            st.booleans(),  # released at once (else held until the end)
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(
        [
            {"rpm": 5},
            {"tpm": 600},
            {"max_concurrent": 2},
            {"rpm": 8, "tpm": 900, "max_concurrent": 3},
        ]
    ),
)
def test_the_in_process_fast_path_grants_exactly_what_the_bucket_api_grants(
    steps: list[tuple[float, int, int | None, bool]], limits: dict[str, int]
) -> None:
    """The exact LocalRateLimiter is bound to its stores (no Bucket objects per request);
    any other in-process backend goes through try_acquire/release_nowait. Both must grant,
    refuse and free the same requests, and leave the same usage behind."""
    from llmx._ratelimit import InstanceLimiter

    now = [0.0]
    settings = LimitSettings(**limits)  # type: ignore[arg-type]
    fast = InstanceLimiter("a", settings, LocalRateLimiter(clock=lambda: now[0]))
    slow = InstanceLimiter("a", settings, _GenericLocal(clock=lambda: now[0]))
    held: list[tuple[Any, Any, int | None]] = []
    for passing, length, used, at_once in steps:
        now[0] += passing
        request = llmx.Request(model="m", messages="x" * length, max_tokens=50)
        a, b = fast.acquire_nowait("m", request), slow.acquire_nowait("m", request)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a.bound
            assert not b.bound
            if at_once:
                a.release(used)
                b.release(used)
            else:
                held.append((a, b, used))
        for name in ("rpm", "tpm", "concurrent"):
            assert fast.backend.usage("a", name) == slow.backend.usage("a", name)
    for a, b, used in held:
        a.release(used)
        b.release(used)
    for name in ("rpm", "tpm", "concurrent"):
        assert fast.backend.usage("a", name) == slow.backend.usage("a", name)


def test_request_count_windows_keep_no_grants_on_the_fast_path() -> None:
    from llmx._ratelimit import InstanceLimiter

    backend = LocalRateLimiter(clock=lambda: 0.0)
    limiter = InstanceLimiter("a", LimitSettings(rpm=10**6, tpm=10**9), backend)
    for _ in range(50):
        permit = limiter.acquire_nowait("m", llmx.Request(model="m", messages="hi"))
        assert permit is not None
        permit.release(7)
    windows = backend._windows
    assert len(windows[("a", "rpm")].by_grant) == 0  # never corrected: never kept
    assert len(windows[("a", "tpm")].by_grant) == 0  # corrected on release, then forgotten
    assert backend.usage("a", "tpm") == 50 * 7

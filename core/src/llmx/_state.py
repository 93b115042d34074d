"""State stores: where circuit-breaker state and Retry-After cooldowns live.

The default, ``memory``, keeps them in the client (nothing is shared, so the core
does not even consult it on the hot path: ``shared = False``). A shared store
(``[breaker_store] backend = "redis"`` from ``llmx-redis``) lets every process see
the transitions and cooldowns of the others; see :class:`~llmx.plugin.BreakerStore`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import attrs

from llmx._components import SharedBreakerState

if TYPE_CHECKING:
    from llmx._components import BreakerStore
    from llmx._settings import StoreSettings

T = TypeVar("T")


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable``'s result, or :class:`TimeoutError` after ``seconds``.

    The call runs as a task of its own and is abandoned (cancelled, not awaited) at
    the deadline: a client library that delays or swallows a cancellation (redis-py
    finishing a read up to its ``socket_timeout``) cannot hold the request past it.
    """
    # Not asyncio.wait: one task, one waiter, one timer handle (measured: a guarded
    # store call costs ~9 µs over a bare await this way, ~11-14 µs with asyncio.wait;
    # asyncio.timeout, ~4 µs, cannot cut a call that delays its cancellation).
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(awaitable)
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    handle = loop.call_later(seconds, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    except BaseException:
        task.remove_done_callback(wake)
        task.cancel()
        task.add_done_callback(_consume)
        raise
    finally:
        handle.cancel()
    if task.done():
        return task.result()
    task.remove_done_callback(wake)
    task.cancel()
    task.add_done_callback(_consume)
    raise TimeoutError


if sys.version_info >= (3, 11):

    async def _soft_within(awaitable: Awaitable[T], seconds: float) -> T:
        """``awaitable`` cancelled at the deadline (it may delay the cancellation)."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def _soft_within(awaitable: Awaitable[T], seconds: float) -> T:
        """``awaitable`` cancelled at the deadline."""
        return await asyncio.wait_for(awaitable, seconds)


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned call's outcome (so asyncio logs nothing about it)."""
    if not task.cancelled():
        task.exception()


class MemoryBreakerStore:
    """Breaker state kept in this client only (``[breaker_store] backend = "memory"``)."""

    shared = False
    """Nothing outside this client writes it: the core skips it on the hot path."""

    def __init__(self) -> None:
        self._states: dict[str, SharedBreakerState] = {}

    def get(self, instance: str) -> SharedBreakerState | None:
        """The state last published for ``instance``."""
        return self._states.get(instance)

    def publish(self, instance: str, state: SharedBreakerState) -> None:
        """Merge ``state`` in."""
        current = self._states.get(instance)
        self._states[instance] = state if current is None else current.merge(state)


class SharedCooldown:
    """An instance's Retry-After cooldown, merged with the one in a shared store.

    ``until`` is monotonic (what the pipeline compares with); the store holds wall
    clock times, converted on the way in and out.
    """

    __slots__ = ("_key", "_local", "_store")

    def __init__(self, store: BreakerStore, key: str) -> None:
        self._store = store
        self._key = key
        self._local = 0.0

    def get(self) -> float:
        """The monotonic time before which the instance should not be sent to."""
        local = self._local
        try:
            shared = self._store.get(self._key)
        except Exception:
            return local
        if shared is None or not shared.blocked_until:
            return local
        mono = time.monotonic()
        remote = mono + (shared.blocked_until - time.time())
        return remote if remote > local else local

    def set(self, until: float) -> None:
        """Extend the cooldown to ``until`` (monotonic) here and in the store."""
        grows = until > self._local
        self._local = until
        if not grows:
            return
        wall = time.time() + (until - time.monotonic())
        try:
            self._store.publish(self._key, SharedBreakerState(blocked_until=wall))
        except Exception:  # a store must not fail the request
            import logging

            logging.getLogger("llmx.breaker").warning(
                "breaker store failed to publish the cooldown of %r", self._key
            )


# -- the guard around a shared store ----------------------------------------------------------


@attrs.frozen
class StoreStats:
    """How llmx fared with one shared store (``Stats.stores["cache"]``, ``["limiter"]``,
    ``["breaker_store"]``): see :class:`~llmx._settings.StoreSettings`.

    ``degraded``: whether llmx is using local state instead of the store now;
    ``calls``: calls made to the store; ``timeouts``: calls cut off at the deadline;
    ``errors``: calls that failed; ``skipped``: calls not made because the store was
    degraded (local state answered); ``transitions``: changes between healthy and
    degraded (each logged once), of which ``recoveries`` back to healthy.
    """

    kind: str
    backend: str
    degraded: bool = False
    calls: int = 0
    timeouts: int = 0
    errors: int = 0
    skipped: int = 0
    transitions: int = 0
    recoveries: int = 0


class StoreGuard:
    """A deadline and a breaker around one shared store (a cache, limiter or breaker
    store outside the process), so a store that is slow or down never slows requests.

    :meth:`call` runs one store call under ``settings.timeout``. After
    ``settings.failures`` failed or late calls in a row the store is *degraded*:
    :meth:`allow` says no (the caller uses local state). Every
    ``settings.probe_interval`` seconds a probe (``probe``: a harmless call, such as a
    lookup of a key nobody writes) runs in the background, never on a request, with
    :data:`PROBE_TIMEOUT` to answer (room for a new connection's handshake); its
    success makes the store healthy again. Without ``probe``, one request per interval
    is let through as the probe. Each transition logs one line and is counted
    (:meth:`stats`).
    """

    __slots__ = (
        "_fail_streak",
        "_log",
        "_next_probe",
        "_prober",
        "_probing",
        "_since",
        "calls",
        "degraded",
        "errors",
        "kind",
        "name",
        "probe",
        "recoveries",
        "settings",
        "skipped",
        "timeouts",
        "transitions",
    )  # fmt: skip

    def __init__(
        self,
        kind: str,
        name: str,
        settings: StoreSettings | None = None,
        probe: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        from llmx._settings import StoreSettings

        self.kind = kind
        self.name = name
        self.settings = settings or StoreSettings()
        self.degraded = False
        self.calls = self.timeouts = self.errors = self.skipped = self.recoveries = 0
        self._fail_streak = 0
        self._next_probe = 0.0
        self._probing = False
        self._since = 0.0
        self._log = logging.getLogger("llmx.store")
        self.transitions = 0
        self.probe = probe
        self._prober: asyncio.Task[None] | None = None

    def allow(self) -> bool:
        """Whether to call the store now: always while healthy; while degraded, once
        per probe interval (that call is the probe), else False (use local state)."""
        if not self.degraded:
            return True
        if self.probe is not None:
            self.skipped += 1
            if self._prober is None or self._prober.done():
                self._prober = asyncio.get_running_loop().create_task(self._probe_until_back())
            return False
        now = time.monotonic()
        if self._probing or now < self._next_probe:
            self.skipped += 1
            return False
        self._probing = True
        self._next_probe = now + self.settings.probe_interval
        return True

    async def call(self, awaitable: Awaitable[T], *, background: bool = False) -> T:
        """Await a store call under the deadline; record its outcome. Raises what the
        call raised, or :class:`TimeoutError` past the deadline.

        ``background``: nobody waits for this call (a cache write, a release), so a
        cancellation the client library delays is acceptable: the cheaper
        :func:`_soft_within` bounds it.
        """
        self.calls += 1
        try:
            if background:
                result = await _soft_within(awaitable, self.settings.timeout)
            else:
                result = await _within(awaitable, self.settings.timeout)
        except TimeoutError as err:
            self.timeouts += 1
            self.failed(err, late=True)
            raise
        except Exception as err:
            self.errors += 1
            self.failed(err)
            raise
        except BaseException:
            self._probing = False
            raise
        if self.degraded or self._fail_streak:
            self.succeeded()
        return result

    async def _probe_until_back(self) -> None:
        assert self.probe is not None
        while self.degraded:
            await asyncio.sleep(max(0.0, self._next_probe - time.monotonic()))
            self._next_probe = time.monotonic() + self.settings.probe_interval
            try:
                await _within(self.probe(), max(self.settings.timeout, PROBE_TIMEOUT))
            except Exception as err:
                self._log.debug("shared %s %r: probe failed (%r)", self.kind, self.name, err)
                continue
            self.succeeded()

    async def aclose(self) -> None:
        """Stop a probe under way."""
        task, self._prober = self._prober, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def succeeded(self) -> None:
        """A call answered in time (also for calls made outside :meth:`call`)."""
        self._fail_streak = 0
        self._probing = False
        if self.degraded:
            self.degraded = False
            self.recoveries += 1
            self.transitions += 1
            self._log.warning(
                "shared %s %r recovered after %.1f s; using it again",
                self.kind,
                self.name,
                time.monotonic() - self._since,
            )

    def failed(self, err: BaseException, *, late: bool = False) -> None:
        """A call failed or was too late (also for calls made outside :meth:`call`)."""
        self._probing = False
        self._fail_streak += 1
        if self.degraded or self._fail_streak < self.settings.failures:
            return
        self.degraded = True
        self.transitions += 1
        now = time.monotonic()
        self._since = now
        self._next_probe = now + self.settings.probe_interval
        why = (
            f"no answer within {self.settings.timeout:g} s"
            if late
            else f"{type(err).__name__}: {err}"
        )
        self._log.warning(
            "shared %s %r degraded (%s, %d calls in a row); using local state (%s) "
            "and probing it every %g s",
            self.kind,
            self.name,
            why,
            self._fail_streak,
            _LOCAL_STATE.get(self.kind, "in-process state"),
            self.settings.probe_interval,
        )

    def stats(self) -> StoreStats:
        """The counts so far."""

        return StoreStats(
            kind=self.kind,
            backend=self.name,
            degraded=self.degraded,
            calls=self.calls,
            timeouts=self.timeouts,
            errors=self.errors,
            skipped=self.skipped,
            transitions=self.transitions,
            recoveries=self.recoveries,
        )


@runtime_checkable
class DegradableStore(Protocol):
    """A store (such as a shared breaker store, whose I/O runs in its own background
    tasks) that says whether it is degraded now and how often that changed; reported
    in ``Client.stats().stores``."""

    degraded: bool
    """Whether the store is failing now (local state stands in)."""
    transitions: int
    """Changes between answering and failing so far."""


def degradable_stats(kind: str, name: str, store: DegradableStore) -> StoreStats:
    """The :class:`StoreStats` of a store that keeps its own health."""
    return StoreStats(
        kind=kind,
        backend=name,
        degraded=store.degraded,
        transitions=store.transitions,
        recoveries=store.transitions // 2,
    )


PROBE_TIMEOUT = 1.0
"""Seconds a background probe may take (a reconnection's handshake included)."""

_LOCAL_STATE = {
    "cache": "cache misses, writes skipped",
    "limiter": "the in-process limiter",
    "breaker store": "the in-process breakers",
}

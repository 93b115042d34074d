"""Per-instance protection: circuit breaker, retry budget, Retry-After cooldown and the
adaptive (AIMD) concurrency limit.

Each is a small state machine with one job, driven by the pipeline through
``record_*`` calls. Time comes from ``time.monotonic`` unless a clock is injected.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from llmx._ids import ORIGIN
from llmx._settings import AdaptiveSettings, BreakerSettings, RetryBudgetSettings
from llmx._window import Window

if TYPE_CHECKING:
    from llmx._components import BreakerStore

BreakerState = Literal["closed", "open", "half_open"]

Clock = Callable[[], float]


class CircuitBreaker:
    """The breaker of one provider instance (see :class:`BreakerSettings`).

    With a shared ``store`` (a :class:`~llmx.plugin.BreakerStore` such as ``llmx-redis``'s),
    every transition is published under ``key`` and transitions other processes
    published are adopted: an instance one process saw failing is skipped by all.
    The counts that lead to a transition stay per process. Reading the store is a
    dictionary lookup in its local snapshot, so the success path never awaits.
    """

    __slots__ = (
        "_clock",
        "_consecutive",
        "_key",
        "_on_transition",
        "_opened_at",
        "_probe_out",
        "_seen",
        "_store",
        "_wall",
        "_window",
        "settings",
        "state",
    )

    def __init__(
        self,
        settings: BreakerSettings,
        on_transition: Callable[[BreakerState, BreakerState, str], None] | None = None,
        clock: Clock = time.monotonic,
        *,
        store: BreakerStore | None = None,
        key: str = "",
        wall_clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.state: BreakerState = "closed"
        self._clock = clock
        self._on_transition = on_transition
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_out = False
        self._window = Window(settings.window)
        self._store = store if settings.enabled else None
        self._key = key
        self._wall = wall_clock
        self._seen = 0.0  # the `updated` stamp of the newest shared state applied

    def _move(self, new: BreakerState, reason: str, *, publish: bool = True) -> None:
        old = self.state
        self.state = new
        if publish and self._store is not None:
            self._publish(new, reason)
        if self._on_transition is not None:
            self._on_transition(old, new, reason)

    def _publish(self, new: BreakerState, reason: str) -> None:
        from llmx._components import SharedBreakerState

        assert self._store is not None
        wall = self._wall()
        updated = max(wall, self._seen + 1e-6)
        self._seen = updated
        if new == "open":
            until = wall + self.settings.cooldown
        elif new == "half_open":
            until = wall + max(self.settings.cooldown, 1.0)  # others hold off while we probe
        else:
            until = 0.0
        state = SharedBreakerState(new, until, updated, reason, ORIGIN)
        try:
            self._store.publish(self._key, state)
        except Exception as err:  # a store must not fail the request
            _log_store_failure(self._key, err)

    def _sync(self) -> None:
        """Adopt a transition another process published since we last looked."""
        assert self._store is not None
        try:
            shared = self._store.get(self._key)
        except Exception as err:
            _log_store_failure(self._key, err)
            return
        if shared is None or shared.updated <= self._seen:
            return
        self._seen = shared.updated
        left = shared.until - self._wall()
        who = shared.origin or "another process"
        if shared.state != "closed" and left > 0:
            if self.state == "open" and self.reopen_in() >= left:
                return
            self._opened_at = self._clock() + left - self.settings.cooldown
            self._probe_out = False
            if self.state != "open":
                self._move("open", f"{shared.state} in {who}: {shared.reason}", publish=False)
        elif shared.state == "closed" and self.state != "closed":
            self._probe_out = False
            self._consecutive = 0
            self._move("closed", f"closed in {who}: {shared.reason}", publish=False)

    def refresh(self) -> BreakerState:
        """The state, after adopting what other processes published (if shared)."""
        if self._store is not None:
            self._sync()
        return self.state

    def available(self) -> bool:
        """Whether routing should consider the instance (no side effects)."""
        if self._store is not None:
            self._sync()
        if self.state == "closed" or not self.settings.enabled:
            return True
        if self.state == "open":
            return self._clock() >= self._opened_at + self.settings.cooldown
        return not self._probe_out

    def reopen_in(self) -> float:
        """Seconds until an open breaker admits a probe (0 if it is not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.settings.cooldown - self._clock())

    def try_acquire(self) -> bool:
        """Admit an attempt now? Half-open admits exactly one probe at a time."""
        if self._store is not None:
            self._sync()
        if self.state == "closed" or not self.settings.enabled:
            return True
        if self.state == "open":
            if self._clock() < self._opened_at + self.settings.cooldown:
                return False
            self._move("half_open", "cool-down elapsed; admitting one probe")
        if self._probe_out:
            return False
        self._probe_out = True
        return True

    def record_success(self) -> None:
        """An admitted attempt succeeded."""
        self._consecutive = 0
        self._window.add(self._clock(), True)
        if self.state == "half_open":
            self._probe_out = False
            self._move("closed", "probe succeeded")

    def record_failure(self, reason: str) -> None:
        """An admitted attempt failed in a way that says the instance is unhealthy."""
        now = self._clock()
        self._consecutive += 1
        self._window.add(now, False)
        if not self.settings.enabled:
            return
        if self.state == "half_open":
            self._probe_out = False
            self._opened_at = now
            self._move("open", f"probe failed: {reason}")
            return
        if self.state != "closed":
            return
        s = self.settings
        if self._consecutive >= s.failure_threshold:
            self._opened_at = now
            self._move("open", f"{self._consecutive} consecutive failures, last: {reason}")
            return
        ok, bad = self._window.totals(now)
        total = ok + bad
        if total >= s.min_requests and bad / total >= s.failure_rate:
            self._opened_at = now
            self._move("open", f"{bad}/{total} attempts failed in {s.window:g}s, last: {reason}")

    def release(self) -> None:
        """An admitted attempt ended without a verdict (cancelled, or a request error)."""
        if self.state == "half_open":
            self._probe_out = False


def _log_store_failure(key: str, err: BaseException) -> None:
    import logging

    logging.getLogger("llmx.breaker").warning(
        "breaker store failed for instance %r (%s: %s); using this process's own state",
        key,
        type(err).__name__,
        err,
    )


class RetryBudget:
    """A sliding-window retry budget (Finagle-style), so an outage cannot multiply load."""

    __slots__ = ("_clock", "_requests", "_retries", "settings")

    def __init__(self, settings: RetryBudgetSettings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._requests = Window(settings.window)
        self._retries = Window(settings.window)

    def record_request(self) -> None:
        """A first attempt was sent."""
        self._requests.add(self._clock(), True)

    def try_spend(self) -> bool:
        """Take one retry from the budget, if there is one left."""
        now = self._clock()
        requests, _ = self._requests.totals(now)
        retries, _ = self._retries.totals(now)
        if retries >= self.settings.min_retries + self.settings.ratio * requests:
            return False
        self._retries.add(now, True)
        return True


class AdaptiveLimit:
    """An additive-increase / multiplicative-decrease limit on in-flight requests.

    Overload answers (429, 503, 529) halve the limit, at most once per recent round
    trip; successes add ``1/limit``. Requests over the limit wait in FIFO order.
    """

    __slots__ = ("_clock", "_last_decrease", "_waiters", "in_flight", "limit", "settings")

    def __init__(self, settings: AdaptiveSettings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.limit = float(min(max(settings.initial, settings.min), settings.max))
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._clock = clock
        self._last_decrease = -math.inf

    async def acquire(self) -> None:
        """Wait for a slot under the limit (FIFO)."""
        if not self._waiters and self.in_flight < self.limit:
            self.in_flight += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._release_slot()  # we were handed a slot but are leaving
            else:
                self._waiters.remove(future)
            raise

    def _release_slot(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)

    def release(self, outcome: Literal["ok", "overload", "other"], latency: float = 0.0) -> None:
        """Give the slot back and adapt the limit to the outcome."""
        s = self.settings
        if outcome == "ok":
            self.limit = min(float(s.max), self.limit + 1.0 / self.limit)
        elif outcome == "overload":
            now = self._clock()
            if now - self._last_decrease >= max(latency, 0.05):
                self.limit = max(float(s.min), self.limit * s.decrease_factor)
                self._last_decrease = now
        self._release_slot()

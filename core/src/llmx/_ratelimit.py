"""Client-side rate limits: requests and tokens per minute, and concurrent requests,
per provider instance and per model, so an app stays under its provider quotas.

``[providers.NAME] limits = { rpm = ..., tpm = ..., max_concurrent = ..., period = 60,
max_wait = 30, models = { "gpt-4o" = { tpm = ... } } }`` (see :class:`LimitSettings`).

Two halves:

* A backend (:class:`~llmx.plugin.RateLimiter`) keeps the buckets and answers, atomically,
  whether a request fits in all of them: :class:`LocalRateLimiter` in the process, or
  a shared one (``llmx-redis``) so several processes together stay under the quota.
* :class:`InstanceLimiter`, in the core, builds each request's buckets (tokens are
  estimated before with :mod:`llmx._tokens` and corrected with the real usage after),
  queues waiting requests in FIFO order per model, and gives up after ``max_wait``
  (or the request's deadline) with :class:`~llmx.RateLimitError` so the pipeline
  moves on to the next candidate.

Windows are sliding: at most ``rpm * period / 60`` requests in any ``period`` seconds.
With the default ``period = 60`` that is the quota as providers state it; a shorter
period spreads the same rate more evenly (and never exceeds it over any minute).
The local backend keeps a window as a fixed ring of ``_SLICES`` time slices, so its
memory does not grow with the request rate. Not GCRA or a token bucket: those let
up to twice the quota through within one period (a full burst, then the refill),
which a sliding window never does (and the shared ``llmx-redis`` windows agree).

A shared backend is called through a :class:`~llmx._state.StoreGuard` (one per client,
see :class:`SharedLimiter`): each call has a deadline (``[limiter] store_timeout``, 50 ms
by default), and while the backend keeps failing or answering late the requests are
limited in the process instead, at ``1 / expected_processes`` of every limit (the full
limit by default), until a probe finds the backend answering again. Releases that could
not reach it are kept (bounded) and sent once it answers, so no concurrency slot stays
taken for its whole lease.
"""

from __future__ import annotations

import array
import asyncio
import collections
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from llmx._components import Bucket, InProcessAcquire, InProcessRelease
from llmx._errors import RateLimitError
from llmx._ids import ORIGIN
from llmx._settings import LimitSettings, StoreSettings
from llmx._state import StoreGuard
from llmx._stats import LimiterStats
from llmx._tokens import estimate_output_tokens, input_tokens

if TYPE_CHECKING:
    from llmx._types import Request

log = logging.getLogger("llmx.ratelimit")

CLIENT_LIMIT_CODE = "client_rate_limit"
"""The ``code`` of the :class:`~llmx.RateLimitError` raised for llmx's own limits."""

_grants = itertools.count(1)
_EPSILON = 1e-9


# -- the in-process backend ----------------------------------------------------------------


_SLICES = 1000
"""A window keeps at most about this many slices, whatever the request rate."""

_SWEEP_FROM = 1024
"""Grants awaiting a correction that a window holds before it drops the expired ones."""


class _Window:
    """A sliding window over a fixed ring of time slices, and its total.

    Grants taken within ``period / _SLICES`` of a slice's opening share that slice; a
    slice's time is its newest grant's, so it expires with its newest member and the
    window never lets more through than the quota. The ring (three arrays of
    ``_SLICES + 2`` numbers) is allocated once: memory does not grow with the request
    rate, and a request adds to a slice without allocating anything (bench: memory
    growth, pipeline on, 10k -> 100k requests: +12 MB for the slices' sets of grants).
    ``by_grant`` holds, for grants whose real amount is not known yet, their slice's
    sequence number and estimate, until :meth:`correct` (or a sweep, once their slice
    has expired).
    """

    __slots__ = ("amounts", "by_grant", "cap", "head", "opened", "period", "seq", "slice",
                 "sweep_at", "times", "total")  # fmt: skip

    def __init__(self, period: float) -> None:
        self.period = period
        self.slice = period / _SLICES
        self.cap = cap = _SLICES + 2  # live slices never exceed _SLICES + 1 (see add)
        self.times = array.array("d", bytes(8 * cap))  # slice number % cap -> newest grant
        self.amounts = array.array("d", bytes(8 * cap))  # ... -> units it holds
        self.head = 0  # the oldest live slice's number
        self.seq = 0  # the next slice's number: live slices are head <= n < seq
        self.opened = -math.inf  # when the newest slice opened
        self.by_grant: dict[str, tuple[int, float]] = {}
        self.sweep_at = _SWEEP_FROM
        self.total = 0.0

    @property
    def entries(self) -> list[tuple[float, float]]:
        """The live slices ``(newest grant's time, units)``, oldest first (for tests)."""
        cap = self.cap
        return [(self.times[n % cap], self.amounts[n % cap]) for n in range(self.head, self.seq)]

    def add(self, now: float, amount: float, grant: str | None) -> None:
        """Take ``amount`` now; ``grant`` (None: never corrected) is kept for
        :meth:`correct`."""
        n = self.seq - 1
        # A new slice opens a slice-length after the last one opened; after expire(now)
        # every live slice opened after now - period - slice, so at most _SLICES + 1 are
        # live. A full ring (never, short of float rounding) folds into the newest.
        if n < self.head or (now - self.opened >= self.slice and self.seq - self.head < self.cap):
            n = self.seq
            self.seq = n + 1
            self.opened = now
            self.amounts[n % self.cap] = amount
        else:
            self.amounts[n % self.cap] += amount
        self.times[n % self.cap] = now
        self.total += amount
        if grant is not None:
            by_grant = self.by_grant
            by_grant[grant] = (n, amount)
            if len(by_grant) >= self.sweep_at:
                self._sweep()

    def _sweep(self) -> None:
        """Forget the grants whose slice has expired (never corrected: amortised O(1))."""
        head = self.head
        self.by_grant = {g: v for g, v in self.by_grant.items() if v[0] >= head}
        self.sweep_at = max(_SWEEP_FROM, 2 * len(self.by_grant))

    def correct(self, grant: str, amount: float) -> None:
        """Replace a grant's estimated amount by the real one (once)."""
        found = self.by_grant.pop(grant, None)
        if found is None:
            return
        n, estimated = found
        if n < self.head:
            return  # its slice has left the window already
        self.amounts[n % self.cap] += amount - estimated
        self.total += amount - estimated

    def expire(self, now: float, period: float) -> None:
        cutoff = now - period + _EPSILON  # what wait() promised fits, fits (float rounding)
        head, seq, cap = self.head, self.seq, self.cap
        times = self.times
        if head == seq or times[head % cap] > cutoff:
            return
        amounts = self.amounts
        total = self.total
        while head < seq and times[head % cap] <= cutoff:
            total -= amounts[head % cap]
            head += 1
        self.head = head
        self.total = total if head < seq else 0.0

    def wait(self, amount: float, limit: float, now: float, period: float) -> float:
        if amount > limit + _EPSILON:
            return math.inf
        excess = self.total + amount - limit
        if excess <= _EPSILON:
            return 0.0
        freed = 0.0
        cap, times, amounts = self.cap, self.times, self.amounts
        for n in range(self.head, self.seq):
            freed += amounts[n % cap]
            if freed >= excess - _EPSILON:
                return max(times[n % cap] + period - now, 1e-6)
        return period  # unreachable unless amounts changed under us


class LocalRateLimiter:
    """Rate-limit buckets in this process (the default, ``[limiter] backend = "local"``).

    One per client: two clients, or two processes, do not share it (use a shared
    backend such as ``llmx-redis`` for that).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._slots: dict[tuple[str, str], dict[str, float]] = {}

    def window(self, bucket: Bucket) -> _Window:
        """The sliding window of a ``"window"`` bucket (made on first use)."""
        key = (bucket.instance, bucket.name)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(bucket.period)
        return window

    def holders(self, bucket: Bucket) -> dict[str, float]:
        """The slot holders (grant -> lease end) of a ``"slots"`` bucket."""
        key = (bucket.instance, bucket.name)
        held = self._slots.get(key)
        if held is None:
            held = self._slots[key] = {}
        return held

    def try_acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """:meth:`acquire`, synchronously."""
        now = self._clock()
        wait = 0.0
        stores: list[Any] = []
        for b in buckets:
            key = (b.instance, b.name)
            if b.kind == "window":
                window = self._windows.get(key) or self.window(b)
                window.expire(now, b.period)
                w = window.wait(b.amount, b.limit, now, b.period)
                stores.append(window)
            else:
                held = self._slots.get(key)
                if held is None:
                    held = self.holders(b)
                w = _slot_wait(held, b.limit, now)
                stores.append(held)
            if w > wait:
                wait = w
        if wait > 0:
            return wait
        for b, store in zip(buckets, stores, strict=True):
            if b.kind == "window":
                store.add(now, b.amount, grant)
            else:
                store[grant] = now + b.period
        return 0.0

    async def acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """Take every bucket's amount, all or nothing (see :class:`~llmx.plugin.RateLimiter`)."""
        return self.try_acquire(grant, buckets)

    def release_nowait(self, grant: str, buckets: Sequence[Bucket]) -> None:
        """:meth:`release`, synchronously."""
        for b in buckets:
            key = (b.instance, b.name)
            if b.kind == "window":
                window = self._windows.get(key)
                if window is not None:
                    window.correct(grant, b.amount)
            else:
                held = self._slots.get(key)
                if held is not None:
                    held.pop(grant, None)

    async def release(self, grant: str, buckets: Sequence[Bucket]) -> None:
        """Free slots and record real amounts (see :class:`~llmx.plugin.RateLimiter`)."""
        self.release_nowait(grant, buckets)

    def usage(self, instance: str, name: str) -> float:
        """Units in the window (or slots held) of one bucket now (for tests and stats)."""
        now = self._clock()
        held = self._slots.get((instance, name))
        if held is not None:
            return float(sum(1 for until in held.values() if until > now))
        window = self._windows.get((instance, name))
        if window is None:
            return 0.0
        window.expire(now, window.period)
        return window.total


def _slot_wait(held: dict[str, float], limit: float, now: float) -> float:
    """How long until a slot frees (0: one is free now)."""
    if len(held) < limit:
        return 0.0
    # Holders past their lease (vanished) only matter to a full bucket: looked for then,
    # not on every request (bench: CPU per request @64, pipeline on: a scan of the ~64
    # holders per request).
    for g in [g for g, until in held.items() if until <= now]:
        del held[g]
    if len(held) < limit:
        return 0.0
    return max(min(held.values()) - now, 1e-3)


class _Bound:
    """A plan's buckets bound to the stores of the in-process backend, resolved once:
    a request takes and gives back its units without Bucket objects or lookups (bench:
    CPU per request, pipeline on; in-process, rpm + tpm + max_concurrent: 8.5 -> ~3 µs).
    Request-count windows are never corrected, so their grants are not kept."""

    __slots__ = ("clock", "slots", "windows")

    def __init__(self, backend: LocalRateLimiter, plan: _Plan) -> None:
        self.clock = backend._clock
        self.windows = tuple(
            (backend.window(b), b.limit, b.period, b.amount, counts_tokens)
            for b, counts_tokens in zip(plan.buckets, plan.tokens, strict=True)
            if b.kind == "window"
        )
        self.slots = tuple(
            (backend.holders(b), b.limit, b.period) for b in plan.buckets if b.kind == "slots"
        )

    def try_acquire(self, grant: str, tokens: float) -> float:
        """Take every bucket's units for ``grant``, all or nothing; the wait (0: taken)."""
        now = self.clock()
        wait = 0.0
        for window, limit, period, amount, by_tokens in self.windows:
            window.expire(now, period)
            w = window.wait(tokens if by_tokens else amount, limit, now, period)
            if w > wait:
                wait = w
        for held, limit, _ in self.slots:
            w = _slot_wait(held, limit, now)
            if w > wait:
                wait = w
        if wait > 0:
            return wait
        for window, _, _, amount, by_tokens in self.windows:
            if by_tokens:
                window.add(now, tokens, grant)
            else:
                window.add(now, amount, None)
        for held, _, lease in self.slots:
            held[grant] = now + lease
        return 0.0

    def release(self, grant: str, tokens: float | None) -> None:
        """Free ``grant``'s slots; its token windows take ``tokens`` instead of the
        estimate (None: keep the estimate)."""
        for window, _, _, _, by_tokens in self.windows:
            if by_tokens:
                if tokens is None:
                    window.by_grant.pop(grant, None)
                else:
                    window.correct(grant, tokens)
        for held, _, _ in self.slots:
            held.pop(grant, None)


# -- the core's side: queueing and giving up ---------------------------------------------------


class _Plan:
    """The buckets of one model on an instance, built once: each bucket's template,
    and which of them count tokens (their amount is the request's estimate, then its
    real usage) rather than requests or slots."""

    __slots__ = ("bound", "buckets", "exact", "slots", "token_buckets", "tokens")

    def __init__(self, limits: Sequence[tuple[Bucket, bool]]) -> None:
        self.bound: _Bound | None = None
        self.buckets = tuple(b for b, _ in limits)
        self.tokens = tuple(counts_tokens for _, counts_tokens in limits)
        self.token_buckets = tuple(
            i for i, counts_tokens in enumerate(self.tokens) if counts_tokens
        )
        self.slots = any(b.kind == "slots" for b in self.buckets)
        # Window waits are known (a lower bound, with other processes): a request gives
        # up at once when they exceed its budget. Slot waits depend on other requests.
        self.exact = not self.slots

    def buckets_for(self, tokens: int) -> list[Bucket]:
        """The buckets with ``tokens`` as the amount of the token-counting ones."""
        out = list(self.buckets)
        amount = float(tokens)
        for i in self.token_buckets:
            b = out[i]
            out[i] = Bucket(b.instance, b.name, b.limit, b.period, amount, b.kind)
        return out


class Permit:
    """What a request holds while it runs under its instance's limits."""

    __slots__ = ("bound", "buckets", "grant", "limiter", "local", "plan", "released", "tokens")

    def __init__(
        self,
        limiter: InstanceLimiter,
        grant: str,
        buckets: Sequence[Bucket],
        plan: _Plan,
        tokens: int = 0,
        *,
        bound: bool = False,
        local: bool = False,
    ) -> None:
        self.limiter = limiter
        self.grant = grant
        self.buckets = buckets
        self.plan = plan
        self.tokens = tokens  # the estimate the token buckets took
        self.bound = bound  # taken through plan.bound (the in-process backend's fast path)
        self.local = local  # taken from the local stand-in of a degraded shared backend
        self.released = False

    def release(self, tokens: int | None = None) -> None:
        """The request ended; ``tokens`` is its real usage (None: keep the estimate)."""
        if not self.released:
            self.released = True
            self.limiter.release(self, tokens)


class InstanceLimiter:
    """The limits of one provider instance over a backend (see the module docstring).

    ``lease``: seconds after which a concurrency slot frees itself if its request
    never ended (a crashed process); longer than any request may take.
    """

    def __init__(
        self,
        instance: str,
        settings: LimitSettings,
        backend: Any,
        map_model: Callable[[str], str] = lambda m: m,
        *,
        lease: float = 3600.0,
        shared: SharedLimiter | None = None,
    ) -> None:
        self.instance = instance
        self.lease = lease
        self.settings = settings
        self.backend = backend
        self._models = {map_model(k): v for k, v in settings.models.items()}
        self._plans: dict[str, _Plan] = {}
        self._queues: dict[str, collections.deque[asyncio.Future[None]]] = {}
        self._heads: dict[str, asyncio.Future[None]] = {}
        self._local = backend if type(backend) is LocalRateLimiter else None
        self._try_acquire = backend.try_acquire if isinstance(backend, InProcessAcquire) else None
        self._release_nowait = (
            backend.release_nowait if isinstance(backend, InProcessRelease) else None
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self.waited = 0
        self.refused = 0
        self.backend_errors = 0
        self.local_grants = 0
        self._warned_at = -math.inf
        if shared is None and self._try_acquire is None:
            shared = SharedLimiter(type(backend).__name__, backend=backend)
        self._shared = shared if self._try_acquire is None else None

    def stats(self) -> LimiterStats:
        """The counts so far (see :class:`LimiterStats`)."""
        return LimiterStats(self.waited, self.refused, self.backend_errors, self.local_grants)

    def _permit(
        self, grant: str, buckets: Sequence[Bucket], plan: _Plan, tokens: int, wait: float
    ) -> Permit:
        """The permit of a granted request (``wait``: 0, shared; -1, nothing taken;
        -2, taken from the local stand-in of a degraded shared backend)."""
        if wait == _LOCAL:
            return Permit(self, grant, buckets, plan, tokens, local=True)
        return Permit(self, grant, buckets if wait == 0 else (), plan, tokens)

    def _plan(self, model: str) -> _Plan:
        plan = self._plans.get(model)
        if plan is not None:
            return plan
        s = self.settings
        name = self.instance
        period = s.period
        lease = self.lease  # a slot whose holder vanished frees itself after this
        limits: list[tuple[Bucket, bool]] = []
        scopes: list[tuple[str, Any]] = [("", s)]
        per_model = self._models.get(model)
        if per_model is not None:
            scopes.append((f"{model}:", per_model))
        for prefix, scope in scopes:
            if scope.rpm is not None:
                limits.append(
                    (Bucket(name, f"{prefix}rpm", scope.rpm * period / 60, period), False)
                )
            if scope.tpm is not None:
                limits.append((Bucket(name, f"{prefix}tpm", scope.tpm * period / 60, period), True))
            if scope.max_concurrent is not None:
                bucket = Bucket(
                    name, f"{prefix}concurrent", scope.max_concurrent, lease, 1, "slots"
                )
                limits.append((bucket, False))
        plan = self._plans[model] = _Plan(limits)
        if self._local is not None:
            plan.bound = _Bound(self._local, plan)
        return plan

    def buckets(self, model: str, request: Request) -> list[Bucket]:
        """The buckets ``request`` takes from when sent to ``model`` on this instance."""
        plan = self._plan(model)
        if not plan.token_buckets:
            return list(plan.buckets)
        return plan.buckets_for(
            input_tokens(request, self.instance, model) + estimate_output_tokens(request)
        )

    def describe(self, model: str) -> str:
        """The limits that apply to ``model``, for messages (``rpm 120, tpm 30000``)."""
        parts = []
        for b in self._plan(model).buckets:
            quota = b.limit if b.kind == "slots" else b.limit * 60 / b.period
            parts.append(f"{b.name.replace(':', ' ')} {quota:g}")
        return ", ".join(parts)

    def acquire_nowait(self, model: str, request: Request) -> Permit | None:
        """A permit at once when nobody waits for ``model`` and an in-process backend
        grants the request now; else None (then :meth:`acquire` waits or refuses).
        No coroutine: most requests never wait (bench: CPU per request, pipeline on)."""
        if self._queues.get(model):
            return None
        plan = self._plans.get(model) or self._plan(model)
        tokens = 0
        if plan.token_buckets:
            tokens = input_tokens(request, self.instance, model) + estimate_output_tokens(request)
        grant = f"{ORIGIN}:{next(_grants)}"
        bound = plan.bound
        if bound is not None:
            if bound.try_acquire(grant, float(tokens)) > 0:
                return None
            return Permit(self, grant, plan.buckets, plan, tokens, bound=True)
        if self._try_acquire is None:
            return None
        buckets = plan.buckets_for(tokens) if plan.token_buckets else plan.buckets
        wait = self._checked_try_acquire(grant, buckets)
        if wait > 0:
            return None
        return Permit(self, grant, buckets if wait == 0 else (), plan, tokens)

    async def acquire(self, model: str, request: Request, time_left: float) -> Permit:
        """Wait (FIFO, per model) until the request fits; raise RateLimitError past
        ``max_wait`` or ``time_left`` (the request's deadline)."""
        plan = self._plans.get(model) or self._plan(model)
        tokens = 0
        buckets: Sequence[Bucket] = plan.buckets
        if plan.token_buckets:
            tokens = input_tokens(request, self.instance, model) + estimate_output_tokens(request)
            buckets = plan.buckets_for(tokens)
        grant = f"{ORIGIN}:{next(_grants)}"
        queue = self._queues.get(model)
        budget = min(self.settings.max_wait, time_left)
        if not queue:
            # Nobody waiting: ask once, in this thread when the backend allows it (bench:
            # CPU per request, pipeline on: two coroutines fewer per request).
            if self._try_acquire is not None:
                wait = self._checked_try_acquire(grant, buckets)
            else:
                wait = await self._checked_acquire(grant, buckets)
            if wait <= 0:
                return self._permit(grant, buckets, plan, tokens, wait)
            if wait == math.inf or (plan.exact and wait > budget):
                raise self._refused(model, tokens, wait, budget)
            if queue is None:
                queue = self._queues[model] = collections.deque()
        self.waited += 1
        loop = asyncio.get_running_loop()
        give_up = loop.time() + budget
        me: asyncio.Future[None] = loop.create_future()
        queue.append(me)
        try:
            if queue[0] is not me:
                left = give_up - loop.time()
                if left > 0:
                    await asyncio.wait((me,), timeout=left)
                if not me.done():
                    raise self._refused(model, tokens, None, budget)
            while True:
                wait = await self._checked_acquire(grant, buckets)
                if wait <= 0:
                    return self._permit(grant, buckets, plan, tokens, wait)
                left = give_up - loop.time()
                if wait == math.inf or left <= 0 or (plan.exact and wait > left):
                    raise self._refused(model, tokens, wait, budget)
                await self._sleep(model, min(wait, left))
        finally:
            try:
                queue.remove(me)
            except ValueError:
                pass
            if queue:
                head = queue[0]
                if not head.done():
                    head.set_result(None)

    def _checked_try_acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        assert self._try_acquire is not None
        try:
            return self._try_acquire(grant, buckets)
        except Exception as err:
            return self._backend_failed(err)

    async def _checked_acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """The backend's answer, within the shared store's deadline. While the backend
        is degraded (slow, or failing: see :class:`SharedLimiter`) the request is
        limited by the local stand-in instead (:data:`_LOCAL` when granted)."""
        shared = self._shared
        if shared is None:  # an in-process backend without try_acquire
            try:
                wait: float = await self.backend.acquire(grant, buckets)
            except Exception as err:
                return self._backend_failed(err)
            return wait
        guard = shared.guard
        if guard.allow():
            try:
                wait = await guard.call(self.backend.acquire(grant, buckets))
            except Exception as err:  # the guard counts it, and logs a degradation
                self.backend_errors += 1
                if any(b.kind == "slots" for b in buckets):
                    # Late, not refused: the backend may still take the slot; free it
                    # once it answers.
                    shared.keep_release(grant, buckets)
                log.debug("shared rate limiter failed for %r: %r", self.instance, err)
            else:
                if shared.pending:
                    shared.replay(self.backend)
                return wait
        self.local_grants += 1
        wait = shared.local.try_acquire(grant, shared.local_buckets(buckets))
        return _LOCAL if wait == 0 else wait

    def _backend_failed(self, err: Exception) -> float:
        self.backend_errors += 1
        now = time.monotonic()
        if now - self._warned_at >= 30.0:
            self._warned_at = now
            log.warning(
                "rate limiter failed for instance %r (%s: %s); sending without the "
                "client-side limit until it is back",
                self.instance,
                type(err).__name__,
                err,
            )
        return -1.0  # granted, and nothing to release

    async def _sleep(self, model: str, seconds: float) -> None:
        """Sleep ``seconds`` as the head of ``model``'s queue; a release wakes it early."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _resolve, wake)
        self._heads[model] = wake
        try:
            await wake
        finally:
            handle.cancel()
            if self._heads.get(model) is wake:
                del self._heads[model]

    def _refused(
        self,
        model: str,
        tokens: int,
        wait: float | None,
        budget: float,
    ) -> RateLimitError:
        self.refused += 1
        if wait == math.inf:
            msg = (
                f"client-side rate limit: this request (~{tokens} tokens) can "
                f"never fit the limits of [providers.{self.instance}] ({self.describe(model)}); "
                "raise tpm or period, or lower max_tokens (llmx's own limit, not the provider's; "
                "not retried on this instance)"
            )
            retry_after = None
        else:
            when = f"; capacity in ~{wait:.2f} s" if wait is not None else ""
            msg = (
                f"client-side rate limit: no capacity within {budget:.2f} s under the limits of "
                f"[providers.{self.instance}] ({self.describe(model)}){when}; raise max_wait or "
                "the limits (llmx's own limit, not the provider's; not retried on this instance)"
            )
            retry_after = wait
        return RateLimitError(
            msg,
            provider=self.instance,
            model=model,
            retryable=False,
            retry_after=retry_after,
            code=CLIENT_LIMIT_CODE,
        )

    def release(self, permit: Permit, tokens: int | None) -> None:
        """Give back ``permit``'s slots and record its real token usage."""
        buckets = permit.buckets
        plan = permit.plan
        if not buckets:
            return  # granted while the backend was failing: nothing was taken
        if permit.local:
            assert self._shared is not None
            if tokens is not None and plan.token_buckets and tokens != permit.tokens:
                buckets = plan.buckets_for(tokens)
            self._shared.local.release_nowait(permit.grant, buckets)
            if self._heads:
                for head in self._heads.values():
                    if not head.done():
                        head.set_result(None)
            return
        if permit.bound:
            assert plan.bound is not None
            corrected = tokens is not None and tokens != permit.tokens
            plan.bound.release(permit.grant, float(tokens) if corrected else None)  # type: ignore[arg-type]
            if (plan.slots or corrected) and self._heads:
                for head in self._heads.values():
                    if not head.done():
                        head.set_result(None)
            return
        corrected = False
        if tokens is not None and plan.token_buckets and tokens != permit.tokens:
            buckets = plan.buckets_for(tokens)
            corrected = True
        release_nowait = self._release_nowait
        if release_nowait is not None:
            # In-process: always told, so it forgets the grant at once.
            release_nowait(permit.grant, buckets)
        elif plan.slots or corrected:
            task = asyncio.get_running_loop().create_task(self._release(permit.grant, buckets))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            return  # a shared backend has nothing to do: window units just expire
        if (plan.slots or corrected) and self._heads:
            for head in self._heads.values():
                if not head.done():
                    head.set_result(None)

    async def _release(self, grant: str, buckets: Sequence[Bucket]) -> None:
        shared = self._shared
        if shared is not None:
            # Within the deadline; a release the backend did not take in time (or while
            # it is degraded) is kept and sent once it answers again.
            if not shared.guard.allow():
                shared.keep_release(grant, buckets)
                return
            try:
                await shared.guard.call(self.backend.release(grant, buckets), background=True)
            except Exception:
                shared.keep_release(grant, buckets)
            return
        try:
            await self.backend.release(grant, buckets)
        except Exception as err:
            log.warning(
                "rate limiter failed to release a request of instance %r (%s: %s); its slots "
                "expire on their own",
                self.instance,
                type(err).__name__,
                err,
            )

    async def aclose(self) -> None:
        """Wait for releases still under way."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._shared is not None:
            await self._shared.aclose()


_LOCAL = -2.0
""":meth:`InstanceLimiter._checked_acquire`'s answer for a grant of the local stand-in."""

MAX_KEPT_RELEASES = 10_000
"""Releases kept for a degraded shared backend (the oldest go first past this; their
slots then free themselves at the end of their lease)."""


class SharedLimiter:
    """What the instances of one client share about a shared rate-limiter backend: its
    :class:`~llmx._state.StoreGuard`, the local stand-in used while it is degraded (each
    limit divided by ``expected_processes``), and the releases it missed."""

    def __init__(
        self, name: str, settings: StoreSettings | None = None, backend: Any = None
    ) -> None:
        # The probe releases an unknown grant from no bucket: a no-op round trip.
        probe = None if backend is None else (lambda: backend.release(f"{ORIGIN}:probe", ()))
        self.guard = StoreGuard("limiter", name, settings, probe=probe)
        self.local = LocalRateLimiter()
        self.share = self.guard.settings.expected_processes
        self._kept: collections.deque[tuple[str, Sequence[Bucket]]] = collections.deque(
            maxlen=MAX_KEPT_RELEASES
        )
        self._replaying: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        """Whether releases are waiting for the backend."""
        return bool(self._kept)

    def local_buckets(self, buckets: Sequence[Bucket]) -> list[Bucket]:
        """``buckets`` with this process's share of each limit (never less than one
        request's amount, so what fits the shared limit fits the local one)."""
        n = self.share
        out = []
        for b in buckets:
            share = b.limit / n
            limit = float(max(1, math.floor(share))) if b.kind == "slots" else max(share, b.amount)
            out.append(Bucket(b.instance, b.name, limit, b.period, b.amount, b.kind))
        return out

    def keep_release(self, grant: str, buckets: Sequence[Bucket]) -> None:
        """Send this release once the backend answers again."""
        self._kept.append((grant, buckets))

    def replay(self, backend: Any) -> None:
        """Send the kept releases in the background (one task at a time)."""
        if self._replaying is not None and not self._replaying.done():
            return
        self._replaying = asyncio.get_running_loop().create_task(self._replay(backend))

    async def _replay(self, backend: Any) -> None:
        kept = self._kept
        while kept and self.guard.allow():
            grant, buckets = kept[0]
            try:
                await self.guard.call(backend.release(grant, buckets), background=True)
            except Exception:
                return
            if kept and kept[0][0] == grant:
                kept.popleft()

    async def aclose(self) -> None:
        """Wait for a replay under way."""
        task = self._replaying
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await self.guard.aclose()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""Client-side rate limits: requests and tokens per minute, and concurrent requests,
per provider instance and per model, so an app stays under its provider quotas.

``[providers.NAME] limits = { rpm = ..., tpm = ..., max_concurrent = ..., period = 60,
max_wait = 30, models = { "gpt-4o" = { tpm = ... } } }`` (see :class:`LimitSettings`).

Two halves:

* A backend (:class:`~llmx.RateLimiter`) keeps the buckets and answers, atomically,
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
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from llmx._components import Bucket, InProcessRelease
from llmx._errors import RateLimitError
from llmx._ids import ORIGIN
from llmx._tokens import estimate_input_tokens, estimate_output_tokens
from llmx._types import replace

if TYPE_CHECKING:
    from llmx._types import Request

log = logging.getLogger("llmx.ratelimit")

CLIENT_LIMIT_CODE = "client_rate_limit"
"""The ``code`` of the :class:`~llmx.RateLimitError` raised for llmx's own limits."""

_grants = itertools.count(1)
_EPSILON = 1e-9


def _positive(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and not value > 0:
        msg = f"{attribute.name} must be a positive number"
        raise ValueError(msg)


def _at_least_one(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and value < 1:
        msg = f"{attribute.name} must be at least 1"
        raise ValueError(msg)


@attrs.frozen
class ModelLimitSettings:
    """``limits.models."MODEL" = {...}``: the limits of one model on the instance."""

    rpm: float | None = attrs.field(default=None, validator=_positive)
    tpm: float | None = attrs.field(default=None, validator=_positive)
    max_concurrent: int | None = attrs.field(default=None, validator=_at_least_one)


@attrs.frozen
class LimitSettings:
    """``[providers.NAME] limits = {...}``: the client-side limits of one instance.

    ``rpm`` and ``tpm``: requests and tokens (input plus output) per minute;
    ``max_concurrent``: requests in flight at once (shared between processes with a
    shared limiter, unlike the instance's connection cap ``max_concurrent``).
    ``period`` (seconds): the sliding window the per-minute quotas are enforced over,
    at ``quota * period / 60`` per window. ``max_wait`` (seconds): how long a request
    may queue for capacity before it moves on to the next candidate (or fails with
    :class:`~llmx.RateLimitError`). ``models``: limits of single models (by the
    provider's model name, or a name the instance's ``models`` maps to it), which
    apply on top of the instance's own.
    """

    rpm: float | None = attrs.field(default=None, validator=_positive)
    tpm: float | None = attrs.field(default=None, validator=_positive)
    max_concurrent: int | None = attrs.field(default=None, validator=_at_least_one)
    period: float = attrs.field(default=60.0, validator=_positive)
    max_wait: float = 30.0
    models: Mapping[str, ModelLimitSettings] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.max_wait >= 0:
            msg = "max_wait must be a number of seconds, 0 or more"
            raise ValueError(msg)
        scopes: list[tuple[str, LimitSettings | ModelLimitSettings]] = [("", self)]
        scopes.extend((f"models.{m}.", v) for m, v in self.models.items())
        for where, limits in scopes:
            if limits.rpm is not None and limits.rpm * self.period / 60 < 1:
                msg = (
                    f"{where}rpm {limits.rpm:g} allows less than one request per period of "
                    f"{self.period:g} s; raise period to at least {60 / limits.rpm:g}"
                )
                raise ValueError(msg)

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        scopes: list[LimitSettings | ModelLimitSettings] = [self, *self.models.values()]
        return any(x is not None for s in scopes for x in (s.rpm, s.tpm, s.max_concurrent))


# -- the in-process backend ----------------------------------------------------------------


_SLICES = 1000
"""A window keeps at most about this many entries, whatever the request rate."""


class _Window:
    """A sliding window of slices ``[time, amount, grants, opened]``, oldest first, and
    their total.

    Grants taken within ``period / _SLICES`` of each other share a slice, so memory is
    bounded by the number of slices, not by requests per period. A slice's time is its
    newest grant's, so it expires with its newest member: the window never lets more
    through than the quota. ``by_grant`` holds only grants whose real amount is not known
    yet (until :meth:`correct`, or their slice expires).
    """

    __slots__ = ("by_grant", "entries", "period", "slice", "total")

    def __init__(self, period: float) -> None:
        self.period = period
        self.slice = period / _SLICES
        self.entries: collections.deque[list[Any]] = collections.deque()
        self.by_grant: dict[str, tuple[list[Any], float]] = {}
        self.total = 0.0

    def add(self, now: float, amount: float, grant: str) -> None:
        entries = self.entries
        last = entries[-1] if entries else None
        if last is not None and now - last[3] < self.slice:
            last[0] = now
            last[1] += amount
            last[2].add(grant)
        else:
            last = [now, amount, {grant}, now]
            entries.append(last)
        self.by_grant[grant] = (last, amount)
        self.total += amount

    def correct(self, grant: str, amount: float) -> None:
        """Replace a grant's estimated amount by the real one (once)."""
        found = self.by_grant.pop(grant, None)
        if found is None:
            return
        entry, estimated = found
        entry[1] += amount - estimated
        entry[2].discard(grant)
        self.total += amount - estimated

    def expire(self, now: float, period: float) -> None:
        entries = self.entries
        cutoff = now - period + _EPSILON  # what wait() promised fits, fits (float rounding)
        while entries and entries[0][0] <= cutoff:
            entry = entries.popleft()
            self.total -= entry[1]
            for grant in entry[2]:
                self.by_grant.pop(grant, None)
        if not entries:
            self.total = 0.0

    def wait(self, amount: float, limit: float, now: float, period: float) -> float:
        if amount > limit + _EPSILON:
            return math.inf
        excess = self.total + amount - limit
        if excess <= _EPSILON:
            return 0.0
        freed = 0.0
        for start, taken, _, _ in self.entries:
            freed += taken
            if freed >= excess - _EPSILON:
                return max(float(start) + period - now, 1e-6)
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

    def try_acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """:meth:`acquire`, synchronously."""
        now = self._clock()
        wait = 0.0
        for b in buckets:
            key = (b.instance, b.name)
            if b.kind == "window":
                window = self._windows.get(key)
                if window is None:
                    window = self._windows[key] = _Window(b.period)
                window.expire(now, b.period)
                w = window.wait(b.amount, b.limit, now, b.period)
            else:
                held = self._slots.get(key)
                if held is None:
                    held = self._slots[key] = {}
                for g in [g for g, until in held.items() if until <= now]:
                    del held[g]
                w = 0.0 if len(held) < b.limit else max(min(held.values()) - now, 1e-3)
            if w > wait:
                wait = w
        if wait > 0:
            return wait
        for b in buckets:
            key = (b.instance, b.name)
            if b.kind == "window":
                self._windows[key].add(now, b.amount, grant)
            else:
                self._slots[key][grant] = now + b.period
        return 0.0

    async def acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """Take every bucket's amount, all or nothing (see :class:`~llmx.RateLimiter`)."""
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
        """Free slots and record real amounts (see :class:`~llmx.RateLimiter`)."""
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


# -- the core's side: queueing and giving up ---------------------------------------------------


class Permit:
    """What a request holds while it runs under its instance's limits."""

    __slots__ = ("buckets", "grant", "limiter", "released")

    def __init__(self, limiter: InstanceLimiter, grant: str, buckets: Sequence[Bucket]) -> None:
        self.limiter = limiter
        self.grant = grant
        self.buckets = buckets
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
    ) -> None:
        self.instance = instance
        self.lease = lease
        self.settings = settings
        self.backend = backend
        self._models = {map_model(k): v for k, v in settings.models.items()}
        self._templates: dict[str, tuple[Bucket, ...]] = {}
        self._queues: dict[str, collections.deque[asyncio.Future[None]]] = {}
        self._heads: dict[str, asyncio.Future[None]] = {}
        self._release_nowait = (
            backend.release_nowait if isinstance(backend, InProcessRelease) else None
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self.waited = 0
        self.refused = 0
        self.backend_errors = 0
        self._warned_at = -math.inf

    def _template(self, model: str) -> tuple[Bucket, ...]:
        template = self._templates.get(model)
        if template is not None:
            return template
        s = self.settings
        name = self.instance
        period = s.period
        lease = self.lease  # a slot whose holder vanished frees itself after this
        out: list[Bucket] = []
        scopes: list[tuple[str, Any]] = [("", s)]
        per_model = self._models.get(model)
        if per_model is not None:
            scopes.append((f"{model}:", per_model))
        for prefix, limits in scopes:
            if limits.rpm is not None:
                out.append(Bucket(name, f"{prefix}rpm", limits.rpm * period / 60, period))
            if limits.tpm is not None:
                out.append(Bucket(name, f"{prefix}tpm", limits.tpm * period / 60, period))
            if limits.max_concurrent is not None:
                out.append(
                    Bucket(name, f"{prefix}concurrent", limits.max_concurrent, lease, 1, "slots")
                )
        template = self._templates[model] = tuple(out)
        return template

    def buckets(self, model: str, request: Request) -> list[Bucket]:
        """The buckets ``request`` takes from when sent to ``model`` on this instance."""
        template = self._template(model)
        tokens: int | None = None
        out = []
        for b in template:
            if b.name.endswith("tpm"):
                if tokens is None:
                    tokens = estimate_input_tokens(request) + estimate_output_tokens(request)
                b = replace(b, amount=float(tokens))
            out.append(b)
        return out

    def describe(self, model: str) -> str:
        """The limits that apply to ``model``, for messages (``rpm 120, tpm 30000``)."""
        parts = []
        for b in self._template(model):
            quota = b.limit if b.kind == "slots" else b.limit * 60 / b.period
            parts.append(f"{b.name.replace(':', ' ')} {quota:g}")
        return ", ".join(parts)

    async def acquire(self, model: str, request: Request, time_left: float) -> Permit:
        """Wait (FIFO, per model) until the request fits; raise RateLimitError past
        ``max_wait`` or ``time_left`` (the request's deadline)."""
        buckets = self.buckets(model, request)
        grant = f"{ORIGIN}:{next(_grants)}"
        backend_acquire = self._checked_acquire
        queue = self._queues.get(model)
        if queue is None:
            queue = self._queues[model] = collections.deque()
        budget = min(self.settings.max_wait, time_left)
        # Window waits are known (a lower bound, with other processes): give up at
        # once when they exceed the budget. Slot waits depend on other requests ending.
        exact = not any(b.kind == "slots" for b in buckets)
        if not queue:
            wait = await backend_acquire(grant, buckets)
            if wait <= 0:
                return Permit(self, grant, buckets if wait == 0 else ())
            if wait == math.inf or (exact and wait > budget):
                raise self._refused(model, buckets, wait, budget)
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
                    raise self._refused(model, buckets, None, budget)
            while True:
                wait = await backend_acquire(grant, buckets)
                if wait <= 0:
                    return Permit(self, grant, buckets if wait == 0 else ())
                left = give_up - loop.time()
                if wait == math.inf or left <= 0 or (exact and wait > left):
                    raise self._refused(model, buckets, wait, budget)
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

    async def _checked_acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """The backend's answer; when the backend fails (a shared one that went away),
        the request goes ahead unlimited, with a warning: the provider's own 429s
        (retries, cooldowns, fallback) remain the backstop."""
        try:
            wait: float = await self.backend.acquire(grant, buckets)
        except Exception as err:
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
        return wait

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
        self, model: str, buckets: Sequence[Bucket], wait: float | None, budget: float
    ) -> RateLimitError:
        self.refused += 1
        if wait == math.inf:
            msg = (
                f"client-side rate limit: this request (~{_tokens_of(buckets)} tokens) can never "
                f"fit the limits of [providers.{self.instance}] ({self.describe(model)}); raise "
                "tpm or period, or lower max_tokens (llmx's own limit, not the provider's; not "
                "retried on this instance)"
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
        changed = False
        out = []
        for b in buckets:
            if b.kind == "slots":
                changed = True
            elif tokens is not None and b.name.endswith("tpm") and b.amount != tokens:
                b = replace(b, amount=float(tokens))
                changed = True
            out.append(b)
        if not changed:
            return
        if self._release_nowait is not None:
            self._release_nowait(permit.grant, out)
        else:
            task = asyncio.get_running_loop().create_task(self._release(permit.grant, out))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        for head in self._heads.values():
            if not head.done():
                head.set_result(None)

    async def _release(self, grant: str, buckets: Sequence[Bucket]) -> None:
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


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _tokens_of(buckets: Sequence[Bucket]) -> int:
    return int(max((b.amount for b in buckets if b.name.endswith("tpm")), default=0))

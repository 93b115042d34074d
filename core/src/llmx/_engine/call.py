"""One attempt: one call to one provider instance, for a whole answer or a stream.

A :class:`Call` is admitted before anything is sent (Retry-After cooldown, circuit
breaker, client-side rate limits, adaptive concurrency limit) and then ends exactly
once, in one of three ways, each doing all of its accounting in one place:

- :meth:`Call.succeeded` — the answer arrived (a whole Response, or a stream's last
  chunk): breaker success, stats, cost, latency, the ``AttemptEnd`` event;
- :meth:`Call.failed` — the provider raised: the error is classified (breaker verdict,
  Retry-After cooldown, deadline) and returned typed, for the caller to raise;
- :meth:`Call.abandoned` — the answer was sent for but never used (a lost hedge, a
  caller who stopped reading a stream, a cancellation): counted with its estimated
  cost, since the provider may bill it.

Whole answers and streams use the same object; a stream's call also holds the source
iterator and the first chunk (see :mod:`llmx._engine.stream`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from types import AsyncGeneratorType
from typing import TYPE_CHECKING, Literal

from llmx._components import Closable
from llmx._embedding import EmbeddingResponse
from llmx._errors import (
    AuthenticationError,
    CircuitOpenError,
    DeadlineExceededError,
    LlmxError,
    MalformedResponseError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from llmx._events import AttemptEnd, AttemptStart, attempt_headers
from llmx._logging import ATTEMPT, INFO, log_cooldown
from llmx._tokens import input_tokens
from llmx._types import Attempt, Response, Usage

if TYPE_CHECKING:
    from llmx._engine.run import Run
    from llmx._engine.view import LiveView
    from llmx._events import AttemptKind
    from llmx._pool import Instance
    from llmx._ratelimit import Permit
    from llmx._registry import _EventHooks as EventCallers
    from llmx._types import ModelInfo, StreamChunk

_perf = time.perf_counter
_monotonic = time.monotonic

# Errors that say the instance (not the request) is unwell: they count against its breaker.
_INSTANCE_FAILURES = (
    ServerError,
    ProviderTimeoutError,
    ProviderConnectionError,
    MalformedResponseError,
    AuthenticationError,
    PermissionDeniedError,
)
_OVERLOAD_STATUSES = frozenset({429, 503, 529})
_DEFAULT_COOLDOWN = 1.0  # seconds after a 429 without Retry-After

Outcome = Literal["ok", "overload", "other"]


def _completed(
    response: Response,
    provider: str,
    latency: float,
    cost: float | None,
    attempts: tuple[Attempt, ...],
) -> Response:
    """The provider's answer with the pipeline's facts filled in (a new value: the
    constructor with every field spelled out costs less than ``attrs.evolve``)."""
    return Response(
        response.text,
        response.model,
        provider,
        response.tool_calls,
        response.finish_reason,
        response.usage,
        latency,
        cost,
        response.id,
        attempts,
        response.raw,
        cached=response.cached,
        reasoning=response.reasoning,
        choices=response.choices,
    )


class Call:
    """One attempt's life, from admission to exactly one of succeeded/failed/abandoned."""

    __slots__ = (
        "counters",
        "ended",
        "events",
        "first",
        "headers",
        "info",
        "inst",
        "kind",
        "model",
        "number",
        "permit",
        "response",
        "run",
        "source",
        "t0",
        "ttft",
        "view",
    )

    def __init__(
        self,
        view: LiveView,
        events: EventCallers,
        run: Run,
        inst: Instance,
        model: str,
        info: ModelInfo | None,
        kind: AttemptKind,
    ) -> None:
        self.view = view
        self.events = events
        self.run = run
        self.inst = inst
        self.model = model
        self.info = info
        self.kind = kind
        self.headers = False  # whether this attempt set attempt_headers
        self.permit: Permit | None = None
        self.ended = False
        self.source: AsyncIterator[StreamChunk] | None = None
        self.first: StreamChunk | None = None
        self.ttft: float | None = None
        self.response: Response | None = None

    async def admit(self) -> None:
        """Before anything is sent: wait out a Retry-After cooldown, take the breaker's
        admission, the rate-limit permit and a concurrency slot (on refusal a typed
        error, holding nothing: the attempt never started); then count the attempt and
        start its clock."""
        inst, run = self.inst, self.run
        blocked = inst.blocked_until - _monotonic()
        if blocked > 0:
            if blocked >= run.remaining():
                msg = (
                    f"cooling down for {blocked:.2f} s after the provider asked to wait "
                    "(Retry-After), longer than the time left before the deadline"
                )
                raise RateLimitError(msg, provider=inst.name, retryable=False, retry_after=blocked)
            if ATTEMPT.isEnabledFor(INFO):
                log_cooldown(run, inst.name, self.model, blocked)
            await asyncio.sleep(blocked)
        breaker = inst.breaker
        if not breaker.try_acquire():
            reopen = breaker.reopen_in()
            msg = f"circuit open after repeated failures; next probe in {reopen:.1f} s"
            raise CircuitOpenError(msg, provider=inst.name, retryable=False, retry_after=reopen)
        limiter = inst.limiter
        if (
            limiter is not None
            and inst.limit is None
            and (permit := limiter.acquire_nowait(self.model, run.request)) is not None
        ):
            self.permit = permit  # granted at once, in this thread (the common case)
        elif limiter is not None or inst.limit is not None:
            try:
                await self._wait_for_limits()
            except BaseException:
                breaker.release()
                if self.permit is not None:
                    self.permit.release(None)
                    self.permit = None
                raise
        self.number = run.begun = run.begun + 1
        counters = self.counters = self.view.stats.counters(inst.name, self.model)
        counters.requests += 1
        if self.kind == "retry":
            counters.retries += 1
        else:
            inst.budget.record_request()
        inst.in_flight += 1
        self.t0 = _perf()
        hook = self.events.attempt_start
        if hook is not None:
            self._started(hook)

    def _started(self, hook: Callable[..., None]) -> None:
        """Emit ``llmx_attempt_start``; headers its hooks added go with this attempt. A
        hook that raises (against the contract) reaches the caller, the attempt
        released: it holds no slot, permit or breaker probe."""
        inst = self.inst
        event = AttemptStart(
            self.run.request_id,
            inst.name,
            self.model,
            self.number,
            self.t0,
            self.kind,
            inst.registration.name,
            {},
        )
        try:
            hook(event=event)
        except BaseException:
            self._end("other")
            inst.breaker.release()
            raise
        if event.headers:
            attempt_headers.set(dict(event.headers))
            self.headers = True

    async def _wait_for_limits(self) -> None:
        inst, run = self.inst, self.run
        limiter = inst.limiter
        if limiter is not None:
            self.permit = limiter.acquire_nowait(self.model, run.request) or await limiter.acquire(
                self.model, run.request, run.remaining()
            )
        limit = inst.limit
        if limit is not None:
            if run.deadline is None:
                await limit.acquire()
            else:
                try:
                    await asyncio.wait_for(limit.acquire(), max(run.remaining(), 0))
                except (asyncio.TimeoutError, TimeoutError):
                    msg = "no concurrency slot before the deadline (adaptive limit)"
                    raise DeadlineExceededError(msg, provider=inst.name) from None

    # -- the three ends ------------------------------------------------------------------

    def _end(self, outcome: Outcome, tokens: int | None = None) -> float:
        """Release what admission took; the attempt's duration."""
        self.ended = True
        duration = _perf() - self.t0
        if self.headers:
            attempt_headers.set(None)
        inst = self.inst
        inst.in_flight -= 1
        if inst.limit is not None:
            inst.limit.release(outcome, duration)
        if self.permit is not None:
            self.permit.release(tokens)
        return duration

    def _record(self, attempt: Attempt) -> tuple[Attempt, ...]:
        attempts = self.run.attempts
        attempts.append(attempt)
        return (attempt,) if len(attempts) == 1 else tuple(attempts)

    def first_chunk(self, chunk: StreamChunk | None) -> None:
        """A stream's first chunk arrived (None: the stream was empty)."""
        self.first = chunk
        ttft = self.ttft = _perf() - self.t0
        self.counters.ttft.record(ttft)

    def succeeded(self, response: Response) -> Response:
        """The answer arrived: account for it; the Response the caller receives."""
        duration, cost, attempts = self._answered(response.usage, response.cost)
        return _completed(response, self.inst.name, duration, cost, attempts)

    def embedded(self, response: EmbeddingResponse) -> EmbeddingResponse:
        """An embedding attempt's vectors arrived: the same accounting as
        :meth:`succeeded` (cost at the input price), counted in ``embeds`` as well; the
        response the caller receives."""
        duration, cost, attempts = self._answered(response.usage, response.cost)
        self.counters.embeds += 1
        return EmbeddingResponse(
            response.vectors,
            response.model,
            self.inst.name,
            response.usage,
            duration,
            cost,
            attempts,
        )

    def _answered(
        self, usage: Usage, cost: float | None
    ) -> tuple[float, float | None, tuple[Attempt, ...]]:
        """An answer arrived: breaker success, stats, cost (the provider's, else the
        model's prices), latency, the ``AttemptEnd`` event; ``(duration, cost,
        attempts)``."""
        duration = self._end("ok", usage.total_tokens or None)
        inst, counters, info = self.inst, self.counters, self.info
        inst.breaker.record_success()
        if cost is None and info is not None:
            cost = info.cost(usage)
        counters.successes += 1
        counters.input_tokens += usage.input_tokens
        counters.output_tokens += usage.output_tokens
        counters.reasoning_tokens += usage.reasoning_tokens
        if usage.estimated:
            counters.estimated_usage += 1
        if cost is not None:
            counters.cost += cost
        counters.latency.record(duration)
        self.view.observe_latency(inst.name, self.model, duration)
        attempts = self._record(Attempt(inst.name, self.model, duration))
        hook = self.events.attempt
        if hook is not None:
            hook(
                event=AttemptEnd(
                    self.run.request_id,
                    inst.name,
                    self.model,
                    self.number,
                    self.t0,
                    duration,
                    usage,
                    None,
                    self.ttft,
                )
            )
        return duration, cost, attempts

    def failed(self, err: BaseException) -> BaseException:
        """The provider raised ``err``: account for it; the typed error to raise."""
        if isinstance(err, asyncio.CancelledError):
            self.abandoned("cancelled")
            return err
        inst, run = self.inst, self.run
        status = err.status if isinstance(err, ProviderError) else None
        duration = self._end("overload" if status in _OVERLOAD_STATUSES else "other")
        error: BaseException = err
        breaker = inst.breaker
        if isinstance(err, ProviderError):
            if isinstance(err, _INSTANCE_FAILURES):
                breaker.record_failure(f"{type(err).__name__}: {err.message}")
            else:
                breaker.release()
            if isinstance(err, RateLimitError):
                wait = err.retry_after if err.retry_after is not None else _DEFAULT_COOLDOWN
                inst.blocked_until = max(inst.blocked_until, _monotonic() + wait)
            if isinstance(err, ProviderTimeoutError):
                self._abandon_counts()  # sent, never answered: the provider may bill it
                if run.remaining() <= 0:
                    error = DeadlineExceededError(
                        f"the request's deadline passed during this attempt ({err.message})",
                        provider=err.provider,
                        model=err.model,
                    )
        elif isinstance(err, LlmxError):
            breaker.release()
        elif isinstance(err, Exception):
            breaker.record_failure(f"provider bug: {type(err).__name__}")
            msg = (
                f"provider {inst.registration.origin} raised {type(err).__name__}: {err} "
                "(a provider bug: providers should raise llmx.ProviderError subclasses)"
            )
            error = ProviderError(msg, provider=inst.name, model=self.model)
        else:  # KeyboardInterrupt, SystemExit, GeneratorExit: no verdict on the instance
            breaker.release()
        kind = type(error).__name__
        counters = self.counters
        if isinstance(error, Exception):
            counters.errors[kind] = counters.errors.get(kind, 0) + 1
        message = error.message if isinstance(error, ProviderError) else str(error)
        self._record(Attempt(inst.name, self.model, duration, kind, message))
        hook = self.events.attempt
        if hook is not None:
            hook(
                event=AttemptEnd(
                    run.request_id,
                    inst.name,
                    self.model,
                    self.number,
                    self.t0,
                    duration,
                    None,
                    error,
                    self.ttft,
                )
            )
        return error

    def abandoned(self, why: str) -> None:
        """Sent for but never used (``why``: "cancelled", "stream closed early"): counted
        with its estimated cost, since the provider may bill it."""
        duration = self._end("other")
        self.inst.breaker.release()
        self._abandon_counts()
        self._record(Attempt(self.inst.name, self.model, duration, "Abandoned", why))
        hook = self.events.attempt
        if hook is not None:
            hook(
                event=AttemptEnd(
                    self.run.request_id,
                    self.inst.name,
                    self.model,
                    self.number,
                    self.t0,
                    duration,
                    None,
                    asyncio.CancelledError(why),
                    self.ttft,
                )
            )

    def _abandon_counts(self) -> None:
        counters = self.counters
        counters.abandoned_attempts += 1
        if self.info is not None:
            tokens = input_tokens(self.run.request, self.inst.name, self.model)
            estimate = self.info.cost(Usage(tokens, 0))
            if estimate is not None:
                counters.abandoned_cost += estimate

    async def close_source(self) -> None:
        """Close a stream's source (its connection) now; errors closing it are not the
        error to report."""
        source: object = self.source
        if source is None:
            return
        # An async generator (every provider's stream() so far) is closable as such;
        # the Protocol check is for other iterators (isinstance on a runtime Protocol
        # costs a few µs: bench, stream time to first chunk).
        if type(source) is AsyncGeneratorType or isinstance(source, Closable):
            try:
                await source.aclose()
            except Exception:
                pass

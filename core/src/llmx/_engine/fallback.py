"""Trying a route's candidates: the plan (routing order, open breakers last, too-small
context windows left out), one candidate with its retries, the fallback loop, hedging,
and the one error a failed request raises.

Every function here takes ``once``: the coroutine that makes one attempt given its
:class:`~llmx._engine.call.Call` — :func:`llmx._engine.pipeline.complete_once` for a
whole answer, :func:`llmx._engine.stream.open_once` for a stream (which "succeeds" when
its first chunk arrives). Whole answers and streams therefore share every step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from llmx._engine.call import Call
from llmx._errors import (
    AllCandidatesFailedError,
    BadRequestError,
    CircuitOpenError,
    ContextWindowExceededError,
    LlmxError,
    ProviderError,
    RateLimitError,
    UnsupportedFeatureError,
)
from llmx._logging import ATTEMPT, INFO, log_fallback, log_hedge, log_retry
from llmx._ratelimit import CLIENT_LIMIT_CODE
from llmx._tokens import estimate_context_tokens, known_input_tokens
from llmx._types import Capability, Request, Text

if TYPE_CHECKING:
    from llmx._components import Candidate, HedgingStrategy
    from llmx._engine.resolve import Route
    from llmx._engine.run import Run
    from llmx._engine.view import LiveView
    from llmx._events import AttemptKind
    from llmx._pool import Instance, ProviderPool
    from llmx._registry import _EventHooks
    from llmx._types import ModelInfo

_T = TypeVar("_T")
_monotonic = time.monotonic

Once = Callable[[Call, "Request"], Awaitable[_T]]
"""One attempt: ``once(call, sent)`` admits ``call``, sends ``sent`` (the request with the
candidate's model name) and ends the call, or leaves it open (a stream)."""


class EventSource(Protocol):
    """Where the event callers come from: a :class:`~llmx.Registry`, or a client's
    request log wrapping one (:class:`llmx._requestlog.LoggedEvents`)."""

    @property
    def events(self) -> _EventHooks:
        """The event hook callers (each None when nothing listens)."""
        ...


class Fallback:
    """Runs a route: plan, then candidates in order (or hedged), each with retries."""

    __slots__ = ("_hooks", "_pool", "_view")

    def __init__(self, pool: ProviderPool, view: LiveView, hooks: EventSource) -> None:
        self._pool = pool
        self._view = view
        self._hooks = hooks

    # -- the plan ---------------------------------------------------------------------------

    def plan(self, route: Route, request: Request, skipped: list[str]) -> list[Candidate]:
        """Candidates in routing order; open breakers and cooling instances go last,
        candidates whose context window is known to be too small are left out (and
        said in ``skipped``)."""
        candidates: Sequence[Candidate] = route.candidates
        if route.strategy is not None and len(candidates) > 1:
            candidates = route.strategy.order(candidates, request, self._view)
        if len(candidates) == 1:
            return list(candidates)
        ready: list[Candidate] = []
        later: list[Candidate] = []
        now = _monotonic()
        info_of = self._view.info
        estimate: int | None = None
        for c in candidates:
            info = info_of(c)
            if info is not None and info.context_window is not None:
                needed = known_input_tokens(request, c.instance, c.model)
                if needed is None:
                    if estimate is None:
                        estimate = estimate_context_tokens(request)
                    needed = estimate
                if needed > info.context_window:
                    skipped.append(
                        f"{c.instance}/{c.model}: skipped, the prompt (~{needed} tokens) exceeds "
                        f"its context window ({info.context_window})"
                    )
                    continue
            d = self._pool.get(c.instance)
            if d.breaker.available() and d.blocked_until <= now:
                ready.append(c)
            else:
                later.append(c)
        if later:
            later.sort(key=lambda c: _available_in(self._pool.get(c.instance), now))
        return ready + later

    # -- the fallback loop -----------------------------------------------------------------

    async def run(self, route: Route, run: Run, once: Once[_T]) -> _T:
        """The first candidate that answers, in plan order (hedged when the route's
        strategy hedges); the request's one error when none does."""
        if len(route.candidates) == 1:  # nothing to order or skip (bench: sequential)
            only = route.candidates[0]
            try:
                return await self.candidate(run, only, False, once, "first")
            except LlmxError as err:
                self._may_fall_back(route, run, err, [only], 0)
            raise self._final_error(run, 1)
        plan = self.plan(route, run.request, run.skipped)
        if route.hedge is not None and len(plan) > 1:
            return await self._hedged(route, run, plan, route.hedge, once)
        last = len(plan) - 1
        for index, candidate in enumerate(plan):
            try:
                kind: AttemptKind = "first" if index == 0 else "fallback"
                return await self.candidate(run, candidate, index < last, once, kind)
            except LlmxError as err:
                if not self._may_fall_back(route, run, err, plan, index):
                    break
                if index + 1 < len(plan) and ATTEMPT.isEnabledFor(INFO):
                    _log_fallback(run, candidate, err, plan[index + 1])
        raise self._final_error(run, len(plan))

    async def candidate(
        self,
        run: Run,
        candidate: Candidate,
        has_more: bool,
        once: Once[_T],
        kind: AttemptKind = "first",
    ) -> _T:
        """One candidate: capability check, the first attempt (made as ``kind``), then
        retries (if the error is retryable) through the instance's retry policy."""
        inst = self._pool.get(candidate.instance)
        inst.open()
        info = self._view.info(candidate)
        check_capabilities(run.request, inst, info)
        request = run.request
        sent = request if request.model == candidate.model else request.with_model(candidate.model)
        view, events, model = self._view, self._hooks.events, candidate.model
        try:
            return await once(Call(view, events, run, inst, model, info, kind), sent)
        except ProviderError as err:
            policy = inst.retry
            if not err.retryable or policy.attempts <= 1:
                raise
            failure: ProviderError | None = err
        # The first attempt ran outside the retry policy, so an answer at once costs no
        # retry machinery (bench: sequential overhead); its failure is re-raised inside
        # the policy's first context, so the policy decides the first wait as well.
        on = _retry_decider(run, inst, model, has_more)
        async for attempt in policy.retrying(on, timeout=run.remaining()):
            with attempt:
                if failure is not None:
                    first, failure = failure, None
                    raise first
                return await once(Call(view, events, run, inst, model, info, "retry"), sent)
        msg = "unreachable: the retry policy neither returned nor raised"
        raise AssertionError(msg)  # pragma: no cover

    def _may_fall_back(
        self, route: Route, run: Run, err: LlmxError, plan: list[Candidate], index: int
    ) -> bool:
        run.errors.append(err)
        if isinstance(err, RateLimitError) and err.code == CLIENT_LIMIT_CODE:
            run.skipped.append(f"{err.provider}/{err.model}: skipped, {err.message}")
        if isinstance(err, ContextWindowExceededError):
            failed = self._view.info(plan[index])
            window = failed.context_window if failed is not None else None
            if window is not None:  # skip candidates known to be no larger
                keep = []
                for later in plan[index + 1 :]:
                    info = self._view.info(later)
                    if info is not None and (info.context_window or 0) <= window:
                        run.skipped.append(
                            f"{later.instance}/{later.model}: skipped, its context window "
                            f"({info.context_window}) is not larger than {window}"
                        )
                    else:
                        keep.append(later)
                plan[index + 1 :] = keep
            return True
        if route.fallback == "fail_fast" and isinstance(err, BadRequestError):
            return False  # the request itself is at fault: every candidate would refuse it
        if run.remaining() <= 0:
            run.skipped.append("no time left before the deadline for further candidates")
            return False
        return True

    @staticmethod
    def _final_error(run: Run, planned: int) -> LlmxError:
        errors = run.errors
        if len(errors) == 1 and planned == 1:
            # One candidate: its own typed error, so callers can catch RateLimitError etc.
            err = errors[0]
            assert isinstance(err, LlmxError)
            if isinstance(err, ProviderError):
                err.attempts = tuple(run.attempts)
                err.details = tuple(run.skipped)
            return err
        if not errors and not run.attempts:
            msg = "no candidate could take the request"
        else:
            tried = len({(a.provider, a.model) for a in run.attempts})
            msg = f"all candidates failed ({tried} tried, {len(run.attempts)} attempts)"
        if any("deadline" in s for s in run.skipped):
            msg += "; the deadline left no time for more"
        if run.skipped:
            msg += "\n  " + "\n  ".join(run.skipped)
        return AllCandidatesFailedError(msg, attempts=run.attempts, errors=errors)

    # -- hedging ----------------------------------------------------------------------------

    async def _hedged(
        self,
        route: Route,
        run: Run,
        plan: list[Candidate],
        hedge: HedgingStrategy,
        once: Once[_T],
    ) -> _T:
        """Send to the first candidate; if it has not answered (a stream: no first chunk)
        within the hedge delay and the budget allows, send the same request to the next
        and take whichever answers first; the other is cancelled (counted abandoned)."""
        index = 0
        while index < len(plan):
            first = plan[index]
            has_more = index + 1 < len(plan)
            kind: AttemptKind = "first" if index == 0 else "fallback"
            tasks: set[asyncio.Future[_T]] = {
                asyncio.ensure_future(self.candidate(run, first, has_more, once, kind))
            }
            if has_more:
                delay = hedge.hedge_delay(first, self._view)
                done, _ = await asyncio.wait(tasks, timeout=min(delay, max(run.remaining(), 0)))
                if not done and hedge.try_hedge():
                    index += 1
                    second = plan[index]
                    if ATTEMPT.isEnabledFor(INFO):
                        log_hedge(run, first.instance, first.model, _ref(second), delay)
                    tasks.add(
                        asyncio.ensure_future(
                            self.candidate(run, second, index + 1 < len(plan), once, "hedge")
                        )
                    )
            try:
                return await _first_success(tasks)
            except LlmxError as err:
                if not self._may_fall_back(route, run, err, plan, index):
                    break
                if index + 1 < len(plan) and ATTEMPT.isEnabledFor(INFO):
                    _log_fallback(run, plan[index], err, plan[index + 1])
                index += 1
        raise self._final_error(run, len(plan))


async def _first_success(tasks: set[asyncio.Future[_T]]) -> _T:
    """The first successful result; the others are cancelled, and a second success that
    finished in the same instant is discarded (an opened stream closes its connection). Raises the last error when all fail (the earlier
    ones are already recorded as attempts)."""
    pending = set(tasks)
    error: BaseException | None = None
    winner: Any = _NONE
    try:
        while pending and winner is _NONE:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is not None:
                    error = task.exception()
                elif winner is _NONE:
                    winner = task.result()
                else:
                    await _discard(task.result())
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            for task in pending:
                if not task.cancelled() and task.exception() is None:
                    await _discard(task.result())
    if winner is not _NONE:
        return winner  # type: ignore[no-any-return]
    assert error is not None
    raise error


_NONE = object()


async def _discard(result: object) -> None:
    if isinstance(result, Call):  # an opened stream: close its connection
        await result.close_source()
        result.abandoned("hedge lost")


def _ref(candidate: Candidate) -> str:
    return f"{candidate.instance}/{candidate.model}"


def _log_fallback(run: Run, failed: Candidate, err: LlmxError, to: Candidate) -> None:
    """The ``fallback`` record: the candidate that failed (a hedged pair's failure names
    its own instance), and the one tried next."""
    instance, model = failed.instance, failed.model
    if isinstance(err, ProviderError):
        instance, model = err.provider, err.model or model
    log_fallback(run, instance, model, err, _ref(to))


def _available_in(d: Instance, now: float) -> float:
    return max(d.breaker.reopen_in(), d.blocked_until - now, 0.0)


def _retry_decider(
    run: Run, inst: Instance, model: str, has_more: bool
) -> Callable[[BaseException], bool | float]:
    """The ``on`` hook the retry policy asks after each failure: whether to retry, and
    after how long (a provider's Retry-After), given the breaker, the retry budget,
    the deadline and whether another candidate could answer sooner."""
    policy = inst.retry
    tries = [1]  # the try that just failed, on this candidate

    def on(error: BaseException) -> bool | float:
        if tries[0] >= policy.attempts:
            return False  # the policy is out of attempts: no retry to pay for or log
        decision = decide(error)
        if decision is not False:
            tries[0] += 1
            if ATTEMPT.isEnabledFor(INFO):
                assert isinstance(error, ProviderError)
                wait = None if decision is True else float(decision)
                log_retry(run, inst.name, model, error, tries[0], policy.attempts, wait)
        return decision

    def decide(error: BaseException) -> bool | float:
        if not isinstance(error, ProviderError) or not error.retryable:
            return False
        if isinstance(error, CircuitOpenError) or inst.breaker.state == "open":
            return False
        remaining = run.remaining()
        wait = error.retry_after
        if wait is not None:
            if has_more or wait > policy.max_retry_after:
                return False  # another candidate now beats waiting on this one
            if wait >= remaining:
                run.skipped.append(
                    f"{inst.name}: retry skipped, Retry-After {wait:g} s exceeds the "
                    f"{max(remaining, 0):.2f} s left before the deadline"
                )
                return False
        elif remaining <= 0:
            return False
        if not inst.budget.try_spend():
            run.skipped.append(f"{inst.name}: retry skipped, retry budget exhausted")
            return False
        return True if wait is None else wait

    return on


_PROMPT_CACHING = Capability.PROMPT_CACHING.value
_DOCUMENTS = Capability.DOCUMENTS.value
_AUDIO = Capability.AUDIO.value


def check_capabilities(request: Request, inst: Instance, info: ModelInfo | None) -> None:
    """Refuse, before sending, what the model is known not to support."""
    if info is None or not info.capabilities:
        return
    if type(request) is not Request:  # an EmbeddingRequest (Client.embed)
        if not info.supports(Capability.EMBEDDINGS):
            msg = (
                f"{inst.name}/{info.id} does not make embeddings; choose a model with the "
                f"'embeddings' capability"
            )
            raise UnsupportedFeatureError(
                msg, provider=inst.name, model=info.id, feature=Capability.EMBEDDINGS.value
            )
        return
    needs = []
    if request.tools and not info.supports(Capability.TOOLS):
        needs.append(("tools", Capability.TOOLS))
    if request.response_format.type == "json" and not info.supports(Capability.JSON_MODE):
        needs.append(("JSON mode", Capability.JSON_MODE))
    if request.response_format.type == "json_schema" and not info.supports(Capability.JSON_SCHEMA):
        needs.append(("structured output (json_schema)", Capability.JSON_SCHEMA))
    if request.reasoning not in (None, "none", 0) and not info.supports(Capability.REASONING):
        needs.append(("reasoning", Capability.REASONING))
    if not info.supports(Capability.VISION) and request.has_images():  # scan parts last
        needs.append(("image input", Capability.VISION))
    caps = info.capabilities
    if _DOCUMENTS not in caps or _AUDIO not in caps:  # scanned only for a model lacking one
        # Inline, messages of one text part skipped: check_capabilities went from 0.30 to
        # 0.58 us with a call to media_kinds() per request, 0.44 us this way (four
        # text messages, gpt-4o-mini; timeit, process time).
        for m in request.messages:
            content = m.content
            if len(content) != 1 or type(content[0]) is not Text:
                docs, audio = request.media_kinds()
                if docs and _DOCUMENTS not in caps:
                    needs.append(("document (PDF) input", Capability.DOCUMENTS))
                if audio and _AUDIO not in caps:
                    needs.append(("audio input", Capability.AUDIO))
                break
    if _PROMPT_CACHING not in info.capabilities and (
        request.prompt_cache_key is not None or request.cache_breakpoints()
    ):
        what = "prompt caching (cache= breakpoints, prompt_cache_key)"
        needs.append((what, Capability.PROMPT_CACHING))
    if needs:
        what, cap = needs[0]
        msg = (
            f"{inst.name}/{info.id} does not support {what}; choose a model with the "
            f"{cap.value!r} capability"
        )
        raise UnsupportedFeatureError(msg, provider=inst.name, model=info.id, feature=cap.value)

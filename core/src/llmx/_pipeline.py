"""The request pipeline: resolve, cache lookup, plan, then for each candidate in
routing order: circuit breaker -> rate limits -> concurrency limit -> retry policy
(deadline (provider call)) -> stats and event hooks; fall back to the next candidate on
failure; store the answer in the cache.

Each concern is its own small piece (``_resilience``, ``_retry``, ``_routing``,
``_timeouts``, ``_stats``); this module only composes them. The fast path — one
candidate that answers at once — does no allocation beyond the attempt record.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from llmx._cache import CacheLayer, CachePolicy
from llmx._components import Candidate
from llmx._config import structure_settings
from llmx._errors import (
    AllCandidatesFailedError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigError,
    ContextWindowExceededError,
    DeadlineExceededError,
    LlmxError,
    MalformedResponseError,
    PermissionDeniedError,
    PluginError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    UnsupportedFeatureError,
)
from llmx._events import AttemptEnd, BreakerTransition, RequestEnd, RequestError, RequestStart
from llmx._ratelimit import CLIENT_LIMIT_CODE
from llmx._stats import StatsRecorder
from llmx._stream import ResponseBuilder, Stream, chunks_of
from llmx._timeouts import Watchdog
from llmx._tokens import estimate_input_tokens, estimate_output_tokens
from llmx._types import Attempt, Capability, Response, StreamChunk, StreamEnd, Usage, replace

if TYPE_CHECKING:
    from llmx._components import RoutingStrategy
    from llmx._config import Config
    from llmx._pool import Deployment, ProviderPool
    from llmx._ratelimit import Permit
    from llmx._registry import Registry
    from llmx._stats import ModelCounters
    from llmx._types import ModelInfo, Request

_T = TypeVar("_T")
_fill = object.__setattr__
_perf = time.perf_counter
_monotonic = time.monotonic
_ids = itertools.count(1)
_ID_PREFIX = os.urandom(4).hex()

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
_DEFAULT_COOLDOWN = 1.0  # after a 429 without Retry-After


def new_request_id() -> str:
    """A short id unique within this process run (``"3f2a9c1b-17"``)."""
    return f"{_ID_PREFIX}-{next(_ids)}"


@attrs.frozen
class Route:
    """A resolved model reference: its candidates, strategy, fallback policy, deadline."""

    candidates: tuple[Candidate, ...]
    strategy: RoutingStrategy | None
    fallback: Literal["fail_fast", "try_all"] = "fail_fast"
    deadline: float | None = None


class _WithoutView:
    """Adapts a strategy whose ``order(candidates, request)`` predates the ``view``
    argument (the contract grows by adding arguments; old strategies keep working)."""

    __slots__ = ("_strategy",)

    def __init__(self, strategy: Any) -> None:
        self._strategy = strategy

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: object
    ) -> Sequence[Candidate]:
        return self._strategy.order(candidates, request)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._strategy, name)


def _accepting_view(strategy: Any) -> Any:
    """``strategy``, or an adapter if its ``order`` takes no ``view``."""
    import inspect

    try:
        params = inspect.signature(strategy.order).parameters.values()
    except (TypeError, ValueError):
        return strategy
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in params):
        return strategy
    return _WithoutView(strategy)


class _Run:
    """The state of one request across its attempts."""

    __slots__ = ("attempts", "deadline", "errors", "request", "request_id", "skipped")

    def __init__(self, request_id: str, request: Request, deadline: float | None) -> None:
        self.request_id = request_id
        self.request = request
        self.deadline = deadline  # monotonic time, or None
        self.attempts: list[Attempt] = []
        self.errors: list[BaseException] = []
        self.skipped: list[str] = []

    def remaining(self) -> float:
        """Seconds left before the deadline (inf without one)."""
        if self.deadline is None:
            return float("inf")
        return self.deadline - _monotonic()


class Pipeline:
    """Runs requests for one client (see the module docstring).

    It is also the :class:`~llmx.RoutingView` that strategies consult.
    """

    def __init__(self, config: Config, registry: Registry, pool: ProviderPool) -> None:
        self._config = config
        self._registry = registry
        self._pool = pool
        self._routes: dict[str, Route] = {}
        self._strategies: dict[str, RoutingStrategy] = {}
        self.stats = StatsRecorder()
        self._ewma: dict[tuple[str, str], float] = {}
        self.cache: CacheLayer | None = CacheLayer.build(config, registry)

    async def aclose(self) -> None:
        """Close the response cache's backend."""
        if self.cache is not None:
            await self.cache.aclose()

    def _cache_for(self, cache: CachePolicy | str | None) -> tuple[CacheLayer | None, Any]:
        """The cache stage and the call's own policy (``cache=``), checked."""
        override = CachePolicy.of(cache)
        layer = self.cache
        if layer is None and override is not None and override.mode not in (None, "off"):
            msg = (
                f"cache={cache!r} was given but no response cache is configured; add a "
                '[cache] section (e.g. backend = "memory") to llmx.toml'
            )
            raise ConfigError(msg)
        return layer, override

    # -- events -------------------------------------------------------------------------

    def breaker_transition(self, instance: str, old: str, new: str, reason: str) -> None:
        """Tell event hooks that an instance's breaker changed state."""
        hook = self._registry.events.breaker
        if hook is not None:
            hook(event=BreakerTransition(instance, old, new, reason))

    # -- resolving ------------------------------------------------------------------------

    def route(self, model_ref: str) -> Route:
        """The candidates for ``model_ref`` (``instance/model`` or an alias), cached."""
        route = self._routes.get(model_ref)
        if route is None:
            route = self._routes[model_ref] = self._resolve(model_ref)
        return route

    def _resolve(self, model_ref: str) -> Route:
        config = self._config
        alias = config.aliases.get(model_ref)
        if alias is not None:
            candidates = tuple(self._candidate(ref) for ref in alias.candidates)
            name = alias.strategy or config.routing.name or "priority"
            path = f"$.aliases.{model_ref}.strategy" if alias.strategy else "$.routing.strategy"
            return Route(candidates, self._strategy(name, path), alias.fallback, alias.deadline)
        if "/" not in model_ref:
            instances = ", ".join(sorted(config.providers)) or "none configured"
            aliases = ", ".join(sorted(config.aliases)) or "none"
            msg = (
                f"unknown model {model_ref!r}: use 'instance/model' (instances: {instances}) "
                f"or an alias (aliases: {aliases})"
            )
            raise ConfigError(msg)
        return Route((self._candidate(model_ref),), None)

    def _candidate(self, ref: str) -> Candidate:
        instance, _, model = ref.partition("/")
        if not instance or not model:
            msg = f"model reference {ref!r} is not of the form 'instance/model'"
            raise ConfigError(msg)
        try:
            deployment = self._pool.get(instance)
        except PluginError as err:
            configured = ", ".join(sorted(self._config.providers)) or "none"
            msg = (
                f"unknown provider instance {instance!r} in model {ref!r}: no [providers.{instance}] "
                f"is configured (configured: {configured}), and it is not a usable provider type: {err}"
            )
            raise ConfigError(msg) from err
        cfg = deployment.config
        model = cfg.map_model(model)
        return Candidate(instance, model, cfg.priority, cfg.weight, deployment.model_info(model))

    def _strategy(self, name: str, path: str) -> RoutingStrategy:
        strategy = self._strategies.get(name)
        if strategy is None:
            try:
                reg = self._registry.get("routing_strategy", name)
            except PluginError as err:
                msg = f"{err} @ {path}"
                raise ConfigError(msg) from err
            options = self._config.routing.options if name == self._config.routing.name else {}
            settings = structure_settings(reg.settings, options, "$.routing")
            strategy = _accepting_view(reg.factory(settings))
            base_name = getattr(settings, "base", None)
            if base_name is not None and hasattr(strategy, "bind_base"):
                if base_name == name:
                    msg = f"strategy {name!r} cannot use itself as its base @ $.routing.base"
                    raise ConfigError(msg)
                strategy.bind_base(self._strategy(base_name, "$.routing.base"))
            self._strategies[name] = strategy
        return strategy

    # -- RoutingView ----------------------------------------------------------------------

    def in_flight(self, instance: str) -> int:
        """Requests in flight to ``instance``."""
        return self._pool.get(instance).in_flight

    def latency(self, instance: str, model: str) -> float | None:
        """Recent latency (EWMA, seconds) of ``model`` on ``instance``."""
        return self._ewma.get((instance, model))

    def latency_quantile(self, instance: str, model: str, q: float) -> float | None:
        """A latency quantile of ``model`` on ``instance`` (None under 20 samples)."""
        counters = self.stats.counters(instance, model)
        if counters.latency.count < 20:
            return None
        return counters.latency.quantile(q)

    def info(self, candidate: Candidate) -> ModelInfo | None:
        """What is known about ``candidate``'s model (from the provider's model data).

        Called on the request path (a loop is running), so the provider is built if
        needed: an aiohttp session opens no connection until it sends.
        """
        if candidate.info is not None:
            return candidate.info
        deployment = self._pool.get(candidate.instance)
        if deployment.provider is None:
            deployment.open()
        return deployment.model_info(candidate.model)

    def estimated_cost(self, candidate: Candidate, request: Request) -> float | None:
        """The request's estimated USD on ``candidate`` (None if prices are unknown)."""
        info = self.info(candidate)
        if info is None:
            return None
        usage = Usage(estimate_input_tokens(request), estimate_output_tokens(request))
        return info.cost(usage)

    # -- planning -------------------------------------------------------------------------

    def _plan(self, route: Route, run: _Run) -> list[Candidate]:
        """Candidates in routing order; open breakers and cooling instances go last,
        candidates whose context window is known to be too small are left out."""
        request = run.request
        candidates: Sequence[Candidate] = route.candidates
        if route.strategy is not None and len(candidates) > 1:
            candidates = route.strategy.order(candidates, request, self)
        if len(candidates) == 1:
            return list(candidates)
        ready: list[Candidate] = []
        later: list[Candidate] = []
        now = _monotonic()
        needed: int | None = None
        for c in candidates:
            info = self.info(c)
            if info is not None and info.context_window is not None:
                if needed is None:
                    needed = estimate_input_tokens(request)
                if needed > info.context_window:
                    run.skipped.append(
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
            later.sort(key=lambda c: self._available_in(self._pool.get(c.instance), now))
        return ready + later

    @staticmethod
    def _available_in(d: Deployment, now: float) -> float:
        return max(d.breaker.reopen_in(), d.blocked_until - now, 0.0)

    @staticmethod
    def check_capabilities(
        request: Request, deployment: Deployment, info: ModelInfo | None
    ) -> None:
        """Refuse, before sending, what the model is known not to support."""
        if info is None or not info.capabilities:
            return
        needs = []
        if request.tools and not info.supports(Capability.TOOLS):
            needs.append(("tools", Capability.TOOLS))
        if request.response_format.type == "json" and not info.supports(Capability.JSON_MODE):
            needs.append(("JSON mode", Capability.JSON_MODE))
        if request.response_format.type == "json_schema" and not info.supports(
            Capability.JSON_SCHEMA
        ):
            needs.append(("structured output (json_schema)", Capability.JSON_SCHEMA))
        if request.has_images() and not info.supports(Capability.VISION):
            needs.append(("image input", Capability.VISION))
        if needs:
            what, cap = needs[0]
            msg = (
                f"{deployment.name}/{info.id} does not support {what}; choose a model with the "
                f"{cap.value!r} capability"
            )
            raise UnsupportedFeatureError(
                msg, provider=deployment.name, model=info.id, feature=cap.value
            )

    # -- complete -----------------------------------------------------------------------------

    def _deadline(self, route: Route, timeout: float | None) -> float | None:
        seconds = timeout if timeout is not None else route.deadline
        if seconds is None:
            seconds = self._config.deadline
        return None if seconds is None else _monotonic() + seconds

    async def complete(
        self,
        request: Request,
        *,
        timeout: float | None = None,
        cache: CachePolicy | str | None = None,
    ) -> Response:
        """Run one request to a whole Response (from the cache, if it holds it)."""
        events = self._registry.events
        started = _perf()
        request_id = new_request_id() if events.any else ""
        if events.start is not None:
            events.start(event=RequestStart(request_id, request, False, started))
        try:
            route = self.route(request.model)
            run = _Run(request_id, request, self._deadline(route, timeout))
            if self.cache is None and cache is None:
                response = await self._complete(route, run)
            else:
                response = await self._complete_cached(route, run, cache)
        except BaseException as err:
            if events.error is not None and isinstance(err, Exception):
                events.error(event=RequestError(request_id, err, _perf() - started))
            raise
        if events.end is not None:
            events.end(event=RequestEnd(request_id, response, _perf() - started))
        return response

    async def _complete_cached(
        self, route: Route, run: _Run, cache: CachePolicy | str | None
    ) -> Response:
        layer, override = self._cache_for(cache)
        slots = None if layer is None else layer.plan(run.request, route.candidates, override)
        if slots is None:
            return await self._complete(route, run)
        assert layer is not None
        hit = await layer.lookup(slots)
        if hit is not None:
            return hit[0]
        response = await self._complete(route, run)
        await layer.store(slots, response)
        return response

    async def _complete(self, route: Route, run: _Run) -> Response:
        plan = self._plan(route, run)
        strategy = route.strategy
        if strategy is not None and len(plan) > 1 and hasattr(strategy, "hedge_delay"):
            return await self._hedged(route, run, plan, strategy)
        last = len(plan) - 1
        for index, candidate in enumerate(plan):
            try:
                return await self._on_candidate(run, candidate, index < last, self._attempt)
            except LlmxError as err:
                if not self._may_fall_back(route, run, err, plan, index):
                    break
        raise self._final_error(run, len(plan))

    def _may_fall_back(
        self, route: Route, run: _Run, err: LlmxError, plan: list[Candidate], index: int
    ) -> bool:
        run.errors.append(err)
        if isinstance(err, RateLimitError) and err.code == CLIENT_LIMIT_CODE:
            run.skipped.append(f"{err.provider}/{err.model}: skipped, {err.message}")
        if isinstance(err, ContextWindowExceededError):
            failed = self.info(plan[index])
            window = failed.context_window if failed is not None else None
            if window is not None:  # skip candidates known to be no larger
                keep = []
                for later in plan[index + 1 :]:
                    info = self.info(later)
                    if info is not None and (info.context_window or 0) <= window:
                        run.skipped.append(
                            f"{later.instance}/{later.model}: skipped, its context window "
                            f"({info.context_window}) is not larger than {window}"
                        )
                    else:
                        keep.append(later)
                plan[index + 1 :] = keep
            return True
        if (
            route.fallback == "fail_fast"
            and isinstance(err, BadRequestError)
            and not isinstance(err, ContextWindowExceededError)
        ):
            return False  # the request itself is at fault: every candidate would refuse it
        if run.remaining() <= 0:
            run.skipped.append("no time left before the deadline for further candidates")
            return False
        return True

    def _final_error(self, run: _Run, planned: int) -> LlmxError:
        errors = run.errors
        deadline_note = any("deadline" in s for s in run.skipped)
        if len(errors) == 1 and planned == 1:
            # One candidate: its own typed error, so callers can catch RateLimitError etc.
            err = errors[0]
            if isinstance(err, ProviderError):
                err.attempts = tuple(run.attempts)
                err.details = tuple(run.skipped)
            assert isinstance(err, LlmxError)
            return err
        if not errors and not run.attempts:
            msg = "no candidate could take the request"
        else:
            tried = len({(a.provider, a.model) for a in run.attempts})
            msg = f"all candidates failed ({tried} tried, {len(run.attempts)} attempts)"
        if deadline_note:
            msg += "; the deadline left no time for more"
        if run.skipped:
            msg += "\n  " + "\n  ".join(run.skipped)
        return AllCandidatesFailedError(msg, attempts=run.attempts, errors=errors)

    async def _on_candidate(
        self,
        run: _Run,
        candidate: Candidate,
        has_more: bool,
        attempt_once: Callable[..., Awaitable[_T]],
    ) -> _T:
        """One candidate, for a whole answer (``attempt_once`` is ``_attempt``) or a
        stream (``_open_attempt``): the first attempt directly, retries (if any) through
        the candidate's retry policy."""
        deployment = self._pool.get(candidate.instance)
        provider = deployment.open()
        info = self.info(candidate)
        self.check_capabilities(run.request, deployment, info)
        request = run.request
        sent = request if request.model == candidate.model else request.with_model(candidate.model)
        try:
            return await attempt_once(run, deployment, candidate, provider, sent, info, False)
        except ProviderError as err:
            policy = deployment.retry
            if not err.retryable or policy.attempts <= 1:
                raise
            replay: ProviderError | None = err
        hook = self._retry_hook(run, deployment, has_more)
        async for attempt in policy.retrying(hook, timeout=run.remaining()):
            with attempt:
                if replay is not None:
                    first, replay = replay, None
                    raise first
                return await attempt_once(run, deployment, candidate, provider, sent, info, True)
        msg = "unreachable: the retry policy neither returned nor raised"
        raise AssertionError(msg)  # pragma: no cover

    def _retry_hook(self, run: _Run, deployment: Deployment, has_more: bool) -> Any:
        policy = deployment.retry

        def on(error: BaseException) -> bool | float:
            if not isinstance(error, ProviderError) or not error.retryable:
                return False
            if isinstance(error, CircuitOpenError) or deployment.breaker.state == "open":
                return False
            remaining = run.remaining()
            wait = error.retry_after
            if wait is not None:
                if has_more or wait > policy.max_retry_after:
                    return False  # another candidate now beats waiting on this one
                if wait >= remaining:
                    run.skipped.append(
                        f"{deployment.name}: retry skipped, Retry-After {wait:g} s exceeds the "
                        f"{max(remaining, 0):.2f} s left before the deadline"
                    )
                    return False
            elif remaining <= 0:
                return False
            if not deployment.budget.try_spend():
                run.skipped.append(f"{deployment.name}: retry skipped, retry budget exhausted")
                return False
            return True if wait is None else wait

        return on

    async def _attempt(
        self,
        run: _Run,
        deployment: Deployment,
        candidate: Candidate,
        provider: Any,
        sent: Request,
        info: ModelInfo | None,
        retry: bool,
    ) -> Response:
        """One provider call, guarded and accounted for."""
        permit = await self._admit(run, deployment, candidate.model)
        counters = self.stats.counters(deployment.name, candidate.model)
        counters.requests += 1
        if retry:
            counters.retries += 1
        else:
            deployment.budget.record_request()
        deployment.in_flight += 1
        limit = deployment.limit
        number = len(run.attempts) + 1
        t0 = _perf()
        watchdog = self._watchdog(run, deployment, candidate.model)
        try:
            if watchdog is None:
                response = await provider.complete(sent)
            else:
                with watchdog:
                    response = await provider.complete(sent)
        except BaseException as err:
            duration = _perf() - t0
            deployment.in_flight -= 1
            if limit is not None:
                status = err.status if isinstance(err, ProviderError) else None
                limit.release("overload" if status in _OVERLOAD_STATUSES else "other", duration)
            if permit is not None:
                permit.release(None)
            error = self._failed(
                run, deployment, candidate, counters, number, t0, duration, err, info
            )
            if error is err:
                raise
            raise error from err
        duration = _perf() - t0
        deployment.in_flight -= 1
        if limit is not None:
            limit.release("ok", duration)
        deployment.breaker.record_success()
        usage = response.usage
        if permit is not None:
            permit.release(usage.total_tokens or None)
        cost = response.cost
        if cost is None and info is not None:
            cost = info.cost(usage)
        counters.successes += 1
        counters.input_tokens += usage.input_tokens
        counters.output_tokens += usage.output_tokens
        if cost is not None:
            counters.cost += cost
        counters.latency.record(duration)
        self._observe_latency(deployment.name, candidate.model, duration)
        attempt = Attempt(deployment.name, candidate.model, duration)
        run.attempts.append(attempt)
        # The provider's Response is fresh and not yet shared (the Provider contract):
        # complete it in place rather than copying it on every request.
        _fill(response, "provider", deployment.name)
        _fill(response, "latency", duration)
        _fill(response, "cost", cost)
        _fill(response, "attempts", (attempt,) if number == 1 else tuple(run.attempts))
        hook = self._registry.events.attempt
        if hook is not None:
            hook(
                event=AttemptEnd(
                    run.request_id, deployment.name, candidate.model, number, t0, duration, usage
                )
            )
        return response  # type: ignore[no-any-return]

    def _observe_latency(self, instance: str, model: str, duration: float) -> None:
        key = (instance, model)
        previous = self._ewma.get(key)
        self._ewma[key] = duration if previous is None else previous + 0.2 * (duration - previous)

    async def _admit(self, run: _Run, deployment: Deployment, model: str) -> Permit | None:
        """Breaker, Retry-After cooldown, rate limits and concurrency limit, before
        anything is sent. Returns the rate-limit permit to release after the attempt."""
        blocked = deployment.blocked_until - _monotonic()
        if blocked > 0:
            if blocked >= run.remaining():
                msg = (
                    f"cooling down for {blocked:.2f} s after the provider asked to wait "
                    "(Retry-After), longer than the time left before the deadline"
                )
                raise RateLimitError(
                    msg, provider=deployment.name, retryable=False, retry_after=blocked
                )
            await asyncio.sleep(blocked)
        if not deployment.breaker.try_acquire():
            msg = (
                f"circuit open after repeated failures; next probe in "
                f"{deployment.breaker.reopen_in():.1f} s"
            )
            raise CircuitOpenError(
                msg,
                provider=deployment.name,
                retryable=False,
                retry_after=deployment.breaker.reopen_in(),
            )
        permit = None
        if deployment.limiter is not None:
            try:
                permit = await deployment.limiter.acquire(model, run.request, run.remaining())
            except BaseException:
                deployment.breaker.release()
                raise
        if deployment.limit is not None:
            try:
                if run.deadline is None:
                    await deployment.limit.acquire()
                else:
                    await asyncio.wait_for(deployment.limit.acquire(), max(run.remaining(), 0))
            except (asyncio.TimeoutError, TimeoutError):
                deployment.breaker.release()
                if permit is not None:
                    permit.release(None)
                msg = "no concurrency slot before the deadline (adaptive limit)"
                raise DeadlineExceededError(msg, provider=deployment.name) from None
            except BaseException:
                deployment.breaker.release()
                if permit is not None:
                    permit.release(None)
                raise
        return permit

    def _watchdog(self, run: _Run, deployment: Deployment, model: str) -> Watchdog | None:
        """A watchdog only when the request's deadline is nearer than the instance's own
        attempt timeout (which aiohttp enforces anyway)."""
        if run.deadline is None:
            return None
        remaining = run.remaining()
        if remaining >= deployment.config.timeout:
            return None
        loop_deadline = asyncio.get_running_loop().time() + max(remaining, 0.0)
        return Watchdog(
            provider=deployment.name,
            model=model,
            deadline=loop_deadline,
            deadline_reason="the request's deadline passed",
        )

    def _failed(
        self,
        run: _Run,
        deployment: Deployment,
        candidate: Candidate,
        counters: ModelCounters,
        number: int,
        t0: float,
        duration: float,
        err: BaseException,
        info: ModelInfo | None,
    ) -> BaseException:
        """Account for a failed attempt; return the error to raise (typed)."""
        error: BaseException = err
        if isinstance(err, ProviderError):
            if isinstance(err, _INSTANCE_FAILURES):
                deployment.breaker.record_failure(f"{type(err).__name__}: {err.message}")
            else:
                deployment.breaker.release()
            if isinstance(err, RateLimitError):
                wait = err.retry_after if err.retry_after is not None else _DEFAULT_COOLDOWN
                deployment.blocked_until = max(deployment.blocked_until, _monotonic() + wait)
            if isinstance(err, ProviderTimeoutError) and run.remaining() <= 0:
                error = DeadlineExceededError(
                    f"the request's deadline passed during this attempt ({err.message})",
                    provider=err.provider,
                    model=err.model,
                )
        elif isinstance(err, LlmxError):
            deployment.breaker.release()
        elif isinstance(err, Exception):
            deployment.breaker.record_failure(f"provider bug: {type(err).__name__}")
            msg = (
                f"provider {deployment.registration.origin} raised {type(err).__name__}: {err} "
                "(a provider bug: providers should raise llmx.ProviderError subclasses)"
            )
            error = ProviderError(msg, provider=deployment.name, model=candidate.model)
        else:  # cancelled (a lost hedge, a caller's timeout): no verdict on the instance
            deployment.breaker.release()
        kind = type(error).__name__
        if isinstance(err, (asyncio.CancelledError, ProviderTimeoutError)):
            # Sent but abandoned: the provider may bill it; estimate from the prompt.
            counters.abandoned_attempts += 1
            if info is not None:
                estimate = info.cost(Usage(estimate_input_tokens(run.request), 0))
                if estimate is not None:
                    counters.abandoned_cost += estimate
        if not isinstance(err, asyncio.CancelledError):
            counters.errors[kind] = counters.errors.get(kind, 0) + 1
        message = error.message if isinstance(error, ProviderError) else str(error)
        run.attempts.append(Attempt(deployment.name, candidate.model, duration, kind, message))
        hook = self._registry.events.attempt
        if hook is not None:
            hook(
                event=AttemptEnd(
                    run.request_id,
                    deployment.name,
                    candidate.model,
                    number,
                    t0,
                    duration,
                    None,
                    error,
                )
            )
        return error

    # -- hedging --------------------------------------------------------------------------

    async def _hedged(
        self, route: Route, run: _Run, plan: list[Candidate], strategy: Any
    ) -> Response:
        """Send to the first candidate; if no answer within the hedge delay and the budget
        allows, send the same request to the next and take whichever answers first."""
        index = 0
        while index < len(plan):
            first = plan[index]
            has_more = index + 1 < len(plan)
            primary = asyncio.ensure_future(self._on_candidate(run, first, has_more, self._attempt))
            tasks: set[asyncio.Future[Response]] = {primary}
            if has_more:
                delay = strategy.hedge_delay(first, self)
                done, _ = await asyncio.wait(tasks, timeout=min(delay, max(run.remaining(), 0)))
                if not done and strategy.try_hedge():
                    index += 1
                    second = plan[index]
                    tasks.add(
                        asyncio.ensure_future(
                            self._on_candidate(run, second, index + 1 < len(plan), self._attempt)
                        )
                    )
            try:
                result = await self._first_success(tasks)
            except LlmxError as err:
                if not self._may_fall_back(route, run, err, plan, index):
                    break
                index += 1
                continue
            return result
        raise self._final_error(run, len(plan))

    @staticmethod
    async def _first_success(tasks: set[asyncio.Future[Response]]) -> Response:
        """The first successful result; the others are cancelled. Raises the last error
        when all fail (earlier errors are already recorded as attempts)."""
        pending = set(tasks)
        error: BaseException | None = None
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is None:
                        return task.result()
                    error = task.exception()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        assert error is not None
        raise error

    # -- streaming --------------------------------------------------------------------------

    def stream(
        self,
        request: Request,
        *,
        timeout: float | None = None,
        cache: CachePolicy | str | None = None,
    ) -> Stream:
        """Run one request as a stream of chunks (replayed from the cache on a hit)."""
        state: dict[str, Response | None] = {"response": None}
        return Stream(self._stream(request, state, timeout, cache), lambda: state["response"])

    async def _stream(
        self,
        request: Request,
        state: dict[str, Response | None],
        timeout: float | None,
        cache: CachePolicy | str | None = None,
    ) -> AsyncIterator[StreamChunk]:
        events = self._registry.events
        started = _perf()
        request_id = new_request_id() if events.any else ""
        if events.start is not None:
            events.start(event=RequestStart(request_id, request, True, started))
        try:
            route = self.route(request.model)
            run = _Run(request_id, request, self._deadline(route, timeout))
            layer = slots = None
            if self.cache is not None or cache is not None:
                layer, override = self._cache_for(cache)
                if layer is not None:
                    slots = layer.plan(request, route.candidates, override)
            hit = None if slots is None or layer is None else await layer.lookup(slots)
            if hit is not None:
                response, chunks = hit
                replay = chunks if chunks is not None else [c async for c in chunks_of(response)]
                for chunk in replay:
                    if type(chunk) is not StreamEnd:
                        yield chunk
            else:
                opened = await self._open_stream(route, run)
                delivery = self._deliver(run, opened)
                keep: list[StreamChunk] | None = None
                if slots is not None and any(s.writable for s in slots):
                    keep = []
                try:
                    async for chunk in delivery:
                        if keep is not None:
                            keep.append(chunk)
                        yield chunk
                finally:
                    await delivery.aclose()  # closing early must reach the provider's stream now
                response = opened.response
                if keep is not None and layer is not None and slots is not None:
                    await layer.store(slots, response, keep)  # only a completed stream
            state["response"] = response
            yield StreamEnd(response.finish_reason, response.usage, response.model, response.id)
        except BaseException as err:
            if events.error is not None and isinstance(err, Exception):
                events.error(event=RequestError(request_id, err, _perf() - started))
            raise
        if events.end is not None:
            events.end(event=RequestEnd(request_id, response, _perf() - started))

    async def _open_stream(self, route: Route, run: _Run) -> _OpenStream:
        """Fall back across candidates until one yields its first chunk."""
        plan = self._plan(route, run)
        last = len(plan) - 1
        for index, candidate in enumerate(plan):
            try:
                return await self._on_candidate(run, candidate, index < last, self._open_attempt)
            except LlmxError as err:
                if not self._may_fall_back(route, run, err, plan, index):
                    break
        raise self._final_error(run, len(plan))

    async def _open_attempt(
        self,
        run: _Run,
        deployment: Deployment,
        candidate: Candidate,
        provider: Any,
        sent: Request,
        info: ModelInfo | None,
        retry: bool,
    ) -> _OpenStream:
        """Start one streamed attempt and wait for its first chunk (under the first-byte
        timeout and the deadline); the attempt stays open until the stream ends."""
        permit = await self._admit(run, deployment, candidate.model)
        counters = self.stats.counters(deployment.name, candidate.model)
        counters.requests += 1
        if retry:
            counters.retries += 1
        else:
            deployment.budget.record_request()
        deployment.in_flight += 1
        opened = _OpenStream(
            self, run, deployment, candidate, counters, info, len(run.attempts) + 1
        )
        opened.permit = permit
        try:
            if deployment.can_stream:
                opened.source = provider.stream(sent)
            else:
                opened.source = chunks_of(await provider.complete(sent))
            loop_now = asyncio.get_running_loop().time()
            first_byte = deployment.config.first_byte_timeout
            deadline = None if run.deadline is None else loop_now + max(run.remaining(), 0.0)
            if first_byte is None and deadline is None:
                opened.first = await opened.source.__anext__()
            else:
                with Watchdog(
                    provider=deployment.name,
                    model=candidate.model,
                    deadline=deadline,
                    deadline_reason="the request's deadline passed before the first chunk",
                    first_byte_by=None if first_byte is None else loop_now + first_byte,
                ):
                    opened.first = await opened.source.__anext__()
        except StopAsyncIteration:
            opened.first = None  # an empty stream: no chunk at all
        except BaseException as err:
            await opened.fail(err)  # raises the typed error
        opened.ttft = _perf() - opened.t0
        return opened

    async def _deliver(self, run: _Run, opened: _OpenStream) -> AsyncGenerator[StreamChunk, None]:
        """Yield the opened stream's chunks; errors after the first chunk are surfaced,
        never spliced with another candidate's answer."""
        builder = opened.builder
        source = opened.source
        assert source is not None
        idle = opened.deployment.config.idle_timeout
        completed = False
        try:
            chunk = opened.first
            try:
                while chunk is not None:
                    builder.add(chunk)
                    if type(chunk) is not StreamEnd:
                        yield chunk
                    if idle is None:
                        chunk = await source.__anext__()
                    else:
                        dog = Watchdog(
                            provider=opened.deployment.name,
                            model=opened.candidate.model,
                            deadline=None,
                            deadline_reason="",
                            idle=idle,
                        )
                        dog.touch()  # silence counts from the last chunk
                        with dog:
                            chunk = await source.__anext__()
            except StopAsyncIteration:
                pass
            completed = True
        except (GeneratorExit, asyncio.CancelledError):
            raise  # the caller stopped reading: abandoned, below
        except BaseException as err:
            await opened.fail(err)
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
            if not opened.finished and not completed:
                opened.abandon()
        opened.succeed()


class _OpenStream:
    """One streamed attempt from its start to its end (success, failure or abandon)."""

    __slots__ = (
        "builder",
        "candidate",
        "counters",
        "deployment",
        "finished",
        "first",
        "info",
        "number",
        "permit",
        "pipeline",
        "response",
        "run",
        "source",
        "t0",
        "ttft",
    )

    def __init__(
        self,
        pipeline: Pipeline,
        run: _Run,
        deployment: Deployment,
        candidate: Candidate,
        counters: ModelCounters,
        info: ModelInfo | None,
        number: int,
    ) -> None:
        self.pipeline = pipeline
        self.run = run
        self.deployment = deployment
        self.candidate = candidate
        self.counters = counters
        self.info = info
        self.number = number
        self.source: AsyncIterator[StreamChunk] | None = None
        self.first: StreamChunk | None = None
        self.builder = ResponseBuilder(candidate.model)
        self.t0 = _perf()
        self.ttft: float | None = None
        self.finished = False
        self.response: Response = Response("", candidate.model, deployment.name)
        self.permit: Permit | None = None

    def _end(self, outcome: Literal["ok", "overload", "other"], tokens: int | None = None) -> float:
        self.finished = True
        duration = _perf() - self.t0
        self.deployment.in_flight -= 1
        if self.deployment.limit is not None:
            self.deployment.limit.release(outcome, duration)
        if self.permit is not None:
            self.permit.release(tokens)
        return duration

    async def fail(self, err: BaseException) -> None:
        """The attempt failed: account for it and raise the typed error."""
        source = self.source
        if source is not None and hasattr(source, "aclose"):
            try:
                await source.aclose()
            except Exception:  # the original error is the one to report
                pass
        status = err.status if isinstance(err, ProviderError) else None
        duration = self._end("overload" if status in _OVERLOAD_STATUSES else "other")
        error = self.pipeline._failed(
            self.run,
            self.deployment,
            self.candidate,
            self.counters,
            self.number,
            self.t0,
            duration,
            err,
            self.info,
        )
        if error is err:
            raise err
        raise error from err

    def abandon(self) -> None:
        """The caller stopped reading before the end: the attempt may still be billed."""
        duration = self._end("other")
        self.deployment.breaker.release()
        self.counters.abandoned_attempts += 1
        if self.info is not None:
            estimate = self.info.cost(Usage(estimate_input_tokens(self.run.request), 0))
            if estimate is not None:
                self.counters.abandoned_cost += estimate
        self.run.attempts.append(
            Attempt(
                self.deployment.name,
                self.candidate.model,
                duration,
                "Abandoned",
                "stream closed early",
            )
        )

    def succeed(self) -> None:
        """The stream ended normally: account for it and build the Response."""
        usage_so_far = self.builder.usage
        duration = self._end("ok", usage_so_far.total_tokens or None if usage_so_far else None)
        deployment, candidate, counters = self.deployment, self.candidate, self.counters
        deployment.breaker.record_success()
        response = self.builder.build(provider=deployment.name)
        usage = response.usage
        cost = self.info.cost(usage) if self.info is not None else None
        counters.successes += 1
        counters.input_tokens += usage.input_tokens
        counters.output_tokens += usage.output_tokens
        if cost is not None:
            counters.cost += cost
        counters.latency.record(duration)
        if self.ttft is not None:
            counters.ttft.record(self.ttft)
        self.pipeline._observe_latency(deployment.name, candidate.model, duration)
        self.run.attempts.append(Attempt(deployment.name, candidate.model, duration))
        self.response = replace(
            response, latency=duration, cost=cost, attempts=tuple(self.run.attempts)
        )
        hook = self.pipeline._registry.events.attempt
        if hook is not None:
            hook(
                event=AttemptEnd(
                    self.run.request_id,
                    deployment.name,
                    candidate.model,
                    self.number,
                    self.t0,
                    duration,
                    usage,
                    None,
                    self.ttft,
                )
            )

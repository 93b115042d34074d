"""The request path, composed. Read :meth:`Pipeline.complete` and
:meth:`Pipeline.stream` top to bottom; each step lives in its own module:

1. :class:`~llmx._engine.run.Run` — the request's id, events, deadline and records;
2. :class:`~llmx._engine.resolve.Resolver` — model reference or alias -> a Route;
3. the response cache (:mod:`llmx._cache`) — a hit ends the request here;
4. :class:`~llmx._engine.fallback.Fallback` — plan, then each candidate (or hedged),
   each with its retries, until one answers;
5. one attempt: :func:`complete_once` or :func:`llmx._engine.stream.open_once`, both
   through :class:`~llmx._engine.call.Call` (admit, watch, then exactly one of
   succeeded / failed / abandoned);
6. the cache stores the answer; the Run emits the request's end (or error) event.

A stream runs the same steps in :func:`~llmx._engine.stream.stream_request`, the one
generator the :class:`~llmx.Stream` handle hands to the caller.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from llmx._cache import CacheLayer
from llmx._engine.call import Call
from llmx._engine.fallback import Fallback
from llmx._engine.resolve import Resolver, Route
from llmx._engine.run import Run
from llmx._engine.stream import stream_request
from llmx._engine.view import LiveView
from llmx._errors import ConfigError, LlmxError, ProviderError, UnsupportedFeatureError
from llmx._events import BreakerTransition
from llmx._logging import log_breaker
from llmx._settings import CachePolicy
from llmx._stream import Stream
from llmx._timeouts import Watchdog
from llmx._tokens import estimate_input_tokens, remember_input_tokens
from llmx._types import Usage

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from llmx._components import Candidate
    from llmx._config import Config
    from llmx._engine.fallback import EventSource
    from llmx._pool import Instance, ProviderPool
    from llmx._registry import Registry
    from llmx._registry import _EventHooks as EventCallers
    from llmx._stats import StatsRecorder
    from llmx._types import Request, Response


class Pipeline:
    """Runs the requests of one client (see the module docstring)."""

    __slots__ = (
        "_config",
        "_fallback",
        "_hooks",
        "_pool",
        "_registry",
        "_resolver",
        "cache",
        "view",
    )

    def __init__(
        self,
        config: Config,
        registry: Registry,
        pool: ProviderPool,
        hooks: EventSource | None = None,
    ) -> None:
        self._config = config
        self._registry = registry
        # Where the event callers come from: the registry, or (request log on) the
        # registry's callers plus the log's listener. Same lookup either way.
        self._hooks: EventSource = registry if hooks is None else hooks
        self._pool = pool
        self.view = LiveView(pool)
        self._resolver = Resolver(config, registry, pool)
        self._fallback = Fallback(pool, self.view, self._hooks)
        self.cache: CacheLayer | None = CacheLayer.build(config, registry)

    @property
    def events(self) -> EventCallers:
        """The event hook callers (each None when no plugin listens)."""
        return self._hooks.events

    @property
    def fallback(self) -> Fallback:
        """The fallback loop (plan, candidates, retries, hedging)."""
        return self._fallback

    @property
    def stats(self) -> StatsRecorder:
        """The per-(instance, model) counters."""
        return self.view.stats

    def route(self, model_ref: str) -> Route:
        """The candidates for ``model_ref`` (``instance/model`` or an alias), cached."""
        return self._resolver.route(model_ref)

    async def aclose(self) -> None:
        """Close the response cache's backend."""
        if self.cache is not None:
            await self.cache.aclose()

    def breaker_transition(self, instance: str, old: str, new: str, reason: str) -> None:
        """Log that an instance's breaker changed state, and tell event hooks."""
        log_breaker(instance, old, new, reason)
        hook = self._hooks.events.breaker
        if hook is not None:
            hook(event=BreakerTransition(instance, old, new, reason))

    # -- a whole answer ---------------------------------------------------------------------

    async def complete(
        self,
        request: Request,
        *,
        timeout: float | None = None,
        cache: CachePolicy | str | None = None,
    ) -> Response:
        """Run one request to a whole Response (from the cache, if it holds it)."""
        run = Run(self._hooks.events, request, False)
        try:
            route = self.start(run, timeout)
            slots = layer = None
            if self.cache is not None or cache is not None:
                layer, slots = self.cache_slots(route, request, cache)
            if slots is None or layer is None:
                response = await self._fallback.run(route, run, complete_once)
            else:
                hit = await layer.lookup(slots)
                if hit is not None:
                    response = hit[0]
                else:
                    response = await self._fallback.run(route, run, complete_once)
                    await layer.store(slots, response)
        except BaseException as err:
            run.fail(err)
            raise
        run.end(response)
        return response

    # -- a stream -----------------------------------------------------------------------------

    def stream(
        self,
        request: Request,
        *,
        timeout: float | None = None,
        cache: CachePolicy | str | None = None,
    ) -> Stream:
        """Run one request as a stream of chunks (replayed from the cache on a hit);
        nothing starts before the caller's first read."""
        state: list[Response] = []

        def start(text_only: bool) -> AsyncGenerator[Any, None]:
            return stream_request(self, request, state, timeout, cache, text_only)

        return Stream(start, state)

    # -- counting tokens before sending --------------------------------------------------

    async def count_tokens(self, request: Request) -> Usage:
        """``request``'s input tokens on the candidate it would be sent to first: the
        provider's exact count when it can count (remembered for this Request object, see
        :mod:`llmx._tokens`), else the estimate, marked ``estimated`` (also when the
        provider raises UnsupportedFeatureError: it cannot count this one)."""
        route = self._resolver.route(request.model)
        candidates: Sequence[Candidate] = route.candidates
        if route.strategy is not None and len(candidates) > 1:
            # Routing order, without the plan's context-window check: that check uses
            # the estimate, which the count is there to replace.
            candidates = route.strategy.order(candidates, request, self.view)
        first = candidates[0]
        inst = self._pool.get(first.instance)
        factory = inst.registration.factory
        if isinstance(factory, type) and not hasattr(factory, "count_tokens"):
            # A provider class that cannot count: estimate without building it (which
            # would need its credentials).
            return Usage(estimate_input_tokens(request), estimated=True)
        provider = inst.open()
        if not inst.can_count:
            return Usage(estimate_input_tokens(request), estimated=True)
        sent = request if request.model == first.model else request.with_model(first.model)
        try:
            tokens = await provider.count_tokens(sent)  # type: ignore[attr-defined]
        except UnsupportedFeatureError:
            # This instance (or model) cannot count after all: the estimate, as for a
            # provider without counting (TokenCountingProvider's contract).
            return Usage(estimate_input_tokens(request), estimated=True)
        except LlmxError:
            raise
        except Exception as err:
            msg = (
                f"provider {inst.registration.origin} raised {type(err).__name__} counting "
                f"tokens: {err} (a provider bug: providers should raise llmx.ProviderError "
                "subclasses)"
            )
            raise ProviderError(msg, provider=inst.name, model=first.model) from err
        if type(tokens) is not int or tokens < 0:
            msg = (
                f"provider {inst.registration.origin} counted {tokens!r} tokens (a provider "
                "bug: count_tokens must return a non-negative int)"
            )
            raise ProviderError(msg, provider=inst.name, model=first.model)
        remember_input_tokens(request, first.instance, first.model, tokens)
        return Usage(tokens)

    # -- steps shared with streams (stream_request) ---------------------------------------

    def start(self, run: Run, timeout: float | None) -> Route:
        """Resolve the route and set the request's deadline (``timeout=``, else the
        alias's, else the config's)."""
        route = self._resolver.route(run.request.model)
        seconds = timeout if timeout is not None else route.deadline
        if seconds is None:
            seconds = self._config.deadline
        if seconds is not None:
            run.deadline = time.monotonic() + seconds
        return route

    def cache_slots(
        self, route: Route, request: Request, cache: CachePolicy | str | None
    ) -> tuple[CacheLayer | None, Any]:
        """The cache stage and its slots for this request (None: not cached)."""
        override = CachePolicy.of(cache)
        layer = self.cache
        if layer is None:
            if override is not None and override.mode not in (None, "off"):
                msg = (
                    f"cache={cache!r} was given but no response cache is configured; add a "
                    '[cache] section (e.g. backend = "memory") to llmx.toml'
                )
                raise ConfigError(msg)
            return None, None
        return layer, layer.plan(request, route.candidates, override)


async def complete_once(call: Call, sent: Request) -> Response:
    """One whole-answer attempt."""
    await call.admit()
    provider = call.inst.provider
    assert provider is not None
    try:
        dog = _deadline_watchdog(call.run, call.inst, call.model)
        if dog is None:
            response = await provider.complete(sent)
        else:
            with dog:
                response = await provider.complete(sent)
    except BaseException as err:
        error = call.failed(err)
        if error is err:
            raise
        raise error from err
    return call.succeeded(response)


def _deadline_watchdog(run: Run, inst: Instance, model: str) -> Watchdog | None:
    """A watchdog only when the request's deadline is nearer than the instance's own
    attempt timeout (which aiohttp enforces anyway)."""
    if run.deadline is None:
        return None
    remaining = run.remaining()
    if remaining >= inst.config.timeout:
        return None
    return Watchdog(
        provider=inst.name,
        model=model,
        deadline=asyncio.get_running_loop().time() + max(remaining, 0.0),
        deadline_reason="the request's deadline passed",
    )

"""The request pipeline: resolve the model reference, order candidates, call a provider,
record the attempt and notify event hooks.

Each step is a small method with one job so that later stages (cache, retries,
breakers, limits, fallback) slot in between them without touching the client.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import attrs

from llmx._components import Candidate
from llmx._config import structure_settings
from llmx._errors import ConfigError, LlmxError, PluginError, ProviderError, UnsupportedFeatureError
from llmx._events import AttemptEnd, RequestEnd, RequestError, RequestStart
from llmx._stream import ResponseBuilder, Stream, chunks_of
from llmx._types import Attempt, Capability, Response, StreamChunk, StreamEnd

if TYPE_CHECKING:
    from llmx._components import RoutingStrategy
    from llmx._config import Config
    from llmx._pool import Deployment, ProviderPool
    from llmx._registry import Registry
    from llmx._types import ModelInfo, Request

_perf = time.perf_counter
_ids = itertools.count(1)
_ID_PREFIX = os.urandom(4).hex()


def new_request_id() -> str:
    """A short id unique within this process run (``"3f2a9c1b-17"``)."""
    return f"{_ID_PREFIX}-{next(_ids)}"


@attrs.frozen
class Route:
    """A resolved model reference: its candidates and the strategy that orders them."""

    candidates: tuple[Candidate, ...]
    strategy: RoutingStrategy | None


class Pipeline:
    """Runs requests for one client (see module docstring)."""

    def __init__(self, config: Config, registry: Registry, pool: ProviderPool) -> None:
        self._config = config
        self._registry = registry
        self._pool = pool
        self._routes: dict[str, Route] = {}
        self._strategies: dict[str, RoutingStrategy] = {}

    # -- resolving -------------------------------------------------------------------------

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
            return Route(
                candidates, self._strategy(alias.strategy, f"$.aliases.{model_ref}.strategy")
            )
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
        return Candidate(instance, cfg.map_model(model), cfg.priority, cfg.weight)

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
            strategy = self._strategies[name] = reg.factory(settings)
        return strategy

    def order(self, route: Route, request: Request) -> Sequence[Candidate]:
        """The candidates in the order to try them."""
        if route.strategy is None or len(route.candidates) < 2:
            return route.candidates
        return route.strategy.order(route.candidates, request)

    # -- checks ----------------------------------------------------------------------------

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

    # -- running ---------------------------------------------------------------------------

    async def complete(self, request: Request) -> Response:
        """Run one request to a whole Response."""
        events = self._registry.events
        started = _perf()
        request_id = new_request_id() if events.any else ""
        if events.start is not None:
            events.start(event=RequestStart(request_id, request, False, started))
        try:
            candidates = self.order(self.route(request.model), request)
            response = await self._attempt(request, candidates[0], request_id, 1)
        except BaseException as err:
            if events.error is not None and isinstance(err, Exception):
                events.error(event=RequestError(request_id, err, _perf() - started))
            raise
        if events.end is not None:
            events.end(event=RequestEnd(request_id, response, _perf() - started))
        return response

    async def _attempt(
        self, request: Request, candidate: Candidate, request_id: str, number: int
    ) -> Response:
        deployment = self._pool.get(candidate.instance)
        provider = deployment.open()
        info = deployment.model_info(candidate.model)
        self.check_capabilities(request, deployment, info)
        sent = request if request.model == candidate.model else request.with_model(candidate.model)
        t0 = _perf()
        try:
            response = await provider.complete(sent)
        except BaseException as err:
            duration = _perf() - t0
            self._attempt_end(request_id, candidate, number, t0, duration, None, err)
            if isinstance(err, LlmxError) or not isinstance(err, Exception):
                raise
            raise self._unexpected(deployment, candidate, err) from err
        duration = _perf() - t0
        cost = response.cost
        if cost is None and info is not None:
            cost = info.cost(response.usage)
        response = attrs.evolve(
            response,
            provider=deployment.name,
            latency=duration,
            cost=cost,
            attempts=(Attempt(deployment.name, candidate.model, duration),),
        )
        self._attempt_end(request_id, candidate, number, t0, duration, response, None)
        return response

    def _attempt_end(
        self,
        request_id: str,
        candidate: Candidate,
        number: int,
        started: float,
        duration: float,
        response: Response | None,
        error: BaseException | None,
        ttft: float | None = None,
    ) -> None:
        hook = self._registry.events.attempt
        if hook is not None:
            usage = response.usage if response is not None else None
            hook(
                event=AttemptEnd(
                    request_id,
                    candidate.instance,
                    candidate.model,
                    number,
                    started,
                    duration,
                    usage,
                    error,
                    ttft,
                )
            )

    @staticmethod
    def _unexpected(deployment: Deployment, candidate: Candidate, err: Exception) -> ProviderError:
        msg = (
            f"provider {deployment.registration.origin} raised {type(err).__name__}: {err} "
            "(a provider bug: providers should raise llmx.ProviderError subclasses)"
        )
        return ProviderError(msg, provider=deployment.name, model=candidate.model)

    def stream(self, request: Request) -> Stream:
        """Run one request as a stream of chunks."""
        state: dict[str, Response | None] = {"response": None}
        return Stream(self._stream(request, state), lambda: state["response"])

    async def _stream(
        self, request: Request, state: dict[str, Response | None]
    ) -> AsyncIterator[StreamChunk]:
        events = self._registry.events
        started = _perf()
        request_id = new_request_id() if events.any else ""
        if events.start is not None:
            events.start(event=RequestStart(request_id, request, True, started))
        candidate: Candidate | None = None
        t0 = started
        ttft: float | None = None
        try:
            candidates = self.order(self.route(request.model), request)
            candidate = candidates[0]
            deployment = self._pool.get(candidate.instance)
            provider = deployment.open()
            info = deployment.model_info(candidate.model)
            self.check_capabilities(request, deployment, info)
            sent = (
                request if request.model == candidate.model else request.with_model(candidate.model)
            )
            builder = ResponseBuilder(candidate.model)
            t0 = _perf()
            if deployment.can_stream:
                source = provider.stream(sent)  # type: ignore[attr-defined]
            else:
                source = chunks_of(await provider.complete(sent))
            try:
                async for chunk in source:
                    if ttft is None:
                        ttft = _perf() - t0
                    builder.add(chunk)
                    if type(chunk) is StreamEnd:
                        continue
                    yield chunk
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()
            duration = _perf() - t0
            response = builder.build(provider=deployment.name)
            cost = info.cost(response.usage) if info is not None else None
            response = attrs.evolve(
                response,
                latency=duration,
                cost=cost,
                attempts=(Attempt(deployment.name, candidate.model, duration),),
            )
            state["response"] = response
            self._attempt_end(request_id, candidate, 1, t0, duration, response, None, ttft)
            yield StreamEnd(response.finish_reason, response.usage, response.model, response.id)
        except BaseException as err:
            if candidate is not None:
                self._attempt_end(request_id, candidate, 1, t0, _perf() - t0, None, err, ttft)
            if events.error is not None and isinstance(err, Exception):
                events.error(event=RequestError(request_id, err, _perf() - started))
            if (
                isinstance(err, Exception)
                and not isinstance(err, LlmxError)
                and candidate is not None
            ):
                raise self._unexpected(self._pool.get(candidate.instance), candidate, err) from err
            raise
        if events.end is not None:
            events.end(event=RequestEnd(request_id, response, _perf() - started))

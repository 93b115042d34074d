"""Resolving a model reference (``instance/model`` or an alias) into a :class:`Route`:
its candidates, the routing strategy that orders them, the hedging policy if the
strategy hedges, the fallback policy and the deadline. Routes are resolved once per
reference and cached."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import attrs

from llmx._components import Candidate, HedgingStrategy, LayeredStrategy
from llmx._config import structure_settings
from llmx._errors import ConfigError, PluginError

if TYPE_CHECKING:
    from llmx._components import RoutingStrategy
    from llmx._config import Config
    from llmx._pool import ProviderPool
    from llmx._registry import Registry


@attrs.frozen
class Route:
    """A resolved model reference: its candidates, strategy, hedging, fallback policy,
    deadline (seconds, or None)."""

    candidates: tuple[Candidate, ...]
    strategy: RoutingStrategy | None
    fallback: Literal["fail_fast", "try_all"] = "fail_fast"
    deadline: float | None = None
    hedge: HedgingStrategy | None = None


class Resolver:
    """Turns model references into routes, building each strategy once."""

    __slots__ = ("_config", "_pool", "_registry", "_routes", "_strategies")

    def __init__(self, config: Config, registry: Registry, pool: ProviderPool) -> None:
        self._config = config
        self._registry = registry
        self._pool = pool
        self._routes: dict[str, Route] = {}
        self._strategies: dict[str, RoutingStrategy] = {}

    def route(self, model_ref: str) -> Route:
        """The route for ``model_ref`` (``instance/model`` or an alias), cached."""
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
            strategy = self.strategy(name, path)
            hedge = strategy if isinstance(strategy, HedgingStrategy) else None
            return Route(candidates, strategy, alias.fallback, alias.deadline, hedge)
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
            inst = self._pool.get(instance)
        except PluginError as err:
            configured = ", ".join(sorted(self._config.providers)) or "none"
            msg = (
                f"unknown provider instance {instance!r} in model {ref!r}: no [providers.{instance}] "
                f"is configured (configured: {configured}), and it is not a usable provider type: {err}"
            )
            raise ConfigError(msg) from err
        cfg = inst.config
        model = cfg.map_model(model)
        return Candidate(instance, model, cfg.priority, cfg.weight, inst.model_info(model))

    def strategy(self, name: str, path: str) -> RoutingStrategy:
        """The routing strategy ``name`` (built once, with its ``base`` bound)."""
        known = self._strategies.get(name)
        if known is not None:
            return known
        try:
            reg = self._registry.get("routing_strategy", name)
        except PluginError as err:
            msg = f"{err} @ {path}"
            raise ConfigError(msg) from err
        options = self._config.routing.options if name == self._config.routing.name else {}
        settings = structure_settings(reg.settings, options, "$.routing")
        # build() checks the strategy against RoutingStrategy, order()'s arguments
        # included: a strategy without ``view`` is refused naming its plugin.
        built = reg.build(settings)
        strategy: RoutingStrategy = built
        if isinstance(strategy, LayeredStrategy):
            base_name = strategy.base_name
            if base_name == name:
                msg = f"strategy {name!r} cannot use itself as its base @ $.routing.base"
                raise ConfigError(msg)
            strategy.bind_base(self.strategy(base_name, "$.routing.base"))
        self._strategies[name] = strategy
        return strategy

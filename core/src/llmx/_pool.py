"""Provider instances: built lazily from config, each with its own pooled aiohttp session
and its own protection state (breaker, retry budget, adaptive limit, cooldown).

An :class:`Instance` is one configured provider instance (``[providers.NAME]``): the
engine's word for it everywhere (a *candidate* is an instance plus the model a route asks
it for; ``provider=`` on errors and ``Response.provider`` hold the instance's name). The pool owns the
sessions and closes them; providers only borrow them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from llmx._components import (
    Closable,
    InProcessAcquire,
    ModelInfoProvider,
    ModelListingProvider,
    ProviderContext,
    ScopedBreakerStore,
    StreamingProvider,
    TokenCountingProvider,
)
from llmx._config import Config, ProviderConfig, structure_settings
from llmx._errors import ConfigError, PluginError
from llmx._ratelimit import InstanceLimiter, SharedLimiter
from llmx._resilience import AdaptiveLimit, BreakerState, CircuitBreaker, RetryBudget
from llmx._state import SharedCooldown

if TYPE_CHECKING:
    import aiohttp

    from llmx._components import Provider
    from llmx._registry import Registration, Registry
    from llmx._types import ModelInfo

BreakerListener = Callable[[str, BreakerState, BreakerState, str], None]


class Instance:
    """One provider instance, what it needs, and its live protection state.

    ``breaker`` (circuit breaker), ``budget`` (retry budget), ``limit`` (the adaptive
    concurrency limit, or None), ``limiter`` (the client-side rate limits, or None),
    ``retry`` (the retry policy object), ``blocked_until`` (monotonic time before
    which a Retry-After asks us not to send; shared between processes with a shared
    breaker store) and ``in_flight`` are driven by the pipeline.
    """

    __slots__ = (
        "_blocked_until",
        "_cooldown",
        "_info_cache",
        "breaker",
        "budget",
        "can_count",
        "can_list",
        "can_stream",
        "config",
        "has_info",
        "in_flight",
        "limit",
        "limiter",
        "name",
        "provider",
        "registration",
        "retry",
        "session",
        "settings",
    )

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        registration: Registration,
        settings: Any,
        *,
        breaker: CircuitBreaker,
        budget: RetryBudget,
        retry: Any,
        limit: AdaptiveLimit | None = None,
        limiter: InstanceLimiter | None = None,
        cooldown: SharedCooldown | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.registration = registration
        self.settings = settings
        self.provider: Provider | None = None
        self.session: aiohttp.ClientSession | None = None
        self.can_stream = False
        self.can_list = False
        self.can_count = False
        self.has_info = False
        self._info_cache: dict[str, ModelInfo | None] = {}
        self.breaker = breaker
        self.budget = budget
        self.retry = retry
        self.limit = limit
        self.limiter = limiter
        self._cooldown = cooldown
        self._blocked_until = 0.0
        self.in_flight = 0

    @property
    def blocked_until(self) -> float:
        """Monotonic time before which a Retry-After asks us not to send (0: none)."""
        if self._cooldown is None:
            return self._blocked_until
        return self._cooldown.get()

    @blocked_until.setter
    def blocked_until(self, until: float) -> None:
        if self._cooldown is None:
            self._blocked_until = until
        else:
            self._cooldown.set(until)

    def open(self) -> Provider:
        """The provider object, built (with its session) on first use. Needs a running loop."""
        provider = self.provider
        if provider is not None:
            return provider
        cfg = self.config
        session = self.session
        if session is None:  # else kept from an attempt whose provider failed to start
            import aiohttp

            from llmx._version import USER_AGENT

            connector = aiohttp.TCPConnector(
                limit=cfg.max_concurrent or 0,
                ttl_dns_cache=300,
                ssl=cfg.verify_tls,
            )
            session = self.session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=cfg.timeout, connect=cfg.connect_timeout),
                auto_decompress=True,
            )
        ctx = ProviderContext(self.name, cfg, self.settings, session)
        try:
            provider = self.registration.factory(ctx)
        except (ConfigError, PluginError):
            raise
        except Exception as err:
            msg = (
                f"provider instance {self.name!r} (type {cfg.type!r}, from "
                f"{self.registration.origin}) failed to start: {type(err).__name__}: {err}"
            )
            raise self.registration.source.error(PluginError, msg) from err
        self.registration.check(provider)
        self.can_stream = isinstance(provider, StreamingProvider)
        self.can_list = isinstance(provider, ModelListingProvider)
        self.can_count = isinstance(provider, TokenCountingProvider)
        self.has_info = isinstance(provider, ModelInfoProvider)
        self.provider = provider
        return provider  # type: ignore[no-any-return]

    def model_info(self, model: str) -> ModelInfo | None:
        """Static facts about ``model`` from the provider, if it offers them (cached).

        Before the provider is built, its factory answers if it is a
        :class:`~llmx._components.ModelInfoProvider` itself (a provider class with a
        static ``model_info``), so routing can use prices without a connection.
        When ``model`` is a provider-side name the instance's ``models`` mapping renames
        to (an Azure deployment such as ``prod-chat`` for ``gpt-4o``), the facts of the
        name it was mapped from are used. The instance's ``model_info`` config table
        (:class:`~llmx._config.ModelFacts`) overrides them, field by field.
        """
        try:
            return self._info_cache[model]
        except KeyError:
            pass
        source: Callable[[str], ModelInfo | None] | None = None
        if self.provider is not None:
            if self.has_info:
                source = self.provider.model_info  # type: ignore[attr-defined]
        elif _answers_unbuilt(self.registration.factory):
            source = self.registration.factory.model_info
        info: ModelInfo | None = None
        if source is not None:
            info = source(model)
            if info is None:
                for alias, target in self.config.models.items():
                    if target == model and alias != model:
                        info = source(alias)
                        if info is not None:
                            break
        if self.config.model_info:
            info = _overridden(self.config, model, info)
        if self.provider is not None or info is not None:
            self._info_cache[model] = info
        return info

    async def aclose(self) -> None:
        """Close the provider (if it holds anything) and the session."""
        provider, session = self.provider, self.session
        self.provider = None
        self.session = None
        try:
            if provider is not None and isinstance(provider, Closable):
                await provider.aclose()
        finally:
            if session is not None:
                await session.close()


class ProviderPool:
    """The provider instances of one client, by name.

    ``on_breaker_transition(instance, old, new, reason)`` hears of every breaker
    state change.
    """

    def __init__(
        self,
        config: Config,
        registry: Registry,
        *,
        on_breaker_transition: BreakerListener | None = None,
    ) -> None:
        self._config = config
        self._registry = registry
        self._instances: dict[str, Instance] = {}
        self._on_transition = on_breaker_transition
        self._retry_policies: dict[tuple[Any, ...], Any] = {}
        self._limiter_backend: Any = None
        self._limiter_shared: SharedLimiter | None = None
        self._breaker_store: Any = None
        self._store_built = False

    def validate(self) -> None:
        """Resolve every configured instance's plugin and settings now (fail fast)."""
        self._registry.assemble()  # a broken enabled plugin reports itself, not an instance
        for name in self._config.providers:
            self.get(name)

    def known(self, name: str) -> bool:
        """Whether ``name`` is a configured instance (or already built)."""
        return name in self._instances or name in self._config.providers

    def get(self, name: str) -> Instance:
        """The instance ``name``; an unconfigured provider type name gives an implicit instance."""
        inst = self._instances.get(name)
        if inst is not None:
            return inst
        config = self._config.providers.get(name)
        path = f"$.providers.{name}"
        if config is None:
            # "openai/gpt-4o" with no [providers.openai]: an instance of type "openai"
            # with the type's defaults (its API key from the usual environment variable).
            config = ProviderConfig(type=name)
        try:
            registration = self._registry.get("provider", config.type)
        except PluginError as err:
            if name in self._config.providers:
                msg = f"{err} @ {path}.type"
                raise ConfigError(msg) from err
            raise
        settings = structure_settings(registration.settings, config.options, path)
        breaker_settings = config.breaker.over(self._config.breaker).settings()
        budget_settings = self._config.retry_budget.settings()
        listener = self._on_transition

        def transition(old: BreakerState, new: BreakerState, reason: str) -> None:
            if listener is not None:
                listener(name, old, new, reason)

        store = self._shared_breaker_store()
        limiter = None
        if config.limits is not None and config.limits.active:
            limiter = InstanceLimiter(
                name,
                config.limits,
                self._limiter(),
                config.map_model,
                lease=config.timeout + 60.0,
                shared=self._shared_limiter(),
            )
        limit = None
        if config.adaptive_concurrency is not None:
            limit = AdaptiveLimit(config.adaptive_concurrency.settings(config.max_concurrent))
        inst = Instance(
            name,
            config,
            registration,
            settings,
            breaker=CircuitBreaker(breaker_settings, transition, store=store, key=name),
            budget=RetryBudget(budget_settings),
            retry=self._retry_policy(config.retry, path),
            limit=limit,
            limiter=limiter,
            cooldown=SharedCooldown(store, name) if store is not None else None,
        )
        self._instances[name] = inst
        return inst

    def _component(self, kind: str, section: str, default: str) -> Any:
        component = getattr(self._config, section)
        try:
            reg = self._registry.get(kind, component.name or default)
        except PluginError as err:
            msg = f"{err} @ $.{section}.backend"
            raise ConfigError(msg) from err
        settings = structure_settings(reg.settings, component.options, f"$.{section}")
        return reg.build(settings)

    def _limiter(self) -> Any:
        """The rate-limiter backend (``[limiter]``), built once and shared by instances."""
        if self._limiter_backend is None:
            self._limiter_backend = self._component("limiter", "limiter", "local")
        return self._limiter_backend

    @property
    def breaker_store(self) -> Any:
        """The breaker store, once built (None before)."""
        return self._breaker_store

    @property
    def shared_limiter(self) -> SharedLimiter | None:
        """The guard of the shared limiter backend, once an instance with limits used it."""
        return self._limiter_shared

    def _shared_limiter(self) -> SharedLimiter | None:
        """The guard and local stand-in of a shared limiter backend (one per client;
        None for an in-process backend)."""
        backend = self._limiter()
        if isinstance(backend, InProcessAcquire):
            return None
        if self._limiter_shared is None:
            section = self._config.limiter
            self._limiter_shared = SharedLimiter(
                section.name or "local", section.store, backend=backend
            )
        return self._limiter_shared

    def _shared_breaker_store(self) -> Any:
        """The breaker store (``[breaker_store]``) if it is shared, else None."""
        if not self._store_built:
            self._breaker_store = self._component("breaker_store", "breaker_store", "memory")
            self._store_built = True
        store = self._breaker_store
        if isinstance(store, ScopedBreakerStore) and not store.shared:
            return None  # private to this client: nothing to consult on the hot path
        return store

    def _retry_policy(self, overrides: Mapping[str, Any], path: str) -> Any:
        """The retry policy object for an instance (shared between equal settings)."""
        section = self._config.retry
        name = section.name or "stamina"
        options = {**section.options, **overrides}
        key = (name, *sorted((k, repr(v)) for k, v in options.items()))
        policy = self._retry_policies.get(key)
        if policy is None:
            try:
                reg = self._registry.get("retry_policy", name)
            except PluginError as err:
                msg = f"{err} @ $.retry.policy"
                raise ConfigError(msg) from err
            where = f"{path}.retry" if overrides else "$.retry"
            settings = structure_settings(reg.settings, options, where)
            policy = self._retry_policies[key] = reg.build(settings)
        return policy

    def built(self) -> list[Instance]:
        """The instances built so far."""
        return list(self._instances.values())

    async def aclose(self) -> None:
        """Close every instance (even if some fail to close), then the shared
        rate-limiter backend and breaker store."""
        errors = []
        for inst in self._instances.values():
            try:
                if inst.limiter is not None:
                    await inst.limiter.aclose()
                await inst.aclose()
            except Exception as err:
                errors.append(err)
        for component in (self._limiter_backend, self._breaker_store):
            if not isinstance(component, Closable):
                continue
            try:
                await component.aclose()
            except Exception as err:
                errors.append(err)
        if errors:
            raise errors[0]


def _answers_unbuilt(factory: object) -> bool:
    """Whether a provider factory answers ``model_info`` itself, before any provider is
    built: a :class:`~llmx._components.ModelInfoProvider` that is not a class, or a
    class whose ``model_info`` is a static or class method (an instance method needs
    the instance)."""
    if not isinstance(factory, ModelInfoProvider):
        return False
    if not isinstance(factory, type):
        return True
    import inspect

    return not inspect.isfunction(inspect.getattr_static(factory, "model_info"))


def _overridden(config: ProviderConfig, model: str, info: ModelInfo | None) -> ModelInfo | None:
    """``info`` with the config's ``model_info`` facts for ``model`` (by its own name or a
    name the ``models`` mapping renames to it) applied; a model the provider does not
    know gets an info of the config's facts alone."""
    facts = config.model_info.get(model)
    if facts is None:
        for alias, target in config.models.items():
            if target == model and alias in config.model_info:
                facts = config.model_info[alias]
                break
    if facts is None:
        return info
    given = facts.given()
    if info is None:
        from llmx._types import ModelInfo

        return ModelInfo(model).with_facts(given, source="config")
    source = f"{info.source} + config" if info.source else "config"
    return info.with_facts(given, source=source)

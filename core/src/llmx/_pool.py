"""Provider instances: built lazily from config, each with its own pooled aiohttp session.

A ``Deployment`` is one configured instance (``[providers.NAME]``): its config, the
registration of its provider type, its validated type-specific settings, and, once
first used, its provider object and session. The pool owns the sessions and closes
them; providers only borrow them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmx._components import (
    ClosableProvider,
    ModelInfoProvider,
    ModelListingProvider,
    ProviderContext,
    StreamingProvider,
)
from llmx._config import Config, ProviderConfig, structure_settings
from llmx._errors import ConfigError, PluginError

if TYPE_CHECKING:
    import aiohttp

    from llmx._components import Provider
    from llmx._registry import Registration, Registry
    from llmx._types import ModelInfo


class Deployment:
    """One provider instance and what it needs (see module docstring)."""

    __slots__ = (
        "_info_cache",
        "can_list",
        "can_stream",
        "config",
        "has_info",
        "name",
        "provider",
        "registration",
        "session",
        "settings",
    )

    def __init__(
        self, name: str, config: ProviderConfig, registration: Registration, settings: Any
    ) -> None:
        self.name = name
        self.config = config
        self.registration = registration
        self.settings = settings
        self.provider: Provider | None = None
        self.session: aiohttp.ClientSession | None = None
        self.can_stream = False
        self.can_list = False
        self.has_info = False
        self._info_cache: dict[str, ModelInfo | None] = {}

    def open(self) -> Provider:
        """The provider object, built (with its session) on first use. Needs a running loop."""
        provider = self.provider
        if provider is not None:
            return provider
        import aiohttp

        cfg = self.config
        connector = aiohttp.TCPConnector(
            limit=cfg.max_concurrent or 0,
            ttl_dns_cache=300,
            ssl=cfg.verify_tls,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=cfg.timeout, connect=cfg.connect_timeout),
            auto_decompress=True,
        )
        ctx = ProviderContext(self.name, cfg, self.settings, self.session)
        try:
            provider = self.registration.factory(ctx)
        except (ConfigError, PluginError):
            raise
        except Exception as err:
            msg = (
                f"provider instance {self.name!r} (type {cfg.type!r}, from "
                f"{self.registration.origin}) failed to start: {type(err).__name__}: {err}"
            )
            raise PluginError(
                msg,
                plugin=self.registration.plugin,
                distribution=self.registration.distribution,
                version=self.registration.version,
            ) from err
        self.can_stream = isinstance(provider, StreamingProvider)
        self.can_list = isinstance(provider, ModelListingProvider)
        self.has_info = isinstance(provider, ModelInfoProvider)
        self.provider = provider
        return provider  # type: ignore[no-any-return]

    def model_info(self, model: str) -> ModelInfo | None:
        """Static facts about ``model`` from the provider, if it offers them (cached)."""
        if self.provider is None or not self.has_info:
            return None
        try:
            return self._info_cache[model]
        except KeyError:
            info = self.provider.model_info(model)  # type: ignore[attr-defined]
            self._info_cache[model] = info
            return info  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Close the provider (if it holds anything) and the session."""
        provider, session = self.provider, self.session
        self.provider = None
        self.session = None
        try:
            if provider is not None and isinstance(provider, ClosableProvider):
                await provider.aclose()
        finally:
            if session is not None:
                await session.close()


class ProviderPool:
    """The deployments of one client, by instance name."""

    def __init__(self, config: Config, registry: Registry) -> None:
        self._config = config
        self._registry = registry
        self._deployments: dict[str, Deployment] = {}

    def validate(self) -> None:
        """Resolve every configured instance's plugin and settings now (fail fast)."""
        self._registry.assemble()  # a broken enabled plugin reports itself, not an instance
        for name in self._config.providers:
            self.get(name)

    def known(self, name: str) -> bool:
        """Whether ``name`` is a configured instance (or already built)."""
        return name in self._deployments or name in self._config.providers

    def get(self, name: str) -> Deployment:
        """The deployment ``name``; an unconfigured provider type name gives an implicit instance."""
        deployment = self._deployments.get(name)
        if deployment is not None:
            return deployment
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
        deployment = Deployment(name, config, registration, settings)
        self._deployments[name] = deployment
        return deployment

    def deployments(self) -> list[Deployment]:
        """The deployments built so far."""
        return list(self._deployments.values())

    async def aclose(self) -> None:
        """Close every deployment (even if some fail to close)."""
        errors = []
        for deployment in self._deployments.values():
            try:
                await deployment.aclose()
            except Exception as err:
                errors.append(err)
        if errors:
            raise errors[0]

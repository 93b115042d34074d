# mypy: implicit-reexport
"""llmx: one fast, async Python API over every LLM provider, as a minimal core plus plugins.

::

    import llmx

    async with llmx.Client() as client:          # reads llmx.toml / [tool.llmx] / LLMX_*
        reply = await client.complete(model="openai/gpt-4o-mini", prompt="Hello")
        print(reply.text, reply.usage, reply.cost)

``import llmx`` is cheap: names are imported from their private modules on first use,
and aiohttp, cattrs and the CLI are imported only when a request, a conversion or a
command needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # client
    "Client": "llmx._client",
    "SyncClient": "llmx._sync",
    "Stream": "llmx._stream",
    "ResponseBuilder": "llmx._stream",
    # config
    "Config": "llmx._config",
    "ProviderConfig": "llmx._config",
    "AliasConfig": "llmx._config",
    "PluginsConfig": "llmx._config",
    "ComponentConfig": "llmx._config",
    "load_config": "llmx._config",
    "Secret": "llmx._secret",
    # types
    "Message": "llmx._types",
    "Text": "llmx._types",
    "Image": "llmx._types",
    "ToolCall": "llmx._types",
    "ToolResult": "llmx._types",
    "Part": "llmx._types",
    "Tool": "llmx._types",
    "ToolChoice": "llmx._types",
    "ResponseFormat": "llmx._types",
    "Request": "llmx._types",
    "Response": "llmx._types",
    "Usage": "llmx._types",
    "Attempt": "llmx._types",
    "TextDelta": "llmx._types",
    "ToolCallDelta": "llmx._types",
    "StreamEnd": "llmx._types",
    "StreamChunk": "llmx._types",
    "ModelInfo": "llmx._types",
    "Capability": "llmx._types",
    "Role": "llmx._types",
    "FinishReason": "llmx._types",
    # errors
    "LlmxError": "llmx._errors",
    "ConfigError": "llmx._errors",
    "ClientClosedError": "llmx._errors",
    "UnsupportedFeatureError": "llmx._errors",
    "PluginError": "llmx._errors",
    "PluginNotInstalledError": "llmx._errors",
    "PluginLoadError": "llmx._errors",
    "PluginConflictError": "llmx._errors",
    "PluginIncompatibleError": "llmx._errors",
    "ProviderError": "llmx._errors",
    "AuthenticationError": "llmx._errors",
    "PermissionDeniedError": "llmx._errors",
    "ModelNotFoundError": "llmx._errors",
    "BadRequestError": "llmx._errors",
    "ContextWindowExceededError": "llmx._errors",
    "ContentFilterError": "llmx._errors",
    "ConflictError": "llmx._errors",
    "RateLimitError": "llmx._errors",
    "ProviderTimeoutError": "llmx._errors",
    "ProviderConnectionError": "llmx._errors",
    "ServerError": "llmx._errors",
    "MalformedResponseError": "llmx._errors",
    "AllCandidatesFailedError": "llmx._errors",
    "CircuitOpenError": "llmx._errors",
    "DeadlineExceededError": "llmx._errors",
    # caching, rate limits, shared state
    "CachePolicy": "llmx._cache",
    "CacheMode": "llmx._cache",
    "CacheStats": "llmx._cache",
    "MemoryCache": "llmx._cache",
    "MemoryCacheSettings": "llmx._cache",
    "SQLiteCacheSettings": "llmx._cache_sqlite",
    "cache_key": "llmx._cachekey",
    "LimitSettings": "llmx._ratelimit",
    "ModelLimitSettings": "llmx._ratelimit",
    "LocalRateLimiter": "llmx._ratelimit",
    "MemoryBreakerStore": "llmx._state",
    # stats, health, routing
    "Stats": "llmx._stats",
    "ModelStats": "llmx._stats",
    "InstanceStats": "llmx._stats",
    "Quantiles": "llmx._stats",
    "HealthStatus": "llmx._health",
    "RoutingView": "llmx._components",
    "BreakerSettings": "llmx._resilience",
    "RetryBudgetSettings": "llmx._resilience",
    "StaminaSettings": "llmx._retry",
    "StaminaRetryPolicy": "llmx._retry",
    "HedgeSettings": "llmx._routing",
    "error_class_for_status": "llmx._errors",
    "parse_retry_after": "llmx._errors",
    # contract and registry
    "hookimpl": "llmx.hookspecs",
    "hookspec": "llmx.hookspecs",
    "CONTRACT_VERSION": "llmx.hookspecs",
    "Registry": "llmx._registry",
    "Registration": "llmx._registry",
    "PluginInfo": "llmx._registry",
    "Register": "llmx.hookspecs",
    # components
    "Provider": "llmx._components",
    "StreamingProvider": "llmx._components",
    "ModelInfoProvider": "llmx._components",
    "ModelListingProvider": "llmx._components",
    "ProviderContext": "llmx._components",
    "Cache": "llmx._components",
    "RateLimiter": "llmx._components",
    "Bucket": "llmx._components",
    "BreakerStore": "llmx._components",
    "SharedBreakerState": "llmx._components",
    "RetryPolicy": "llmx._components",
    "RoutingStrategy": "llmx._components",
    "Candidate": "llmx._components",
    # events
    "RequestStart": "llmx._events",
    "AttemptEnd": "llmx._events",
    "RequestEnd": "llmx._events",
    "RequestError": "llmx._events",
    "BreakerTransition": "llmx._events",
    # helpers for provider authors
    "SSEParser": "llmx._sse",
    "SSEEvent": "llmx._sse",
    "aiter_sse": "llmx._sse",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'llmx' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from llmx._cache import (
        CacheMode,
        CachePolicy,
        CacheStats,
        MemoryCache,
        MemoryCacheSettings,
    )
    from llmx._cache_sqlite import SQLiteCacheSettings
    from llmx._cachekey import cache_key
    from llmx._client import Client
    from llmx._components import (
        BreakerStore,
        Bucket,
        Cache,
        Candidate,
        ModelInfoProvider,
        ModelListingProvider,
        Provider,
        ProviderContext,
        RateLimiter,
        RetryPolicy,
        RoutingStrategy,
        RoutingView,
        SharedBreakerState,
        StreamingProvider,
    )
    from llmx._config import (
        AliasConfig,
        ComponentConfig,
        Config,
        PluginsConfig,
        ProviderConfig,
        load_config,
    )
    from llmx._errors import (
        AllCandidatesFailedError,
        AuthenticationError,
        BadRequestError,
        CircuitOpenError,
        ClientClosedError,
        ConfigError,
        ConflictError,
        ContentFilterError,
        ContextWindowExceededError,
        DeadlineExceededError,
        LlmxError,
        MalformedResponseError,
        ModelNotFoundError,
        PermissionDeniedError,
        PluginConflictError,
        PluginError,
        PluginIncompatibleError,
        PluginLoadError,
        PluginNotInstalledError,
        ProviderConnectionError,
        ProviderError,
        ProviderTimeoutError,
        RateLimitError,
        ServerError,
        UnsupportedFeatureError,
        error_class_for_status,
        parse_retry_after,
    )
    from llmx._events import AttemptEnd, BreakerTransition, RequestEnd, RequestError, RequestStart
    from llmx._health import HealthStatus
    from llmx._ratelimit import LimitSettings, LocalRateLimiter, ModelLimitSettings
    from llmx._registry import PluginInfo, Registration, Registry
    from llmx._resilience import BreakerSettings, RetryBudgetSettings
    from llmx._retry import StaminaRetryPolicy, StaminaSettings
    from llmx._routing import HedgeSettings
    from llmx._secret import Secret
    from llmx._sse import SSEEvent, SSEParser, aiter_sse
    from llmx._state import MemoryBreakerStore
    from llmx._stats import InstanceStats, ModelStats, Quantiles, Stats
    from llmx._stream import ResponseBuilder, Stream
    from llmx._sync import SyncClient
    from llmx._types import (
        Attempt,
        Capability,
        FinishReason,
        Image,
        Message,
        ModelInfo,
        Part,
        Request,
        Response,
        Role,
        StreamChunk,
        StreamEnd,
        Text,
        TextDelta,
        Tool,
        ToolCall,
        ToolCallDelta,
        ToolChoice,
        ToolResult,
        Usage,
    )
    from llmx.hookspecs import CONTRACT_VERSION, Register, hookimpl, hookspec

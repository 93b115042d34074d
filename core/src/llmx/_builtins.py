"""The core's own plugin: default components, registered through the same hooks and
entry-point group as any third party's (so each can be disabled or replaced)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx._cache import MemoryCache, MemoryCacheSettings
from llmx._cache_sqlite import SQLiteCacheSettings, sqlite_cache
from llmx._ratelimit import LocalRateLimiter
from llmx._retry import NoRetryPolicy, StaminaRetryPolicy, StaminaSettings
from llmx._routing import (
    HedgedStrategy,
    HedgeSettings,
    LatencySettings,
    LeastBusyStrategy,
    LowestCostStrategy,
    LowestLatencyStrategy,
    PriorityStrategy,
    RandomSettings,
    RoundRobinStrategy,
    WeightedStrategy,
)
from llmx._state import MemoryBreakerStore
from llmx.hookspecs import hookimpl

if TYPE_CHECKING:
    from llmx.hookspecs import Register


@hookimpl
def llmx_register_routing_strategies(register: Register) -> None:
    """Register the built-in routing strategies."""
    register("priority", PriorityStrategy)
    register("round_robin", RoundRobinStrategy)
    register("weighted", WeightedStrategy, settings=RandomSettings)
    register("lowest_cost", LowestCostStrategy)
    register("lowest_latency", LowestLatencyStrategy, settings=LatencySettings)
    register("least_busy", LeastBusyStrategy)
    register("hedged", HedgedStrategy, settings=HedgeSettings)


@hookimpl
def llmx_register_retry_policies(register: Register) -> None:
    """Register the built-in retry policies."""
    register("stamina", StaminaRetryPolicy, settings=StaminaSettings)
    register("none", NoRetryPolicy)


@hookimpl
def llmx_register_caches(register: Register) -> None:
    """Register the built-in cache backends: ``memory`` (the default) and ``sqlite``."""
    register("memory", MemoryCache, settings=MemoryCacheSettings)
    register("sqlite", sqlite_cache, settings=SQLiteCacheSettings)


@hookimpl
def llmx_register_limiters(register: Register) -> None:
    """Register the built-in rate-limiter backend ``local`` (in this process)."""
    register("local", LocalRateLimiter)


@hookimpl
def llmx_register_breaker_stores(register: Register) -> None:
    """Register the built-in breaker store ``memory`` (private to each client)."""
    register("memory", MemoryBreakerStore)

"""llmx-redis: the state several app instances share, in Redis.

One plugin (entry point ``redis``) registering three components, all named ``redis``:

* the response cache (``[cache] backend = "redis"``): entries under their digest keys,
  expiring through Redis' own TTLs;
* the rate limiter (``[limiter] backend = "redis"``): sliding windows and concurrency
  slots kept by atomic Lua scripts, so N processes together stay under one quota;
* the breaker store (``[breaker_store] backend = "redis"``): circuit-breaker
  transitions and Retry-After cooldowns, published to every process (pub/sub, plus a
  periodic refresh) and read from a local snapshot, so the request path never waits
  for Redis.

Each section takes the connection settings of :class:`RedisSettings` (``url``,
``password``, TLS, pool size, timeouts). Nothing is imported from ``redis`` until a
component is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmx.plugin import hookimpl
from llmx_redis._settings import (
    RedisBreakerStoreSettings,
    RedisCacheSettings,
    RedisLimiterSettings,
    RedisSettings,
)

if TYPE_CHECKING:
    from llmx_redis._breaker import RedisBreakerStore
    from llmx_redis._cache import RedisCache
    from llmx_redis._limiter import RedisRateLimiter

__all__ = [
    "RedisBreakerStoreSettings",
    "RedisCacheSettings",
    "RedisLimiterSettings",
    "RedisSettings",
    "redis_breaker_store",
    "redis_cache",
    "redis_limiter",
]

llmx_contract = "1.1"


def redis_cache(settings: RedisCacheSettings | None = None) -> RedisCache:
    """The Redis response cache."""
    from llmx_redis._cache import RedisCache

    return RedisCache(settings or RedisCacheSettings())


def redis_limiter(settings: RedisLimiterSettings | None = None) -> RedisRateLimiter:
    """The Redis rate limiter."""
    from llmx_redis._limiter import RedisRateLimiter

    return RedisRateLimiter(settings or RedisLimiterSettings())


def redis_breaker_store(settings: RedisBreakerStoreSettings | None = None) -> RedisBreakerStore:
    """The Redis breaker store."""
    from llmx_redis._breaker import RedisBreakerStore

    return RedisBreakerStore(settings or RedisBreakerStoreSettings())


@hookimpl
def llmx_register_caches(register: Any) -> None:
    """Register the ``redis`` cache backend."""
    register("redis", redis_cache, settings=RedisCacheSettings)


@hookimpl
def llmx_register_limiters(register: Any) -> None:
    """Register the ``redis`` rate limiter."""
    register("redis", redis_limiter, settings=RedisLimiterSettings)


@hookimpl
def llmx_register_breaker_stores(register: Any) -> None:
    """Register the ``redis`` breaker store."""
    register("redis", redis_breaker_store, settings=RedisBreakerStoreSettings)

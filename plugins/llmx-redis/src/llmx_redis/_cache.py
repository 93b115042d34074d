"""The response cache in Redis: one string per entry, its TTL kept by Redis."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio

    from llmx_redis._settings import RedisCacheSettings


class RedisCache:
    """An :class:`Cache` over Redis (``[cache] backend = "redis"``).

    Values are the core's compact serialisation (JSON, zlib past 1 KiB), stored with
    ``SET key value PX ttl``; the connection pool is created on first use, in the loop
    that uses it. Errors propagate: the core turns them into misses with a warning.
    """

    def __init__(self, settings: RedisCacheSettings) -> None:
        import redis.asyncio  # noqa: F401 - imported now, not in the event loop on first use

        self.settings = settings
        self._redis: redis.asyncio.Redis | None = None

    @property
    def redis(self) -> redis.asyncio.Redis:
        """The client (created on first use)."""
        if self._redis is None:
            self._redis = self.settings.connect()
        return self._redis

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None."""
        value = await self.redis.get(self.settings.prefix + key)
        if value is None:
            return None
        return value if isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds (None: no expiry)."""
        px = None if ttl is None or ttl == math.inf else max(1, int(ttl * 1000))
        await self.redis.set(self.settings.prefix + key, value, px=px)

    async def aclose(self) -> None:
        """Close the connection pool."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

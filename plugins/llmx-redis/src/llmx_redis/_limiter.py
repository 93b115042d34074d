"""The rate limiter in Redis: the same sliding windows and slots as llmx's local
limiter, kept by Lua scripts that Redis runs atomically, on Redis' own clock.

Per bucket three keys, sharing the instance's hash tag (``{instance}``) so one script
may touch them all on a Redis Cluster too:

* ``...:z`` a sorted set of grants by time (windows) or by lease expiry (slots);
* ``...:h`` a hash grant -> amount taken (windows);
* ``...:t`` the window's running total (windows).

``acquire`` expires what left the window, checks every bucket, and takes all of them
or none; when something does not fit it returns the seconds until it would (windows:
exact from the oldest grants; slots: the poll interval). ``release`` frees slots and
replaces a window's estimated amount with the real one. Keys expire on their own one
period after their last grant, so Redis holds nothing for idle instances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis.asyncio

    from llmx.plugin import Bucket
    from llmx_redis._settings import RedisLimiterSettings

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local grant = ARGV[1]
local poll = tonumber(ARGV[2])
local n = #KEYS / 3
local wait = 0
for i = 0, n - 1 do
  local z, h, tot = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local kind = ARGV[3 + 4 * i]
  local limit = tonumber(ARGV[4 + 4 * i])
  local period = tonumber(ARGV[5 + 4 * i])
  local amount = tonumber(ARGV[6 + 4 * i])
  if kind == 'w' then
    if amount > limit + 1e-9 then
      return 'inf'
    end
    local cutoff = now - period + 1e-9
    while true do
      local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff, 'LIMIT', 0, 500)
      if #old == 0 then
        break
      end
      local amounts = redis.call('HMGET', h, unpack(old))
      local freed = 0
      for _, a in ipairs(amounts) do
        freed = freed + (tonumber(a) or 0)
      end
      redis.call('ZREM', z, unpack(old))
      redis.call('HDEL', h, unpack(old))
      redis.call('INCRBYFLOAT', tot, -freed)
    end
    local total = 0
    if redis.call('ZCARD', z) > 0 then
      total = tonumber(redis.call('GET', tot) or '0')
    else
      redis.call('DEL', tot, h)
    end
    local excess = total + amount - limit
    if excess > 1e-9 then
      local freed = 0
      local start = 0
      local w = period
      local found = false
      while not found do
        local page = redis.call('ZRANGE', z, start, start + 99, 'WITHSCORES')
        if #page == 0 then
          break
        end
        local members = {}
        for j = 1, #page, 2 do
          members[#members + 1] = page[j]
        end
        local amounts = redis.call('HMGET', h, unpack(members))
        for j = 1, #members do
          freed = freed + (tonumber(amounts[j]) or 0)
          if freed >= excess - 1e-9 then
            w = tonumber(page[2 * j]) + period - now
            found = true
            break
          end
        end
        start = start + 100
      end
      if w < 1e-6 then
        w = 1e-6
      end
      if w > wait then
        wait = w
      end
    end
  else
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    if redis.call('ZCARD', z) >= limit then
      if poll > wait then
        wait = poll
      end
    end
  end
end
if wait > 0 then
  return tostring(wait)
end
for i = 0, n - 1 do
  local z, h, tot = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local kind = ARGV[3 + 4 * i]
  local period = tonumber(ARGV[5 + 4 * i])
  local amount = tonumber(ARGV[6 + 4 * i])
  local ms = math.ceil(period * 1000) + 1000
  if kind == 'w' then
    redis.call('ZADD', z, now, grant)
    redis.call('HSET', h, grant, ARGV[6 + 4 * i])
    redis.call('INCRBYFLOAT', tot, ARGV[6 + 4 * i])
    redis.call('PEXPIRE', z, ms)
    redis.call('PEXPIRE', h, ms)
    redis.call('PEXPIRE', tot, ms)
  else
    redis.call('ZADD', z, now + period, grant)
    redis.call('PEXPIRE', z, ms)
  end
end
return '0'
"""

RELEASE = """
local grant = ARGV[1]
local n = #KEYS / 3
for i = 0, n - 1 do
  local z, h, tot = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local kind = ARGV[2 + 2 * i]
  if kind == 'w' then
    local old = redis.call('HGET', h, grant)
    if old then
      local amount = tonumber(ARGV[3 + 2 * i])
      redis.call('HSET', h, grant, ARGV[3 + 2 * i])
      redis.call('INCRBYFLOAT', tot, amount - tonumber(old))
    end
  else
    redis.call('ZREM', z, grant)
  end
end
return 1
"""


class RedisRateLimiter:
    """An :class:`RateLimiter` shared through Redis (``[limiter] backend = "redis"``).

    Every process (and machine) using the same Redis and prefix shares the buckets of
    an instance name, so together they stay under its limits. Redis failures propagate
    to the core, which then sends without the client-side limit and logs a warning
    (the provider's own 429 handling remains the backstop).
    """

    def __init__(self, settings: RedisLimiterSettings) -> None:
        import redis.asyncio  # noqa: F401 - imported now, not in the event loop on first use

        self.settings = settings
        self._redis: redis.asyncio.Redis | None = None
        self._acquire: Any = None
        self._release: Any = None

    def _scripts(self) -> tuple[Any, Any]:
        if self._redis is None:
            self._redis = self.settings.connect()
            self._acquire = self._redis.register_script(ACQUIRE)
            self._release = self._redis.register_script(RELEASE)
        return self._acquire, self._release

    def _keys(self, buckets: Sequence[Bucket]) -> list[str]:
        prefix = self.settings.prefix
        keys = []
        for b in buckets:
            base = f"{prefix}llmx:rl:{{{b.instance}}}:{b.name}"
            keys += [f"{base}:z", f"{base}:h", f"{base}:t"]
        return keys

    async def acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """Take every bucket's amount atomically, or return the seconds to wait."""
        acquire, _ = self._scripts()
        args: list[Any] = [grant, repr(self.settings.poll_interval)]
        for b in buckets:
            args += ["w" if b.kind == "window" else "s", repr(float(b.limit)), repr(b.period)]
            args.append(repr(float(b.amount)))
        result = await acquire(keys=self._keys(buckets), args=args)
        text = result.decode() if isinstance(result, bytes) else str(result)
        return math.inf if text == "inf" else float(text)

    async def release(self, grant: str, buckets: Sequence[Bucket]) -> None:
        """Free slots; record real amounts in place of estimates."""
        _, release = self._scripts()
        args: list[Any] = [grant]
        for b in buckets:
            args += ["w" if b.kind == "window" else "s", repr(float(b.amount))]
        await release(keys=self._keys(buckets), args=args)

    async def usage(self, instance: str, name: str) -> float:
        """Units in one bucket's window (or slots held) now (for tests and stats)."""
        self._scripts()
        assert self._redis is not None
        base = f"{self.settings.prefix}llmx:rl:{{{instance}}}:{name}"
        total = await self._redis.get(f"{base}:t")
        if total is not None:
            return float(total)
        return float(await self._redis.zcard(f"{base}:z"))

    async def aclose(self) -> None:
        """Close the connection pool."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

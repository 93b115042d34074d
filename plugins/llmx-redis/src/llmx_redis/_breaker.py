"""The breaker store in Redis: transitions and cooldowns shared by every process.

The request path never waits for Redis. :meth:`RedisBreakerStore.get` answers from a
local snapshot; :meth:`RedisBreakerStore.publish` merges into the snapshot at once and
queues the write. Three background tasks, started on first use in the client's loop:

* the **writer** runs a Lua script per queued change that merges it into the
  instance's hash (the newest transition wins, the latest cooldown wins) and
  ``PUBLISH``es the merged state;
* the **listener** subscribes to that channel and merges what other processes
  publish, so a transition reaches them within a round trip;
* the **refresher** re-reads the hashes of the instances this process uses every
  ``refresh_interval`` seconds (and at once for an instance seen for the first time),
  which covers messages missed while disconnected.

If Redis is unreachable or slow the tasks log one line when it degrades and one when
it answers again, back off and retry; meanwhile every process goes on with its own
breakers. Changes waiting to be written are merged per instance, so the queue never
holds more than one entry per instance however long Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from llmx.plugin import SharedBreakerState
from llmx_redis._settings import log

if TYPE_CHECKING:
    import redis.asyncio

    from llmx_redis._settings import RedisBreakerStoreSettings

MERGE = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'updated') or '0')
if tonumber(ARGV[3]) > cur then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'until', ARGV[2], 'updated', ARGV[3],
             'reason', ARGV[4], 'origin', ARGV[5])
end
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
if tonumber(ARGV[6]) > blocked then
  redis.call('HSET', KEYS[1], 'blocked_until', ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
local all = redis.call('HGETALL', KEYS[1])
redis.call('PUBLISH', ARGV[8], cjson.encode({ARGV[9], all}))
return all
"""

_BACKOFF = 1.0


def _state(fields: Any) -> SharedBreakerState | None:
    """A state from HGETALL's reply (a flat list or a dict of bytes)."""
    if isinstance(fields, list):
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    if not fields:
        return None
    data = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}

    def text(name: str) -> str:
        value = data.get(name, "")
        return value.decode() if isinstance(value, bytes) else str(value)

    def number(name: str) -> float:
        try:
            return float(text(name) or 0)
        except ValueError:
            return 0.0

    state = text("state")
    if state not in ("closed", "open", "half_open"):
        state = "closed"
    return SharedBreakerState(
        state,  # type: ignore[arg-type]
        number("until"),
        number("updated"),
        text("reason"),
        text("origin"),
        number("blocked_until"),
    )


class RedisBreakerStore:
    """An :class:`BreakerStore` shared through Redis (see the module docstring)."""

    shared = True

    def __init__(self, settings: RedisBreakerStoreSettings) -> None:
        import redis.asyncio  # noqa: F401 - imported now, not in the event loop on first use

        self.settings = settings
        self.channel = f"{settings.prefix}llmx:breaker"
        self._snapshot: dict[str, SharedBreakerState] = {}
        self._known: set[str] = set()
        self._pending: dict[str, SharedBreakerState] = {}
        self._redis: redis.asyncio.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._write = asyncio.Event()
        self._refresh = asyncio.Event()
        self._idle = asyncio.Event()
        self._started = False
        self._closed = False
        self.published = 0
        self.received = 0
        self.degraded = False
        """Whether the last call to Redis failed (each process uses its own breakers)."""
        self.transitions = 0
        """Changes between answering and failing, each logged once."""

    def _key(self, instance: str) -> str:
        return f"{self.settings.prefix}llmx:breaker:{{{instance}}}"

    # -- the BreakerStore protocol (synchronous, no I/O) ------------------------------------

    def get(self, instance: str) -> SharedBreakerState | None:
        """The latest known state of ``instance`` (from the local snapshot)."""
        if instance not in self._known:
            self._known.add(instance)
            self._start()
            self._refresh.set()
        return self._snapshot.get(instance)

    def publish(self, instance: str, state: SharedBreakerState) -> None:
        """Merge ``state`` into the snapshot now; write and announce it in the background."""
        self._merge(instance, state)
        self._known.add(instance)
        queued = self._pending.get(instance)
        self._pending[instance] = state if queued is None else queued.merge(state)
        self._idle.clear()
        self._start()
        self._write.set()

    def _merge(self, instance: str, state: SharedBreakerState | None) -> None:
        if state is None:
            return
        current = self._snapshot.get(instance)
        self._snapshot[instance] = state if current is None else current.merge(state)

    # -- background tasks --------------------------------------------------------------------

    def _start(self) -> None:
        if self._started or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (e.g. stats read from sync code): start on the next call
        self._started = True
        self._redis = self.settings.connect()
        for run in (self._writer, self._listener, self._refresher):
            self._tasks.append(loop.create_task(run(), name=f"llmx-redis-breaker-{run.__name__}"))

    async def _writer(self) -> None:
        assert self._redis is not None
        merge = self._redis.register_script(MERGE)
        ttl = str(int(self.settings.ttl * 1000))
        while True:
            await self._write.wait()
            self._write.clear()
            while self._pending:
                instance, s = next(iter(self._pending.items()))
                args = [
                    s.state,
                    repr(s.until),
                    repr(s.updated),
                    s.reason,
                    s.origin,
                    repr(s.blocked_until),
                    ttl,
                    self.channel,
                    instance,
                ]
                try:
                    fields = await merge(keys=[self._key(instance)], args=args)
                except Exception as err:
                    self._failed("publishing a breaker transition", err)
                    await asyncio.sleep(_BACKOFF)
                    continue
                self._answered()
                if self._pending.get(instance) is s:
                    del self._pending[instance]
                self.published += 1
                self._merge(instance, _state(fields))
            self._idle.set()

    async def _listener(self) -> None:
        assert self._redis is not None
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        instance, fields = json.loads(message["data"])
                    except (ValueError, TypeError):
                        continue
                    self.received += 1
                    if isinstance(instance, str):
                        self._merge(instance, _state(fields))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self._failed("listening for breaker transitions", err)
                await asyncio.sleep(_BACKOFF)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _refresher(self) -> None:
        assert self._redis is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._refresh.wait(), self.settings.refresh_interval)
            self._refresh.clear()
            names = sorted(self._known)
            if not names:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for name in names:
                        pipe.hgetall(self._key(name))
                    replies = await pipe.execute()
            except Exception as err:
                self._failed("refreshing breaker state", err)
                await asyncio.sleep(_BACKOFF)
                continue
            self._answered()
            for name, fields in zip(names, replies, strict=True):
                self._merge(name, _state(fields))

    def _failed(self, operation: str, err: BaseException) -> None:
        if self.degraded:
            return
        self.degraded = True
        self.transitions += 1
        log.warning(
            "redis breaker store degraded (%s failed: %s: %s); each process uses its own "
            "breakers until it answers again",
            operation,
            type(err).__name__,
            err,
        )

    def _answered(self) -> None:
        if self.degraded:
            self.degraded = False
            self.transitions += 1
            log.warning("redis breaker store recovered; sharing breaker state again")

    async def aclose(self) -> None:
        """Stop the background tasks (after a last attempt to write what is queued)."""
        self._closed = True
        if self._pending and self._tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.settings.socket_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

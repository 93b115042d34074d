"""Connection settings, shared by the three components, and their own extras."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import attrs

from llmx import Secret

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger("llmx.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"


@attrs.frozen
class RedisSettings:
    """How to reach Redis (keys of ``[cache]``, ``[limiter]`` or ``[breaker_store]``).

    ``url``: ``redis://host:port/db``, or ``rediss://`` for TLS; a string or a secret
    (``{ env = "REDIS_URL" }``) since URLs may carry a password. ``password`` and
    ``username``: secrets for AUTH (``{ env = "REDIS_PASSWORD" }``), instead of putting
    them in the URL. ``ssl_ca_certs``: the CA bundle that signed the server's
    certificate (with ``rediss://``); ``ssl_certfile``/``ssl_keyfile`` for client
    certificates. ``max_connections``: the connection pool's size.
    ``socket_timeout``/``connect_timeout`` (seconds) bound each command, so a Redis that
    went away costs a request at most that long before it is treated as a miss.
    ``prefix`` is put before every key (to share one Redis between apps).
    """

    url: Secret = attrs.field(factory=lambda: Secret(value=DEFAULT_URL))
    password: Secret | None = None
    username: Secret | None = None
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    max_connections: int = 50
    socket_timeout: float = 1.0
    connect_timeout: float = 1.0
    prefix: str = ""

    def __attrs_post_init__(self) -> None:
        if self.max_connections < 1:
            msg = "max_connections must be at least 1"
            raise ValueError(msg)
        if not (self.socket_timeout > 0 and self.connect_timeout > 0):
            msg = "socket_timeout and connect_timeout must be positive"
            raise ValueError(msg)

    def connect(self) -> redis.asyncio.Redis:
        """A client with its own connection pool (no connection is made yet)."""
        import redis.asyncio

        kwargs: dict[str, Any] = {
            "max_connections": self.max_connections,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "health_check_interval": 30,
        }
        if self.password is not None:
            kwargs["password"] = self.password.get()
        if self.username is not None:
            kwargs["username"] = self.username.get()
        url = self.url.get()
        if url.startswith("rediss://"):
            for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
                value = getattr(self, name)
                if value is not None:
                    kwargs[name] = value
        return redis.asyncio.Redis.from_url(url, **kwargs)


@attrs.frozen
class RedisCacheSettings(RedisSettings):
    """``[cache] backend = "redis"``: the connection settings (see :class:`RedisSettings`)."""


@attrs.frozen
class RedisLimiterSettings(RedisSettings):
    """``[limiter] backend = "redis"``: the connection settings, and ``poll_interval``
    (seconds): how often a request waiting for a concurrency slot that another process
    holds asks again."""

    poll_interval: float = 0.05


@attrs.frozen
class RedisBreakerStoreSettings(RedisSettings):
    """``[breaker_store] backend = "redis"``: the connection settings, and
    ``refresh_interval`` (seconds): how often the local snapshot is re-read in full,
    besides the transitions published to it as they happen. ``ttl``: how long an
    instance's shared state outlives its last change (seconds)."""

    refresh_interval: float = 1.0
    ttl: float = 86_400.0


class WarnOnce:
    """Logs a component's failures at most once per ``every`` seconds."""

    def __init__(self, what: str, every: float = 30.0) -> None:
        self.what = what
        self.every = every
        self._last = -float("inf")
        self._suppressed = 0

    def __call__(self, operation: str, err: BaseException) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last warning)" if self._suppressed else ""
        self._last = now
        self._suppressed = 0
        log.warning("%s: %s failed (%s: %s)%s", self.what, operation, type(err).__name__, err, more)

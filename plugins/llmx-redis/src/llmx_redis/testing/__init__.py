"""Testing helpers: a real ``redis-server`` on loopback, started and stopped by the test.

:class:`RedisServer` runs ``redis-server`` on a free 127.0.0.1 port with persistence
off, optionally requiring a password (``requirepass``) or speaking TLS only (with a
throw-away CA and certificate made by ``openssl``). The pytest plugin (installed with
llmx-redis) provides the session fixtures ``redis_server``, ``redis_auth_server`` and
``redis_tls_server``. :class:`SlowProxy` sits between a client and a server and adds
latency per round trip, or pauses, to test what a slow store costs
(:class:`ProxyProcess`: the same in a child process).
"""

from __future__ import annotations

from llmx_redis.testing._proxy import ProxyProcess, SlowProxy
from llmx_redis.testing._server import RedisServer, RedisServerError, require_redis_server

__all__ = [
    "ProxyProcess",
    "RedisServer",
    "RedisServerError",
    "SlowProxy",
    "require_redis_server",
]

"""pytest fixtures of llmx-redis: real redis-servers on loopback, one per session.

Cheap to import: redis-server starts only when a test asks for a fixture. A missing
redis-server fails the test with the command that installs it (never a silent skip).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmx_redis.testing._server import RedisServer, RedisServerError

AUTH_PASSWORD = "llmx-test-password"
"""The password ``redis_auth_server`` requires."""


def _start(server: RedisServer) -> RedisServer:
    try:
        return server.start()
    except RedisServerError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on a free 127.0.0.1 port, for the whole session."""
    server = _start(RedisServer())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_auth_server() -> Iterator[RedisServer]:
    """A redis-server requiring the password :data:`AUTH_PASSWORD`."""
    server = _start(RedisServer(password=AUTH_PASSWORD))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_tls_server() -> Iterator[RedisServer]:
    """A redis-server speaking TLS only, with a password (``ca_certs`` signs it)."""
    server = _start(RedisServer(password=AUTH_PASSWORD, tls=True))
    try:
        yield server
    finally:
        server.stop()

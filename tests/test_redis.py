"""llmx-redis against a real redis-server (started by the session fixtures of
``llmx_redis.testing``) and real HTTP (the fake OpenAI server): the shared cache, the
shared rate limiter and the shared breaker state, with auth from a secret and TLS."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from llmx_redis.testing import ProxyProcess, RedisServer

import llmx
from llmx.plugin import Bucket
from llmx.testing import ErrorReply, Reply
from llmx_openai.testing import FakeOpenAIServer

PASSWORD_ENV = "TEST_REDIS_PASSWORD"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _empty(redis_server: RedisServer) -> None:
    redis_server.flush()


def config(fake: FakeOpenAIServer, redis_url: str, **sections: Any) -> dict[str, Any]:
    provider = {"type": "openai", "base_url": fake.base_url, "api_key": "test-key"}
    data: dict[str, Any] = {
        "providers": {"main": dict(provider), "spare": dict(provider)},
        "aliases": {"duo": ["main/gpt-4o-mini", "spare/gpt-4o-mini"]},
        "retry": {"attempts": 1},
    }
    for name, extra in sections.items():
        data[name] = {"backend": "redis", "url": redis_url, **extra}
    return data


async def _stored(client: llmx.Client, count: int) -> None:
    """Wait until ``client`` has written ``count`` answers to the cache (writes to a
    shared cache run in the background, after the answer)."""
    deadline = time.monotonic() + 5
    while (stats := client.stats().cache) is None or stats.stores < count:
        assert time.monotonic() < deadline, f"{count} cache writes not done within 5 s"
        await asyncio.sleep(0.005)


async def _keys(server: RedisServer, **kwargs: Any) -> list[bytes]:
    client = redis.asyncio.Redis.from_url(server.url, **kwargs)
    try:
        return sorted(await client.keys("*"))
    finally:
        await client.aclose()


# -- the cache ---------------------------------------------------------------------------------


async def test_a_second_client_gets_the_first_ones_answer(
    fake: FakeOpenAIServer, redis_server: RedisServer
) -> None:
    data = config(fake, redis_server.url, cache={"ttl": 120})
    async with llmx.Client(data) as first, llmx.Client(data) as second:
        answer = await first.complete(model="main/gpt-4o-mini", prompt="hello")
        await _stored(first, 1)
        again = await second.complete(model="main/gpt-4o-mini", prompt="hello")
        assert not answer.cached
        assert again.cached
        assert again.text == answer.text
        assert fake.request_count == 1
        # a stream stored by one replays as the same chunks in the other
        async with first.stream(model="main/gpt-4o-mini", prompt="one two three") as stream:
            chunks = [c async for c in stream]
        await _stored(first, 2)
        async with second.stream(model="main/gpt-4o-mini", prompt="one two three") as stream:
            assert [c async for c in stream] == chunks
        assert stream.response is not None
        assert stream.response.cached
        assert fake.request_count == 2
        stats = second.stats().cache
        assert stats is not None
        assert stats.hits == 2
    keys = await _keys(redis_server)
    assert len(keys) == 2
    assert all(k.startswith(b"llmx:v1:") for k in keys)
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        ttl = await client.pttl(keys[0])
        assert 100_000 < ttl <= 120_000  # the TTL is Redis' own
        assert b"test-key" not in await client.get(keys[0])  # no secret in an entry
    finally:
        await client.aclose()


async def test_a_cache_write_never_delays_the_answer(
    fake: FakeOpenAIServer, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Redis round trip 0.3 s slower (a proxy), writes given 2 s: the answers do not
    wait for them; past MAX_PENDING_WRITES under way, writes are dropped and counted."""
    import llmx._cache

    monkeypatch.setattr(llmx._cache, "MAX_PENDING_WRITES", 2, raising=False)
    with ProxyProcess(redis_server.port, delay=0.3) as proxy:
        data = config(fake, proxy.url, cache={"mode": "refresh", "store_timeout": 2})
        async with llmx.Client(data) as client:
            for i in range(5):
                started = time.perf_counter()
                await client.complete(model="main/gpt-4o-mini", prompt=f"question {i}")
                assert time.perf_counter() - started < 0.2
            await _stored(client, 2)
            stats = client.stats().cache
            assert stats is not None
            assert (stats.stores, stats.dropped_writes, stats.errors) == (2, 3, 0)
    assert len(await _keys(redis_server)) == 2


async def test_auth_from_a_secret_and_a_wrong_password(
    fake: FakeOpenAIServer,
    redis_auth_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from llmx_redis.testing._pytest_plugin import AUTH_PASSWORD

    monkeypatch.setenv(PASSWORD_ENV, AUTH_PASSWORD)
    data = config(fake, redis_auth_server.url, cache={"password": {"env": PASSWORD_ENV}})
    async with llmx.Client(data) as client:
        await client.complete(model="main/gpt-4o-mini", prompt="hi")
        assert (await client.complete(model="main/gpt-4o-mini", prompt="hi")).cached
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
    caplog.set_level(logging.WARNING, logger="llmx.cache")
    async with llmx.Client(data) as client:
        answer = await client.complete(model="main/gpt-4o-mini", prompt="hi")
        assert answer.text == "hi"  # the request goes on
        assert not answer.cached
        stats = client.stats().cache
        assert stats is not None
        assert stats.errors >= 1
    assert "treating it as a miss" in caplog.text
    assert "wrong-password" not in caplog.text
    assert "wrong-password" not in str(llmx.load_config(data).describe())


async def test_tls_with_a_private_ca(
    fake: FakeOpenAIServer, redis_tls_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmx_redis.testing._pytest_plugin import AUTH_PASSWORD

    monkeypatch.setenv(PASSWORD_ENV, AUTH_PASSWORD)
    assert redis_tls_server.url.startswith("rediss://")
    extra = {"password": {"env": PASSWORD_ENV}, "ssl_ca_certs": redis_tls_server.ca_certs}
    data = config(fake, redis_tls_server.url, cache=extra)
    async with llmx.Client(data) as client:
        await client.complete(model="main/gpt-4o-mini", prompt="over tls")
        assert (await client.complete(model="main/gpt-4o-mini", prompt="over tls")).cached


async def test_redis_down_is_a_miss_not_a_failure(
    fake: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    from llmx_redis.testing._server import _free_port

    caplog.set_level(logging.WARNING, logger="llmx.cache")
    data = config(fake, f"redis://127.0.0.1:{_free_port()}/0", cache={"connect_timeout": 0.2})
    async with llmx.Client(data) as client:
        for _ in range(2):
            assert (await client.complete(model="main/gpt-4o-mini", prompt="hi")).text == "hi"
        stats = client.stats().cache
        assert stats is not None
        assert stats.errors >= 2
    assert fake.request_count == 2
    assert "ConnectionError" in caplog.text


# -- the rate limiter -------------------------------------------------------------------------


def _max_in_window(times: list[float], period: float) -> int:
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + period - 1e-3) for i, start in enumerate(times)),
        default=0,
    )


async def test_two_clients_share_one_quota(
    fake: FakeOpenAIServer, redis_server: RedisServer
) -> None:
    limits = {"rpm": 240, "period": 0.5, "max_wait": 10}  # 2 requests per half second
    data = config(fake, redis_server.url, limiter={})
    data["providers"]["main"]["limits"] = limits
    arrivals: list[float] = []
    fake.enqueue(*(Reply("ok") for _ in range(8)))
    async with llmx.Client(data) as first, llmx.Client(data) as second:

        async def one(client: llmx.Client, i: int) -> None:
            await client.complete(model="main/gpt-4o-mini", prompt=f"q{i}")
            arrivals.append(time.monotonic())

        await asyncio.gather(*(one(first if i % 2 else second, i) for i in range(8)))
    assert fake.request_count == 8
    # answer times, not send times: a window 10 % shorter than the period absorbs
    # their jitter; the pairs themselves are a period apart
    assert _max_in_window(arrivals, 0.45) <= 2
    assert max(arrivals) - min(arrivals) >= 1.4


async def test_shared_concurrency_slots_and_giving_up(
    fake: FakeOpenAIServer, redis_server: RedisServer
) -> None:
    data = config(fake, redis_server.url, limiter={"poll_interval": 0.02})
    data["providers"]["main"]["limits"] = {"max_concurrent": 1, "max_wait": 0.3}
    fake.enqueue(Reply("slow", delay=1.5))
    async with llmx.Client(data) as first, llmx.Client(data) as second:
        slow = asyncio.ensure_future(first.complete(model="main/gpt-4o-mini", prompt="slow"))
        await asyncio.sleep(0.1)
        with pytest.raises(llmx.RateLimitError, match="client-side rate limit") as info:
            await second.complete(model="main/gpt-4o-mini", prompt="blocked")
        assert not info.value.retryable
        # with a candidate left, the same wait moves on to it
        assert (await second.complete(model="duo", prompt="moves on")).provider == "spare"
        await slow
        assert (await second.complete(model="main/gpt-4o-mini", prompt="free")).text == "free"


async def test_token_estimates_are_corrected_in_redis(
    fake: FakeOpenAIServer, redis_server: RedisServer
) -> None:
    data = config(fake, redis_server.url, limiter={})
    data["providers"]["main"]["limits"] = {"tpm": 100_000}
    fake.enqueue(Reply("ok", usage=(7, 3)))
    async with llmx.Client(data) as client:
        await client.complete(model="main/gpt-4o-mini", prompt="hi", max_tokens=500)
        limiter = client._pool.get("main").limiter
        assert limiter is not None
        await limiter.aclose()  # the correction is written in the background
        assert await limiter.backend.usage("main", "tpm") == 10


async def test_lua_window_is_all_or_nothing(redis_server: RedisServer) -> None:
    from llmx_redis import RedisLimiterSettings, redis_limiter

    limiter = redis_limiter(RedisLimiterSettings(url=llmx.Secret(value=redis_server.url)))
    try:
        rpm = Bucket("x", "rpm", 3, 60)
        tpm = Bucket("x", "tpm", 100, 60, 80)
        assert await limiter.acquire("g1", [rpm, tpm]) == 0
        wait = await limiter.acquire("g2", [rpm, tpm])
        assert 59 < wait <= 60
        assert await limiter.usage("x", "rpm") == 1
        assert await limiter.acquire("g3", [Bucket("x", "tpm", 100, 60, 101)]) == float("inf")
        await limiter.release("g1", [rpm, Bucket("x", "tpm", 100, 60, 20)])
        assert await limiter.usage("x", "tpm") == 20
        assert await limiter.acquire("g2", [rpm, tpm]) == 0  # fits now: 20 + 80 <= 100
    finally:
        await limiter.aclose()


# -- the breaker store --------------------------------------------------------------------------


async def test_an_instance_one_client_saw_failing_is_skipped_by_the_other(
    fake: FakeOpenAIServer, redis_server: RedisServer
) -> None:
    data = config(fake, redis_server.url, breaker_store={"refresh_interval": 0.2})
    data["breaker"] = {"failure_threshold": 2, "cooldown": 0.5}
    async with llmx.Client(data) as first, llmx.Client(data) as second:
        assert (await second.complete(model="spare/gpt-4o-mini", prompt="warm up")).text
        fake.enqueue(ErrorReply(503), ErrorReply(503))
        for _ in range(2):
            with pytest.raises(llmx.ServerError):
                await first.complete(model="main/gpt-4o-mini", prompt="x")
        assert first.stats().instances["main"].breaker == "open"
        for _ in range(50):  # pub/sub carries it over within a round trip or two
            if second.stats().instances.get("main") is not None:
                break
            await asyncio.sleep(0.01)
        seen = fake.request_count
        deadline = time.monotonic() + 2
        while second._pool.get("main").breaker.refresh() != "open":
            assert time.monotonic() < deadline, "the second client never saw the open breaker"
            await asyncio.sleep(0.01)
        answer = await second.complete(model="duo", prompt="x")
        assert answer.provider == "spare"
        assert fake.request_count == seen + 1  # main was skipped without a request
        # the second client probes after the cool-down; its success closes it for both
        await asyncio.sleep(0.55)
        assert (await second.complete(model="main/gpt-4o-mini", prompt="probe")).text == "probe"
        deadline = time.monotonic() + 2
        while first._pool.get("main").breaker.refresh() != "closed":
            assert time.monotonic() < deadline, "the first client never saw the close"
            await asyncio.sleep(0.01)


async def test_cooldowns_are_shared_through_redis(
    fake: FakeOpenAIServer, redis_server: RedisServer
) -> None:
    data = config(fake, redis_server.url, breaker_store={})
    fake.enqueue(ErrorReply(429, headers={"retry-after": "30"}))
    async with llmx.Client(data) as first, llmx.Client(data) as second:
        assert (await first.complete(model="duo", prompt="x")).provider == "spare"
        deadline = time.monotonic() + 2
        while second.stats().instances.get("main") is None or (
            second.stats().instances["main"].cooldown_remaining < 25
        ):
            second._pool.get("main")  # the instance exists once used
            assert time.monotonic() < deadline, "the cooldown never reached the second client"
            await asyncio.sleep(0.02)
        seen = fake.request_count
        assert (await second.complete(model="duo", prompt="y")).provider == "spare"
        assert fake.request_count == seen + 1


async def test_breaker_store_without_redis_keeps_requests_working(
    fake: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    from llmx_redis.testing._server import _free_port

    caplog.set_level(logging.WARNING, logger="llmx.redis")
    url = f"redis://127.0.0.1:{_free_port()}/0"
    data = config(fake, url, breaker_store={"connect_timeout": 0.1, "refresh_interval": 0.05})
    data["breaker"] = {"failure_threshold": 1, "cooldown": 5}
    async with llmx.Client(data) as client:
        fake.enqueue(ErrorReply(500))
        assert (await client.complete(model="duo", prompt="x")).provider == "spare"
        assert client.stats().instances["main"].breaker == "open"  # its own state still works
        await asyncio.sleep(0.2)
    assert "redis breaker store" in caplog.text


async def test_limiter_without_redis_limits_in_the_process_with_one_warning(
    fake: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down: requests still go (nothing fails for want of the store), limited by
    the in-process stand-in at the full limit (``expected_processes = 1``), one line
    logged for the transition. (Before issue 14 they went unlimited.)"""
    from llmx_redis.testing._server import _free_port

    caplog.set_level(logging.WARNING, logger="llmx.store")
    url = f"redis://127.0.0.1:{_free_port()}/0"
    data = config(fake, url, limiter={"connect_timeout": 0.1})
    data["providers"]["main"]["limits"] = {"rpm": 3, "max_concurrent": 1, "max_wait": 0}
    async with llmx.Client(data) as client:
        for _ in range(3):
            assert (await client.complete(model="main/gpt-4o-mini", prompt="hi")).text == "hi"
        with pytest.raises(llmx.RateLimitError, match="client-side rate limit"):
            await client.complete(model="main/gpt-4o-mini", prompt="hi")
        limiter = client._pool.get("main").limiter
        assert limiter is not None
        assert limiter.backend_errors == 3
        assert limiter.stats().local_grants >= 4  # every ask went to the stand-in
        store = client.stats().stores["limiter"]
        assert store.degraded
        assert store.transitions == 1
    assert caplog.text.count("shared limiter 'redis' degraded") == 1

"""The response cache: keys, policies, the memory and SQLite backends, streams, failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx._cache import (
    MemoryCache,
    MemoryCacheSettings,
    decode_entry,
    encode_entry,
)
from llmx._cache_sqlite import SQLiteCacheSettings
from llmx.plugin import Register, cache_key, hookimpl

from core_support import FailAfter, FlexPlugin, flex_client, server_error

# -- keys ----------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(-100, 100, allow_nan=False).filter(lambda f: not f.is_integer())
    | st.text(max_size=6)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
messages = st.lists(
    st.builds(
        llmx.Message,
        st.sampled_from(["system", "user", "assistant"]),
        st.text(max_size=20),
    ),
    min_size=1,
    max_size=3,
)
requests = st.builds(
    llmx.Request,
    model=st.just("alias"),
    messages=messages,
    max_tokens=st.none() | st.integers(1, 4000),
    temperature=st.none() | st.sampled_from([0, 0.0, 0.5, 1, 1.0, 1.5]),
    top_p=st.none() | st.sampled_from([0.5, 1, 0.9]),
    stop=st.lists(st.text(min_size=1, max_size=3), max_size=2),
    seed=st.none() | st.integers(0, 10),
    extra=st.dictionaries(
        st.sampled_from(["a", "b", "frequency_penalty", "n"]), json_values, max_size=3
    ),
)


def _reordered(value: Any) -> Any:
    """The same JSON-like data with every mapping's keys in reverse order and every
    integral number written as a float (what a different caller might pass)."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _key(request: llmx.Request, instance: str = "a", model: str = "m") -> str:
    return cache_key(request, instance=instance, model=model)


@given(requests)
def test_equal_requests_have_equal_keys(request: llmx.Request) -> None:
    same = llmx.Request(
        "another-alias",  # the caller's model reference is not in the key: the resolved one is
        request.messages,
        max_tokens=request.max_tokens,
        temperature=None if request.temperature is None else float(request.temperature),
        top_p=None if request.top_p is None else float(request.top_p),
        stop=request.stop,
        seed=request.seed,
        extra=_reordered(dict(request.extra)),
        include_raw=True,  # does not change the output
    )
    assert _key(request) == _key(same)
    assert _key(request).startswith("llmx:v1:")
    assert len(_key(request)) == len("llmx:v1:") + 64


changes = st.sampled_from(
    ["instance", "model", "message", "role", "max_tokens", "temperature", "top_p", "stop", "seed",
     "extra", "tools", "response_format", "tool_choice"]
)  # fmt: skip


def _changed(request: llmx.Request, what: str) -> tuple[llmx.Request, str, str]:
    import attrs

    instance, model = "a", "m"
    if what == "instance":
        instance = "b"
    elif what == "model":
        model = "m2"
    elif what == "message":
        last = request.messages[-1]
        request = attrs.evolve(
            request, messages=(*request.messages[:-1], llmx.Message(last.role, last.text + "!"))
        )
    elif what == "role":
        last = request.messages[-1]
        role = "user" if last.role != "user" else "assistant"
        request = attrs.evolve(
            request, messages=(*request.messages[:-1], llmx.Message(role, last.content))
        )
    elif what == "max_tokens":
        request = attrs.evolve(request, max_tokens=(request.max_tokens or 0) + 1)
    elif what == "temperature":
        request = attrs.evolve(request, temperature=(request.temperature or 0) + 0.25)
    elif what == "top_p":
        request = attrs.evolve(request, top_p=0.123 if request.top_p != 0.123 else 0.5)
    elif what == "stop":
        request = attrs.evolve(request, stop=(*request.stop, "zz"))
    elif what == "seed":
        request = attrs.evolve(request, seed=(request.seed or 0) + 1)
    elif what == "extra":
        request = attrs.evolve(request, extra={**request.extra, "zz_new": 1})
    elif what == "tools":
        request = attrs.evolve(request, tools=(*request.tools, llmx.Tool("lookup")))
    elif what == "response_format":
        request = attrs.evolve(request, response_format="json")
    elif what == "tool_choice":
        request = attrs.evolve(request, tool_choice="required")
    return request, instance, model


@given(requests, changes)
def test_any_output_affecting_change_changes_the_key(request: llmx.Request, what: str) -> None:
    changed, instance, model = _changed(request, what)
    assert _key(request) != _key(changed, instance, model)


def test_keys_hold_no_secret_and_ignore_bookkeeping() -> None:
    request = llmx.Request("a/m", "hi", extra={"user": "u-1", "metadata": {"trace": "x"}})
    assert _key(request) == _key(llmx.Request("a/m", "hi"))
    assert _key(request, namespace_free := "a") == _key(llmx.Request("a/m", "hi"), namespace_free)
    assert cache_key(request, instance="a", model="m", namespace="app1").startswith("llmx:v1:app1:")


def test_entries_round_trip_and_hold_only_the_answer() -> None:
    response = llmx.Response(
        "hello",
        "m",
        "a",
        tool_calls=(llmx.ToolCall("c1", "f", '{"x": 1}'),),
        finish_reason="tool_calls",
        usage=llmx.Usage(3, 4),
        latency=1.5,
        cost=0.25,
        id="resp-1",
        attempts=(llmx.Attempt("a", "m", 1.5),),
        raw={"secret-ish": "payload"},
    )
    chunks = [llmx.TextDelta("hel"), llmx.TextDelta("lo"), llmx.ToolCallDelta(0, "c1", "f", "{}")]
    value = encode_entry(response, chunks)
    assert b"payload" not in value
    back, back_chunks = decode_entry(value)
    assert back.text == "hello"
    assert back.tool_calls == response.tool_calls
    assert back.usage == response.usage
    assert back.id == "resp-1"
    assert back.attempts == ()
    assert back.cost is None
    assert back.raw is None
    assert back_chunks == chunks
    big = llmx.Response("x" * 5000, "m", "a")
    packed = encode_entry(big)
    assert packed[:1] == b"Z"
    assert len(packed) < 500
    assert decode_entry(packed)[0].text == big.text
    for corrupt in (b"", b"{", b"Z\x00\x01", b'{"f": 99}', b'{"f": 1, "r": {"text": 3}}'):
        with pytest.raises(ValueError, match="cache entry"):
            decode_entry(corrupt)


# -- policies -------------------------------------------------------------------------------


def config(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "providers": {"a": {"type": "flex"}, "b": {"type": "flex"}},
        "retry": {"attempts": 1},
    }
    base.update(extra)
    return base


async def test_no_cache_section_means_no_cache() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config()) as client:
        for _ in range(2):
            response = await client.complete(model="a/m", prompt="hi")
            assert not response.cached
        assert plugin.calls_to("a") == 2
        assert client.stats().cache is None
        assert (await client.complete(model="a/m", prompt="hi", cache="off")).text == "a:hi"
        with pytest.raises(llmx.ConfigError, match=r"no response cache is configured"):
            await client.complete(model="a/m", prompt="hi", cache="read_write")


async def test_hit_is_marked_free_and_counted() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config(cache={"backend": "memory"})) as client:
        first = await client.complete(model="a/m", prompt="hi")
        second = await client.complete(model="a/m", prompt="hi")
        assert plugin.calls_to("a") == 1
        assert not first.cached
        assert first.attempts
        assert second.cached
        assert second.attempts == ()
        assert second.cost == 0.0
        assert second.text == first.text
        assert second.usage == first.usage
        assert second.provider == "a"
        assert second.latency < 0.5
        stats = client.stats().cache
        assert stats is not None
        assert (stats.hits, stats.misses, stats.stores) == (1, 1, 1)
        assert stats.hit_rate == 0.5


async def test_modes_per_call() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config(cache={})) as client:  # an empty section: off
        await client.complete(model="a/m", prompt="hi")
        await client.complete(model="a/m", prompt="hi")
        assert plugin.calls_to("a") == 2
    plugin = FlexPlugin()
    plugin.defaults["a"] = lambda: f"answer {len(plugin.calls)}"
    async with flex_client(plugin, config(cache={"ttl": 60})) as client:
        assert (
            await client.complete(model="a/m", prompt="q", cache="read_only")
        ).text == "answer 1"
        assert (await client.complete(model="a/m", prompt="q")).text == "answer 2"  # stored now
        assert (await client.complete(model="a/m", prompt="q")).cached
        refreshed = await client.complete(model="a/m", prompt="q", cache="refresh")
        assert not refreshed.cached
        assert refreshed.text == "answer 3"
        assert (await client.complete(model="a/m", prompt="q")).text == "answer 3"
        assert not (await client.complete(model="a/m", prompt="q", cache="off")).cached
        policy = llmx.CachePolicy(mode="read_only")
        assert (await client.complete(model="a/m", prompt="q", cache=policy)).cached
        with pytest.raises(ValueError, match="cache mode must be one of"):
            await client.complete(model="a/m", prompt="q", cache="sometimes")


async def test_ttl_expires_entries() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config(cache={"ttl": 0.05})) as client:
        await client.complete(model="a/m", prompt="hi")
        assert (await client.complete(model="a/m", prompt="hi")).cached
        await asyncio.sleep(0.08)
        assert not (await client.complete(model="a/m", prompt="hi")).cached


async def test_temperature_and_layers() -> None:
    plugin = FlexPlugin()
    cfg = config(
        cache={"backend": "memory"},
        providers={
            "a": {"type": "flex"},
            "b": {"type": "flex", "cache": {"mode": "off"}},
            "c": {"type": "flex", "cache": {"cache_nonzero_temperature": True}},
        },
        aliases={"both": {"candidates": ["b/m"], "cache": {"mode": "read_write"}}},
    )
    async with flex_client(plugin, cfg) as client:
        for _ in range(2):
            await client.complete(model="a/m", prompt="hot", temperature=0.7)
            await client.complete(model="a/m", prompt="cold", temperature=0)
            await client.complete(model="b/m", prompt="x")  # the instance turns it off
            await client.complete(model="both", prompt="x")  # the alias turns it back on
            await client.complete(model="c/m", prompt="hot", temperature=0.7)
        assert plugin.calls_to("a") == 3  # hot twice, cold once
        assert plugin.calls_to("b") == 3  # direct twice, through the alias once
        assert plugin.calls_to("c") == 1
        stats = client.stats().cache
        assert stats is not None
        assert stats.bypassed == 4
        # the call's policy wins over everything
        await client.complete(
            model="a/m",
            prompt="hot",
            temperature=0.7,
            cache=llmx.CachePolicy(cache_nonzero_temperature=True),
        )
        assert (
            await client.complete(
                model="a/m",
                prompt="hot",
                temperature=0.7,
                cache=llmx.CachePolicy(cache_nonzero_temperature=True),
            )
        ).cached


async def test_instance_policy_alone_enables_it_for_that_instance() -> None:
    plugin = FlexPlugin()
    cfg = config(
        providers={"a": {"type": "flex", "cache": {"mode": "read_write"}}, "b": {"type": "flex"}}
    )
    async with flex_client(plugin, cfg) as client:
        for _ in range(2):
            await client.complete(model="a/m", prompt="x")
            await client.complete(model="b/m", prompt="x")
        assert (plugin.calls_to("a"), plugin.calls_to("b")) == (1, 2)


async def test_errors_are_never_cached_and_fallback_answers_are_keyed_by_who_answered() -> None:
    plugin = FlexPlugin()
    plugin.scripts["a"] = [server_error("a"), server_error("a")]
    cfg = config(cache={"backend": "memory"}, aliases={"duo": ["a/m", "b/m"]})
    async with flex_client(plugin, cfg) as client:
        first = await client.complete(model="duo", prompt="q")
        assert first.provider == "b"  # a failed, b answered and was stored under b's key
        second = await client.complete(model="duo", prompt="q")
        assert second.cached
        assert second.provider == "b"
        assert plugin.calls_to("a") == 1
        assert plugin.calls_to("b") == 1
        with pytest.raises(llmx.ServerError):
            await client.complete(model="a/m", prompt="q")  # the error was not stored...
        assert (await client.complete(model="a/m", prompt="q")).text == "a:q"  # ...so a retries


async def test_streams_replay_as_the_same_chunks_and_only_completed_ones_are_stored() -> None:
    plugin = FlexPlugin()
    async with flex_client(plugin, config(cache={"backend": "memory"})) as client:
        async with client.stream(model="a/m", prompt="one two three") as stream:
            first = [c async for c in stream]
        async with client.stream(model="a/m", prompt="one two three") as stream:
            again = [c async for c in stream]
        assert again == first
        assert len(first) == 4
        assert stream.response is not None
        assert stream.response.cached
        assert plugin.calls_to("a") == 1
        async with client.stream(model="a/m", prompt="one two three") as stream:
            texts = [t async for t in stream.text()]  # a hit read as text
        assert texts == [c.text for c in first if isinstance(c, llmx.TextDelta)]
        assert stream.response is not None
        assert stream.response.cached
        # a complete() is answered by what the stream stored, and vice versa
        assert (await client.complete(model="a/m", prompt="one two three")).cached
        await client.complete(model="a/m", prompt="four five")
        async with client.stream(model="a/m", prompt="four five") as stream:
            chunks = [c async for c in stream]
        assert [c.text for c in chunks if isinstance(c, llmx.TextDelta)] == ["a:four five"]
        assert isinstance(chunks[-1], llmx.StreamEnd)
        # abandoned and failed streams are not stored
        async with client.stream(model="a/m", prompt="six seven eight") as stream:
            async for _ in stream:
                break
        plugin.scripts["a"] = [FailAfter(1, server_error("a"))]
        async with client.stream(model="a/m", prompt="nine ten") as stream:
            with pytest.raises(llmx.ServerError):
                await stream.collect()
        calls = plugin.calls_to("a")
        async with client.stream(model="a/m", prompt="six seven eight") as stream:
            await stream.collect()
        async with client.stream(model="a/m", prompt="nine ten") as stream:
            await stream.collect()
        assert plugin.calls_to("a") == calls + 2


# -- failures degrade to misses ----------------------------------------------------------------


class BrokenCache:
    """A backend that fails every call, like a Redis that went away."""

    def __init__(self, settings: object = None) -> None:
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        raise ConnectionError("backend down")

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        self.calls += 1
        raise OSError(28, "No space left on device")


class CorruptCache(MemoryCache):
    """A backend whose stored bytes come back damaged."""

    async def get(self, key: str) -> bytes | None:
        value = await super().get(key)
        return None if value is None else value[: len(value) // 2]


class CachePlugin:
    llmx_contract = "1.1"

    @hookimpl
    def llmx_register_caches(self, register: Register) -> None:
        register("broken", BrokenCache)
        register("corrupt", CorruptCache, settings=MemoryCacheSettings)


def _registry() -> llmx.Registry:
    import importlib_metadata

    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(CachePlugin(), name="caches")
    return registry


@pytest.mark.parametrize("backend", ["broken", "corrupt"])
async def test_backend_failures_are_misses_with_a_warning(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = FlexPlugin()
    caplog.set_level(logging.WARNING, logger="llmx.cache")
    async with flex_client(plugin, config(cache={"backend": backend}), _registry()) as client:
        for _ in range(3):
            response = await client.complete(model="a/m", prompt="hi")
            assert response.text == "a:hi"
            assert not response.cached
        assert plugin.calls_to("a") == 3
        stats = client.stats().cache
        assert stats is not None
        assert stats.errors >= 2
        assert stats.hits == 0
        async with client.stream(model="a/m", prompt="hi") as stream:
            assert (await stream.collect()).text == "a:hi"
    warnings = [r for r in caplog.records if r.name == "llmx.cache"]
    assert len(warnings) == 1  # rate-limited, not one per request
    assert "treating it as a miss" in warnings[0].getMessage()


def test_cache_config_errors_name_the_path(tmp_path: Path) -> None:
    plugin = FlexPlugin()
    cases = [
        (config(cache={"backend": "memory", "mode": "sometimes"}), "$.cache"),
        (config(cache={"ttl": -1}), "ttl must be a positive"),
        (config(cache={"max_entrees": 3}), "extra fields found (max_entrees) @ $.cache"),
        (config(cache={"backend": "nope"}), "@ $.cache.backend"),
        (
            config(providers={"a": {"type": "flex", "cache": {"mood": "off"}}}),
            "extra fields found (mood) @ $.providers.a.cache",
        ),
        (
            config(aliases={"x": {"candidates": ["a/m"], "cache": {"ttl": "long"}}}),
            "$.aliases.x.cache",
        ),
    ]
    for data, expected in cases:
        with pytest.raises(llmx.ConfigError) as info:
            flex_client(plugin, data)
        assert expected in str(info.value), str(info.value)


# -- backends ---------------------------------------------------------------------------------


async def test_memory_cache_is_lru_by_entries_and_bytes() -> None:
    now = [0.0]
    cache = MemoryCache(MemoryCacheSettings(max_entries=3, max_bytes=10), clock=lambda: now[0])
    for key in "abc":
        await cache.set(key, b"12", ttl=None)
    assert await cache.get("a") == b"12"  # a is now the most recent
    await cache.set("d", b"12", ttl=None)
    assert await cache.get("b") is None
    assert len(cache) == 3
    await cache.set("e", b"123456", ttl=None)  # 2+2+2+6 > 10: the oldest go
    assert cache.size <= 10
    assert await cache.get("e") == b"123456"
    assert await cache.get("c") is None
    await cache.set("big", b"x" * 11, ttl=None)  # larger than the cap: not stored
    assert await cache.get("big") is None
    await cache.set("t", b"1", ttl=5)
    now[0] = 4.9
    assert await cache.get("t") == b"1"
    now[0] = 5.0
    assert await cache.get("t") is None


async def test_sqlite_cache_persists_evicts_and_shares_a_file(tmp_path: Path) -> None:
    from llmx._cache_sqlite import sqlite_cache

    path = tmp_path / "c.sqlite3"
    settings = SQLiteCacheSettings(path=str(path), max_bytes=3000)
    first = sqlite_cache(settings)
    second = sqlite_cache(settings)  # another process, as far as SQLite can tell
    try:
        await first.set("k", b"v" * 100, ttl=None)
        assert await second.get("k") == b"v" * 100
        await first.set("t", b"x", ttl=0.01)
        await asyncio.sleep(0.03)
        assert await second.get("t") is None
        for i in range(40):
            await first.set(f"n{i}", bytes(100), ttl=None)
        entries, size = await first.usage()  # type: ignore[attr-defined]
        assert size <= 3000
        assert entries <= 30
        assert await first.get("n39") == bytes(100)  # the newest stay
        assert await first.get("n0") is None
        with contextlib.closing(sqlite3.connect(path)) as conn:  # `with connect()` leaves it open
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await first.aclose()  # type: ignore[attr-defined]
        await second.aclose()  # type: ignore[attr-defined]


async def test_sqlite_through_the_client_and_a_broken_file(tmp_path: Path) -> None:
    plugin = FlexPlugin()
    path = tmp_path / "cache.sqlite3"
    cfg = config(cache={"backend": "sqlite", "path": str(path)})
    async with flex_client(plugin, cfg) as client:
        await client.complete(model="a/m", prompt="hi")
    async with flex_client(plugin, cfg) as client:  # a new client: the entry persisted
        assert (await client.complete(model="a/m", prompt="hi")).cached
    assert plugin.calls_to("a") == 1
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    cfg = config(cache={"backend": "sqlite", "path": str(bad)})
    async with flex_client(plugin, cfg) as client:
        assert (await client.complete(model="a/m", prompt="hi")).text == "a:hi"
        stats = client.stats().cache
        assert stats is not None
        assert stats.errors >= 1


async def test_sqlite_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """While another connection holds the write lock, a write waits in the worker
    thread (busy timeout) and the event loop keeps running."""
    from llmx._cache_sqlite import sqlite_cache

    path = tmp_path / "c.sqlite3"
    cache = sqlite_cache(SQLiteCacheSettings(path=str(path), busy_timeout=2.0))
    await cache.set("warm", b"1", ttl=None)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    try:
        write = asyncio.ensure_future(cache.set("k", b"v", ttl=None))
        await asyncio.sleep(0.3)
        assert not write.done()
        assert ticks >= 10
        blocker.execute("COMMIT")
        await asyncio.wait_for(write, 5)
        assert await cache.get("k") == b"v"
    finally:
        ticker.cancel()
        blocker.close()
        await cache.aclose()  # type: ignore[attr-defined]


def test_import_llmx_stays_light() -> None:
    import subprocess

    code = (
        "import llmx, llmx.plugin, sys; llmx.CachePolicy; llmx.plugin.cache_key; "
        "print(sorted(m for m in ('sqlite3', 'redis', 'aiohttp', 'cattrs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_sqlite_lookups_read_on_the_loop_and_hand_locks_to_the_worker(
    tmp_path: Path,
) -> None:
    """After the first lookup, hits are read on the event loop through a read-only
    connection; the writes they cause (deleting an expired row) run in the worker
    thread; and if the file is locked even for readers, the lookup waits in the worker
    thread."""
    from llmx._cache_sqlite import sqlite_cache

    path = tmp_path / "c.sqlite3"
    cache: Any = sqlite_cache(SQLiteCacheSettings(path=str(path), busy_timeout=0.3))
    try:
        await cache.set("k", b"v", ttl=None)
        await cache.set("gone", b"x", ttl=0.01)
        assert await cache.get("k") == b"v"  # opens the reader (in the worker)
        assert cache._reader is not None
        await asyncio.sleep(0.03)
        assert await cache.get("gone") is None  # read on the loop; deleted by the worker
        for _ in range(50):
            if await cache.usage() == (1, 1):
                break
            await asyncio.sleep(0.01)
        assert await cache.usage() == (1, 1)

        # In WAL mode nothing but recovery makes a reader busy; stand in for that with
        # a read connection to a rollback-journal file that another connection locks.
        other = tmp_path / "locked.sqlite3"
        blocker = sqlite3.connect(other, isolation_level=None)
        blocker.execute("CREATE TABLE entries (key TEXT)")
        blocker.execute("BEGIN EXCLUSIVE")
        reader, cache._reader = cache._reader, sqlite3.connect(other, timeout=0)
        try:
            assert await cache.get("k") == b"v"  # "database is locked": the worker read it
        finally:
            cache._reader.close()
            cache._reader = reader
            blocker.execute("COMMIT")
            blocker.close()
        assert await cache.get("k") == b"v"
    finally:
        await cache.aclose()
    assert cache._reader is None


async def test_drain_returns_when_the_writes_are_already_done() -> None:
    """Awaiting writes that are already done does not yield to the loop, so the done
    callbacks that discard them never ran and ``drain`` spun forever (a client with a
    shared cache hung in ``aclose``, seen on Python 3.12, whose ``gather`` of done tasks
    completes without a loop turn; on 3.11 the loop turn hid it)."""
    from llmx._cache import CacheLayer, MemoryCache

    class Shared(MemoryCache):
        shared = True  # a shared backend: writes go to the background

    layer = CacheLayer(Shared(), name="shared", base=llmx.CachePolicy(), instances={}, aliases={})

    async def write() -> None:
        return None

    task = asyncio.get_running_loop().create_task(write())
    await task  # done, and its discard callback not yet run when drain starts
    layer._writes.add(task)
    task.add_done_callback(layer._writes.discard)

    # A spinning drain never yields to the loop, so no asyncio timeout can stop it: an
    # alarm signal does (its handler runs between bytecodes).
    import signal

    def spinning(signum: int, frame: object) -> None:
        raise AssertionError("drain() spun without yielding")

    previous = signal.signal(signal.SIGALRM, spinning)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        await layer.drain()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not layer._writes

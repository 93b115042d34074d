"""Shared breaker state: two clients over one breaker store behave like two processes
sharing Redis — an instance one saw failing is skipped by the other, cooldowns too."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import importlib_metadata
import pytest

import llmx
from llmx._state import MemoryBreakerStore
from llmx.plugin import Register, SharedBreakerState, hookimpl

from core_support import FlexPlugin, flex_client, server_error


class SharedStore(MemoryBreakerStore):
    """One dict for every client that uses it (as Redis is for processes)."""

    shared = True
    states: dict[str, SharedBreakerState] = {}  # noqa: RUF012 - shared on purpose

    def __init__(self, settings: object = None) -> None:
        self._states = SharedStore.states


class StorePlugin:
    llmx_contract = "1.1"

    @hookimpl
    def llmx_register_breaker_stores(self, register: Register) -> None:
        register("shared", SharedStore)


def _client(plugin: FlexPlugin, **extra: Any) -> llmx.Client:
    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(StorePlugin(), name="stores")
    config: dict[str, Any] = {
        "providers": {"a": {"type": "flex"}, "b": {"type": "flex"}},
        "aliases": {"duo": ["a/m", "b/m"]},
        "retry": {"attempts": 1},
        "breaker": {"failure_threshold": 2, "cooldown": 0.3},
        "breaker_store": {"backend": "shared"},
        **extra,
    }
    return flex_client(plugin, config, registry)


@pytest.fixture(autouse=True)
def _fresh_store() -> None:
    SharedStore.states.clear()


async def test_an_instance_one_process_saw_failing_is_skipped_by_the_other() -> None:
    one, two = FlexPlugin(), FlexPlugin()
    one.defaults["a"] = lambda: server_error("a")
    async with _client(one) as first, _client(two) as second:
        for _ in range(2):
            assert (await first.complete(model="duo", prompt="x")).provider == "b"
        assert first.stats().instances["a"].breaker == "open"
        shared = SharedStore.states["a"]
        assert shared.state == "open"
        assert shared.until > time.time()
        # the second client never saw a failure, yet skips a
        assert (await second.complete(model="duo", prompt="x")).provider == "b"
        assert two.calls_to("a") == 0
        assert second.stats().instances["a"].breaker == "open"
        with pytest.raises(llmx.CircuitOpenError):
            await second.complete(model="a/m", prompt="x")
        # after the cool-down the second client probes; its success closes it for both
        await asyncio.sleep(0.35)
        assert (await second.complete(model="a/m", prompt="x")).provider == "a"
        assert SharedStore.states["a"].state == "closed"
        one.defaults.pop("a")
        assert (await first.complete(model="duo", prompt="x")).provider == "a"
        assert first.stats().instances["a"].breaker == "closed"


async def test_cooldowns_are_shared() -> None:
    one, two = FlexPlugin(), FlexPlugin()
    one.scripts["a"] = [llmx.RateLimitError("slow down", provider="a", retry_after=30)]
    async with _client(one) as first, _client(two) as second:
        assert (await first.complete(model="duo", prompt="x")).provider == "b"
        assert first.stats().instances["a"].cooldown_remaining > 25
        assert second.stats().instances["a"].cooldown_remaining > 25
        assert (await second.complete(model="duo", prompt="x")).provider == "b"
        assert two.calls_to("a") == 0


async def test_the_default_store_is_private_to_each_client() -> None:
    one, two = FlexPlugin(), FlexPlugin()
    one.defaults["a"] = lambda: server_error("a")
    config: dict[str, Any] = {
        "providers": {"a": {"type": "flex"}, "b": {"type": "flex"}},
        "aliases": {"duo": ["a/m", "b/m"]},
        "retry": {"attempts": 1},
        "breaker": {"failure_threshold": 1, "cooldown": 30},
    }
    async with flex_client(one, config) as first, flex_client(two, config) as second:
        await first.complete(model="duo", prompt="x")
        assert first.stats().instances["a"].breaker == "open"
        assert (await second.complete(model="duo", prompt="x")).provider == "a"
        assert first._pool.get("a").breaker._store is None  # nothing consulted per request


def test_merge_keeps_the_newest_transition_and_the_latest_cooldown() -> None:
    old = SharedBreakerState("open", 100.0, 10.0, "x", "p1", blocked_until=50.0)
    new = SharedBreakerState("closed", 0.0, 20.0, "probe", "p2")
    cooldown = SharedBreakerState(blocked_until=70.0)
    merged = old.merge(new).merge(cooldown)
    assert (merged.state, merged.updated, merged.origin) == ("closed", 20.0, "p2")
    assert merged.blocked_until == 70.0
    assert cooldown.merge(old) == old.merge(cooldown)


def test_store_backend_errors_name_the_path() -> None:
    with pytest.raises(llmx.ConfigError, match=r"@ \$\.breaker_store\.backend"):
        _client(FlexPlugin(), breaker_store={"backend": "nope"})

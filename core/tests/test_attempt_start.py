"""The ``llmx_attempt_start`` hook (contract 1.2): when it is called, what its event
says (kind, number, provider type, start time shared with ``llmx_attempt_end``), and
the headers it adds to the attempt's HTTP request (over real HTTP, to a fake OpenAI
server on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import pytest
from importlib_metadata import EntryPoint

import llmx
from llmx.plugin import AttemptEnd, AttemptStart, hookimpl
from llmx.testing import ErrorReply, Reply
from llmx_openai.testing import FakeOpenAIServer

from core_support import FlexPlugin, Sleep, flex_client, server_error

THREE = {
    "providers": {
        "a": {"type": "flex", "priority": 1},
        "b": {"type": "flex", "priority": 2},
    },
    "aliases": {"smart": ["a/m", "b/m"]},
    "retry": {"policy": "stamina", "attempts": 2, "wait_initial": 0.0, "wait_jitter": 0.0},
}


class Recorder:
    """Records both attempt events; adds ``headers`` at each start."""

    llmx_contract = "1.2"

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        self.starts: list[AttemptStart] = []
        self.ends: list[AttemptEnd] = []
        self.headers = headers or {}

    @hookimpl
    def llmx_attempt_start(self, event: AttemptStart) -> None:
        self.starts.append(event)
        event.headers.update(self.headers)

    @hookimpl
    def llmx_attempt_end(self, event: AttemptEnd) -> None:
        self.ends.append(event)


def registry_with(recorder: Recorder, *, installed: bool = False) -> llmx.Registry:
    """The builtins (or every installed plugin) and ``recorder``."""
    if installed:
        registry = llmx.Registry()
    else:
        builtins = EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
        registry = llmx.Registry(entry_points=[builtins])
    registry.register(recorder, name="recorder")
    return registry


def kinds(recorder: Recorder) -> list[tuple[int, str, str]]:
    return [(e.attempt, e.provider, e.kind) for e in recorder.starts]


async def test_first_retry_fallback() -> None:
    """a fails, is retried and fails again; b answers: first, retry, fallback, each start
    paired with its end (same request id, number and start time)."""
    plugin = FlexPlugin()
    plugin.scripts["a"] = [server_error("a"), server_error("a")]
    recorder = Recorder()
    async with flex_client(plugin, THREE, registry_with(recorder)) as client:
        await client.complete(model="smart", prompt="x")
    assert kinds(recorder) == [(1, "a", "first"), (2, "a", "retry"), (3, "b", "fallback")]
    assert [e.provider_type for e in recorder.starts] == ["flex"] * 3
    assert [(e.attempt, e.started) for e in recorder.starts] == [
        (e.attempt, e.started) for e in recorder.ends
    ]
    assert len({e.request_id for e in recorder.starts + recorder.ends}) == 1


async def test_hedge_attempts_are_numbered_apart() -> None:
    """A hedge overlaps the first attempt: it is its own number and of kind ``hedge``."""
    plugin = FlexPlugin()
    plugin.defaults["a"] = Sleep(1.0, "slow a")
    plugin.defaults["b"] = Sleep(0.01, "fast b")
    config = {
        **THREE,
        "aliases": {"smart": {"candidates": ["a/m", "b/m"], "strategy": "hedged"}},
        "routing": {"strategy": "hedged", "base": "priority", "delay": 0.05, "budget": 1.0},
    }
    recorder = Recorder()
    async with flex_client(plugin, config, registry_with(recorder)) as client:
        reply = await client.complete(model="smart", prompt="x")
    assert reply.provider == "b"
    assert kinds(recorder) == [(1, "a", "first"), (2, "b", "hedge")]
    assert sorted(e.attempt for e in recorder.ends) == [1, 2]


def openai(server: FakeOpenAIServer, **extra: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": server.base_url, "api_key": "test-key", **extra}


@pytest.mark.parametrize("stream", [False, True])
async def test_headers_go_with_the_attempt_only(stream: bool) -> None:
    """Headers a hook adds are sent with that attempt's request (whole answers and
    streams); the provider's own headers win over one of the same name; nothing is
    left behind for a later request from a client without the hook."""
    recorder = Recorder({"traceparent": "00-abc-def-01", "Authorization": "Bearer stolen"})
    async with FakeOpenAIServer() as server:
        server.enqueue(ErrorReply(500, "boom"), Reply("ok"), Reply("again"))
        config = {
            "providers": {"main": openai(server, headers={"X-Team": "ours"})},
            "retry": {"policy": "stamina", "attempts": 2, "wait_initial": 0.0},
        }
        registry = registry_with(recorder, installed=True)
        async with llmx.Client(config, registry=registry) as client:
            if stream:
                async for _ in client.stream(model="main/m", prompt="x"):
                    pass
            else:
                await client.complete(model="main/m", prompt="x")
        async with llmx.Client(config) as plain:
            await plain.complete(model="main/m", prompt="x")
    first, second, later = (r.headers for r in server.model_requests)
    for headers in (first, second):
        assert headers["traceparent"] == "00-abc-def-01"
        assert headers["authorization"] == "Bearer test-key"
        assert headers["x-team"] == "ours"
    assert "traceparent" not in later


async def test_an_unused_hook_builds_no_event() -> None:
    """Without an implementation the caller is None: nothing is built or sent."""
    registry = llmx.Registry(
        entry_points=[EntryPoint(name="builtins", value="llmx._builtins", group="llmx")]
    )
    assert registry.events.attempt_start is None
    registry.register(Recorder(), name="recorder")
    assert registry.events.attempt_start is not None


async def test_a_raising_hook_leaves_nothing_held() -> None:
    """A hook must not raise; one that does reaches the caller (as for every event
    hook), but the attempt it interrupted holds nothing: no in-flight count, no breaker
    probe slot, no rate-limit permit."""

    class Raising:
        llmx_contract = "1.2"

        @hookimpl
        def llmx_attempt_start(self, event: AttemptStart) -> None:
            raise RuntimeError("listener bug")

    plugin = FlexPlugin()
    builtins = EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(Raising(), name="raising")
    config = {
        "providers": {"a": {"type": "flex", "max_concurrent": 1}},
        "breaker": {"failure_threshold": 1},
        "retry": {"policy": "none"},
    }
    async with flex_client(plugin, config, registry) as client:
        for _ in range(3):
            with pytest.raises(RuntimeError, match="listener bug"):
                await client.complete(model="a/m", prompt="x")
        stats = client.stats()
    assert stats.instances["a"].in_flight == 0
    assert stats.instances["a"].breaker == "closed"

"""The client and pipeline, end to end through an in-process provider plugin."""

from __future__ import annotations

import asyncio
import gc

import pytest

import llmx
from llmx.plugin import AttemptEnd, RequestEnd, RequestError, RequestStart, hookimpl

from core_support import TestPlugin, make_client


async def test_complete_with_prompt(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        reply = await client.complete(model="a/m1", prompt="hello")
    assert reply.text == "hello"
    assert reply.provider == "a"
    assert reply.model == "m1"
    assert reply.latency > 0
    assert reply.attempts[0].provider == "a"
    assert reply.usage == llmx.Usage(5, 5)


async def test_complete_with_request_and_messages(
    registry: llmx.Registry, plugin: TestPlugin
) -> None:
    async with make_client(registry) as client:
        req = llmx.Request("a/m1", [llmx.Message.system("be brief"), llmx.Message.user("hi")])
        reply = await client.complete(req)
        assert reply.text == "hi"
        reply = await client.complete(
            model="a/m1",
            messages=[{"role": "user", "content": "dict form"}],
            system="sys",
            temperature=0.2,
        )
    assert reply.text == "dict form"
    sent = plugin.requests[-1][1]
    assert [m.role for m in sent.messages] == ["system", "user"]
    assert sent.temperature == 0.2


async def test_request_and_kwargs_are_exclusive(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        with pytest.raises(TypeError, match="either a Request"):
            await client.complete(llmx.Request("a/m", "x"), prompt="y")
        with pytest.raises(TypeError, match="messages"):
            await client.complete(model="a/m")


async def test_default_model_and_missing_model(registry: llmx.Registry) -> None:
    async with make_client(registry, {"default_model": "a/dflt"}) as client:
        assert (await client.complete(prompt="x")).model == "dflt"
    async with make_client(registry) as client:
        with pytest.raises(llmx.ConfigError, match="no model given"):
            await client.complete(prompt="x")


async def test_type_settings_reach_provider(registry: llmx.Registry) -> None:
    config = {"providers": {"p": {"type": "echo", "prefix": ">> "}}}
    async with make_client(registry, config) as client:
        assert (await client.complete(model="p/m", prompt="x")).text == ">> x"


def test_unknown_type_key_is_config_error_with_path(registry: llmx.Registry) -> None:
    config = {"providers": {"p": {"type": "echo", "api_kye": "x"}}}
    with pytest.raises(
        llmx.ConfigError, match=r"extra fields found \(api_kye\) @ \$\.providers\.p"
    ):
        make_client(registry, config)


def test_unknown_provider_type_names_installed_ones(registry: llmx.Registry) -> None:
    with pytest.raises(llmx.ConfigError) as info:
        make_client(registry, {"providers": {"p": {"type": "nope"}}})
    message = str(info.value)
    assert "'nope'" in message
    assert "echo" in message
    assert "secho" in message
    assert "$.providers.p.type" in message


async def test_model_mapping_and_implicit_instance(
    registry: llmx.Registry, plugin: TestPlugin
) -> None:
    config = {"providers": {"p": {"type": "echo", "models": {"fast": "real-model-v2"}}}}
    async with make_client(registry, config) as client:
        assert (await client.complete(model="p/fast", prompt="x")).model == "real-model-v2"
        # "echo/..." with no [providers.echo]: an implicit instance of type "echo".
        reply = await client.complete(model="echo/m", prompt="x")
    assert reply.provider == "echo"


async def test_alias_uses_priority_strategy(registry: llmx.Registry, plugin: TestPlugin) -> None:
    config = {
        "providers": {
            "low": {"type": "echo", "priority": 5},
            "high": {"type": "echo", "priority": 1},
        },
        "aliases": {"smart": ["low/x", "high/y"]},
    }
    async with make_client(registry, config) as client:
        reply = await client.complete(model="smart", prompt="hi")
    assert (reply.provider, reply.model) == ("high", "y")


async def test_unknown_model_ref(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        with pytest.raises(llmx.ConfigError, match="use 'instance/model'"):
            await client.complete(model="gpt", prompt="x")
        with pytest.raises(llmx.ConfigError, match="unknown provider instance 'zz'"):
            await client.complete(model="zz/m", prompt="x")


async def test_provider_errors_propagate_typed(registry: llmx.Registry, plugin: TestPlugin) -> None:
    plugin.script.append(
        llmx.RateLimitError("slow down", provider="a", status=429, retry_after=2.0)
    )
    async with make_client(registry, {"retry": {"policy": "none"}}) as client:
        with pytest.raises(llmx.RateLimitError) as info:
            await client.complete(model="a/m", prompt="x")
    assert info.value.retryable
    assert info.value.retry_after == 2.0
    assert str(info.value) == "a (HTTP 429): slow down"


async def test_provider_bug_becomes_provider_error(
    registry: llmx.Registry, plugin: TestPlugin
) -> None:
    plugin.script.append(KeyError("oops"))
    async with make_client(registry) as client:
        with pytest.raises(llmx.ProviderError, match="provider bug") as info:
            await client.complete(model="a/m", prompt="x")
    assert isinstance(info.value.__cause__, KeyError)


async def test_capability_check_before_sending(registry: llmx.Registry, plugin: TestPlugin) -> None:
    image = llmx.Image(url="https://example.com/cat.png")
    async with make_client(registry) as client:
        with pytest.raises(llmx.UnsupportedFeatureError, match="image input") as info:
            await client.complete(model="a/text-only", messages=[llmx.Message.user("see", image)])
        assert info.value.feature == "vision"
        with pytest.raises(llmx.UnsupportedFeatureError, match="tools"):
            await client.complete(model="a/text-only", prompt="x", tools=[llmx.Tool("f")])
        ok = await client.complete(model="a/vision", messages=[llmx.Message.user("see", image)])
    assert ok.text == "see"
    assert len(plugin.requests) == 1  # the refused requests were never sent


async def test_cost_from_model_info(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        reply = await client.complete(model="a/text-only", prompt="abcd")
        assert client.model_info("a/text-only") is not None
    assert reply.cost == pytest.approx((4 * 1.0 + 4 * 2.0) / 1_000_000)


async def test_stream_native(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        stream = client.stream(model="s/m", prompt="one two three")
        deltas = [c.text async for c in stream if isinstance(c, llmx.TextDelta)]
    assert deltas == ["one", " two", " three"]
    assert stream.response is not None
    assert stream.response.text == "one two three"
    assert stream.response.finish_reason == "stop"
    assert stream.response.provider == "s"


async def test_stream_and_complete_give_same_response(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        whole = await client.complete(model="s/m", prompt="a b c")
        streamed = await client.stream(model="s/m", prompt="a b c").collect()
    for field in ("text", "tool_calls", "usage", "finish_reason", "model", "provider"):
        assert getattr(whole, field) == getattr(streamed, field)


async def test_stream_fallback_for_non_streaming_provider(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        chunks = [c async for c in client.stream(model="a/m", prompt="whole")]
    assert chunks[0] == llmx.TextDelta("whole")
    assert isinstance(chunks[-1], llmx.StreamEnd)


async def test_stream_text_and_early_close(registry: llmx.Registry, plugin: TestPlugin) -> None:
    async with (
        make_client(registry) as client,
        client.stream(model="s/m", prompt="w1 w2 w3 w4") as stream,
    ):
        async for piece in stream.text():
            assert piece == "w1"
            break
    assert plugin.chunks_sent == 1  # the provider's generator was closed, not drained


async def test_stream_text_reads_text_only_and_assembles_the_response(
    registry: llmx.Registry,
) -> None:
    async with make_client(registry) as client:
        stream = client.stream(model="s/m", prompt="w1 w2 w3")
        assert [piece async for piece in stream.text()] == ["w1", " w2", " w3"]
        assert stream.response is not None
        assert stream.response.text == "w1 w2 w3"
        assert stream.response.finish_reason == "stop"
        with pytest.raises(RuntimeError, match=r"read with text\(\)"):
            [c async for c in stream]
        # text() after the chunks began: the rest of the text, from the same stream
        stream = client.stream(model="s/m", prompt="w1 w2 w3")
        first = await stream.__anext__()
        assert first == llmx.TextDelta("w1")
        assert [piece async for piece in stream.text()] == [" w2", " w3"]
        # text() then collect(): the rest is consumed, the response is whole
        stream = client.stream(model="s/m", prompt="a b")
        text = stream.text()
        assert await text.__anext__() == "a"
        assert (await stream.collect()).text == "a b"


async def test_stream_error_is_typed(registry: llmx.Registry, plugin: TestPlugin) -> None:
    plugin.script.extend(llmx.ServerError("down", provider="s", status=503) for _ in range(3))
    async with make_client(registry) as client:
        with pytest.raises(llmx.ServerError) as info:
            await client.stream(model="s/m", prompt="x").collect()
    assert [a.error_type for a in info.value.attempts] == ["ServerError"] * 3


async def test_closed_client_refuses_reuse(registry: llmx.Registry) -> None:
    client = make_client(registry)
    async with client:
        await client.complete(model="a/m", prompt="x")
    with pytest.raises(llmx.ClientClosedError):
        await client.complete(model="a/m", prompt="x")
    with pytest.raises(llmx.ClientClosedError):
        client.stream(model="a/m", prompt="x")
    with pytest.raises(llmx.ClientClosedError):
        async with client:
            pass
    await client.aclose()  # idempotent


async def test_client_usable_without_context_manager(registry: llmx.Registry) -> None:
    client = make_client(registry)
    try:
        assert (await client.complete(model="a/m", prompt="x")).text == "x"
    finally:
        await client.aclose()


async def test_concurrent_requests(registry: llmx.Registry) -> None:
    async with make_client(registry) as client:
        replies = await asyncio.gather(
            *(client.complete(model="a/m", prompt=str(i)) for i in range(200))
        )
    assert [r.text for r in replies] == [str(i) for i in range(200)]


def test_sync_client(registry: llmx.Registry) -> None:
    base = {"providers": {"a": {"type": "echo"}, "s": {"type": "secho"}}}
    with llmx.SyncClient(base, registry=registry) as client:
        assert client.complete(model="a/m", prompt="sync").text == "sync"
        chunks = list(client.stream(model="s/m", prompt="x y"))
        assert [c.text for c in chunks if isinstance(c, llmx.TextDelta)] == ["x", " y"]
        for chunk in client.stream(model="s/m", prompt="p q r"):
            assert chunk == llmx.TextDelta("p")
            break
    with pytest.raises(llmx.ClientClosedError):
        client.complete(model="a/m", prompt="x")
    gc.collect()


async def test_sync_client_inside_running_loop(registry: llmx.Registry) -> None:
    # Notebooks run a loop already; the facade must not touch it.
    base = {"providers": {"a": {"type": "echo"}}}
    with llmx.SyncClient(base, registry=registry) as client:
        assert client.complete(model="a/m", prompt="nb").text == "nb"


class Recorder:
    """An in-process plugin recording every event."""

    llmx_contract = "1.0"

    def __init__(self) -> None:
        self.events: list[object] = []

    @hookimpl
    def llmx_request_start(self, event: RequestStart) -> None:
        self.events.append(event)

    @hookimpl
    def llmx_attempt_end(self, event: AttemptEnd) -> None:
        self.events.append(event)

    @hookimpl
    def llmx_request_end(self, event: RequestEnd) -> None:
        self.events.append(event)

    @hookimpl
    def llmx_request_error(self, event: RequestError) -> None:
        self.events.append(event)


async def test_event_hooks(registry: llmx.Registry, plugin: TestPlugin) -> None:
    assert not registry.events.any
    recorder = Recorder()
    registry.register(recorder, name="recorder")
    assert registry.events.any
    plugin.script.extend(
        [llmx.Response("ok", "m", "a", usage=llmx.Usage(1, 2)), llmx.ServerError("x", provider="a")]
    )
    async with make_client(registry, {"retry": {"policy": "none"}}) as client:
        await client.complete(model="a/m", prompt="x")
        with pytest.raises(llmx.ServerError):
            await client.complete(model="a/m", prompt="x")
        await client.stream(model="s/m", prompt="s t").collect()
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds == [
        "RequestStart", "AttemptEnd", "RequestEnd",
        "RequestStart", "AttemptEnd", "RequestError",
        "RequestStart", "AttemptEnd", "RequestEnd",
    ]  # fmt: skip
    first = recorder.events[:3]
    ids = {e.request_id for e in first}  # type: ignore[attr-defined]
    assert len(ids) == 1
    attempt = recorder.events[1]
    assert isinstance(attempt, AttemptEnd)
    assert (attempt.provider, attempt.model, attempt.attempt) == ("a", "m", 1)
    assert attempt.usage == llmx.Usage(1, 2)
    failed = recorder.events[4]
    assert isinstance(failed, AttemptEnd)
    assert isinstance(failed.error, llmx.ServerError)
    streamed = recorder.events[7]
    assert isinstance(streamed, AttemptEnd)
    assert streamed.ttft is not None

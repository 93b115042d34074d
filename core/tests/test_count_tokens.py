"""``client.count_tokens``: the provider's exact count, the estimate otherwise, and the
exact count remembered for the Request object (rate limits, context-window checks)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmx
from llmx._tokens import _KNOWN, estimate_input_tokens, input_tokens, known_input_tokens
from llmx.plugin import ProviderContext, Register, hookimpl


class CountingProvider:
    """Answers ``ok``; counts one token per word of the prompt (``counts`` records calls)."""

    def __init__(self, ctx: ProviderContext, plugin: CountingPlugin) -> None:
        self.ctx = ctx
        self.plugin = plugin

    async def complete(self, request: llmx.Request) -> llmx.Response:
        self.plugin.sent.append((self.ctx.instance, request))
        return llmx.Response("ok", request.model, self.ctx.instance, usage=llmx.Usage(3, 1))

    async def count_tokens(self, request: llmx.Request) -> Any:
        self.plugin.counts.append((self.ctx.instance, request.model))
        answer = self.plugin.answer
        if isinstance(answer, BaseException):
            raise answer
        if answer is not None:
            return answer
        return sum(len(m.text.split()) for m in request.messages)

    def model_info(self, model: str) -> llmx.ModelInfo | None:
        return self.plugin.models.get(model)


class PlainProvider(CountingProvider):
    count_tokens = None  # type: ignore[assignment]


class CountingPlugin:
    """Provider types ``counting`` (with count_tokens) and ``plain`` (without)."""

    def __init__(self, models: dict[str, llmx.ModelInfo] | None = None) -> None:
        self.counts: list[tuple[str, str]] = []
        self.sent: list[tuple[str, llmx.Request]] = []
        self.answer: Any = None
        self.models = models or {}

    @hookimpl
    def llmx_register_providers(self, register: Register) -> None:
        register("counting", lambda ctx: CountingProvider(ctx, self))
        register("plain", lambda ctx: _plain(ctx, self))


def _plain(ctx: ProviderContext, plugin: CountingPlugin) -> object:
    class Plain:
        async def complete(self, request: llmx.Request) -> llmx.Response:
            plugin.sent.append((ctx.instance, request))
            return llmx.Response("ok", request.model, ctx.instance, usage=llmx.Usage(3, 1))

    return Plain()


def client_with(plugin: CountingPlugin, config: dict[str, Any]) -> llmx.Client:
    registry = llmx.Registry(autoload=False)
    registry.register(plugin, name="counting-test")
    return llmx.Client(config, registry=registry)


PROMPT = "one two three four five six seven eight nine ten"


async def test_exact_count_from_the_provider() -> None:
    plugin = CountingPlugin()
    async with client_with(plugin, {"providers": {"a": {"type": "counting"}}}) as client:
        usage = await client.count_tokens(model="a/m", prompt=PROMPT, system="be brief")
    assert usage == llmx.Usage(12)
    assert not usage.estimated
    assert plugin.counts == [("a", "m")]
    assert plugin.sent == []  # counting sends no request


async def test_estimate_without_a_counting_provider() -> None:
    plugin = CountingPlugin()
    async with client_with(plugin, {"providers": {"p": {"type": "plain"}}}) as client:
        request = llmx.Request("p/m", PROMPT)
        usage = await client.count_tokens(request)
    assert usage.estimated
    assert usage.input_tokens == estimate_input_tokens(request)
    assert plugin.sent == []
    assert known_input_tokens(request, "p", "m") is None  # an estimate is not remembered


async def test_alias_counts_on_the_first_candidate_in_routing_order() -> None:
    plugin = CountingPlugin()
    config = {
        "providers": {"a": {"type": "counting"}, "b": {"type": "counting"}},
        "aliases": {"smart": {"candidates": ["b/big", "a/small"], "strategy": "priority"}},
    }
    async with client_with(plugin, config) as client:
        await client.count_tokens(model="smart", prompt=PROMPT)
    assert plugin.counts == [("b", "big")]


async def test_a_remembered_count_plans_the_context_window() -> None:
    """The estimate (~4 characters a token, erring high) says the prompt exceeds a's
    window, so a is skipped; the exact count says it fits, so the same Request object
    goes to a once counted."""
    window = llmx.ModelInfo("small", context_window=40)
    plugin = CountingPlugin({"small": window})
    config = {
        "providers": {"a": {"type": "counting"}, "b": {"type": "counting"}},
        "aliases": {"smart": {"candidates": ["a/small", "b/big"], "strategy": "priority"}},
    }
    request = llmx.Request("smart", "word " * 50)  # 50 words, 250 characters
    assert estimate_input_tokens(request) > 40
    async with client_with(plugin, config) as client:
        first = await client.complete(request)
        assert first.provider == "b"
        usage = await client.count_tokens(request)
        assert usage.input_tokens == 50
        assert not usage.estimated
        plugin.answer = 30  # the vendor's tokenizer: 30 tokens
        await client.count_tokens(request)
        assert await client.count_tokens(request) == llmx.Usage(30)
        second = await client.complete(request)
    assert second.provider == "a"
    # another Request with the same content was never counted: estimated again
    twin = llmx.Request("smart", "word " * 50)
    assert input_tokens(twin, "a", "small") == estimate_input_tokens(twin)


async def test_a_remembered_count_plans_the_rate_limits() -> None:
    """tpm 100: the estimate of this prompt plus its max_tokens (114) can never fit, so
    the request is refused before sending; counted (20 + 10), the same object is sent."""
    plugin = CountingPlugin()
    config = {
        "providers": {"a": {"type": "counting", "limits": {"tpm": 100}}},
        "limiter": {"backend": "local"},
    }
    request = llmx.Request("a/m", "word " * 80, max_tokens=10)
    async with client_with(plugin, config) as client:
        with pytest.raises(llmx.RateLimitError, match=r"~114 tokens\) can never fit"):
            await client.complete(request)
        assert plugin.sent == []
        plugin.answer = 20
        assert (await client.count_tokens(request)).input_tokens == 20
        limiter = client._pool.get("a").limiter
        assert limiter is not None
        assert [b.amount for b in limiter.buckets("m", request)] == [30]
        reply = await client.complete(request)
    assert reply.text == "ok"
    assert [(i, r.model) for i, r in plugin.sent] == [("a", "m")]


async def test_forgotten_when_the_request_is_collected() -> None:
    plugin = CountingPlugin()
    async with client_with(plugin, {"providers": {"a": {"type": "counting"}}}) as client:
        gc.collect()  # requests of earlier tests left in reference cycles
        before = len(_KNOWN)
        request = llmx.Request("a/m", PROMPT)
        await client.count_tokens(request)
        assert len(_KNOWN) == before + 1
        del request
        gc.collect()
        assert len(_KNOWN) == before


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (ValueError("tokenizer exploded"), "raised ValueError counting tokens: tokenizer exploded"),
        (-1, "counted -1 tokens"),
        ("12", "counted '12' tokens"),
        (True, "counted True tokens"),
    ],
)
async def test_a_broken_count_is_a_provider_error_naming_the_plugin(
    answer: Any, match: str
) -> None:
    plugin = CountingPlugin()
    plugin.answer = answer
    async with client_with(plugin, {"providers": {"a": {"type": "counting"}}}) as client:
        with pytest.raises(llmx.ProviderError, match=match) as info:
            await client.count_tokens(model="a/m", prompt="x")
    assert info.value.provider == "a"
    assert "counting-test" in str(info.value)


async def test_a_provider_error_is_raised_as_is() -> None:
    plugin = CountingPlugin()
    plugin.answer = llmx.RateLimitError("slow down", provider="a", retry_after=2.0)
    async with client_with(plugin, {"providers": {"a": {"type": "counting"}}}) as client:
        with pytest.raises(llmx.RateLimitError, match="slow down"):
            await client.count_tokens(model="a/m", prompt="x")


async def test_a_provider_that_cannot_count_this_one_gives_the_estimate() -> None:
    """``UnsupportedFeatureError`` from ``count_tokens`` (a gateway without the vendor's
    counting endpoint): the estimate, marked, and nothing remembered."""
    plugin = CountingPlugin()
    plugin.answer = llmx.UnsupportedFeatureError(
        "no counting here", provider="a", model="m", feature="count_tokens"
    )
    async with client_with(plugin, {"providers": {"a": {"type": "counting"}}}) as client:
        request = llmx.Request("a/m", PROMPT)
        usage = await client.count_tokens(request)
    assert usage.estimated
    assert usage.input_tokens == estimate_input_tokens(request)
    assert plugin.counts == [("a", "m")]
    assert known_input_tokens(request, "a", "m") is None


async def test_a_count_tokens_of_the_wrong_shape_is_refused_when_built() -> None:
    class WrongShape:
        @hookimpl
        def llmx_register_providers(self, register: Register) -> None:
            register("wrong", lambda ctx: _WrongCounter())

    registry = llmx.Registry(autoload=False)
    registry.register(WrongShape(), name="wrong-shape")
    async with llmx.Client({"providers": {"w": {"type": "wrong"}}}, registry=registry) as client:
        with pytest.raises(llmx.PluginError, match=r"wrong-shape.*count_tokens\(request\)"):
            await client.count_tokens(model="w/m", prompt="x")


class _WrongCounter:
    async def complete(self, request: llmx.Request) -> llmx.Response:
        raise AssertionError

    async def count_tokens(self) -> int:
        return 1


def test_sync_client_counts() -> None:
    plugin = CountingPlugin()
    registry = llmx.Registry(autoload=False)
    registry.register(plugin, name="counting-test")
    with llmx.SyncClient({"providers": {"a": {"type": "counting"}}}, registry=registry) as client:
        assert client.count_tokens(model="a/m", prompt="three small words") == llmx.Usage(3)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["m", "n"]), st.integers(0, 10**6)),
        max_size=6,
    ),
    asked=st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["m", "n"])),
)
def test_input_tokens_is_the_latest_count_for_that_instance_and_model(
    counts: list[tuple[str, str, int]], asked: tuple[str, str]
) -> None:
    from llmx._tokens import remember_input_tokens

    request = llmx.Request("a/m", "some words to count " * 3)
    bystander = llmx.Request("a/m", "some words to count " * 3)
    for instance, model, tokens in counts:
        remember_input_tokens(request, instance, model, tokens)
    latest = {(i, m): t for i, m, t in counts}
    expected = latest.get(asked, estimate_input_tokens(request))
    assert input_tokens(request, *asked) == expected
    assert input_tokens(bystander, *asked) == estimate_input_tokens(bystander)

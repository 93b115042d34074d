"""Embeddings through the pipeline (``Client.embed``) with in-process providers: the
request and response types, batching (split, bounded concurrency, reassembly in
order, a failed batch, retries that resend only the missing batches), fallback, the
refusals before sending, the cache, rate limits, the breaker, stats, cost and events.

Over real HTTP, against the vendors' fakes: the providers' own tests and the
conformance kit (``Feature.EMBEDDINGS``).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import struct
from array import array
from collections.abc import Mapping
from typing import Any

import importlib_metadata
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx._embed import (
    canonical_embedding_body,
    decode_entry,
    encode_entry,
    split,
)
from llmx.plugin import (
    AttemptEnd,
    EmbeddingLimits,
    EmbeddingRequest,
    ProviderContext,
    Register,
    RequestEnd,
    RequestStart,
    hookimpl,
)


def expected(text: str) -> array[float]:
    """The vector the test provider gives ``text``."""
    return array("f", [float(len(text)), float(sum(map(ord, text)) % 997)])


class VecProvider:
    """Embeds each text as [len, ord-sum % 997]; plays the plugin's script per call."""

    def __init__(self, ctx: ProviderContext, plugin: VecPlugin) -> None:
        self.ctx = ctx
        self.plugin = plugin
        self.embedding_limits = plugin.limits.get(ctx.instance, EmbeddingLimits(3))

    async def complete(self, request: llmx.Request) -> llmx.Response:
        return llmx.Response("chat", request.model, self.ctx.instance)

    async def embed(self, request: EmbeddingRequest) -> llmx.EmbeddingResponse:
        plugin = self.plugin
        plugin.calls.append((self.ctx.instance, request.model, request.input))
        plugin.in_flight += 1
        plugin.most_in_flight = max(plugin.most_in_flight, plugin.in_flight)
        try:
            await asyncio.sleep(plugin.delays.get(self.ctx.instance, plugin.delay))
            failure = plugin.failures.get((self.ctx.instance, request.input[0]))
            if failure:
                raise failure.pop(0)
        finally:
            plugin.in_flight -= 1
        vectors = tuple(expected(t) for t in request.input)
        if plugin.short_answer:
            vectors = vectors[:-1]
        usage = llmx.Usage(sum(len(t) for t in request.input), 0)
        return llmx.EmbeddingResponse(vectors, request.model, self.ctx.instance, usage)

    def model_info(self, model: str) -> llmx.ModelInfo | None:
        return self.plugin.models.get(model)


class ChatOnly:
    """A provider without embeddings."""

    def __init__(self, ctx: ProviderContext, plugin: VecPlugin) -> None:
        self.plugin = plugin

    async def complete(self, request: llmx.Request) -> llmx.Response:
        self.plugin.calls.append(("chat", request.model, ()))
        return llmx.Response("chat", request.model, "")


class VecPlugin:
    """Provider types ``vec`` (embeds) and ``chat`` (does not)."""

    llmx_contract = "1.0"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []
        self.failures: dict[tuple[str, str], list[BaseException]] = {}
        self.limits: dict[str, EmbeddingLimits] = {}
        self.models: dict[str, llmx.ModelInfo] = {}
        self.delay = 0.0
        self.delays: dict[str, float] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.short_answer = False

    def fail(self, instance: str, first_input: str, *errors: BaseException) -> None:
        """The calls to ``instance`` whose batch starts with ``first_input`` raise these."""
        self.failures[(instance, first_input)] = list(errors)

    @hookimpl
    def llmx_register_providers(self, register: Register) -> None:
        register("vec", lambda ctx: VecProvider(ctx, self))
        register("chat", lambda ctx: ChatOnly(ctx, self))


def client_for(plugin: Any, config: Mapping[str, Any]) -> llmx.Client:
    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(plugin, name="vec")
    return llmx.Client(dict(config), registry=registry)


NO_RETRY = {"attempts": 1}
TWO = {
    "providers": {
        "a": {"type": "vec", "retry": NO_RETRY},
        "b": {"type": "vec", "retry": NO_RETRY},
        "c": {"type": "chat"},
    },
    "aliases": {"emb": ["c/m", "a/m", "b/m"]},
}
TEXTS = [f"text {i} " + "x" * i for i in range(8)]


def unavailable(instance: str) -> llmx.ServerError:
    return llmx.ServerError("unavailable", provider=instance, status=503)


# -- the value types -----------------------------------------------------------------------


def test_request_takes_one_string_or_several_and_checks_them() -> None:
    assert EmbeddingRequest("a/m", "one").input == ("one",)
    assert EmbeddingRequest("a/m", ["x", "y"]).part(1, 2).input == ("y",)
    with pytest.raises(ValueError, match="at least one input"):
        EmbeddingRequest("a/m", [])
    with pytest.raises(TypeError, match=r"input\[1\] is a int"):
        EmbeddingRequest("a/m", ["x", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="dimensions"):
        EmbeddingRequest("a/m", "x", dimensions=0)
    with pytest.raises(ValueError, match="task"):
        EmbeddingRequest("a/m", "x", task="search")  # type: ignore[arg-type]


def test_response_vectors_are_float32_arrays() -> None:
    response = llmx.EmbeddingResponse((array("f", [1.0, 2.0]),), "m")
    assert response.dimensions == 2
    assert memoryview(response.vectors[0]).format == "f"
    assert list(response.vectors[0]) == [1.0, 2.0]


# -- batching --------------------------------------------------------------------------------

_limits = st.builds(
    EmbeddingLimits,
    max_inputs=st.integers(1, 8),
    max_tokens=st.none() | st.integers(1, 40),
)


@given(texts=st.lists(st.text(max_size=30), min_size=1, max_size=60), limits=_limits)
def test_split_covers_every_input_once_in_order_within_the_limits(
    texts: list[str], limits: EmbeddingLimits
) -> None:
    parts = split(tuple(texts), limits)
    assert parts[0][0] == 0
    assert parts[-1][1] == len(texts)
    for (_, stop), (start, _) in itertools.pairwise(parts):
        assert stop == start
    for start, stop in parts:
        assert 0 < stop - start <= limits.max_inputs
        if limits.max_tokens is not None and stop - start > 1:
            tokens = sum(
                -(-len(t.encode("utf-8", "surrogatepass")) // 3) for t in texts[start:stop]
            )
            assert tokens <= limits.max_tokens


@given(
    count=st.integers(1, 40),
    most=st.integers(1, 7),
    concurrency=st.integers(1, 5),
)
def test_any_number_of_inputs_and_any_limit_reassemble_in_order(
    count: int, most: int, concurrency: int
) -> None:
    plugin = VecPlugin()
    plugin.limits["a"] = EmbeddingLimits(most)
    texts = [f"input {i}" * (i % 3 + 1) for i in range(count)]

    async def main() -> llmx.EmbeddingResponse:
        async with client_for(plugin, TWO) as client:
            return await client.embed(model="a/m", input=texts, concurrency=concurrency)

    response = asyncio.run(main())
    assert list(response.vectors) == [expected(t) for t in texts]
    assert len(plugin.calls) == -(-count // most)
    assert response.usage.input_tokens == sum(len(t) for t in texts)
    assert plugin.most_in_flight <= concurrency


async def test_batches_run_at_most_concurrency_at_once() -> None:
    plugin = VecPlugin()
    plugin.limits["a"] = EmbeddingLimits(1)
    plugin.delay = 0.02
    async with client_for(plugin, TWO) as client:
        await client.embed(model="a/m", input=TEXTS, concurrency=3)
    assert len(plugin.calls) == len(TEXTS)
    assert plugin.most_in_flight == 3


async def test_a_failed_batch_fails_the_attempt_and_a_retry_resends_only_missing_batches() -> None:
    plugin = VecPlugin()
    plugin.fail("a", TEXTS[3], unavailable("a"))  # the second batch of three, once
    config = {"providers": {"a": {"type": "vec", "retry": {"attempts": 2, "wait_initial": 0.01}}}}
    async with client_for(plugin, config) as client:
        response = await client.embed(model="a/m", input=TEXTS)
        stats = client.stats().for_instance("a")[0]
    assert list(response.vectors) == [expected(t) for t in TEXTS]
    sent = [c[2] for c in plugin.calls]
    assert sent[:3] == [tuple(TEXTS[0:3]), tuple(TEXTS[3:6]), tuple(TEXTS[6:8])]
    assert sent[3:] == [tuple(TEXTS[3:6])], "the retry sends the failed batch only"
    assert [a.error_type for a in response.attempts] == ["ServerError", None]
    assert (stats.requests, stats.retries, stats.successes, stats.embeds) == (2, 1, 1, 1)
    assert stats.errors == {"ServerError": 1}
    # the batches that arrived before the failure are counted once, with the answer
    assert stats.input_tokens == sum(len(t) for t in TEXTS)


async def test_a_batch_failing_for_good_fails_the_call_with_its_typed_error() -> None:
    plugin = VecPlugin()
    plugin.delay = 0.01
    bad = llmx.BadRequestError("input 4 is too long", provider="a", status=400)
    plugin.fail("a", TEXTS[3], bad)
    async with client_for(plugin, TWO) as client:
        with pytest.raises(llmx.BadRequestError, match="too long") as info:
            await client.embed(model="a/m", input=TEXTS)
    assert len(info.value.attempts) == 1


async def test_an_answer_with_too_few_vectors_is_malformed() -> None:
    plugin = VecPlugin()
    plugin.short_answer = True
    async with client_for(plugin, TWO) as client:
        with pytest.raises(llmx.MalformedResponseError, match="2 vectors for the 3 inputs"):
            await client.embed(model="a/m", input=TEXTS[:5])
        with pytest.raises(llmx.MalformedResponseError, match="1 vectors for 2 inputs"):
            await client.embed(model="a/m", input=TEXTS[:2])  # one batch


# -- fallback and refusals -------------------------------------------------------------------


async def test_fallback_skips_a_provider_without_embeddings_and_a_failing_one() -> None:
    plugin = VecPlugin()
    plugin.fail("a", TEXTS[0], unavailable("a"))
    async with client_for(plugin, TWO) as client:
        response = await client.embed(model="emb", input=TEXTS)
    assert response.provider == "b"
    assert list(response.vectors) == [expected(t) for t in TEXTS]
    assert ("chat", "m", ()) not in plugin.calls, "the chat-only provider got nothing"
    to_b = [c[2] for c in plugin.calls if c[0] == "b"]
    assert sum(len(batch) for batch in to_b) == len(TEXTS), "b embedded every input itself"
    assert [(a.provider, a.error_type) for a in response.attempts] == [
        ("a", "ServerError"),
        ("b", None),
    ]


async def test_batches_that_arrived_for_a_candidate_that_then_failed_are_billed() -> None:
    plugin = VecPlugin()
    plugin.models["m"] = llmx.ModelInfo("m", input_price=1e6, output_price=0.0)  # $1/token
    plugin.delay = 0.01
    plugin.fail("a", TEXTS[6], unavailable("a"))  # the last of three batches fails on a
    async with client_for(plugin, TWO) as client:
        response = await client.embed(model="emb", input=TEXTS)
        (a,) = client.stats().for_instance("a")
        (b,) = client.stats().for_instance("b")
    assert response.provider == "b"
    arrived_on_a = sum(len(t) for t in TEXTS[:6])
    assert a.abandoned_cost == pytest.approx(arrived_on_a)
    assert (a.cost, b.cost) == (0.0, pytest.approx(sum(len(t) for t in TEXTS)))


async def test_a_context_window_is_compared_with_each_input_not_their_sum() -> None:
    plugin = VecPlugin()
    plugin.models["small"] = llmx.ModelInfo("small", context_window=5)  # tokens
    config = {**TWO, "aliases": {"emb": ["a/small", "b/m"]}}
    async with client_for(plugin, config) as client:
        fits = await client.embed(model="emb", input=TEXTS)  # 4 tokens at most each
        too_long = await client.embed(model="emb", input=[*TEXTS, "y" * 40])
    assert fits.provider == "a"
    assert too_long.provider == "b"


async def test_a_provider_without_embeddings_is_refused_before_sending() -> None:
    plugin = VecPlugin()
    async with client_for(plugin, TWO) as client:
        with pytest.raises(llmx.UnsupportedFeatureError) as info:
            await client.embed(model="c/m", input=["x"])
    assert (info.value.provider, info.value.model, info.value.feature) == ("c", "m", "embeddings")
    assert "type 'chat'" in str(info.value)
    assert plugin.calls == []


async def test_a_model_known_not_to_embed_is_refused_before_sending() -> None:
    plugin = VecPlugin()
    plugin.models["chatty"] = llmx.ModelInfo("chatty", capabilities=["streaming", "tools"])
    async with client_for(plugin, TWO) as client:
        with pytest.raises(llmx.UnsupportedFeatureError, match="does not make embeddings"):
            await client.embed(model="a/chatty", input=["x"])
    assert plugin.calls == []


async def test_dimensions_are_refused_before_sending_where_the_provider_cannot() -> None:
    plugin = VecPlugin()
    plugin.limits["a"] = EmbeddingLimits(3, dimensions=False)
    async with client_for(plugin, TWO) as client:
        with pytest.raises(llmx.UnsupportedFeatureError) as info:
            await client.embed(model="a/m", input=["x"], dimensions=8)
    assert info.value.feature == "dimensions"
    assert plugin.calls == []


def test_a_half_implemented_embedding_provider_is_refused_when_built() -> None:
    class Half:
        def __init__(self, ctx: ProviderContext) -> None:
            pass

        async def complete(self, request: llmx.Request) -> llmx.Response:
            raise NotImplementedError

        async def embed(self, request: EmbeddingRequest) -> llmx.EmbeddingResponse:
            raise NotImplementedError

    class HalfPlugin:
        llmx_contract = "1.0"

        @hookimpl
        def llmx_register_providers(self, register: Register) -> None:
            register("half", Half)

    async def main() -> None:
        async with client_for(HalfPlugin(), {"providers": {"h": {"type": "half"}}}) as client:
            await client.embed(model="h/m", input=["x"])

    with pytest.raises(llmx.PluginError, match="without embedding_limits"):
        asyncio.run(main())


async def test_a_hedged_alias_takes_the_first_vectors_and_cancels_the_other() -> None:
    plugin = VecPlugin()
    plugin.delays["a"] = 1.0
    config = {
        **TWO,
        "aliases": {"emb": {"candidates": ["a/m", "b/m"], "strategy": "hedged"}},
        "routing": {"strategy": "hedged", "base": "priority", "delay": 0.05, "budget": 1.0},
    }
    async with client_for(plugin, config) as client:
        response = await client.embed(model="emb", input=TEXTS)
        stats = client.stats()
    assert response.provider == "b"
    assert list(response.vectors) == [expected(t) for t in TEXTS]
    (a,) = stats.for_instance("a")
    assert a.abandoned_attempts == 1
    assert stats.instances["a"].in_flight == 0


async def test_the_deadline_bounds_every_batch() -> None:
    plugin = VecPlugin()
    plugin.delay = 1.0
    async with client_for(plugin, TWO) as client:
        with pytest.raises(llmx.DeadlineExceededError):
            await client.embed(model="a/m", input=TEXTS, timeout=0.1)
        (a,) = client.stats().for_instance("a")
    assert a.abandoned_attempts == 1
    assert plugin.in_flight == 0, "the batches in flight were cancelled"


# -- cache, limits, breaker, stats, cost, events -------------------------------------------


async def test_a_cached_embedding_is_returned_without_a_call() -> None:
    plugin = VecPlugin()
    plugin.models["m"] = llmx.ModelInfo("m", input_price=1.0, output_price=0.0)
    config = {**TWO, "cache": {"backend": "memory"}}
    async with client_for(plugin, config) as client:
        first = await client.embed(model="a/m", input=TEXTS)
        again = await client.embed(model="a/m", input=TEXTS)
        assert len(plugin.calls) == 3
        assert again.cached
        assert not first.cached
        assert list(again.vectors) == list(first.vectors)
        assert (again.provider, again.model, again.usage) == ("a", "m", first.usage)
        assert (again.cost, again.attempts) == (0.0, ())
        for changed in (
            {"input": list(reversed(TEXTS))},
            {"input": TEXTS, "dimensions": 2},
            {"input": TEXTS, "task": "query"},
            {"input": TEXTS, "extra": {"user_type": "x"}},
        ):
            before = len(plugin.calls)
            response = await client.embed(model="a/m", **changed)
            assert not response.cached, changed
            assert len(plugin.calls) > before
        await client.embed(model="a/m", input=TEXTS, cache="refresh")
        assert len(plugin.calls) == 3 * 6
        stats = client.stats()
    assert stats.cache is not None
    assert (stats.cache.hits, stats.cache.stores) == (1, 6)


def test_cache_entries_round_trip_and_keys_ignore_mapping_order() -> None:
    response = llmx.EmbeddingResponse(
        (array("f", [0.5, -1.25, 3e-8]), array("f", [])),
        "m",
        "a",
        llmx.Usage(7, 0, estimated=True),
    )
    back = decode_entry(encode_entry(response))
    assert (back.vectors, back.model, back.usage) == (response.vectors, "m", response.usage)
    with pytest.raises(ValueError, match="not an embeddings cache entry"):
        decode_entry(b"{}")
    with pytest.raises(ValueError, match="truncated"):
        decode_entry(encode_entry(response)[:-1])
    one = EmbeddingRequest("a/m", "x", extra={"p": 1, "q": 2.0, "user": "me"})
    two = EmbeddingRequest("a/m", "x", extra={"q": 2, "p": 1})
    assert canonical_embedding_body(one) == canonical_embedding_body(two)


@given(
    st.lists(
        st.lists(
            st.floats(width=32, allow_nan=False).map(
                lambda f: struct.unpack("f", struct.pack("f", f))[0]
            ),
            max_size=12,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_vectors_survive_the_cache_codec(vectors: list[list[float]]) -> None:
    response = llmx.EmbeddingResponse(tuple(array("f", v) for v in vectors), "m")
    assert decode_entry(encode_entry(response)).vectors == response.vectors


async def test_rate_limits_count_the_tokens_of_the_inputs() -> None:
    plugin = VecPlugin()
    config = {"providers": {"a": {"type": "vec", "limits": {"tpm": 10}}}}
    async with client_for(plugin, config) as client:
        await client.embed(model="a/m", input=["x" * 36])  # ~9 tokens: fits
        with pytest.raises(llmx.RateLimitError, match=r"\(~15 tokens\)"):
            await client.embed(model="a/m", input=["x" * 60])  # ~15 tokens: never fits
    assert len(plugin.calls) == 1


async def test_repeated_failures_open_the_breaker() -> None:
    plugin = VecPlugin()
    plugin.fail("a", "x", *(unavailable("a") for _ in range(5)))
    config = {
        "providers": {"a": {"type": "vec", "retry": NO_RETRY}},
        "breaker": {"failure_threshold": 2},
    }
    async with client_for(plugin, config) as client:
        for _ in range(2):
            with pytest.raises(llmx.ServerError):
                await client.embed(model="a/m", input=["x"])
        with pytest.raises(llmx.CircuitOpenError):
            await client.embed(model="a/m", input=["x"])
    assert len(plugin.calls) == 2


async def test_stats_count_embeds_and_cost_uses_the_input_price() -> None:
    plugin = VecPlugin()
    plugin.models["m"] = llmx.ModelInfo(
        "m", capabilities=["embeddings"], input_price=0.02, output_price=0.0
    )
    async with client_for(plugin, TWO) as client:
        response = await client.embed(model="a/m", input=TEXTS)
        await client.complete(model="a/m", prompt="hi")
        (stats,) = client.stats().for_instance("a")
    tokens = sum(len(t) for t in TEXTS)
    assert response.cost == pytest.approx(tokens * 0.02 / 1e6)
    assert (stats.requests, stats.successes, stats.embeds) == (2, 2, 1)
    assert stats.input_tokens == tokens
    assert stats.cost == pytest.approx(response.cost)
    assert response.latency > 0


class Recorder:
    """Records the events of every request."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    @hookimpl
    def llmx_request_start(self, event: RequestStart) -> None:
        self.events.append(event)

    @hookimpl
    def llmx_attempt_end(self, event: AttemptEnd) -> None:
        self.events.append(event)

    @hookimpl
    def llmx_request_end(self, event: RequestEnd) -> None:
        self.events.append(event)


async def test_events_tell_embedding_requests_apart() -> None:
    plugin = VecPlugin()
    recorder = Recorder()
    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(plugin, name="vec")
    registry.register(recorder, name="recorder")
    async with llmx.Client(TWO, registry=registry) as client:
        response = await client.embed(model="a/m", input=TEXTS[:2])
    start, attempt, end = recorder.events
    assert isinstance(start.request, EmbeddingRequest)
    assert start.request.input == tuple(TEXTS[:2])
    assert attempt.usage == response.usage
    assert attempt.error is None
    assert end.response is response
    assert start.request_id == attempt.request_id == end.request_id


def test_sync_client_embeds() -> None:
    plugin = VecPlugin()
    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(plugin, name="vec")
    with llmx.SyncClient(TWO, registry=registry) as client:
        response = client.embed(model="a/m", input="hello")
    assert list(response.vectors) == [expected("hello")]


async def test_keyword_arguments_and_a_request_do_not_mix() -> None:
    async with client_for(VecPlugin(), TWO) as client:
        with pytest.raises(TypeError, match="either"):
            await client.embed(EmbeddingRequest("a/m", "x"), model="a/m")
        with pytest.raises(TypeError, match="input"):
            await client.embed(model="a/m")
        with pytest.raises(ValueError, match="concurrency"):
            await client.embed(model="a/m", input="x", concurrency=0)
        response = await client.embed(EmbeddingRequest("a/m", ["x", "yy"]))
    assert math.isclose(response.vectors[1][0], 2.0)

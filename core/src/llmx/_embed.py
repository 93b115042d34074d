"""Embeddings through the request pipeline: ``Client.embed``.

An embedding request takes the same path as a chat request (:mod:`llmx._engine`): the
same :class:`~llmx._engine.run.Run` (id, events, deadline), route (aliases, strategy),
response cache, :class:`~llmx._engine.fallback.Fallback` (plan, retries, fallback,
hedging) and :class:`~llmx._engine.call.Call` per attempt (breaker, rate limits with the
tokens estimated from the inputs, stats, cost). What differs is the one attempt,
:class:`Embedder`:

* the provider must be an :class:`~llmx.plugin.EmbeddingProvider` (else
  :class:`~llmx.UnsupportedFeatureError` before anything is sent, and the next
  candidate is tried); a model whose facts list capabilities must list ``embeddings``
  (checked with the other capabilities);
* **batching**: a request with more inputs (or more estimated tokens) than the
  provider's :class:`~llmx.plugin.EmbeddingLimits` allow is split into consecutive
  batches (:func:`split`), sent at most ``concurrency`` at a time, and put back together
  in input order, usage summed. One attempt holds one rate-limit permit and one breaker
  admission for all its batches.
* **a failed batch** fails the attempt with that batch's typed error (the others still
  under way are cancelled). The batches that did arrive are kept for the same candidate:
  a retry of the attempt sends only the batches still missing, so a transient failure
  of one batch never pays for the others twice. A fallback to another candidate starts
  over: vectors of two models are never mixed. The batches a candidate answered but
  that went unused are counted in its ``abandoned_cost`` (the provider billed them).

The cache keys an embedding request on the candidate (instance and model), the inputs
in order, ``dimensions``, ``task`` and ``extra``; a hit returns the stored vectors
without a call. Entries are a small JSON header and the vectors as little-endian
float32 (:func:`encode_entry`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from array import array
from typing import TYPE_CHECKING, Any, cast

from llmx._cachekey import IGNORED_EXTRA, _normalise
from llmx._embedding import EmbeddingLimits, EmbeddingRequest, EmbeddingResponse
from llmx._engine.pipeline import _deadline_watchdog
from llmx._engine.run import Run
from llmx._errors import ConfigError, MalformedResponseError, UnsupportedFeatureError
from llmx._settings import CachePolicy
from llmx._types import Usage

if TYPE_CHECKING:
    from llmx._cache import CacheLayer, CacheSlot
    from llmx._engine.call import Call
    from llmx._engine.pipeline import Pipeline
    from llmx._engine.resolve import Route
    from llmx._stats import StatsRecorder
    from llmx._types import ModelInfo, Request, Response

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Embedder",
    "canonical_embedding_body",
    "decode_entry",
    "embed",
    "encode_entry",
    "split",
]

DEFAULT_CONCURRENCY = 4
"""Batches of one split request in flight at once, unless ``Client.embed`` says otherwise."""

_BYTES_PER_TOKEN = 3  # conservative: English runs ~4.5 UTF-8 bytes a token, CJK ~3


def split(inputs: tuple[str, ...], limits: EmbeddingLimits) -> list[tuple[int, int]]:
    """The batches of ``inputs`` within ``limits``: consecutive ``(start, stop)`` ranges
    that cover every input once, in order, each at most ``limits.max_inputs`` long and,
    with ``limits.max_tokens``, at most that many estimated tokens (an input larger than
    that alone goes in a batch of its own, for the API to judge)."""
    most, budget = limits.max_inputs, limits.max_tokens
    if budget is None:
        return [(start, min(start + most, len(inputs))) for start in range(0, len(inputs), most)]
    parts: list[tuple[int, int]] = []
    start = tokens = 0
    for index, text in enumerate(inputs):
        cost = -(-len(text.encode("utf-8", "surrogatepass")) // _BYTES_PER_TOKEN)
        if index > start and (index - start >= most or tokens + cost > budget):
            parts.append((start, index))
            start, tokens = index, 0
        tokens += cost
    parts.append((start, len(inputs)))
    return parts


def _joined(parts: list[EmbeddingResponse], count: int) -> EmbeddingResponse:
    vectors = tuple(v for part in parts for v in part.vectors)
    if len(vectors) != count:
        msg = f"the provider answered {len(vectors)} vectors for {count} inputs"
        raise MalformedResponseError(msg, provider=parts[0].provider, model=parts[0].model)
    usage = parts[0].usage
    for part in parts[1:]:
        usage = usage + part.usage
    return EmbeddingResponse(vectors, parts[0].model, parts[0].provider, usage)


class Embedder:
    """The ``once`` of an embedding request: one attempt, split into batches as the
    provider needs (see the module docstring). Holds the batches that arrived, per
    candidate, across the request's attempts."""

    __slots__ = ("_done", "_infos", "concurrency")

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.concurrency = concurrency
        self._done: dict[tuple[str, str], dict[int, EmbeddingResponse]] = {}
        self._infos: dict[tuple[str, str], ModelInfo | None] = {}

    def settle(self, stats: StatsRecorder, used: EmbeddingResponse | None) -> None:
        """Count the batches that arrived but went unused (their candidate failed for
        good, or the request did) as ``abandoned_cost``: the provider billed them.
        ``used``: the answer the caller got (its batches are in its own cost)."""
        winner = None
        if used is not None and used.attempts:
            last = used.attempts[-1]
            winner = (last.provider, last.model)
        for candidate, parts in self._done.items():
            if candidate == winner or not parts:
                continue
            info = self._infos.get(candidate)
            usage = Usage(sum(p.usage.input_tokens for p in parts.values()), 0)
            cost = info.cost(usage) if info is not None else None
            if cost:
                stats.counters(*candidate).abandoned_cost += cost

    async def __call__(self, call: Call, sent: Request) -> EmbeddingResponse:
        request = cast("EmbeddingRequest", sent)  # the Run carries an EmbeddingRequest
        inst = call.inst
        provider: Any = inst.provider
        if not inst.can_embed:
            msg = (
                f"provider instance {inst.name!r} (type {inst.config.type!r}) does not make "
                "embeddings; choose an instance whose provider does (openai, azure, gemini, "
                "llamacpp)"
            )
            raise UnsupportedFeatureError(
                msg, provider=inst.name, model=call.model, feature="embeddings"
            )
        limits: EmbeddingLimits = provider.embedding_limits
        if request.dimensions is not None and not limits.dimensions:
            msg = (
                f"{inst.name}/{call.model} cannot shorten embeddings (dimensions="
                f"{request.dimensions}); leave dimensions unset for this provider"
            )
            raise UnsupportedFeatureError(
                msg, provider=inst.name, model=call.model, feature="dimensions"
            )
        self._infos[(inst.name, call.model)] = call.info
        await call.admit()
        try:
            dog = _deadline_watchdog(call.run, inst, call.model)
            if dog is None:
                response = await self._send(provider, request, limits, (inst.name, call.model))
            else:
                with dog:
                    response = await self._send(provider, request, limits, (inst.name, call.model))
        except BaseException as err:
            error = call.failed(err)
            if error is err:
                raise
            raise error from err
        return call.embedded(response)

    async def _send(
        self,
        provider: Any,
        request: EmbeddingRequest,
        limits: EmbeddingLimits,
        candidate: tuple[str, str],
    ) -> EmbeddingResponse:
        parts = split(request.input, limits)
        if len(parts) == 1:
            whole: EmbeddingResponse = await provider.embed(request)
            if len(whole.vectors) != len(request.input):
                msg = (
                    f"the provider answered {len(whole.vectors)} vectors for "
                    f"{len(request.input)} inputs"
                )
                raise MalformedResponseError(msg, provider=candidate[0], model=candidate[1])
            return whole
        done = self._done.setdefault(candidate, {})
        gate = asyncio.Semaphore(self.concurrency)

        async def one(index: int, start: int, stop: int) -> None:
            async with gate:
                part = await provider.embed(request.part(start, stop))
                if len(part.vectors) != stop - start:
                    msg = (
                        f"the provider answered {len(part.vectors)} vectors for the "
                        f"{stop - start} inputs of batch {index + 1}/{len(parts)}"
                    )
                    raise MalformedResponseError(msg, provider=candidate[0], model=candidate[1])
                done[index] = part

        tasks = [
            asyncio.ensure_future(one(i, start, stop))
            for i, (start, stop) in enumerate(parts)
            if i not in done
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return _joined([done[i] for i in range(len(parts))], len(request.input))


# -- the cache ---------------------------------------------------------------------------------


def canonical_embedding_body(request: EmbeddingRequest) -> str:
    """The canonical JSON of what decides an embedding request's vectors (the model is
    added by the key): inputs in order, ``dimensions``, ``task``, ``extra`` (without
    the fields that never change an answer). Distinct from every chat request's body."""
    extra = {k: v for k, v in request.extra.items() if k not in IGNORED_EXTRA}
    document = {
        "kind": "embeddings",
        "input": list(request.input),
        "dimensions": request.dimensions,
        "task": request.task,
        "extra": _normalise(extra),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


_MAGIC = b"llmx-embeddings-v1\n"
_SWAP = sys.byteorder != "little"


def encode_entry(response: EmbeddingResponse) -> bytes:
    """A cache entry: a JSON header line (model, usage, each vector's length), then the
    vectors as little-endian float32."""
    usage = response.usage
    header = {
        "model": response.model,
        "usage": [usage.input_tokens, usage.output_tokens, usage.estimated],
        "lengths": [len(v) for v in response.vectors],
    }
    data = array("f")
    for vector in response.vectors:
        data.extend(vector)
    if _SWAP:
        data.byteswap()
    return _MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + data.tobytes()


def decode_entry(value: bytes) -> EmbeddingResponse:
    """The response stored by :func:`encode_entry` (ValueError: not such an entry)."""
    if not value.startswith(_MAGIC):
        msg = "not an embeddings cache entry"
        raise ValueError(msg)
    head, sep, body = value[len(_MAGIC) :].partition(b"\n")
    try:
        header = json.loads(head)
        model = header["model"]
        input_tokens, output_tokens, estimated = header["usage"]
        lengths = header["lengths"]
    except (ValueError, KeyError, TypeError) as err:
        msg = f"unreadable embeddings cache entry: {err}"
        raise ValueError(msg) from err
    data = array("f")
    if not sep or len(body) != 4 * sum(lengths):
        msg = "truncated embeddings cache entry"
        raise ValueError(msg)
    data.frombytes(body)
    if _SWAP:
        data.byteswap()
    vectors = []
    offset = 0
    for length in lengths:
        vectors.append(data[offset : offset + length])
        offset += length
    usage = Usage(input_tokens, output_tokens, estimated=bool(estimated))
    return EmbeddingResponse(tuple(vectors), model, "", usage)


def _cache_slots(
    pipeline: Pipeline, route: Route, request: EmbeddingRequest, cache: CachePolicy | str | None
) -> tuple[CacheLayer | None, list[CacheSlot] | None]:
    override = CachePolicy.of(cache)
    layer = pipeline.cache
    if layer is None:
        if override is not None and override.mode not in (None, "off"):
            msg = (
                f"cache={cache!r} was given but no response cache is configured; add a "
                '[cache] section (e.g. backend = "memory") to llmx.toml'
            )
            raise ConfigError(msg)
        return None, None
    body = canonical_embedding_body(request)
    return layer, layer.plan_body(request.model, body, route.candidates, override)


async def _lookup(layer: CacheLayer, slots: list[CacheSlot]) -> EmbeddingResponse | None:
    started = time.perf_counter()
    found = await layer.lookup_value(slots)
    if found is None:
        return None
    slot, value = found
    try:
        stored = decode_entry(value)
    except ValueError as err:
        layer.unreadable(err)
        return None
    return EmbeddingResponse(
        stored.vectors,
        stored.model,
        slot.candidate.instance,
        stored.usage,
        time.perf_counter() - started,
        0.0,
        cached=True,
    )


# -- the request ----------------------------------------------------------------------------


async def embed(
    pipeline: Pipeline,
    request: EmbeddingRequest,
    *,
    timeout: float | None = None,
    cache: CachePolicy | str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> EmbeddingResponse:
    """Run one embedding request through ``pipeline`` (see the module docstring)."""
    # The Run and the engine's steps are typed for chat requests; the ones that read the
    # request (token estimates, the capability check) tell an EmbeddingRequest apart.
    run = Run(pipeline.events, cast("Request", request), False)
    try:
        route = pipeline.start(run, timeout)
        layer = slots = None
        if pipeline.cache is not None or cache is not None:
            layer, slots = _cache_slots(pipeline, route, request, cache)
        response = None
        if layer is not None and slots is not None:
            response = await _lookup(layer, slots)
        if response is None:
            embedder = Embedder(concurrency)
            try:
                response = await pipeline.fallback.run(route, run, embedder)
            finally:
                embedder.settle(pipeline.stats, response)
            if layer is not None and slots is not None:
                last = response.attempts[-1]  # the candidate that answered
                await layer.store_value(slots, last.provider, last.model, encode_entry(response))
    except BaseException as err:
        run.fail(err)
        raise
    run.end(cast("Response", response))
    return response

"""The response cache: policies, the in-memory backend, and the pipeline's cache stage.

A backend (:class:`~llmx.plugin.Cache`) stores opaque bytes under keys; everything else is
the core's: which requests are cached and how (:class:`CachePolicy`, layered from
``[cache]``, the provider instance, the alias and the call), the key
(:mod:`llmx._cachekey`), the serialisation of responses and streams, the statistics,
and turning any backend failure into a miss with a logged warning.

A backend outside the process (``llmx-redis``; any backend that does not declare
``shared = False``) is called through a :class:`~llmx._state.StoreGuard`: each lookup has
a deadline (``[cache] store_timeout``, 50 ms by default) and a store that keeps failing
or answering late is left alone (every lookup a miss, every write skipped) until a
probe finds it answering again. Writes to such a backend never delay the answer: they
run in the background, at most :data:`MAX_PENDING_WRITES` at once, and any beyond are
dropped and counted.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, get_args

import attrs

from llmx._cachekey import canonical_body, key_for
from llmx._components import ScopedCache
from llmx._errors import ConfigError
from llmx._settings import CachePolicy
from llmx._types import (
    FinishReason,
    Response,
    StreamChunk,
    StreamEnd,
    TextDelta,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from llmx._components import Cache, Candidate
    from llmx._config import Config
    from llmx._registry import Registry
    from llmx._settings import StoreSettings
    from llmx._state import StoreGuard
    from llmx._types import Request

log = logging.getLogger("llmx.cache")

DEFAULT_TTL = 86_400.0
"""Seconds an entry lives when no policy sets ``ttl`` (one day)."""

MAX_PENDING_WRITES = 256
"""Background writes to a shared cache in flight at once; an answer arriving while this
many are pending is not stored (counted in ``CacheStats.dropped_writes``)."""


@attrs.frozen
class CacheStats:
    """Response-cache counts of one client (see :meth:`llmx.Client.stats`).

    ``hits`` and ``misses`` count lookups; ``stores`` answers written; ``bypassed``
    requests the policy kept away from the cache (mode ``off``, or a nonzero
    temperature); ``errors`` backend failures (timeouts included), each treated as a
    miss. With a shared backend: ``degraded_lookups`` and ``skipped_writes`` count
    lookups answered as misses and writes not made while the backend was degraded,
    ``dropped_writes`` writes dropped because :data:`MAX_PENDING_WRITES` were pending.
    """

    hits: int = 0
    misses: int = 0
    stores: int = 0
    bypassed: int = 0
    errors: int = 0
    degraded_lookups: int = 0
    skipped_writes: int = 0
    dropped_writes: int = 0

    @property
    def hit_rate(self) -> float | None:
        """Hits per lookup (None before any lookup)."""
        total = self.hits + self.misses
        return self.hits / total if total else None


# -- the in-memory backend ---------------------------------------------------------------


@attrs.frozen
class MemoryCacheSettings:
    """``[cache] backend = "memory"``: least recently used entries go first once there
    are more than ``max_entries`` or their values take more than ``max_bytes``."""

    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024

    def __attrs_post_init__(self) -> None:
        if self.max_entries < 1 or self.max_bytes < 1:
            msg = "max_entries and max_bytes must be at least 1"
            raise ValueError(msg)


class MemoryCache:
    """An LRU cache in this process, bounded by entries and bytes, with TTLs."""

    shared = False
    """In the process: called directly, with no deadline and no background writes."""

    def __init__(
        self, settings: MemoryCacheSettings | None = None, *, clock: Any = time.monotonic
    ) -> None:
        self.settings = settings or MemoryCacheSettings()
        self._entries: collections.OrderedDict[str, tuple[bytes, float]] = collections.OrderedDict()
        self._bytes = 0
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes held by values."""
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        """The value under ``key`` (refreshing its recency), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= self._clock():
            del self._entries[key]
            self._bytes -= len(value)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value``; evict the least recently used entries past the bounds."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0])
        if len(value) > self.settings.max_bytes:
            return
        expires = math.inf if ttl is None else self._clock() + ttl
        self._entries[key] = (value, expires)
        self._bytes += len(value)
        entries = self._entries
        while len(entries) > self.settings.max_entries or self._bytes > self.settings.max_bytes:
            _, (evicted, _) = entries.popitem(last=False)
            self._bytes -= len(evicted)


# -- serialisation -------------------------------------------------------------------------

_FORMAT = 1
_COMPRESS_ABOVE = 1024
_ZLIB = b"Z"


def _answer_only(
    response: Response, *, latency: float = 0.0, cost: float | None = None, cached: bool = False
) -> Response:
    """The answer alone (no attempts, no raw payload), with these pipeline facts."""
    return Response(
        response.text,
        response.model,
        response.provider,
        response.tool_calls,
        response.finish_reason,
        response.usage,
        latency,
        cost,
        response.id,
        cached=cached,
        reasoning=response.reasoning,
        choices=response.choices,
    )


def encode_entry(response: Response, chunks: Sequence[StreamChunk] | None = None) -> bytes:
    """A response (and the chunks it streamed as) as compact bytes: JSON, zlib-compressed
    past 1 KiB. Nothing but the answer: no request, no credentials, no raw payload."""
    from llmx._convert import to_json
    from llmx._types import StreamChunk as _Chunk

    bare = _answer_only(response)
    data = to_json(bare)
    for name in ("attempts", "latency", "cost", "raw", "cached"):
        data.pop(name, None)
    if not data.get("choices"):
        data.pop("choices", None)  # entries of plain answers keep their shape
    entry: dict[str, Any] = {"f": _FORMAT, "r": data}
    if chunks is not None:
        entry["c"] = [to_json(c, _Chunk) for c in chunks]
    raw = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(raw) > _COMPRESS_ABOVE:
        return _ZLIB + zlib.compress(raw, 6)
    return raw


def decode_entry(value: bytes) -> tuple[Response, list[StreamChunk] | None]:
    """The response (and chunks, if it was stored from a stream) in ``value``.

    Raises ``ValueError`` for anything that is not an entry of this format.
    """
    try:
        raw = zlib.decompress(value[1:]) if value[:1] == _ZLIB else value
        entry = json.loads(raw)
    except Exception as err:
        msg = f"corrupt cache entry ({type(err).__name__})"
        raise ValueError(msg) from err
    if not isinstance(entry, dict) or entry.get("f") != _FORMAT:
        msg = "not a cache entry of this format"
        raise ValueError(msg)
    # Entries as encode_entry writes them are built directly (bench: cache hits, memory
    # backend: the decode went from ~9 µs to ~2 µs, so no decoded-entry memo is needed);
    # anything else goes through cattrs, which also gives the precise errors.
    try:
        response = _direct_response(entry["r"])
        if response is None:
            response = _structure(entry["r"], Response)
        chunks: list[StreamChunk] | None = None
        if "c" in entry:
            chunks = [_direct_chunk(c) or _structure(c, StreamChunk) for c in entry["c"]]
    except Exception as err:
        msg = f"corrupt cache entry ({type(err).__name__})"
        raise ValueError(msg) from err
    return response, chunks


def _structure(data: Any, cls: Any) -> Any:
    from llmx._convert import from_json

    return from_json(data, cls)


_RESPONSE_KEYS = frozenset(
    {"text", "model", "provider", "tool_calls", "finish_reason", "usage", "id", "reasoning"}
)
_FINISH_REASONS = frozenset(get_args(FinishReason))
_TOOL_CALL_KEYS = frozenset({"id", "name", "arguments"})


def _direct_usage(data: Any) -> Usage | None:
    """``Usage`` from a dict of exactly its fields (what encode_entry writes): six ints
    and the ``estimated`` flag (entries written before ``cache_write_1h_tokens`` have
    five)."""
    if type(data) is not dict or len(data) != 6 + ("cache_write_1h_tokens" in data):
        return None
    try:
        counts = (
            data["input_tokens"],
            data["output_tokens"],
            data["cache_read_tokens"],
            data["cache_write_tokens"],
            data["reasoning_tokens"],
            data.get("cache_write_1h_tokens", 0),
        )
        estimated = data["estimated"]
    except KeyError:
        return None
    for count in counts:
        if type(count) is not int:
            return None
    if type(estimated) is not bool:
        return None
    return Usage(*counts, estimated=estimated)


def _direct_response(data: Any) -> Response | None:
    """The ``Response`` of an entry written by :func:`encode_entry` without cattrs, or
    None for any other shape (then cattrs structures it, or says what is wrong)."""
    if type(data) is not dict or data.keys() != _RESPONSE_KEYS:
        return None
    text, model, provider = data["text"], data["model"], data["provider"]
    reason, id_ = data["finish_reason"], data["id"]
    if type(text) is not str or type(model) is not str or type(provider) is not str:
        return None
    if (reason is not None and reason not in _FINISH_REASONS) or (
        id_ is not None and type(id_) is not str
    ):
        return None
    usage = _direct_usage(data["usage"])
    calls = data["tool_calls"]
    if usage is None or type(calls) is not list or data["reasoning"] != []:
        return None  # reasoning parts: through cattrs
    tool_calls = []
    for call in calls:
        if type(call) is not dict or call.keys() != _TOOL_CALL_KEYS:
            return None
        cid, name, arguments = call["id"], call["name"], call["arguments"]
        if type(cid) is not str or type(name) is not str or type(arguments) is not str:
            return None
        tool_calls.append(ToolCall(cid, name, arguments))
    return Response(text, model, provider, tuple(tool_calls), reason, usage, id=id_)


def _direct_chunk(data: Any) -> StreamChunk | None:
    """A text piece or the end of a stored stream without cattrs (None: other shapes)."""
    if type(data) is not dict:
        return None
    kind = data.get("type")
    if kind == "text_delta":
        text = data.get("text")
        if len(data) == 2 and type(text) is str:
            return TextDelta(text)
    elif kind == "end" and len(data) == 5:
        reason, model, id_ = data.get("finish_reason"), data.get("model"), data.get("id")
        raw_usage = data.get("usage", False)
        usage = None if raw_usage is None else _direct_usage(raw_usage)
        if (
            (reason is None or reason in _FINISH_REASONS)
            and (model is None or type(model) is str)
            and (id_ is None or type(id_) is str)
            and (usage is not None or raw_usage is None)
        ):
            return StreamEnd(reason, usage, model, id_)
    return None


# -- the pipeline's cache stage ----------------------------------------------------------


@attrs.frozen
class CacheSlot:
    """One candidate's place in the cache for one request."""

    candidate: Candidate
    key: str
    policy: CachePolicy

    @property
    def readable(self) -> bool:
        """Whether a hit here may answer the request."""
        return self.policy.mode in ("read_write", "read_only")

    @property
    def writable(self) -> bool:
        """Whether the answer is stored here."""
        return self.policy.mode in ("read_write", "refresh")


class CacheLayer:
    """The cache stage of one client's pipeline: policies, keys, lookups, stores.

    Never raises for a backend failure: it is logged (at most one warning per
    ``warn_every`` seconds) and counted, and the request goes on as a miss.
    """

    def __init__(
        self,
        backend: Cache,
        *,
        name: str,
        base: CachePolicy,
        instances: Mapping[str, CachePolicy],
        aliases: Mapping[str, CachePolicy],
        namespace: str = "",
        warn_every: float = 30.0,
        store: StoreSettings | None = None,
    ) -> None:
        from llmx._state import StoreGuard

        self.backend = backend
        self.name = name
        self._base = base
        self._instances = dict(instances)
        self._aliases = dict(aliases)
        self._namespace = namespace
        self._policies: dict[tuple[str, str], CachePolicy] = {}
        self.hits = self.misses = self.stores = self.bypassed = self.errors = 0
        self._warn_every = warn_every
        self._warned_at = -math.inf
        self._suppressed = 0
        self.guard: StoreGuard | None = None
        if not (isinstance(backend, ScopedCache) and backend.shared is False):
            self.guard = StoreGuard("cache", name, store, probe=self._probe)
        self._writes: set[asyncio.Task[None]] = set()
        self._writing: dict[str, asyncio.Task[None]] = {}  # key -> its write under way
        self.degraded_lookups = self.skipped_writes = self.dropped_writes = 0

    @classmethod
    def build(cls, config: Config, registry: Registry) -> CacheLayer | None:
        """The cache stage the config asks for, or None when nothing is cached."""
        from llmx._config import structure_settings
        from llmx._errors import PluginError

        section = config.cache
        instances = {name: p.cache for name, p in config.providers.items() if p.cache is not None}
        aliases = {name: a.cache for name, a in config.aliases.items() if a.cache is not None}
        configured = section.configured
        if not (configured or instances or aliases):
            return None
        base = section.policy or CachePolicy()
        namespace = section.namespace or ""
        defaults = CachePolicy(
            mode="read_write" if configured else "off",
            ttl=DEFAULT_TTL,
            cache_nonzero_temperature=False,
        )
        name = section.name or "memory"
        try:
            reg = registry.get("cache", name)
        except PluginError as err:
            msg = f"{err} @ $.cache.backend"
            raise ConfigError(msg) from err
        settings = structure_settings(reg.settings, section.options, "$.cache")
        backend = reg.build(settings)
        return cls(
            backend,
            name=name,
            base=base.over(defaults),
            instances=instances,
            aliases=aliases,
            namespace=namespace,
            store=section.store,
        )

    # -- policies and keys ----------------------------------------------------------------

    def _policy(self, model_ref: str, instance: str) -> CachePolicy:
        key = (model_ref, instance)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._base
            inst = self._instances.get(instance)
            if inst is not None:
                policy = inst.over(policy)
            alias = self._aliases.get(model_ref)
            if alias is not None:
                policy = alias.over(policy)
            self._policies[key] = policy
        return policy

    def plan(
        self,
        request: Request,
        candidates: Sequence[Candidate],
        override: CachePolicy | None,
    ) -> list[CacheSlot] | None:
        """The cache slots of ``request`` over its candidates, or None if it bypasses
        the cache (policy ``off``, or a nonzero temperature not allowed)."""
        slots: list[CacheSlot] = []
        body: str | None = None
        temperature = request.temperature
        hot = temperature is not None and temperature > 0
        for candidate in candidates:
            policy = self._policy(request.model, candidate.instance)
            if override is not None:
                policy = override.over(policy)
            if policy.mode == "off" or (hot and not policy.cache_nonzero_temperature):
                continue
            if body is None:
                body = canonical_body(request)
            key = key_for(
                body, instance=candidate.instance, model=candidate.model, namespace=self._namespace
            )
            slots.append(CacheSlot(candidate, key, policy))
        if not slots:
            self.bypassed += 1
            return None
        return slots

    # -- lookups and stores ---------------------------------------------------------------

    async def lookup(
        self, slots: Sequence[CacheSlot]
    ) -> tuple[Response, list[StreamChunk] | None] | None:
        """The first hit among the readable slots, in candidate order (None: a miss)."""
        started = time.perf_counter()
        readable = False
        guard = self.guard
        for slot in slots:
            if not slot.readable:
                continue
            readable = True
            try:
                if guard is None:
                    value = await self.backend.get(slot.key)
                elif guard.allow():
                    writing = self._writing.get(slot.key)
                    if writing is not None:  # this client is storing it: read it after
                        await asyncio.wait((writing,), timeout=guard.settings.timeout)
                    value = await guard.call(self.backend.get(slot.key))
                else:
                    self.degraded_lookups += 1
                    continue
            except Exception as err:
                self._failed("get", err)
                continue
            if value is None:
                continue
            try:
                response, chunks = decode_entry(value)
            except ValueError as err:
                self._failed("decode", err)
                continue
            self.hits += 1
            response = _answer_only(
                response, latency=time.perf_counter() - started, cost=0.0, cached=True
            )
            return response, chunks
        if readable:
            self.misses += 1
        return None

    def slot_for(self, slots: Sequence[CacheSlot], response: Response) -> CacheSlot | None:
        """The writable slot of the candidate that produced ``response``, if any."""
        if response.cached or response.finish_reason == "error":
            return None
        last = response.attempts[-1] if response.attempts else None
        for slot in slots:
            c = slot.candidate
            if not slot.writable or c.instance != response.provider:
                continue
            if last is None or last.model == c.model:
                return slot
        return None

    async def store(
        self,
        slots: Sequence[CacheSlot],
        response: Response,
        chunks: Sequence[StreamChunk] | None = None,
    ) -> None:
        """Store a successful answer under the key of the candidate that gave it."""
        slot = self.slot_for(slots, response)
        if slot is None:
            return
        await self._put(slot, lambda: encode_entry(response, chunks))

    async def _put(self, slot: CacheSlot, encode: Callable[[], bytes]) -> None:
        """Write ``encode()`` under ``slot``: to a shared backend in the background (never
        awaited by the answer; at most ``MAX_PENDING_WRITES`` pending, skipped while the
        store is degraded), to an in-process one at once; counted either way."""
        ttl = slot.policy.ttl
        expires = None if ttl is None or ttl == math.inf else ttl
        guard = self.guard
        if guard is not None:
            if len(self._writes) >= MAX_PENDING_WRITES:
                self.dropped_writes += 1
                return
            if not guard.allow():
                self.skipped_writes += 1
                return
        try:
            value = encode()
            if guard is not None:
                task = asyncio.get_running_loop().create_task(self._write(slot.key, value, expires))
                self._writing[slot.key] = task
                self._writes.add(task)
                task.add_done_callback(self._writes.discard)
                return
            await self.backend.set(slot.key, value, ttl=expires)
        except Exception as err:
            self._failed("set", err)
            return
        self.stores += 1

    # -- other kinds of answers (embeddings: llmx._embed) ----------------------------------

    def plan_body(
        self,
        model_ref: str,
        body: str,
        candidates: Sequence[Candidate],
        override: CachePolicy | None,
    ) -> list[CacheSlot] | None:
        """Like :meth:`plan`, for an answer whose canonical ``body`` the caller made (an
        embedding request): the same policies, keys under the same namespace."""
        slots: list[CacheSlot] = []
        for candidate in candidates:
            policy = self._policy(model_ref, candidate.instance)
            if override is not None:
                policy = override.over(policy)
            if policy.mode == "off":
                continue
            key = key_for(
                body, instance=candidate.instance, model=candidate.model, namespace=self._namespace
            )
            slots.append(CacheSlot(candidate, key, policy))
        if not slots:
            self.bypassed += 1
            return None
        return slots

    async def lookup_value(self, slots: Sequence[CacheSlot]) -> tuple[CacheSlot, bytes] | None:
        """Like :meth:`lookup`, returning the first stored value and its slot undecoded
        (the caller decodes it, and counts a value it cannot read with :meth:`unreadable`)."""
        readable = False
        guard = self.guard
        for slot in slots:
            if not slot.readable:
                continue
            readable = True
            try:
                if guard is None:
                    value = await self.backend.get(slot.key)
                elif guard.allow():
                    writing = self._writing.get(slot.key)
                    if writing is not None:
                        await asyncio.wait((writing,), timeout=guard.settings.timeout)
                    value = await guard.call(self.backend.get(slot.key))
                else:
                    self.degraded_lookups += 1
                    continue
            except Exception as err:
                self._failed("get", err)
                continue
            if value is not None:
                self.hits += 1
                return slot, value
        if readable:
            self.misses += 1
        return None

    def unreadable(self, err: ValueError) -> None:
        """A value :meth:`lookup_value` returned could not be decoded: a failure, not a hit."""
        self.hits -= 1
        self.misses += 1
        self._failed("decode", err)

    async def store_value(
        self, slots: Sequence[CacheSlot], instance: str, model: str, value: bytes
    ) -> None:
        """Like :meth:`store`, for a value the caller encoded: under the key of the
        candidate (``instance``, ``model``) that answered."""
        for slot in slots:
            c = slot.candidate
            if slot.writable and c.instance == instance and c.model == model:
                await self._put(slot, lambda: value)
                return

    async def _write(self, key: str, value: bytes, ttl: float | None) -> None:
        assert self.guard is not None
        try:
            await self.guard.call(self.backend.set(key, value, ttl=ttl), background=True)
        except Exception as err:
            self._failed("set", err)
            return
        finally:
            if self._writing.get(key) is asyncio.current_task():
                del self._writing[key]
        self.stores += 1

    def _probe(self) -> Awaitable[object]:
        return self.backend.get(f"{self._namespace}llmx:probe")

    async def drain(self) -> None:
        """Wait for the background writes under way (each is bounded by the deadline)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
            # The done callbacks that discard finished writes run on a later loop turn,
            # and awaiting writes that are already done does not yield to the loop: drop
            # them here, or this spins forever (seen on Python 3.12).
            self._writes.difference_update([t for t in self._writes if t.done()])

    def _failed(self, operation: str, err: BaseException) -> None:
        self.errors += 1
        if isinstance(err, TimeoutError) and self.guard is not None:
            return  # late: the guard logs the store's transition to degraded, once
        now = time.monotonic()
        if now - self._warned_at < self._warn_every:
            self._suppressed += 1
            return
        more = (
            f" ({self._suppressed} more failures since the last warning)"
            if self._suppressed
            else ""
        )
        self._warned_at = now
        self._suppressed = 0
        log.warning(
            "cache backend %r failed on %s (%s: %s); treating it as a miss, the request goes on%s",
            self.name,
            operation,
            type(err).__name__,
            err,
            more,
        )

    def stats(self) -> CacheStats:
        """The counts so far."""
        return CacheStats(
            self.hits,
            self.misses,
            self.stores,
            self.bypassed,
            self.errors,
            self.degraded_lookups,
            self.skipped_writes,
            self.dropped_writes,
        )

    async def aclose(self) -> None:
        """Finish the background writes (each bounded by the deadline), then close the
        backend, if it holds resources."""
        from llmx._components import Closable

        await self.drain()
        if self.guard is not None:
            await self.guard.aclose()
        if isinstance(self.backend, Closable):
            await self.backend.aclose()

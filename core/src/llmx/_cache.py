"""The response cache: policies, the in-memory backend, and the pipeline's cache stage.

A backend (:class:`~llmx.Cache`) stores opaque bytes under keys; everything else is
the core's: which requests are cached and how (:class:`CachePolicy`, layered from
``[cache]``, the provider instance, the alias and the call), the key
(:mod:`llmx._cachekey`), the serialisation of responses and streams, the statistics,
and turning any backend failure into a miss with a logged warning.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from llmx._cachekey import canonical_body, key_for
from llmx._errors import ConfigError
from llmx._types import replace

if TYPE_CHECKING:
    from llmx._components import Cache, Candidate
    from llmx._config import Config
    from llmx._registry import Registry
    from llmx._types import Request, Response, StreamChunk

log = logging.getLogger("llmx.cache")

CacheMode = Literal["read_write", "read_only", "refresh", "off"]
"""``read_write``: answer from the cache, store misses. ``read_only``: answer from the
cache, store nothing. ``refresh``: always ask the provider, store the answer. ``off``."""

_MODES = ("read_write", "read_only", "refresh", "off")
DEFAULT_TTL = 86_400.0
"""Seconds an entry lives when no policy sets ``ttl`` (one day)."""


def _check_mode(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and value not in _MODES:
        msg = f"cache mode must be one of {', '.join(_MODES)}, not {value!r}"
        raise ValueError(msg)


def _check_ttl(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and not value > 0:
        msg = "ttl must be a positive number of seconds (inf: never expires)"
        raise ValueError(msg)


@attrs.frozen
class CachePolicy:
    """How the response cache treats requests; a field left None inherits.

    Layers, most specific first: the call (``client.complete(..., cache=...)``), the
    alias (``[aliases.NAME] cache = {...}``), the provider instance
    (``[providers.NAME] cache = {...}``), then ``[cache]``. ``mode`` defaults to
    ``read_write`` when ``[cache]`` is configured and ``off`` otherwise; ``ttl`` (seconds,
    ``inf`` for never) to one day. Requests with ``temperature > 0`` are not cached
    unless ``cache_nonzero_temperature`` is true.
    """

    mode: CacheMode | None = attrs.field(default=None, validator=_check_mode)
    ttl: float | None = attrs.field(default=None, validator=_check_ttl)
    cache_nonzero_temperature: bool | None = None

    @classmethod
    def of(cls, value: object) -> CachePolicy | None:
        """A policy from a call's ``cache=`` argument (a mode name, a policy or None)."""
        if value is None or isinstance(value, CachePolicy):
            return value
        if isinstance(value, str):
            return cls(mode=value)  # type: ignore[arg-type]
        msg = f"cache= takes a mode ({', '.join(_MODES)}) or an llmx.CachePolicy, not {type(value).__name__}"
        raise TypeError(msg)

    def over(self, base: CachePolicy) -> CachePolicy:
        """This policy, with the fields it leaves None taken from ``base``."""
        return CachePolicy(
            mode=self.mode if self.mode is not None else base.mode,
            ttl=self.ttl if self.ttl is not None else base.ttl,
            cache_nonzero_temperature=(
                self.cache_nonzero_temperature
                if self.cache_nonzero_temperature is not None
                else base.cache_nonzero_temperature
            ),
        )


_POLICY_KEYS = frozenset({"mode", "ttl", "cache_nonzero_temperature"})
_LAYER_KEYS = frozenset({"namespace"})


@attrs.frozen
class CacheStats:
    """Response-cache counts of one client (see :meth:`llmx.Client.stats`).

    ``hits`` and ``misses`` count lookups; ``stores`` answers written; ``bypassed``
    requests the policy kept away from the cache (mode ``off``, or a nonzero
    temperature); ``errors`` backend failures, each treated as a miss.
    """

    hits: int = 0
    misses: int = 0
    stores: int = 0
    bypassed: int = 0
    errors: int = 0

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


def encode_entry(response: Response, chunks: Sequence[StreamChunk] | None = None) -> bytes:
    """A response (and the chunks it streamed as) as compact bytes: JSON, zlib-compressed
    past 1 KiB. Nothing but the answer: no request, no credentials, no raw payload."""
    from llmx._convert import to_json
    from llmx._types import StreamChunk as _Chunk

    bare = replace(response, attempts=(), latency=0.0, cost=None, raw=None, cached=False)
    data = to_json(bare)
    for name in ("attempts", "latency", "cost", "raw", "cached"):
        data.pop(name, None)
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
    from llmx._convert import from_json
    from llmx._types import Response as _Response
    from llmx._types import StreamChunk as _Chunk

    try:
        raw = zlib.decompress(value[1:]) if value[:1] == _ZLIB else value
        entry = json.loads(raw)
    except Exception as err:
        msg = f"corrupt cache entry ({type(err).__name__})"
        raise ValueError(msg) from err
    if not isinstance(entry, dict) or entry.get("f") != _FORMAT:
        msg = "not a cache entry of this format"
        raise ValueError(msg)
    try:
        response = from_json(entry["r"], _Response)
        chunks: list[StreamChunk] | None = None
        if "c" in entry:
            chunks = [from_json(c, _Chunk) for c in entry["c"]]  # type: ignore[arg-type]
    except Exception as err:
        msg = f"corrupt cache entry ({type(err).__name__})"
        raise ValueError(msg) from err
    return response, chunks


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


_DECODED_ENTRIES = 256
"""How many decoded hot entries a cache layer keeps (they stay valid while unchanged)."""


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
    ) -> None:
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
        # Decoded entries by key, reused while the stored bytes are unchanged: a hot
        # entry is parsed once, not on every hit. Hits hand out copies, never these.
        self._decoded: collections.OrderedDict[
            str, tuple[bytes, Response, list[StreamChunk] | None]
        ] = collections.OrderedDict()

    @classmethod
    def build(cls, config: Config, registry: Registry) -> CacheLayer | None:
        """The cache stage the config asks for, or None when nothing is cached."""
        from llmx._config import structure_settings
        from llmx._errors import PluginError

        section = config.cache
        instances = {
            name: _policy(p.cache, f"$.providers.{name}.cache")
            for name, p in config.providers.items()
            if p.cache
        }
        aliases = {
            name: _policy(a.cache, f"$.aliases.{name}.cache")
            for name, a in config.aliases.items()
            if a.cache
        }
        configured = section.name is not None or bool(section.options)
        if not (configured or instances or aliases):
            return None
        options = dict(section.options)
        base = _policy({k: v for k, v in options.items() if k in _POLICY_KEYS}, "$.cache")
        namespace = options.get("namespace", "")
        if not isinstance(namespace, str):
            msg = f"invalid config: expected a string, got {type(namespace).__name__} @ $.cache.namespace"
            raise ConfigError(msg)
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
        backend_options = {
            k: v for k, v in options.items() if k not in _POLICY_KEYS and k not in _LAYER_KEYS
        }
        settings = structure_settings(reg.settings, backend_options, "$.cache")
        backend = reg.factory(settings)
        return cls(
            backend,
            name=name,
            base=base.over(defaults),
            instances=instances,
            aliases=aliases,
            namespace=namespace,
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
        for slot in slots:
            if not slot.readable:
                continue
            readable = True
            try:
                value = await self.backend.get(slot.key)
            except Exception as err:
                self._failed("get", err)
                continue
            if value is None:
                continue
            memo = self._decoded.get(slot.key)
            if memo is not None and (memo[0] is value or memo[0] == value):
                response, chunks = memo[1], memo[2]
                self._decoded.move_to_end(slot.key)
            else:
                try:
                    response, chunks = decode_entry(value)
                except ValueError as err:
                    self._failed("decode", err)
                    continue
                self._decoded[slot.key] = (value, response, chunks)
                if len(self._decoded) > _DECODED_ENTRIES:
                    self._decoded.popitem(last=False)
            self.hits += 1
            response = replace(
                response,
                latency=time.perf_counter() - started,
                cost=0.0,
                attempts=(),
                cached=True,
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
        ttl = slot.policy.ttl
        try:
            value = encode_entry(response, chunks)
            await self.backend.set(
                slot.key, value, ttl=None if ttl is None or ttl == math.inf else ttl
            )
        except Exception as err:
            self._failed("set", err)
            return
        self.stores += 1

    def _failed(self, operation: str, err: BaseException) -> None:
        self.errors += 1
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
        return CacheStats(self.hits, self.misses, self.stores, self.bypassed, self.errors)

    async def aclose(self) -> None:
        """Close the backend, if it holds resources."""
        aclose = getattr(self.backend, "aclose", None)
        if aclose is not None:
            await aclose()


def _policy(options: Mapping[str, Any], path: str) -> CachePolicy:
    from llmx._config import structure_settings

    policy: CachePolicy = structure_settings(CachePolicy, options, path)
    return policy

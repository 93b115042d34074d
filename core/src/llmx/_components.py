"""The component protocols that plugins implement, and what the core hands them.

Each protocol has as few required methods as possible; optional abilities are
separate small protocols the core checks for once, when it builds the component.
Everything the core calls on a plugin's object is declared here: a component missing
a required member is refused when it is built, with an error naming its plugin
(see :data:`PROTOCOLS` and :func:`missing_members`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from llmx import _batchapi

if TYPE_CHECKING:
    import aiohttp

    from llmx._config import ProviderConfig
    from llmx._embedding import EmbeddingLimits, EmbeddingRequest, EmbeddingResponse
    from llmx._types import ModelInfo, Request, Response, StreamChunk


@attrs.frozen
class ProviderContext:
    """What a provider factory receives to build one provider instance.

    ``instance`` is the configured name (``[providers.NAME]``), ``config`` its common
    settings (base URL, API key as a :class:`~llmx.Secret`, timeouts, model mapping),
    ``settings`` the instance's type-specific settings structured into the class the
    plugin registered (or None), and ``session`` the pooled aiohttp session the client
    owns for this instance: providers borrow it and never close it.
    """

    instance: str
    config: ProviderConfig
    settings: Any
    session: aiohttp.ClientSession


@runtime_checkable
class Provider(Protocol):
    """A model provider. Only :meth:`complete` is required.

    The request's ``model`` is the provider's own model name (already resolved from
    the model reference and mapped). Return a new :class:`~llmx.Response` for every
    call (the pipeline fills in ``provider``, ``latency``, ``cost`` and ``attempts`` on
    it before anyone else sees it). Raise :class:`~llmx.ProviderError` subclasses for
    failures. Optional methods, checked once: ``stream(request)`` (an async iterator of
    :data:`~llmx.types.StreamChunk`; without it the core streams the complete answer as one
    chunk), ``model_info(model) -> ModelInfo | None`` (static data for cost and
    capability checks: :class:`ModelInfoProvider`), ``async list_models() ->
    Sequence[ModelInfo]`` (live from the API), ``async count_tokens(request) -> int``
    (:class:`TokenCountingProvider`), ``embedding_limits`` with ``async
    embed(request)`` (embeddings: :class:`EmbeddingProvider`) and ``async aclose()``
    (:class:`Closable`).
    """

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        ...


@runtime_checkable
class StreamingProvider(Protocol):
    """A provider that streams natively."""

    def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield chunks as they arrive, ending with a StreamEnd."""
        ...


@runtime_checkable
class ModelInfoProvider(Protocol):
    """A provider that knows static facts about its models.

    A provider *factory* may satisfy it too, with a ``staticmethod`` (or classmethod)
    ``model_info`` on the provider class: the core then asks the factory before any
    provider instance or connection exists. An instance method is asked only once the
    provider is built.
    """

    def model_info(self, model: str) -> ModelInfo | None:
        """Facts about ``model`` (limits, capabilities, prices), or None if unknown."""
        ...


@runtime_checkable
class ModelListingProvider(Protocol):
    """A provider that can list the models its API offers right now."""

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models the API lists, with what is known about each."""
        ...


@runtime_checkable
class TokenCountingProvider(Protocol):
    """A provider that counts a request's input tokens exactly, before sending it:
    with the vendor's counting endpoint (Anthropic ``count_tokens``, Gemini
    ``countTokens``) or its own tokenizer (a local model).

    :meth:`llmx.Client.count_tokens` calls it; without it, the client answers with
    its estimate (marked ``usage.estimated``). Raise :class:`~llmx.ProviderError`
    subclasses for failures, as :meth:`Provider.complete` does, and
    :class:`~llmx.UnsupportedFeatureError` (before sending anything) when this instance
    or model cannot count after all (a gateway without the vendor's counting endpoint):
    the client then answers with its estimate, as for a provider that never counts.
    """

    async def count_tokens(self, request: Request) -> int:
        """The input tokens ``request`` (``model`` is the provider's name) is billed for."""
        ...


@runtime_checkable
class EmbeddingProvider(Protocol):
    """A provider that makes embeddings (``Client.embed``): both members, checked once
    when the provider is built (one without the other is refused, naming the plugin).

    ``embedding_limits`` says what one request may hold; the core splits larger requests
    into batches within it, so :meth:`embed` never receives more than
    ``embedding_limits.max_inputs`` inputs, nor ``dimensions`` when
    ``embedding_limits.dimensions`` is false. A provider without this ability has
    ``Client.embed`` refused before sending (:class:`~llmx.UnsupportedFeatureError`).
    """

    embedding_limits: EmbeddingLimits

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Embed ``request.input`` with ``request.model`` (the provider's own model name):
        one vector per input, in input order, with the usage the API reported."""
        ...


@runtime_checkable
class Closable(Protocol):
    """A component holding resources of its own to release: a provider, a cache, a
    rate limiter or a breaker store may implement it; the client calls it once, when
    it closes."""

    async def aclose(self) -> None:
        """Release the component's own resources (a provider: not the borrowed session)."""
        ...


@runtime_checkable
class Cache(Protocol):
    """A response cache: opaque values under stable keys that never contain secrets.

    Keys are ``llmx:v1:...`` digests (see :func:`llmx.plugin.cache_key`); values are the core's
    compact serialisation of a response. A backend may raise on failure: the core turns
    any exception into a miss with a logged warning, never a failed request. Optional:
    ``async aclose()``, called when the client closes.
    """

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None on a miss or after it expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: never expires)."""
        ...


@attrs.frozen
class Bucket:
    """One limit a request must fit, as a :class:`RateLimiter` backend sees it.

    ``kind = "window"``: at most ``limit`` units in any ``period`` seconds (a sliding
    window); the request takes ``amount`` units (1 for a request count, the estimated
    tokens for a token limit). ``kind = "slots"``: at most ``limit`` requests at once;
    a slot is held until released, or for ``period`` seconds if its holder vanished.
    ``instance`` is the provider instance the bucket belongs to, ``name`` what it
    limits there (``"rpm"``, ``"gpt-4o:tpm"``, ...); together they name the bucket.
    """

    instance: str
    name: str
    limit: float
    period: float
    amount: float = 1.0
    kind: Literal["window", "slots"] = "window"


@runtime_checkable
class RateLimiter(Protocol):
    """Where rate-limit buckets live: in the process (``local``) or shared (``redis``).

    The core queues waiting requests (FIFO, up to ``max_wait``) and asks the backend
    whether a request fits. Optional: ``async aclose()`` (:class:`Closable`) and
    ``release_nowait(grant, buckets)`` (:class:`InProcessRelease`).
    """

    async def acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """Take every bucket's ``amount`` for ``grant``, atomically: all or nothing.

        Returns 0 when granted. Otherwise nothing was taken, and the result is the
        seconds to wait before asking again (an estimate when slots are full), or
        ``math.inf`` when the request can never fit (``amount`` above ``limit``).
        """
        ...

    async def release(self, grant: str, buckets: Sequence[Bucket]) -> None:
        """``grant``'s request ended: free its slots, and for windows record ``amount``
        (the real usage) in place of the estimate taken. Window units are not given
        back: they leave the window when their time is up."""
        ...


@runtime_checkable
class InProcessAcquire(Protocol):
    """A :class:`~llmx.plugin.RateLimiter` backend that can answer in the caller's thread
    without waiting (``local``): when no request is queued for the model, the core calls
    :meth:`try_acquire` instead of awaiting ``acquire``, saving two coroutines per
    request (a queued request still awaits ``acquire``)."""

    def try_acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        """What ``acquire`` returns, computed synchronously."""
        ...


@runtime_checkable
class InProcessRelease(Protocol):
    """A :class:`~llmx.plugin.RateLimiter` backend whose release needs no I/O (``local``):
    the core calls :meth:`release_nowait` instead of scheduling a task for ``release``."""

    def release_nowait(self, grant: str, buckets: Sequence[Bucket]) -> None:
        """What ``release`` does, synchronously."""
        ...


BreakerStateName = Literal["closed", "open", "half_open"]


@attrs.frozen
class SharedBreakerState:
    """An instance's circuit-breaker state as shared between processes.

    ``state`` and ``until`` (wall-clock seconds: an open breaker admits a probe from
    then on; a half-open one is probing until then) come from the last transition,
    made at ``updated`` (wall clock) by ``origin`` (``host:pid``) for ``reason``:
    the newest transition wins. ``blocked_until`` (wall clock) is the Retry-After
    cooldown: the latest one wins. Times are wall-clock so machines can share them.
    """

    state: BreakerStateName = "closed"
    until: float = 0.0
    updated: float = 0.0
    reason: str = ""
    origin: str = ""
    blocked_until: float = 0.0

    def merge(self, other: SharedBreakerState) -> SharedBreakerState:
        """The two combined: the newer transition, the later cooldown."""
        newer = other if other.updated > self.updated else self
        blocked = max(self.blocked_until, other.blocked_until)
        if newer.blocked_until == blocked:
            return newer
        return attrs.evolve(newer, blocked_until=blocked)


@runtime_checkable
class BreakerStore(Protocol):
    """Where circuit-breaker state and cooldowns live, so processes can share them.

    Both methods are synchronous and must not block: :meth:`get` answers from a local
    snapshot, :meth:`publish` updates it and does any I/O in the background. Optional:
    the ``shared`` flag (:class:`ScopedBreakerStore`) and ``async aclose()``
    (:class:`Closable`).
    """

    def get(self, instance: str) -> SharedBreakerState | None:
        """The latest known shared state of ``instance`` (None: nothing known)."""
        ...

    def publish(self, instance: str, state: SharedBreakerState) -> None:
        """Merge ``state`` into the shared state of ``instance`` (see
        :meth:`SharedBreakerState.merge`) and tell the other processes."""
        ...


@runtime_checkable
class ScopedBreakerStore(Protocol):
    """A breaker store that says whether anything outside this client writes it.

    ``shared = False`` (a store private to the client, like the built-in ``memory``)
    lets the core skip the store on the hot path. A store without the flag is taken as
    shared: consulting it is always correct, only slower.
    """

    shared: bool
    """False: nothing outside this client reads or writes the store."""


@runtime_checkable
class ScopedCache(Protocol):
    """A cache that says whether anything outside this process reads or writes it.

    ``shared = False`` (a cache private to the process, like the built-in ``memory``
    and ``sqlite`` on local disk) lets the core call it directly. A cache without the
    flag is taken as shared: each call runs under the store deadline and breaker, and
    writes go in the background (see docs/caching.md).
    """

    shared: bool
    """False: nothing outside this process reads or writes the cache."""


@runtime_checkable
class RetryPolicy(Protocol):
    """Decides how a failed attempt is retried on the same candidate.

    *What* is retryable comes from the error and the pipeline (breaker, retry budget,
    deadline, Retry-After), passed in as ``on``. The policy owns *how*: how many
    attempts, how long to wait, the time budget. See the built-in stamina policy.
    """

    attempts: int
    """Tries per candidate, the first included (1: never retry)."""

    max_retry_after: float
    """The longest Retry-After worth waiting for; longer ones move to the next candidate."""

    def retrying(
        self, on: Callable[[BaseException], bool | float], *, timeout: float
    ) -> AsyncIterator[AbstractContextManager[Any]]:
        """Yield one context manager per attempt (like ``stamina.retry_context``).

        The pipeline replays the first failure in the first context, so the policy
        decides the first wait too. ``on(error)`` returns False (stop), True (retry
        after the policy's backoff) or seconds to wait. ``timeout`` is the time left.
        """
        ...


@attrs.frozen
class Candidate:
    """One candidate for a request: a provider instance and the model to ask it for."""

    instance: str
    model: str
    priority: int = 0
    weight: float = 1.0
    info: ModelInfo | None = attrs.field(default=None, eq=False)


@runtime_checkable
class RoutingView(Protocol):
    """Live state a strategy may consult."""

    def in_flight(self, instance: str) -> int:
        """Requests currently in flight to ``instance``."""
        ...

    def latency(self, instance: str, model: str) -> float | None:
        """Recent latency (EWMA, seconds) of ``model`` on ``instance``; None without data."""
        ...

    def latency_quantile(self, instance: str, model: str, q: float) -> float | None:
        """A latency quantile (seconds) of ``model`` on ``instance``; None without data."""
        ...

    def estimated_cost(self, candidate: Candidate, request: Request) -> float | None:
        """The USD the request would cost on ``candidate``; None if prices are unknown."""
        ...


@runtime_checkable
class RoutingStrategy(Protocol):
    """Orders the candidates of a request; the pipeline tries them in that order.

    ``view`` answers questions about live state (in-flight counts, latency estimates,
    estimated cost): see :class:`llmx.plugin.RoutingView`. Strategies do no I/O.
    ``request`` is an :class:`~llmx.plugin.EmbeddingRequest` for ``Client.embed``
    (``model`` and ``input``, no ``messages``).
    """

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """The candidates in the order to try them (it may leave some out)."""
        ...


@runtime_checkable
class HedgingStrategy(Protocol):
    """A routing strategy that also hedges (the built-in ``hedged``): the engine sends
    the request to the first candidate and, if no answer (for a stream: no first chunk)
    came within :meth:`hedge_delay` and :meth:`try_hedge` allows, to the next one too;
    the first to answer wins and the other is cancelled. Checked once, when the
    strategy is built."""

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """The candidates in the order to try them."""
        ...

    def hedge_delay(self, first: Candidate, view: RoutingView) -> float:
        """Seconds to wait for ``first`` before hedging to the next candidate."""
        ...

    def try_hedge(self) -> bool:
        """Spend one hedge from the strategy's budget; False when it is spent."""
        ...


@runtime_checkable
class LayeredStrategy(Protocol):
    """A strategy that orders through another one, named by :attr:`base_name` (e.g.
    from ``[routing] base = "lowest_latency"``); the engine builds the base and binds it."""

    @property
    def base_name(self) -> str:
        """The name of the strategy to order through."""
        ...

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """The candidates in the order to try them."""
        ...

    def bind_base(self, base: RoutingStrategy) -> None:
        """Order through ``base``."""
        ...


OPTIONAL: Mapping[str, tuple[type, ...]] = {
    "provider": (
        StreamingProvider,
        ModelInfoProvider,
        ModelListingProvider,
        TokenCountingProvider,
        EmbeddingProvider,
        Closable,
        _batchapi.BatchProvider,
    ),
    "cache": (ScopedCache, Closable),
    "limiter": (InProcessAcquire, InProcessRelease, Closable),
    "breaker_store": (ScopedBreakerStore, Closable),
    "retry_policy": (),
    "routing_strategy": (HedgingStrategy, LayeredStrategy),
}
"""The optional abilities of each kind. A component that has a member of one of them
(beyond its kind's required protocol) must have all of that protocol's members, in
shapes the core can call: it is checked when built, as the required protocol is."""

ComponentSettings = Mapping[str, Any]
"""Raw settings of a component before its settings class structures them."""


PROTOCOLS: Mapping[str, type] = {
    "provider": Provider,
    "cache": Cache,
    "limiter": RateLimiter,
    "breaker_store": BreakerStore,
    "retry_policy": RetryPolicy,
    "routing_strategy": RoutingStrategy,
}
"""The protocol a component of each kind must satisfy (commands are click commands)."""


def missing_members(component: object, protocol: type) -> list[str]:
    """What ``component`` lacks of ``protocol`` (empty: it conforms): the name of each
    member it does not have, and ``name(arguments)`` for each method that cannot be
    called with the arguments the protocol declares.

    Like ``isinstance(component, protocol)`` for a runtime-checkable protocol, plus the
    call shapes, and naming what is missing, for the error message.
    """
    import inspect

    namespace = vars(protocol)
    annotations = namespace.get("__annotations__", {})
    gaps = []
    for name in declared_members(protocol):
        if not hasattr(component, name):
            gaps.append(name)
            continue
        spec = namespace.get(name)
        if not callable(spec):
            # A data member such as RetryPolicy.attempts: of the declared type, if simple.
            wrong = _wrong_type(getattr(component, name), annotations.get(name))
            if wrong:
                gaps.append(f"{name} as {wrong}")
            continue
        params = list(inspect.signature(spec).parameters.values())[1:]  # after self
        positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        keywords = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
        try:
            signature = inspect.signature(getattr(component, name))
        except (TypeError, ValueError):  # no signature to read (a builtin): trust it
            continue
        try:
            signature.bind(*positional, **dict.fromkeys(keywords))
        except TypeError:
            shape = ", ".join([*positional, *(["*", *keywords] if keywords else [])])
            gaps.append(f"{name}({shape})")
    return gaps


def declared_members(protocol: type) -> list[str]:
    """The public members ``protocol`` declares: methods, properties and annotated data."""
    namespace = vars(protocol)
    declared = [n for n in namespace if not n.startswith("_")]
    declared += [n for n in namespace.get("__annotations__", {}) if n not in declared]
    return declared


def partial_abilities(component: object, kind: str) -> list[tuple[type, list[str], list[str]]]:
    """The optional protocols of ``kind`` (:data:`OPTIONAL`) that ``component`` implements
    only in part: ``(protocol, the members it has, what it lacks)`` for each (empty: it
    has each ability completely or not at all)."""
    required = set(declared_members(PROTOCOLS[kind])) if kind in PROTOCOLS else set()
    found = []
    for optional in OPTIONAL.get(kind, ()):
        own = [n for n in declared_members(optional) if n not in required]
        present = [n for n in own if hasattr(component, n)]
        if present:
            gaps = missing_members(component, optional)
            if gaps:
                found.append((optional, present, gaps))
    return found


_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
}


def _wrong_type(value: object, annotation: object) -> str | None:
    """``"an int (not str)"`` when ``value`` is not of the simple type ``annotation``
    names (``int``, ``float``, ``bool``, ``str``); None when it is, or the type is
    not one of those."""
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None)
    expected = _SIMPLE_TYPES.get(str(name))
    if expected is None:
        return None
    if isinstance(value, expected) and (bool in expected or not isinstance(value, bool)):
        return None
    article = "an" if str(name)[0] in "aeiou" else "a"
    return f"{article} {name} (not {type(value).__name__} {value!r})"

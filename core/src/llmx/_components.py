"""The component protocols that plugins implement, and what the core hands them.

Each protocol has as few required methods as possible; optional abilities are
separate small protocols the core checks for once, when it builds the component.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    import aiohttp

    from llmx._config import ProviderConfig
    from llmx._routing import RoutingView
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
    the model reference and mapped). Raise :class:`~llmx.ProviderError` subclasses for
    failures. Optional methods, checked once: ``stream(request)`` (an async iterator of
    :data:`~llmx.StreamChunk`; without it the core streams the complete answer as one
    chunk), ``model_info(model) -> ModelInfo | None`` (static data for cost and
    capability checks), ``async list_models() -> Sequence[ModelInfo]`` (live from the
    API) and ``async aclose()``.
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
    """A provider that knows static facts about its models."""

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
class ClosableProvider(Protocol):
    """A provider holding resources of its own to release."""

    async def aclose(self) -> None:
        """Release the provider's own resources (not the borrowed session)."""
        ...


class Cache(Protocol):
    """A response cache: opaque values under stable keys that never contain secrets."""

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None on a miss or after it expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: the backend's default)."""
        ...


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
        self, on: Callable[[Exception], bool | float], *, timeout: float
    ) -> AsyncIterator[AbstractContextManager[Any]]:
        """Yield one context manager per attempt (like ``stamina.retry_context``).

        The pipeline replays the first failure in the first context, so the policy
        decides the first wait too. ``on(error)`` returns False (stop), True (retry
        after the policy's backoff) or seconds to wait. ``timeout`` is the time left.
        """
        ...


@attrs.frozen
class Candidate:
    """One deployment that may serve a request: a provider instance and its model name."""

    instance: str
    model: str
    priority: int = 0
    weight: float = 1.0
    info: ModelInfo | None = attrs.field(default=None, eq=False)


class RoutingStrategy(Protocol):
    """Orders the candidates of a request; the pipeline tries them in that order.

    ``view`` answers questions about live state (in-flight counts, latency estimates,
    estimated cost): see :class:`llmx.RoutingView`. Strategies do no I/O.
    """

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """The candidates in the order to try them (it may leave some out)."""
        ...


ComponentSettings = Mapping[str, Any]
"""Raw settings of a component before its settings class structures them."""

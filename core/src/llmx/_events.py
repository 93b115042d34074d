"""Event payloads passed to the event hooks (``llmx_request_start`` and friends).

They are built only when at least one plugin implements the hook, so an unused hook
costs a single attribute check on the hot path.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Literal

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping

    from llmx._embedding import EmbeddingRequest, EmbeddingResponse
    from llmx._types import Request, Response, Usage


@attrs.frozen
class RequestStart:
    """A request entered the pipeline. ``started`` is a ``time.perf_counter()`` value.
    ``request`` is an :class:`~llmx.plugin.EmbeddingRequest` for ``Client.embed``."""

    request_id: str
    request: Request | EmbeddingRequest
    stream: bool
    started: float


AttemptKind = Literal["first", "retry", "fallback", "hedge"]
"""Why an attempt was made: the request's first, a retry of the same candidate after a
failure, the next candidate after one failed (a fallback), or a hedge sent to the next
candidate while the first had not answered yet."""


@attrs.frozen
class AttemptStart:
    """An attempt against one provider instance is about to be sent: it was admitted
    (cooldown, breaker, rate limits and concurrency slot passed), its clock started.

    ``provider`` is the instance's name and ``provider_type`` its type (``openai``);
    ``attempt`` counts from 1 across the whole request, in the order attempts start
    (the same number as the attempt's :class:`AttemptEnd`); ``started`` is the same
    ``time.perf_counter()`` value as ``AttemptEnd.started``; ``kind`` says why the
    attempt was made (:data:`AttemptKind`).

    ``headers`` starts empty and is the one thing a hook may change: HTTP headers added
    to it (``traceparent``, ``tracestate``, ``baggage``...) go with this attempt's
    request, for providers built on :class:`llmx.http.Endpoint` (the first-party ones).
    A provider's own headers (authentication, API version, the instance's configured
    ``headers``) win over a header of the same name.
    """

    request_id: str
    provider: str
    model: str
    attempt: int
    started: float
    kind: AttemptKind
    provider_type: str
    headers: dict[str, str] = attrs.field(factory=dict, eq=False)


attempt_headers: ContextVar[Mapping[str, str] | None] = ContextVar(
    "llmx_attempt_headers", default=None
)
"""The headers ``llmx_attempt_start`` hooks added for the attempt running in this
context (None: none); :class:`llmx.http.Endpoint` sends them with its requests."""


@attrs.frozen
class AttemptEnd:
    """One attempt against one provider instance finished, well or badly.

    ``attempt`` counts from 1 across the whole request; ``usage`` is set on success,
    ``error`` on failure. ``ttft`` is the time to the first streamed chunk, if any.
    """

    request_id: str
    provider: str
    model: str
    attempt: int
    started: float
    duration: float
    usage: Usage | None = None
    error: BaseException | None = None
    ttft: float | None = None


@attrs.frozen
class RequestEnd:
    """A request succeeded; ``response`` is what the caller receives (an
    :class:`~llmx.EmbeddingResponse` for ``Client.embed``)."""

    request_id: str
    response: Response | EmbeddingResponse
    duration: float


@attrs.frozen
class RequestError:
    """A request failed; ``error`` is what the caller receives."""

    request_id: str
    error: BaseException
    duration: float


@attrs.frozen
class RequestCancelled:
    """A request ended without an answer or an error: ``reason`` is ``"cancelled"``
    (its task was cancelled) or ``"closed"`` (the caller closed its stream early)."""

    request_id: str
    reason: str
    duration: float


@attrs.frozen
class BreakerTransition:
    """A provider instance's circuit breaker changed state.

    ``old`` and ``new`` are ``closed``, ``open`` or ``half_open``; ``reason`` says why.
    """

    instance: str
    old: str
    new: str
    reason: str

"""Event payloads passed to the event hooks (``llmx_request_start`` and friends).

They are built only when at least one plugin implements the hook, so an unused hook
costs a single attribute check on the hot path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
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

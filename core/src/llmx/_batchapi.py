"""Provider batch APIs: the optional provider ability :class:`BatchProvider` and its values.

OpenAI's Batch API, Anthropic's Message Batches and Gemini's batch mode take many
requests at once, answer within 24 hours, and cost about half. A provider whose API has
one implements :class:`BatchProvider` (checked when the provider is built, like every
optional ability); ``llmx batch --provider-batch`` (:mod:`llmx._provider_batch`) drives
it. The split of the work:

* the **provider** knows its wire: :meth:`BatchProvider.batch_line` encodes one request
  (its normal chat body, wrapped as its batch API wants it), :meth:`~BatchProvider.submit_batch`
  uploads and creates, :meth:`~BatchProvider.poll_batch` reads the state,
  :meth:`~BatchProvider.batch_results` reads the answers through the provider's normal
  response parser and error mapping, :meth:`~BatchProvider.cancel_batch` cancels, and
  :meth:`~BatchProvider.find_batch` finds a batch a create whose answer was lost (a crash
  between sending and recording) made, so it is never created twice;
* the **core** parses the input, splits it to :meth:`~BatchProvider.batch_limits`,
  records every vendor id in a state file before it waits, polls, writes the results
  file and prices the usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from llmx._errors import LlmxError
    from llmx._types import Request, Response

BatchState = Literal["validating", "in_progress", "finalizing", "canceling", "ended"]
"""A batch's state, the same words for every vendor (the vendor's own is kept as well)."""


@attrs.frozen
class BatchLimits:
    """The most one batch of the vendor takes: requests, and bytes of the encoded
    submission (the sum of :meth:`BatchProvider.batch_line` lengths plus
    ``line_overhead`` per line and ``base_overhead`` once)."""

    max_requests: int
    max_bytes: int
    line_overhead: int = 1
    base_overhead: int = 0


@attrs.frozen
class BatchJob:
    """A submitted batch: the vendor's batch id and the ids of what it created for it
    (``{"input_file_id": "file-..."}``). Recorded in the state file; strings only."""

    id: str
    files: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class BatchStatus:
    """A batch's state when polled: :data:`BatchState`, the vendor's own word for it,
    counts of requests by the vendor's categories, and for a batch that ended as a
    whole without answers (failed validation, expired, cancelled before it ran) why."""

    state: BatchState
    vendor_state: str
    counts: Mapping[str, int] = attrs.field(factory=dict)
    message: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the batch is over (its results, if any, can be read)."""
        return self.state == "ended"


ResultStatus = Literal["succeeded", "errored", "canceled", "expired"]
"""How one request of a batch ended (Anthropic's words; every vendor's map onto them)."""


@attrs.frozen
class BatchResult:
    """One request's outcome: its ``custom_id``, how it ended, and the answer (parsed as a
    normal call's would be) or the typed error (the :class:`~llmx.ProviderError` a normal
    call would raise). A ``canceled`` or ``expired`` request has neither: the core types
    those errors the same way for every vendor (codes ``batch_canceled``,
    ``batch_expired``)."""

    custom_id: str
    status: ResultStatus
    response: Response | None = None
    error: LlmxError | None = None


@runtime_checkable
class BatchProvider(Protocol):
    """A provider whose API runs batches of requests offline (an optional ability).

    Every method gets the provider's own model name (as ``complete`` does). Implement all
    of it or none: a provider with some of these members is refused when built.
    """

    def batch_limits(self, model: str) -> BatchLimits:
        """The vendor's limits for one batch (cite its documentation)."""
        ...

    def batch_line(self, custom_id: str, request: Request) -> bytes:
        """One request as the batch API takes it: the body :meth:`complete` would send,
        wrapped with ``custom_id`` (no newline). Raises
        :class:`~llmx.UnsupportedFeatureError` as ``complete`` would, before anything
        is sent."""
        ...

    async def submit_batch(
        self,
        model: str,
        lines: Sequence[bytes],
        *,
        key: str,
        checkpoint: Mapping[str, str],
        save: Callable[[Mapping[str, str]], None],
    ) -> BatchJob:
        """Upload and create one batch of ``lines``; return it once created.

        ``key`` is unique to this chunk of this run: tag the batch with it where the API
        allows (metadata, display name) so :meth:`find_batch` finds it. Call ``save``
        with the ids of anything made before the create (an uploaded file) as soon as
        it exists: the core records them, and a resumed run passes them back as
        ``checkpoint`` so nothing is uploaded twice.
        """
        ...

    async def find_batch(
        self, model: str, *, key: str, since: float, count: int
    ) -> BatchJob | None:
        """The batch an earlier :meth:`submit_batch` of ``key`` created, if any: called
        when a run stopped after sending a create but before recording its answer.
        ``since`` is the Unix time the create started, ``count`` its requests."""
        ...

    async def poll_batch(self, job: BatchJob) -> BatchStatus:
        """The batch's state now."""
        ...

    def batch_results(
        self, job: BatchJob, requests: Mapping[str, Request]
    ) -> AsyncIterator[BatchResult]:
        """The outcome of each request of an ended batch (``requests`` by custom id, as
        submitted), in any order; each answer parsed by the provider's normal parser."""
        ...

    async def cancel_batch(self, job: BatchJob) -> BatchStatus:
        """Ask the vendor to cancel the batch; its state after the request."""
        ...

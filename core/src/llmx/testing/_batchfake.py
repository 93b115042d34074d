"""What the fake servers' batch APIs share: the batches, their scripted lifecycle, and
each request answered through the fake's own reply machinery.

A vendor fake (``FakeOpenAIServer``, ``FakeAnthropicServer``, ``FakeGeminiServer``) mixes
in :class:`FakeBatches` and adds its routes; a test steers the lifecycle:

* :attr:`FakeBatches.batch_lifecycle`: the vendor states a new batch goes through, one
  step per poll (the last is where it ends: ``completed``, ``expired``, ``failed``...);
* :attr:`FakeBatches.batch_answer_before_end`: with an end that is not a success
  (``expired``, ``cancelled``, or :attr:`FakeBatches.batch_expire` set), how many
  requests were answered before it (the others expire or are cancelled);
* :attr:`FakeBatches.batch_lose_creates`, :attr:`FakeBatches.batch_poll_errors`: creates
  that make their batch but answer 500, polls that answer 503;
* :attr:`FakeBatches.batch_hold`: seconds to stall a stage's answer *after* the server
  acted on it (``upload``, ``create``, ``poll``, ``results``): a test kills the client
  while it waits, and checks the rerun creates nothing twice;
* each request of a batch is answered as the fake answers a normal call: the next
  queued reply (:meth:`~llmx.testing.FakeServer.enqueue`) or :meth:`default_reply` (an
  :class:`~llmx.testing.ErrorReply` becomes that request's error).

:attr:`FakeBatches.batch_creates` counts the creates the server accepted.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from llmx.testing._replies import ErrorReply, Reply, ReplyItem, Stall
from llmx.testing._server import _CURRENT

if TYPE_CHECKING:
    from aiohttp import web

    from llmx.testing._server import FakeServer, RecordedRequest

    _Server = FakeServer
else:
    _Server = object

__all__ = ["FakeBatch", "FakeBatches", "ItemOutcome"]


@attrs.define
class ItemOutcome:
    """How one request of a fake batch ended: ``succeeded`` (``reply``), ``errored``
    (``error``), ``expired`` or ``canceled``."""

    custom_id: str
    kind: str
    body: Any = None
    reply: Reply | None = None
    error: ErrorReply | None = None
    recorded: RecordedRequest | None = None


@attrs.define
class FakeBatch:
    """One batch held by a fake server."""

    id: str
    key: str | None
    model: str | None
    items: list[tuple[str, Any]]
    lifecycle: list[str]
    created_at: float = attrs.field(factory=time.time)
    step: int = 0
    cancelled: bool = False
    outcomes: list[ItemOutcome] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def state(self) -> str:
        """The vendor state now."""
        return self.lifecycle[min(self.step, len(self.lifecycle) - 1)]

    @property
    def at_end(self) -> bool:
        """Whether the batch reached the last state of its lifecycle."""
        return self.step >= len(self.lifecycle) - 1


class FakeBatches(_Server):
    """The batch store a vendor fake mixes in (see the module docstring): a mixin of a
    :class:`~llmx.testing.FakeServer` subclass."""

    max_request_bytes: ClassVar[int | None] = 300 * 2**20
    """Batch uploads and creates are large: the vendors take 200-256 MB."""
    batch_lifecycle: Sequence[str] = ()
    batch_cancel_states: Sequence[str] = ()
    batch_success_states: frozenset[str] = frozenset()

    def init_batches(self) -> None:
        """Set up the store (call from the fake's ``__init__``)."""
        self.batches: dict[str, FakeBatch] = {}
        """Every batch created, by id."""
        self.batch_creates = 0
        """How many creates the server accepted."""
        self.batch_answer_before_end = 0
        self.batch_expire = False
        """Whether the batches expire at the end of their lifecycle (Anthropic's and
        Gemini's end in one state, their requests expiring within it)."""
        self.batch_hold: dict[str, float] = {}
        self.batch_lose_creates = 0
        """How many of the next creates make their batch but answer 500 (the answer lost)."""
        self.batch_poll_errors = 0
        """How many of the next polls answer 503."""
        self._batch_ids = itertools.count(1)

    def new_batch(
        self, prefix: str, key: str | None, model: str | None, items: list[tuple[str, Any]]
    ) -> FakeBatch:
        """Create and store a batch of ``items`` ``(custom_id, request body)``."""
        batch_id = f"{prefix}{next(self._batch_ids):06d}"
        batch = FakeBatch(batch_id, key, model, items, list(self.batch_lifecycle))
        self.batches[batch_id] = batch
        self.batch_creates += 1
        return batch

    def advance(self, batch: FakeBatch) -> None:
        """One poll: the next state of the lifecycle; answers the requests at its end."""
        if not batch.at_end:
            batch.step += 1
        if batch.at_end and batch.outcomes is None:
            self.finish(batch)

    def cancel(self, batch: FakeBatch) -> None:
        """Cancel: the batch goes through the vendor's cancel states instead."""
        if batch.at_end:
            return
        batch.cancelled = True
        batch.lifecycle = [*batch.lifecycle[: batch.step + 1], *self.batch_cancel_states]

    def finish(self, batch: FakeBatch) -> None:
        """Answer each request as a normal call would be answered (or expire/cancel it)."""
        success = (
            batch.state in self.batch_success_states
            and not batch.cancelled
            and not self.batch_expire
        )
        outcomes = []
        for index, (custom_id, body) in enumerate(batch.items):
            if not success and index >= self.batch_answer_before_end:
                kind = "canceled" if batch.cancelled or "cancel" in batch.state else "expired"
                outcomes.append(ItemOutcome(custom_id, kind))
                continue
            recorded = self.item_recorded(batch, body)
            # Taken as a model request of its own: recorded in model_requests (so a
            # conformance suite's validate_request checks each item's body), faults applied.
            token = _CURRENT.set(recorded)
            try:
                reply: ReplyItem | None = self.next_reply()
            finally:
                _CURRENT.reset(token)
            if reply is None:
                reply = self.default_reply(recorded)
            while isinstance(reply, Stall):
                reply = reply.then if reply.then is not None else self.default_reply(recorded)
            if isinstance(reply, ErrorReply):
                outcomes.append(ItemOutcome(custom_id, "errored", error=reply, recorded=recorded))
            elif isinstance(reply, Reply):
                outcomes.append(ItemOutcome(custom_id, "succeeded", reply=reply, recorded=recorded))
            else:  # a reset, raw bytes, a refusal: inside a batch, that request's server error
                error = ErrorReply(500, message=f"the request failed ({type(reply).__name__})")
                outcomes.append(ItemOutcome(custom_id, "errored", error=error, recorded=recorded))
        batch.outcomes = outcomes

    def item_recorded(self, batch: FakeBatch, body: Any) -> RecordedRequest:
        """The request of one batch item, as if it had been sent on its own."""
        import json

        from llmx.testing._server import RecordedRequest

        return RecordedRequest(
            method="POST",
            path=self.item_path(batch),
            query={},
            headers={},
            body=json.dumps(body).encode(),
            json=body,
        )

    def item_path(self, batch: FakeBatch) -> str:
        """The path a batch item would have been sent to on its own."""
        raise NotImplementedError

    async def send_results(
        self, request: web.BaseRequest, content: bytes, content_type: str
    ) -> web.StreamResponse:
        """Send a results body; with ``batch_hold["results"]`` set, its first half, then
        a stall (a client killed now has written some results), then the rest."""
        from aiohttp import web

        seconds = self.batch_hold.get("results")
        if not seconds:
            return web.Response(body=content, content_type=content_type)
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        await response.prepare(request)
        lines = content.splitlines(keepends=True)
        half = len(lines) // 2
        await response.write(b"".join(lines[:half]))
        await self.sleep(seconds)
        await response.write(b"".join(lines[half:]))
        await response.write_eof()
        return response

    async def after_create(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """What answers a create instead of the batch: :attr:`batch_lose_creates`' 500, or
        None (then :attr:`batch_hold` ``create`` applies)."""
        if self.batch_lose_creates:
            self.batch_lose_creates -= 1
            return await self.answer(request, recorded, ErrorReply(500))
        await self.hold("create")
        return None

    async def before_poll(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """:attr:`batch_poll_errors`' 503 instead of a poll's answer, or None."""
        if self.batch_poll_errors:
            self.batch_poll_errors -= 1
            return await self.answer(request, recorded, ErrorReply(503))
        return None

    async def hold(self, stage: str) -> None:
        """Stall ``stage``'s answer for :attr:`batch_hold` seconds, if set."""
        seconds = self.batch_hold.get(stage)
        if seconds:
            await self.sleep(seconds)

    def counts(self, batch: FakeBatch) -> dict[str, int]:
        """Requests by outcome (``processing`` until the batch ended)."""
        out = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.outcomes is None:
            out["processing"] = len(batch.items)
        else:
            for outcome in batch.outcomes:
                out[outcome.kind] += 1
        return out

"""Anthropic's Message Batches in :class:`~llmx_anthropic.testing.FakeAnthropicServer`.

``POST /v1/messages/batches`` (validated against Anthropic's published
``CreateMessageBatchParams``; a violation fails the test), ``GET /v1/messages/batches``
(newest first, ``limit``/``after_id``), ``GET /v1/messages/batches/{id}``,
``GET /v1/messages/batches/{id}/results`` (JSONL), ``POST .../{id}/cancel``. The
lifecycle (:mod:`llmx.testing._batchfake`) defaults to in_progress, in_progress, ended;
a cancel goes through canceling to ended; ``batch_expire`` makes the unanswered
requests of an ended batch expire.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from llmx.testing._batchfake import FakeBatch, FakeBatches

if TYPE_CHECKING:
    from aiohttp import web

    from llmx.testing._server import Handler, RecordedRequest

__all__ = ["AnthropicBatchFake"]

_PATH = "/v1/messages/batches"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


class AnthropicBatchFake(FakeBatches):
    """The batch half of the Anthropic fake."""

    batch_lifecycle = ("in_progress", "in_progress", "ended")
    batch_cancel_states = ("canceling", "ended")
    batch_success_states = frozenset({"ended"})

    if TYPE_CHECKING:  # the Anthropic fake's, which this is mixed into

        async def error(
            self,
            request: web.BaseRequest,
            status: int,
            type: str,
            message: str,
            headers: Mapping[str, str] | None = None,
        ) -> web.StreamResponse: ...

        def _error_object(self, status: int) -> dict[str, str]: ...

    def batch_route(self, method: str, path: str) -> Handler | None:
        """The handler of a Message Batches URL, or None."""
        if path == _PATH:
            return self._create if method == "POST" else self._list if method == "GET" else None
        if path.startswith(_PATH + "/"):
            rest = path.removeprefix(_PATH + "/")
            if rest.endswith("/cancel") and method == "POST":
                return self._cancel
            if rest.endswith("/results") and method == "GET":
                return self._results
            if "/" not in rest and method == "GET":
                return self._retrieve
        return None

    def item_path(self, batch: FakeBatch) -> str:
        """Batch items are Messages requests."""
        return "/v1/messages"

    async def _create(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        from llmx.testing.openapi import vendor_validator

        body = recorded.json
        vendor_validator("anthropic", "official").check(_PATH, "post", body)
        ids = [r["custom_id"] for r in body["requests"]]
        assert len(ids) == len(set(ids)), "custom_id repeats within the batch"
        for custom_id in ids:
            assert 1 <= len(custom_id) <= 64, custom_id
            assert all(c.isascii() and (c.isalnum() or c in "_-") for c in custom_id), custom_id
        items = [(r["custom_id"], r["params"]) for r in body["requests"]]
        model = items[0][1].get("model") if items else None
        batch = self.new_batch("msgbatch_fake", None, model, items)
        lost = await self.after_create(request, recorded)
        if lost is not None:
            return lost
        return await self.json_response(
            request, 200, self._object(batch), headers=self.response_headers()
        )

    async def _list(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        limit = int(recorded.query.get("limit", "20"))
        after = recorded.query.get("after_id")
        batches = sorted(self.batches.values(), key=lambda b: b.id, reverse=True)
        if after is not None:
            batches = [b for b in batches if b.id < after]
        page = batches[:limit]
        body = {
            "data": [self._object(b) for b in page],
            "has_more": len(batches) > limit,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        }
        return await self.json_response(request, 200, body, headers=self.response_headers())

    def _find(self, path: str) -> FakeBatch | None:
        rest = path.removeprefix(_PATH + "/")
        return self.batches.get(rest.split("/", 1)[0])

    async def _missing(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self.error(request, 404, "not_found_error", "Message batch not found")

    async def _retrieve(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        batch = self._find(recorded.path)
        if batch is None:
            return await self._missing(request)
        failed = await self.before_poll(request, recorded)
        if failed is not None:
            return failed
        self.advance(batch)
        await self.hold("poll")
        return await self.json_response(
            request, 200, self._object(batch), headers=self.response_headers()
        )

    async def _cancel(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        batch = self._find(recorded.path)
        if batch is None:
            return await self._missing(request)
        self.cancel(batch)
        if not batch.at_end:
            batch.step += 1
        return await self.json_response(
            request, 200, self._object(batch), headers=self.response_headers()
        )

    async def _results(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        batch = self._find(recorded.path)
        if batch is None:
            return await self._missing(request)
        if batch.outcomes is None:
            return await self.error(
                request, 400, "invalid_request_error", f"Message Batch {batch.id} has not yet ended"
            )
        rows = []
        for outcome in batch.outcomes:
            result: dict[str, Any] = {"type": outcome.kind}
            if outcome.kind == "succeeded":
                assert outcome.reply is not None
                assert outcome.recorded is not None
                result["message"] = self.reply_body(outcome.reply, outcome.recorded)
            elif outcome.kind == "errored":
                assert outcome.error is not None
                error = self._error_object(outcome.error.status)
                error = {
                    "type": outcome.error.type or error["type"],
                    "message": outcome.error.message or error["message"],
                }
                result["error"] = {
                    "type": "error",
                    "error": error,
                    "request_id": f"req_011CFakeBatch{self.next_id():010d}",
                }
            rows.append(
                json.dumps({"custom_id": outcome.custom_id, "result": result}).encode() + b"\n"
            )
        return await self.send_results(request, b"".join(rows), "application/binary")

    def _object(self, batch: FakeBatch) -> dict[str, Any]:
        counts = self.counts(batch)
        ended = batch.at_end
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.state,
            "request_counts": counts,
            "ended_at": _rfc3339(batch.created_at) if ended else None,
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + 86400),
            "archived_at": None,
            "cancel_initiated_at": _rfc3339(batch.created_at) if batch.cancelled else None,
            "results_url": f"{self.url}{_PATH}/{batch.id}/results" if ended else None,
        }

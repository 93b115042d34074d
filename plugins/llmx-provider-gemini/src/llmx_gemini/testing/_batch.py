"""Gemini's batch mode in :class:`~llmx_gemini.testing.FakeGeminiServer`.

``POST /v1beta/models/{model}:batchGenerateContent`` (validated against the discovery
document's ``BatchGenerateContentRequest``; a violation fails the test),
``GET /v1beta/batches`` (``pageSize``/``pageToken``), ``GET /v1beta/batches/{id}`` (the
long-running operation: ``metadata`` is the ``GenerateContentBatch``, ``done``, and once
done ``response.inlinedResponses``), ``POST /v1beta/batches/{id}:cancel``. The lifecycle
(:mod:`llmx.testing._batchfake`) defaults to PENDING, RUNNING, SUCCEEDED.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from llmx.testing._batchfake import FakeBatch, FakeBatches

if TYPE_CHECKING:
    from aiohttp import web

    from llmx.testing._server import Handler, RecordedRequest

__all__ = ["GeminiBatchFake"]

_HTTP_TO_GRPC = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    409: 10,
    429: 8,
    500: 13,
    501: 12,
    503: 14,
    504: 4,
}
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main."


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


class GeminiBatchFake(FakeBatches):
    """The batch half of the Gemini fake."""

    batch_lifecycle = ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED")
    batch_cancel_states = ("BATCH_STATE_CANCELLED",)
    batch_success_states = frozenset({"BATCH_STATE_SUCCEEDED"})

    if TYPE_CHECKING:  # the Gemini fake's, which this is mixed into

        async def error(
            self,
            request: web.BaseRequest,
            status: int,
            message: str,
            *,
            status_name: str | None = None,
            details: Sequence[Mapping[str, Any]] = (),
            headers: Mapping[str, str] | None = None,
        ) -> web.StreamResponse: ...

        def _error_object(self, status: int) -> dict[str, Any]: ...

    def batch_route(self, method: str, path: str) -> Handler | None:
        """The handler of a batch mode URL, or None."""
        if (
            method == "POST"
            and path.startswith("/v1beta/models/")
            and path.endswith(":batchGenerateContent")
        ):
            return self._create
        if path == "/v1beta/batches" and method == "GET":
            return self._list
        if path.startswith("/v1beta/batches/"):
            if path.endswith(":cancel") and method == "POST":
                return self._cancel
            if method == "GET":
                return self._retrieve
        return None

    def item_path(self, batch: FakeBatch) -> str:
        """Batch items are generateContent requests."""
        return f"/v1beta/models/{batch.model}:generateContent"

    async def _create(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        from llmx.testing.openapi import vendor_validator

        body = recorded.json
        vendor_validator("gemini", "official").check(
            "generativelanguage.models.batchGenerateContent", "post", body
        )
        model = recorded.path.removeprefix("/v1beta/models/").removesuffix(":batchGenerateContent")
        batch_spec = body["batch"]
        assert batch_spec["model"] == f"models/{model}", "batch.model differs from the URL's"
        rows = batch_spec["inputConfig"]["requests"]["requests"]
        items = [
            (str((r.get("metadata") or {}).get("key", i)), r["request"]) for i, r in enumerate(rows)
        ]
        batch = self.new_batch("batches/fake", batch_spec["displayName"], model, items)
        batch.extra["display_name"] = batch_spec["displayName"]
        lost = await self.after_create(request, recorded)
        if lost is not None:
            return lost
        return await self.json_response(
            request, 200, self._operation(batch), headers=self.response_headers()
        )

    async def _list(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        size = int(recorded.query.get("pageSize", "50"))
        start = int(recorded.query.get("pageToken", "0"))
        batches = sorted(self.batches.values(), key=lambda b: b.id, reverse=True)
        page = batches[start : start + size]
        body: dict[str, Any] = {"operations": [self._operation(b) for b in page]}
        if start + size < len(batches):
            body["nextPageToken"] = str(start + size)
        return await self.json_response(request, 200, body, headers=self.response_headers())

    def _find(self, path: str) -> FakeBatch | None:
        return self.batches.get(path.removeprefix("/v1beta/").removesuffix(":cancel"))

    async def _missing(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self.error(request, 404, "Batch not found")

    async def _retrieve(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        batch = self._find(recorded.path)
        if batch is None:
            return await self._missing(request)
        failed = await self.before_poll(request, recorded)
        if failed is not None:
            return failed
        if batch.outcomes is None:
            self.advance(batch)
            await self.hold("poll")
        else:
            await self.hold("results")
        return await self.json_response(
            request, 200, self._operation(batch), headers=self.response_headers()
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
        if batch.at_end and batch.outcomes is None:
            self.finish(batch)
        return await self.json_response(request, 200, {}, headers=self.response_headers())

    def _operation(self, batch: FakeBatch) -> dict[str, Any]:
        counts = self.counts(batch)
        done = batch.outcomes is not None
        meta: dict[str, Any] = {
            "@type": _TYPE + "GenerateContentBatch",
            "model": f"models/{batch.model}",
            "displayName": batch.extra.get("display_name", ""),
            "createTime": _timestamp(batch.created_at),
            "updateTime": _timestamp(time.time()),
            "batchStats": {
                "requestCount": str(len(batch.items)),
                "successfulRequestCount": str(counts["succeeded"]),
                "failedRequestCount": str(counts["errored"]),
                "pendingRequestCount": str(counts["processing"]),
            },
            "state": batch.state,
            "name": batch.id,
        }
        op: dict[str, Any] = {"name": batch.id, "metadata": meta, "done": done}
        if done:
            meta["endTime"] = _timestamp(time.time())
            rows = []
            for outcome in batch.outcomes or ():
                row: dict[str, Any] = {"metadata": {"key": outcome.custom_id}}
                if outcome.kind == "succeeded":
                    assert outcome.reply is not None
                    assert outcome.recorded is not None
                    row["response"] = self.reply_body(outcome.reply, outcome.recorded)
                elif outcome.kind == "errored":
                    assert outcome.error is not None
                    error = self._error_object(outcome.error.status)
                    row["error"] = {
                        "code": _HTTP_TO_GRPC.get(outcome.error.status, 2),
                        "message": outcome.error.message or error["message"],
                    }
                else:
                    continue  # expired or cancelled: no response
                rows.append(row)
            op["response"] = {
                "@type": _TYPE + "GenerateContentBatchOutput",
                "inlinedResponses": {"inlinedResponses": rows},
            }
        return op

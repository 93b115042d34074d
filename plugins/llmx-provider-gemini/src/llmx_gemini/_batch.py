"""Gemini's batch mode for ``llmx batch --provider-batch`` (:class:`llmx.plugin.BatchProvider`).

The wire (https://ai.google.dev/gemini-api/docs/batch-mode, https://ai.google.dev/api/batch-mode,
and ``models.batchGenerateContent`` / ``batches.*`` in the discovery document):

* ``POST /models/{model}:batchGenerateContent`` ``{"batch": {"model", "displayName",
  "inputConfig": {"requests": {"requests": [{"request", "metadata"}]}}}}`` — inline
  requests, each ``request`` being exactly the body :meth:`GeminiProvider.complete`
  sends and ``metadata.key`` the custom id. Inline requests suit batches whose "total
  request size" stays under 20 MB (the documentation's limit; larger ones go through the
  File API, which llmx does not use: it splits into several 20 MB batches instead). The
  answer is a long-running ``Operation`` named ``batches/{id}``; ``displayName`` is
  llmx's chunk key, which :meth:`GeminiBatchMixin.find_batch` looks for (``GET /batches``).
* ``GET /batches/{id}``: the operation; ``metadata.state`` BATCH_STATE_PENDING, RUNNING,
  SUCCEEDED, FAILED, CANCELLED, EXPIRED; ``metadata.batchStats``; once done, the
  responses (``response.inlinedResponses.inlinedResponses``: ``{"response" | "error",
  "metadata"}`` in input order), a failed batch's reason in ``error``.
* ``POST /batches/{id}:cancel``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from llmx import LlmxError
from llmx.http import dumps, json_object
from llmx.plugin import BatchJob, BatchLimits, BatchResult, BatchStatus
from llmx_gemini._wire import build_body, parse_response

if TYPE_CHECKING:
    from yarl import URL

    from llmx import Request
    from llmx.http import Endpoint
    from llmx.plugin import BatchState

__all__ = ["GeminiBatchMixin"]

MAX_BYTES = 20 * 1000 * 1000
MAX_REQUESTS = 1_000_000  # no count limit is documented for inline requests: the size bounds it
_STATES: dict[str, BatchState] = {
    "BATCH_STATE_UNSPECIFIED": "validating",
    "BATCH_STATE_PENDING": "validating",
    "BATCH_STATE_RUNNING": "in_progress",
    "BATCH_STATE_SUCCEEDED": "ended",
    "BATCH_STATE_FAILED": "ended",
    "BATCH_STATE_CANCELLED": "ended",
    "BATCH_STATE_EXPIRED": "ended",
}
_GRPC_TO_HTTP = {
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
}
"""google.rpc.Code -> the HTTP status Google's REST mapping gives it."""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class GeminiBatchMixin:
    """Batch mode on top of the generateContent provider (its body builder and parser)."""

    __slots__ = ()

    _http: Endpoint
    _safety: dict[str, str]
    _url: Callable[[str, str], URL]

    def batch_limits(self, model: str) -> BatchLimits:
        """20 MB of inline requests per batch (Gemini's batch mode documentation)."""
        return BatchLimits(MAX_REQUESTS, MAX_BYTES, line_overhead=1, base_overhead=400)

    def batch_line(self, custom_id: str, request: Request) -> bytes:
        """``{"request", "metadata": {"key"}}`` with the body ``complete`` sends."""
        body = build_body(request, provider=self._http.name, safety_settings=self._safety)
        return dumps({"request": body, "metadata": {"key": custom_id}})

    def _batch_url(self, job_id: str, suffix: str = "") -> URL:
        from yarl import URL

        name = quote(job_id, safe="/-._~")
        return URL(f"{self._http.url_base}/{name}{suffix}", encoded=False)

    def _object(self, data: bytes) -> dict[str, Any]:
        return json_object(data, provider=self._http.name, model=None)

    def _job(self, op: Mapping[str, Any]) -> BatchJob:
        name = op.get("name")
        if not isinstance(name, str) or not name.startswith("batches/"):
            raise self._http.malformed(
                what="batch operation without a name", data=json.dumps(op), model=None
            )
        return BatchJob(name)

    async def submit_batch(
        self,
        model: str,
        lines: Sequence[bytes],
        *,
        key: str,
        checkpoint: Mapping[str, str],
        save: Callable[[Mapping[str, str]], None],
    ) -> BatchJob:
        """One ``batchGenerateContent`` with the requests inline."""
        head = dumps({"model": f"models/{model.removeprefix('models/')}", "displayName": key})[:-1]
        body = head + b',"inputConfig":{"requests":{"requests":[' + b",".join(lines) + b"]}}}"
        data = await self._http.post(
            self._url(model, "batchGenerateContent"), b'{"batch":' + body + b"}", model
        )
        return self._job(self._object(data))

    async def find_batch(
        self, model: str, *, key: str, since: float, count: int
    ) -> BatchJob | None:
        """The batch whose ``displayName`` is ``key``."""
        token: str | None = None
        from yarl import URL

        url = URL(f"{self._http.url_base}/batches")
        while True:
            params = {"pageSize": "100"} | ({"pageToken": token} if token else {})
            page = await self._http.get(url, params=params, doing="listing batches")
            ops = page.get("operations") if isinstance(page, dict) else None
            for op in ops or ():
                if isinstance(op, dict) and (op.get("metadata") or {}).get("displayName") == key:
                    return self._job(op)
            token = page.get("nextPageToken") if isinstance(page, dict) else None
            if not ops or not token:
                return None

    def _status(self, op: Mapping[str, Any]) -> BatchStatus:
        meta = op.get("metadata") or {}
        vendor = meta.get("state") if isinstance(meta, dict) else None
        if not isinstance(vendor, str) or vendor not in _STATES:
            raise self._http.malformed(what="batch state", data=json.dumps(op), model=None)
        stats = meta.get("batchStats") or {}
        counts = {
            "requests": _int(stats.get("requestCount")),
            "succeeded": _int(stats.get("successfulRequestCount")),
            "failed": _int(stats.get("failedRequestCount")),
            "pending": _int(stats.get("pendingRequestCount")),
        }
        error = op.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        return BatchStatus(
            _STATES[vendor], vendor, counts, message if isinstance(message, str) else None
        )

    async def poll_batch(self, job: BatchJob) -> BatchStatus:
        """``GET /batches/{id}``."""
        op = await self._http.get(self._batch_url(job.id), doing="polling a batch")
        return self._status(op)

    async def cancel_batch(self, job: BatchJob) -> BatchStatus:
        """``POST /batches/{id}:cancel``, then its state."""
        await self._http.post(self._batch_url(job.id, ":cancel"), b"{}", None)
        return await self.poll_batch(job)

    async def batch_results(
        self, job: BatchJob, requests: Mapping[str, Request]
    ) -> AsyncIterator[BatchResult]:
        """The inline responses of the done operation, in input order."""
        op = await self._http.get(self._batch_url(job.id), doing="reading batch results")
        for result in self._results_of(op, requests):
            yield result

    def _results_of(
        self, op: Mapping[str, Any], sent: Mapping[str, Request]
    ) -> Iterator[BatchResult]:
        """The results in a done operation (see :meth:`batch_results`)."""
        status = self._status(op)
        holder = _dict(op.get("response")) or _dict(_dict(op.get("metadata")).get("output"))
        inlined = _dict(holder.get("inlinedResponses")).get("inlinedResponses")
        if not isinstance(inlined, list):
            inlined = []
        order = list(sent)
        name = self._http.name
        answered: set[str] = set()
        for index, row in enumerate(inlined):
            if not isinstance(row, dict):
                continue
            key = _dict(row.get("metadata")).get("key")
            if not isinstance(key, str):
                key = order[index] if index < len(order) else None
            request = sent.get(key) if isinstance(key, str) else None
            if request is None or key is None:
                continue
            answered.add(key)
            if isinstance(row.get("response"), dict):
                try:
                    answer = parse_response(dumps(row["response"]), request, name)
                except LlmxError as err:
                    yield BatchResult(key, "errored", error=err)
                    continue
                yield BatchResult(key, "succeeded", response=answer)
            elif isinstance(row.get("error"), dict):
                error = row["error"]
                status_code = _GRPC_TO_HTTP.get(_int(error.get("code")), 500)
                body = dumps({"error": {"code": status_code, **error}})
                yield BatchResult(
                    key, "errored", error=self._http.error(status_code, {}, body, request.model)
                )
        if status.vendor_state in ("BATCH_STATE_EXPIRED", "BATCH_STATE_CANCELLED"):
            kind = "expired" if status.vendor_state.endswith("EXPIRED") else "canceled"
            for key in order:
                if key not in answered:
                    yield BatchResult(key, kind)  # type: ignore[arg-type]

"""OpenAI's Batch API for ``llmx batch --provider-batch`` (:class:`llmx.plugin.BatchProvider`).

The wire (https://platform.openai.com/docs/api-reference/batch, and ``createBatch`` /
``createFile`` in OpenAI's OpenAPI document):

* ``POST /files`` (multipart, ``purpose=batch``) uploads a JSONL file, one line per
  request: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``,
  the body being exactly what :meth:`OpenAIProvider.complete` sends. "The file can
  contain up to 50,000 requests, and can be up to 200 MB in size."
* ``POST /batches`` ``{"input_file_id", "endpoint", "completion_window": "24h",
  "metadata"}`` creates the batch; llmx tags it with ``metadata.llmx_batch_key`` so a
  run that lost the create's answer finds it (``GET /batches``) instead of paying twice.
* ``GET /batches/{id}``: ``status`` validating, in_progress, finalizing, completed,
  failed, expired, cancelling, cancelled; ``request_counts`` {total, completed, failed}.
* ``GET /files/{output_file_id}/content`` and ``.../{error_file_id}/content``: JSONL of
  ``{"custom_id", "response": {"status_code", "body"}, "error"}``; an expired or
  cancelled batch lists its unfinished requests in the error file with the codes
  ``batch_expired`` / ``batch_cancelled``.
* ``POST /batches/{id}/cancel``.

Azure OpenAI (the ``azure`` type, :class:`~llmx_openai.AzureOpenAIProvider`) serves the
same API under ``{endpoint}/openai/files`` and ``/openai/batches`` with ``api-version``
(2024-10-21 GA; from 2024-07-01-preview), with three differences it overrides:
each line's ``url`` and the create's ``endpoint`` are ``/chat/completions``, each body
names its (Global Batch) deployment as ``model``, and a file takes up to 100,000
requests (200 MB).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmx import LlmxError
from llmx.http import dumps, json_object
from llmx.plugin import BatchJob, BatchLimits, BatchResult, BatchStatus
from llmx_openai._wire import build_body, error_from_event, parse_completion

if TYPE_CHECKING:
    from yarl import URL

    from llmx import Request
    from llmx.http import Endpoint
    from llmx.plugin import BatchState

__all__ = ["OpenAIBatchMixin"]

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
ENDPOINT = "/v1/chat/completions"
KEY_FIELD = "llmx_batch_key"

_STATES: dict[str, BatchState] = {
    "validating": "validating",
    "in_progress": "in_progress",
    "finalizing": "finalizing",
    "cancelling": "canceling",
    "completed": "ended",
    "failed": "ended",
    "expired": "ended",
    "cancelled": "ended",
}
_ITEM_STATUS = {"batch_expired": "expired", "batch_cancelled": "canceled"}


class OpenAIBatchMixin:
    """The Batch API on top of the chat provider (its endpoint, body builder and parser).

    A variant of the API (Azure's) overrides :attr:`batch_endpoint`,
    :meth:`batch_limits`, :meth:`_batch_body` and :meth:`_url`.
    """

    __slots__ = ()

    _http: Endpoint
    _max_tokens_field: str

    batch_endpoint = ENDPOINT
    """Each line's ``url`` and the create's ``endpoint``."""

    def batch_limits(self, model: str) -> BatchLimits:
        """50,000 requests or 200 MB per input file (OpenAI's ``createBatch``)."""
        return BatchLimits(MAX_REQUESTS, MAX_BYTES, line_overhead=1)

    def _batch_body(self, request: Request) -> dict[str, Any]:
        """The chat completions body ``complete`` sends for ``request``."""
        return build_body(
            request,
            provider=self._http.name,
            max_tokens_field=self._max_tokens_field,
            stream=False,
            stream_usage=False,
        )

    def batch_line(self, custom_id: str, request: Request) -> bytes:
        """One line of the input file: the chat completions body ``complete`` sends."""
        body = self._batch_body(request)
        return dumps(
            {"custom_id": custom_id, "method": "POST", "url": self.batch_endpoint, "body": body}
        )

    def _url(self, path: str, **query: str) -> URL:
        """The URL of a Files or Batch API ``path`` (``/files``, ``/batches/...``)."""
        return self._http.url(path, **query)

    def _object(self, data: bytes) -> dict[str, Any]:
        return json_object(data, provider=self._http.name, model=None)

    async def submit_batch(
        self,
        model: str,
        lines: Sequence[bytes],
        *,
        key: str,
        checkpoint: Mapping[str, str],
        save: Callable[[Mapping[str, str]], None],
    ) -> BatchJob:
        """Upload the input file (unless ``checkpoint`` has it), then create the batch."""
        import aiohttp

        file_id = checkpoint.get("input_file_id")
        if not file_id:
            form = aiohttp.FormData()
            form.add_field("purpose", "batch")
            form.add_field(
                "file",
                io.BytesIO(b"".join(line + b"\n" for line in lines)),  # streamed, not one write
                filename=f"{key}.jsonl",
                content_type="application/jsonl",
            )
            data = await self._http.post_form(
                self._url("/files"), form, model, doing="uploading the batch input file"
            )
            file_id = self._id(self._object(data), "uploaded file")
            save({"input_file_id": file_id})
        body = {
            "input_file_id": file_id,
            "endpoint": self.batch_endpoint,
            "completion_window": "24h",
            "metadata": {KEY_FIELD: key},
        }
        data = await self._http.post(self._url("/batches"), dumps(body), model)
        return BatchJob(self._id(self._object(data), "batch"), {"input_file_id": file_id})

    def _id(self, obj: Mapping[str, Any], what: str) -> str:
        value = obj.get("id")
        if not isinstance(value, str) or not value:
            raise self._http.malformed(
                what=f"{what} without an id", data=json.dumps(obj), model=None
            )
        return value

    async def find_batch(
        self, model: str, *, key: str, since: float, count: int
    ) -> BatchJob | None:
        """The batch whose ``metadata.llmx_batch_key`` is ``key`` (newest first, back to
        ``since``)."""
        after: str | None = None
        while True:
            params = {"limit": "100"} | ({"after": after} if after else {})
            page = await self._http.get(
                self._url("/batches"), params=params, doing="listing batches"
            )
            batches = page.get("data") if isinstance(page, dict) else None
            if not isinstance(batches, list) or not batches:
                return None
            for batch in batches:
                if not isinstance(batch, dict):
                    continue
                if (batch.get("metadata") or {}).get(KEY_FIELD) == key:
                    files = {"input_file_id": str(batch.get("input_file_id") or "")}
                    return BatchJob(self._id(batch, "batch"), files)
            last = batches[-1]
            created = last.get("created_at") if isinstance(last, dict) else None
            if not page.get("has_more") or (
                isinstance(created, (int, float)) and created < since - 600
            ):
                return None
            after = str(last.get("id"))

    def _status(self, obj: Mapping[str, Any]) -> BatchStatus:
        vendor = obj.get("status")
        if not isinstance(vendor, str) or vendor not in _STATES:
            raise self._http.malformed(what="batch status", data=json.dumps(obj), model=None)
        counts = obj.get("request_counts") or {}
        message = None
        errors = (
            (obj.get("errors") or {}).get("data") if isinstance(obj.get("errors"), dict) else None
        )
        if errors:
            message = "; ".join(
                f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)
            )
        return BatchStatus(
            _STATES[vendor],
            vendor,
            {k: v for k, v in counts.items() if isinstance(v, int)},
            message,
        )

    async def poll_batch(self, job: BatchJob) -> BatchStatus:
        """``GET /batches/{id}``."""
        obj = await self._http.get(self._url(f"/batches/{job.id}"), doing="polling a batch")
        return self._status(obj)

    async def cancel_batch(self, job: BatchJob) -> BatchStatus:
        """``POST /batches/{id}/cancel``."""
        data = await self._http.post(self._url(f"/batches/{job.id}/cancel"), b"", None)
        return self._status(self._object(data))

    async def batch_results(
        self, job: BatchJob, requests: Mapping[str, Request]
    ) -> AsyncIterator[BatchResult]:
        """The output file's answers, then the error file's errors."""
        obj = await self._http.get(self._url(f"/batches/{job.id}"), doing="reading a batch")
        for field in ("output_file_id", "error_file_id"):
            file_id = obj.get(field)
            if not isinstance(file_id, str) or not file_id:
                continue
            url = self._url(f"/files/{file_id}/content")
            async for line in self._http.get_lines(url, doing="reading batch results"):
                result = self._result(line, requests)
                if result is not None:
                    yield result

    def _result(self, line: bytes, sent: Mapping[str, Request]) -> BatchResult | None:
        name = self._http.name
        try:
            row = json.loads(line)
        except ValueError:
            raise self._http.malformed(what="batch result line", data=line, model=None) from None
        custom_id = row.get("custom_id") if isinstance(row, dict) else None
        request = sent.get(custom_id) if isinstance(custom_id, str) else None
        if request is None:
            return None
        model = request.model
        error = row.get("error")
        if isinstance(error, dict) and error.get("code") in _ITEM_STATUS:
            return BatchResult(custom_id, _ITEM_STATUS[error["code"]])  # type: ignore[arg-type]
        response = row.get("response")
        if isinstance(response, dict):
            status = response.get("status_code")
            body = response.get("body")
            if status == 200 and isinstance(body, dict):
                try:
                    answer = parse_completion(dumps(body), request, name)
                except LlmxError as err:  # the parser's typed error is that item's
                    return BatchResult(custom_id, "errored", error=err)
                return BatchResult(custom_id, "succeeded", response=answer)
            if isinstance(status, int):
                err = self._http.error(status, {}, dumps(body if body is not None else {}), model)
                return BatchResult(custom_id, "errored", error=err)
        if isinstance(error, dict):
            return BatchResult(custom_id, "errored", error=error_from_event(error, name, model))
        return BatchResult(
            custom_id,
            "errored",
            error=self._http.malformed(what="batch result", data=line, model=model),
        )

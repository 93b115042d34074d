"""Anthropic's Message Batches for ``llmx batch --provider-batch``
(:class:`llmx.plugin.BatchProvider`).

The wire (https://docs.claude.com/en/api/creating-message-batches, and
``message_batches_*`` in Anthropic's OpenAPI document):

* ``POST /v1/messages/batches`` ``{"requests": [{"custom_id", "params"}]}``, ``params``
  being exactly the body :meth:`AnthropicProvider.complete` sends. "Batches may contain
  up to 100,000 requests and be up to 256 MB in total size." ``custom_id`` matches
  ``^[a-zA-Z0-9_-]{1,64}$`` (llmx maps other ids, see :func:`llmx._provider_batch.vendor_id`).
* ``GET /v1/messages/batches/{id}``: ``processing_status`` in_progress, canceling,
  ended; ``request_counts`` {processing, succeeded, errored, canceled, expired}.
* ``GET /v1/messages/batches/{id}/results``: JSONL of ``{"custom_id", "result": {"type":
  "succeeded", "message"} | {"type": "errored", "error"} | {"type": "canceled"} |
  {"type": "expired"}}``. llmx reads it from the configured ``base_url``, not from the
  batch's ``results_url``, so the key never travels to a host the config does not name.
* ``POST /v1/messages/batches/{id}/cancel``.

A batch has no metadata: :meth:`AnthropicBatchMixin.find_batch` (a create whose answer was
lost) takes the batch created since the create started with exactly that many requests,
listing newest first.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from llmx import LlmxError
from llmx.http import dumps, json_object
from llmx.plugin import BatchJob, BatchLimits, BatchResult, BatchStatus
from llmx_anthropic._models import FIXED_SAMPLING, base_id
from llmx_anthropic._wire import build_body, error_from_event, parse_message

if TYPE_CHECKING:
    from llmx import Request
    from llmx.http import Endpoint
    from llmx.plugin import BatchState

__all__ = ["AnthropicBatchMixin"]

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
_BATCHES = "/v1/messages/batches"
_STATES: dict[str, BatchState] = {
    "in_progress": "in_progress",
    "canceling": "canceling",
    "ended": "ended",
}
_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
"""The HTTP status of each error type (Anthropic's errors page), as a result has none."""
_KINDS = frozenset({"succeeded", "errored", "canceled", "expired"})


def _time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class AnthropicBatchMixin:
    """Message Batches on top of the Messages provider (its body builder and parser)."""

    __slots__ = ()

    _http: Endpoint
    _max_tokens: Callable[[str], int]  # the provider's default max_tokens for a model

    def batch_limits(self, model: str) -> BatchLimits:
        """100,000 requests or 256 MB per batch (Anthropic's documentation)."""
        return BatchLimits(MAX_REQUESTS, MAX_BYTES, line_overhead=1, base_overhead=15)

    def batch_line(self, custom_id: str, request: Request) -> bytes:
        """``{"custom_id", "params"}`` with the Messages body ``complete`` sends."""
        params = build_body(
            request,
            provider=self._http.name,
            max_tokens=self._max_tokens(request.model),
            stream=False,
            fixed_sampling=base_id(request.model) in FIXED_SAMPLING,
        )
        return dumps({"custom_id": custom_id, "params": params})

    def _object(self, data: bytes) -> dict[str, Any]:
        return json_object(data, provider=self._http.name, model=None)

    def _job(self, obj: Mapping[str, Any]) -> BatchJob:
        value = obj.get("id")
        if not isinstance(value, str) or not value:
            raise self._http.malformed(
                what="message batch without an id", data=json.dumps(obj), model=None
            )
        return BatchJob(value)

    async def submit_batch(
        self,
        model: str,
        lines: Sequence[bytes],
        *,
        key: str,
        checkpoint: Mapping[str, str],
        save: Callable[[Mapping[str, str]], None],
    ) -> BatchJob:
        """One create with every request inline (nothing to upload first)."""
        body = b'{"requests":[' + b",".join(lines) + b"]}"
        data = await self._http.post(self._http.url(_BATCHES), body, model)
        return self._job(self._object(data))

    async def find_batch(
        self, model: str, *, key: str, since: float, count: int
    ) -> BatchJob | None:
        """The newest batch created since ``since`` (less a minute of clock skew) with
        ``count`` requests."""
        after: str | None = None
        while True:
            params = {"limit": "100"} | ({"after_id": after} if after else {})
            page = await self._http.get(
                self._http.url(_BATCHES), params=params, doing="listing message batches"
            )
            batches = page.get("data") if isinstance(page, dict) else None
            if not isinstance(batches, list) or not batches:
                return None
            for batch in batches:
                if not isinstance(batch, dict):
                    continue
                created = _time(batch.get("created_at"))
                if created is not None and created < since - 60:
                    return None
                counts = batch.get("request_counts") or {}
                total = sum(v for v in counts.values() if isinstance(v, int))
                if total == count:
                    return self._job(batch)
            if not page.get("has_more"):
                return None
            after = str(page.get("last_id") or batches[-1].get("id"))

    def _status(self, obj: Mapping[str, Any]) -> BatchStatus:
        vendor = obj.get("processing_status")
        if not isinstance(vendor, str) or vendor not in _STATES:
            raise self._http.malformed(
                what="message batch status", data=json.dumps(obj), model=None
            )
        counts = obj.get("request_counts") or {}
        return BatchStatus(
            _STATES[vendor], vendor, {k: v for k, v in counts.items() if isinstance(v, int)}
        )

    async def poll_batch(self, job: BatchJob) -> BatchStatus:
        """``GET /v1/messages/batches/{id}``."""
        obj = await self._http.get(
            self._http.url(f"{_BATCHES}/{job.id}"), doing="polling a message batch"
        )
        return self._status(obj)

    async def cancel_batch(self, job: BatchJob) -> BatchStatus:
        """``POST /v1/messages/batches/{id}/cancel``."""
        data = await self._http.post(self._http.url(f"{_BATCHES}/{job.id}/cancel"), b"", None)
        return self._status(self._object(data))

    async def batch_results(
        self, job: BatchJob, requests: Mapping[str, Request]
    ) -> AsyncIterator[BatchResult]:
        """The results JSONL, each message through the provider's parser."""
        url = self._http.url(f"{_BATCHES}/{job.id}/results")
        async for line in self._http.get_lines(url, doing="reading message batch results"):
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
        if request is None or custom_id is None:
            return None
        result = row.get("result")
        kind = result.get("type") if isinstance(result, dict) else None
        if kind not in _KINDS or not isinstance(result, dict):
            return BatchResult(
                custom_id,
                "errored",
                error=self._http.malformed(what="batch result", data=line, model=request.model),
            )
        if kind == "succeeded":
            try:
                answer = parse_message(dumps(result.get("message")), request, name)
            except LlmxError as err:
                return BatchResult(custom_id, "errored", error=err)
            return BatchResult(custom_id, "succeeded", response=answer)
        if kind == "errored":
            error = result.get("error")
            inner = error.get("error") if isinstance(error, dict) and "error" in error else error
            status = _STATUS.get(inner.get("type")) if isinstance(inner, dict) else None
            if status is None:
                return BatchResult(
                    custom_id, "errored", error=error_from_event(inner, name, request.model)
                )
            # The error the Messages API would have answered with that status and body.
            body = dumps({"type": "error", "error": inner})
            return BatchResult(
                custom_id, "errored", error=self._http.error(status, {}, body, request.model)
            )
        return BatchResult(custom_id, kind)

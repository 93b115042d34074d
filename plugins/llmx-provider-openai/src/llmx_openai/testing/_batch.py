"""OpenAI's Files and Batch API in :class:`~llmx_openai.testing.FakeOpenAIServer`.

``POST /v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches`` (newest first, ``after``/``limit``),
``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``. Every uploaded line and
every create body is validated against OpenAI's published OpenAPI document (the
``createBatch`` body, each line's ``body`` as ``CreateChatCompletionRequest``); a
violation fails the test (:attr:`~llmx.testing.FakeServer.errors`). The lifecycle is
scripted as :mod:`llmx.testing._batchfake` describes; the default is validating,
in_progress, finalizing, completed, one step per poll.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from llmx.testing._batchfake import FakeBatch, FakeBatches

if TYPE_CHECKING:
    from aiohttp import web

    from llmx.testing._server import Handler, RecordedRequest

__all__ = ["OpenAIBatchFake"]

ENDPOINT = "/v1/chat/completions"


def _form(recorded: RecordedRequest) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart body: name -> (filename, bytes)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    head = f"Content-Type: {recorded.headers.get('content-type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + recorded.body)
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return out


class OpenAIBatchFake(FakeBatches):
    """The batch half of the OpenAI fake (mixed into :class:`FakeOpenAIServer`).

    Azure's fake serves the same under ``/openai`` (:attr:`batch_prefix`), with its own
    line and create checks (:meth:`check_batch_line`, :meth:`check_batch_create`) and
    item path."""

    batch_prefix = "/v1"
    """Where ``/files`` and ``/batches`` are served."""
    batch_endpoint = ENDPOINT
    """Each line's ``url`` and the create's ``endpoint``."""

    batch_lifecycle = ("validating", "in_progress", "finalizing", "completed")
    batch_cancel_states = ("cancelling", "cancelled")
    batch_success_states = frozenset({"completed"})

    if TYPE_CHECKING:  # the OpenAI fake's, which this is mixed into

        async def error(
            self,
            request: web.BaseRequest,
            status: int,
            message: str,
            *,
            type: str | None = ...,
            code: str | None = ...,
            param: str | None = ...,
            headers: Any = ...,
        ) -> web.StreamResponse: ...

        def _headers(self, extra: Any = None) -> dict[str, str]: ...

        def _error_object(self, status: int) -> dict[str, Any]: ...

    def init_openai_batches(self) -> None:
        """Set up the files and batches (called by the fake's ``__init__``)."""
        self.init_batches()
        self.files: dict[str, tuple[str, bytes]] = {}
        """Uploaded and generated files: id -> (purpose, content)."""
        self.batch_failure: str | None = None
        """Set to a message: every new batch fails validation with it (``failed``)."""

    def batch_route(self, method: str, path: str) -> Handler | None:
        """The handler of a Files or Batch API URL, or None."""
        if not path.startswith(self.batch_prefix + "/"):
            return None
        path = path.removeprefix(self.batch_prefix)
        if path == "/files" and method == "POST":
            return self._upload
        if path.startswith("/files/") and path.endswith("/content") and method == "GET":
            return self._content
        if path == "/batches":
            return self._create if method == "POST" else self._list if method == "GET" else None
        if path.startswith("/batches/"):
            rest = path.removeprefix("/batches/")
            if rest.endswith("/cancel") and method == "POST":
                return self._cancel
            if "/" not in rest and method == "GET":
                return self._retrieve
        return None

    def item_path(self, batch: FakeBatch) -> str:
        """Batch items are chat completion requests."""
        return ENDPOINT

    def _validator(self) -> Any:
        from llmx.testing.openapi import vendor_validator

        return vendor_validator("openai", "official")

    def check_batch_line(self, body: Any) -> None:
        """Validate one line's ``body`` (OpenAI's ``CreateChatCompletionRequest``)."""
        self._validator().check("/chat/completions", "post", body)

    def check_batch_create(self, body: Any) -> None:
        """Validate a create's body (OpenAI's ``createBatch``)."""
        self._validator().check("/batches", "post", body)

    async def _upload(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        form = _form(recorded)
        purpose = form.get("purpose", (None, b""))[1].decode()
        filename, content = form.get("file", (None, b""))
        if purpose not in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
            return await self.error(request, 400, f"Invalid purpose {purpose!r}", param="purpose")
        if purpose == "batch":
            seen = set()
            for number, line in enumerate(content.splitlines(), 1):
                row = json.loads(line)
                assert set(row) == {"custom_id", "method", "url", "body"}, (
                    f"line {number}: {row.keys()}"
                )
                assert row["method"] == "POST", f"line {number}"
                assert row["url"] == self.batch_endpoint, f"line {number}"
                assert isinstance(row["custom_id"], str), f"line {number}"
                assert row["custom_id"] not in seen, f"line {number}: repeated custom_id"
                seen.add(row["custom_id"])
                self.check_batch_line(row["body"])
        file_id = f"file-fake{len(self.files) + 1:06d}"
        self.files[file_id] = (purpose, content)
        body = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename or "upload.jsonl",
            "purpose": purpose,
            "status": "processed",
        }
        await self.hold("upload")
        return await self.json_response(request, 200, body, headers=self._headers())

    async def _content(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        file_id = recorded.path.removeprefix(f"{self.batch_prefix}/files/")
        file_id = file_id.removesuffix("/content")
        if file_id not in self.files:
            return await self.error(request, 404, f"No such File object: {file_id}", param="id")
        return await self.send_results(request, self.files[file_id][1], "application/octet-stream")

    async def _create(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        self.check_batch_create(body)
        file_id = body["input_file_id"]
        if file_id not in self.files:
            return await self.error(
                request, 400, f"No such File object: {file_id}", param="input_file_id"
            )
        lines = [json.loads(line) for line in self.files[file_id][1].splitlines()]
        items = [(row["custom_id"], row["body"]) for row in lines]
        model = items[0][1].get("model") if items else None
        metadata = body.get("metadata") or {}
        batch = self.new_batch("batch_fake", metadata.get("llmx_batch_key"), model, items)
        if self.batch_failure is not None:
            batch.lifecycle = ["validating", "failed"]
        batch.extra = {"input_file_id": file_id, "metadata": metadata, "query": recorded.query}
        lost = await self.after_create(request, recorded)
        if lost is not None:
            return lost
        return await self.json_response(
            request, 200, self._batch_object(batch), headers=self._headers()
        )

    async def _list(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        limit = int(recorded.query.get("limit", "20"))
        after = recorded.query.get("after")
        batches = sorted(self.batches.values(), key=lambda b: b.id, reverse=True)
        if after is not None:
            batches = [b for b in batches if b.id < after]
        page = batches[:limit]
        body = {
            "object": "list",
            "data": [self._batch_object(b) for b in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(batches) > limit,
        }
        return await self.json_response(request, 200, body, headers=self._headers())

    def _find(self, path: str) -> FakeBatch | None:
        batch_id = path.removeprefix(f"{self.batch_prefix}/batches/").removesuffix("/cancel")
        return self.batches.get(batch_id)

    async def _retrieve(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        batch = self._find(recorded.path)
        if batch is None:
            return await self.error(request, 404, "No batch found", type="invalid_request_error")
        failed = await self.before_poll(request, recorded)
        if failed is not None:
            return failed
        self.advance(batch)
        await self.hold("poll")
        return await self.json_response(
            request, 200, self._batch_object(batch), headers=self._headers()
        )

    async def _cancel(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        batch = self._find(recorded.path)
        if batch is None:
            return await self.error(request, 404, "No batch found")
        self.cancel(batch)
        if not batch.at_end:
            batch.step += 1  # cancelling
        return await self.json_response(
            request, 200, self._batch_object(batch), headers=self._headers()
        )

    def _batch_object(self, batch: FakeBatch) -> dict[str, Any]:
        state = batch.state
        extra = batch.extra
        counts = {"total": len(batch.items), "completed": 0, "failed": 0}
        output_file_id = error_file_id = None
        errors = None
        if state == "failed":
            counts["total"] = 0
            errors = {
                "object": "list",
                "data": [
                    {
                        "code": "invalid_request",
                        "message": self.batch_failure,
                        "param": None,
                        "line": 1,
                    }
                ],
            }
        elif batch.outcomes is not None:
            output, failed = self._result_files(batch)
            counts["completed"] = sum(1 for o in batch.outcomes if o.kind == "succeeded")
            counts["failed"] = len(batch.outcomes) - counts["completed"]
            if output:
                output_file_id = self._file_for(batch, "output", output)
            if failed:
                error_file_id = self._file_for(batch, "error", failed)
        now = int(batch.created_at)
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": self.batch_endpoint,
            "errors": errors,
            "input_file_id": extra.get("input_file_id", ""),
            "completion_window": "24h",
            "status": state,
            "output_file_id": output_file_id,
            "error_file_id": error_file_id,
            "created_at": now,
            "in_progress_at": now if batch.step >= 1 else None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": now if state == "completed" else None,
            "failed_at": now if state == "failed" else None,
            "expired_at": now if state == "expired" else None,
            "cancelling_at": now if batch.cancelled else None,
            "cancelled_at": now if state == "cancelled" else None,
            "request_counts": counts,
            "metadata": extra.get("metadata") or None,
        }

    def _file_for(self, batch: FakeBatch, kind: str, content: bytes) -> str:
        file_id = f"file-{kind}-{batch.id}"
        self.files[file_id] = (f"batch_{kind}", content)
        return file_id

    def _result_files(self, batch: FakeBatch) -> tuple[bytes, bytes]:
        output: list[bytes] = []
        failed: list[bytes] = []
        for n, outcome in enumerate(batch.outcomes or ()):
            row: dict[str, Any] = {
                "id": f"batch_req_{batch.id}_{n}",
                "custom_id": outcome.custom_id,
            }
            if outcome.kind == "succeeded":
                assert outcome.reply is not None
                assert outcome.recorded is not None
                body = self.reply_body(outcome.reply, outcome.recorded)
                row |= {
                    "response": {"status_code": 200, "request_id": f"req_{n}", "body": body},
                    "error": None,
                }
                output.append(json.dumps(row).encode())
            elif outcome.kind == "errored":
                assert outcome.error is not None
                error = self._error_object(outcome.error.status)
                if outcome.error.message is not None:
                    error["message"] = outcome.error.message
                if outcome.error.code is not None:
                    error["code"] = outcome.error.code
                response = {
                    "status_code": outcome.error.status,
                    "request_id": f"req_{n}",
                    "body": {"error": error},
                }
                row |= {"response": response, "error": None}
                failed.append(json.dumps(row).encode())
            else:
                code = "batch_expired" if outcome.kind == "expired" else "batch_cancelled"
                message = (
                    "This request could not be executed before the completion window expired."
                    if outcome.kind == "expired"
                    else "This request was cancelled."
                )
                row |= {"response": None, "error": {"code": code, "message": message}}
                failed.append(json.dumps(row).encode())
        return b"".join(r + b"\n" for r in output), b"".join(r + b"\n" for r in failed)

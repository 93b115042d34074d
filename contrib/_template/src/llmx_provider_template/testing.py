"""A fake Template API on 127.0.0.1 for tests, built on llmx's testing kit.

:class:`FakeTemplateServer` speaks the Template API's wire format (see the provider's
module docstring). The kit's :class:`~llmx.testing.FakeServer` base does the rest: the
server's lifecycle, recording requests, the reply queue, the key check, NDJSON framing,
error answers, split reads, dropped connections, truncation and every other fault.
Use it in your tests (``async with FakeTemplateServer() as server``, or
``FakeTemplateServer().in_thread()``) and for the conformance suite::

    class TestConformance(ProviderConformance):
        provider_type = "template"
        model = "tmpl-small"
        server_class = FakeTemplateServer
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llmx.testing import (
    Blocked,
    ErrorKind,
    ErrorReply,
    FakeServer,
    Handler,
    MidStreamError,
    RecordedRequest,
    Reply,
    RequestView,
    ViewPart,
    merge_turns,
)

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["FakeTemplateServer"]

_KINDS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}


class FakeTemplateServer(FakeServer):
    """``POST /v1/chat`` (JSON, or NDJSON with ``"stream": true``) and ``GET /v1/models``."""

    framing = "ndjson"  # the Template API streams one JSON value a line ("sse" for SSE)
    models_page_size = 1
    """Models per page of ``GET /v1/models`` (1: every model on a page of its own)."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what an instance's ``base_url`` is set to."""
        return f"{self.url}/v1"

    def route(self, method: str, path: str) -> Handler | None:
        """The handler of each endpoint (None: 404)."""
        if (method, path) == ("POST", "/v1/chat"):
            return self.answer_model_request  # the kit's reply queue, faults and rendering
        if (method, path) == ("GET", "/v1/models"):
            return self._models
        return None

    async def _models(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        ids = ["tmpl-small", "tmpl-large"]
        start = int(recorded.query.get("cursor", "0"))
        end = start + self.models_page_size
        page = [{"id": i, "context_window": 32_000} for i in ids[start:end]]
        body = {"models": page, "next": str(end) if end < len(ids) else None}
        return await self.json_response(request, 200, body)

    def describe(self, recorded: RecordedRequest) -> RequestView:
        """What a chat request asked for, provider-neutrally."""
        body = recorded.json if isinstance(recorded.json, dict) else {}
        turns: list[tuple[str, list[ViewPart]]] = []
        for m in body.get("messages", []):
            if m["role"] == "tool":
                result = ViewPart(
                    "tool_result", text=m["content"], id=m["tool_call_id"], is_error=m["is_error"]
                )
                turns.append(("user", [result]))
                continue
            parts = [ViewPart("text", text=m["content"])] if m["content"] else []
            parts.extend(
                ViewPart("tool_call", id=c["id"], name=c["name"], arguments=_json(c["arguments"]))
                for c in m.get("tool_calls", [])
            )
            turns.append((m["role"], parts))
        return RequestView(
            model=body.get("model"),
            system=body.get("system"),
            turns=merge_turns(turns),
            stream=body.get("stream") is True,
            tools=tuple(t["name"] for t in body.get("tools", [])),
            tool_choice=body.get("tool_choice"),
            json_mode=body.get("format") == "json",
            max_tokens=body.get("max_tokens"),
            temperature=body.get("temperature"),
            stop=tuple(body.get("stop", ())),
        )

    def reply_body(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The answer to a request that does not stream."""
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls]
        return {**self._end(reply, recorded), "text": reply.text, "tool_calls": calls}

    def stream_events(self, reply: Reply, recorded: RecordedRequest) -> list[dict[str, Any]]:
        """The lines of a streamed answer (the base frames them as NDJSON)."""
        events: list[dict[str, Any]] = [{"type": "text", "text": p} for p in reply.text_pieces()]
        for index, call in enumerate(reply.tool_calls):
            events.append({"type": "tool_call", "index": index, "id": call.id, "name": call.name})
            events.extend(
                {"type": "tool_args", "index": index, "arguments": piece}
                for piece in reply.argument_pieces(call.arguments)
            )
        events.append({"type": "end", **self._end(reply, recorded)})
        return events

    def _end(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        view = self.describe(recorded)
        prompt, completion = reply.token_usage(view.prompt_text())
        return {
            "id": reply.id or f"tmpl-{self.next_id()}",
            "model": reply.model or view.model,
            "finish": reply.derived_finish_reason,
            "usage": {"input": prompt, "output": completion},
        }

    def mid_stream_error_event(
        self, reply: MidStreamError, recorded: RecordedRequest
    ) -> dict[str, Any]:
        """The line a failing stream ends with."""
        detail = (reply.error or {}).get("message", "internal error")
        return {"type": "error", "error": {"kind": "server_error", "detail": detail}}

    async def render_error(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        """An HTTP error with the Template API's body, ``{"error": {"kind", "detail"}}``."""
        kind = reply.code or reply.type or _KINDS.get(reply.status, "server_error")
        body = {"error": {"kind": kind, "detail": reply.message or f"HTTP {reply.status}"}}
        headers = self.response_headers(reply.headers)
        return await self.json_response(request, reply.status, body, headers=headers)

    def error_for(self, kind: ErrorKind, *, retry_after: float | None = None) -> ErrorReply:
        """The Template API's answer to each failure (the base's, but for a long prompt)."""
        if kind == "context_length":
            return ErrorReply(
                400, message="the prompt is longer than the model's window", code="too_long"
            )
        return super().error_for(kind, retry_after=retry_after)

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """A refused prompt: HTTP 400 ``content_filter``."""
        error = ErrorReply(400, message=reply.message or "refused", code="content_filter")
        return await self.render_error(request, recorded, error)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text

"""A fake Acme API on 127.0.0.1, built on the kit's :class:`~llmx.testing.FakeServer`
with NDJSON framing: everything but the Acme-specific bodies comes from the base."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from llmx.testing import (
    Blocked,
    ErrorReply,
    FakeServer,
    Handler,
    MidStreamError,
    RecordedRequest,
    Reply,
    RequestView,
    ViewPart,
    approx_tokens,
    fake_embedding,
    merge_turns,
)

if TYPE_CHECKING:
    from aiohttp import web


def _usage(reply: Reply, view: RequestView) -> dict[str, int]:
    prompt, completion = reply.token_usage(view.prompt_text())
    return {"input": prompt, "output": completion}


class FakeAcmeServer(FakeServer):
    """``POST /v1/chat`` (JSON, or NDJSON lines when ``"stream": true``), ``POST /v1/embed``
    and ``GET /v1/models``."""

    framing = "ndjson"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def route(self, method: str, path: str) -> Handler | None:
        """The chat and models endpoints."""
        if (method, path) == ("POST", "/v1/chat"):
            return self.answer_model_request
        if (method, path) == ("POST", "/v1/embed"):
            return self._embed
        if (method, path) == ("GET", "/v1/models"):
            return self._models
        return None

    async def _embed(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json if isinstance(recorded.json, dict) else {}
        inputs = body.get("input")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 8:
            error = ErrorReply(400, message="input: 1 to 8 strings", code="invalid_input")
            return await self.render_error(request, recorded, error)
        reply = self.next_reply()
        if reply is not None and not isinstance(reply, Reply):
            return await self.answer(request, recorded, reply)
        size = body.get("dimensions") or 8
        tokens = sum(approx_tokens(t) for t in inputs)
        if reply is not None and reply.usage:
            tokens = reply.usage[0]
        answer = {
            "model": body.get("model"),
            "vectors": [fake_embedding(t, size) for t in inputs],
            "usage": {"input": tokens},
        }
        return await self.json_response(request, 200, answer)

    async def _models(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = {"models": [{"id": "acme-large"}, {"id": "acme-vision"}]}
        return await self.json_response(request, 200, body)

    def describe(self, recorded: RecordedRequest) -> RequestView:
        """What a chat request asked for."""
        body = recorded.json if isinstance(recorded.json, dict) else {}
        system = None
        turns: list[tuple[str, list[ViewPart]]] = []
        for m in body.get("messages", []):
            role = m["role"]
            if role == "system":
                system = m["content"]
                continue
            if role == "tool":
                result = ViewPart(
                    "tool_result", text=m["content"], name=m["name"], is_error=m["is_error"]
                )
                turns.append(("user", [result]))
                continue
            parts = [ViewPart("text", text=m["content"])] if m["content"] else []
            parts.extend(
                ViewPart("image", data=base64.b64decode(i["data"]), media_type=i["type"])
                for i in m.get("images", [])
            )
            parts.extend(
                ViewPart("tool_call", name=c["name"], arguments=_json(c["arguments"]))
                for c in m.get("tool_calls", [])
            )
            turns.append((role, parts))
        return RequestView(
            model=body.get("model"),
            system=system,
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
        """The whole answer."""
        view = self.describe(recorded)
        return {
            "id": reply.id or f"acme-{self.next_id()}",
            "model": reply.model or view.model,
            "text": reply.text,
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in reply.tool_calls],
            "finish": reply.derived_finish_reason,
            "usage": _usage(reply, view),
        }

    def stream_events(self, reply: Reply, recorded: RecordedRequest) -> list[dict[str, Any]]:
        """The NDJSON lines of a streamed answer (the base frames and writes them)."""
        view = self.describe(recorded)
        events: list[dict[str, Any]] = [{"type": "text", "text": p} for p in reply.text_pieces()]
        for index, call in enumerate(reply.tool_calls):
            events.append({"type": "tool_call", "index": index, "name": call.name})
            events.extend(
                {"type": "tool_args", "index": index, "arguments": piece}
                for piece in reply.argument_pieces(call.arguments)
            )
        end = {
            "type": "end",
            "id": reply.id or f"acme-{self.next_id()}",
            "model": reply.model or view.model,
            "finish": reply.derived_finish_reason,
            "usage": _usage(reply, view),
        }
        events.append(end)
        return events

    def mid_stream_error_event(
        self, reply: MidStreamError, recorded: RecordedRequest
    ) -> dict[str, Any]:
        """An ``error`` line."""
        return {
            "type": "error",
            "error": dict(reply.error or {"message": "internal error", "code": "server"}),
        }

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """HTTP 400 ``content_filter``."""
        error = ErrorReply(400, message=reply.message or "blocked", code="content_filter")
        return await self.render_error(request, recorded, error)


def _json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text

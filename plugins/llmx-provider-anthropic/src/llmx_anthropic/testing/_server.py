"""A local fake of Anthropic's Messages API, speaking its exact wire format.

Reproduces, from Anthropic's API reference ("Messages", "Streaming Messages", "Errors",
"Models", "Versioning") and the official ``anthropic-sdk-python`` client:

* ``POST /v1/messages`` answering a ``message`` object (``content`` blocks of type
  ``text`` and ``tool_use``, ``stop_reason`` ``end_turn``/``max_tokens``/
  ``stop_sequence``/``tool_use``/``refusal``, ``usage`` with ``input_tokens``,
  ``output_tokens``, ``cache_creation_input_tokens`` (by TTL in ``cache_creation``:
  ``ephemeral_5m_input_tokens``, ``ephemeral_1h_input_tokens``),
  ``cache_read_input_tokens`` and ``output_tokens_details.thinking_tokens``;
  ``input_tokens`` counts only the tokens *not* read from or written to the cache);
* with ``"stream": true`` a ``text/event-stream`` of named events: ``message_start``
  (the message with empty content and the input usage), ``ping``, per content block
  ``content_block_start``, ``content_block_delta`` (``text_delta``, or
  ``input_json_delta`` with ``partial_json`` for tool input) and
  ``content_block_stop``, then ``message_delta`` (``stop_reason`` and cumulative
  ``usage.output_tokens``) and ``message_stop``; a failure mid-stream is an
  ``event: error`` with ``{"type": "error", "error": {"type": "overloaded_error",
  "message": "Overloaded"}}``;
* the headers it requires: ``x-api-key`` (401 ``authentication_error`` when missing or
  wrong) and ``anthropic-version`` (400 when missing); a ``request-id`` header on every
  answer and ``request_id`` in error bodies;
* required body fields ``model``, ``messages`` and ``max_tokens`` (400
  ``invalid_request_error`` naming the field, e.g. ``max_tokens: Field required``);
  more than four ``cache_control`` breakpoints are a 400 too (``A maximum of 4 blocks
  with cache_control may be provided. Found 5.``);
* errors as ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with
  Anthropic's statuses: 400 ``invalid_request_error``, 401 ``authentication_error``,
  403 ``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``, 429
  ``rate_limit_error`` (with ``retry-after``), 500 ``api_error``, 504
  ``timeout_error``, 529 ``overloaded_error``;
* ``GET /v1/models`` (``data``, ``has_more``, ``first_id``, ``last_id``; paginated by
  ``limit`` and ``after_id``) and ``GET /v1/models/{id}``;
* ``POST /v1/messages/count_tokens`` (``CountMessageTokensParams``: ``model`` and
  ``messages`` required; ``max_tokens``, ``stream`` or sampling fields refused with
  "Extra inputs are not permitted", as the API's validation does) answering
  ``{"input_tokens": N}``, N being what a message with the same prompt reports as its
  ``usage.input_tokens``. A scripted failure at the head of the queue answers it
  (:meth:`~llmx.testing.FakeServer.next_failure`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

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
    approx_tokens,
    merge_turns,
)

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["FakeAnthropicServer"]

DEFAULT_MODELS: tuple[tuple[str, str], ...] = (
    ("claude-opus-4-8", "Claude Opus 4.8"),
    ("claude-opus-4-7", "Claude Opus 4.7"),
    ("claude-opus-4-6", "Claude Opus 4.6"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
)
"""The ``(id, display_name)`` pairs ``GET /v1/models`` lists unless told otherwise."""

_ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    409: ("invalid_request_error", "Conflict."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}

_COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
     "cache_control"}
)  # fmt: skip
"""The fields of ``CountMessageTokensParams``."""

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def _stop_reason(reply: Reply) -> str:
    reason = reply.derived_finish_reason
    return _STOP_REASONS.get(reason, reason)


def _text_blocks(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            b["text"]
            for b in value
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return ""


def _view_parts(content: Any) -> list[ViewPart]:
    import base64

    if isinstance(content, str):
        return [ViewPart("text", text=content)]
    parts: list[ViewPart] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(ViewPart("text", text=str(block.get("text", ""))))
        elif kind == "image":
            source = block.get("source") or {}
            if source.get("type") == "base64":
                parts.append(
                    ViewPart(
                        "image",
                        data=base64.b64decode(source.get("data", "")),
                        media_type=source.get("media_type"),
                    )
                )
            elif source.get("type") == "url":
                parts.append(ViewPart("image", url=source.get("url")))
        elif kind == "tool_use":
            parts.append(
                ViewPart(
                    "tool_call",
                    id=block.get("id"),
                    name=block.get("name"),
                    arguments=block.get("input"),
                )
            )
        elif kind == "tool_result":
            parts.append(
                ViewPart(
                    "tool_result",
                    text=_text_blocks(block.get("content", "")),
                    id=block.get("tool_use_id"),
                    is_error=block.get("is_error") is True,
                )
            )
    return parts


def count_breakpoints(body: Mapping[str, Any]) -> int:
    """The blocks of a Messages request body that carry ``cache_control`` (tools, system
    blocks, message content blocks)."""

    def blocks(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    found = [t for t in blocks(body.get("tools")) if isinstance(t, dict)]
    found += [b for b in blocks(body.get("system")) if isinstance(b, dict)]
    for m in blocks(body.get("messages")):
        if isinstance(m, dict):
            found += [b for b in blocks(m.get("content")) if isinstance(b, dict)]
    return sum("cache_control" in b for b in found)


class FakeAnthropicServer(FakeServer):
    """A fake Anthropic API on 127.0.0.1 (see the module docstring for what it reproduces).

    ``base_url`` is ``http://127.0.0.1:PORT`` (the API's paths start with ``/v1``, as
    ``https://api.anthropic.com``'s do). Script answers with :meth:`enqueue`; with an
    empty queue every message request is answered with the text of its last user
    message. ``models`` are the ``(id, display_name)`` pairs ``GET /v1/models`` lists.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        models: Sequence[tuple[str, str]] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.models: list[tuple[str, str]] = list(models)
        """The ``(id, display_name)`` pairs ``GET /v1/models`` lists, newest first."""

    # -- routing, headers and auth --------------------------------------------------------

    def route(self, method: str, path: str) -> Handler | None:
        """``POST /v1/messages``, ``POST /v1/messages/count_tokens``, ``GET /v1/models``
        and ``GET /v1/models/{id}``."""
        if method == "POST" and path == "/v1/messages":
            return self._messages
        if method == "POST" and path == "/v1/messages/count_tokens":
            return self._count_tokens
        if method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            return self._models
        return None

    def response_headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """``request-id`` and ``anthropic-organization-id``, plus ``extra``."""
        headers = {
            "request-id": f"req_011CFake{self.next_id():014d}",
            "anthropic-organization-id": "00000000-0000-0000-0000-000000000000",
        }
        if extra:
            headers.update(extra)
        return headers

    async def error(
        self,
        request: web.BaseRequest,
        status: int,
        type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send ``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
        all_headers = self.response_headers(headers)
        body = {
            "type": "error",
            "error": {"type": type, "message": message},
            "request_id": all_headers["request-id"],
        }
        return await self.json_response(request, status, body, headers=all_headers)

    async def check_auth(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """401 for a missing or wrong ``x-api-key``; 400 without ``anthropic-version``."""
        if self.api_key is not None:
            given = recorded.headers.get("x-api-key")
            if not given:
                return await self.error(
                    request, 401, "authentication_error", "x-api-key header is required"
                )
            if given != self.api_key:
                return await self.error(request, 401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in recorded.headers:
            return await self.error(
                request, 400, "invalid_request_error", "anthropic-version: header is required"
            )
        return None

    async def not_found(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        """Anthropic's 404 for an unknown URL."""
        return await self.error(request, 404, "not_found_error", "Not found")

    # -- endpoints ------------------------------------------------------------------------

    def _model_entry(self, model_id: str, name: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model_id,
            "display_name": name,
            "created_at": "2026-02-05T00:00:00Z",
            "max_input_tokens": None,
            "max_tokens": None,
            "capabilities": None,
        }

    async def _models(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        if request.path != "/v1/models":
            wanted = request.path[len("/v1/models/") :]
            for model_id, name in self.models:
                if model_id == wanted:
                    entry = self._model_entry(model_id, name)
                    return await self.json_response(
                        request, 200, entry, headers=self.response_headers()
                    )
            return await self.error(request, 404, "not_found_error", f"model: {wanted}")
        try:
            limit = int(recorded.query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return await self.error(
                request, 400, "invalid_request_error", "limit: Input should be between 1 and 1000"
            )
        ids = [m for m, _ in self.models]
        start = 0
        after = recorded.query.get("after_id")
        if after is not None:
            start = ids.index(after) + 1 if after in ids else len(ids)
        page = self.models[start : start + limit]
        body = {
            "data": [self._model_entry(m, n) for m, n in page],
            "has_more": start + limit < len(self.models),
            "first_id": page[0][0] if page else None,
            "last_id": page[-1][0] if page else None,
        }
        return await self.json_response(request, 200, body, headers=self.response_headers())

    async def _messages(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            return await self.error(
                request, 400, "invalid_request_error", "The request body is not valid JSON."
            )
        for field, kind in (("model", str), ("messages", list), ("max_tokens", int)):
            if field not in body:
                return await self.error(
                    request, 400, "invalid_request_error", f"{field}: Field required"
                )
            if not isinstance(body[field], kind) or isinstance(body[field], bool):
                return await self.error(
                    request,
                    400,
                    "invalid_request_error",
                    f"{field}: Input should be a valid {kind.__name__}",
                )
        breakpoints = count_breakpoints(body)
        if breakpoints > 4:
            return await self.error(
                request,
                400,
                "invalid_request_error",
                f"A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}.",
            )
        return await self.answer_model_request(request, recorded)

    async def _count_tokens(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            return await self.error(
                request, 400, "invalid_request_error", "The request body is not valid JSON."
            )
        for field, kind in (("model", str), ("messages", list)):
            if not isinstance(body.get(field), kind):
                return await self.error(
                    request, 400, "invalid_request_error", f"{field}: Field required"
                )
        extra = sorted(set(body) - _COUNT_FIELDS)
        if extra:
            return await self.error(
                request, 400, "invalid_request_error", f"{extra[0]}: Extra inputs are not permitted"
            )
        failure = self.next_failure()
        if failure is not None:
            return await self.answer(request, recorded, failure)
        tokens = approx_tokens(self.describe(recorded).prompt_text())
        return await self.json_response(
            request, 200, {"input_tokens": tokens}, headers=self.response_headers()
        )

    def describe(self, recorded: RecordedRequest) -> RequestView:
        """What a message request asked for (see :class:`~llmx.testing.RequestView`)."""
        body = recorded.json
        if not isinstance(body, dict):
            return RequestView(None, None, ())
        system = body.get("system")
        turns: list[tuple[str, list[ViewPart]]] = []
        turns.extend(
            (m["role"], _view_parts(m.get("content")))
            for m in body.get("messages") or ()
            if isinstance(m, dict) and m.get("role") in ("user", "assistant")
        )
        tools = tuple(
            t["name"] for t in body.get("tools") or () if isinstance(t, dict) and "name" in t
        )
        choice = body.get("tool_choice")
        choice_name = None
        if isinstance(choice, dict):
            choice_name = {"auto": "auto", "any": "required", "none": "none"}.get(
                str(choice.get("type")), choice.get("name")
            )
        fmt = (body.get("output_config") or {}).get("format") or {}
        return RequestView(
            model=body.get("model"),
            system=_text_blocks(system) if system is not None else None,
            turns=merge_turns(turns),
            stream=body.get("stream") is True,
            tools=tools,
            tool_choice=choice_name,
            json_schema=fmt.get("schema") if fmt.get("type") == "json_schema" else None,
            max_tokens=body.get("max_tokens"),
            temperature=body.get("temperature"),
            stop=tuple(body.get("stop_sequences") or ()),
        )

    # -- rendering ------------------------------------------------------------------------

    def usage(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """Anthropic's ``usage``: ``input_tokens`` excludes cache reads and writes."""
        prompt, completion = reply.token_usage(self.describe(recorded).prompt_text())
        cached, written = reply.cached_tokens, reply.cache_write_tokens
        return {
            "input_tokens": max(0, prompt - cached - written),
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": cached,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written - reply.cache_write_1h_tokens,
                "ephemeral_1h_input_tokens": reply.cache_write_1h_tokens,
            },
            "output_tokens": completion,
            "output_tokens_details": {"thinking_tokens": reply.reasoning_tokens},
            "server_tool_use": None,
            "service_tier": "standard",
            "inference_geo": "not_available",
        }

    def _message_id(self, reply: Reply) -> str:
        return reply.id or f"msg_01Fake{self.next_id():018d}"

    def message(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The ``message`` object answering ``recorded`` with ``reply``."""
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text, "citations": None})
        content.extend(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": json.loads(call.arguments or "{}"),
                "caller": {"type": "direct"},
            }
            for call in reply.tool_calls
        )
        body = recorded.json
        payload: dict[str, Any] = {
            "id": self._message_id(reply),
            "type": "message",
            "role": "assistant",
            "model": reply.model or body.get("model"),
            "content": content,
            "stop_reason": _stop_reason(reply),
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
        }
        if not reply.omit_usage:
            payload["usage"] = self.usage(reply, recorded)
        return payload

    @staticmethod
    def event(name: str, data: Any, le: str = "\n") -> bytes:
        """One SSE event: ``event: NAME`` and ``data: JSON``."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return f"event: {name}{le}data: {text}{le}{le}".encode()

    def stream_events(self, reply: Reply, recorded: RecordedRequest) -> list[bytes]:
        """The named SSE events of ``reply`` as a stream answering ``recorded``."""
        le = reply.line_ending
        usage = self.usage(reply, recorded)
        start_usage = {**usage, "output_tokens": 1}
        message: dict[str, Any] = {
            "id": self._message_id(reply),
            "type": "message",
            "role": "assistant",
            "model": reply.model or recorded.json.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": start_usage,
        }
        events = [self.event("message_start", {"type": "message_start", "message": message}, le)]
        index = 0
        if reply.text:
            events.append(
                self.event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": "", "citations": None},
                    },
                    le,
                )
            )
            events.append(self.event("ping", {"type": "ping"}, le))
            for piece in reply.text_pieces():
                delta = {"type": "text_delta", "text": piece}
                events.append(
                    self.event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                        le,
                    )
                )
            events.append(
                self.event("content_block_stop", {"type": "content_block_stop", "index": 0}, le)
            )
            index = 1
        else:
            events.append(self.event("ping", {"type": "ping"}, le))
        for call in reply.tool_calls:
            block = {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": {},
                "caller": {"type": "direct"},
            }
            events.append(
                self.event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                    le,
                )
            )
            for piece in ["", *reply.argument_pieces(call.arguments)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    self.event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        le,
                    )
                )
            events.append(
                self.event("content_block_stop", {"type": "content_block_stop", "index": index}, le)
            )
            index += 1
        delta_usage: dict[str, Any] = {
            "output_tokens": usage["output_tokens"],
            "output_tokens_details": usage["output_tokens_details"],
            "server_tool_use": None,
            "input_tokens": None,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
        }
        if not reply.omit_usage:
            delta_usage.update(
                input_tokens=usage["input_tokens"],
                cache_creation_input_tokens=usage["cache_creation_input_tokens"],
                cache_read_input_tokens=usage["cache_read_input_tokens"],
            )
        events.append(
            self.event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": _stop_reason(reply),
                        "stop_sequence": None,
                        "stop_details": None,
                        "container": None,
                    },
                    "usage": delta_usage,
                },
                le,
            )
        )
        events.append(self.event("message_stop", {"type": "message_stop"}, le))
        if reply.end_after is not None:
            return events[: reply.end_after]
        return events

    def reply_body(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The ``message`` object (the base sends it, or streams :meth:`stream_events`)."""
        return self.message(reply, recorded)

    async def render_reply(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Reply
    ) -> web.StreamResponse:
        """A ``message`` object, or its stream of named events (with ``cache-control: no-cache``)."""
        if self.is_stream(recorded):
            reply = attrs.evolve(reply, headers={**reply.headers, "cache-control": "no-cache"})
        return await super().render_reply(request, recorded, reply)

    def _error_object(self, status: int) -> dict[str, str]:
        type_, message = _ERROR_TYPES.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error")
        )
        return {"type": type_, "message": message}

    async def render_error(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
        error = self._error_object(reply.status)
        return await self.error(
            request,
            reply.status,
            reply.type or error["type"],
            reply.message or error["message"],
            reply.headers,
        )

    def mid_stream_error_event(self, reply: MidStreamError, recorded: RecordedRequest) -> bytes:
        """``event: error`` (default ``overloaded_error``), how Anthropic fails a stream."""
        error = dict(reply.error) if reply.error is not None else self._error_object(529)
        return self.event("error", {"type": "error", "error": error})

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """Anthropic's refusal: a message with no content and ``stop_reason: refusal``."""
        return await self.render_reply(
            request, recorded, Reply("", finish_reason="content_filter", usage=(10, 1))
        )

    def error_for(self, kind: ErrorKind, *, retry_after: float | None = None) -> ErrorReply:
        """Anthropic's documented answer for a failure of ``kind``."""
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        if kind == "authentication":
            return ErrorReply(401, message="invalid x-api-key")
        if kind == "permission":
            return ErrorReply(403)
        if kind == "model_not_found":
            return ErrorReply(404, message="model: claude-nope-9")
        if kind == "bad_request":
            return ErrorReply(400, message="temperature: Input should be less than or equal to 1")
        if kind == "context_length":
            return ErrorReply(400, message="prompt is too long: 208310 tokens > 200000 maximum")
        if kind == "rate_limit":
            return ErrorReply(
                429, headers={**headers, "anthropic-ratelimit-requests-remaining": "0"}
            )
        status = {
            "server": 500,
            "bad_gateway": 502,
            "unavailable": 503,
            "overloaded": 529,
            "timeout": 504,
        }[kind]
        return ErrorReply(status, headers=headers)

    def malformed_event(self) -> bytes:
        """A ``content_block_delta`` event whose data is not JSON."""
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": \n\n'

    def malformed_json(self) -> bytes:
        """A message body that does not parse."""
        return b'{"id": "msg_broken", "type": "message", "content": [{"type": "text", '

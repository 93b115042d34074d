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
* extended thinking (``thinking: {"type": "enabled", "budget_tokens"}``): a reply's
  ``reasoning`` as a ``thinking`` block with a ``signature`` before the other blocks
  (and a ``redacted_thinking`` block after it when ``redact_thinking`` is set); streamed
  as ``content_block_start``, ``thinking_delta`` pieces, one ``signature_delta`` and
  ``content_block_stop``. Requests are checked as Anthropic does: a budget not below
  ``max_tokens``, a ``temperature`` other than 1 with thinking, a final assistant turn
  with ``tool_use`` that does not start with a thinking block while thinking is on, and
  any ``thinking``/``redacted_thinking`` block whose signature or data this server did
  not issue for that text (tampered, or another vendor's) get Anthropic's 400.
"""

from __future__ import annotations

import base64
import hashlib
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
from llmx_anthropic.testing._batch import AnthropicBatchFake

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
    "pause": "pause_turn",
}


def _refused(reply: Reply) -> Reply:
    """A reply's ``refusal`` the Anthropic way: its text, then ``stop_reason: refusal``."""
    if reply.refusal is None:
        return reply
    return attrs.evolve(reply, text=reply.refusal, finish_reason="content_filter", refusal=None)


def thinking_signature(thinking: str) -> str:
    """The signature this fake gives a thinking block (bound to its text, as Anthropic's is)."""
    digest = hashlib.sha256(b"llmx-fake-anthropic-thinking\0" + thinking.encode()).digest()
    return base64.b64encode(b"EqQB" + digest).decode()


def redacted_data(thinking: str) -> str:
    """The encrypted ``data`` of the redacted block this fake adds for ``thinking``."""
    digest = hashlib.sha256(b"llmx-fake-anthropic-redacted\0" + thinking.encode()).digest()
    return base64.b64encode(b"RDCT" + digest).decode()


def _thinking_error(body: dict[str, Any]) -> str | None:
    """Anthropic's 400 message for what it refuses about thinking in ``body``, or None."""
    for m, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        for b, block in enumerate(content if isinstance(content, list) else ()):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "thinking" and block.get("signature") != thinking_signature(
                str(block.get("thinking"))
            ):
                return f"messages.{m}.content.{b}: Invalid `signature` in `thinking` block"
            if kind == "redacted_thinking" and not _known_redacted(block.get("data")):
                return f"messages.{m}.content.{b}: Invalid `data` in `redacted_thinking` block"
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int) and budget >= body["max_tokens"]:
        return (
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
        )
    if body.get("temperature", 1) != 1:
        return (
            "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode. "
            "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility"
        )
    messages = body.get("messages") or []
    for m in range(len(messages) - 1, -1, -1):
        message = messages[m]
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list) or not any(
            isinstance(b, dict) and b.get("type") == "tool_use" for b in content
        ):
            return None
        first = content[0].get("type") if isinstance(content[0], dict) else None
        if first in ("thinking", "redacted_thinking"):
            return None
        return (
            f"messages.{m}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
            f"found `{first}`. When `thinking` is enabled, a final `assistant` message must "
            "start with a thinking block (preceeding the lastmost set of `tool_use` and "
            "`tool_result` blocks). We recommend you include thinking blocks from previous "
            "turns. To avoid this requirement, disable `thinking`. Please consult our "
            "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        )
    return None


def _known_redacted(data: Any) -> bool:
    try:
        raw = base64.b64decode(str(data), validate=True)
    except ValueError:
        return False
    return raw.startswith(b"RDCT") and len(raw) == 36


def _thinking_on(recorded: RecordedRequest) -> bool:
    body = recorded.json
    thinking = body.get("thinking") if isinstance(body, dict) else None
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


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


def _document_view(block: dict[str, Any]) -> ViewPart:
    """A ``document`` block: base64 PDF, plain text or URL (issue 15, item 7)."""
    import base64

    source = block.get("source") or {}
    title = block.get("title")
    if source.get("type") == "url":
        return ViewPart("document", url=source.get("url"), media_type="application/pdf", name=title)
    data = str(source.get("data", ""))
    raw = data.encode() if source.get("type") == "text" else base64.b64decode(data)
    return ViewPart("document", data=raw, media_type=source.get("media_type"), name=title)


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
        elif kind == "document":
            parts.append(_document_view(block))
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


_UNSUPPORTED_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
)


def _open_object(body: dict[str, Any]) -> str | None:
    """Anthropic's refusal of a structured-output schema with an object that does not
    set ``additionalProperties: false`` or a constraint its structured outputs do not
    take (numeric and string bounds, ``maxItems``, ``minItems`` above 1), or None."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            if (node.get("type") == "object" or "properties" in node) and node.get(
                "additionalProperties"
            ) is not False:
                return (
                    "output_config.format.schema: For 'object' type, 'additionalProperties' "
                    "must be explicitly set to false"
                )
            for key in _UNSUPPORTED_CONSTRAINTS:
                if key in node:
                    return f"output_config.format.schema: '{key}' is not supported"
            low = node.get("minItems")
            if isinstance(low, int) and low > 1:
                return "output_config.format.schema: 'minItems' values other than 0 and 1 are not supported"
            props = node.get("properties")
            if isinstance(props, dict):
                pending.extend(props.values())
            pending.extend(
                v for k, v in node.items() if k != "properties" and isinstance(v, (dict, list))
            )
    return None


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


class FakeAnthropicServer(AnthropicBatchFake, FakeServer):
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
        redact_thinking: bool = False,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.models: list[tuple[str, str]] = list(models)
        """The ``(id, display_name)`` pairs ``GET /v1/models`` lists, newest first."""
        self.redact_thinking = redact_thinking
        """Add a ``redacted_thinking`` block after each thinking block."""
        self.init_batches()

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
        return self.batch_route(method, path)

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
        problem = _open_object(body)
        if problem is not None:
            return await self.error(request, 400, "invalid_request_error", problem)
        breakpoints = count_breakpoints(body)
        if breakpoints > 4:
            return await self.error(
                request,
                400,
                "invalid_request_error",
                f"A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}.",
            )
        refused = _thinking_error(body)
        if refused is not None:
            return await self.error(request, 400, "invalid_request_error", refused)
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
        raw_thinking = body.get("thinking")
        thinking = raw_thinking if isinstance(raw_thinking, dict) else {}
        reasoning = {"enabled": thinking.get("budget_tokens"), "disabled": "none"}.get(
            str(thinking.get("type"))
        )
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
            reasoning=reasoning,
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

    def thinking_blocks(self, reply: Reply, recorded: RecordedRequest) -> list[dict[str, Any]]:
        """The thinking blocks answering ``recorded`` (none unless it enabled thinking)."""
        if not reply.reasoning or not _thinking_on(recorded):
            return []
        blocks: list[dict[str, Any]] = [
            {
                "type": "thinking",
                "thinking": reply.reasoning,
                "signature": thinking_signature(reply.reasoning),
            }
        ]
        if self.redact_thinking:
            blocks.append({"type": "redacted_thinking", "data": redacted_data(reply.reasoning)})
        return blocks

    def message(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The ``message`` object answering ``recorded`` with ``reply``."""
        content: list[dict[str, Any]] = self.thinking_blocks(reply, recorded)
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
        reply = _refused(reply)
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
        for block in self.thinking_blocks(reply, recorded):
            events.extend(self._thinking_events(index, block, reply, le))
            index += 1
        if reply.text:
            events.append(
                self.event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
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
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        le,
                    )
                )
            events.append(
                self.event("content_block_stop", {"type": "content_block_stop", "index": index}, le)
            )
            index += 1
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

    def _thinking_events(
        self, index: int, block: dict[str, Any], reply: Reply, le: str
    ) -> list[bytes]:
        """A thinking block as Anthropic streams it (a redacted one arrives whole)."""

        def delta(value: dict[str, Any]) -> bytes:
            return self.event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": value},
                le,
            )

        start = dict(block)
        if block["type"] == "thinking":
            start.update(thinking="", signature="")
        events = [
            self.event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
                le,
            )
        ]
        if block["type"] == "thinking":
            events.extend(
                delta({"type": "thinking_delta", "thinking": piece})
                for piece in reply.reasoning_pieces()
            )
            events.append(delta({"type": "signature_delta", "signature": block["signature"]}))
        events.append(
            self.event("content_block_stop", {"type": "content_block_stop", "index": index}, le)
        )
        return events

    def reply_body(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The ``message`` object (the base sends it, or streams :meth:`stream_events`)."""
        return self.message(_refused(reply), recorded)

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

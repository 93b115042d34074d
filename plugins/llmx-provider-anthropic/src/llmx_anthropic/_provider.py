"""The ``anthropic`` provider: the Messages API over the client's pooled aiohttp session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from llmx import (
    ModelInfo,
    ReasoningDelta,
    Request,
    Response,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from llmx.http import Endpoint, api_key, base_url, collect_pages, dumps, json_object
from llmx.plugin import reasoning_off_unsaid
from llmx.types import RefusalDelta, StreamChunk
from llmx_anthropic._batch import AnthropicBatchMixin
from llmx_anthropic._models import FIXED_SAMPLING, base_id, lookup
from llmx_anthropic._settings import AnthropicSettings
from llmx_anthropic._wire import (
    EVENT_TYPES,
    PROTOCOL,
    build_body,
    compact_json,
    map_stop_reason,
    parse_message,
    parse_usage,
)

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["DEFAULT_BASE_URL", "AnthropicProvider"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
"""Where requests go unless ``base_url`` or ``$ANTHROPIC_BASE_URL`` says otherwise."""

_NONE: tuple[StreamChunk, ...] = ()
_REFUSED: tuple[StreamChunk, ...] = (RefusalDelta(""),)

_COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config"}
)
"""What ``POST /v1/messages/count_tokens`` takes of a Messages body
(``CountMessageTokensParams``): what the prompt is made of, not how to sample."""


class _Decoder:
    """One stream's state: named events in, llmx chunks out (usage arrives in two events)."""

    __slots__ = (
        "answer_model",
        "blocks",
        "finish",
        "finished",
        "http",
        "id",
        "model",
        "next_reasoning",
        "next_tool",
        "thinking",
        "usage",
    )

    final_event = "message_stop"

    def __init__(self, http: Endpoint, model: str) -> None:
        self.http = http
        self.model = model
        self.finished = False
        self.finish: Any = None
        self.usage: dict[str, Any] = {}
        self.id: Any = None
        self.answer_model: Any = None
        self.blocks: dict[int, list[Any]] = {}  # index -> [tool index, json pieces]
        self.next_tool = 0
        self.thinking: dict[int, int] = {}  # block index -> reasoning index
        self.next_reasoning = 0

    def feed(self, data: str) -> Sequence[StreamChunk]:
        # Every event's data names its type, as its SSE event name does.
        obj = json.loads(data)
        name = obj["type"]
        if name == "error":
            error = obj.get("error") if isinstance(obj, dict) else None
            raise self.http.payload_error(error, self.model, types=EVENT_TYPES)
        return self._dispatch(name, obj)

    def end(self) -> StreamEnd | None:
        if not self.finished:
            return None
        model = self.answer_model
        return StreamEnd(
            map_stop_reason(self.finish),
            parse_usage(self.usage, self.http.name, self.model) if self.usage else Usage(),
            model if isinstance(model, str) and model else self.model,
            self.id if isinstance(self.id, str) else None,
        )

    def _reasoning_start(self, block_index: int, block: Any) -> Sequence[StreamChunk]:
        index = self.thinking[block_index] = self.next_reasoning
        self.next_reasoning += 1
        if block["type"] == "redacted_thinking":
            return (ReasoningDelta("", index, data=block["data"], protocol=PROTOCOL),)
        thinking = block.get("thinking") or ""
        signature = block.get("signature") or None
        if not thinking and signature is None:
            return _NONE  # the usual empty start: the deltas follow
        return (ReasoningDelta(thinking, index, signature=signature, protocol=PROTOCOL),)

    def _dispatch(self, name: str, obj: Any) -> Sequence[StreamChunk]:
        if name == "content_block_delta":
            delta = obj["delta"]
            kind = delta.get("type")
            if kind == "text_delta":
                text = delta["text"]
                return (TextDelta(text),) if text else _NONE
            if kind == "input_json_delta":
                block = self.blocks.get(obj["index"])
                if block is not None:
                    block[1].append(delta["partial_json"])
                return _NONE
            if kind == "thinking_delta":
                thinking = delta["thinking"]
                index = self.thinking.get(obj["index"])
                if index is None or not thinking:
                    return _NONE
                return (ReasoningDelta(thinking, index, protocol=PROTOCOL),)
            if kind == "signature_delta":
                index = self.thinking.get(obj["index"])
                if index is None:
                    return _NONE
                return (ReasoningDelta("", index, signature=delta["signature"], protocol=PROTOCOL),)
            return _NONE
        if name == "content_block_start":
            block = obj["content_block"]
            if block.get("type") == "tool_use":
                tool_index = self.next_tool
                self.next_tool += 1
                self.blocks[obj["index"]] = [tool_index, []]
                return [ToolCallDelta(tool_index, block["id"], block["name"])]
            if block.get("type") == "text" and block.get("text"):
                return [TextDelta(block["text"])]
            if block.get("type") in ("thinking", "redacted_thinking"):
                return self._reasoning_start(obj["index"], block)
            return _NONE
        if name == "content_block_stop":
            block = self.blocks.pop(obj["index"], None)
            if block is None:
                return _NONE
            return [ToolCallDelta(block[0], arguments=compact_json("".join(block[1])))]
        if name == "message_start":
            message = obj["message"]
            self.id = message.get("id")
            self.answer_model = message.get("model")
            self.usage.update(message.get("usage") or {})
            return _NONE
        if name == "message_delta":
            self.finish = obj["delta"].get("stop_reason")
            usage = obj.get("usage") or {}
            self.usage.update({k: v for k, v in usage.items() if v is not None})
            if self.finish == "refusal":  # Response.refusal "", as in a whole answer
                return _REFUSED
            return _NONE
        if name == "message_stop":
            self.finished = True
        return _NONE  # ping and unknown events: ignored, as Anthropic's versioning policy asks


class AnthropicProvider(AnthropicBatchMixin):
    """Anthropic's Messages API (``POST /v1/messages``), streaming and not.

    Built by the core from ``[providers.NAME]`` with ``type = "anthropic"``: it borrows
    the instance's pooled session (never closing it). ``base_url`` defaults to
    ``$ANTHROPIC_BASE_URL``, else ``https://api.anthropic.com``; the API key is
    ``api_key``, else the variable named by ``api_key_env`` (``ANTHROPIC_API_KEY``),
    sent as ``x-api-key`` with ``anthropic-version``.
    """

    __slots__ = ("_count_url", "_default_max_tokens", "_http", "_messages_url", "_models_url")

    def __init__(self, ctx: ProviderContext) -> None:
        settings = (
            ctx.settings if isinstance(ctx.settings, AnthropicSettings) else AnthropicSettings()
        )
        key = api_key(ctx, env=settings.api_key_env)
        headers = {"x-api-key": key, "anthropic-version": settings.version}
        if settings.beta:
            headers["anthropic-beta"] = ",".join(settings.beta)
        self._http = http = Endpoint(
            ctx,
            base_url=base_url(ctx, env="ANTHROPIC_BASE_URL", default=DEFAULT_BASE_URL),
            headers=headers,
            secret=key,
        )
        self._messages_url = http.url("/v1/messages")
        self._models_url = http.url("/v1/models")
        self._count_url = http.url("/v1/messages/count_tokens")
        self._default_max_tokens = settings.default_max_tokens

    def __repr__(self) -> str:
        return f"AnthropicProvider(instance={self._http.name!r}, host={self._http.host!r})"

    # -- static facts --------------------------------------------------------------------

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Limits, capabilities and prices of a Claude model (None if unknown)."""
        return lookup(model)

    def _max_tokens(self, model: str) -> int:
        if self._default_max_tokens is not None:
            return self._default_max_tokens
        info = lookup(model)
        if info is None or not info.max_output_tokens:
            return 4096
        return min(info.max_output_tokens, 8192)

    @staticmethod
    def _output_limit(model: str) -> int | None:
        info = lookup(model)
        return info.max_output_tokens if info is not None else None

    # -- requests ------------------------------------------------------------------------

    def _body_dict(self, request: Request, stream: bool) -> dict[str, Any]:
        if request.reasoning is not None:
            request = reasoning_off_unsaid(request, lookup)
        return build_body(
            request,
            provider=self._http.name,
            max_tokens=self._max_tokens(request.model),
            stream=stream,
            fixed_sampling=base_id(request.model) in FIXED_SAMPLING,
            output_limit=self._output_limit(request.model),
        )

    def _body(self, request: Request, stream: bool) -> bytes:
        return dumps(self._body_dict(request, stream))

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        data = await self._http.post(self._messages_url, self._body(request, False), request.model)
        return parse_message(data, request, self._http.name)

    def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd.

        A tool call's id and name are yielded when its block starts and its input, as
        compact JSON, when the block ends, so a streamed call equals the same call
        answered whole.
        """
        model = request.model
        return self._http.stream(
            self._messages_url,
            self._body(request, True),
            model,
            _Decoder(self._http, model),
            framing="sse-data",
        )

    async def count_tokens(self, request: Request) -> int:
        """The input tokens of ``request``, from ``POST /v1/messages/count_tokens`` (free,
        with rate limits of its own): the body is the Messages body's prompt fields, so
        the count includes the system prompt, tools and images as a message would."""
        body = self._body_dict(request, False)
        counted = {key: value for key, value in body.items() if key in _COUNT_FIELDS}
        http = self._http
        data = await http.post(self._count_url, dumps(counted), request.model)
        obj = json_object(data, provider=http.name, model=request.model)
        tokens = obj.get("input_tokens")
        if type(tokens) is not int or tokens < 0:
            raise http.malformed(what="token count", data=data, model=request.model)
        return tokens

    # -- models --------------------------------------------------------------------------

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models ``GET /v1/models`` lists (every page), with the facts known about each."""
        http = self._http

        async def page(after: str | None) -> tuple[list[ModelInfo], str | None]:
            params = {"limit": "1000"}
            if after is not None:
                params["after_id"] = after
            body = await http.get(self._models_url, params=params)
            try:
                out = []
                for entry in body["data"]:
                    model_id = entry["id"]
                    info = lookup(model_id) or ModelInfo(
                        model_id,
                        context_window=entry.get("max_input_tokens"),
                        max_output_tokens=entry.get("max_tokens"),
                    )
                    out.append(info)
                last = body.get("last_id")
                more = body.get("has_more") is True and isinstance(last, str)
            except (KeyError, TypeError, AttributeError) as err:
                raise http.malformed(what="model list", data=json.dumps(body), model=None) from err
            return out, last if more else None

        return await collect_pages(page, key=lambda info: info.id)

"""The ``template`` provider: the (imaginary) Template API on llmx's HTTP helpers.

The Template API (replace it with yours):

* ``POST {base_url}/chat`` with ``{"model", "system", "messages", "tools",
  "tool_choice", "format", "max_tokens", "temperature", "stop", "stream"}``, the key in
  ``Authorization: Bearer KEY``. A message is ``{"role", "content"}``, an assistant's
  may have ``"tool_calls": [{"id", "name", "arguments"}]``, a tool result is ``{"role":
  "tool", "tool_call_id", "content", "is_error"}``.
* The answer: ``{"id", "model", "text", "tool_calls", "finish", "usage": {"input",
  "output"}}``. With ``"stream": true``, newline-delimited JSON, one event a line:
  ``{"type": "text", "text"}``, ``{"type": "tool_call", "index", "id", "name"}``,
  ``{"type": "tool_args", "index", "arguments"}``, and last ``{"type": "end", "id",
  "model", "finish", "usage"}`` (or ``{"type": "error", "error": {...}}``).
* Errors: HTTP 4xx/5xx with ``{"error": {"kind", "detail"}}``; a prompt longer than
  the model's window is 400 ``too_long``, a refused prompt 400 ``content_filter``.
* ``GET {base_url}/models?cursor=C`` lists ``{"models": [{"id", "context_window"}],
  "next": C2 | null}``, one page at a time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

import llmx
import llmx.types
from llmx.http import (
    Endpoint,
    ErrorInfo,
    api_key,
    base_url,
    collect_pages,
    dumps,
    refuse_choices,
    token_count,
)
from llmx.types import FinishReason

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["DEFAULT_BASE_URL", "MODELS", "TemplateProvider", "TemplateSettings"]

DEFAULT_BASE_URL = "https://api.template.invalid/v1"
"""Where requests go unless ``base_url`` or ``$TEMPLATE_BASE_URL`` says otherwise."""

_CAPABILITIES = ["streaming", "tools", "json_mode", "system_prompt"]
MODELS = {
    "tmpl-small": llmx.ModelInfo(
        "tmpl-small", 32_000, 4_096, _CAPABILITIES, input_price=0.5, output_price=1.5
    ),
    "tmpl-large": llmx.ModelInfo(
        "tmpl-large", 128_000, 8_192, _CAPABILITIES, input_price=3.0, output_price=15.0
    ),
}
"""What is known about each model: window, output limit, capabilities, USD per million tokens."""

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
_ERROR_CLASSES: dict[str, type[llmx.ProviderError]] = {
    "too_long": llmx.ContextWindowExceededError,
    "content_filter": llmx.ContentFilterError,
}


@attrs.frozen
class TemplateSettings:
    """The keys of ``[providers.NAME]`` only this type knows (any other key is a config error)."""

    api_key_env: str = "TEMPLATE_API_KEY"
    """The environment variable holding the key when the config has no ``api_key``."""


def describe(body: Any) -> ErrorInfo:
    """What a Template API error body says: ``{"error": {"kind", "detail"}}``.

    Also used for a stream's ``error`` event (llmx passes it as ``{"error": EVENT}``).
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ErrorInfo()
    kind = error.get("kind")
    kind = kind if isinstance(kind, str) else None
    detail = error.get("detail")
    return ErrorInfo(
        detail if isinstance(detail, str) else None,
        kind,
        error_class=_ERROR_CLASSES.get(kind or ""),
    )


class TemplateProvider:
    """The Template API (``POST /chat``), streaming and not.

    Built by llmx from ``[providers.NAME]`` with ``type = "template"``; it borrows the
    instance's pooled session and never closes it.
    """

    __slots__ = ("_chat", "_http", "_models")

    def __init__(self, ctx: ProviderContext) -> None:
        settings = ctx.settings if isinstance(ctx.settings, TemplateSettings) else None
        key = api_key(ctx, env=(settings or TemplateSettings()).api_key_env)
        self._http = Endpoint(
            ctx,
            base_url=base_url(ctx, env="TEMPLATE_BASE_URL", default=DEFAULT_BASE_URL),
            headers={"Authorization": f"Bearer {key}"},
            secret=key,  # scrubbed from every error message
            describe=describe,
            stream_accept="application/x-ndjson",
        )
        self._chat = self._http.url("/chat")
        self._models = self._http.url("/models")

    def __repr__(self) -> str:
        return f"TemplateProvider(instance={self._http.name!r}, host={self._http.host!r})"

    @staticmethod
    def model_info(model: str) -> llmx.ModelInfo | None:
        """Static facts about ``model`` (limits, capabilities, prices); no I/O."""
        return MODELS.get(model)

    async def complete(self, request: llmx.Request) -> llmx.Response:
        """Send ``request`` and return the whole answer."""
        body = dumps(_body(request, self._http.name, stream=False))
        data = await self._http.post(self._chat, body, request.model)
        try:
            answer = json.loads(data)
            calls = tuple(
                llmx.ToolCall(c["id"], c["name"], c["arguments"]) for c in answer["tool_calls"]
            )
            return llmx.Response(
                answer["text"],
                answer["model"],
                self._http.name,
                id=answer["id"],
                tool_calls=calls,
                finish_reason=_FINISH.get(answer["finish"], "stop"),
                usage=_usage(answer["usage"], self._http.name, request.model),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise self._http.malformed(what="answer", data=data, model=request.model) from err

    def stream(self, request: llmx.Request) -> AsyncIterator[llmx.types.StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd.

        The API streams newline-delimited JSON, hence ``framing="ndjson"``. For an API
        streaming server-sent events, pass ``framing="sse-data"`` (the decoder's ``feed``
        then gets each event's data string) or ``"sse"`` (each ``SSEEvent``), and the
        default ``stream_accept`` to the ``Endpoint``.
        """
        return self._http.stream(
            self._chat,
            dumps(_body(request, self._http.name, stream=True)),
            request.model,
            _Decoder(self._http, request.model),
            framing="ndjson",
        )

    async def list_models(self) -> Sequence[llmx.ModelInfo]:
        """Every model ``GET /models`` lists (all pages), with what is known about each."""

        async def page(cursor: str | None) -> tuple[list[llmx.ModelInfo], str | None]:
            body = await self._http.get(self._models, params={"cursor": cursor} if cursor else None)
            try:
                models = [
                    MODELS.get(m["id"]) or llmx.ModelInfo(m["id"], m.get("context_window"))
                    for m in body["models"]
                ]
                return models, body.get("next")
            except (KeyError, TypeError, AttributeError) as err:
                what, data = "model list", json.dumps(body)
                raise self._http.malformed(what=what, data=data, model=None) from err

        return await collect_pages(page, key=lambda info: info.id)


class _Decoder:
    """One stream: NDJSON events in, llmx chunks out (see :class:`llmx.http.StreamDecoder`)."""

    final_event = "the end line"

    def __init__(self, http: Endpoint, model: str) -> None:
        self.http = http
        self.model = model
        self.finished = False
        self._end: llmx.StreamEnd | None = None

    def feed(self, event: Any) -> Sequence[llmx.types.StreamChunk]:
        """The chunks of one event (a parsed JSON line); a malformed one raises KeyError etc."""
        kind = event["type"]
        if kind == "text":
            return [llmx.TextDelta(event["text"])] if event["text"] else []
        if kind == "tool_call":
            return [llmx.ToolCallDelta(event["index"], event["id"], event["name"])]
        if kind == "tool_args":
            return [llmx.ToolCallDelta(event["index"], arguments=event["arguments"])]
        if kind == "error":
            raise self.http.payload_error(event["error"], self.model)
        if kind == "end":
            self.finished = True
            self._end = llmx.StreamEnd(
                _FINISH.get(event["finish"], "stop"),
                _usage(event["usage"], self.http.name, self.model),
                event["model"],
                event["id"],
            )
        return []  # unknown events are ignored: the API may add some

    def end(self) -> llmx.StreamEnd | None:
        """The stream's end, or None if the end line never came (llmx: "ended early")."""
        return self._end


def _usage(usage: Any, provider: str, model: str) -> llmx.Usage:
    return llmx.Usage(
        token_count(usage, "input", provider=provider, model=model),
        token_count(usage, "output", provider=provider, model=model),
    )


def _body(request: llmx.Request, provider: str, *, stream: bool) -> dict[str, Any]:
    """The Template API's request body for ``request``; what it cannot express is refused."""
    model = request.model
    # One answer per request, no token logprobs: refused before sending (the helper
    # raises UnsupportedFeatureError naming the instance, model and feature).
    refuse_choices(request, api="the Template API", provider=provider)
    if request.has_images() or request.response_format.type == "json_schema":
        feature = "images" if request.has_images() else "json_schema"
        msg = f"the Template API takes no {feature.replace('_', ' ')}"
        raise llmx.UnsupportedFeatureError(msg, provider=provider, model=model, feature=feature)
    docs, audio = request.media_kinds()
    if docs or audio:  # a model model_info does not know still gets here
        feature = "documents" if docs else "audio"
        msg = f"the Template API takes no {feature}"
        raise llmx.UnsupportedFeatureError(msg, provider=provider, model=model, feature=feature)
    body: dict[str, Any] = {"model": request.model, "messages": [], "stream": stream}
    for message in request.messages:
        if message.role == "system":
            body["system"] = message.text
            continue
        out: dict[str, Any] = {"role": message.role, "content": message.text}
        for part in message.content:
            if isinstance(part, llmx.ToolCall):
                call = {"id": part.id, "name": part.name, "arguments": part.arguments}
                out.setdefault("tool_calls", []).append(call)
            elif isinstance(part, llmx.ToolResult):
                result = {"role": "tool", "tool_call_id": part.tool_call_id}
                out = {**result, "content": part.content, "is_error": part.is_error}
        body["messages"].append(out)
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
            for t in request.tools
        ]
    if request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = choice.name if choice.mode == "tool" else choice.mode
    if request.response_format.type == "json":
        body["format"] = "json"
    for key in ("max_tokens", "temperature"):
        if getattr(request, key) is not None:
            body[key] = getattr(request, key)
    if request.stop:
        body["stop"] = list(request.stop)
    return body

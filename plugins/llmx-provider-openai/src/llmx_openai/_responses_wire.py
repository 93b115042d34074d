"""OpenAI Responses API wire format (``POST /v1/responses``): request bodies, answers, errors.

Pure functions over llmx's value types and parsed JSON, shared by ``complete`` and
``stream`` and tested without a network. Reference: OpenAI's API reference for
``POST /v1/responses`` (``CreateResponse``, the ``response`` object and its
``response.*`` stream events) in OpenAI's OpenAPI document, which the Open Responses
specification and gateways speaking it follow.

How llmx's types map:

* the system message(s) → ``instructions`` (text only, joined by blank lines);
* user messages → ``{"role": "user", "content": ...}`` input messages, their parts as
  ``input_text`` / ``input_image``; assistant turns → ``{"role": "assistant",
  "content": TEXT}`` (the ``EasyInputMessage`` form: an ``output_text`` part needs the
  output message's ``id`` and ``status``, which a conversation built by hand does not
  have) and one ``function_call`` item per tool call; tool results →
  ``function_call_output`` items;
* ``max_tokens`` → ``max_output_tokens`` (the API takes 16 or more), ``tools`` →
  function tools (``strict`` false unless the tool says, as Chat Completions'
  default), ``tool_choice``, ``response_format`` → ``text.format``;
* ``logprobs`` / ``top_logprobs`` → ``include: ["message.output_text.logprobs"]`` and
  ``top_logprobs``; the ``output_text`` parts' ``logprobs`` → ``Response.logprobs``
  (streamed: each ``response.output_text.delta``'s ``logprobs``, a
  :class:`~llmx.types.LogprobsDelta` after its text); ``n > 1`` is refused before
  sending (one answer per request);
* ``stop`` and ``seed`` do not exist in the Responses API: refused before sending
  (:class:`~llmx.UnsupportedFeatureError`).

Reasoning: ``Request.reasoning`` → ``reasoning: {effort, summary: "auto"}`` (the effort
through :func:`llmx_openai._wire.effort_for`, as Chat Completions'); each ``reasoning``
output item → one :class:`~llmx.Reasoning` part (``text``: its summary, ``data``: its
``encrypted_content``, ``id``: the item's id, ``protocol``: :data:`PROTOCOL`), and back:
the parts of an assistant message that this protocol made go before its text and
calls, as ``reasoning`` input items; other vendors' parts are dropped.
"""

from __future__ import annotations

from typing import Any

from llmx import (
    Audio,
    BadRequestError,
    Document,
    Image,
    Message,
    ProviderError,
    Reasoning,
    Request,
    Response,
    Text,
    ToolCall,
    ToolResult,
    UnsupportedFeatureError,
    Usage,
)
from llmx.http import (
    error_from_payload,
    json_object,
    refuse_choices,
    split_system,
    unexpected,
)
from llmx.plugin import own_reasoning, reasoning_off
from llmx.types import Choice, FinishReason, TokenLogprob
from llmx_openai._wire import (
    EVENT_TYPES,
    arguments_text,
    effort_for,
    parse_token_logprobs,
    schema_for,
)
from llmx_openai._wire import parse_usage as chat_usage

__all__ = [
    "API",
    "MIN_OUTPUT_TOKENS",
    "PROTOCOL",
    "build_body",
    "build_input",
    "ERROR_TYPES",
    "error_event",
    "error_from_failed",
    "finish_of",
    "parse_output",
    "parse_response",
    "parse_usage",
    "reasoning_input_item",
    "reasoning_part",
    "wants_reasoning",
]

API = "the OpenAI Responses API"

LOGPROBS_INCLUDE = "message.output_text.logprobs"
"""The ``include`` value that asks for the ``output_text`` parts' token logprobs."""
"""How errors name this protocol."""

MIN_OUTPUT_TOKENS = 16
"""The smallest ``max_output_tokens`` the API accepts (its schema's ``minimum``)."""

PROTOCOL = "openai-responses"
"""The ``protocol`` of the :class:`llmx.Reasoning` parts this provider makes (and the
only ones it sends back): encrypted reasoning items are valid for the Responses API
only."""

ERROR_TYPES: dict[str, type[ProviderError]] = {
    **EVENT_TYPES,
    "invalid_prompt": BadRequestError,
    **dict.fromkeys(
        (
            "invalid_image",
            "invalid_image_format",
            "invalid_base64_image",
            "invalid_image_url",
            "image_too_large",
            "image_too_small",
            "image_parse_error",
            "invalid_image_mode",
            "image_file_too_large",
            "unsupported_image_media_type",
            "empty_image_file",
            "failed_to_download_image",
            "image_file_not_found",
        ),
        BadRequestError,
    ),
}
"""The error class of an in-band error (a ``failed`` response's ``error.code``, an
``error`` event's ``code``): Chat Completions' table plus the Responses API's codes."""

_INCOMPLETE: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


def _refuse(request: Request, provider: str, feature: str, what: str) -> UnsupportedFeatureError:
    msg = f"{API} has no {what}; remove it from the request or use the chat completions provider"
    return UnsupportedFeatureError(msg, provider=provider, model=request.model, feature=feature)


# -- request -----------------------------------------------------------------------------


def reasoning_input_item(part: Reasoning) -> dict[str, Any] | None:
    """A :class:`~llmx.Reasoning` part as a ``reasoning`` input item (None without the
    item id, which the API requires): its summary and encrypted content."""
    if part.id is None:
        return None
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": part.id,
        "summary": [{"type": "summary_text", "text": part.text}] if part.text else [],
    }
    if part.data is not None:
        item["encrypted_content"] = part.data
    return item


def summary_text(item: dict[str, Any]) -> str:
    """The text of a ``reasoning`` item's summary parts (blank lines between them)."""
    summary = item.get("summary")
    if type(summary) is not list:
        return ""
    texts = [p["text"] for p in summary if type(p) is dict and isinstance(p.get("text"), str)]
    return "\n\n".join(texts)


def reasoning_part(item: dict[str, Any]) -> Reasoning:
    """A ``reasoning`` output item as a :class:`~llmx.Reasoning` part."""
    encrypted = item.get("encrypted_content")
    item_id = item.get("id")
    return Reasoning(
        summary_text(item),
        data=encrypted if isinstance(encrypted, str) else None,
        id=item_id if isinstance(item_id, str) else None,
        protocol=PROTOCOL,
    )


def wants_reasoning(request: Request) -> bool:
    """Whether the request asks for reasoning (set, and not turned off)."""
    return request.reasoning is not None and not reasoning_off(request.reasoning)


def _user_content(message: Message, provider: str, model: str) -> list[dict[str, Any]]:
    """A user message's text, images and documents as ``input_text`` / ``input_image`` /
    ``input_file`` parts."""
    content: list[dict[str, Any]] = []
    for p in message.content:
        if type(p) is Text:
            content.append({"type": "input_text", "text": p.text})
        elif type(p) is Image:
            content.append(
                {"type": "input_image", "image_url": p.data_url(), "detail": p.detail or "auto"}
            )
        elif type(p) is Document or type(p) is Audio:
            content.append(_media_item(p, provider, model))
    return content


# -- documents and audio (issue 15, item 7) -------------------------------------------


def _media_item(part: Document | Audio, provider: str, model: str) -> dict[str, Any]:
    """A document as an ``input_file`` part (``file_data``, a data URL, with its
    ``filename``; or ``file_url``); audio is refused: the Responses API's input content
    has no audio part (use the ``openai`` provider's Chat Completions)."""
    if type(part) is Audio:
        msg = (
            f"{provider}/{model}: the Responses API takes no audio input; send audio "
            f"through the openai provider (Chat Completions, an audio model)"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="audio")
    assert type(part) is Document
    if part.url is not None:
        item: dict[str, Any] = {"type": "input_file", "file_url": part.url}
        if part.title:
            item["filename"] = part.title
        return item
    default = "document.pdf" if part.media_type == "application/pdf" else "document.txt"
    return {"type": "input_file", "filename": part.title or default, "file_data": part.data_url()}


def build_input(request: Request, provider: str) -> tuple[str | None, list[dict[str, Any]]]:
    """``(instructions, input items)`` of a request."""
    instructions, turns = split_system(request, api=API, provider=provider)
    items: list[dict[str, Any]] = []
    for m in turns:
        parts = m.content
        role = m.role
        if role == "assistant":
            for part in own_reasoning(m, PROTOCOL):
                item = reasoning_input_item(part)
                if item is not None:
                    items.append(item)
            text = "".join(p.text for p in parts if type(p) is Text)
            if text:
                items.append({"role": "assistant", "content": text})
            items.extend(
                {
                    "type": "function_call",
                    "call_id": p.id,
                    "name": p.name,
                    "arguments": p.arguments,
                }
                for p in parts
                if type(p) is ToolCall
            )
            continue
        if len(parts) == 1 and type(parts[0]) is Text and role == "user":
            items.append({"role": "user", "content": parts[0].text})
            continue
        rest = False
        for p in parts:
            if type(p) is ToolResult:
                items.append(
                    {"type": "function_call_output", "call_id": p.tool_call_id, "output": p.content}
                )
            elif type(p) is not ToolCall:
                rest = True
        if not rest:
            continue
        if role == "tool":
            msg = (
                "a 'tool' message needs a tool result: build it with "
                "llmx.Message.tool(tool_call_id, content)"
            )
            raise BadRequestError(msg, provider=provider, model=request.model)
        items.append({"role": "user", "content": _user_content(m, provider, request.model)})
    return instructions, items


def _tools(request: Request) -> list[dict[str, Any]]:
    tools = []
    for t in request.tools:
        tool: dict[str, Any] = {"type": "function", "name": t.name}
        if t.description:
            tool["description"] = t.description
        tool["parameters"] = dict(t.parameters)
        # The Responses API makes tools strict unless told (Chat Completions does not):
        # llmx's "not said" keeps Chat Completions' meaning, so a schema written for it
        # is not rejected here.
        tool["strict"] = bool(t.strict)
        tools.append(tool)
    return tools


def build_body(
    request: Request,
    *,
    provider: str,
    stream: bool,
    store: bool,
    include_reasoning: bool,
    efforts: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /responses`` (None fields omitted, ``extra`` last).

    ``store`` is sent as is (llmx's default is false: nothing kept on the vendor's
    side); ``include_reasoning`` asks for ``reasoning.encrypted_content`` so the
    reasoning items can be sent back on the next turn (stateless, with store false).
    Prompt caching is automatic on OpenAI, as with Chat Completions: ``cache=``
    breakpoints have nothing to map to, ``prompt_cache_key`` is sent as is.
    ``efforts``: the effort levels the model takes, if known (see
    :func:`~llmx_openai._wire.effort_for`).
    """
    refuse_choices(request, api=API, provider=provider, logprobs=True)
    if request.stop:
        raise _refuse(request, provider, "stop", "stop sequences (stop=)")
    if request.seed is not None:
        raise _refuse(request, provider, "seed", "seed parameter (seed=)")
    if request.max_tokens is not None and request.max_tokens < MIN_OUTPUT_TOKENS:
        msg = (
            f"{API} takes max_output_tokens of {MIN_OUTPUT_TOKENS} or more, not "
            f"{request.max_tokens}; ask for max_tokens >= {MIN_OUTPUT_TOKENS}"
        )
        raise UnsupportedFeatureError(
            msg, provider=provider, model=request.model, feature="max_tokens"
        )
    instructions, items = build_input(request, provider)
    body: dict[str, Any] = {"model": request.model, "input": items, "store": store}
    if instructions is not None:
        body["instructions"] = instructions
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.tools:
        body["tools"] = _tools(request)
    choice = request.tool_choice
    if choice is not None:
        if choice.mode == "tool":
            body["tool_choice"] = {"type": "function", "name": choice.name}
        else:
            body["tool_choice"] = choice.mode
    fmt = request.response_format
    if fmt.type == "json":
        body["text"] = {"format": {"type": "json_object"}}
    elif fmt.type == "json_schema":
        body["text"] = {
            "format": {
                "type": "json_schema",
                "name": fmt.name or "response",
                "schema": schema_for(fmt.schema or {}, fmt.strict, provider, request.model),
                "strict": fmt.strict,
            }
        }
    if request.prompt_cache_key is not None:
        body["prompt_cache_key"] = request.prompt_cache_key
    if request.reasoning is not None:
        effort = effort_for(request.reasoning, efforts)
        if effort is not None:
            body["reasoning"] = (
                {"effort": effort, "summary": "auto"} if effort != "none" else {"effort": effort}
            )
    include = []
    if include_reasoning:
        include.append("reasoning.encrypted_content")
    if request.logprobs or request.top_logprobs is not None:
        include.append(LOGPROBS_INCLUDE)
        if request.top_logprobs is not None:
            body["top_logprobs"] = request.top_logprobs
    if include:
        body["include"] = include
    if stream:
        body["stream"] = True
    if request.extra:
        body.update(request.extra)
    return body


# -- answers -----------------------------------------------------------------------------


_USAGE_NAMES = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def parse_usage(usage: Any, provider: str, model: str | None) -> Usage | None:
    """The Responses API's ``usage`` as llmx's Usage (None if absent): Chat Completions'
    shape under other names (:func:`llmx_openai._wire.parse_usage`)."""
    return chat_usage(usage, provider, model, _USAGE_NAMES)


def finish_of(obj: dict[str, Any], *, tool_calls: bool, refused: bool) -> FinishReason | None:
    """llmx's finish reason of a ``response`` object: from ``status`` and
    ``incomplete_details.reason``; a refusal part makes it ``content_filter``."""
    status = obj.get("status")
    if status == "incomplete":
        details = obj.get("incomplete_details")
        reason = details.get("reason") if type(details) is dict else None
        return _INCOMPLETE.get(reason, "other") if isinstance(reason, str) else "other"
    if refused:
        return "content_filter"
    if status == "completed":
        return "tool_calls" if tool_calls else "stop"
    if status is None:
        return None
    return "other"


def _error(code: Any, message: Any, provider: str, model: str | None) -> ProviderError:
    return error_from_payload(
        {"type": code, "code": code, "message": message},
        provider=provider,
        model=model,
        types=ERROR_TYPES,
    )


def error_from_failed(obj: dict[str, Any], provider: str, model: str | None) -> ProviderError:
    """The typed error of a ``failed`` response (its ``error``: ``{code, message}``)."""
    error = obj.get("error")
    if type(error) is not dict:
        error = {"code": "server_error", "message": "the response failed without an error"}
    return _error(error.get("code"), error.get("message"), provider, model)


def _message_text(
    item: dict[str, Any], provider: str, model: str, logprobs: list[TokenLogprob] | None
) -> tuple[str, str | None]:
    """The text of an output ``message`` item, and its refusal (None: not refused); the
    ``output_text`` parts' token logprobs are added to ``logprobs`` (None: not asked)."""
    content = item.get("content")
    if content is None:
        return "", None
    if type(content) is not list:
        msg = f"a message item's content is {type(content).__name__}, not a list"
        raise unexpected(msg, provider=provider, model=model)
    text: list[str] = []
    refusal: str | None = None
    for part in content:
        if type(part) is not dict:
            continue
        kind = part.get("type")
        if kind == "output_text" and isinstance(part.get("text"), str):
            text.append(part["text"])
            if logprobs is not None and part.get("logprobs"):
                logprobs.extend(parse_token_logprobs(part["logprobs"], provider, model))
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            text.append(part["refusal"])
            refusal = part["refusal"] if refusal is None else refusal + part["refusal"]
    return "".join(text), refusal


def parse_output(
    obj: dict[str, Any], provider: str, model: str, logprobs: list[TokenLogprob] | None = None
) -> tuple[str, tuple[ToolCall, ...], str | None, tuple[Reasoning, ...]]:
    """``(text, tool calls, refusal, reasoning)`` of a ``response`` object's ``output``
    (refusal: the refusal parts' text, None without any); the text's token logprobs are
    added to ``logprobs`` when it is a list."""
    output = obj.get("output")
    if output is None:
        output = []
    if type(output) is not list:
        msg = f"'output' is {type(output).__name__}, not a list"
        raise unexpected(msg, provider=provider, model=model)
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    refused: str | None = None
    for i, item in enumerate(output):
        if type(item) is not dict:
            msg = f"output[{i}] is {type(item).__name__}, not an object"
            raise unexpected(msg, provider=provider, model=model)
        kind = item.get("type")
        if kind == "message":
            text, refusal = _message_text(item, provider, model, logprobs)
            texts.append(text)
            if refusal is not None:
                refused = refusal if refused is None else refused + refusal
        elif kind == "function_call":
            name = item.get("name")
            if not isinstance(name, str) or not name:
                msg = f"output[{i}] (function_call) has no name"
                raise unexpected(msg, provider=provider, model=model)
            call_id = item.get("call_id")
            calls.append(
                ToolCall(
                    call_id if isinstance(call_id, str) and call_id else f"call_{len(calls)}",
                    name,
                    arguments_text(item.get("arguments")) or "{}",
                )
            )
        elif kind == "reasoning":
            reasoning.append(reasoning_part(item))
        # built-in tools' items: kept in ``raw`` only
    return "".join(texts), tuple(calls), refused, tuple(reasoning)


def parse_response(data: bytes, request: Request, provider: str) -> Response:
    """A ``response`` object as an llmx Response (``raw`` kept if the request asks).

    A ``failed`` response (or an ``{"error": ...}`` body) raises its typed error.
    """
    model = request.model
    obj = json_object(data, provider=provider, model=model)
    if obj.get("status") == "failed":
        raise error_from_failed(obj, provider, model)
    error = obj.get("error")
    if error and obj.get("object") != "response":
        raise error_from_payload(error, provider=provider, model=model, types=ERROR_TYPES)
    tokens: list[TokenLogprob] | None = (
        [] if request.logprobs or request.top_logprobs is not None else None
    )
    text, calls, refusal, reasoning = parse_output(obj, provider, model, tokens)
    logprobs = None if tokens is None else tuple(tokens)
    answer_id = obj.get("id")
    answer_model = obj.get("model")
    finish = finish_of(obj, tool_calls=bool(calls), refused=refusal is not None)
    return Response(
        text=text,
        model=answer_model if isinstance(answer_model, str) and answer_model else model,
        provider=provider,
        tool_calls=calls,
        finish_reason=finish,
        usage=parse_usage(obj.get("usage"), provider, model) or Usage(),
        id=answer_id if isinstance(answer_id, str) else None,
        raw=obj if request.include_raw else None,
        reasoning=reasoning,
        choices=()
        if refusal is None and logprobs is None
        else (Choice(0, text, calls, finish, refusal, logprobs),),
    )


def error_event(event: dict[str, Any], provider: str, model: str | None) -> ProviderError:
    """The typed error of a stream's ``error`` event (``{type: "error", code, message,
    param}``): by its code (``rate_limit_exceeded``, ``server_error``...)."""
    return _error(event.get("code"), event.get("message"), provider, model)

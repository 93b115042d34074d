"""OpenAI Chat Completions wire format: request bodies, responses, errors.

Pure functions over llmx's value types and parsed JSON, so they are tested without a
network and shared by ``complete`` and ``stream``. Reference: OpenAI's API reference for
``POST /v1/chat/completions`` (request body, ``chat.completion`` and
``chat.completion.chunk`` objects, error codes).
"""

from __future__ import annotations

import json
from typing import Any

from llmx import (
    Audio,
    BadRequestError,
    Document,
    Image,
    Message,
    ProviderError,
    RateLimitError,
    Reasoning,
    Request,
    Response,
    Text,
    ToolCall,
    ToolResult,
    UnsupportedFeatureError,
    Usage,
)
from llmx.http import ERROR_TYPES, error_from_payload, json_object, token_count, unexpected
from llmx.plugin import reasoning_effort, strict_json_schema
from llmx.types import Choice, FinishReason, TokenLogprob

__all__ = [
    "EVENT_TYPES",
    "PROTOCOL",
    "build_body",
    "error_from_event",
    "map_finish_reason",
    "parse_completion",
    "parse_logprobs",
    "parse_token_logprobs",
    "parse_usage",
    "schema_for",
]

PROTOCOL = "openai"
"""The ``protocol`` of the :class:`llmx.Reasoning` parts this provider makes. Chat
Completions takes no reasoning back (it has no reasoning input), so none is sent."""

REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Where OpenAI-compatible servers put the reasoning text (DeepSeek and vLLM:
``reasoning_content``; OpenRouter and newer vLLM: ``reasoning``); OpenAI sends none."""

_LEVELS = ("none", "minimal", "low", "medium", "high")

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def map_finish_reason(value: Any) -> FinishReason | None:
    """OpenAI's ``finish_reason`` as llmx's (unknown values become ``"other"``)."""
    if value is None:
        return None
    return _FINISH.get(value, "other") if isinstance(value, str) else "other"


# -- request -----------------------------------------------------------------------------


def _slow_message(
    message: Message, out: list[dict[str, Any]], provider: str, model: str = ""
) -> None:
    role = message.role
    parts = message.content
    if role == "assistant":
        text = "".join(p.text for p in parts if type(p) is Text)
        calls = [p for p in parts if type(p) is ToolCall]
        wire: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            wire["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in calls
            ]
        out.append(wire)
        return
    rest = []
    for p in parts:
        if type(p) is ToolResult:
            out.append({"role": "tool", "tool_call_id": p.tool_call_id, "content": p.content})
        elif type(p) is not ToolCall:
            rest.append(p)
    if not rest:
        return
    if role == "tool":
        msg = (
            "a 'tool' message needs a tool result: build it with "
            "llmx.Message.tool(tool_call_id, content)"
        )
        raise BadRequestError(msg, provider=provider)
    if role == "system":
        out.append({"role": role, "content": "".join(p.text for p in rest if type(p) is Text)})
        return
    if len(rest) == 1 and type(rest[0]) is Text:
        out.append({"role": role, "content": rest[0].text})
        return
    content: list[dict[str, Any]] = []
    for p in rest:
        if type(p) is Text:
            content.append({"type": "text", "text": p.text})
        elif type(p) is Image:
            image: dict[str, Any] = {"url": p.data_url()}
            if p.detail is not None:
                image["detail"] = p.detail
            content.append({"type": "image_url", "image_url": image})
        elif type(p) is Document or type(p) is Audio:
            content.append(media_part(p, provider, model))
    out.append({"role": role, "content": content})


def _messages(
    messages: tuple[Message, ...], provider: str, model: str = ""
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        parts = m.content
        if len(parts) == 1 and type(parts[0]) is Text and m.role != "tool":
            out.append({"role": m.role, "content": parts[0].text})
        else:
            _slow_message(m, out, provider, model)
    return out


# -- documents and audio (issue 15, item 7) -------------------------------------------

CHAT_AUDIO_FORMATS = ("wav", "mp3")
"""The ``input_audio`` formats Chat Completions takes."""


def media_part(part: Document | Audio, provider: str, model: str) -> dict[str, Any]:
    """A document (``file`` with ``file_data``, a PDF given as bytes) or a recording
    (``input_audio``, wav or mp3) as a Chat Completions content part; what Chat
    Completions cannot take (a document by URL, plain text, other audio formats) is
    refused before sending."""
    if type(part) is Audio:
        if part.format not in CHAT_AUDIO_FORMATS:
            msg = (
                f"{provider}/{model}: Chat Completions takes audio as wav or mp3, not "
                f"{part.format!r}; convert the recording first"
            )
            raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="audio")
        return {
            "type": "input_audio",
            "input_audio": {"data": part.base64_data(), "format": part.format},
        }
    assert type(part) is Document
    if part.data is None or part.media_type != "application/pdf":
        what = "a document by URL" if part.data is None else f"{part.media_type!r} documents"
        msg = (
            f"{provider}/{model}: Chat Completions does not take {what}; pass the PDF's "
            f"bytes (llmx.Document(data=...)), or use the openai-responses provider"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="documents")
    return {
        "type": "file",
        "file": {"filename": part.title or "document.pdf", "file_data": part.data_url()},
    }


_STRICT: dict[int, tuple[Any, dict[str, Any]]] = {}
"""Strict forms by schema object (kept alive with it, so an id is never reused)."""


def schema_for(schema: Any, strict: bool, provider: str, model: str) -> dict[str, Any]:
    """The schema as sent (Chat Completions and the Responses API): in strict mode, every
    property required (optional ones as a null union) and every object closed, as
    OpenAI's structured outputs require; what strict mode cannot express is refused
    before sending."""
    if not strict:
        return dict(schema)
    # The strict form of a schema object, made once: a response_model's schema is the
    # same object on every request (bench: 12.6 -> 0.3 us per request, in-process).
    cached = _STRICT.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    try:
        strict_schema = strict_json_schema(schema)
    except ValueError as err:
        msg = f"{provider}/{model}: {err} (or ask with ResponseFormat(..., strict=False))"
        raise UnsupportedFeatureError(
            msg, provider=provider, model=model, feature="json_schema"
        ) from err
    if len(_STRICT) >= 256:
        _STRICT.clear()
    _STRICT[id(schema)] = (schema, strict_schema)
    return strict_schema


def effort_for(value: str | int, efforts: tuple[str, ...] | None) -> str | None:
    """The ``reasoning_effort`` to send for ``Request.reasoning``: its level (a budget
    through the table); for a known model, the nearest level it takes (the next higher
    one, else its highest; ``efforts`` lowest first), and nothing for ``"none"`` on a
    model that does not reason. ``efforts`` None: an unknown model, sent as asked."""
    level = reasoning_effort(value)
    assert level is not None
    if efforts is None:
        return level
    if not efforts:
        return None  # a model without reasoning: "none" is what it does anyway
    if level in efforts:
        return level
    wanted = _LEVELS.index(level)
    for candidate in efforts:
        if _LEVELS.index(candidate) >= wanted:
            return candidate
    return efforts[-1]


def build_body(
    request: Request,
    *,
    provider: str,
    max_tokens_field: str,
    stream: bool,
    stream_usage: bool,
    efforts: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The JSON body of a chat completion request (None fields omitted, ``extra`` last).

    Prompt caching is automatic on OpenAI (every prompt prefix of 1024 tokens or more):
    ``cache=`` breakpoints have nothing to map to, ``prompt_cache_key`` is sent as is.
    ``efforts``: the ``reasoning_effort`` levels the model takes, if known (see
    :func:`effort_for`). Reasoning parts in the conversation are never sent: Chat
    Completions has no field for them.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.messages, provider, request.model),
    }
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.reasoning is not None:
        effort = effort_for(request.reasoning, efforts)
        if effort is not None:
            body["reasoning_effort"] = effort
    if request.tools:
        tools = []
        for t in request.tools:
            fn: dict[str, Any] = {"name": t.name}
            if t.description:
                fn["description"] = t.description
            fn["parameters"] = dict(t.parameters)
            if t.strict is not None:
                fn["strict"] = t.strict
            tools.append({"type": "function", "function": fn})
        body["tools"] = tools
    choice = request.tool_choice
    if choice is not None:
        if choice.mode == "tool":
            body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            body["tool_choice"] = choice.mode
    fmt = request.response_format
    if fmt.type == "json":
        body["response_format"] = {"type": "json_object"}
    elif fmt.type == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": fmt.name or "response",
                "schema": schema_for(fmt.schema or {}, fmt.strict, provider, request.model),
                "strict": fmt.strict,
            },
        }
    if request.prompt_cache_key is not None:
        body["prompt_cache_key"] = request.prompt_cache_key
    if request.n is not None or request.logprobs or request.top_logprobs is not None:
        _choice_fields(request, body)
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    if request.extra:
        body.update(request.extra)
    return body


def _choice_fields(request: Request, body: dict[str, Any]) -> None:
    """``n``, ``logprobs`` and ``top_logprobs`` (issue 15, item 7; ``top_logprobs``
    implies ``logprobs``, which OpenAI requires with it)."""
    if request.n is not None:
        body["n"] = request.n
    if request.logprobs or request.top_logprobs is not None:
        body["logprobs"] = True
    if request.top_logprobs is not None:
        body["top_logprobs"] = request.top_logprobs


# -- responses ---------------------------------------------------------------------------


CHAT_USAGE = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
"""The names of Chat Completions' usage fields: input, output, and their details objects
(the Responses API has the same shape under other names)."""


def parse_usage(
    usage: Any, provider: str, model: str | None, names: tuple[str, str, str, str] = CHAT_USAGE
) -> Usage | None:
    """OpenAI's ``usage`` object as llmx's Usage (None if absent): ``prompt_tokens``
    already includes ``prompt_tokens_details.cached_tokens`` (as llmx's ``input_tokens``
    does), and OpenAI bills no cache writes. ``names``: the fields' names (see
    :data:`CHAT_USAGE`)."""
    if usage is None:
        return None
    if type(usage) is not dict:
        msg = f"usage is {type(usage).__name__}, not an object"
        raise unexpected(msg, provider=provider, model=model)
    input_name, output_name, input_details, output_details = names
    cached = reasoning = 0
    details = usage.get(input_details)
    if type(details) is dict:
        cached = token_count(
            details, "cached_tokens", provider=provider, model=model, where=input_details
        )
    details = usage.get(output_details)
    if type(details) is dict:
        reasoning = token_count(
            details, "reasoning_tokens", provider=provider, model=model, where=output_details
        )
    return Usage(
        token_count(usage, input_name, provider=provider, model=model),
        token_count(usage, output_name, provider=provider, model=model),
        cached,
        0,
        reasoning,
    )


def arguments_text(value: Any) -> str:
    """Tool-call arguments as JSON text (some compatible servers send an object)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _dumps(value)


def _content_text(content: Any, provider: str, model: str | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # a few compatible servers answer with content parts
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    msg = f"message.content is {type(content).__name__}, not a string"
    raise unexpected(msg, provider=provider, model=model)


def reasoning_text(message: Any) -> str:
    """The reasoning text of a message or a stream delta from an OpenAI-compatible server
    (:data:`REASONING_FIELDS`), or ""."""
    for field in REASONING_FIELDS:
        value = message.get(field)
        if type(value) is str and value:
            return value
    return ""


def _token(entry: Any, top: bool) -> TokenLogprob:
    token, logprob = entry["token"], entry["logprob"]
    if type(token) is not str or type(logprob) not in (float, int):
        raise TypeError(entry)
    raw_bytes = entry.get("bytes")
    as_bytes = None
    if raw_bytes is not None:
        as_bytes = tuple(raw_bytes)
        if any(type(b) is not int for b in as_bytes):
            raise TypeError(raw_bytes)
    alternatives: tuple[TokenLogprob, ...] = ()
    if top and entry.get("top_logprobs"):
        alternatives = tuple(_token(t, False) for t in entry["top_logprobs"])
    return TokenLogprob(token, float(logprob), as_bytes, alternatives)


def parse_token_logprobs(
    entries: Any, provider: str, model: str | None
) -> tuple[TokenLogprob, ...]:
    """A list of OpenAI token logprobs (``[{token, logprob, bytes, top_logprobs}]``, what
    Chat Completions' ``logprobs.content`` and the Responses API's ``output_text``
    ``logprobs`` hold) as llmx's tokens."""
    try:
        return tuple(_token(e, True) for e in entries)
    except (AttributeError, KeyError, TypeError) as err:
        msg = f"unexpected logprobs in the answer: {entries!r:.200}"
        raise unexpected(msg, provider=provider, model=model) from err


def parse_logprobs(value: Any, provider: str, model: str | None) -> tuple[TokenLogprob, ...] | None:
    """A choice's ``logprobs`` (``{"content": [{token, logprob, bytes, top_logprobs}]}``,
    also in stream chunks) as llmx's tokens; None when absent. ``refusal`` tokens (the
    logprobs of a refusal message) are kept the same way when there is no content."""
    if value is None:
        return None
    try:
        entries = value.get("content")
        if entries is None:
            entries = value.get("refusal")
        if entries is None:
            return ()
        return tuple(_token(e, True) for e in entries)
    except (AttributeError, KeyError, TypeError) as err:
        msg = f"unexpected logprobs in the answer: {value!r:.200}"
        raise unexpected(msg, provider=provider, model=model) from err


_Parsed = tuple[
    int,
    str,
    tuple[ToolCall, ...],
    FinishReason | None,
    str | None,
    tuple[TokenLogprob, ...] | None,
    tuple[Reasoning, ...],
]
"""A parsed choice: index (its position; ``index`` read only among several), text, tool calls, finish reason, refusal, logprobs, reasoning
(a tuple, not a Choice: a plain answer builds no Choice)."""


def _parse_choice(choice: Any, position: int, provider: str, model: str | None) -> _Parsed:
    message = choice.get("message") if type(choice) is dict else None
    if type(message) is not dict:
        msg = f"choices[{position}].message is missing or not an object"
        raise unexpected(msg, provider=provider, model=model)
    text = _content_text(message.get("content"), provider, model)
    finish = map_finish_reason(choice.get("finish_reason"))
    refusal = message.get("refusal")
    if refusal and type(refusal) is str:
        # The model refused (OpenAI's refusal field): the message is the text, as it
        # was before Response.refusal existed, and the finish reason content_filter.
        if not text:
            text = refusal
        finish = "content_filter"
    else:
        refusal = None
    calls: tuple[ToolCall, ...] = ()
    raw_calls = message.get("tool_calls")
    if raw_calls:
        if type(raw_calls) is not list:
            msg = "message.tool_calls is not a list"
            raise unexpected(msg, provider=provider, model=model)
        out = []
        for i, call in enumerate(raw_calls):
            fn = call.get("function") if type(call) is dict else None
            if type(fn) is not dict or not isinstance(fn.get("name"), str):
                msg = f"tool_calls[{i}] has no function name"
                raise unexpected(msg, provider=provider, model=model)
            call_id = call.get("id")
            out.append(
                ToolCall(
                    call_id if isinstance(call_id, str) and call_id else f"call_{i}",
                    fn["name"],
                    arguments_text(fn.get("arguments")) or "{}",
                )
            )
        calls = tuple(out)
    reasoning: tuple[Reasoning, ...] = ()
    if "reasoning_content" in message or "reasoning" in message:  # compatible servers
        thought = reasoning_text(message)
        if thought:
            reasoning = (Reasoning(thought, protocol=PROTOCOL),)
    logprobs = choice.get("logprobs")
    return (
        position,
        text,
        calls,
        finish,
        refusal,
        None if logprobs is None else parse_logprobs(logprobs, provider, model),
        reasoning,
    )


def parse_completion(data: bytes, request: Request, provider: str) -> Response:
    """A ``chat.completion`` body as a Response (``raw`` kept if the request asks).

    Choice 0 (by ``index``) is the Response's text, tool calls and finish reason; all of
    them are in ``Response.choices`` when there are several, or logprobs or a refusal
    (usage is the API's, summed over the choices)."""
    model = request.model
    obj = json_object(data, provider=provider, model=model)
    if obj.get("error"):
        raise error_from_event(obj["error"], provider, model)
    choices = obj.get("choices")
    if type(choices) is not list or not choices:
        msg = "no 'choices' in the answer"
        raise unexpected(msg, provider=provider, model=model)
    first = _parse_choice(choices[0], 0, provider, model)
    all_choices: tuple[Choice, ...] = ()
    if len(choices) > 1:
        parsed = [first]
        for i, c in enumerate(choices):
            if i:
                index = c.get("index") if type(c) is dict else None
                parsed.append(_parse_choice(c, index if type(index) is int else i, provider, model))
        index = choices[0].get("index")
        if type(index) is int:
            parsed[0] = (index, *first[1:])
        parsed.sort(key=lambda c: c[0])
        first = parsed[0]
        all_choices = tuple(Choice(*c[:6]) for c in parsed)
    _, text, calls, finish, refusal, logprobs, reasoning = first
    if not all_choices and (refusal is not None or logprobs is not None):
        all_choices = (Choice(*first[:6]),)
    answer_id = obj.get("id")
    answer_model = obj.get("model")
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
        choices=all_choices,
    )


# -- errors ------------------------------------------------------------------------------

EVENT_TYPES: dict[str, type[ProviderError]] = {
    **ERROR_TYPES,
    "requests": RateLimitError,
    "tokens": RateLimitError,
}
"""The error class of an in-band error by its type (OpenAI's rate-limit types beside the
common ones)."""


def error_from_event(
    error: Any, provider: str, model: str | None, secret: str | None = None
) -> ProviderError:
    """The llmx error for an ``{"error": ...}`` payload inside a 200 answer or a stream."""
    return error_from_payload(
        error, provider=provider, model=model, secret=secret, types=EVENT_TYPES
    )

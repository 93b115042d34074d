"""Anthropic Messages wire format: request bodies, responses, stream events, errors.

Pure functions over llmx's value types and parsed JSON, shared by ``complete`` and
``stream``. Reference: Anthropic's API reference for ``POST /v1/messages`` (request
body, ``message`` object, streaming events, errors) and its OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmx import (
    Audio,
    BadRequestError,
    CacheControl,
    Document,
    Image,
    Message,
    PermissionDeniedError,
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
    ERROR_TYPES,
    error_from_payload,
    inline_image,
    json_object,
    refuse_choices,
    split_system,
    token_count,
    unexpected,
)
from llmx.plugin import reasoning_budget, reasoning_off
from llmx.types import Choice, FinishReason

__all__ = [
    "EVENT_TYPES",
    "PROTOCOL",
    "IMAGE_TYPES",
    "MAX_BREAKPOINTS",
    "build_body",
    "check_breakpoints",
    "error_from_event",
    "map_stop_reason",
    "parse_message",
    "parse_usage",
]

PROTOCOL = "anthropic"
"""The ``protocol`` of the :class:`llmx.Reasoning` parts this provider makes and sends back."""

MIN_THINKING_BUDGET = 1024
"""Anthropic's smallest ``thinking.budget_tokens``."""

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""The image media types the Messages API accepts."""

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "pause",
    "compaction": "pause",
}
"""Every ``stop_reason`` of Anthropic's published schema (``StopReason`` and
``BetaStopReason``) as llmx's; tests/test_stop_reasons.py checks that none is missing.
``pause_turn`` (server tools paused a long turn) and ``compaction`` (the context was
compacted) both wait for the caller to send the conversation again: ``pause``."""

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def map_stop_reason(value: Any) -> FinishReason | None:
    """Anthropic's ``stop_reason`` as llmx's finish reason (unknown values: other)."""
    if value is None:
        return None
    return _STOP.get(value, "other") if isinstance(value, str) else "other"


def compact_json(arguments: str) -> str:
    """Tool input JSON in one canonical spelling (compact), or as is if it is not JSON."""
    try:
        return _dumps(json.loads(arguments)) if arguments else "{}"
    except ValueError:
        return arguments


# -- request -----------------------------------------------------------------------------


def _image_block(image: Image, provider: str, model: str) -> dict[str, Any]:
    if image.url is not None and not image.url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    media_type, data = inline_image(
        image, IMAGE_TYPES, api="Anthropic", provider=provider, model=model
    )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


# -- documents and audio (issue 15, item 7) -------------------------------------------


def _document_block(part: Document | Audio, provider: str, model: str) -> dict[str, Any]:
    """A ``document`` block: a PDF as ``base64`` or ``url``, plain text as ``text``;
    audio is refused (the Messages API takes no audio)."""
    if type(part) is Audio:
        msg = f"{provider}/{model}: Anthropic's Messages API takes no audio input"
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="audio")
    assert type(part) is Document
    source: dict[str, Any]
    if part.url is not None:
        source = {"type": "url", "url": part.url}
    elif part.media_type == "text/plain":
        assert part.data is not None
        source = {"type": "text", "media_type": "text/plain", "data": part.data.decode()}
    else:
        source = {
            "type": "base64",
            "media_type": "application/pdf",
            "data": part.data_url().partition(",")[2],
        }
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.title:
        block["title"] = part.title
    return block


def _tool_input(call: ToolCall, provider: str) -> Any:
    try:
        value = json.loads(call.arguments) if call.arguments else {}
    except ValueError as err:
        msg = f"tool call {call.id!r} has arguments that are not JSON: {call.arguments[:80]!r}"
        raise BadRequestError(msg, provider=provider) from err
    if not isinstance(value, dict):
        msg = f"tool call {call.id!r} has arguments that are not a JSON object"
        raise BadRequestError(msg, provider=provider)
    return value


# -- prompt caching: cache_control on blocks, the system prompt and tools -------------------

MAX_BREAKPOINTS = 4
"""The most ``cache_control`` breakpoints one Messages request may carry."""


def _cache_control(cache: CacheControl) -> dict[str, str]:
    # The default TTL (5m) is left implicit, as Anthropic's own examples do.
    return {"type": "ephemeral", "ttl": "1h"} if cache.ttl == "1h" else {"type": "ephemeral"}


def _system_marked(request: Request) -> bool:
    for m in request.messages:
        if m.role == "system":
            if m.cache is not None:
                return True
            for p in m.content:
                if type(p) is Text and p.cache is not None:
                    return True
    return False


def _system_blocks(request: Request) -> list[dict[str, Any]] | None:
    """The system prompt as text blocks when it carries a breakpoint (None: a string will do)."""
    if not _system_marked(request):
        return None
    systems = [m for m in request.messages if m.role == "system"]
    blocks: list[dict[str, Any]] = []
    for m in systems:
        for p in m.content:
            if type(p) is Text and p.text:
                block: dict[str, Any] = {"type": "text", "text": p.text}
                if p.cache is not None:
                    block["cache_control"] = _cache_control(p.cache)
                blocks.append(block)
        if m.cache is not None and blocks:
            blocks[-1]["cache_control"] = _cache_control(m.cache)
    return blocks


def check_breakpoints(body: dict[str, Any], provider: str, model: str) -> None:
    """Refuse, before sending, more than :data:`MAX_BREAKPOINTS` breakpoints, or a one-hour
    breakpoint after a five-minute one (Anthropic reads tools, system, then messages,
    and wants longer TTLs first)."""
    ttls = [str((b["cache_control"] or {}).get("ttl", "5m")) for b in _cached_blocks(body)]
    if len(ttls) > MAX_BREAKPOINTS:
        msg = (
            f"{provider}/{model}: Anthropic takes at most {MAX_BREAKPOINTS} prompt-cache "
            f"breakpoints per request and this one has {len(ttls)} (cache= on tools, the "
            "system prompt, messages and text parts); remove some"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="prompt_caching")
    if "5m" in ttls and "1h" in ttls[ttls.index("5m") :]:
        msg = (
            f"{provider}/{model}: a one-hour prompt-cache breakpoint follows a five-minute "
            "one; Anthropic wants the longer TTL first (tools, then system, then messages)"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="prompt_caching")


def _cached_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks of ``body`` carrying ``cache_control``, in the order Anthropic reads them."""
    out = [t for t in body.get("tools") or () if isinstance(t, dict) and "cache_control" in t]
    system = body.get("system")
    if isinstance(system, list):
        out.extend(b for b in system if isinstance(b, dict) and "cache_control" in b)
    for turn in body.get("messages") or ():  # ``extra`` may have replaced anything
        content = turn.get("content") if isinstance(turn, dict) else None
        if isinstance(content, list):
            out.extend(b for b in content if isinstance(b, dict) and "cache_control" in b)
    return out


def _blocks(
    message: Message, provider: str, model: str, marked: list[bool]
) -> list[dict[str, Any]]:
    """The content blocks of ``message``; ``marked[0]`` is set if one carries a breakpoint."""
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if type(part) is Text:
            if part.text:
                if part.cache is not None:
                    marked[0] = True
                    blocks.append(
                        {
                            "type": "text",
                            "text": part.text,
                            "cache_control": _cache_control(part.cache),
                        }
                    )
                else:
                    blocks.append({"type": "text", "text": part.text})
        elif type(part) is Image:
            blocks.append(_image_block(part, provider, model))
        elif type(part) is Document or type(part) is Audio:
            blocks.append(_document_block(part, provider, model))
        elif type(part) is ToolCall:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": part.id,
                    "name": part.name,
                    "input": _tool_input(part, provider),
                }
            )
        elif type(part) is Reasoning:
            thinking = _thinking_block(part, message.role)
            if thinking is not None:
                blocks.append(thinking)
        elif type(part) is ToolResult:
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": part.tool_call_id,
                "content": part.content,
            }
            if part.is_error:
                block["is_error"] = True
            blocks.append(block)
    if message.cache is not None and blocks:
        marked[0] = True
        blocks[-1]["cache_control"] = _cache_control(message.cache)
    return blocks


def _thinking_block(part: Reasoning, role: str) -> dict[str, Any] | None:
    """A reasoning part as the block Anthropic wants back, or None to drop it: another
    vendor's state, or thinking without the signature Anthropic requires."""
    if part.protocol != PROTOCOL or role != "assistant":
        return None
    if part.data is not None and not part.text:
        return {"type": "redacted_thinking", "data": part.data}
    if part.signature is None:
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _in_tool_loop_without_thinking(messages: list[dict[str, Any]]) -> bool:
    """Whether the last assistant turn calls tools but does not start with a thinking
    block: Anthropic then refuses extended thinking ("a final assistant message must
    start with a thinking block"), as the turn began without it (or elsewhere)."""
    for turn in reversed(messages):
        if turn["role"] != "assistant":
            continue
        content = turn["content"]
        if not isinstance(content, list) or not any(b["type"] == "tool_use" for b in content):
            return False
        return content[0]["type"] not in ("thinking", "redacted_thinking")
    return False


def _thinking(
    request: Request,
    body: dict[str, Any],
    *,
    provider: str,
    limit: int | None,
) -> None:
    """Set ``thinking`` (and adjust ``max_tokens``) for ``request.reasoning``.

    The rules (docs/features/reasoning.md): ``"none"``/0 sends ``{"type": "disabled"}``;
    otherwise the budget (the effort's, or the one given) is at least 1024. Without
    ``max_tokens`` in the request, ``max_tokens`` becomes the budget plus the default
    answer allowance (at most the model's output limit); a budget not below
    ``max_tokens`` is halved to ``max_tokens // 2``, and refused when that is under 1024.
    Thinking accepts no ``temperature`` other than 1, no ``top_p`` below 0.95 and only
    ``tool_choice`` auto or none: such requests are refused. A tool loop whose last
    assistant turn has no thinking block (begun without reasoning, or by another
    vendor) continues without thinking, as Anthropic requires.
    """
    value = request.reasoning
    model = request.model
    if value is None:
        return
    if reasoning_off(value):
        body["thinking"] = {"type": "disabled"}
        return
    if _in_tool_loop_without_thinking(body["messages"]):
        return
    if request.temperature is not None and request.temperature != 1:
        msg = (
            f"{provider}/{model}: Anthropic's extended thinking takes no temperature other "
            "than 1; remove temperature= or reasoning="
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="temperature")
    if request.top_p is not None and not 0.95 <= request.top_p <= 1:
        msg = f"{provider}/{model}: with extended thinking, top_p must be between 0.95 and 1"
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="top_p")
    choice = request.tool_choice
    if choice is not None and choice.mode in ("required", "tool"):
        msg = (
            f"{provider}/{model}: with extended thinking, Anthropic takes tool_choice "
            "'auto' or 'none' only"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="tool_choice")
    budget = max(reasoning_budget(value) or 0, MIN_THINKING_BUDGET)
    max_tokens = body["max_tokens"]
    if request.max_tokens is None:
        max_tokens = budget + max_tokens
        if limit is not None:
            max_tokens = min(max_tokens, limit)
        body["max_tokens"] = max_tokens
    if budget >= max_tokens:
        budget = max_tokens // 2
        if budget < MIN_THINKING_BUDGET:
            msg = (
                f"{provider}/{model}: max_tokens={max_tokens} leaves no room for Anthropic's "
                f"minimum thinking budget ({MIN_THINKING_BUDGET} tokens) plus an answer; "
                "raise max_tokens or leave reasoning= unset"
            )
            raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="reasoning")
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _messages(
    request: Request, provider: str, marked: list[bool]
) -> tuple[str | None, list[dict[str, Any]]]:
    """The system prompt and the alternating user/assistant messages (``marked[0]`` set
    if a message carries a breakpoint)."""
    system, messages = split_system(request, api="Anthropic", provider=provider)
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, provider, request.model, marked)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # the API wants the sides to alternate
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user":
            # Tool results come first in a user turn, before any text.
            content.sort(key=lambda b: b["type"] != "tool_result")
        if len(content) == 1 and content[0]["type"] == "text" and "cache_control" not in content[0]:
            turn["content"] = content[0]["text"]
    return system, turns


_MOVED = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
"""Constraints Anthropic's structured outputs do not take (with ``minItems`` above 1):
said in the description instead, as Anthropic's own SDK does (llmx still checks the
answer against the whole schema, and re-asks when it breaks one)."""


def _output_schema(schema: Any, provider: str, model: str) -> Any:
    """The schema as Anthropic's structured outputs take it (:func:`_closed`); a
    recursive one is refused before sending, as Anthropic does not take those."""
    defs = schema.get("$defs") if isinstance(schema, Mapping) else None
    if isinstance(defs, Mapping):
        for name in defs:
            if _reaches(defs, name, name, set()):
                msg = (
                    f"{provider}/{model}: the schema is recursive ($defs.{name} refers to "
                    "itself), which Anthropic's structured outputs do not take"
                )
                raise UnsupportedFeatureError(
                    msg, provider=provider, model=model, feature="json_schema"
                )
    return _closed(schema, "$", provider, model)


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    if not isinstance(node, Mapping):
        return []
    ref = node.get("$ref")
    found = [ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else []
    return found + [r for value in node.values() for r in _refs(value)]


def _reaches(defs: Mapping[str, Any], start: str, target: str, seen: set[str]) -> bool:
    for ref in _refs(defs.get(start)):
        if ref == target:
            return True
        if ref not in seen:
            seen.add(ref)
            if _reaches(defs, ref, target, seen):
                return True
    return False


def _closed(schema: Any, path: str, provider: str, model: str) -> Any:
    """``schema`` with every object closed (``additionalProperties: false`` added where
    it is missing) and the constraints Anthropic does not take moved into the
    description (:data:`_MOVED`); an object that is open on purpose
    (``additionalProperties`` true or a schema, e.g. a dict) is refused before sending."""
    if isinstance(schema, list):
        return [_closed(item, path, provider, model) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs") and isinstance(value, Mapping):
            out[key] = {
                name: _closed(sub, f"{path}.{name}", provider, model) for name, sub in value.items()
            }
        else:
            out[key] = _closed(value, path, provider, model)
    if out.get("type") == "object" or "properties" in out:
        extra = out.setdefault("additionalProperties", False)
        if extra is not False:
            msg = (
                f"{provider}/{model}: {path} is an object with open keys "
                "(additionalProperties, e.g. a dict), which Anthropic's structured outputs "
                "do not take; use a class with named fields"
            )
            raise UnsupportedFeatureError(
                msg, provider=provider, model=model, feature="json_schema"
            )
    moved = [f"{key}: {json.dumps(out.pop(key))}" for key in _MOVED if key in out]
    low = out.get("minItems")
    if isinstance(low, int) and low > 1:
        moved.append(f"minItems: {out.pop('minItems')}")
    if moved:
        said = "{" + ", ".join(moved) + "}"
        text = out.get("description")
        out["description"] = f"{text}\n\n{said}" if isinstance(text, str) and text else said
    return out


def build_body(
    request: Request,
    *,
    provider: str,
    max_tokens: int,
    stream: bool,
    fixed_sampling: bool,
    output_limit: int | None = None,
) -> dict[str, Any]:
    """The JSON body of a Messages request (None fields omitted, ``extra`` last).

    ``fixed_sampling``: the model rejects sampling parameters, so a ``temperature``
    other than 1 or a ``top_p`` below 0.99 is refused here, before sending.
    ``output_limit``: the model's output limit, if known (for ``max_tokens`` with
    thinking).
    """
    model = request.model
    refuse_choices(request, api="Anthropic's Messages API", provider=provider)
    if request.seed is not None:
        msg = "Anthropic's Messages API has no seed parameter; remove seed= from the request"
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="seed")
    if request.response_format.type == "json":
        msg = (
            f"{provider}/{model}: Anthropic has no JSON mode; ask for "
            "ResponseFormat('json_schema', schema) (structured output) instead"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="json_mode")
    if fixed_sampling:
        if request.temperature is not None and request.temperature != 1:
            msg = f"{model} does not accept a temperature (other than 1); remove temperature="
            raise UnsupportedFeatureError(
                msg, provider=provider, model=model, feature="temperature"
            )
        if request.top_p is not None and request.top_p < 0.99:
            msg = f"{model} does not accept top_p below 0.99; remove top_p="
            raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="top_p")
    # Breakpoints are noticed while the blocks are built, not by another scan of the
    # request (timeit, process time: build_body 3.9 -> 2.7 us for four messages, none marked).
    marked = [False]
    system, messages = _messages(request, provider, marked)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else max_tokens,
        "messages": messages,
    }
    if system is not None:
        blocks = _system_blocks(request)
        if blocks is not None:
            marked[0] = True
        body["system"] = blocks or system
    if request.reasoning is not None:
        _thinking(request, body, provider=provider, limit=output_limit)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        tools = []
        for t in request.tools:
            tool: dict[str, Any] = {"name": t.name}
            if t.description:
                tool["description"] = t.description
            tool["input_schema"] = dict(t.parameters)
            if t.strict is not None:
                tool["strict"] = t.strict
            if t.cache is not None:
                marked[0] = True
                tool["cache_control"] = _cache_control(t.cache)
            tools.append(tool)
        body["tools"] = tools
    choice = request.tool_choice
    if choice is not None:
        if choice.mode == "tool":
            body["tool_choice"] = {"type": "tool", "name": choice.name}
        else:
            body["tool_choice"] = {"type": "any" if choice.mode == "required" else choice.mode}
    fmt = request.response_format
    if fmt.type == "json_schema":
        body["output_config"] = {
            "format": {
                "type": "json_schema",
                "schema": _output_schema(fmt.schema or {}, provider, model),
            }
        }
    if stream:
        body["stream"] = True
    if request.extra:
        body.update(request.extra)
    if marked[0]:
        check_breakpoints(body, provider, model)
    return body


# -- responses ---------------------------------------------------------------------------


def parse_usage(usage: Any, provider: str, model: str | None) -> Usage:
    """Anthropic's ``usage`` as llmx's: ``input_tokens`` includes cache reads and writes
    (Anthropic's excludes them), ``cache_write_1h_tokens`` is
    ``cache_creation.ephemeral_1h_input_tokens``."""
    if usage is None:
        return Usage()
    if type(usage) is not dict:
        msg = f"usage is {type(usage).__name__}, not an object"
        raise unexpected(msg, provider=provider, model=model)
    cached = token_count(usage, "cache_read_input_tokens", provider=provider, model=model)
    written = token_count(usage, "cache_creation_input_tokens", provider=provider, model=model)
    details = usage.get("output_tokens_details")
    thinking = (
        token_count(
            details,
            "thinking_tokens",
            provider=provider,
            model=model,
            where="usage.output_tokens_details",
        )
        if type(details) is dict
        else 0
    )
    creation = usage.get("cache_creation")
    written_1h = (
        token_count(
            creation,
            "ephemeral_1h_input_tokens",
            provider=provider,
            model=model,
            where="usage.cache_creation",
        )
        if type(creation) is dict
        else 0
    )
    return Usage(
        token_count(usage, "input_tokens", provider=provider, model=model) + cached + written,
        token_count(usage, "output_tokens", provider=provider, model=model),
        cached,
        written,
        thinking,
        written_1h,
    )


def parse_message(data: bytes, request: Request, provider: str) -> Response:
    """A ``message`` body as a Response (``raw`` kept if the request asks)."""
    model = request.model
    obj = json_object(data, provider=provider, model=model)
    if obj.get("type") == "error":
        raise error_from_event(obj.get("error"), provider, model)
    content = obj.get("content")
    if type(content) is not list:
        msg = "no 'content' list in the message"
        raise unexpected(msg, provider=provider, model=model)
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    for i, block in enumerate(content):
        if type(block) is not dict:
            msg = f"content[{i}] is not an object"
            raise unexpected(msg, provider=provider, model=model)
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                msg = f"content[{i}].text is not a string"
                raise unexpected(msg, provider=provider, model=model)
            texts.append(block["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                msg = f"content[{i}] (tool_use) has no id or name"
                raise unexpected(msg, provider=provider, model=model)
            calls.append(ToolCall(block["id"], block["name"], _dumps(block.get("input", {}))))
        elif kind == "thinking":
            thinking, signature = block.get("thinking"), block.get("signature")
            if not isinstance(thinking, str) or not isinstance(signature, str):
                msg = f"content[{i}] (thinking) has no thinking text or signature"
                raise unexpected(msg, provider=provider, model=model)
            reasoning.append(Reasoning(thinking, signature=signature, protocol=PROTOCOL))
        elif kind == "redacted_thinking":
            data = block.get("data")
            if not isinstance(data, str):
                msg = f"content[{i}] (redacted_thinking) has no data"
                raise unexpected(msg, provider=provider, model=model)
            reasoning.append(Reasoning(data=data, protocol=PROTOCOL))
    answer_model = obj.get("model")
    answer_id = obj.get("id")
    stop_reason = obj.get("stop_reason")
    text = "".join(texts)
    finish = map_stop_reason(stop_reason)
    return Response(
        text=text,
        model=answer_model if isinstance(answer_model, str) and answer_model else model,
        provider=provider,
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=parse_usage(obj.get("usage"), provider, model),
        id=answer_id if isinstance(answer_id, str) else None,
        raw=obj if request.include_raw else None,
        reasoning=tuple(reasoning),
        # A refusal has no message of its own on Anthropic: Response.refusal is "".
        choices=(Choice(0, text, tuple(calls), finish, ""),) if stop_reason == "refusal" else (),
    )


# -- errors ------------------------------------------------------------------------------

EVENT_TYPES: dict[str, type[ProviderError]] = {
    **ERROR_TYPES,
    "request_too_large": BadRequestError,
    "billing_error": PermissionDeniedError,
}
"""The error class of an ``error`` event by its type (Anthropic's beside the common ones)."""


def error_from_event(
    error: Any, provider: str, model: str | None, secret: str | None = None
) -> ProviderError:
    """The llmx error for an ``error`` stream event (or an error object in a 200 body)."""
    return error_from_payload(
        error, provider=provider, model=model, secret=secret, types=EVENT_TYPES
    )

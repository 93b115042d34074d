"""Cache keys: a versioned sha256 digest of the canonical request.

The canonical document holds what changes a model's output and nothing else: the
model *as resolved* (the provider instance and the provider's model name), the
messages, and every generation parameter. It never holds credentials (a
:class:`~llmx.Request` carries none), request ids, timeouts, ``include_raw``, or the
prompt-cache controls (``cache=`` breakpoints, ``prompt_cache_key``), which change
what the vendor caches and bills, not the answer.

Canonical JSON: keys sorted, fixed separators, ASCII only; float fields are
normalised (``1`` and ``1.0`` are the same temperature), and numbers in open
mappings (``extra``, tool schemas) are normalised so an integral float equals the
integer (``1.0`` -> ``1``). The digest is prefixed with a versioned namespace
(``llmx:v1:``), so a change of this format never reads old entries.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _str
from typing import Any

from llmx._types import (
    Message,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)

KEY_VERSION = 1
"""The version of the canonical form; bumped whenever it changes."""

KEY_PREFIX = f"llmx:v{KEY_VERSION}:"
"""What every cache key starts with (before the optional namespace)."""

# Keys of ``Request.extra`` that never change the output: identifiers and bookkeeping.
IGNORED_EXTRA = frozenset(
    {"user", "metadata", "request_id", "idempotency_key", "store", "timeout", "stream_options"}
)


def _number(value: float) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)  # JSON has no NaN/inf; keep them distinct and valid
        if value.is_integer():
            return int(value)
    return value


def _normalise(value: Any) -> Any:
    """Open JSON-like data with numbers normalised (bools untouched)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_normalise(v) for v in value), key=repr)
    return value


def _float(value: float | None) -> Any:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return repr(value)
    return value


def canonical_body(request: Request) -> str:
    """The canonical JSON of everything in ``request`` that changes the output,
    except the model (which :func:`cache_key` adds as resolved)."""
    # Built straight from the fields (bench: cache hits, memory backend: the key went
    # from ~8 µs to ~2 µs, most of a hit); anything unusual takes the general path,
    # which gives the same bytes (tests/test_cachekey.py compares the two).
    body = _direct_body(request)
    return body if body is not None else canonical_body_general(request)


def canonical_body_general(request: Request) -> str:
    """:func:`canonical_body` through cattrs: the definition of the canonical form,
    for any request (:func:`canonical_body` takes it for what its direct path skips)."""
    from llmx._convert import to_json

    data = to_json(request)
    data.pop("model", None)
    data.pop("include_raw", None)
    # Prompt-cache breakpoints and the prompt-cache key steer the vendor's cache, never
    # the answer: left out, so a request hits llmx's cache with or without them.
    data.pop("prompt_cache_key", None)
    for message in data.get("messages", ()):
        message.pop("cache", None)
        for part in message.get("content", ()):
            part.pop("cache", None)
    for tool in data.get("tools", ()):
        tool.pop("cache", None)
    if data.get("reasoning") is None:
        data.pop("reasoning", None)  # keys of requests without it stay as they were
    # n > 1 and logprobs change the answer; left out when unset, likewise.
    if data.get("n") is None:
        data.pop("n", None)
    if not data.get("logprobs"):
        data.pop("logprobs", None)
    if data.get("top_logprobs") is None:
        data.pop("top_logprobs", None)
    data["extra"] = {k: v for k, v in data.get("extra", {}).items() if k not in IGNORED_EXTRA}
    # Messages hold only strings and booleans once unstructured; numbers live in the
    # open mappings: extra, tool parameter schemas, response format schemas.
    for name in ("tools", "extra", "response_format"):
        data[name] = _normalise(data.get(name))
    data["temperature"] = _float(request.temperature)
    data["top_p"] = _float(request.top_p)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# -- the direct path --------------------------------------------------------------------
# It writes the same JSON as canonical_body_general for requests whose fields hold the
# types they are declared with (exactly: no subclasses) and open mappings of plain JSON
# (dict, list, tuple, str, int, float, bool, None; string keys); for anything else it
# returns None and the general path runs.

_DUMPS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode
"""``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``."""

_NOT_PLAIN: Any = object()
_DEFAULT_FORMAT = '{"name":null,"schema":null,"strict":true,"type":"text"}'
_BODY = (
    '{{"extra":{},"max_tokens":{},"messages":{},"response_format":{},"seed":{},'
    '"stop":{},"temperature":{},"tool_choice":{},"tools":{},"top_p":{}}}'
)
_BODY_REASONING = _BODY.replace('"messages":{},', '"messages":{},"reasoning":{},')
"""The body of a request with ``reasoning`` set (omitted when None, so the keys of
requests without it did not change when the field was added)."""


def _plain(value: Any) -> Any:
    """``value`` normalised as :func:`_normalise` does, or ``_NOT_PLAIN`` when it holds
    anything but plain JSON types (which cattrs might unstructure differently)."""
    t = type(value)
    if t is str or t is bool or t is int or value is None:
        return value
    if t is float:
        return _number(value)
    if t is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                return _NOT_PLAIN
            v = _plain(v)
            if v is _NOT_PLAIN:
                return _NOT_PLAIN
            out[k] = v
        return out
    if t is list or t is tuple:
        items = []
        for v in value:
            v = _plain(v)
            if v is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(v)
        return items
    return _NOT_PLAIN


def _int(value: Any) -> str | None:
    if value is None:
        return "null"
    return int.__repr__(value) if type(value) is int else None


def _float_json(value: Any) -> str | None:
    if value is not None and type(value) is not float and type(value) is not int:
        return None
    value = _float(value)
    if value is None:
        return "null"
    return _str(value) if type(value) is str else float.__repr__(value)


def _opt_str(value: Any) -> str | None:
    if value is None:
        return "null"
    return _str(value) if type(value) is str else None


def _messages(messages: Any) -> str | None:
    out: list[str] = []
    for m in messages:
        cls = type(m)  # compared through a name: mypy would narrow type(m), not check it
        if cls is not Message or type(m.role) is not str:
            return None
        parts = []
        for p in m.content:
            t = type(p)
            if t is Text:
                if type(p.text) is not str:
                    return None
                parts.append('{"text":' + _str(p.text) + ',"type":"text"}')
            elif t is ToolCall:
                if not (type(p.id) is str and type(p.name) is str and type(p.arguments) is str):
                    return None
                parts.append(
                    '{"arguments":' + _str(p.arguments) + ',"id":' + _str(p.id)
                    + ',"name":' + _str(p.name) + ',"type":"tool_call"}'
                )  # fmt: skip
            elif t is ToolResult:
                name = _opt_str(p.name)
                if (
                    name is None
                    or type(p.tool_call_id) is not str
                    or type(p.content) is not str
                    or type(p.is_error) is not bool
                ):
                    return None
                parts.append(
                    '{"content":' + _str(p.content)
                    + ',"is_error":' + ("true" if p.is_error else "false")
                    + ',"name":' + name + ',"tool_call_id":' + _str(p.tool_call_id)
                    + ',"type":"tool_result"}'
                )  # fmt: skip
            else:
                return None  # images: bytes become base64 on the general path
        out.append('{"content":[' + ",".join(parts) + '],"role":' + _str(m.role) + "}")
    return "[" + ",".join(out) + "]"


def _tools(tools: Any) -> str | None:
    if not tools:
        return "[]" if type(tools) is tuple else None
    out: list[dict[str, Any]] = []
    for tool in tools:
        cls = type(tool)
        if cls is not Tool or type(tool.name) is not str:
            return None
        if type(tool.description) is not str or type(tool.parameters) is not dict:
            return None
        if tool.strict is not None and type(tool.strict) is not bool:
            return None
        parameters = _plain(tool.parameters)
        if parameters is _NOT_PLAIN:
            return None
        out.append(
            {
                "description": tool.description,
                "name": tool.name,
                "parameters": parameters,
                "strict": tool.strict,
            }
        )
    dumped: str = _DUMPS(out)
    return dumped


def _tool_choice(choice: Any) -> str | None:
    if choice is None:
        return "null"
    cls = type(choice)
    if cls is not ToolChoice or type(choice.mode) is not str:
        return None
    name = _opt_str(choice.name)
    return None if name is None else '{"mode":' + _str(choice.mode) + ',"name":' + name + "}"


def _response_format(fmt: Any) -> str | None:
    cls = type(fmt)
    if cls is not ResponseFormat:
        return None
    kind, schema, name, strict = fmt.type, fmt.schema, fmt.name, fmt.strict
    if kind == "text" and schema is None and name is None and strict is True:
        return _DEFAULT_FORMAT
    if type(kind) is not str or type(strict) is not bool:
        return None
    if name is not None and type(name) is not str:
        return None
    if schema is not None:
        if type(schema) is not dict:
            return None
        schema = _plain(schema)
        if schema is _NOT_PLAIN:
            return None
    dumped: str = _DUMPS({"name": name, "schema": schema, "strict": strict, "type": kind})
    return dumped


def _extra(extra: Any) -> str | None:
    if not extra:
        return "{}" if type(extra) is dict else None
    if type(extra) is not dict:
        return None
    kept = _plain({k: v for k, v in extra.items() if k not in IGNORED_EXTRA})
    if kept is _NOT_PLAIN:
        return None
    dumped: str = _DUMPS(kept)
    return dumped


def _direct_body(request: Request) -> str | None:
    """:func:`canonical_body` written field by field, or None when the request holds
    something only the general path handles."""
    if type(request) is not Request:
        return None
    if request.n is not None or request.logprobs or request.top_logprobs is not None:
        return None  # n > 1 and logprobs: the general path
    stop = request.stop
    if type(stop) is not tuple or (stop and any(type(s) is not str for s in stop)):
        return None
    fields = (
        _extra(request.extra),
        _int(request.max_tokens),
        _messages(request.messages),
        _response_format(request.response_format),
        _int(request.seed),
        "[" + ",".join([_str(s) for s in stop]) + "]",
        _float_json(request.temperature),
        _tool_choice(request.tool_choice),
        _tools(request.tools),
        _float_json(request.top_p),
    )
    if None in fields:
        return None
    reasoning = request.reasoning
    if reasoning is None:
        return _BODY.format(*fields)
    if type(reasoning) is int:
        value = int.__repr__(reasoning)
    elif type(reasoning) is str:
        value = _str(reasoning)
    else:
        return None
    return _BODY_REASONING.format(*fields[:3], value, *fields[3:])


def key_for(body: str, *, instance: str, model: str, namespace: str = "") -> str:
    """The key of a canonical ``body`` (from :func:`canonical_body`) on one provider instance."""
    document = (
        '{"instance":'
        + (_str(instance) if type(instance) is str else json.dumps(instance, ensure_ascii=True))
        + ',"model":'
        + (_str(model) if type(model) is str else json.dumps(model, ensure_ascii=True))
        + ',"request":'
        + body
        + ',"v":'
        + str(KEY_VERSION)
        + "}"
    )
    digest = hashlib.sha256(document.encode("ascii")).hexdigest()
    return f"{KEY_PREFIX}{namespace}:{digest}" if namespace else f"{KEY_PREFIX}{digest}"


def cache_key(request: Request, *, instance: str, model: str, namespace: str = "") -> str:
    """The cache key of ``request`` sent to ``model`` (the provider's model name) on the
    provider instance ``instance``: ``llmx:v1:[namespace:]<sha256 hex>``.

    Equal requests give equal keys whatever the order of their mappings or the
    formatting of their numbers; any change to what affects the output gives another.
    """
    return key_for(canonical_body(request), instance=instance, model=model, namespace=namespace)

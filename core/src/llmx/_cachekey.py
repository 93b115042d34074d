"""Cache keys: a versioned sha256 digest of the canonical request.

The canonical document holds what changes a model's output and nothing else: the
model *as resolved* (the provider instance and the provider's model name), the
messages, and every generation parameter. It never holds credentials (a
:class:`~llmx.Request` carries none), request ids, timeouts or ``include_raw``.

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmx._types import Request

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
    from llmx._convert import to_json

    data = to_json(request)
    data.pop("model", None)
    data.pop("include_raw", None)
    data["extra"] = {k: v for k, v in data.get("extra", {}).items() if k not in IGNORED_EXTRA}
    # Messages hold only strings and booleans once unstructured; numbers live in the
    # open mappings: extra, tool parameter schemas, response format schemas.
    for name in ("tools", "extra", "response_format"):
        data[name] = _normalise(data.get(name))
    data["temperature"] = _float(request.temperature)
    data["top_p"] = _float(request.top_p)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def key_for(body: str, *, instance: str, model: str, namespace: str = "") -> str:
    """The key of a canonical ``body`` (from :func:`canonical_body`) on one deployment."""
    document = (
        '{"instance":'
        + json.dumps(instance, ensure_ascii=True)
        + ',"model":'
        + json.dumps(model, ensure_ascii=True)
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

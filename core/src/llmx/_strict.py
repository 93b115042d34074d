"""The strict form of a JSON schema that OpenAI's structured outputs require
(:func:`strict_json_schema`): a leaf module, so a provider importing it imports nothing
else of llmx's structured-output machinery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["accepts_null", "strict_json_schema"]


def strict_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` in the strict form OpenAI's structured outputs require (a new dict).

    Every object gets ``additionalProperties: false`` (unless it sets it) and lists
    every property in ``required``; a property that was not required becomes a union
    with ``null`` (the model writes ``null`` where it would have left it out; llmx
    drops it again when parsing). ``default`` keywords are removed. Raises
    ``ValueError`` naming the path of what strict mode cannot express: an open object
    (``additionalProperties`` other than false, e.g. a ``dict[str, V]``).
    """
    return _strict(schema, "$")  # type: ignore[no-any-return]


def _strict(node: Any, path: str) -> Any:
    if isinstance(node, list):
        return [_strict(n, f"{path}[{i}]") for i, n in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
            out[key] = {k: _strict(v, f"{path}.{k}") for k, v in value.items()}
        else:
            out[key] = _strict(value, path)
    kind = out.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in out:
        extra = out.get("additionalProperties", False)
        if extra is not False:
            msg = (
                f"{path}: an object with open keys (additionalProperties, e.g. a dict) "
                "cannot be expressed in strict mode; use a class with named fields"
            )
            raise ValueError(msg)
        out["additionalProperties"] = False
        props = out.get("properties") or {}
        required = set(out.get("required") or ())
        out["properties"] = {k: v if k in required else _or_null(v) for k, v in dict(props).items()}
        out["required"] = list(props)
    return out


def accepts_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(accepts_null(s) for s in schema.get("anyOf") or () if isinstance(s, Mapping))


def _or_null(schema: Any) -> Any:
    if not isinstance(schema, Mapping) or accepts_null(schema):
        return schema
    kind = schema.get("type")
    if isinstance(kind, (str, list)) and "$ref" not in schema and "anyOf" not in schema:
        out = dict(schema)
        out["type"] = [*(kind if isinstance(kind, list) else [kind]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [schema, {"type": "null"}]}

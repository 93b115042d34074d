"""Typed structured output: ``response_model=`` on :meth:`llmx.Client.complete` and
:meth:`~llmx.Client.stream`.

One type in, one JSON schema out, one instance back:

* :func:`json_schema` derives the schema of an attrs class, a dataclass, a
  ``TypedDict``, a Pydantic v2 model (used only when the caller passes one: Pydantic is
  never imported here otherwise) or a plain type (``list[X]``, ``int``, a ``Literal``...;
  those are wrapped in an object ``{"value": ...}``, as vendors want an object at the
  top). Nested classes are inlined (``$defs``/``$ref`` only for recursive ones), a
  field with a default is not ``required``, ``Optional``/unions become ``anyOf`` (or a
  type list), ``Literal``/``Enum`` an ``enum``, docstrings and field metadata
  descriptions. Every object is closed (``additionalProperties: false``) except a
  ``dict[str, V]``.
* The request carries that schema as its :class:`~llmx.ResponseFormat` (``json_schema``,
  ``strict=True``), so the cache key includes it and each provider renders it in its
  vendor's strict form when it is sent: OpenAI/Azure through :func:`strict_json_schema`
  (every property required, optional ones as a null union), Anthropic's
  ``output_config.format`` as is, Gemini's OpenAPI subset (or ``responseJsonSchema``).
  A fallback to another vendor re-renders it there.
* :class:`StructuredOutput` parses a reply: JSON (a Markdown fence around it is
  tolerated), a ``null`` the strict form forced on an optional field dropped again,
  then checked against the schema (:func:`schema_errors`, paths like
  ``$.items[2].price``) and built into the type (attrs validators and converters run;
  a Pydantic model validates itself). A failure is a list of messages that the re-ask
  sends back to the model (:func:`complete_structured`, ``max_validation_retries``), or
  that :class:`~llmx.structured.StructuredOutputError` carries with the raw text.
"""

from __future__ import annotations

import ast
import collections.abc as cabc
import dataclasses
import enum
import functools
import inspect
import itertools
import json
import re
import sys
import textwrap
import time
import types
import typing
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from llmx._errors import StructuredOutputError
from llmx._stream import Stream
from llmx._strict import accepts_null
from llmx._types import Message, Request, Response, ResponseFormat

if TYPE_CHECKING:
    from llmx._engine.pipeline import Pipeline
    from llmx._settings import CacheMode, CachePolicy

T = TypeVar("T")

__all__ = [
    "ParsedResponse",
    "StructuredOutput",
    "StructuredStream",
    "complete_structured",
    "json_schema",
    "schema_errors",
]

_WRAP_KEY = "value"
"""The property a non-object type is wrapped in (vendors want an object at the top)."""

# -- deriving the schema ---------------------------------------------------------------------

_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_NONE = type(None)


def _is_pydantic(tp: Any) -> bool:
    """A Pydantic v2 model class; never imports Pydantic (a caller's model has)."""
    module = sys.modules.get("pydantic")
    if module is None or not isinstance(tp, type):
        return False
    return issubclass(tp, module.BaseModel) and hasattr(tp, "model_json_schema")


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _is_record(tp: Any) -> bool:
    """A class whose instances are JSON objects with fixed keys."""
    return isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or _is_typeddict(tp) or _is_pydantic(tp)
    )


def _own_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if doc.startswith(f"{cls.__name__}("):  # dataclasses' made-up signature
        return None
    return inspect.cleandoc(doc)


def _attribute_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string right below ``name: type``), read from the source;
    empty when the source is not available."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError) as err:
        msg = (
            f"cannot read the field types of {cls.__qualname__}: {err}; define the class "
            "(and the classes it names) at module level"
        )
        raise TypeError(msg) from err


@attrs.frozen
class _Field:
    name: str
    """The JSON property."""
    init: str
    """The keyword the class's ``__init__`` takes it as."""
    type: Any
    required: bool
    description: str | None


@functools.lru_cache(maxsize=512)
def _fields(cls: type) -> tuple[_Field, ...]:
    """The JSON fields of a record class (cached: it reads type hints and source)."""
    return tuple(_read_fields(cls))


def _read_fields(cls: type) -> list[_Field]:
    hints = _hints(cls)
    docs = _attribute_docs(cls)
    out: list[_Field] = []
    if attrs.has(cls):
        for a in attrs.fields(cls):
            if not a.init:
                continue
            described = a.metadata.get("description") or docs.get(a.name)
            tp = hints.get(a.name, a.type if a.type is not None else Any)
            required = a.default is attrs.NOTHING
            out.append(_Field(a.name, a.alias or a.name, tp, required, described))
    elif dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            described = f.metadata.get("description") or docs.get(f.name)
            out.append(_Field(f.name, f.name, hints.get(f.name, Any), required, described))
    else:  # TypedDict
        required_keys = cls.__required_keys__  # type: ignore[attr-defined]
        for name, tp in hints.items():
            # Under ``from __future__ import annotations`` the class could not see a
            # ``NotRequired[...]`` when it was made: the resolved hint tells.
            marked = _required_mark(tp)
            required = name in required_keys if marked is None else marked
            out.append(_Field(name, name, tp, required, docs.get(name)))
    return out


def _required_mark(tp: Any) -> bool | None:
    """True for ``Required[...]``, False for ``NotRequired[...]`` (inside ``Annotated``
    too), None for neither."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = tp.__origin__
            continue
        name = getattr(origin, "_name", None)
        if name == "NotRequired":
            return False
        if name == "Required":
            return True
        if name == "ReadOnly":
            tp = typing.get_args(tp)[0]
            continue
        return None


def _strip_annotated(tp: Any) -> tuple[Any, str | None]:
    """``Annotated[X, "a description"]`` -> (X, description); ``NotRequired``/``Required``
    unwrapped."""
    description = None
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            for meta in tp.__metadata__:
                if isinstance(meta, str):
                    description = meta
                else:
                    doc = getattr(meta, "documentation", None)  # typing_extensions.Doc
                    if isinstance(doc, str):
                        description = doc
            tp = tp.__origin__
        elif origin is not None and getattr(origin, "_name", None) in (
            "NotRequired",
            "Required",
            "ReadOnly",
        ):
            tp = typing.get_args(tp)[0]
        else:
            return tp, description


def _name_of(tp: Any) -> str:
    name = getattr(tp, "__name__", None) or str(tp)
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "response"


class _Schemer:
    """Builds one schema; classes met again while being built become ``$ref``s."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self._building: dict[type, str] = {}
        self._recursive: set[type] = set()

    def schema(self, tp: Any, path: str) -> dict[str, Any]:
        tp, description = _strip_annotated(tp)
        out = self._schema(tp, path)
        if description and "$ref" not in out:
            out = {**out, "description": description}
        return out

    def _schema(self, tp: Any, path: str) -> dict[str, Any]:
        if tp in _PRIMITIVES:
            return {"type": _PRIMITIVES[tp]}
        if tp is None or tp is _NONE:
            return {"type": "null"}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Literal:
            return _enum_schema(list(args), path)
        if origin is typing.Union or origin is types.UnionType:
            return self._union(args, path)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            out = _enum_schema([m.value for m in tp], path)
            doc = _own_doc(tp)
            return {**out, "description": doc} if doc else out
        if origin in (list, set, frozenset, cabc.Sequence, cabc.Set):
            item = args[0] if args else Any
            return {"type": "array", "items": self.schema(item, f"{path}[]")}
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.schema(args[0], f"{path}[]")}
            if not args or args == ((),):
                return {"type": "array", "maxItems": 0}
            items = [self.schema(a, f"{path}[{i}]") for i, a in enumerate(args)]
            if all(i == items[0] for i in items):
                out = {"type": "array", "items": items[0]}
            else:
                out = {"type": "array", "prefixItems": items, "items": False}
            return {**out, "minItems": len(args), "maxItems": len(args)}
        if origin in (dict, cabc.Mapping):
            key = args[0] if args else str
            if key is not str:
                msg = f"{path}: a dict's keys must be str in JSON, not {key!r}"
                raise TypeError(msg)
            value = args[1] if len(args) > 1 else Any
            return {"type": "object", "additionalProperties": self.schema(value, f"{path}{{}}")}
        if _is_pydantic(tp):
            return self._pydantic(tp)
        if _is_record(tp):
            return self._record(tp, path)
        if tp is Any or tp is object:
            msg = (
                f"{path}: Any cannot be expressed as a JSON schema the vendors accept in "
                "strict mode; give the field a concrete type"
            )
            raise TypeError(msg)
        msg = (
            f"{path}: cannot derive a JSON schema from {tp!r}; use str, int, float, bool, "
            "None, Literal, an Enum, list/tuple/dict, a union of those, or an attrs class, "
            "dataclass, TypedDict or Pydantic model"
        )
        raise TypeError(msg)

    def _union(self, args: Sequence[Any], path: str) -> dict[str, Any]:
        members = [self.schema(a, path) for a in args]
        simple = [m for m in members if set(m) == {"type"} and isinstance(m["type"], str)]
        if len(simple) == len(members):
            return {"type": [m["type"] for m in members]}
        return {"anyOf": members}

    def _record(self, cls: type, path: str) -> dict[str, Any]:
        name = _name_of(cls)
        if cls in self._building:
            self._recursive.add(cls)
            return {"$ref": f"#/$defs/{self._building[cls]}"}
        while name in self.defs or name in self._building.values():
            name += "_"
        self._building[cls] = name
        try:
            properties: dict[str, Any] = {}
            required: list[str] = []
            for field in _fields(cls):
                prop = self.schema(field.type, f"{path}.{field.name}")
                if field.description and "description" not in prop and "$ref" not in prop:
                    prop = {**prop, "description": field.description}
                properties[field.name] = prop
                if field.required:
                    required.append(field.name)
            out: dict[str, Any] = {"type": "object", "properties": properties}
            out["required"] = required
            out["additionalProperties"] = False
            doc = _own_doc(cls)
            if doc:
                out["description"] = doc
        finally:
            del self._building[cls]
        if cls in self._recursive:
            self.defs[name] = out
            return {"$ref": f"#/$defs/{name}"}
        return out

    def _pydantic(self, model: Any) -> dict[str, Any]:
        raw = model.model_json_schema()
        defs = raw.pop("$defs", {})
        out: dict[str, Any] = _normalise_pydantic(raw, defs, self, ())
        return out


def _normalise_pydantic(
    node: Any, defs: Mapping[str, Any], schemer: _Schemer, seen: tuple[str, ...]
) -> Any:
    """Pydantic's schema in our form: refs inlined (kept, into ``$defs``, when recursive),
    objects closed, titles and defaults dropped (Pydantic applies its defaults)."""
    if isinstance(node, list):
        return [_normalise_pydantic(n, defs, schemer, seen) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref[len("#/$defs/") :]
        if name in seen:
            if name not in schemer.defs:
                schemer.defs[name] = {}  # filled when the outer visit returns
            return {"$ref": ref}
        inner = _normalise_pydantic(defs[name], defs, schemer, (*seen, name))
        if name in schemer.defs:
            schemer.defs[name] = inner
            return {"$ref": ref}
        return inner
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "default"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _normalise_pydantic(v, defs, schemer, seen) for k, v in value.items()}
        else:
            out[key] = _normalise_pydantic(value, defs, schemer, seen)
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
        out.setdefault("required", [])
    return out


def _enum_schema(values: list[Any], path: str) -> dict[str, Any]:
    kinds = []
    for v in values:
        if v is None:
            kind = "null"
        elif isinstance(v, bool):
            kind = "boolean"
        elif isinstance(v, int):
            kind = "integer"
        elif isinstance(v, float):
            kind = "number"
        elif isinstance(v, str):
            kind = "string"
        else:
            msg = f"{path}: enum value {v!r} is not a JSON scalar"
            raise TypeError(msg)
        if kind not in kinds:
            kinds.append(kind)
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


@functools.lru_cache(maxsize=256)
def _derive(tp: Any) -> tuple[dict[str, Any], bool]:
    schemer = _Schemer()
    wrapped = not _is_record(tp)
    if wrapped:
        inner = schemer.schema(tp, f"$.{_WRAP_KEY}")
        root: dict[str, Any] = {
            "type": "object",
            "properties": {_WRAP_KEY: inner},
            "required": [_WRAP_KEY],
            "additionalProperties": False,
        }
    else:
        root = schemer.schema(tp, "$")
        if "$ref" in root:  # a recursive root: its own definition, inline
            root = dict(schemer.defs[root["$ref"].rsplit("/", 1)[1]])
    if schemer.defs:
        root = {**root, "$defs": schemer.defs}
    return root, wrapped


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema llmx sends for ``response_model=tp`` (a new dict each call).

    ``tp`` is an attrs class, a dataclass, a ``TypedDict``, a Pydantic v2 model, or a
    plain type (``list[Item]``, ``int``, ``Literal["a", "b"]``, ...), which is wrapped in
    ``{"type": "object", "properties": {"value": ...}}`` as vendors want an object at
    the top. Raises ``TypeError`` naming the field whose type cannot be expressed.
    """
    schema = structured_output(tp).schema
    copied: dict[str, Any] = json.loads(json.dumps(schema))
    return copied


# -- checking a value against the schema ---------------------------------------------------

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _JSON_TYPES[name](value):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """What in ``value`` (parsed JSON) does not match ``schema``, one message per problem
    with its path (``$.items[2].price: expected number, got string "ten"``); empty when
    it matches. Covers the keywords :func:`json_schema` writes (``type``, ``enum``,
    ``properties``/``required``/``additionalProperties``, ``items``/``prefixItems``,
    ``minItems``/``maxItems``, ``anyOf``, ``$ref`` into ``$defs``)."""
    errors: list[str] = []
    _check(value, schema, schema, "$", errors)
    return errors


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 64:
        ref = schema["$ref"]
        if ref == "#":
            schema = root
        else:
            name = str(ref).rsplit("/", 1)[-1]
            schema = (root.get("$defs") or {}).get(name, {})
        seen += 1
    return schema


def _check(
    value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], path: str, errors: list[str]
) -> None:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if isinstance(b, Mapping)]
        found: list[list[str]] = []
        for branch in branches:
            errs: list[str] = []
            _check(value, branch, root, path, errs)
            if not errs:
                break
            found.append(errs)
        else:
            if branches:
                best = min(found, key=len)
                if len(best) == 1 and best[0].startswith(f"{path}: expected"):
                    kinds = [str(_resolve(b, root).get("type", "object")) for b in branches]
                    errors.append(
                        f"{path}: expected one of {', '.join(kinds)}, got {_kind(value)} "
                        f"{_show(value)}"
                    )
                else:
                    errors.extend(best)
        return
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_JSON_TYPES[k](value) for k in kinds if k in _JSON_TYPES):
            errors.append(
                f"{path}: expected {' or '.join(kinds)}, got {_kind(value)} {_show(value)}"
            )
            return
    if "enum" in schema:
        allowed = schema["enum"]
        if not any(value == a and type(value) is type(a) for a in allowed) and not any(
            value == a and _kind(value) == _kind(a) for a in allowed
        ):
            shown = ", ".join(_show(a) for a in allowed)
            errors.append(f"{path}: {_show(value)} is not one of {shown}")
            return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {_show(schema['const'])}, got {_show(value)}")
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        errors.extend(
            f"{path}: missing required property {name!r}"
            for name in schema.get("required") or ()
            if name not in value
        )
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            where = f"{path}.{name}"
            if name in props:
                _check(item, props[name], root, where, errors)
            elif extra is False:
                errors.append(f"{path}: unexpected property {name!r}")
            elif isinstance(extra, Mapping):
                _check(item, extra, root, where, errors)
    elif isinstance(value, list):
        low, high = schema.get("minItems"), schema.get("maxItems")
        if isinstance(low, int) and len(value) < low:
            errors.append(f"{path}: expected at least {low} items, got {len(value)}")
        if isinstance(high, int) and len(value) > high:
            errors.append(f"{path}: expected at most {high} items, got {len(value)}")
        prefix = schema.get("prefixItems") or []
        items = schema.get("items")
        for i, item in enumerate(value):
            if i < len(prefix):
                _check(item, prefix[i], root, f"{path}[{i}]", errors)
            elif isinstance(items, Mapping):
                _check(item, items, root, f"{path}[{i}]", errors)
            elif items is False:
                errors.append(f"{path}[{i}]: no item expected here")


def _drop_forced_nulls(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """Remove a ``null`` the strict form made the model write for an optional property
    that does not itself accept null (so the type's default applies)."""
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            branches = [
                _resolve(b, root)
                for b in schema.get("anyOf") or ()
                if isinstance(b, Mapping) and "properties" in _resolve(b, root)
            ]
            if len(branches) != 1:
                return value
            schema, props = branches[0], branches[0]["properties"]
        required = set(schema.get("required") or ())
        out = {}
        for k, v in value.items():
            sub = props.get(k)
            if sub is None:
                out[k] = v
            elif v is None and k not in required and not accepts_null(_resolve(sub, root)):
                continue
            else:
                out[k] = _drop_forced_nulls(v, sub, root)
        return out
    if isinstance(value, list):
        if "items" not in schema and "prefixItems" not in schema:  # e.g. list[X] | None
            arrays = [
                _resolve(b, root)
                for b in schema.get("anyOf") or ()
                if isinstance(b, Mapping) and _resolve(b, root).get("type") == "array"
            ]
            if len(arrays) != 1:
                return value
            schema = arrays[0]
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [_drop_forced_nulls(v, items, root) for v in value]
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):  # a tuple: each position its own schema
            return [
                _drop_forced_nulls(v, prefix[i], root) if i < len(prefix) else v
                for i, v in enumerate(value)
            ]
    return value


# -- building the instance -----------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _build(value: Any, tp: Any, path: str) -> Any:
    """``value`` (already checked against ``tp``'s schema) as an instance of ``tp``."""
    tp, _ = _strip_annotated(tp)
    if tp in (str, bool) or tp is None or tp is _NONE:
        return value
    if tp is int:
        return int(value)
    if tp is float:
        return float(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return value
    if origin is typing.Union or origin is types.UnionType:
        for member in args:
            if not schema_errors(value, _member_schema(member)):
                return _build(value, member, path)
        raise _Invalid([f"{path}: matches none of {tp!r}"])  # pragma: no cover - checked
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if origin in (list, cabc.Sequence):
        return [_build(v, args[0] if args else Any, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (set, frozenset, cabc.Set):
        items = (_build(v, args[0] if args else Any, f"{path}[{i}]") for i, v in enumerate(value))
        return frozenset(items) if origin is frozenset else set(items)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        return tuple(
            _build(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=False))
        )
    if origin in (dict, cabc.Mapping):
        inner = args[1] if len(args) > 1 else Any
        return {k: _build(v, inner, f"{path}.{k}") for k, v in value.items()}
    if _is_pydantic(tp):
        return _pydantic_build(tp, value, path)
    if _is_record(tp):
        fields = _fields(tp)
        if _is_typeddict(tp):
            by_name = {f.name: f for f in fields}
            return {k: _build(v, by_name[k].type, f"{path}.{k}") for k, v in value.items()}
        kwargs = {
            f.init: _build(value[f.name], f.type, f"{path}.{f.name}")
            for f in fields
            if f.name in value
        }
        try:
            return tp(**kwargs)
        except (ValueError, TypeError) as err:
            raise _Invalid([f"{path}: {err}"]) from err
    return value


def _pydantic_build(model: Any, value: Any, path: str) -> Any:
    module = sys.modules["pydantic"]
    try:
        return model.model_validate(value)
    except module.ValidationError as err:
        errors = []
        for e in err.errors():
            where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
            errors.append(f"{where}: {e['msg']}")
        raise _Invalid(errors) from err


@functools.lru_cache(maxsize=256)
def _member_schema(tp: Any) -> dict[str, Any]:
    """The schema of one member of a union, as :func:`json_schema` derives it."""
    schemer = _Schemer()
    out = schemer.schema(tp, "$")
    return {**out, "$defs": schemer.defs} if schemer.defs else out


_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


class StructuredOutput(Generic[T]):
    """The schema, the request format and the parser for one ``response_model``."""

    __slots__ = ("format", "name", "schema", "type", "wrapped")

    def __init__(self, tp: type[T]) -> None:
        self.type = tp
        try:
            schema, self.wrapped = _derive(typing.cast("Hashable", tp))
        except TypeError as err:
            if "unhashable" not in str(err):
                raise
            schema, self.wrapped = _derive.__wrapped__(tp)
        self.schema: Mapping[str, Any] = schema
        self.name = _name_of(tp) if not self.wrapped else "response"
        self.format = ResponseFormat("json_schema", schema, name=self.name, strict=True)

    def request(self, request: Request) -> Request:
        """``request`` asking for this schema (it must not ask for another format)."""
        if request.response_format.type != "text":
            msg = "pass either response_model= or response_format=, not both"
            raise TypeError(msg)
        return attrs.evolve(request, response_format=self.format)

    def parse(self, text: str) -> T:
        """The answer's text as an instance; raises ``_Invalid`` with the messages."""
        match = _FENCE.match(text)
        body = match.group(1) if match else text
        try:
            data = json.loads(body)
        except ValueError as err:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise _Invalid([f"$: the answer is not valid JSON ({err}): {shown!r}"]) from err
        data = _drop_forced_nulls(data, self.schema, self.schema)
        if not _is_pydantic(self.type):
            errors = schema_errors(data, self.schema)
            if errors:
                raise _Invalid(errors)
        if self.wrapped:
            if not isinstance(data, dict) or _WRAP_KEY not in data:
                raise _Invalid([f"$: expected an object with the property {_WRAP_KEY!r}"])
            return _build(data[_WRAP_KEY], self.type, f"$.{_WRAP_KEY}")  # type: ignore[no-any-return]
        return _build(data, self.type, "$")  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _cached_output(tp: Any) -> StructuredOutput[Any]:
    return StructuredOutput(tp)


def structured_output(tp: type[T]) -> StructuredOutput[T]:
    """The :class:`StructuredOutput` of a type (cached per type, when it is hashable)."""
    try:
        return _cached_output(typing.cast("Hashable", tp))
    except TypeError:  # unhashable metadata in an Annotated[...]
        return StructuredOutput(tp)


# -- the answer ----------------------------------------------------------------------------


@attrs.frozen
class ParsedResponse(Response, Generic[T]):
    """A :class:`~llmx.Response` to a request with ``response_model=``: ``parsed`` is the
    answer as an instance of that type, ``validation_retries`` how many re-asks it took
    (each a further request, counted in :meth:`llmx.Client.stats`). The other fields are
    those of the answer that validated."""

    parsed: T = attrs.field(kw_only=True)
    validation_retries: int = attrs.field(default=0, kw_only=True)


def _parsed(response: Response, value: Any, retries: int) -> ParsedResponse[Any]:
    fields = {f.name: getattr(response, f.name) for f in attrs.fields(Response)}
    return ParsedResponse(**fields, parsed=value, validation_retries=retries)


def reask_message(errors: Sequence[str]) -> str:
    """The user turn that asks again after a reply failed validation."""
    listed = "\n".join(f"- {e}" for e in errors[:20])
    more = f"\n- ... and {len(errors) - 20} more" if len(errors) > 20 else ""
    return (
        "Your previous answer does not match the required JSON schema:\n"
        f"{listed}{more}\n"
        "Answer again with only the corrected JSON object, matching the schema exactly."
    )


def _count_retry(pipeline: Pipeline, response: Response) -> None:
    if response.attempts:
        last = response.attempts[-1]
        instance, model = last.provider, last.model
    else:
        instance, model = response.provider, response.model
    pipeline.stats.counters(instance, model).validation_retries += 1


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


async def complete_structured(
    pipeline: Pipeline,
    request: Request,
    spec: StructuredOutput[Any],
    *,
    max_validation_retries: int,
    timeout: float | None,
    cache: CachePolicy | CacheMode | None,
    first: Response | None = None,
) -> ParsedResponse[Any]:
    """Ask (or take ``first``, a streamed answer), parse, and re-ask with the validation
    errors at most ``max_validation_retries`` times; each ask runs the whole pipeline
    (routing, fallback, retries, cache). ``timeout`` bounds them all together."""
    if max_validation_retries < 0:
        msg = f"max_validation_retries must be 0 or more, not {max_validation_retries}"
        raise ValueError(msg)
    deadline = None if timeout is None else time.monotonic() + timeout
    retries = 0
    while True:
        if first is not None:
            response, first = first, None
        else:
            response = await pipeline.complete(request, timeout=_remaining(deadline), cache=cache)
        try:
            value = spec.parse(response.text)
        except _Invalid as invalid:
            if retries >= max_validation_retries:
                where = f"{response.provider}/{response.model}"
                hint = (
                    " (the answer was cut off at max_tokens: raise max_tokens)"
                    if response.finish_reason == "length"
                    else ""
                )
                msg = (
                    f"{where}: the answer does not match {spec.name!r} after "
                    f"{retries + 1} tries{hint}:\n  " + "\n  ".join(invalid.errors[:20])
                )
                raise StructuredOutputError(
                    msg, text=response.text, errors=tuple(invalid.errors), response=response
                ) from None
            retries += 1
            _count_retry(pipeline, response)
            messages = (
                *request.messages,
                Message.assistant(response.text),
                Message.user(reask_message(invalid.errors)),
            )
            request = attrs.evolve(request, messages=messages)
            continue
        return _parsed(response, value, retries)


class StructuredStream(Stream, Generic[T]):
    """A :class:`~llmx.Stream` of a request with ``response_model=``: iterate it for the
    JSON text as it arrives, then ``await stream.parsed()`` for the instance.

    :meth:`parsed` reads whatever of the stream is left, validates the whole answer and,
    if it does not match, re-asks (as a whole answer, not streamed) with the errors, up
    to ``max_validation_retries`` times. Afterwards :attr:`response` is the
    :class:`ParsedResponse` of the answer that validated.
    """

    __slots__ = ("_finish", "_result")

    def __init__(
        self, stream: Stream, finish: Callable[[Response], Awaitable[ParsedResponse[T]]]
    ) -> None:
        super().__init__(stream._start, stream._state)
        self._finish = finish
        self._result: ParsedResponse[T] | None = None

    @property
    def response(self) -> Response | None:
        """The validated :class:`ParsedResponse` once :meth:`parsed` returned, else the
        streamed answer once the stream ended."""
        if self._result is not None:
            return self._result
        return self._state[0] if self._state else None

    async def __aenter__(self) -> StructuredStream[T]:
        return self

    async def parsed(self) -> T:
        """The answer as an instance of the response model (see the class docstring);
        raises :class:`~llmx.structured.StructuredOutputError` when it never validated."""
        if self._result is None:
            if not self._state:
                gen = self._gen if self._gen is not None else self._chunks()
                async for _ in gen:
                    pass
            if not self._state:
                msg = (
                    "the stream was closed before its end: call parsed() before leaving "
                    "its `async with` block (or before aclose())"
                )
                raise RuntimeError(msg)
            self._result = await self._finish(self._state[0])
        assert self._result is not None
        return self._result.parsed


def stream_structured(
    pipeline: Pipeline,
    request: Request,
    tp: type[T],
    max_validation_retries: int,
    timeout: float | None,
    cache: CachePolicy | CacheMode | None,
) -> StructuredStream[T]:
    """The :class:`StructuredStream` of ``request`` with ``response_model=tp``."""
    if max_validation_retries < 0:
        msg = f"max_validation_retries must be 0 or more, not {max_validation_retries}"
        raise ValueError(msg)
    spec = structured_output(tp)
    sent = spec.request(request)

    def finish(streamed: Response) -> Awaitable[ParsedResponse[Any]]:
        return complete_structured(
            pipeline,
            sent,
            spec,
            max_validation_retries=max_validation_retries,
            timeout=timeout,
            cache=cache,
            first=streamed,
        )

    return StructuredStream(pipeline.stream(sent, timeout=timeout, cache=cache), finish)


__all__ += ["reask_message", "stream_structured", "structured_output"]

"""The structured-output machinery on its own (llmx._structured, llmx._strict): the schema
derived from generated class shapes (attrs, dataclasses, TypedDicts nested in each other,
with Optional, Literal, Enum, list/tuple/dict and defaults) is a valid JSON Schema; the
checker agrees with ``jsonschema`` on it; every value the schema accepts parses into an
instance; the strict form accepts the same answers with ``null`` for the optional
properties and those parse to the same instance."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import keyword
import subprocess
import sys
import typing
from typing import Any, Literal, Optional

import attrs
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmx
import llmx.structured
from llmx._strict import accepts_null
from llmx._structured import _Invalid, schema_errors, structured_output
from llmx.plugin import strict_json_schema

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # Python 3.10: from typing_extensions, as users there write them
    from typing_extensions import NotRequired, TypedDict


class Size(enum.Enum):
    """How big."""

    S = "s"
    L = "l"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


_names = itertools.count()
PRIMITIVES: list[Any] = [str, int, float, bool, Size, Level, Literal["a", "b"], Literal[1, 2]]


def _default_for(tp: Any) -> Any:
    """A default of the type (a value the schema accepts), or NOTHING when it has none."""
    if tp is str:
        return ""
    if tp in (int, float):
        return tp(0)
    if tp is bool:
        return False
    if tp in (Size, Level):
        return next(iter(tp))
    origin = typing.get_origin(tp)
    if origin is Literal:
        return typing.get_args(tp)[0]
    if origin is typing.Union:
        return None
    return attrs.NOTHING  # lists, tuples, dicts and classes are required


def _make_class(kind: str, fields: list[tuple[str, Any, bool]]) -> type:
    name = f"Shape{next(_names)}"
    ordered = [(n, t, d and _default_for(t) is not attrs.NOTHING) for n, t, d in fields]
    ordered.sort(key=lambda f: f[2])  # required first
    if kind == "attrs":
        these = {
            n: attrs.field(type=t, default=_default_for(t)) if d else attrs.field(type=t)
            for n, t, d in ordered
        }
        cls = attrs.make_class(name, these, frozen=True)
        cls.__annotations__ = {n: t for n, t, _ in ordered}
        return cls
    if kind == "dataclass":
        spec = [
            (n, t, dataclasses.field(default=_default_for(t))) if d else (n, t)
            for n, t, d in ordered
        ]
        return dataclasses.make_dataclass(name, spec, frozen=True)
    annotations = {n: NotRequired[t] if d else t for n, t, d in ordered}
    return TypedDict(name, annotations)  # type: ignore[operator,no-any-return]


_FIELD_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n)
)


def _classes(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[type]:
    fields = st.lists(
        st.tuples(_FIELD_NAMES, inner, st.booleans()), max_size=4, unique_by=lambda f: f[0]
    )
    return st.builds(_make_class, st.sampled_from(["attrs", "dataclass", "typeddict"]), fields)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        inner.map(lambda t: list[t]),  # type: ignore[valid-type]
        inner.map(lambda t: Optional[t]),  # noqa: UP045 - the typing spelling is tested too
        inner.map(lambda t: tuple[t, ...]),  # type: ignore[valid-type]
        st.tuples(inner, inner).map(lambda ts: tuple[ts[0], ts[1]]),  # type: ignore[valid-type]
        inner.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
        _classes(inner),
    )


TYPES = st.recursive(st.sampled_from(PRIMITIVES), _containers, max_leaves=6)
RECORDS = _classes(TYPES)


def _values(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """JSON values the (derived) schema accepts."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return st.deferred(lambda: _values(root["$defs"][name], root))
    if "anyOf" in schema:
        return st.one_of([_values(s, root) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if isinstance(kind, list):
        return st.one_of([_values({**schema, "type": k}, root) for k in kind])
    if kind == "string":
        return st.text(max_size=5)
    if kind == "integer":
        return st.integers(-5, 5)
    if kind == "number":
        return st.floats(-10, 10, allow_nan=False) | st.integers(-5, 5)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        if "prefixItems" in schema:
            return st.tuples(*[_values(s, root) for s in schema["prefixItems"]]).map(list)
        items = _values(schema["items"], root)
        if "minItems" in schema:
            return st.lists(items, min_size=schema["minItems"], max_size=schema["maxItems"])
        return st.lists(items, max_size=2)
    assert kind == "object"
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return st.dictionaries(st.text(max_size=3), _values(extra, root), max_size=2)
    required = schema["required"]
    optional = [k for k in schema["properties"] if k not in required]
    return st.fixed_dictionaries(
        {k: _values(schema["properties"][k], root) for k in required},
        optional={k: _values(schema["properties"][k], root) for k in optional},
    )


def _fill(value: Any, schema: dict[str, Any], *, nullable_only: bool) -> Any:
    """``value`` with its missing optional properties present as null: those whose
    schema accepts null (``nullable_only``, still a valid answer), or all of them (the
    answer a strict vendor writes)."""
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        out = {k: _fill(v, props.get(k, {}), nullable_only=nullable_only) for k, v in value.items()}
        for k, sub in props.items():
            if k not in out and (not nullable_only or accepts_null(sub)):
                out[k] = None
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_fill(v, schema["items"], nullable_only=nullable_only) for v in value]
    if isinstance(value, list) and isinstance(schema.get("prefixItems"), list):  # a tuple
        items = schema["prefixItems"]
        return [
            _fill(v, items[i], nullable_only=nullable_only) if i < len(items) else v
            for i, v in enumerate(value)
        ]
    if "anyOf" in schema and isinstance(value, dict):
        objects = [s for s in schema["anyOf"] if "properties" in s]
        if len(objects) == 1:
            return _fill(value, objects[0], nullable_only=nullable_only)
    if "anyOf" in schema and isinstance(value, list):
        arrays = [s for s in schema["anyOf"] if s.get("type") == "array"]
        if len(arrays) == 1:
            return _fill(value, arrays[0], nullable_only=nullable_only)
    return value


@settings(max_examples=60)
@given(RECORDS, st.data())
def test_generated_shapes_round_trip(cls: type, data: st.DataObject) -> None:
    schema = llmx.structured.json_schema(cls)
    jsonschema.Draft202012Validator.check_schema(schema)
    value = data.draw(_values(schema, schema))
    jsonschema.validate(value, schema)
    assert schema_errors(value, schema) == []
    spec = structured_output(cls)
    value = _fill(value, schema, nullable_only=True)  # a strict vendor cannot leave these out
    jsonschema.validate(value, schema)
    parsed = spec.parse(json.dumps(value))
    assert isinstance(parsed, dict if issubclass(cls, dict) else cls)
    # The strict form: valid JSON Schema, every object closed and fully required, and
    # the answer a strict vendor gives (nulls for optional properties) parses the same.
    try:
        strict = strict_json_schema(schema)
    except ValueError:
        assert "additionalProperties" in json.dumps(schema)
        return
    jsonschema.Draft202012Validator.check_schema(strict)
    nulls = _fill(value, schema, nullable_only=False)
    jsonschema.validate(nulls, strict)
    assert spec.parse(json.dumps(nulls)) == parsed


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-3, 3) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "value", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)


CONFUSERS: list[Any] = [True, 0, 1, 1.0, 1.5, "1", "s", "a", None, [], {}, [1], {"value": 1}]
"""Values that one type check or another gets wrong (a bool is not an integer, 1.0 is)."""


@settings(max_examples=100)
@given(RECORDS, JSON, st.data())
def test_the_checker_agrees_with_jsonschema(cls: type, value: Any, data: st.DataObject) -> None:
    schema = llmx.structured.json_schema(cls)
    if data.draw(st.booleans()):  # a near miss: a valid value with one field replaced
        value = data.draw(_values(schema, schema))
        if isinstance(value, dict) and value:
            key = data.draw(st.sampled_from(sorted(value)))
            value[key] = data.draw(st.sampled_from(CONFUSERS) | JSON)
    valid = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert (schema_errors(value, schema) == []) == valid


@attrs.frozen
class Item:
    """An item of an order."""

    name: str
    """What it is called."""
    price: float = attrs.field(metadata={"description": "in USD"})
    size: Size | None = None


@dataclasses.dataclass
class Order:
    items: list[Item]
    note: typing.Annotated[str, "anything the customer said"] = ""


@attrs.define
class Node:
    value: int
    children: list[Node] = attrs.Factory(list)


def test_descriptions_defaults_and_nesting() -> None:
    schema = llmx.structured.json_schema(Order)
    assert schema["required"] == ["items"]
    assert schema["properties"]["note"] == {
        "type": "string",
        "description": "anything the customer said",
    }
    item = schema["properties"]["items"]["items"]
    assert item["description"] == "An item of an order."
    assert item["properties"]["name"]["description"] == "What it is called."
    assert item["properties"]["price"]["description"] == "in USD"
    assert item["properties"]["size"] == {
        "anyOf": [
            {"type": "string", "enum": ["s", "l"], "description": "How big."},
            {"type": "null"},
        ]
    }
    assert item["required"] == ["name", "price"]
    assert item["additionalProperties"] is False


def test_recursive_classes_use_defs() -> None:
    schema = llmx.structured.json_schema(Node)
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "Node" in schema["$defs"]
    tree = structured_output(Node).parse('{"value": 1, "children": [{"value": 2}]}')
    assert tree == Node(1, [Node(2)])


def test_errors_name_the_paths() -> None:
    with pytest.raises(_Invalid) as info:
        structured_output(Order).parse(
            '{"items": [{"name": 1, "price": "x", "size": "m"}], "extra": true}'
        )
    assert info.value.errors == [
        "$.items[0].name: expected string, got integer 1",
        '$.items[0].price: expected number, got string "x"',
        '$.items[0].size: "m" is not one of "s", "l"',
        "$: unexpected property 'extra'",
    ]
    with pytest.raises(_Invalid, match="not valid JSON"):
        structured_output(Order).parse('{"items": [')


def test_a_fenced_answer_is_read() -> None:
    assert structured_output(int).parse('```json\n{"value": 3}\n```') == 3


def test_attrs_validators_are_validation_errors() -> None:
    @attrs.frozen
    class Positive:
        n: int = attrs.field(validator=attrs.validators.gt(0))

    with pytest.raises(_Invalid, match=r"\$: .*must be > 0"):
        structured_output(Positive).parse('{"n": -1}')


def test_what_cannot_be_expressed_is_refused_with_the_path() -> None:
    @dataclasses.dataclass
    class Loose:
        anything: Any

    with pytest.raises(TypeError, match=r"\$\.anything: Any cannot be expressed"):
        llmx.structured.json_schema(Loose)
    with pytest.raises(TypeError, match="keys must be str"):
        llmx.structured.json_schema(dict[int, str])
    with pytest.raises(ValueError, match=r"\$\.value: an object with open keys"):
        strict_json_schema(llmx.structured.json_schema(dict[str, int]))


@pytest.mark.parametrize("tp", PRIMITIVES)
@pytest.mark.parametrize("value", CONFUSERS)
def test_the_checker_agrees_with_jsonschema_on_each_scalar(tp: Any, value: Any) -> None:
    schema = llmx.structured.json_schema(tp)
    answer = {"value": value}
    valid = jsonschema.Draft202012Validator(schema).is_valid(answer)
    assert (schema_errors(answer, schema) == []) == valid


@settings(max_examples=150)
@given(TYPES, st.sampled_from(CONFUSERS) | JSON)
def test_the_checker_agrees_with_jsonschema_on_each_type(tp: Any, value: Any) -> None:
    schema = llmx.structured.json_schema(tp)  # a plain type: wrapped in {"value": ...}
    answer = {"value": value}
    valid = jsonschema.Draft202012Validator(schema).is_valid(answer)
    assert (schema_errors(answer, schema) == []) == valid


# -- Pydantic (a dev dependency only: llmx never requires it) -------------------------------


def test_pydantic_models() -> None:
    import pydantic

    class Owner(pydantic.BaseModel):
        """Who keeps it."""

        name: str
        phone: str | None = None

    class Pet(pydantic.BaseModel):
        name: str = pydantic.Field(description="its name")
        kind: Literal["cat", "dog"]
        age: int = 1
        owner: Owner

    schema = llmx.structured.json_schema(Pet)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["name", "kind", "owner"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["name"] == {"description": "its name", "type": "string"}
    assert schema["properties"]["owner"]["description"] == "Who keeps it."
    assert "title" not in json.dumps(schema)
    assert "$ref" not in json.dumps(schema)  # nested models inlined
    spec = structured_output(Pet)
    # A strict vendor's null for a defaulted field: Pydantic's default applies.
    pet = spec.parse('{"name": "Tom", "kind": "cat", "age": null, "owner": {"name": "Ann"}}')
    assert pet == Pet(name="Tom", kind="cat", age=1, owner=Owner(name="Ann"))
    with pytest.raises(_Invalid) as info:
        spec.parse('{"name": "Tom", "kind": "cow", "owner": {}}')
    assert info.value.errors == [
        "$.kind: Input should be 'cat' or 'dog'",
        "$.owner.name: Field required",
    ]


def test_pydantic_is_not_imported_unless_passed() -> None:
    code = (
        "import dataclasses, sys, llmx\n"
        "from llmx._structured import structured_output\n"
        "@dataclasses.dataclass\n"
        "class A:\n"
        "    n: int\n"
        "assert structured_output(A).parse('{\"n\": 1}') == A(1)\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_structured_namespace() -> None:
    for name in llmx.structured.__all__:
        value = getattr(llmx.structured, name)
        assert vars(value).get("__doc__") if isinstance(value, type) else value.__doc__, name
    assert set(llmx.structured.__all__).isdisjoint(llmx.__all__)
    assert issubclass(llmx.structured.StructuredOutputError, llmx.LlmxError)
    code = "import llmx.structured, sys; print(sorted({'aiohttp', 'cattrs', 'llmx._structured'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@attrs.define
class _Defaulted:
    a: str = "default"


@attrs.define
class _Pair:
    pair: tuple[str, _Defaulted]
    many: list[_Defaulted] | None = None


def test_a_forced_null_inside_a_tuple_gives_the_default() -> None:
    """The strict form makes a vendor write null for an optional field, in a tuple's
    object and an optional list's objects too: dropped again, so the field's default
    applies (both found by the property above)."""
    spec = structured_output(_Pair)
    answer = {"pair": ["x", {"a": None}], "many": [{"a": None}]}
    assert spec.parse(json.dumps(answer)) == _Pair(("x", _Defaulted()), [_Defaulted()])

"""Value types: validation, helpers, and the JSON round trip (proved with hypothesis)."""

from __future__ import annotations

import json

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
import llmx.types
from llmx._convert import from_json, to_json

text = st.text(max_size=30)
json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)

parts = st.one_of(
    st.builds(llmx.Text, text),
    st.builds(llmx.Image, url=text, detail=st.none() | st.sampled_from(["low", "high", "auto"])),
    st.builds(
        llmx.Image,
        data=st.binary(max_size=40),
        media_type=st.sampled_from(["image/png", "image/jpeg"]),
    ),
    st.builds(llmx.ToolCall, text, text, text),
    st.builds(llmx.ToolResult, text, text, st.none() | text, st.booleans()),
)
messages = st.builds(
    llmx.Message,
    st.sampled_from(["system", "user", "assistant", "tool"]),
    st.lists(parts, max_size=4).map(tuple),
)
tools = st.builds(
    llmx.Tool,
    text,
    text,
    st.dictionaries(text, json_values, max_size=3),
    st.none() | st.booleans(),
)
tool_choices = (
    st.none()
    | st.sampled_from(["auto", "none", "required"]).map(llmx.ToolChoice)
    | text.map(lambda n: llmx.ToolChoice("tool", n))
)
formats = st.one_of(
    st.just(llmx.ResponseFormat()),
    st.just(llmx.ResponseFormat("json")),
    st.builds(
        llmx.ResponseFormat,
        st.just("json_schema"),
        st.dictionaries(text, json_values, max_size=3),
        st.none() | text,
        st.booleans(),
    ),
)
requests = st.builds(
    llmx.Request,
    text,
    st.lists(messages, max_size=4).map(tuple),
    max_tokens=st.none() | st.integers(1, 10**6),
    temperature=st.none() | finite,
    top_p=st.none() | finite,
    stop=st.lists(text, max_size=3).map(tuple),
    seed=st.none() | st.integers(-(2**31), 2**31),
    tools=st.lists(tools, max_size=2).map(tuple),
    tool_choice=tool_choices,
    response_format=formats,
    extra=st.dictionaries(text, json_values, max_size=3),
    include_raw=st.booleans(),
)
usages = st.builds(llmx.Usage, *[st.integers(0, 10**9)] * 5)
finish = st.none() | st.sampled_from(
    ["stop", "length", "tool_calls", "content_filter", "error", "other"]
)
responses = st.builds(
    llmx.Response,
    text,
    text,
    text,
    tool_calls=st.lists(st.builds(llmx.ToolCall, text, text, text), max_size=3).map(tuple),
    finish_reason=finish,
    usage=usages,
    latency=finite,
    cost=st.none() | finite,
    id=st.none() | text,
    attempts=st.lists(
        st.builds(llmx.Attempt, text, text, finite, st.none() | text, st.none() | text), max_size=3
    ).map(tuple),
)
chunks = st.one_of(
    st.builds(llmx.TextDelta, text),
    st.builds(llmx.ToolCallDelta, st.integers(0, 100), st.none() | text, st.none() | text, text),
    st.builds(llmx.StreamEnd, finish, st.none() | usages, st.none() | text, st.none() | text),
)
model_infos = st.builds(
    llmx.ModelInfo,
    text,
    st.none() | st.integers(1, 10**7),
    st.none() | st.integers(1, 10**6),
    st.frozensets(st.sampled_from([c.value for c in llmx.Capability]) | text),
    st.none() | finite,
    st.none() | finite,
    st.none() | finite,
    st.none() | finite,
)


def through_json(value: object, cls: object) -> object:
    """Unstructure, serialise to JSON text, parse and structure back."""
    data = json.loads(json.dumps(to_json(value, cls)))
    return from_json(data, cls)  # type: ignore[arg-type]


@given(requests)
def test_request_round_trip(request: llmx.Request) -> None:
    assert through_json(request, llmx.Request) == request


@given(responses)
def test_response_round_trip(response: llmx.Response) -> None:
    assert through_json(response, llmx.Response) == response


@given(chunks)
def test_chunk_round_trip(chunk: llmx.types.StreamChunk) -> None:
    assert through_json(chunk, llmx.types.StreamChunk) == chunk


@given(model_infos)
def test_model_info_round_trip(info: llmx.ModelInfo) -> None:
    assert through_json(info, llmx.ModelInfo) == info


@given(model_infos, text)
def test_model_info_renamed_keeps_every_other_field(info: llmx.ModelInfo, new_id: str) -> None:
    """An alias or snapshot gets all its base model's facts: a field added to ModelInfo
    later is kept too (the field-by-field copies in the providers dropped
    ``cache_write_price``)."""
    renamed = info.renamed(new_id)

    assert renamed.id == new_id
    for field in attrs.fields(llmx.ModelInfo):
        if field.name != "id":
            assert getattr(renamed, field.name) == getattr(info, field.name), field.name


@given(messages)
def test_message_round_trip(message: llmx.Message) -> None:
    assert through_json(message, llmx.Message) == message


def test_unknown_keys_are_rejected() -> None:
    data = to_json(llmx.Usage(1, 2))
    data["bogus"] = 1
    with pytest.raises(cattrs.ClassValidationError) as info:
        from_json(data, llmx.Usage)
    assert "extra fields found (bogus)" in cattrs.transform_error(info.value)[0]


def test_message_conveniences() -> None:
    m = llmx.Message.user("look", llmx.Image(url="https://x/y.png"))
    assert m.role == "user"
    assert m.text == "look"
    assert llmx.Message("user", "hi").content == (llmx.Text("hi"),)
    a = llmx.Message.assistant(tool_calls=[llmx.ToolCall("1", "f", '{"a": 1}')])
    assert a.content[0].args() == {"a": 1}  # type: ignore[union-attr]
    t = llmx.Message.tool("1", "42")
    assert t.content == (llmx.ToolResult("1", "42"),)


def test_image_validation(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        llmx.Image()
    with pytest.raises(ValueError, match="exactly one"):
        llmx.Image(url="u", data=b"x", media_type="image/png")
    with pytest.raises(ValueError, match="media_type"):
        llmx.Image(data=b"x")
    img = llmx.Image(data=b"\x89PNG", media_type="image/png")
    assert img.data_url() == "data:image/png;base64,iVBORw=="
    assert "PNG" not in repr(img)  # bytes are not dumped into reprs


def test_image_from_path(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "cat.png"  # type: ignore[operator]
    path.write_bytes(b"\x89PNG")
    assert llmx.Image.from_path(str(path)).media_type == "image/png"
    bad = tmp_path / "notes.txt"  # type: ignore[operator]
    bad.write_text("x")
    with pytest.raises(ValueError, match="media_type"):
        llmx.Image.from_path(str(bad))


def test_request_conveniences() -> None:
    r = llmx.Request(
        "a/b", "hello", stop="END", tool_choice="my_tool", response_format={"type": "object"}
    )
    assert r.messages == (llmx.Message("user", "hello"),)
    assert r.stop == ("END",)
    assert r.tool_choice == llmx.ToolChoice("tool", "my_tool")
    assert r.response_format.type == "json_schema"
    assert llmx.Request("a/b", "x", tool_choice="required").tool_choice == llmx.ToolChoice(
        "required"
    )
    assert r.with_model("c").model == "c"
    with pytest.raises(ValueError, match="schema"):
        llmx.ResponseFormat("json_schema")
    with pytest.raises(ValueError, match="name"):
        llmx.ToolChoice("tool")


def test_usage_and_cost() -> None:
    u = llmx.Usage(10, 5, cache_read_tokens=4) + llmx.Usage(1, 1)
    assert u == llmx.Usage(11, 6, 4)
    assert u.total_tokens == 17
    info = llmx.ModelInfo("m", input_price=2.0, output_price=8.0, cache_read_price=0.5)
    assert info.cost(llmx.Usage(1_000_000, 1_000_000, cache_read_tokens=500_000)) == pytest.approx(
        1.0 + 0.25 + 8.0
    )
    assert llmx.ModelInfo("m").cost(u) is None
    writes = llmx.ModelInfo("m", input_price=3.0, output_price=15.0, cache_write_price=3.75)
    # 1M prompt tokens of which 200k written to the cache: 800k at 3.0, 200k at 3.75
    assert writes.cost(llmx.Usage(1_000_000, 0, cache_write_tokens=200_000)) == pytest.approx(
        0.8 * 3.0 + 0.2 * 3.75
    )
    assert info.supports(llmx.Capability.VISION) is False


def test_response_json_and_raw_not_in_eq() -> None:
    a = llmx.Response('{"x": 1}', "m", "p", raw={"big": "payload"})
    b = llmx.Response('{"x": 1}', "m", "p")
    assert a == b
    assert a.json() == {"x": 1}
    assert "payload" not in repr(a)

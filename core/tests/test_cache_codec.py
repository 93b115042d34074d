"""Cache entries: the direct decoder gives what cattrs gives, for every entry
``encode_entry`` writes and for entries in other shapes."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
import llmx.types
from llmx._cache import _direct_chunk, _direct_response, decode_entry, encode_entry
from llmx._convert import from_json

texts = st.text(max_size=10)
counts = st.integers(0, 10**9)
usages = st.builds(llmx.Usage, counts, counts, counts, counts, counts, counts)
reasons = st.none() | st.sampled_from(["stop", "length", "tool_calls", "content_filter", "other"])
responses = st.builds(
    llmx.Response,
    texts,
    texts,
    texts,
    tool_calls=st.lists(st.builds(llmx.ToolCall, texts, texts, texts), max_size=2).map(tuple),
    finish_reason=reasons,
    usage=usages,
    latency=st.floats(0, 10),
    cost=st.none() | st.floats(0, 1),
    id=st.none() | texts,
)
chunks = st.lists(
    st.one_of(
        st.builds(llmx.TextDelta, texts),
        st.builds(llmx.ToolCallDelta, st.integers(0, 3), st.none() | texts, st.none() | texts),
        st.builds(
            llmx.StreamEnd, reasons, st.none() | usages, st.none() | texts, st.none() | texts
        ),
    ),
    max_size=4,
)


def _entry(value: bytes) -> Any:
    return json.loads(zlib.decompress(value[1:]) if value[:1] == b"Z" else value)


def _by_cattrs(value: bytes) -> tuple[Any, Any]:
    entry = _entry(value)
    response = from_json(entry["r"], llmx.Response)
    stream = [from_json(c, llmx.types.StreamChunk) for c in entry["c"]] if "c" in entry else None  # type: ignore[arg-type]
    return response, stream


@given(responses, st.none() | chunks)
def test_direct_decoding_equals_cattrs(response: llmx.Response, stream: Any) -> None:
    value = encode_entry(response, stream)
    decoded, decoded_chunks = decode_entry(value)
    expected, expected_chunks = _by_cattrs(value)
    assert decoded == expected
    assert decoded_chunks == expected_chunks
    assert _direct_response(_entry(value)["r"]) is not None  # ours take the direct path


@pytest.mark.parametrize(
    "data",
    [
        {"text": "a", "model": "m", "provider": "p"},  # an older, shorter shape: cattrs
        {"text": "a", "model": "m", "provider": "p", "usage": {"input_tokens": 2.0}},
    ],
)
def test_other_shapes_go_through_cattrs(data: dict[str, Any]) -> None:
    assert _direct_response(data) is None
    value = json.dumps({"f": 1, "r": data}).encode()
    assert decode_entry(value)[0] == from_json(data, llmx.Response)


@pytest.mark.parametrize(
    "data",
    [
        {"text": "a", "model": "m", "provider": "p", "finish_reason": "bogus"},
        {"text": "a", "model": "m", "provider": "p", "surprise": 1},
        {
            "text": "a",
            "model": "m",
            "provider": "p",
            "tool_calls": [],
            "finish_reason": "stop",
            "usage": {"input_tokens": "x"},
            "id": None,
        },
    ],
)
def test_bad_entries_are_still_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="corrupt cache entry"):
        decode_entry(json.dumps({"f": 1, "r": data}).encode())


def test_odd_chunks_go_through_cattrs() -> None:
    assert _direct_chunk({"type": "text_delta", "text": 1}) is None
    assert _direct_chunk({"type": "end", "finish_reason": "weird"}) is None
    value = json.dumps(
        {
            "f": 1,
            "r": {"text": "a", "model": "m", "provider": "p"},
            "c": [{"type": "end", "finish_reason": "stop"}],
        }
    ).encode()
    assert decode_entry(value)[1] == [llmx.StreamEnd("stop")]

"""Tests for the incremental Server-Sent Events parser."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmx._sse import SSEEvent, SSEParser, aiter_sse


def parse(raw: bytes) -> list[SSEEvent]:
    """Parse ``raw`` fed in one piece, including ``close()``."""
    parser = SSEParser()
    return parser.feed(raw) + parser.close()


def parse_chunks(chunks: list[bytes]) -> tuple[list[SSEEvent], SSEParser]:
    """Parse ``chunks`` fed one by one, including ``close()``."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events, parser


def split_at(raw: bytes, points: list[int]) -> list[bytes]:
    """Split ``raw`` at the given byte offsets."""
    bounds = [0, *sorted(set(points)), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def bytewise(raw: bytes) -> list[bytes]:
    """Split ``raw`` into one-byte chunks."""
    return [raw[i : i + 1] for i in range(len(raw))]


# --- fields -------------------------------------------------------------------


def test_simple_message() -> None:
    assert parse(b"data: hello\n\n") == [SSEEvent("message", "hello", None, None)]


def test_multiline_data_joined_with_newline() -> None:
    assert parse(b"data: a\ndata: b\ndata:\ndata: c\n\n") == [SSEEvent("message", "a\nb\n\nc")]


def test_event_name_and_reset_to_message() -> None:
    raw = b"event: ping\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n"
    assert [(e.event, e.data) for e in parse(raw)] == [
        ("ping", "1"),
        ("message", "2"),
        ("message", "3"),
    ]


def test_id_persists_and_resets() -> None:
    raw = b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 7\n\ndata: d\n\n"
    parser = SSEParser()
    assert [(e.data, e.id) for e in parser.feed(raw)] == [
        ("a", "1"),
        ("b", "1"),
        ("c", ""),
        ("d", "7"),
    ]
    assert parser.last_event_id == "7"


def test_id_with_nul_ignored() -> None:
    assert parse(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")[1].id == "1"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 1500", 1500),
        (b"retry:0", 0),
        (b"retry: 15x", None),
        (b"retry: -5", None),
        (b"retry: 1.5", None),
        (b"retry:", None),
        (b"retry: \xc2\xb2", None),  # superscript two: a digit, but not ASCII
        (b"retry:  15", None),  # only one leading space is removed
    ],
)
def test_retry(line: bytes, expected: int | None) -> None:
    parser = SSEParser()
    (event,) = parser.feed(line + b"\ndata: x\n\n")
    assert event.retry == expected
    assert parser.retry == expected


def test_retry_is_per_event_on_event_but_persists_on_parser() -> None:
    parser = SSEParser()
    events = parser.feed(b"retry: 10\n\ndata: a\n\nretry: 20\ndata: b\n\ndata: c\n\n")
    assert [(e.data, e.retry) for e in events] == [("a", None), ("b", 20), ("c", None)]
    assert parser.retry == 20


def test_comments_ignored_and_counted() -> None:
    parser = SSEParser()
    events = parser.feed(b": keep-alive\n\n:\ndata: x\n: inside\n\n: bye\n")
    assert events == [SSEEvent("message", "x")]
    assert parser.comments == 4
    assert not parser.pending


def test_line_without_colon_is_field_with_empty_value() -> None:
    assert parse(b"data\n\ndata\ndata\n\n") == [SSEEvent("message", ""), SSEEvent("message", "\n")]
    assert parse(b"event\ndata: x\n\n") == [SSEEvent("message", "x")]


def test_only_one_space_after_colon_removed() -> None:
    assert parse(b"data:  two\n\ndata:none\n\ndata:\ttab\n\n") == [
        SSEEvent("message", " two"),
        SSEEvent("message", "none"),
        SSEEvent("message", "\ttab"),
    ]


def test_colons_in_value_kept() -> None:
    assert parse(b'data: {"a": "b:c"}\n\n')[0].data == '{"a": "b:c"}'


def test_unknown_fields_and_wrong_case_ignored() -> None:
    assert parse(b"foo: bar\nData: no\nDATA: no\ndata: yes\n\n") == [SSEEvent("message", "yes")]


def test_empty_data_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: x\nid: 3\n\n\n\ndata: y\n\n") == [SSEEvent("message", "y", "3")]


def test_data_done_is_plain_data() -> None:
    assert parse(b"data: [DONE]\n\n") == [SSEEvent("message", "[DONE]")]


# --- line terminators, BOM, encoding -------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_terminators(eol: bytes) -> None:
    raw = eol.join([b"event: e", b"data: a", b"data: b", b"", b"data: c", b"", b""])
    expected = [SSEEvent("e", "a\nb"), SSEEvent("message", "c")]
    assert parse(raw) == expected
    assert parse_chunks(bytewise(raw))[0] == expected


def test_mixed_line_terminators() -> None:
    assert parse(b"data: a\r\ndata: b\rdata: c\n\r\n") == [SSEEvent("message", "a\nb\nc")]


def test_cr_at_chunk_end_then_lf_is_one_terminator() -> None:
    events, parser = parse_chunks([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert events == [SSEEvent("message", "a\nb")]
    assert not parser.pending


def test_cr_then_cr_is_two_terminators() -> None:
    events, _ = parse_chunks([b"data: a\r", b"\r"])
    assert events == [SSEEvent("message", "a")]


def test_cr_then_empty_chunk_then_lf() -> None:
    events, _ = parse_chunks([b"data: a\r", b"", b"\n", b"\r\n"])
    assert events == [SSEEvent("message", "a")]


def test_bom_stripped_once() -> None:
    bom = b"\xef\xbb\xbf"
    assert parse(bom + b"data: a\n\n") == [SSEEvent("message", "a")]
    # A second BOM is part of the first field name, which is then unknown.
    assert parse(bom + bom + b"data: a\n\n") == []
    # Not at the start: kept in the value.
    assert parse(b"data: " + bom + b"a\n\n") == [SSEEvent("message", "\ufeffa")]


def test_bom_split_across_chunks() -> None:
    events, _ = parse_chunks([b"\xef", b"\xbb", b"\xbfdata: a\n\n"])
    assert events == [SSEEvent("message", "a")]


def test_partial_bom_prefix_is_not_stripped() -> None:
    assert parse(b"\xef\xbbdata: a\n\ndata: b\n\n") == [SSEEvent("message", "b")]


def test_multibyte_utf8_split_across_chunks() -> None:
    raw = "data: héllo 🌍 wörld\n\n".encode()
    assert parse_chunks(bytewise(raw))[0] == [SSEEvent("message", "héllo 🌍 wörld")]


def test_invalid_utf8_replaced() -> None:
    assert parse(b"data: a\xffb\xe2\x82\n\n") == [SSEEvent("message", "a\ufffdb\ufffd")]


def test_unicode_line_separators_are_not_terminators() -> None:
    data = "a\u2028b\u0085c\x0bd\x0ce\x1cf"
    assert parse(f"data: {data}\n\n".encode()) == [SSEEvent("message", data)]


# --- end of stream -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"data: a\n\ndata: b",
        b"data: a\n\ndata: b\n",
        b"data: a\n\nevent: x\n",
        b"data: a\n\nid: 3\r\n",
        b"data: a\n\n: partial comment",
    ],
)
def test_incomplete_event_discarded_at_close(raw: bytes) -> None:
    parser = SSEParser()
    assert parser.feed(raw) == [SSEEvent("message", "a")]
    assert parser.close() == []
    assert parser.pending


@pytest.mark.parametrize("raw", [b"", b"data: a\n\n", b"data: a\r\n\r\n: ping\n", b"\n\n"])
def test_complete_stream_not_pending(raw: bytes) -> None:
    parser = SSEParser()
    parser.feed(raw)
    assert parser.close() == []
    assert not parser.pending


def test_feed_after_close_raises() -> None:
    parser = SSEParser()
    parser.close()
    with pytest.raises(RuntimeError, match="after close"):
        parser.feed(b"data: x\n\n")


# --- realistic provider streams ------------------------------------------------


def test_openai_style_stream() -> None:
    chunks = [
        b'data: {"id":"c1","choices":[{"delta":{"content":"Hel"}}]}\n\n',
        b'data: {"id":"c1","choices":[{"delta":{"content":"lo"}}]}\n\ndata: {"id":"c1","choi',
        b'ces":[{"delta":{},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    events, parser = parse_chunks(chunks)
    assert [e.event for e in events] == ["message"] * 4
    assert events[1].data == '{"id":"c1","choices":[{"delta":{"content":"lo"}}]}'
    assert events[2].data == '{"id":"c1","choices":[{"delta":{},"finish_reason":"stop"}]}'
    assert events[-1].data == "[DONE]"
    assert not parser.pending


def test_anthropic_style_stream() -> None:
    raw = (
        b"event: message_start\r\n"
        b'data: {"type":"message_start","message":{"id":"msg_1"}}\r\n\r\n'
        b"event: content_block_start\r\n"
        b'data: {"type":"content_block_start","index":0}\r\n\r\n'
        b"event: ping\r\n"
        b'data: {"type": "ping"}\r\n\r\n'
        b"event: content_block_delta\r\n"
        b'data: {"type":"content_block_delta","delta":{"text":"Hi"}}\r\n\r\n'
        b"event: message_stop\r\n"
        b'data: {"type":"message_stop"}\r\n\r\n'
    )
    for chunks in ([raw], bytewise(raw)):
        events, parser = parse_chunks(chunks)
        assert [e.event for e in events] == [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "message_stop",
        ]
        assert events[3].data == '{"type":"content_block_delta","delta":{"text":"Hi"}}'
        assert all(e.id is None and e.retry is None for e in events)
        assert not parser.pending


def test_truncated_anthropic_stream_is_pending() -> None:
    parser = SSEParser()
    parser.feed(b'event: message_start\ndata: {"type":"message_start"}\n\nevent: message_stop\n')
    assert parser.close() == []
    assert parser.pending


# --- aiter_sse -----------------------------------------------------------------


async def test_aiter_sse() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"event: a\ndata: 1"
        yield b"\r"
        yield b"\n\r\ndata: 2\n\n: ping\n"
        yield b"data: trunc"

    parser = SSEParser()
    events = [event async for event in aiter_sse(body(), parser=parser)]
    assert events == [SSEEvent("a", "1"), SSEEvent("message", "2")]
    assert parser.pending
    assert parser.comments == 1


async def test_aiter_sse_default_parser() -> None:
    async def body() -> AsyncIterator[bytes]:
        for byte in b"data: x\n\n":
            yield bytes([byte])

    assert [event async for event in aiter_sse(body())] == [SSEEvent("message", "x")]


# --- properties ----------------------------------------------------------------

_no_cr_text = st.text(st.characters(codec="utf-8", exclude_characters="\r"))
_line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))
_id_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"))
_event_spec = st.tuples(
    _line_text,  # event name ("" means the default)
    _no_cr_text,  # data, may contain "\n"
    st.none() | _id_text,  # id field, if any
    st.none() | st.integers(min_value=0, max_value=10**12),  # retry field, if any
    st.booleans(),  # include a comment line
)


@settings(max_examples=200)
@given(
    specs=st.lists(_event_spec, max_size=8),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    data=st.data(),
)
def test_roundtrip_any_split(
    specs: list[tuple[str, str, str | None, int | None, bool]],
    eol: str,
    bom: bool,
    data: st.DataObject,
) -> None:
    lines: list[str] = []
    expected: list[SSEEvent] = []
    last_id: str | None = None
    for name, payload, id_, retry, comment in specs:
        if comment:
            lines.append(": keep-alive")
        if name:
            lines.append(f"event: {name}")
        if id_ is not None:
            lines.append(f"id: {id_}")
            last_id = id_
        if retry is not None:
            lines.append(f"retry: {retry}")
        lines.extend(f"data: {part}" for part in payload.split("\n"))
        lines.append("")
        expected.append(SSEEvent(name or "message", payload, last_id, retry))
    encoded = (b"\xef\xbb\xbf" if bom else b"") + "".join(line + eol for line in lines).encode()

    points = data.draw(st.lists(st.integers(0, len(encoded)), max_size=12), label="splits")
    whole, whole_parser = parse_chunks([encoded])
    split, split_parser = parse_chunks(split_at(encoded, points))
    assert whole == expected
    assert split == expected
    assert not whole_parser.pending
    assert not split_parser.pending
    assert split_parser.comments == whole_parser.comments == sum(s[4] for s in specs)


@settings(max_examples=200)
@given(raw=st.binary(max_size=300), data=st.data())
def test_arbitrary_bytes_any_split(raw: bytes, data: st.DataObject) -> None:
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="splits")
    whole, whole_parser = parse_chunks([raw])
    split, split_parser = parse_chunks(split_at(raw, points))
    assert split == whole
    assert split_parser.pending == whole_parser.pending
    assert split_parser.comments == whole_parser.comments
    assert split_parser.last_event_id == whole_parser.last_event_id
    assert split_parser.retry == whole_parser.retry


@settings(max_examples=100)
@given(
    parts=st.lists(
        st.sampled_from(
            [
                *(b"data", b"data:", b"data: ", b"x", b"\xc3", b"\xa9", b"\xef\xbb\xbf", b":"),
                *(b"event", b"id", b"retry", b"1", b"\x00", b"\r", b"\n", b"\r\n", b" "),
            ]
        ),
        max_size=60,
    ),
    data=st.data(),
)
def test_sse_shaped_bytes_any_split(parts: list[bytes], data: st.DataObject) -> None:
    raw = b"".join(parts)
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="splits")
    whole, whole_parser = parse_chunks([raw])
    split, split_parser = parse_chunks(split_at(raw, points))
    assert split == whole
    assert parse_chunks(bytewise(raw))[0] == whole
    assert split_parser.pending == whole_parser.pending
    assert split_parser.comments == whole_parser.comments
    assert split_parser.last_event_id == whole_parser.last_event_id


@settings(max_examples=100)
@given(raw=st.binary(max_size=300), data=st.data())
def test_lazy_events_equal_feed_for_any_split(raw: bytes, data: st.DataObject) -> None:
    """events() yields exactly what feed() returns, chunk by chunk, with the same state
    after (the lazy form a provider uses for its time to first chunk)."""
    chunks = split_at(raw, data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    eager, lazy = SSEParser(), SSEParser()
    for chunk in chunks:
        assert list(lazy.events(chunk)) == eager.feed(chunk)
    assert (lazy.pending, lazy.comments, lazy.last_event_id, lazy.retry) == (
        eager.pending,
        eager.comments,
        eager.last_event_id,
        eager.retry,
    )


def test_lazy_events_left_early_resume_after_the_last_event_taken() -> None:
    parser = SSEParser()
    events = parser.events(b"data: a\n\ndata: b\n\n")
    assert next(events).data == "a"
    events.close()  # left early: the rest of that read is dropped, the state is sound
    assert not parser.pending
    assert [e.data for e in parser.feed(b"data: c\n\n")] == ["c"]


_sse_pieces = st.sampled_from(
    [
        *(b"data: ", b"data:", b"event: ", b"event:x", b"id: 7", b"retry: 5", b": ping"),
        *(b"x", b'{"a": 1}', b"\xc3\xa9", b"\xef\xbb\xbf", b"\n", b"\n\n", b"\r\n", b"\r"),
    ]
)


@settings(max_examples=150)
@given(
    raw=st.one_of(st.binary(max_size=300), st.lists(_sse_pieces, max_size=60).map(b"".join)),
    data=st.data(),
)
def test_data_equals_the_data_of_feed_for_any_split(raw: bytes, data: st.DataObject) -> None:
    """data() (with its fast path for reads of whole events) gives each event's data
    exactly as feed() does, chunk by chunk, with the same parser state after."""
    chunks = split_at(raw, data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    full, fast = SSEParser(), SSEParser()
    for chunk in chunks:
        assert fast.data(chunk) == [event.data for event in full.feed(chunk)]
    assert (fast.pending, fast.comments, fast.last_event_id, fast.retry) == (
        full.pending,
        full.comments,
        full.last_event_id,
        full.retry,
    )


def test_data_fast_path_reads_openai_and_anthropic_reads() -> None:
    parser = SSEParser()
    assert parser.data(b"data: 1\n\n") == ["1"]  # the first read takes the full path
    assert parser.data(b"data: 2\n\n") == ["2"]
    assert parser.data(b"data: 3\n\ndata: 4\n\n") == ["3", "4"]
    assert parser.data(b"event: a\ndata: 5\n\nevent: b\ndata: 6\n\n") == ["5", "6"]
    assert parser.data(b"data: 7\ndata: 8\n\n") == ["7\n8"]  # two lines: the full path
    assert parser.data(b"id: x\ndata: 9\n\n") == ["9"]
    assert parser.last_event_id == "x"
    parser.close()
    with pytest.raises(RuntimeError, match="after close"):
        parser.data(b"data: 10\n\n")

"""The cache key's direct canonicaliser writes exactly what the general (cattrs) path
writes, for any request: keys stay byte-identical to the ones stored before it."""

from __future__ import annotations

import math

import attrs
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx._cachekey import _direct_body, cache_key, canonical_body, canonical_body_general
from llmx.types import Part

# Plain JSON, plus what a caller may put in open mappings that only the general path
# handles (bytes, sets, tuples, non-string keys, non-finite floats).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()  # nan, inf, -0.0, integral floats...
    | st.text(max_size=6)
)
odd = st.binary(max_size=4) | st.frozensets(st.integers(0, 5), max_size=3)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
open_values = st.recursive(
    scalars | odd,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=6,
)
mappings = st.dictionaries(st.text(max_size=5), values, max_size=3)

texts = st.text(max_size=12)  # any unicode: escapes must match
parts = st.one_of(
    texts,
    st.builds(llmx.Text, texts),
    st.builds(llmx.ToolCall, texts, texts, texts),
    st.builds(llmx.ToolResult, texts, texts, name=st.none() | texts, is_error=st.booleans()),
    st.builds(llmx.Image, url=st.just("https://x/y.png")),
    st.builds(llmx.Image, data=st.binary(min_size=1, max_size=6), media_type=st.just("image/png")),
)
messages = st.lists(
    st.builds(
        llmx.Message,
        st.sampled_from(["system", "user", "assistant", "tool"]),
        st.lists(parts, max_size=3),
    ),
    min_size=1,
    max_size=3,
)
tools = st.lists(
    st.builds(
        llmx.Tool,
        texts,
        description=texts,
        parameters=mappings | st.dictionaries(st.text(max_size=3), open_values, max_size=2),
        strict=st.none() | st.booleans(),
    ),
    max_size=2,
)
formats = st.one_of(
    st.none(),
    st.sampled_from(["text", "json"]),
    mappings,
    st.builds(
        llmx.ResponseFormat,
        st.just("json_schema"),
        mappings,
        name=st.none() | texts,
        strict=st.booleans(),
    ),
)
numbers = st.none() | st.integers(0, 2**40) | st.floats() | st.sampled_from([0, 1, 0.5, 1.0])
requests = st.builds(
    llmx.Request,
    model=texts,
    messages=messages,
    max_tokens=st.none() | st.integers(-5, 2**40),
    temperature=numbers,
    top_p=numbers,
    stop=st.lists(texts, max_size=3),
    seed=st.none() | st.integers(-(2**63), 2**63),
    tools=tools,
    tool_choice=st.none() | st.sampled_from(["auto", "none", "required"]) | texts,
    response_format=formats,
    extra=st.dictionaries(
        st.sampled_from(["a", "b", "n", "user", "metadata", "stream_options", "logit_bias"]),
        values | open_values,
        max_size=4,
    ),
    include_raw=st.booleans(),
)


@given(requests)
def test_the_direct_canonicaliser_writes_what_the_general_path_writes(
    request: llmx.Request,
) -> None:
    assert canonical_body(request) == canonical_body_general(request)


def _chat_request() -> llmx.Request:
    return llmx.Request(
        "a/m",
        [
            llmx.Message.system("be brief"),
            llmx.Message.user("hi \u2713"),
            llmx.Message.assistant("", tool_calls=[llmx.ToolCall("c1", "f", '{"x": 1}')]),
            llmx.Message.tool("c1", "42"),
        ],
        max_tokens=10,
        temperature=0.0,
        stop=["\n"],
        tools=[llmx.Tool("f", "does f", {"type": "object", "properties": {"x": {"min": 1.0}}})],
        tool_choice="auto",
        response_format={"type": "object"},
        extra={"frequency_penalty": 0.5, "user": "u1", "logit_bias": {"50256": -100}},
    )


def test_the_direct_path_covers_the_common_requests() -> None:
    """Chat requests with text, tool calls and tool results, tools with JSON schemas,
    extra parameters: all written directly, without cattrs."""
    request = _chat_request()
    direct = _direct_body(request)
    assert direct is not None
    assert direct == canonical_body_general(request)


def test_keys_are_what_they_were() -> None:
    """Digests computed by llmx before the direct path (git fb81bd4): entries stored
    then are still found."""
    plain = llmx.Request("alias", "Say hi")
    assert cache_key(plain, instance="bench", model="gpt-4o-mini") == (
        "llmx:v1:ace6a87b067bee644a547036199025512cee825bd566bc4ea6b7e0e03fe324d1"
    )
    assert cache_key(_chat_request(), instance="i", model="m", namespace="ns") == (
        "llmx:v1:ns:064754fdc07d43a2d5e725e864d5efe51426ef53d1a792524eb52400bae1f6ed"
    )
    weird = llmx.Request("x", "y", temperature=math.nan, extra={"b": b"\x00", "s": {1, 2}})
    assert _direct_body(weird) is None  # the general path's business
    assert canonical_body(weird) == canonical_body_general(weird)


caches = st.none() | st.just(True) | st.builds(llmx.CacheControl, st.sampled_from(["5m", "1h"]))


@given(requests, st.data())
def test_prompt_cache_controls_never_change_the_key(
    request: llmx.Request, data: st.DataObject
) -> None:
    """Breakpoints and ``prompt_cache_key`` steer the vendor's cache, not the answer."""

    def mark(part: Part) -> Part:
        if type(part) is llmx.Text:
            return attrs.evolve(part, cache=data.draw(caches))
        return part

    marked = attrs.evolve(
        request,
        messages=[
            attrs.evolve(m, content=[mark(p) for p in m.content], cache=data.draw(caches))
            for m in request.messages
        ],
        tools=[attrs.evolve(t, cache=data.draw(caches)) for t in request.tools],
        prompt_cache_key=data.draw(st.none() | texts),
    )
    assert canonical_body(marked) == canonical_body_general(marked) == canonical_body(request)
    assert cache_key(marked, instance="i", model="m") == cache_key(request, instance="i", model="m")


@given(
    st.none() | st.integers(1, 5),
    st.booleans(),
    st.none() | st.integers(0, 20),
    st.none() | st.integers(1, 5),
    st.booleans(),
    st.none() | st.integers(0, 20),
)
def test_n_and_logprobs_are_in_the_key(
    n1: int | None,
    lp1: bool,
    top1: int | None,
    n2: int | None,
    lp2: bool,
    top2: int | None,
) -> None:
    """Several answers and logprobs change the answer, so the key (issue 15, item 7); a
    request without them keeps the key it had before the fields existed."""
    a = llmx.Request("a/m", "hi", n=n1, logprobs=lp1, top_logprobs=top1)
    b = llmx.Request("a/m", "hi", n=n2, logprobs=lp2, top_logprobs=top2)
    same = (a.n, a.logprobs, a.top_logprobs) == (b.n, b.logprobs, b.top_logprobs)
    assert (canonical_body(a) == canonical_body(b)) == same
    assert canonical_body(a) == canonical_body_general(a)
    if not a.wants_choices:
        assert canonical_body(a) == canonical_body(llmx.Request("a/m", "hi"))
        assert '"n"' not in canonical_body(a)
        assert "logprobs" not in canonical_body(a)

"""JSON conversion of llmx's value types with cattrs (imported on first use only).

``to_json(value)`` gives plain JSON-ready data; ``from_json(data, cls)`` structures it
back with precise errors. Unions of content parts and stream chunks are tagged with a
``"type"`` key; bytes travel as base64 strings; frozensets as sorted lists.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from typing import Any, TypeVar

import cattrs
from cattrs.preconf.json import make_converter
from cattrs.strategies import configure_tagged_union

from llmx._types import (
    AnswerChunk,
    Audio,
    ChoiceDelta,
    Document,
    Image,
    LogprobsDelta,
    Part,
    Reasoning,
    ReasoningDelta,
    RefusalDelta,
    StreamChunk,
    StreamEnd,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
)

T = TypeVar("T")

_PART_TAGS: dict[type, str] = {
    Text: "text",
    Image: "image",
    ToolCall: "tool_call",
    ToolResult: "tool_result",
    Reasoning: "reasoning",
    Document: "document",
    Audio: "audio",
}
_CHUNK_TAGS: dict[type, str] = {
    TextDelta: "text_delta",
    ToolCallDelta: "tool_call_delta",
    StreamEnd: "end",
    ReasoningDelta: "reasoning_delta",
    LogprobsDelta: "logprobs_delta",
    RefusalDelta: "refusal_delta",
    ChoiceDelta: "choice_delta",
}


@functools.cache
def converter() -> cattrs.Converter:
    """The shared converter for llmx value types (built once, on first use)."""
    conv = make_converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
    conv.register_structure_hook(
        bytes, lambda v, _: base64.b64decode(v) if isinstance(v, str) else bytes(v)
    )
    conv.register_unstructure_hook(frozenset, lambda s: sorted(s))
    conv.register_structure_hook_func(
        lambda t: t == Mapping[str, Any], lambda v, _: dict(_require_mapping(v))
    )
    conv.register_structure_hook_func(
        lambda t: t == (str | int | None), lambda v, _: _str_or_int(v)
    )
    configure_tagged_union(Part, conv, tag_generator=_PART_TAGS.__getitem__, tag_name="type")
    configure_tagged_union(
        AnswerChunk, conv, tag_generator=_CHUNK_TAGS.__getitem__, tag_name="type"
    )
    configure_tagged_union(
        StreamChunk, conv, tag_generator=_CHUNK_TAGS.__getitem__, tag_name="type"
    )
    return conv


def _str_or_int(value: Any) -> str | int | None:
    """``Request.reasoning`` as stored: a level, a budget or None (checked by Request)."""
    if value is None or isinstance(value, str) or type(value) is int:
        return value
    msg = f"expected a string, an integer or null, got {type(value).__name__}"
    raise TypeError(msg)


def _require_mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        msg = f"expected a table/object, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def to_json(value: Any, as_type: Any = None) -> Any:
    """Unstructure an llmx value into JSON-ready data (dicts, lists, strings, numbers).

    Pass ``as_type`` (e.g. ``StreamChunk`` or ``Part``) to tag a single union member.
    """
    return converter().unstructure(value, unstructure_as=as_type)


def from_json(data: Any, cls: type[T]) -> T:
    """Structure JSON data back into ``cls``; raises cattrs' detailed validation errors."""
    return converter().structure(data, cls)

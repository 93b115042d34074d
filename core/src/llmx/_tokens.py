"""Token counts before sending, for routing by cost, context-window checks and rate limits.

The estimate is deliberately simple: about four characters per token for ASCII text,
more tokens for other scripts (each UTF-8 byte past a character's first counts another
1.5 characters: about one token per CJK character, 0.6 per Cyrillic or Greek one), plus
fixed overheads per message, image and tool. docs/features/token-counting.md measures
it against a real tokenizer. Real usage from the provider replaces it wherever it is
known.

An exact count, when one was made (:meth:`llmx.Client.count_tokens` with a
:class:`~llmx.Request`), is remembered for that Request object and that (instance,
model): :func:`input_tokens` returns it instead of the estimate, so sending the same
object afterwards plans its rate limits and context-window checks with the real number.
The memory is keyed by the object's identity and forgets it when the object is
collected: nothing is hashed, and a request that was never counted pays one dict
lookup on an empty dict.
"""

from __future__ import annotations

import json
import weakref
from typing import TYPE_CHECKING

from llmx._types import Image, Text, ToolCall, ToolResult

if TYPE_CHECKING:
    from llmx._types import Request

CHARS_PER_TOKEN = 4
EXTRA_BYTE_CHARS = 1.5  # per UTF-8 byte beyond a character's first (see the module docstring)
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = (
    765  # a high-detail 512x512 tile set in OpenAI's accounting; a fair upper-middle guess
)


def estimate_input_tokens(request: Request) -> int:
    """An estimate of the prompt tokens ``request`` will be billed for."""
    chars = 0
    tokens = 0
    for message in request.messages:
        tokens += MESSAGE_OVERHEAD
        for part in message.content:
            if type(part) is Text:
                chars += _weight(part.text)
            elif type(part) is Image:
                tokens += IMAGE_TOKENS
            elif type(part) is ToolCall:
                chars += len(part.name) + len(part.arguments)
            elif type(part) is ToolResult:
                chars += _weight(part.content)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    return tokens + -(-chars // CHARS_PER_TOKEN)


_Counts = dict[tuple[str, str], int]
_KNOWN: dict[int, tuple[weakref.ReferenceType[Request], _Counts]] = {}


def remember_input_tokens(request: Request, instance: str, model: str, tokens: int) -> None:
    """Remember an exact count of ``request``'s input tokens on ``instance``/``model``."""
    key = id(request)
    entry = _KNOWN.get(key)
    if entry is None or entry[0]() is not request:
        entry = _KNOWN[key] = (weakref.ref(request, _Forget(key)), {})
    entry[1][instance, model] = tokens


class _Forget:
    """The weak reference's callback: drop the entry of a collected Request."""

    __slots__ = ("key",)

    def __init__(self, key: int) -> None:
        self.key = key

    def __call__(self, ref: weakref.ReferenceType[Request]) -> None:
        entry = _KNOWN.get(self.key)
        if entry is not None and entry[0] is ref:
            del _KNOWN[self.key]


def known_input_tokens(request: Request, instance: str, model: str) -> int | None:
    """The exact count remembered for ``request`` on ``instance``/``model``, or None."""
    if not _KNOWN:
        return None
    entry = _KNOWN.get(id(request))
    if entry is None or entry[0]() is not request:
        return None
    return entry[1].get((instance, model))


def input_tokens(request: Request, instance: str, model: str) -> int:
    """``request``'s input tokens on ``instance``/``model``: the exact count when one
    was made, else :func:`estimate_input_tokens`."""
    if _KNOWN:
        known = known_input_tokens(request, instance, model)
        if known is not None:
            return known
    return estimate_input_tokens(request)


def estimate_text_tokens(text: str) -> int:
    """An estimate of the tokens in ``text`` (for answers whose usage was not reported)."""
    return -(-_weight(text) // CHARS_PER_TOKEN)


def _weight(text: str) -> int:
    """``text``'s length in ASCII-equivalent characters (see the module docstring)."""
    if text.isascii():
        return len(text)
    chars = len(text)
    return chars + int(EXTRA_BYTE_CHARS * (len(text.encode("utf-8", "surrogatepass")) - chars))


def estimate_output_tokens(request: Request, default: int = 256) -> int:
    """The output tokens to plan for: ``max_tokens`` when set, else ``default``."""
    return request.max_tokens if request.max_tokens is not None else default

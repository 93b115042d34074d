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

from llmx._types import Audio, Document, Image, Request, Text, ToolCall, ToolResult

if TYPE_CHECKING:
    from llmx._embedding import EmbeddingRequest

CHARS_PER_TOKEN = 4
EXTRA_BYTE_CHARS = 1.5  # per UTF-8 byte beyond a character's first (see the module docstring)
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = (
    765  # a high-detail 512x512 tile set in OpenAI's accounting; a fair upper-middle guess
)

DOCUMENT_PAGE_TOKENS = 1500
"""A guess per PDF page (Anthropic: 1,500-3,000 tokens a page of text plus its image)."""
PDF_BYTES_PER_PAGE = 50_000
"""Bytes per page assumed when a PDF's pages cannot be counted."""
URL_DOCUMENT_PAGES = 10
"""Pages assumed for a document given by URL (its length is not known before sending)."""
AUDIO_TOKENS_PER_SECOND = 32
"""Gemini's figure for audio (32 tokens a second; OpenAI's is of the same order)."""
AUDIO_BYTES_PER_SECOND = {"wav": 32_000, "aiff": 32_000, "flac": 16_000}
"""Bytes per second assumed per format (16 kHz 16-bit mono PCM; flac about half);
compressed formats: 16,000 (128 kbit/s)."""


def _document_tokens(doc: Document) -> int:
    """A fixed guess per page: the PDF's ``/Type /Page`` objects counted, else its size
    over :data:`PDF_BYTES_PER_PAGE`; plain text is counted as text."""
    if doc.data is None:
        return URL_DOCUMENT_PAGES * DOCUMENT_PAGE_TOKENS
    if doc.media_type == "text/plain":
        return -(-len(doc.data) // CHARS_PER_TOKEN)
    pages = doc.data.count(b"/Type /Page") - doc.data.count(b"/Type /Pages")
    if pages <= 0:
        pages = max(1, -(-len(doc.data) // PDF_BYTES_PER_PAGE))
    return pages * DOCUMENT_PAGE_TOKENS


def _audio_tokens(audio: Audio) -> int:
    """:data:`AUDIO_TOKENS_PER_SECOND` times the seconds the bytes hold at the
    format's assumed rate (:data:`AUDIO_BYTES_PER_SECOND`)."""
    seconds = -(-len(audio.data) // AUDIO_BYTES_PER_SECOND.get(audio.format, 16_000))
    return max(1, seconds) * AUDIO_TOKENS_PER_SECOND


def estimate_input_tokens(request: Request | EmbeddingRequest) -> int:
    """An estimate of the prompt tokens ``request`` will be billed for (an
    :class:`~llmx.plugin.EmbeddingRequest`: its inputs)."""
    if not isinstance(request, Request):
        return -(-sum([len(text) for text in request.input]) // CHARS_PER_TOKEN)
    chars = 0
    tokens = 0
    for message in request.messages:
        tokens += MESSAGE_OVERHEAD
        for part in message.content:
            if type(part) is Text:
                chars += _weight(part.text)
            elif type(part) is Image:
                tokens += IMAGE_TOKENS
            elif type(part) is Document:
                tokens += _document_tokens(part)
            elif type(part) is Audio:
                tokens += _audio_tokens(part)
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


def estimate_context_tokens(request: Request | EmbeddingRequest) -> int:
    """What must fit a model's context window: the whole prompt of a chat request; the
    longest input of an :class:`~llmx.plugin.EmbeddingRequest` (each input is embedded
    on its own, however many there are)."""
    if not isinstance(request, Request):
        return -(-max([len(text) for text in request.input]) // CHARS_PER_TOKEN)
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


def estimate_output_tokens(request: Request | EmbeddingRequest, default: int = 256) -> int:
    """The output tokens to plan for: ``max_tokens`` when set, else ``default`` (none
    for an :class:`~llmx.plugin.EmbeddingRequest`)."""
    if not isinstance(request, Request):
        return 0
    return request.max_tokens if request.max_tokens is not None else default

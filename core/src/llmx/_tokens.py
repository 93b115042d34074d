"""Cheap token estimates, for routing by cost, context-window checks and rate limits.

The estimate is deliberately simple (about four characters per token, plus fixed
overheads per message, image and tool) and errs on the high side; real usage from the
provider replaces it wherever it is known.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from llmx._types import Image, Request, Text, ToolCall, ToolResult

if TYPE_CHECKING:
    from llmx._embedding import EmbeddingRequest

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = (
    765  # a high-detail 512x512 tile set in OpenAI's accounting; a fair upper-middle guess
)


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
                chars += len(part.text)
            elif type(part) is Image:
                tokens += IMAGE_TOKENS
            elif type(part) is ToolCall:
                chars += len(part.name) + len(part.arguments)
            elif type(part) is ToolResult:
                chars += len(part.content)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    return tokens + -(-chars // CHARS_PER_TOKEN)


def estimate_context_tokens(request: Request | EmbeddingRequest) -> int:
    """What must fit a model's context window: the whole prompt of a chat request; the
    longest input of an :class:`~llmx.plugin.EmbeddingRequest` (each input is embedded
    on its own, however many there are)."""
    if not isinstance(request, Request):
        return -(-max([len(text) for text in request.input]) // CHARS_PER_TOKEN)
    return estimate_input_tokens(request)


def estimate_text_tokens(text: str) -> int:
    """An estimate of the tokens in ``text`` (for answers whose usage was not reported)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_output_tokens(request: Request | EmbeddingRequest, default: int = 256) -> int:
    """The output tokens to plan for: ``max_tokens`` when set, else ``default`` (none
    for an :class:`~llmx.plugin.EmbeddingRequest`)."""
    if not isinstance(request, Request):
        return 0
    return request.max_tokens if request.max_tokens is not None else default

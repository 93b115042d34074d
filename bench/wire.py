"""What the fake server answers and what every driver expects back (stdlib only).

Shared by the server and by the drivers, including the peer drivers that run with the
peers venv's Python, so it must import nothing outside the standard library.
"""

from __future__ import annotations

MODEL = "gpt-4o-mini"
"""The model name every client sends (llmx: ``bench/gpt-4o-mini``)."""

PROMPT = "Hi"
"""The one user message every request carries."""

REPLY_TEXT = "Hello! This is the llmx bench server answering."
"""The text of every non-streamed answer, in every wire format."""

DEFAULT_CHUNKS = 50
"""Text chunks per streamed answer unless the server is configured otherwise."""

USAGE = (9, 12)
"""(prompt tokens, completion tokens) reported by every answer."""


def chunk_texts(chunks: int) -> list[str]:
    """The text pieces of a streamed answer with ``chunks`` pieces, in order."""
    return [f"tok{i} " for i in range(chunks)]


def stream_text(chunks: int) -> str:
    """The reassembled text of a streamed answer with ``chunks`` pieces."""
    return "".join(chunk_texts(chunks))

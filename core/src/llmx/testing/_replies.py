"""What a fake server answers: scripted replies, independent of any provider's wire format.

A reply describes *what* the model says (text, tool calls, usage) and *how the wire
misbehaves* (delays, split TCP reads, dropped connections, missing ``[DONE]``). Each
fake server renders a reply in its own provider's format, as JSON or as a stream
(Server-Sent Events or newline-delimited JSON, as the server declares) depending on
the request, so the same reply classes serve the OpenAI, Anthropic and Gemini fakes and
a third party's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from llmx._types import ToolCall

__all__ = [
    "Blocked",
    "ErrorKind",
    "ErrorReply",
    "MidStreamError",
    "RawReply",
    "Reply",
    "ReplyItem",
    "Reset",
    "Stall",
    "TOOL_REPLY",
    "approx_tokens",
    "sse_events",
]


def approx_tokens(text: str) -> int:
    """The token count the fake servers report for ``text``: one token per 4 characters.

    Deterministic and cheap; ``""`` counts as 0 tokens, any other text as at least 1.
    """
    return (len(text) + 3) // 4


def _offsets(value: Iterable[int] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    out = tuple(sorted({int(v) for v in value}))
    if out and out[0] < 0:
        msg = "split_at offsets must be >= 0"
        raise ValueError(msg)
    return out


def _tool_calls(value: Iterable[ToolCall | tuple[str, str, str]]) -> tuple[ToolCall, ...]:
    return tuple(v if isinstance(v, ToolCall) else ToolCall(*v) for v in value)


def _to_bytes(value: str | bytes | bytearray | memoryview) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _headers(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return {} if value is None else dict(value)


@attrs.frozen
class Reply:
    """A successful answer, rendered as JSON or as a stream (SSE or NDJSON) as the request asks.

    Content:
        ``text`` (the answer), ``tool_calls`` (:class:`llmx.ToolCall` objects or
        ``(id, name, arguments)`` tuples), ``finish_reason`` (None derives
        ``"tool_calls"`` when there are tool calls, else ``"stop"``), ``usage`` as
        ``(prompt_tokens, completion_tokens)`` or None to compute both with
        :func:`approx_tokens`, ``cached_tokens`` (prompt tokens read from a cache),
        ``cache_write_tokens`` (prompt tokens written to a cache; of them,
        ``cache_write_1h_tokens`` to a one-hour cache) and
        ``reasoning_tokens`` (completion tokens spent thinking), ``model`` (None
        echoes the requested model) and ``id`` (None: a fresh id per response).

        The numbers are llmx's: ``prompt_tokens`` *includes* cached and cache-written
        tokens, ``completion_tokens`` includes reasoning tokens, and each fake server
        converts them to its provider's own accounting (Anthropic reports
        ``input_tokens`` without the cache, Gemini ``candidatesTokenCount`` without
        thoughts). Likewise ``finish_reason`` takes llmx's names (``"stop"``,
        ``"length"``, ``"tool_calls"``, ``"content_filter"``), which each server sends
        as its provider's equivalent (``end_turn``/``max_tokens``/``tool_use``/
        ``refusal`` for Anthropic, ``STOP``/``MAX_TOKENS``/``SAFETY`` for Gemini);
        any other string is sent as is.

    Timing and framing of a stream:
        ``delay`` seconds before the response headers; ``chunk_size`` characters per
        content delta (None: the text is split into three deltas); ``chunk_delay``
        seconds between writes; ``line_ending`` ends every line of the stream (SSE
        or NDJSON: ``"\\n"``, ``"\\r\\n"`` or ``"\\r"``).

    Wire faults (streams, and ``split_at``/``drop_after`` also for JSON bodies):
        ``split_at`` byte offsets into the body: it is written in pieces cut there,
        each written and flushed on its own with a short pause, so the client gets
        separate TCP reads (e.g. inside a multi-byte UTF-8 character, or between
        ``\\r`` and ``\\n``); ``drop_after`` aborts the connection after that many
        body bytes (no clean end: the HTTP body is left incomplete); ``end_after``
        ends the stream cleanly after that many events (no finish reason, usage or
        ``[DONE]`` unless they came earlier); ``omit_usage`` leaves out the usage
        (the final usage chunk of a stream); ``omit_done`` leaves out the
        ``data: [DONE]`` line; ``repeat_tool_call_ids`` repeats the id and name in
        every tool-call delta (a quirk of some OpenAI-compatible servers).

    ``headers`` are added to the response headers.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls, kw_only=True)
    finish_reason: str | None = attrs.field(default=None, kw_only=True)
    usage: tuple[int, int] | None = attrs.field(default=None, kw_only=True)
    cached_tokens: int = attrs.field(default=0, kw_only=True)
    cache_write_tokens: int = attrs.field(default=0, kw_only=True)
    cache_write_1h_tokens: int = attrs.field(default=0, kw_only=True)
    reasoning_tokens: int = attrs.field(default=0, kw_only=True)
    model: str | None = attrs.field(default=None, kw_only=True)
    id: str | None = attrs.field(default=None, kw_only=True)
    delay: float = attrs.field(default=0.0, kw_only=True)
    chunk_size: int | None = attrs.field(default=None, kw_only=True)
    chunk_delay: float = attrs.field(default=0.0, kw_only=True)
    line_ending: str = attrs.field(default="\n", kw_only=True)
    split_at: tuple[int, ...] | None = attrs.field(default=None, converter=_offsets, kw_only=True)
    drop_after: int | None = attrs.field(default=None, kw_only=True)
    end_after: int | None = attrs.field(default=None, kw_only=True)
    omit_usage: bool = attrs.field(default=False, kw_only=True)
    omit_done: bool = attrs.field(default=False, kw_only=True)
    repeat_tool_call_ids: bool = attrs.field(default=False, kw_only=True)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers, kw_only=True)
    reasoning: str = attrs.field(default="", kw_only=True)
    """The model's reasoning text, rendered the vendor's way when the request asked for
    reasoning (Anthropic thinking blocks with a signature, Gemini thought parts;
    OpenAI's own API shows none) and streamed in pieces like the text."""
    # -- n > 1, logprobs, refusals and pauses (issue 15, item 7) --
    refusal: str | None = attrs.field(default=None, kw_only=True)
    """The model's refusal message, sent the vendor's way (OpenAI's ``refusal`` field
    and ``delta.refusal``, an Anthropic ``refusal`` stop reason after it as text, a
    Responses API ``refusal`` part); ``text`` should then be empty."""
    choices: tuple[str, ...] = attrs.field(default=(), converter=_texts, kw_only=True)
    """The texts of the further answers of a request with ``n > 1`` (choice 0 is
    ``text``); a fake without ``n`` ignores them. Missing ones repeat ``text``."""

    def token_logprobs(self, text: str, top: int) -> list[dict[str, Any]]:
        """``text`` as OpenAI's ``logprobs.content``: one token per character, each with
        a made-up log probability and ``top`` alternatives (deterministic)."""
        out = []
        for i, ch in enumerate(text):
            alternatives = [
                {"token": alt, "logprob": -1.0 - k - (i % 3) / 10, "bytes": list(alt.encode())}
                for k, alt in enumerate(("x", "y", "z", "w", "v")[:top])
            ]
            out.append(
                {
                    "token": ch,
                    "logprob": -(i % 5) / 10,
                    "bytes": list(ch.encode()),
                    "top_logprobs": alternatives,
                }
            )
        return out

    def __attrs_post_init__(self) -> None:
        if self.line_ending not in ("\n", "\r\n", "\r"):
            msg = "line_ending must be '\\n', '\\r\\n' or '\\r'"
            raise ValueError(msg)
        if self.chunk_size is not None and self.chunk_size < 1:
            msg = "chunk_size must be at least 1"
            raise ValueError(msg)

    @property
    def derived_finish_reason(self) -> str:
        """The finish reason sent: ``finish_reason``, or derived from the tool calls."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def text_pieces(self) -> list[str]:
        """The text as the content deltas of a stream (see ``chunk_size``)."""
        text = self.text
        if not text:
            return []
        size = self.chunk_size or max(1, -(-len(text) // 3))
        return [text[i : i + size] for i in range(0, len(text), size)]

    def reasoning_pieces(self) -> list[str]:
        """The reasoning text as the deltas of a stream (see ``chunk_size``)."""
        text = self.reasoning
        if not text:
            return []
        size = self.chunk_size or max(1, -(-len(text) // 3))
        return [text[i : i + size] for i in range(0, len(text), size)]

    def argument_pieces(self, arguments: str) -> list[str]:
        """A tool call's arguments as the deltas of a stream (see ``chunk_size``)."""
        if not arguments:
            return []
        size = self.chunk_size or max(1, -(-len(arguments) // 3))
        return [arguments[i : i + size] for i in range(0, len(arguments), size)]

    def token_usage(self, prompt_text: str) -> tuple[int, int]:
        """``(prompt_tokens, completion_tokens)``: ``usage``, or computed from the texts."""
        if self.usage is not None:
            return self.usage
        completion = self.text + "".join(c.name + c.arguments for c in self.tool_calls)
        return approx_tokens(prompt_text), approx_tokens(completion)


@attrs.frozen
class ErrorReply:
    """An HTTP error answer in the provider's documented error format.

    ``status`` is the HTTP status; ``message``, ``type`` and ``code`` fill the error
    body (None: the provider's usual values for that status); ``param`` names the
    offending request field. ``headers`` are added (e.g. ``{"retry-after": "2"}``).
    ``body`` replaces the whole body: a dict or list is sent as JSON, ``str`` or
    ``bytes`` as is (an HTML error page, ``{"detail": ...}``, ...); ``content_type``
    then defaults to JSON for dicts and lists and ``text/html`` otherwise. ``delay``
    seconds pass before the answer.
    """

    status: int
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    body: Any = None
    content_type: str | None = None
    delay: float = 0.0


@attrs.frozen
class RawReply:
    """Exactly these bytes, for malformed answers: any status, body and content type.

    ``body`` may be ``str`` (sent as UTF-8) or ``bytes``. ``split_at``, ``drop_after``
    and ``delay`` work as in :class:`Reply`.
    """

    status: int = 200
    body: bytes = attrs.field(default=b"", converter=_to_bytes)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    content_type: str = "application/json"
    delay: float = 0.0
    split_at: tuple[int, ...] | None = attrs.field(default=None, converter=_offsets)
    drop_after: int | None = None


@attrs.frozen
class MidStreamError:
    """A stream that starts well, then sends an error event instead of finishing.

    The stream of ``Reply(text)`` is cut after ``after_events`` events (the first,
    role-only chunk counts) and an error event with ``error`` (None: the provider's
    generic server error: the fake's ``mid_stream_error_event``) follows; the body then
    ends without a finish reason or final event. A non-streaming request gets HTTP
    ``status`` with ``error``'s message, type and code in the provider's error body.
    """

    after_events: int = 1
    error: Mapping[str, Any] | None = None
    text: str = "This answer is interrupted by an error"
    status: int = 500


@attrs.frozen
class Reset:
    """Close the connection without answering (the client sees a reset / disconnect)."""


@attrs.frozen
class Blocked:
    """The provider refuses the *prompt* on safety grounds, in its own way.

    Gemini answers HTTP 200 with ``promptFeedback.blockReason`` and no candidates,
    Azure OpenAI HTTP 400 with code ``content_filter``, OpenAI HTTP 400 with code
    ``content_policy_violation``, Anthropic a message with ``stop_reason:
    "refusal"``. ``reason`` is the provider's block reason where it has one (Gemini's
    ``SAFETY``, ``PROHIBITED_CONTENT``, ...), ``message`` the error text where the
    provider sends one (None: its usual text).
    """

    reason: str = "SAFETY"
    message: str | None = None


@attrs.frozen
class Stall:
    """Wait ``seconds`` before sending the response headers, then answer ``then``.

    ``then`` is any reply (None: the default echo). Use it to test timeouts; a client
    that gives up meanwhile shows up in the server's ``disconnects``.
    """

    seconds: float
    then: Reply | ErrorReply | RawReply | MidStreamError | Reset | Blocked | None = None


ReplyItem = Reply | ErrorReply | RawReply | MidStreamError | Stall | Reset | Blocked
"""Anything :meth:`FakeServer.enqueue` accepts."""

ErrorKind = Literal[
    "authentication",
    "permission",
    "model_not_found",
    "bad_request",
    "context_length",
    "rate_limit",
    "server",
    "bad_gateway",
    "unavailable",
    "overloaded",
    "timeout",
]
"""The failures :meth:`FakeServer.error_for` renders in each provider's exact format:
rejected credentials, no access, unknown model, invalid request, prompt too long for
the context window, rate limited, internal error, bad gateway, unavailable,
overloaded (Anthropic's 529) and gateway timeout."""


TOOL_REPLY = Reply(
    "Checking.",
    tool_calls=[("call_1", "get_weather", '{"city": "Oslo"}')],
    usage=(30, 10),
    cached_tokens=5,
    cache_write_tokens=3,
    reasoning_tokens=2,
    chunk_size=4,
)
"""A reply with text, a tool call and every usage detail, streamed in small chunks: what a
fake server's own tests render to check its wire format end to end."""


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """``(event name, data)`` of each event of a raw Server-Sent Events body, for tests
    that assert on what a fake server wrote (parsed by llmx's own SSE parser)."""
    from llmx._sse import SSEParser

    parser = SSEParser()
    return [(event.event, event.data) for event in parser.feed(body)]

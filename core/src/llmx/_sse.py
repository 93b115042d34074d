"""Incremental Server-Sent Events (SSE) parser shared by every provider.

The parser follows the WHATWG HTML specification, section "Interpreting an
event stream":

* lines end with ``\\r\\n``, ``\\n`` or ``\\r``; a chunk boundary may fall
  anywhere, including between ``\\r`` and ``\\n`` or inside a multi-byte UTF-8
  character (input is split on bytes and only complete lines are decoded, with
  ``errors="replace"``);
* one leading UTF-8 byte order mark is stripped from the start of the stream;
* ``data`` lines accumulate (joined with ``"\\n"``), ``event`` sets the event
  type (default ``"message"``), ``id`` sets the last event ID (ignored if it
  contains NUL; it persists to later events), ``retry`` sets the reconnection
  time (ASCII digits only, otherwise ignored); other field names are ignored;
* lines starting with ``:`` are comments (ignored, but counted);
* a blank line dispatches the event if at least one ``data`` line was seen;
* at end of stream an unterminated event is discarded.

The parser does not interpret payloads: OpenAI's ``data: [DONE]`` sentinel is
delivered as an ordinary event whose data is ``"[DONE]"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator

import attrs

__all__ = ["SSEEvent", "SSEParser", "aiter_sse"]

_BOM = b"\xef\xbb\xbf"
_LF = 0x0A
_CR = 0x0D
_NO_EVENTS: Iterator[SSEEvent] = iter(())


@attrs.frozen
class SSEEvent:
    """One dispatched server-sent event.

    Attributes:
        event: The event type; ``"message"`` unless an ``event`` field set it.
        data: The data lines of the event, joined with ``"\\n"``.
        id: The last event ID in effect when the event was dispatched (it
            persists across events), or ``None`` if the stream never set one.
            An ``id`` field with an empty value resets it to ``""``.
        retry: The reconnection time in milliseconds if a valid ``retry``
            field appeared within this event's block, else ``None``. The
            stream-wide value is available as `SSEParser.retry`.
    """

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental SSE parser: bytes in, `SSEEvent` objects out.

    Feed raw body chunks with `feed`, which returns the events completed by
    each chunk, then call `close` at end of stream. Check `pending` after the
    stream ends to detect truncation (an unterminated final event is
    discarded, as the specification requires).
    """

    __slots__ = (
        "_buf",
        "_clean",
        "_closed",
        "_comments",
        "_data",
        "_dirty",
        "_event",
        "_last_id",
        "_retry",
        "_retry_block",
        "_skip_lf",
        "_started",
    )

    def __init__(self) -> None:
        """Create a parser positioned at the start of a stream."""
        # Bytes of the current, not yet terminated, line.
        self._buf = bytearray()
        # The previous chunk ended with "\r": drop a "\n" starting the next one.
        self._skip_lf = False
        # Whether the leading-BOM check has been done.
        self._started = False
        self._closed = False
        # Nothing buffered or half-parsed: a read of whole events may take data()'s
        # fast path (kept by data(); feed(), events() and close() clear it).
        self._clean = False
        self._comments = 0
        # Per-event state.
        self._data: list[str] = []
        self._event = ""
        self._retry_block: int | None = None
        # A field line was seen since the last blank line.
        self._dirty = False
        # Stream-wide state.
        self._last_id: str | None = None
        self._retry: int | None = None

    @property
    def pending(self) -> bool:
        """Whether the stream so far ends mid-line or mid-event.

        True if bytes of an unterminated line are buffered, or if a field line
        has been seen since the last blank line. After the body ends, a true
        value means the stream was truncated.
        """
        return bool(self._buf) or self._dirty

    @property
    def buffered(self) -> int:
        """Bytes (of an unterminated line) and characters (of the current event's data
        lines) held so far: what a stream that never ends its line or event grows."""
        data = self._data
        return len(self._buf) + (sum(map(len, data)) if data else 0)

    @property
    def comments(self) -> int:
        """The number of comment lines (keep-alives) seen so far."""
        return self._comments

    @property
    def last_event_id(self) -> str | None:
        """The last event ID set by the stream, or ``None`` if never set."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The latest valid reconnection time (milliseconds), or ``None``."""
        return self._retry

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Parse the next chunk of the body and return the events it completes.

        Args:
            data: Raw bytes of the stream; any size, split anywhere.

        Returns:
            The events dispatched by blank lines within this chunk, in order.

        Raises:
            RuntimeError: If called after `close`.
        """
        self._clean = False
        block = self._complete_lines(data)
        return [] if block is None else list(self._iter(block))

    def events(self, data: bytes) -> Iterator[SSEEvent]:
        """Like :meth:`feed`, but each event is made only when the caller asks for it,
        so the first event of a large read reaches the caller without waiting for
        the rest to be parsed (a provider's time to first chunk). Consume it fully
        before the next call: lines after the last event taken are dropped if the
        iterator is left early (as a provider does once its stream has ended).

        Raises:
            RuntimeError: If called after `close`.
        """
        self._clean = False
        block = self._complete_lines(data)
        return _NO_EVENTS if block is None else self._iter(block)

    def data(self, data: bytes) -> list[str]:
        """Like :meth:`feed`, but only each event's data (the event type, id and retry
        fields are still parsed, and kept, but not returned): for protocols whose
        events say what they are in their data, as OpenAI's, Anthropic's and Google's
        JSON events do. Faster than :meth:`feed`: no event objects, and a read that
        holds whole events made of one ``data:`` line each (optionally named by an
        ``event:`` line) takes a fast path.

        Raises:
            RuntimeError: If called after `close`.
        """
        if not (self._started or self._buf or self._closed) and data and data[:1] != b"\xef":
            # The first read, without a byte order mark: a clean start, so it may take the
            # fast path too (bench: stream time to first chunk, whose first read often
            # holds several events).
            self._started = self._clean = True
        if self._clean and data.endswith(b"\n\n"):
            text = data.decode("utf-8", "replace")
            if "\r" not in text:
                if text.startswith("data: ") and text.find("\n") == len(text) - 2:
                    return [text[6:-2]]  # one event of one line: the common read
                parts = text.split("\n\n")
                parts.pop()
                out = [_named_data(part) for part in parts]
                if "\n" not in out:  # "\n" marks a part the fast path does not read
                    return out
        self._clean = False
        block = self._complete_lines(data)
        out = [] if block is None else [event.data for event in self._iter(block)]
        self._clean = self._started and not (self._buf or self._dirty or self._skip_lf)
        return out

    def _complete_lines(self, data: bytes) -> bytes | None:
        """Buffer ``data``; the run of complete lines it finishes (None: none yet)."""
        if self._closed:
            msg = "SSEParser.feed() called after close()"
            raise RuntimeError(msg)
        if not data:
            return None
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == _LF:
                data = data[1:]
                if not data:
                    return None
        buf = self._buf
        if not self._started:
            buf += data
            if len(buf) < 3 and _BOM.startswith(buf):
                return None  # Could still be a BOM: wait for more bytes.
            self._started = True
            if buf.startswith(_BOM):
                del buf[:3]
            data = bytes(buf)
            buf.clear()
            if not data:
                return None
        # The buffer never holds a line terminator, so only search the new bytes.
        end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if not end:
            buf += data
            return None
        size = len(data)
        if end == size:
            if data[-1] == _CR:
                self._skip_lf = True
            if buf:
                buf += data
                block = bytes(buf)
                buf.clear()
            else:
                block = data
        elif buf:
            cut = len(buf) + end
            buf += data
            block = bytes(buf[:cut])
            del buf[:cut]
        else:
            block = data[:end]
            buf += data[end:]
        return block

    def close(self) -> list[SSEEvent]:
        """Signal end of stream and return any final events.

        Per the specification, an event not terminated by a blank line is
        discarded, so this always returns an empty list; use `pending` to find
        out whether such data was left. Further calls to `feed` raise.
        """
        self._closed = True
        self._clean = False
        return []

    def _iter(self, block: bytes) -> Iterator[SSEEvent]:
        """Interpret ``block``, a run of complete lines ending in a terminator, yielding
        each event as its blank line is reached (state is kept in locals and saved
        when the block is done, or when the iterator is left early)."""
        text = block.decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines.pop()  # The block ends with a terminator: the last item is "".

        data = self._data
        event = self._event
        last_id = self._last_id
        retry = self._retry
        retry_block = self._retry_block
        dirty = self._dirty
        comments = self._comments
        try:
            for line in lines:
                if not line:
                    dispatched = (
                        SSEEvent(event or "message", "\n".join(data), last_id, retry_block)
                        if data
                        else None
                    )
                    # Reset before yielding: if the caller leaves at this event, the
                    # state saved below is already past it.
                    data = []
                    event = ""
                    retry_block = None
                    dirty = False
                    if dispatched is not None:
                        yield dispatched
                    continue
                if line.startswith("data:"):  # Fast path for the most common line.
                    dirty = True
                    data.append(line[6:] if line.startswith(" ", 5) else line[5:])
                    continue
                colon = line.find(":")
                if colon == 0:
                    comments += 1
                    continue
                dirty = True
                if colon < 0:
                    name = line
                    value = ""
                else:
                    name = line[:colon]
                    value = line[colon + 1 :]
                    if value[:1] == " ":
                        value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event = value
                elif name == "id":
                    if "\0" not in value:
                        last_id = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    retry = retry_block = int(value)
        finally:
            self._data = data
            self._event = event
            self._last_id = last_id
            self._retry = retry
            self._retry_block = retry_block
            self._dirty = dirty
            self._comments = comments


def _named_data(part: str) -> str:
    """The data of ``event: NAME\ndata: VALUE``, or ``"\n"`` for anything else."""
    if part.startswith("data: ") and "\n" not in part:
        return part[6:]
    if part.startswith("event:"):
        cut = part.find("\ndata: ")
        if cut > 0 and "\n" not in part[cut + 1 :]:
            return part[cut + 7 :]
    return "\n"


async def aiter_sse(
    byte_chunks: AsyncIterable[bytes], parser: SSEParser | None = None
) -> AsyncIterator[SSEEvent]:
    """Yield the events parsed from an async iterable of body chunks.

    Suitable for e.g. aiohttp's ``response.content.iter_any()``. At the end of
    the input the parser is closed and iteration simply stops; nothing is
    raised for a truncated stream. Pass your own ``parser`` to inspect
    `SSEParser.pending` (or `SSEParser.comments`) afterwards.

    Args:
        byte_chunks: The raw body, in chunks split anywhere.
        parser: The parser to feed; a fresh one if ``None``.

    Yields:
        Each event as soon as the chunk completing it has been received.
    """
    if parser is None:
        parser = SSEParser()
    async for chunk in byte_chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event

"""A fast local fake LLM server for the benchmarks (stdlib only; uses uvloop if present).

It speaks just enough HTTP/1.1 (keep-alive, ``Content-Length`` or chunked request
bodies) over a bare :class:`asyncio.Protocol`, and answers from bodies computed once at
start-up, so one core serves far more requests per second than any client under test
can send. Routes are matched on the path's suffix, so any ``base_url`` prefix works:

====================================  ==========================================
``POST …/chat/completions``           OpenAI Chat Completions (JSON, or SSE when
                                      the body has ``"stream": true``)
``POST …/messages``                   Anthropic Messages (JSON or SSE)
``POST …:generateContent``            Gemini (JSON)
``POST …:streamGenerateContent``      Gemini stream (SSE with ``?alt=sse``, else a
                                      JSON array)
``GET …/models``                      OpenAI model list
``GET /__stats``                      ``{"requests": n, "by_route": {...}, ...}``
``POST /__reset``                     zero the counters (answers the old stats)
``POST /__config?chunks=N&gap_us=G``  chunks per stream; pause between chunks
====================================  ==========================================

Streams are written as fast as possible by default: the response head, the first
event and the first text chunk in one write, everything else in the next loop
iteration, so *time to first chunk* is the time to the first token and *time to last
chunk* measures the client's per-chunk cost. ``gap_us > 0`` instead writes each chunk
separately with that pause (a paced, more lifelike stream).

Run it standalone with ``python -m bench server --port 8000`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import sys
from collections.abc import Callable
from typing import Any

from bench.wire import DEFAULT_CHUNKS, MODEL, REPLY_TEXT, USAGE, chunk_texts

_CREATED = 1_700_000_000
_MAX_HEAD = 64 * 1024


# -- bodies ------------------------------------------------------------------------------


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_LAST_CHUNK = b"0\r\n\r\n"


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, bytes) else _json(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


def _openai_json() -> bytes:
    prompt, completion = USAGE
    return _response(
        "200 OK",
        b"application/json",
        _json(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": _CREATED,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": REPLY_TEXT, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
                "system_fingerprint": "fp_bench",
            }
        ),
    )


def _openai_events(chunks: int, usage: bool) -> list[bytes]:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": text}) for text in chunk_texts(chunks)]
    events.append(chunk({}, "stop"))
    if usage:
        prompt, completion = USAGE
        events.append(
            _sse(
                {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                    },
                }
            )
        )
    events.append(_sse(b"[DONE]"))
    return events


def _anthropic_json() -> bytes:
    prompt, completion = USAGE
    return _response(
        "200 OK",
        b"application/json",
        _json(
            {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [{"type": "text", "text": REPLY_TEXT}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": completion},
            }
        ),
    )


def _anthropic_events(chunks: int) -> list[bytes]:
    prompt, completion = USAGE
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": 1},
        },
    }
    events = [
        _sse(start, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
    ]
    events += [
        _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
            "content_block_delta",
        )
        for t in chunk_texts(chunks)
    ]
    events += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": completion},
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return events


def _gemini_chunk(text: str, last: bool) -> dict[str, Any]:
    prompt, completion = USAGE
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "index": 0,
    }
    if last:
        candidate["finishReason"] = "STOP"
    obj: dict[str, Any] = {"candidates": [candidate], "modelVersion": MODEL}
    if last:
        obj["usageMetadata"] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion,
        }
    return obj


def _gemini_json() -> bytes:
    return _response("200 OK", b"application/json", _json(_gemini_chunk(REPLY_TEXT, True)))


def _gemini_objects(chunks: int) -> list[dict[str, Any]]:
    texts = chunk_texts(chunks)
    return [_gemini_chunk(t, i == len(texts) - 1) for i, t in enumerate(texts)]


def _gemini_events(chunks: int) -> list[bytes]:
    # Google's servers separate events with CRLF CRLF.
    return [b"data: " + _json(o) + b"\r\n\r\n" for o in _gemini_objects(chunks)]


def _gemini_array(chunks: int) -> bytes:
    return _response("200 OK", b"application/json", _json(_gemini_objects(chunks)))


def _models_json() -> bytes:
    return _response(
        "200 OK",
        b"application/json",
        _json({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}),
    )


def _not_found(path: str) -> bytes:
    body = {"error": {"message": f"no route for {path}", "type": "invalid_request_error"}}
    return _response("404 Not Found", b"application/json", _json(body))


class Bodies:
    """Every answer, computed once per chunk count."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.openai = _openai_json()
        self.anthropic = _anthropic_json()
        self.gemini = _gemini_json()
        self.gemini_array = _gemini_array(chunks)
        self.models = _models_json()
        # A stream as the pieces to write: the first text chunk is the end of piece 0.
        self.openai_stream = _pieces(_openai_events(chunks, usage=False), first=2)
        self.openai_stream_usage = _pieces(_openai_events(chunks, usage=True), first=2)
        self.anthropic_stream = _pieces(_anthropic_events(chunks), first=3)
        self.gemini_stream = _pieces(_gemini_events(chunks), first=1)


def _pieces(events: list[bytes], *, first: int) -> list[bytes]:
    """Head plus the first ``first`` events, then one piece per later event."""
    out = [_SSE_HEAD + b"".join(_http_chunk(e) for e in events[:first])]
    out += [_http_chunk(e) for e in events[first:]]
    out[-1] += _LAST_CHUNK
    return out


# -- server ------------------------------------------------------------------------------


class State:
    """Counters and settings shared by every connection."""

    def __init__(self, chunks: int, gap_us: int) -> None:
        self.bodies = Bodies(chunks)
        self.gap = gap_us / 1e6
        self.requests = 0
        self.by_route: dict[str, int] = {}
        self.connections = 0
        self.connections_total = 0

    def count(self, route: str) -> None:
        self.requests += 1
        self.by_route[route] = self.by_route.get(route, 0) + 1

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_route": dict(self.by_route),
            "connections": self.connections,
            "connections_total": self.connections_total,
            "chunks": self.bodies.chunks,
            "gap_us": round(self.gap * 1e6),
            "pid": os.getpid(),
        }

    def reset(self) -> dict[str, Any]:
        old = self.stats()
        self.requests = 0
        self.by_route = {}
        self.connections_total = self.connections
        return old


def _stream_flag(body: bytes) -> bool:
    return b'"stream":true' in body or b'"stream": true' in body


class HttpProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection."""

    __slots__ = ("_buf", "_busy", "_loop", "_state", "_transport")

    def __init__(self, state: State) -> None:
        self._state = state
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False
        self._loop = asyncio.get_event_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._state.connections += 1
        self._state.connections_total += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections -= 1
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._process()

    # -- parsing ---------------------------------------------------------------------------

    def _process(self) -> None:
        buf = self._buf
        while buf and not self._busy and self._transport is not None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    self._transport.close()
                return
            head = bytes(buf[:end])
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            fields = head[line_end:].lower() if line_end >= 0 else b""
            try:
                method, target, version = request_line.split(b" ", 2)
            except ValueError:
                self._transport.close()
                return
            body_start = end + 4
            if b"\r\ntransfer-encoding:" in fields and b"chunked" in fields:
                decoded = _dechunk(buf, body_start)
                if decoded is None:
                    return  # wait for the rest of the body
                body, consumed = decoded
            else:
                length = 0
                i = fields.find(b"\r\ncontent-length:")
                if i >= 0:
                    j = fields.find(b"\r\n", i + 17)
                    length = int(fields[i + 17 : j if j >= 0 else None])
                consumed = body_start + length
                if len(buf) < consumed:
                    return
                body = bytes(buf[body_start:consumed])
            del buf[:consumed]
            close = (
                b"\r\nconnection: close" in fields
                if version == b"HTTP/1.1"
                else b"\r\nconnection: keep-alive" not in fields
            )
            self._handle(method, target.decode("latin-1"), body, close)

    # -- routing ---------------------------------------------------------------------------

    def _handle(self, method: bytes, target: str, body: bytes, close: bool) -> None:
        transport = self._transport
        assert transport is not None
        state = self._state
        bodies = state.bodies
        path, _, query = target.partition("?")
        if method == b"POST":
            if path.endswith("/chat/completions"):
                if _stream_flag(body):
                    state.count("openai-stream")
                    usage = b"include_usage" in body
                    pieces = bodies.openai_stream_usage if usage else bodies.openai_stream
                    self._write_stream(pieces, close)
                    return
                state.count("openai")
                self._write(bodies.openai, close)
                return
            if path.endswith("/messages"):
                if _stream_flag(body):
                    state.count("anthropic-stream")
                    self._write_stream(bodies.anthropic_stream, close)
                    return
                state.count("anthropic")
                self._write(bodies.anthropic, close)
                return
            if path.endswith(":generateContent"):
                state.count("gemini")
                self._write(bodies.gemini, close)
                return
            if path.endswith(":streamGenerateContent"):
                state.count("gemini-stream")
                if "alt=sse" in query:
                    self._write_stream(bodies.gemini_stream, close)
                else:
                    self._write(bodies.gemini_array, close)
                return
            if path == "/__reset":
                self._write(_response("200 OK", b"application/json", _json(state.reset())), close)
                return
            if path == "/__config":
                self._configure(query)
                self._write(_response("200 OK", b"application/json", _json(state.stats())), close)
                return
        elif method == b"GET":
            if path == "/__stats":
                self._write(_response("200 OK", b"application/json", _json(state.stats())), close)
                return
            if path.endswith("/models"):
                state.count("models")
                self._write(bodies.models, close)
                return
        self._write(_not_found(path), close)

    def _configure(self, query: str) -> None:
        state = self._state
        for item in query.split("&"):
            key, _, value = item.partition("=")
            if key == "chunks" and value.isdigit():
                state.bodies = Bodies(int(value))
            elif key == "gap_us" and value.isdigit():
                state.gap = int(value) / 1e6

    # -- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes, close: bool) -> None:
        transport = self._transport
        assert transport is not None
        transport.write(data)
        if close:
            transport.close()

    def _write_stream(self, pieces: list[bytes], close: bool) -> None:
        """Write a stream's pieces: the first now, the rest later (see the module doc)."""
        transport = self._transport
        assert transport is not None
        transport.write(pieces[0])
        self._busy = True
        gap = self._state.gap
        if gap > 0:
            self._paced(pieces, 1, gap, close)
        else:
            self._loop.call_soon(self._finish_stream, b"".join(pieces[1:]), close)

    def _finish_stream(self, rest: bytes, close: bool) -> None:
        transport = self._transport
        self._busy = False
        if transport is None:
            return
        transport.write(rest)
        if close:
            transport.close()
        elif self._buf:
            self._process()

    def _paced(self, pieces: list[bytes], index: int, gap: float, close: bool) -> None:
        transport = self._transport
        if transport is None:
            self._busy = False
            return
        if index == len(pieces) - 1:
            self._finish_stream(pieces[index], close)
            return
        transport.write(pieces[index])
        self._loop.call_later(gap, self._paced, pieces, index + 1, gap, close)


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """A chunked request body from ``buf[start:]``: (body, bytes consumed) or None if partial."""
    out = bytearray()
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return bytes(out), trailer_end + 4
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(
    host: str,
    port: int,
    *,
    chunks: int = DEFAULT_CHUNKS,
    gap_us: int = 0,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until cancelled; ``on_ready(port)`` is called once listening."""
    _raise_fd_limit()
    state = State(chunks, gap_us)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(state), host, port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    if on_ready is not None:
        on_ready(bound)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """``python -m bench server``: run the fake server in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m bench server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="text chunks per stream")
    parser.add_argument("--gap-us", type=int, default=0, help="pause between stream chunks")
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    args = parser.parse_args(argv)

    def ready(port: int) -> None:
        # The bench runner reads this first line to learn the port.
        print(f"{port}", flush=True)
        print(f"bench server on http://{args.host}:{port} (pid {os.getpid()})", file=sys.stderr)

    runner: Callable[..., Any] = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop  # type: ignore[import-not-found, unused-ignore]

            runner = uvloop.run
        except ImportError:
            pass
    try:
        runner(serve(args.host, args.port, chunks=args.chunks, gap_us=args.gap_us, on_ready=ready))
    except KeyboardInterrupt:
        pass

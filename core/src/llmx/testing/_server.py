"""The machinery every fake provider server shares: lifecycle, recording, reply queue,
rendering of the kit's reply types, fault injection, and byte-exact writing of bodies
(split into separate TCP reads, or cut off).

A concrete fake (``llmx_openai.testing.FakeOpenAIServer``,
``llmx_anthropic.testing.FakeAnthropicServer``, ``llmx_gemini.testing.FakeGeminiServer``,
or a third party's) subclasses :class:`FakeServer`, implements :meth:`FakeServer.route` (and
usually :meth:`FakeServer.check_auth` and :meth:`FakeServer.not_found`), and for its
model endpoint calls ``reply = self.next_reply() or self.default_reply(recorded)`` and
``await self.answer(request, recorded, reply)``. :meth:`FakeServer.answer` handles the
reply types every provider shares (:class:`Stall`, :class:`Reset`, :class:`RawReply`)
and hands the others to the hooks the subclass implements in its provider's format:
:meth:`render_reply`, :meth:`render_error`, :meth:`render_mid_stream_error` and
:meth:`render_blocked`. Writing through :meth:`write_body` gives the subclass split
reads, dropped connections and every chaos fault (:mod:`llmx.testing._chaos`) for free.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import random
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from llmx.testing._chaos import Fault, Faults, Injection
from llmx.testing._replies import (
    Blocked,
    ErrorKind,
    ErrorReply,
    MidStreamError,
    RawReply,
    Reply,
    ReplyItem,
    Reset,
    Stall,
)

if TYPE_CHECKING:
    from types import TracebackType

    from aiohttp import web

    from llmx.testing._view import RequestView

__all__ = ["ERROR_STATUS", "FakeServer", "Handler", "RecordedRequest"]

S = TypeVar("S", bound="FakeServer")

SPLIT_PAUSE = 0.002
"""Seconds between the pieces of a ``split_at`` body, so each is a separate TCP read."""

DRIP_SIZE = 16
"""Bytes per piece of a ``slow`` (dripping) body."""

ERROR_STATUS: dict[str, int] = {
    "authentication": 401,
    "permission": 403,
    "model_not_found": 404,
    "bad_request": 400,
    "context_length": 400,
    "rate_limit": 429,
    "server": 500,
    "bad_gateway": 502,
    "unavailable": 503,
    "overloaded": 529,
    "timeout": 504,
}
"""The usual HTTP status of each :data:`~llmx.testing.ErrorKind` (providers may differ)."""

_FAULT: contextvars.ContextVar[Fault | None] = contextvars.ContextVar("llmx_fake_fault")
_CURRENT: contextvars.ContextVar[RecordedRequest | None] = contextvars.ContextVar(
    "llmx_fake_request"
)


@attrs.frozen
class RecordedRequest:
    """One request a fake server received, as it arrived.

    ``headers`` has lower-cased names; ``json`` is the parsed body (None if the body is
    empty or not JSON); ``body`` the raw bytes.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = attrs.field(repr=False)
    json: Any = attrs.field(repr=False)


Handler = Callable[["web.BaseRequest", RecordedRequest], Awaitable["web.StreamResponse"]]
"""A route handler: the aiohttp request and its record in, a response out."""


def _cut(data: bytes, offsets: Sequence[int]) -> list[bytes]:
    bounds = [0, *(o for o in offsets if 0 < o < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _truncate(pieces: Sequence[bytes], limit: int) -> list[bytes]:
    out: list[bytes] = []
    left = max(0, limit)
    for piece in pieces:
        if left <= 0:
            break
        out.append(piece[:left])
        left -= len(piece)
    return out


class FakeServer:
    """Base class of the local fake provider servers (see the module docstring).

    Binds ``host`` (127.0.0.1) on a free port. Use it in the test's own event loop::

        async with FakeOpenAIServer() as server:
            ...

    or in a background thread with its own loop (for sync tests and subprocesses)::

        with FakeOpenAIServer().in_thread() as server:
            ...

    ``api_key`` is the key the server requires (None: no check). Every request is
    appended to :attr:`requests` (those asking for a model answer also to
    :attr:`model_requests`); each model request pops the next reply given to
    :meth:`enqueue`, or gets the server's default answer (the text of the last user
    message) when the queue is empty.

    Fault injection (see :mod:`llmx.testing._chaos`): :meth:`chaos` for random faults,
    :meth:`schedule` for faults on the next requests, :meth:`set_down` to reset every
    connection; :attr:`injected` counts what was injected by kind and
    :attr:`injections` lists it.
    """

    def __init__(
        self, *, api_key: str | None = "test-key", host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.api_key = api_key
        """The API key the server requires, or None to accept any request."""
        self.host = host
        self.requests: list[RecordedRequest] = []
        """Every request received, in order."""
        self.model_requests: list[RecordedRequest] = []
        """The requests that asked for a model answer (took a reply), in order."""
        self.injected: Counter[str] = Counter()
        """How many faults were injected, by kind (``"error"``, ``"reset"``, ``"down"``...)."""
        self.injections: list[Injection] = []
        """Every fault injected into a model request, in order."""
        self._port = port
        self._queue: deque[ReplyItem] = deque()
        self._runner: web.BaseRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._disconnects = 0
        self._sleepers: set[asyncio.Task[Any]] = set()
        self._counter = 0
        self._lock = threading.Lock()
        self._schedule: deque[Fault | None] = deque()
        self._faults: Faults | None = None
        self._rng = random.Random(0)
        self._down = False

    # -- addresses and state -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._runner is None:
            msg = f"{type(self).__name__} is not started; use 'async with' or in_thread()"
            raise RuntimeError(msg)
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the server's root URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL a client is configured with (subclasses add their API prefix)."""
        return self.url

    @property
    def request_count(self) -> int:
        """How many requests arrived so far."""
        return len(self.requests)

    @property
    def disconnects(self) -> int:
        """How many responses could not be finished because the client went away."""
        return self._disconnects

    @property
    def pending(self) -> int:
        """How many enqueued replies are still waiting for a request."""
        return len(self._queue)

    def enqueue(self, *replies: ReplyItem) -> None:
        """Queue replies; each model request pops the next one (thread-safe)."""
        self._queue.extend(replies)

    def clear(self) -> None:
        """Forget the recorded requests, the queued replies and the fault counters."""
        self._queue.clear()
        self.requests.clear()
        self.model_requests.clear()
        self.injected.clear()
        self.injections.clear()

    def next_reply(self) -> ReplyItem | None:
        """Pop the next queued reply (None when the queue is empty), applying faults.

        Call it once per model request: it records the request in
        :attr:`model_requests` and applies the next scheduled or random fault. A fault
        replacing the answer (an HTTP error, a reset, a stall before the headers) is
        returned as the reply and leaves the queue untouched; a fault on the body
        (drop, truncate, malformed, slow, stall mid-stream) applies when the answer is
        written with :meth:`write_body`.
        """
        current = _CURRENT.get(None)
        with self._lock:
            if current is not None:
                self.model_requests.append(current)
            number = len(self.model_requests)
            fault = self._next_fault()
            if fault is not None:
                self.injected[fault.kind] += 1
                self.injections.append(Injection(number, fault))
        if fault is not None:
            if fault.kind == "error":
                assert fault.status is not None
                headers = {}
                if fault.retry_after is not None:
                    headers["retry-after"] = f"{fault.retry_after:g}"
                return self.error_for_status(fault.status, headers=headers)
            if fault.kind == "reset":
                return Reset()
            if fault.kind == "stall":
                then = self._pop()
                if isinstance(then, Stall):
                    then = then.then
                return Stall(fault.seconds, then)
            _FAULT.set(fault)
        return self._pop()

    def _pop(self) -> ReplyItem | None:
        try:
            return self._queue.popleft()
        except IndexError:
            return None

    def next_id(self) -> int:
        """A counter for deterministic response ids (1, 2, 3, ...)."""
        with self._lock:
            self._counter += 1
            return self._counter

    async def wait_for_disconnects(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Wait until at least ``count`` responses were cut short by the client.

        Raises ``TimeoutError`` after ``timeout`` seconds. Works whether the server runs
        in this loop or in its own thread.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while self._disconnects < count:
            if asyncio.get_running_loop().time() > deadline:
                msg = f"the server saw {self._disconnects} client disconnect(s), expected {count}"
                raise TimeoutError(msg)
            await asyncio.sleep(0.005)

    # -- fault injection -----------------------------------------------------------------

    def chaos(self, faults: Faults | None) -> None:
        """Inject random ``faults`` into every model request from now on (None: stop).

        The random sequence restarts from ``faults.seed``, so a test sees the same
        faults on every run.
        """
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed if faults is not None else 0)

    def schedule(self, faults: Iterable[Fault | None]) -> None:
        """Inject these faults into the next model requests, one each, in order.

        ``None`` lets a request through without a (scheduled) fault. Scheduled faults
        come before random ones; a request whose schedule entry is ``None`` draws no
        random fault either.
        """
        with self._lock:
            self._schedule.extend(faults)

    def set_down(self, down: bool = True) -> None:
        """Take the server down (every request's connection is reset) or bring it back.

        While down, each request, model request or not, has its connection closed
        without an answer and is counted in ``injected["down"]`` (not in
        :attr:`requests`). Thread-safe; takes effect for the next request.
        """
        self._down = down

    @property
    def down(self) -> bool:
        """Whether :meth:`set_down` took the server down."""
        return self._down

    def _next_fault(self) -> Fault | None:
        if self._schedule:
            return self._schedule.popleft()
        if self._faults is not None:
            return self._faults.draw(self._rng)
        return None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self: S) -> S:
        """Bind and start serving in the running loop; returns self."""
        from aiohttp import web

        if self._runner is not None:
            msg = f"{type(self).__name__} is already started"
            raise RuntimeError(msg)
        server = web.Server(self._dispatch, access_log=None, handler_cancellation=False)
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._loop = asyncio.get_running_loop()
        self._port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop serving: interrupt pending waits, close every connection."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in list(self._sleepers):
            task.cancel()
        await runner.cleanup()

    async def __aenter__(self: S) -> S:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self: S) -> Iterator[S]:
        """Run the server in a background thread with its own event loop.

        A sync context manager yielding the started server; usable from sync tests,
        from async tests (the server does not share their loop), and for subprocesses
        that need a real URL.
        """
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                try:
                    loop.run_until_complete(self.start())
                except BaseException as err:
                    failure.append(err)
                    return
                finally:
                    started.set()
                loop.run_forever()
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        thread = threading.Thread(target=run, name=f"{type(self).__name__}-loop", daemon=True)
        thread.start()
        started.wait()
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield self
        finally:
            try:
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()

    # -- request handling ----------------------------------------------------------------

    def route(self, method: str, path: str) -> Handler | None:
        """The handler for ``method`` and ``path``, or None for unknown URLs."""
        return None

    async def check_auth(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """A response refusing the request's credentials, or None to let it through."""
        return None

    async def not_found(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        """The answer to an unknown URL."""
        from aiohttp import web

        return web.Response(status=404, text=f"no route for {request.method} {request.path}")

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        # A keep-alive connection serves its requests in one task: start clean.
        _FAULT.set(None)
        _CURRENT.set(None)
        if self._down:
            with self._lock:
                self.injected["down"] += 1
            return self._abort(request)
        body = await request.read()
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            json=parsed,
        )
        self.requests.append(recorded)
        _CURRENT.set(recorded)
        denied = await self.check_auth(request, recorded)
        if denied is not None:
            return denied
        handler = self.route(request.method, request.path)
        if handler is None:
            return await self.not_found(request, recorded)
        return await handler(request, recorded)

    @staticmethod
    def _abort(request: web.BaseRequest) -> web.StreamResponse:
        from aiohttp import web

        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=503)  # never reaches the client

    # -- answering: the kit's reply types ------------------------------------------------

    def default_reply(self, recorded: RecordedRequest) -> ReplyItem:
        """The answer when nothing is queued: the text of the last user message."""
        return Reply(self.describe(recorded).last_user_text())

    def describe(self, recorded: RecordedRequest) -> RequestView:
        """What ``recorded`` asked for, in a provider-neutral form (subclasses implement)."""
        msg = f"{type(self).__name__} does not implement describe()"
        raise NotImplementedError(msg)

    def is_stream(self, recorded: RecordedRequest) -> bool:
        """Whether ``recorded`` asks for a streamed answer (default: ``"stream": true``)."""
        body = recorded.json
        return isinstance(body, dict) and body.get("stream") is True

    async def answer(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: ReplyItem
    ) -> web.StreamResponse:
        """Answer a model request with ``reply``, in the provider's format.

        Handles :class:`Stall` (sleep, then answer its ``then`` or the default),
        :class:`Reset` (close the connection) and :class:`RawReply` (exact bytes) here;
        the rest goes to :meth:`render_error`, :meth:`render_mid_stream_error`,
        :meth:`render_blocked` and :meth:`render_reply`.
        """
        if isinstance(reply, Stall):
            await self.sleep(reply.seconds)
            then = reply.then if reply.then is not None else self.default_reply(recorded)
            return await self.answer(request, recorded, then)
        if isinstance(reply, Reset):
            return self._abort(request)
        if isinstance(reply, RawReply):
            await self.sleep(reply.delay)
            return await self.write_body(
                request,
                status=reply.status,
                pieces=[reply.body],
                content_type=reply.content_type,
                headers=self.response_headers(reply.headers),
                stream=reply.content_type.startswith("text/event-stream"),
                split_at=reply.split_at,
                drop_after=reply.drop_after,
            )
        if isinstance(reply, ErrorReply):
            await self.sleep(reply.delay)
            if reply.body is not None:
                return await self._custom_error_body(request, reply)
            return await self.render_error(request, recorded, reply)
        if isinstance(reply, MidStreamError):
            return await self.render_mid_stream_error(request, recorded, reply)
        if isinstance(reply, Blocked):
            return await self.render_blocked(request, recorded, reply)
        await self.sleep(reply.delay)
        return await self.render_reply(request, recorded, reply)

    async def _custom_error_body(
        self, request: web.BaseRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        if isinstance(reply.body, (dict, list)):
            data = json.dumps(reply.body).encode()
            content_type = reply.content_type or "application/json"
        else:
            data = reply.body.encode() if isinstance(reply.body, str) else bytes(reply.body)
            content_type = reply.content_type or "text/html; charset=utf-8"
        return await self.write_body(
            request,
            status=reply.status,
            pieces=[data],
            content_type=content_type,
            headers=self.response_headers(reply.headers),
        )

    def response_headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Headers every response of this provider carries, plus ``extra``."""
        return dict(extra or {})

    async def render_reply(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Reply
    ) -> web.StreamResponse:
        """Answer with ``reply`` as JSON or as a stream (subclasses implement)."""
        msg = f"{type(self).__name__} does not implement render_reply()"
        raise NotImplementedError(msg)

    async def render_error(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        """Answer with the provider's error body for ``reply`` (subclasses override).

        The base sends ``{"error": {"message": ..., "type": ..., "code": ...}}``.
        """
        message = reply.message or f"HTTP {reply.status}"
        body = {"error": {"message": message, "type": reply.type, "code": reply.code}}
        return await self.json_response(
            request, reply.status, body, headers=self.response_headers(reply.headers)
        )

    async def render_mid_stream_error(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: MidStreamError
    ) -> web.StreamResponse:
        """A stream that fails part-way (subclasses implement their error event)."""
        return await self.render_error(request, recorded, ErrorReply(reply.status))

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """The provider's refusal of the prompt (default: HTTP 400 ``content_filter``)."""
        error = ErrorReply(400, message=reply.message or "blocked", code="content_filter")
        return await self.render_error(request, recorded, error)

    def error_for(self, kind: ErrorKind, *, retry_after: float | None = None) -> ErrorReply:
        """The provider's exact answer for a failure of ``kind`` (see :data:`ErrorKind`).

        ``retry_after`` seconds are announced the provider's way (a ``Retry-After``
        header unless the provider has another); subclasses override for their exact
        bodies. The base gives ``ErrorReply(status)`` with the usual status.
        """
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        message = "maximum context length exceeded" if kind == "context_length" else None
        return ErrorReply(ERROR_STATUS[kind], message=message, headers=headers)

    def error_for_status(self, status: int, *, headers: Mapping[str, str]) -> ErrorReply:
        """The error a fault of ``status`` injects (the provider's usual body)."""
        return ErrorReply(status, headers=headers)

    def malformed_reply(self, *, stream: bool) -> RawReply:
        """An answer that is not the provider's documented format (HTTP 200)."""
        if stream:
            return RawReply(200, self.malformed_event(), content_type="text/event-stream")
        return RawReply(200, self.malformed_json())

    def malformed_event(self) -> bytes:
        """A stream event whose payload is not JSON."""
        return b'data: {"incomplete": \n\n'

    def malformed_json(self) -> bytes:
        """A JSON body that does not parse."""
        return b'{"id": "broken", "content": ['

    # -- writing -------------------------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``; interrupted (the handler is cancelled) when the server stops."""
        if seconds <= 0:
            return
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - handlers always run in a task
            await asyncio.sleep(seconds)
            return
        self._sleepers.add(task)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._sleepers.discard(task)

    async def write_body(
        self,
        request: web.BaseRequest,
        *,
        status: int,
        pieces: Sequence[bytes],
        content_type: str,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        split_at: Sequence[int] | None = None,
        drop_after: int | None = None,
        chunk_delay: float = 0.0,
    ) -> web.StreamResponse:
        """Send a response body exactly as scripted.

        ``pieces`` are written one by one (``chunk_delay`` seconds apart); for a stream
        each piece should be one event. A ``stream`` uses chunked transfer encoding;
        otherwise ``Content-Length`` announces the whole body, so a cut-off body is
        detectable. ``split_at`` re-cuts the body at those byte offsets, writing each
        piece separately with a short pause so the client receives separate reads.
        ``drop_after`` aborts the connection after that many body bytes. A body fault
        injected for this request (:meth:`next_reply`) is applied here. A client that
        goes away is counted in :attr:`disconnects`.
        """
        from aiohttp import web

        pieces = list(pieces)
        pause = chunk_delay
        stall_at: int | None = None
        stall = 0.0
        fault = _FAULT.get(None)
        if fault is not None:
            _FAULT.set(None)
            pieces, drop_after, pause, stall_at, stall = self._apply_fault(
                fault, pieces, stream=stream, drop_after=drop_after, pause=pause
            )
            if fault.kind == "slow":
                split_at = None
        resp = web.StreamResponse(status=status, headers=headers)
        resp.headers["Content-Type"] = content_type
        if not stream:
            resp.content_length = sum(len(p) for p in pieces)
        if split_at:
            pieces = _cut(b"".join(pieces), split_at)
            pause = max(pause, SPLIT_PAUSE)
        if drop_after is not None:
            pieces = _truncate(pieces, drop_after)
        try:
            await resp.prepare(request)
            for i, piece in enumerate(pieces):
                if i == stall_at:
                    await self.sleep(stall)
                elif i and pause:
                    await self.sleep(pause)
                if piece:
                    await resp.write(piece)
            if drop_after is not None:
                # Let the bytes leave, then abort: the body stays incomplete.
                await self.sleep(SPLIT_PAUSE)
                transport = request.transport
                if transport is not None:
                    transport.abort()
        except ConnectionError:
            with self._lock:
                self._disconnects += 1
        return resp

    def _apply_fault(
        self,
        fault: Fault,
        pieces: list[bytes],
        *,
        stream: bool,
        drop_after: int | None,
        pause: float,
    ) -> tuple[list[bytes], int | None, float, int | None, float]:
        """The body ``pieces`` (and how to write them) with a body fault applied."""
        total = sum(len(p) for p in pieces)
        stall_at: int | None = None
        stall = 0.0
        if fault.kind == "malformed":
            pieces = [*pieces[:1], self.malformed_event()] if stream else [self.malformed_json()]
        elif fault.kind == "truncate":
            if stream:
                pieces = pieces[: max(1, len(pieces) // 2)]
            else:
                data = b"".join(pieces)
                pieces = [data[: len(data) // 2]]
        elif fault.kind == "drop":
            half = max(1, total // 2)
            drop_after = half if drop_after is None else min(drop_after, half)
        elif fault.kind == "slow":
            data = b"".join(pieces)
            pieces = [data[i : i + DRIP_SIZE] for i in range(0, len(data), DRIP_SIZE)]
            pause = max(pause, fault.seconds)
        elif fault.kind == "stall_mid_stream":
            if len(pieces) < 2:
                data = b"".join(pieces)
                pieces = [data[: len(data) // 2], data[len(data) // 2 :]]
            stall_at = max(1, len(pieces) // 2)
            stall = fault.seconds
        return pieces, drop_after, pause, stall_at, stall

    async def json_response(
        self,
        request: web.BaseRequest,
        status: int,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        split_at: Sequence[int] | None = None,
        drop_after: int | None = None,
    ) -> web.StreamResponse:
        """Send ``payload`` as a JSON body (compact, UTF-8)."""
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return await self.write_body(
            request,
            status=status,
            pieces=[data],
            content_type="application/json",
            headers=headers,
            split_at=split_at,
            drop_after=drop_after,
        )

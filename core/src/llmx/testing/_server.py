"""The machinery every fake provider server shares: lifecycle, recording, reply queue,
authentication, rendering of the kit's reply types in SSE or NDJSON framing, fault
injection, and byte-exact writing of bodies (split into separate TCP reads, or cut off).

A concrete fake (``llmx_openai.testing.FakeOpenAIServer``,
``llmx_anthropic.testing.FakeAnthropicServer``, ``llmx_gemini.testing.FakeGeminiServer``,
or a third party's) subclasses :class:`FakeServer` and declares its wire format:

* **Required** (abstract: a subclass missing one cannot be instantiated, and the
  ``TypeError`` names it): :meth:`FakeServer.route` (which handler answers which URL;
  a model endpoint's handler is usually :meth:`FakeServer.answer_model_request`),
  :meth:`FakeServer.describe` (what a request asked for, as a
  :class:`~llmx.testing.RequestView`) and :meth:`FakeServer.reply_body` (the JSON
  body answering a non-streamed request).
* **Required when the kit needs them** (the base raises ``NotImplementedError``
  naming the method, and the test fails with it, the first time a request needs
  one): :meth:`FakeServer.stream_events` (the events of a streamed answer: any
  request :meth:`FakeServer.is_stream` says streams), :meth:`FakeServer.mid_stream_error_event`
  (the event a stream fails with: :class:`MidStreamError` on a stream) and
  :meth:`FakeServer.render_blocked` (how the API refuses a prompt: :class:`Blocked`).
* **Declared** (class attributes the base acts on): :attr:`FakeServer.framing`
  (``"sse"`` or ``"ndjson"``: how stream events are framed),
  :attr:`FakeServer.auth_header` and :attr:`FakeServer.auth_scheme` (where the key
  travels; the base refuses a missing or wrong key with ``error_for("authentication")``).
* **Applied by the base, overridable** for a vendor's exact behaviour:
  :meth:`FakeServer.check_auth`, :meth:`FakeServer.not_found`,
  :meth:`FakeServer.is_stream` (``"stream": true`` in the body),
  :meth:`FakeServer.response_headers`, :meth:`FakeServer.render_reply` (JSON or a framed
  stream, honouring every wire field of :class:`Reply`), :meth:`FakeServer.render_error`
  (``{"error": {"message", "type", "code"}}``), :meth:`FakeServer.render_mid_stream_error`
  (the first events, then the error event), :meth:`FakeServer.error_for`,
  :meth:`FakeServer.error_for_status`, :meth:`FakeServer.malformed_event` and
  :meth:`FakeServer.malformed_json`, :meth:`FakeServer.default_reply`.

:meth:`FakeServer.answer` handles the reply types every provider shares
(:class:`Stall`, :class:`Reset`, :class:`RawReply`) and hands the others to the render
hooks. Writing through :meth:`FakeServer.write_body` gives split reads, dropped
connections and every chaos fault (:mod:`llmx.testing._chaos`) for free, in either
framing. An exception raised while answering (a missing method, a bug in the fake) is
recorded in :attr:`FakeServer.errors` and raised again, as :class:`FakeServerError`, when
the server stops, so it fails the test instead of looking like a provider bug.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import itertools
import json
import random
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

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

__all__ = [
    "ERROR_STATUS",
    "STREAM_CONTENT_TYPES",
    "Event",
    "FakeServer",
    "FakeServerError",
    "Framing",
    "Handler",
    "RecordedRequest",
]

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

Framing = Literal["sse", "ndjson"]
"""How a fake server frames the events of a stream: Server-Sent Events (``data: JSON``
and a blank line, optionally after ``event: NAME``) or newline-delimited JSON (one
JSON document per line)."""

STREAM_CONTENT_TYPES: dict[str, str] = {
    "sse": "text/event-stream; charset=utf-8",
    "ndjson": "application/x-ndjson",
}
"""The ``Content-Type`` of a stream in each :data:`Framing` (a subclass may set its own)."""


@attrs.frozen
class Event:
    """One event of a stream, framed by the server's :attr:`FakeServer.framing`.

    ``data`` is any JSON value; ``name`` is the SSE event name (``event: NAME``), for
    protocols that name their events (an NDJSON server must not set it).
    :meth:`FakeServer.stream_events` may also return plain JSON values (unnamed
    events) or ``bytes`` (written exactly as given, e.g. OpenAI's ``data: [DONE]``).
    """

    data: Any
    name: str | None = None


class FakeServerError(AssertionError):
    """A fake server failed while answering a request (its ``__cause__`` says why).

    Raised when the server stops, and by the conformance suite after each test, so a
    fake that lacks a method the test needs (``NotImplementedError`` naming it) or has a
    bug fails the test with the fake's own error, not as a puzzling provider failure.
    """


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


class FakeServer(abc.ABC):
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

    framing: ClassVar[Framing] = "sse"
    """How stream events are framed: ``"sse"`` (Server-Sent Events) or ``"ndjson"``."""
    stream_content_type: ClassVar[str | None] = None
    """The ``Content-Type`` of a stream (None: the framing's, :data:`STREAM_CONTENT_TYPES`)."""
    auth_header: ClassVar[str | None] = "authorization"
    """The request header carrying the key (lower case), or None for an API without auth."""
    auth_scheme: ClassVar[str | None] = "Bearer"
    """The scheme before the key in :attr:`auth_header` (``Bearer KEY``), or None (the bare key)."""

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
        self.errors: list[Exception] = []
        """Exceptions raised while answering (a bug or missing method of the fake), in order."""
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

    def next_failure(self) -> ReplyItem | None:
        """For an auxiliary endpoint (counting tokens, say) that answers from the
        request alone: pop the next queued reply only if it is a scripted failure (an
        :class:`ErrorReply`, :class:`RawReply`, :class:`Reset`, :class:`Stall`...),
        to be sent with :meth:`answer`; None (nothing popped) when the queue is empty
        or its head is a :class:`Reply` kept for a model request."""
        with self._lock:
            if not self._queue or isinstance(self._queue[0], Reply):
                return None
            return self._queue.popleft()

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
        if exc is None:
            self.raise_errors()

    def raise_errors(self) -> None:
        """Raise :class:`FakeServerError` (caused by the first one) if answering raised.

        The errors are forgotten once raised, so they are reported once.
        """
        if not self.errors:
            return
        first, count = self.errors[0], len(self.errors)
        self.errors.clear()
        more = f" (and {count - 1} more)" if count > 1 else ""
        msg = (
            f"{type(self).__name__} failed while answering a request{more}: "
            f"{type(first).__name__}: {first}"
        )
        raise FakeServerError(msg) from first

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
        self.raise_errors()

    # -- request handling ----------------------------------------------------------------

    @abc.abstractmethod
    def route(self, method: str, path: str) -> Handler | None:
        """The handler for ``method`` and ``path``, or None for unknown URLs (subclasses implement).

        A model endpoint's handler is usually :meth:`answer_model_request`.
        """

    async def check_auth(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """A response refusing the request's credentials, or None to let it through.

        The base compares :attr:`auth_header` (after :attr:`auth_scheme`) with
        :attr:`api_key` and refuses a missing or wrong key with
        ``error_for("authentication")``; no check when either is None.
        """
        if self.api_key is None or self.auth_header is None:
            return None
        given = recorded.headers.get(self.auth_header.lower(), "")
        if self.auth_scheme is not None:
            scheme, _, given = given.partition(" ")
            if scheme.lower() != self.auth_scheme.lower():
                given = ""
        if given.strip() == self.api_key:
            return None
        return await self.answer(request, recorded, self.error_for("authentication"))

    async def answer_model_request(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        """A handler for a model endpoint: the next reply (or the default) via :meth:`answer`."""
        reply = self.next_reply()
        if reply is None:
            reply = self.default_reply(recorded)
        return await self.answer(request, recorded, reply)

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
        try:
            denied = await self.check_auth(request, recorded)
            if denied is not None:
                return denied
            handler = self.route(request.method, request.path)
            if handler is None:
                return await self.not_found(request, recorded)
            return await handler(request, recorded)
        except Exception as err:
            from aiohttp import web

            if not isinstance(err, web.HTTPException):  # an answer, not a failure
                self.errors.append(err)
            raise

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

    @abc.abstractmethod
    def describe(self, recorded: RecordedRequest) -> RequestView:
        """What ``recorded`` asked for, in a provider-neutral form (subclasses implement)."""

    @abc.abstractmethod
    def reply_body(self, reply: Reply, recorded: RecordedRequest) -> Any:
        """The JSON body answering the non-streamed request ``recorded`` with ``reply``
        (subclasses implement): text, tool calls (unless the API has none), finish
        reason and usage (unless ``reply.omit_usage``) in the API's format."""

    def stream_events(self, reply: Reply, recorded: RecordedRequest) -> Sequence[Any]:
        """The events of ``reply`` streamed in answer to ``recorded`` (subclasses implement
        for an API that streams).

        Each item is a JSON value (one event), an :class:`Event` (a named SSE event) or
        ``bytes`` written as is; the base frames them (:attr:`framing`, with
        ``reply.line_ending``) and applies ``end_after``, ``split_at``, ``drop_after``,
        ``chunk_delay`` and the chaos faults. Use ``reply.text_pieces()`` and
        ``reply.argument_pieces()`` for the deltas; end with the API's final event
        (finish reason, usage unless ``reply.omit_usage``).
        """
        msg = (
            f"{type(self).__name__} does not implement stream_events(): implement it to "
            "answer streamed requests (or declare that the provider does not stream)"
        )
        raise NotImplementedError(msg)

    def mid_stream_error_event(self, reply: MidStreamError, recorded: RecordedRequest) -> Any:
        """The event a stream of the API fails with (subclasses implement for an API that
        streams), as an item of :meth:`stream_events`; ``reply.error`` (None: the API's
        generic server error) is its error object."""
        msg = (
            f"{type(self).__name__} does not implement mid_stream_error_event(): implement "
            "it to send the error event your API ends a failing stream with"
        )
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
                stream=self._is_stream_type(reply.content_type),
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
        """Answer with ``reply``: :meth:`reply_body` as JSON, or :meth:`stream_events` framed
        as a stream when :meth:`is_stream`; ``reply.headers``, ``split_at``,
        ``drop_after``, ``end_after`` and ``chunk_delay`` applied."""
        headers = self.response_headers(reply.headers)
        if not self.is_stream(recorded):
            return await self.json_response(
                request,
                200,
                self.reply_body(reply, recorded),
                headers=headers,
                split_at=reply.split_at,
                drop_after=reply.drop_after,
            )
        events = self.frame_events(self.stream_events(reply, recorded), reply.line_ending)
        if reply.end_after is not None:
            events = events[: reply.end_after]
        return await self.write_stream(
            request,
            events,
            headers=headers,
            split_at=reply.split_at,
            drop_after=reply.drop_after,
            chunk_delay=reply.chunk_delay,
        )

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
        """A stream that fails part-way: the first ``reply.after_events`` events of
        ``Reply(reply.text)``, then :meth:`mid_stream_error_event`; a request that does not
        stream gets :meth:`render_error` of HTTP ``reply.status``."""
        if not self.is_stream(recorded):
            error = reply.error or {}

            def text(key: str) -> str | None:
                value = error.get(key)
                return value if isinstance(value, str) else None

            status_reply = ErrorReply(
                reply.status, message=text("message"), type=text("type"), code=text("code")
            )
            return await self.render_error(request, recorded, status_reply)
        events = self.frame_events(self.stream_events(Reply(reply.text), recorded), "\n")
        error_event = self.frame_events([self.mid_stream_error_event(reply, recorded)], "\n")
        return await self.write_stream(
            request, [*events[: reply.after_events], *error_event], headers=self.response_headers()
        )

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """The API's refusal of the prompt (subclasses implement for an API that refuses
        prompts): an error, or an answer whose finish reason says so."""
        msg = (
            f"{type(self).__name__} does not implement render_blocked(): implement it to "
            "refuse a prompt the way your API does, or set refusals = False in the "
            "ProviderConformance subclass if the API has no refusal signal"
        )
        raise NotImplementedError(msg)

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
            return RawReply(200, self.malformed_event(), content_type=self.content_type_of_stream)
        return RawReply(200, self.malformed_json())

    def malformed_event(self) -> bytes:
        """A stream event whose payload is not JSON, in the server's framing."""
        if self.framing == "ndjson":
            return b'{"incomplete": \n'
        return b'data: {"incomplete": \n\n'

    def malformed_json(self) -> bytes:
        """A JSON body that does not parse."""
        return b'{"id": "broken", "content": ['

    # -- framing -------------------------------------------------------------------------

    @property
    def content_type_of_stream(self) -> str:
        """The ``Content-Type`` of this server's streams (see :attr:`stream_content_type`)."""
        return self.stream_content_type or STREAM_CONTENT_TYPES[self.framing]

    def _is_stream_type(self, content_type: str) -> bool:
        base = content_type.split(";", 1)[0].strip().lower()
        types = {
            t.split(";", 1)[0]
            for t in (*STREAM_CONTENT_TYPES.values(), self.content_type_of_stream)
        }
        return base in types

    def frame(self, item: Any, line_ending: str = "\n") -> bytes:
        """One stream event in the server's :attr:`framing`.

        SSE: ``[event: NAME]`` and ``data: JSON`` lines and a blank line; NDJSON: the
        JSON document and the line ending. ``item`` is a JSON value, an :class:`Event`,
        or ``bytes`` (returned as is). JSON is compact UTF-8.
        """
        if isinstance(item, (bytes, bytearray, memoryview)):
            return bytes(item)
        name = None
        if isinstance(item, Event):
            name, item = item.name, item.data
        data = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        if self.framing == "ndjson":
            if name is not None:
                msg = f"{type(self).__name__}: an NDJSON stream has no event names (got {name!r})"
                raise ValueError(msg)
            return f"{data}{line_ending}".encode()
        head = f"event: {name}{line_ending}" if name is not None else ""
        return f"{head}data: {data}{line_ending}{line_ending}".encode()

    def frame_events(self, items: Iterable[Any], line_ending: str = "\n") -> list[bytes]:
        """:meth:`frame` of each item."""
        return [self.frame(item, line_ending) for item in items]

    async def write_stream(
        self,
        request: web.BaseRequest,
        events: Sequence[bytes],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        split_at: Sequence[int] | None = None,
        drop_after: int | None = None,
        chunk_delay: float = 0.0,
    ) -> web.StreamResponse:
        """Send framed ``events`` as a stream (:meth:`write_body` with the stream's
        content type; each event is one piece, so chaos faults cut between events)."""
        return await self.write_body(
            request,
            status=status,
            pieces=events,
            content_type=self.content_type_of_stream,
            headers=headers,
            stream=True,
            split_at=split_at,
            drop_after=drop_after,
            chunk_delay=chunk_delay,
        )

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

"""The machinery every fake provider server shares: lifecycle, recording, reply queue,
and byte-exact writing of bodies (split into separate TCP reads, or cut off).

A concrete fake (:class:`~llmx.testing.FakeOpenAIServer`, and later Anthropic's and
Gemini's) subclasses :class:`FakeServer`, implements :meth:`FakeServer.route` (and
usually :meth:`FakeServer.check_auth` and :meth:`FakeServer.not_found`), and renders
the replies popped from the queue in its provider's format with
:meth:`FakeServer.write_body`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

if TYPE_CHECKING:
    from types import TracebackType

    from aiohttp import web

    from llmx.testing._replies import ReplyItem

__all__ = ["FakeServer", "Handler", "RecordedRequest"]

S = TypeVar("S", bound="FakeServer")

SPLIT_PAUSE = 0.002
"""Seconds between the pieces of a ``split_at`` body, so each is a separate TCP read."""


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
    appended to :attr:`requests`; each request for a model answer pops the next reply
    given to :meth:`enqueue`, or gets the server's default answer when the queue is
    empty.
    """

    def __init__(
        self, *, api_key: str | None = "test-key", host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.api_key = api_key
        """The API key the server requires, or None to accept any request."""
        self.host = host
        self.requests: list[RecordedRequest] = []
        """Every request received, in order."""
        self._port = port
        self._queue: deque[ReplyItem] = deque()
        self._runner: web.BaseRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._disconnects = 0
        self._sleepers: set[asyncio.Task[Any]] = set()
        self._counter = 0
        self._lock = threading.Lock()

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
        """Forget the recorded requests and the queued replies."""
        self._queue.clear()
        self.requests.clear()

    def next_reply(self) -> ReplyItem | None:
        """Pop the next queued reply, or None when the queue is empty."""
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
        denied = await self.check_auth(request, recorded)
        if denied is not None:
            return denied
        handler = self.route(request.method, request.path)
        if handler is None:
            return await self.not_found(request, recorded)
        return await handler(request, recorded)

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

        ``pieces`` are written one by one (``chunk_delay`` seconds apart). A ``stream``
        uses chunked transfer encoding; otherwise ``Content-Length`` announces the whole
        body, so a cut-off body is detectable. ``split_at`` re-cuts the body at those
        byte offsets, writing each piece separately with a short pause so the client
        receives separate reads. ``drop_after`` aborts the connection after that many
        body bytes. A client that goes away is counted in :attr:`disconnects`.
        """
        from aiohttp import web

        resp = web.StreamResponse(status=status, headers=headers)
        resp.headers["Content-Type"] = content_type
        if not stream:
            resp.content_length = sum(len(p) for p in pieces)
        pause = chunk_delay
        if split_at:
            pieces = _cut(b"".join(pieces), split_at)
            pause = max(chunk_delay, SPLIT_PAUSE)
        if drop_after is not None:
            pieces = _truncate(pieces, drop_after)
        try:
            await resp.prepare(request)
            for i, piece in enumerate(pieces):
                if i and pause:
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

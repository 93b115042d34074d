"""``llmx.SyncClient``: a blocking facade for scripts and notebooks.

It runs an async :class:`~llmx.Client` on an event loop in a private daemon thread, so
it also works where a loop is already running (Jupyter) and never touches the
caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from llmx._client import Client
from llmx._errors import ClientClosedError

if TYPE_CHECKING:
    import os
    from types import TracebackType

    from llmx._config import Config
    from llmx._embedding import EmbeddingRequest, EmbeddingResponse
    from llmx._registry import Registry
    from llmx._structured import ParsedResponse, StructuredStream
    from llmx._types import ModelInfo, Request, Response, StreamChunk, Usage

T = TypeVar("T")


class SyncClient:
    """The same API as :class:`~llmx.Client`, blocking.

    ::

        with llmx.SyncClient() as client:
            print(client.complete(model="openai/gpt-4o-mini", prompt="Hi").text)
            for chunk in client.stream(model="openai/gpt-4o-mini", prompt="Count to 3"):
                ...
    """

    def __init__(
        self,
        config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        registry: Registry | None = None,
    ) -> None:
        self._client = Client(config, registry=registry)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="llmx-sync", daemon=True
        )
        self._thread.start()
        self._closed = False

    @property
    def client(self) -> Client:
        """The async client underneath."""
        return self._client

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            msg = "this llmx.SyncClient is closed; create a new one"
            raise ClientClosedError(msg)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @overload
    def complete(
        self, request: Request | None = None, /, *, response_model: type[T], **kwargs: Any
    ) -> ParsedResponse[T]: ...
    @overload
    def complete(self, request: Request | None = None, /, **kwargs: Any) -> Response: ...
    def complete(self, request: Request | None = None, /, **kwargs: Any) -> Response:
        """Like :meth:`Client.complete`, blocking (``response_model=`` included)."""
        response: Response = self._run(self._client.complete(request, **kwargs))
        return response

    def embed(self, request: EmbeddingRequest | None = None, /, **kwargs: Any) -> EmbeddingResponse:
        """Like :meth:`Client.embed`, blocking."""
        return self._run(self._client.embed(request, **kwargs))

    @overload
    def stream(
        self, request: Request | None = None, /, *, response_model: type[T], **kwargs: Any
    ) -> SyncStructuredStream[T]: ...
    @overload
    def stream(self, request: Request | None = None, /, **kwargs: Any) -> Iterator[StreamChunk]: ...
    def stream(
        self, request: Request | None = None, /, **kwargs: Any
    ) -> Iterator[StreamChunk] | SyncStructuredStream[Any]:
        """Like :meth:`Client.stream`, as a blocking iterator of chunks.

        Stopping early (``break``, or closing the generator) closes the connection.
        With ``response_model=``, a :class:`SyncStructuredStream`: iterate it for the
        chunks, then call its ``parsed()`` for the validated instance.
        """
        if kwargs.get("response_model") is not None:
            return SyncStructuredStream(self, self._client.stream(request, **kwargs))
        return self._chunks(request, **kwargs)

    def _chunks(self, request: Request | None, /, **kwargs: Any) -> Iterator[StreamChunk]:
        stream = self._client.stream(request, **kwargs)
        try:
            while True:
                try:
                    yield self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if not self._closed:
                self._run(stream.aclose())

    def count_tokens(self, request: Request | None = None, /, **kwargs: Any) -> Usage:
        """Like :meth:`Client.count_tokens`, blocking."""
        return self._run(self._client.count_tokens(request, **kwargs))

    def model_info(self, model_ref: str) -> ModelInfo | None:
        """Like :meth:`Client.model_info`."""
        return self._client.model_info(model_ref)

    def close(self) -> None:
        """Close the client and stop its loop thread."""
        if self._closed:
            return
        try:
            self._run(self._client.aclose())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SyncStructuredStream(Generic[T]):
    """A blocking :class:`~llmx.structured.StructuredStream`: iterate it for the chunks (the JSON
    text as it arrives), then :meth:`parsed` for the validated instance. Stopping early
    closes the connection; :meth:`parsed` reads what is left."""

    def __init__(self, sync: SyncClient, stream: StructuredStream[T]) -> None:
        self._sync = sync
        self._stream = stream

    def __iter__(self) -> Iterator[StreamChunk]:
        try:
            while True:
                try:
                    yield self._sync._run(self._stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if not self._sync._closed and self._stream.response is None:
                self._sync._run(self._stream.aclose())

    def parsed(self) -> T:
        """The answer as an instance of the response model (re-asked if it did not
        validate); raises :class:`~llmx.structured.StructuredOutputError` when it never did."""
        return self._sync._run(self._stream.parsed())

    @property
    def response(self) -> Response | None:
        """Like :attr:`llmx.structured.StructuredStream.response`."""
        return self._stream.response

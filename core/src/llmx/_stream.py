"""Streams: assembling chunks into a Response, and the ``Stream`` handle callers get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from llmx._types import (
    FinishReason,
    Response,
    StreamChunk,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from types import TracebackType


class ResponseBuilder:
    """Folds stream chunks into the :class:`Response` the same request would have given.

    Providers use it to make a streamed and a non-streamed answer identical, and the
    client uses it to offer ``stream.response`` after the last chunk.
    """

    __slots__ = ("_calls", "_parts", "finish_reason", "id", "model", "usage")

    def __init__(self, model: str = "") -> None:
        self._parts: list[str] = []
        self._calls: dict[int, list[Any]] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.model = model
        self.id: str | None = None

    def add(self, chunk: StreamChunk) -> None:
        """Fold one chunk in."""
        if type(chunk) is TextDelta:
            self._parts.append(chunk.text)
        elif type(chunk) is ToolCallDelta:
            call = self._calls.get(chunk.index)
            if call is None:
                call = self._calls[chunk.index] = [chunk.id, chunk.name, []]
            else:
                # Some OpenAI-compatible servers repeat id and name in every delta.
                if chunk.id and not call[0]:
                    call[0] = chunk.id
                if chunk.name and not call[1]:
                    call[1] = chunk.name
            if chunk.arguments:
                call[2].append(chunk.arguments)
        elif type(chunk) is StreamEnd:
            if chunk.finish_reason is not None:
                self.finish_reason = chunk.finish_reason
            if chunk.usage is not None:
                self.usage = chunk.usage
            if chunk.model:
                self.model = chunk.model
            if chunk.id:
                self.id = chunk.id

    @property
    def text(self) -> str:
        """The text so far."""
        return "".join(self._parts)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls so far, by index."""
        return tuple(
            ToolCall(call[0] or f"call_{index}", call[1] or "", "".join(call[2]) or "{}")
            for index, call in sorted(self._calls.items())
        )

    def build(self, *, provider: str, raw: Any = None) -> Response:
        """The assembled response."""
        return Response(
            text=self.text,
            model=self.model,
            provider=provider,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
            id=self.id,
            raw=raw,
        )


async def chunks_of(response: Response) -> AsyncIterator[StreamChunk]:
    """A whole response replayed as stream chunks (for providers that cannot stream)."""
    if response.text:
        yield TextDelta(response.text)
    for index, call in enumerate(response.tool_calls):
        yield ToolCallDelta(index, call.id, call.name, call.arguments)
    yield StreamEnd(response.finish_reason, response.usage, response.model, response.id)


class Stream:
    """A streamed answer: iterate it for chunks, then read :attr:`response`.

    ::

        async with client.stream(model="openai/gpt-4o-mini", prompt="Hi") as stream:
            async for chunk in stream:
                if isinstance(chunk, llmx.TextDelta):
                    print(chunk.text, end="")
        print(stream.response.usage)

    Leaving the ``async with`` block early (or calling :meth:`aclose`) closes the
    connection. :meth:`text` iterates over text deltas only; :meth:`collect` consumes
    everything and returns the Response. Nothing is sent before the first iteration.
    """

    __slots__ = ("_chunks", "_closed", "_run", "response")

    def __init__(self, run: StreamRun) -> None:
        self._run = run
        self._chunks: AsyncIterator[StreamChunk] | None = None
        self._closed = False
        self.response: Response | None = None
        """The assembled answer, set once the stream has ended."""

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self

    async def __anext__(self) -> StreamChunk:
        # The caller pulls straight from the engine's chunk iterator: no generator of
        # our own in between (bench: 50-chunk stream, one async-generator hop per chunk).
        chunks = self._chunks
        if chunks is None:
            if self._closed or self.response is not None:
                raise StopAsyncIteration
            try:
                chunks = self._chunks = await self._run.open()
            except BaseException as err:
                self._closed = True
                self._run.fail(err)
                raise
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            pass
        except BaseException as err:
            self._chunks = None
            self._closed = True
            self._run.fail(err)
            raise
        self._chunks = None
        try:
            response = await self._run.finish()
        except BaseException as err:
            self._closed = True
            self._run.fail(err)
            raise
        self.response = response
        return StreamEnd(response.finish_reason, response.usage, response.model, response.id)

    async def text(self) -> AsyncIterator[str]:
        """Only the text pieces, as they arrive."""
        async for chunk in self:
            if type(chunk) is TextDelta:
                yield chunk.text

    async def collect(self) -> Response:
        """Consume the rest of the stream and return the whole Response."""
        async for _ in self:
            pass
        assert self.response is not None
        return self.response

    async def aclose(self) -> None:
        """Stop the stream and close its connection."""
        chunks, self._chunks = self._chunks, None
        self._closed = True
        if chunks is not None:
            aclose = getattr(chunks, "aclose", None)  # an async generator's
            if aclose is not None:
                await aclose()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class StreamRun(Protocol):
    """What a :class:`Stream` pulls from (the engine's streamed request)."""

    async def open(self) -> AsyncIterator[StreamChunk]:
        """Start the request; the iterator of its chunks (without the final StreamEnd)."""
        ...

    async def finish(self) -> Response:
        """The chunks are exhausted: the assembled Response."""
        ...

    def fail(self, err: BaseException) -> None:
        """The request failed with ``err`` (raised to the caller after this)."""
        ...

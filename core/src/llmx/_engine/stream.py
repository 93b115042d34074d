"""The streamed attempt: opened until its first chunk (so fallback, retries and hedging
work as for a whole answer), then delivered chunk by chunk.

After the first chunk an error is surfaced with the request's attempts, never spliced
with another candidate's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from llmx._engine.call import Call
from llmx._engine.run import Run
from llmx._errors import ProviderError
from llmx._stream import ResponseBuilder, chunks_of
from llmx._timeouts import Watchdog
from llmx._tokens import estimate_input_tokens, estimate_text_tokens
from llmx._types import Response, StreamChunk, StreamEnd, Usage

if TYPE_CHECKING:
    from llmx._cache import CacheLayer, CachePolicy
    from llmx._engine.pipeline import Pipeline
    from llmx._types import Request


async def open_once(call: Call, sent: Request) -> Call:
    """Start one streamed attempt and wait for its first chunk (under the first-byte
    timeout and the deadline). The call stays open until :func:`deliver` ends it."""
    await call.admit()
    run, deployment = call.run, call.deployment
    provider = deployment.provider
    assert provider is not None
    try:
        if deployment.can_stream:
            call.source = provider.stream(sent)  # type: ignore[attr-defined]
        else:
            call.source = chunks_of(await provider.complete(sent))
        source = call.source
        assert source is not None
        first_byte = deployment.config.first_byte_timeout
        if first_byte is None and run.deadline is None:
            first = await source.__anext__()
        else:
            loop_now = asyncio.get_running_loop().time()
            deadline = None if run.deadline is None else loop_now + max(run.remaining(), 0.0)
            with Watchdog(
                provider=deployment.name,
                model=call.model,
                deadline=deadline,
                deadline_reason="the request's deadline passed before the first chunk",
                first_byte_by=None if first_byte is None else loop_now + first_byte,
            ):
                first = await source.__anext__()
    except StopAsyncIteration:
        call.first_chunk(None)  # an empty stream: no chunk at all
        return call
    except BaseException as err:
        await call.close_source()
        error = call.failed(err)
        if error is err:
            raise
        raise error from err
    call.first_chunk(first)
    return call


async def deliver(call: Call) -> AsyncGenerator[StreamChunk, None]:
    """Yield the opened call's chunks; the call ends as succeeded (the assembled
    Response is then ``call.response``), failed (the typed error, with the request's
    attempts) or abandoned (the caller stopped reading)."""
    source = call.source
    assert source is not None
    deployment = call.deployment
    builder = ResponseBuilder(call.model)
    idle = deployment.config.idle_timeout
    dog = (
        None
        if idle is None
        else Watchdog(
            provider=deployment.name, model=call.model, deadline=None, deadline_reason="", idle=idle
        )
    )
    chunk = call.first
    try:
        try:
            while chunk is not None:
                builder.add(chunk)
                if type(chunk) is not StreamEnd:
                    yield chunk
                if dog is None:
                    chunk = await source.__anext__()
                else:
                    with dog:
                        chunk = await source.__anext__()
        except StopAsyncIteration:
            pass
    except (GeneratorExit, asyncio.CancelledError):
        if dog is not None:
            dog.close()
        await call.close_source()
        call.abandoned("stream closed early")
        raise
    except BaseException as err:
        if dog is not None:
            dog.close()
        await call.close_source()
        error = call.failed(err)
        if isinstance(error, ProviderError):
            error.attempts = tuple(call.run.attempts)
        if error is err:
            raise
        raise error from err
    if dog is not None:
        dog.close()
    await call.close_source()
    call.response = call.succeeded(_assembled(builder, call))


def _assembled(builder: ResponseBuilder, call: Call) -> Response:
    """The stream's Response; when the provider reported no usage at all (llama.cpp's
    server sends none), an estimate marked ``usage.estimated`` — never a silent 0."""
    response = builder.build(provider=call.deployment.name)
    if builder.usage is not None or not (response.text or response.tool_calls):
        return response
    usage = Usage(
        estimate_input_tokens(call.run.request),
        estimate_text_tokens(response.text),
        estimated=True,
    )
    return Response(
        response.text,
        response.model,
        response.provider,
        response.tool_calls,
        response.finish_reason,
        usage,
        id=response.id,
    )


class StreamRequest:
    """One streamed request, driven by the :class:`~llmx.Stream` the caller reads: the
    same steps as ``Pipeline.complete`` (run scope, route, cache, fallback), with the
    chunks delivered in between."""

    __slots__ = (
        "_cache",
        "_call",
        "_keep",
        "_layer",
        "_pipeline",
        "_request",
        "_response",
        "_run",
        "_slots",
        "_timeout",
    )

    def __init__(
        self,
        pipeline: Pipeline,
        request: Request,
        timeout: float | None,
        cache: CachePolicy | str | None,
    ) -> None:
        self._pipeline = pipeline
        self._request = request
        self._timeout = timeout
        self._cache = cache
        self._run: Run | None = None
        self._call: Call | None = None
        self._response: Response | None = None
        self._layer: CacheLayer | None = None
        self._slots: Any = None
        self._keep: list[StreamChunk] | None = None

    async def open(self) -> AsyncIterator[StreamChunk]:
        """Resolve, look in the cache, open the first candidate that sends a chunk."""
        pipeline, request = self._pipeline, self._request
        run = self._run = Run(pipeline.events, request, True)
        route = pipeline.start(run, self._timeout)
        if pipeline.cache is not None or self._cache is not None:
            layer, slots = pipeline.cache_slots(route, request, self._cache)
            if layer is not None and slots is not None:
                hit = await layer.lookup(slots)
                if hit is not None:
                    response, chunks = hit
                    self._response = response
                    if chunks is None:
                        return _without_end(chunks_of(response))
                    return _replay(chunks)
                if any(s.writable for s in slots):
                    self._layer, self._slots, self._keep = layer, slots, []
        call = self._call = await pipeline.fallback.run(route, run, open_once)
        if self._keep is not None:
            return _kept(deliver(call), self._keep)
        return deliver(call)

    async def finish(self) -> Response:
        """Store a completed stream in the cache; the request's end event."""
        response = self._response
        if response is None:
            call = self._call
            assert call is not None
            response = call.response
            assert response is not None
            if self._keep is not None and self._layer is not None:
                await self._layer.store(self._slots, response, self._keep)
        assert self._run is not None
        self._run.end(response)
        return response

    def fail(self, err: BaseException) -> None:
        """The request's error event."""
        if self._run is not None:
            self._run.fail(err)


async def _replay(chunks: list[StreamChunk]) -> AsyncIterator[StreamChunk]:
    for chunk in chunks:
        if type(chunk) is not StreamEnd:
            yield chunk


async def _without_end(chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
    async for chunk in chunks:
        if type(chunk) is not StreamEnd:
            yield chunk


async def _kept(
    chunks: AsyncGenerator[StreamChunk, None], keep: list[StreamChunk]
) -> AsyncIterator[StreamChunk]:
    """The chunks, each also kept for the cache (stored only if the stream completes)."""
    try:
        async for chunk in chunks:
            keep.append(chunk)
            yield chunk
    finally:
        await chunks.aclose()  # closing early must reach the provider's stream now

"""The streamed attempt: opened until its first chunk (so fallback, retries and hedging
work as for a whole answer), then delivered chunk by chunk.

After the first chunk an error is surfaced with the request's attempts, never spliced
with another candidate's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, Protocol

from llmx._engine.call import Call
from llmx._engine.run import Run
from llmx._errors import ProviderError
from llmx._stream import ResponseBuilder, chunks_of
from llmx._timeouts import Watchdog
from llmx._tokens import estimate_text_tokens, input_tokens
from llmx._types import Response, StreamChunk, StreamEnd, TextDelta, Usage

if TYPE_CHECKING:
    from llmx._cache import CacheLayer
    from llmx._engine.fallback import Fallback
    from llmx._engine.resolve import Route
    from llmx._registry import _EventHooks as EventCallers
    from llmx._settings import CachePolicy
    from llmx._types import Request


async def open_once(call: Call, sent: Request) -> Call:
    """Start one streamed attempt and wait for its first chunk (under the first-byte
    timeout and the deadline). The call stays open until :func:`stream_request`'s
    delivery ends it."""
    await call.admit()
    run, inst = call.run, call.inst
    provider = inst.provider
    assert provider is not None
    try:
        if inst.can_stream:
            call.source = provider.stream(sent)  # type: ignore[attr-defined]
        else:
            call.source = chunks_of(await provider.complete(sent))
        source = call.source
        assert source is not None
        first_byte = inst.config.first_byte_timeout
        if first_byte is None and run.deadline is None:
            first = await source.__anext__()
        else:
            loop_now = asyncio.get_running_loop().time()
            deadline = None if run.deadline is None else loop_now + max(run.remaining(), 0.0)
            with Watchdog(
                provider=inst.name,
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


class StreamHost(Protocol):
    """What a streamed request needs from the pipeline (its run steps and the cache)."""

    @property
    def cache(self) -> CacheLayer | None:
        """The response-cache stage, if configured."""
        ...

    @property
    def events(self) -> EventCallers:
        """The event hook callers."""
        ...

    @property
    def fallback(self) -> Fallback:
        """The fallback loop."""
        ...

    def start(self, run: Run, timeout: float | None) -> Route:
        """Resolve the route and set the deadline."""
        ...

    def cache_slots(
        self, route: Route, request: Request, cache: CachePolicy | str | None
    ) -> tuple[CacheLayer | None, Any]:
        """The cache stage and its slots for this request."""
        ...


async def stream_request(
    host: StreamHost,
    request: Request,
    state: list[Response],
    timeout: float | None,
    cache: CachePolicy | str | None,
    text_only: bool = False,
) -> AsyncGenerator[Any, None]:
    """One streamed request as the one generator the caller's :class:`~llmx.Stream`
    iterates: the same steps as ``Pipeline.complete`` (run scope, route, cache, fallback
    until a candidate sends its first chunk), then the chunks (with ``text_only``, the
    text of each TextDelta and nothing else: ``Stream.text()``). The attempt ends as
    succeeded (the Response goes to ``state``), failed (the typed error, with the
    request's attempts) or abandoned (the caller stopped reading)."""
    run = Run(host.events, request, True)
    try:
        route = host.start(run, timeout)
        layer = slots = None
        if host.cache is not None or cache is not None:
            layer, slots = host.cache_slots(route, request, cache)
        hit = None if layer is None or slots is None else await layer.lookup(slots)
        if hit is not None:
            response, chunks = hit
            replay = chunks if chunks is not None else [c async for c in chunks_of(response)]
            for chunk in replay:
                if type(chunk) is TextDelta:
                    yield chunk.text if text_only else chunk
                elif type(chunk) is not StreamEnd and not text_only:
                    yield chunk
        else:
            call = await host.fallback.run(route, run, open_once)
            keep: list[StreamChunk] | None = None
            if slots is not None and any(s.writable for s in slots):
                keep = []
            # Delivery, inline: the provider's iterator is the only generator between
            # here and the caller (bench: 50-chunk stream, one hop per chunk).
            source = call.source
            assert source is not None
            inst = call.inst
            builder = ResponseBuilder(call.model)
            idle = inst.config.idle_timeout
            dog = None
            if idle is not None:
                dog = Watchdog(
                    provider=inst.name,
                    model=call.model,
                    deadline=None,
                    deadline_reason="",
                    idle=idle,
                )
            texts = builder.parts
            piece: StreamChunk | None = call.first
            try:
                try:
                    while piece is not None:
                        if type(piece) is TextDelta:  # most chunks: the builder's work inline
                            texts.append(piece.text)
                            if keep is not None:
                                keep.append(piece)
                            yield piece.text if text_only else piece
                        else:
                            builder.add(piece)
                            if type(piece) is not StreamEnd:
                                if keep is not None:
                                    keep.append(piece)
                                if not text_only:
                                    yield piece
                        if dog is None:
                            piece = await source.__anext__()
                        else:
                            with dog:
                                piece = await source.__anext__()
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
                    error.attempts = tuple(run.attempts)
                if error is err:
                    raise
                raise error from err
            if dog is not None:
                dog.close()
            await call.close_source()
            response = call.succeeded(_assembled(builder, call))
            if keep is not None and layer is not None and slots is not None:
                await layer.store(slots, response, keep)  # only a completed stream
        state.append(response)
        run.end(response)
    except BaseException as err:
        run.fail(err)
        raise
    if not text_only:
        yield StreamEnd(response.finish_reason, response.usage, response.model, response.id)


def _assembled(builder: ResponseBuilder, call: Call) -> Response:
    """The stream's Response; when the provider reported no usage at all (llama.cpp's
    server sends none), an estimate marked ``usage.estimated`` — never a silent 0."""
    response = builder.build(provider=call.inst.name)
    if builder.usage is not None or not (response.text or response.tool_calls):
        return response
    texts = [c.text for c in response.choices] if response.choices else [response.text]
    usage = Usage(
        input_tokens(call.run.request, call.inst.name, call.model),
        sum(estimate_text_tokens(text) for text in texts),  # every answer of n > 1
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
        reasoning=response.reasoning,
        choices=response.choices,
    )

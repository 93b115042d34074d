"""The streamed attempt: opened until its first chunk (so fallback, retries and hedging
work as for a whole answer), then delivered chunk by chunk.

After the first chunk an error is surfaced with the request's attempts, never spliced
with another candidate's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from llmx._engine.call import Call
from llmx._errors import ProviderError
from llmx._stream import ResponseBuilder, chunks_of
from llmx._timeouts import Watchdog
from llmx._tokens import estimate_input_tokens, estimate_text_tokens
from llmx._types import Response, StreamChunk, StreamEnd, Usage

if TYPE_CHECKING:
    from llmx._types import Request


async def open_once(call: Call, sent: Request) -> Call:
    """Start one streamed attempt and wait for its first chunk (under the first-byte
    timeout and the deadline). The call stays open until :func:`deliver` ends it."""
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


async def deliver(call: Call) -> AsyncGenerator[StreamChunk, None]:
    """Yield the opened call's chunks; the call ends as succeeded (the assembled
    Response is then ``call.response``), failed (the typed error, with the request's
    attempts) or abandoned (the caller stopped reading)."""
    source = call.source
    assert source is not None
    inst = call.inst
    builder = ResponseBuilder(call.model)
    idle = inst.config.idle_timeout
    dog = (
        None
        if idle is None
        else Watchdog(
            provider=inst.name, model=call.model, deadline=None, deadline_reason="", idle=idle
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
    response = builder.build(provider=call.inst.name)
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

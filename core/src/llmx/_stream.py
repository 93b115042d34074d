"""Streams: assembling chunks into a Response, and the ``Stream`` handle callers get."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from llmx._types import (
    AnswerChunk,
    Choice,
    ChoiceDelta,
    FinishReason,
    LogprobsDelta,
    Reasoning,
    ReasoningDelta,
    RefusalDelta,
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
    client uses it to offer ``stream.response`` after the last chunk. The chunks of the
    other answers of a stream with ``n > 1`` (:class:`~llmx.types.ChoiceDelta`) become
    ``Response.choices`` beside answer 0's, the plain chunks.
    """

    __slots__ = (
        "_calls",
        "_logprobs",
        "_others",
        "_reasoning",
        "_refusal",
        "finish_reason",
        "id",
        "model",
        "parts",
        "usage",
    )

    def __init__(self, model: str = "") -> None:
        self.parts: list[str] = []
        """The text pieces so far (appending to it is adding a :class:`TextDelta`)."""
        self._calls: dict[int, list[Any]] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.model = model
        self.id: str | None = None
        self._reasoning: dict[int, list[Any]] | None = None  # index -> [texts, fields]
        self._refusal: list[str] | None = None  # RefusalDelta texts (issue 15, item 7)
        self._logprobs: list[Any] | None = None  # LogprobsDelta tokens
        self._others: dict[int, ResponseBuilder] | None = None  # ChoiceDelta answers (n > 1)

    def add(self, chunk: StreamChunk) -> None:
        """Fold one chunk in."""
        if type(chunk) is TextDelta:
            self.parts.append(chunk.text)
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
        elif type(chunk) is ReasoningDelta:
            self._add_reasoning(chunk)
        elif type(chunk) is LogprobsDelta:
            if self._logprobs is None:
                self._logprobs = []
            self._logprobs.extend(chunk.logprobs)
        elif type(chunk) is RefusalDelta:
            if self._refusal is None:
                self._refusal = []
            self._refusal.append(chunk.text)
        elif type(chunk) is ChoiceDelta:
            self._add_other(chunk.index, chunk.delta)

    def _add_other(self, index: int, delta: AnswerChunk) -> None:
        """A chunk of answer ``index`` of a stream with ``n > 1`` (its own builder)."""
        if index == 0:  # a provider that wraps answer 0 too: it is this builder's
            self.add(delta)
            return
        others = self._others
        if others is None:
            others = self._others = {}
        builder = others.get(index)
        if builder is None:
            builder = others[index] = ResponseBuilder(self.model)
        if type(delta) is StreamEnd:  # an answer's end: its finish reason only
            if delta.finish_reason is not None:
                builder.finish_reason = delta.finish_reason
            if delta.usage is not None and self.usage is None:
                self.usage = delta.usage
        else:
            builder.add(delta)

    def _choice(self, index: int) -> Choice:
        """This builder's answer as choice ``index``."""
        text = self.text
        refusal = None if self._refusal is None else "".join(self._refusal)
        if refusal is not None and not text:
            text = refusal
        logprobs = None if self._logprobs is None else tuple(self._logprobs)
        return Choice(index, text, self.tool_calls(), self.finish_reason, refusal, logprobs)

    def _add_reasoning(self, chunk: ReasoningDelta) -> None:
        parts = self._reasoning
        if parts is None:
            parts = self._reasoning = {}
        part = parts.get(chunk.index)
        if part is None:
            part = parts[chunk.index] = [[], {}]
        if chunk.text:
            part[0].append(chunk.text)
        fields = part[1]
        for name in ("signature", "data", "id", "protocol"):
            value = getattr(chunk, name)
            if value is not None:
                fields[name] = value

    def reasoning(self) -> tuple[Reasoning, ...]:
        """The reasoning parts so far, by index."""
        if not self._reasoning:
            return ()
        return tuple(
            Reasoning("".join(texts), **fields)
            for _, (texts, fields) in sorted(self._reasoning.items())
        )

    @property
    def text(self) -> str:
        """The text so far."""
        return "".join(self.parts)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls so far, by index."""
        return tuple(
            ToolCall(call[0] or f"call_{index}", call[1] or "", "".join(call[2]) or "{}")
            for index, call in sorted(self._calls.items())
        )

    def build(self, *, provider: str, raw: Any = None) -> Response:
        """The assembled response (a refusal's message is its text, as in a whole answer)."""
        text = self.text
        calls = self.tool_calls()
        choices: tuple[Choice, ...] = ()
        if self._refusal is not None or self._logprobs is not None or self._others:
            refusal = None if self._refusal is None else "".join(self._refusal)
            if refusal is not None and not text:
                text = refusal
            logprobs = None if self._logprobs is None else tuple(self._logprobs)
            choices = (Choice(0, text, calls, self.finish_reason, refusal, logprobs),)
            if self._others:
                choices += tuple(b._choice(i) for i, b in sorted(self._others.items()))
        return Response(
            text=text,
            model=self.model,
            provider=provider,
            tool_calls=calls,
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
            id=self.id,
            raw=raw,
            reasoning=self.reasoning(),
            choices=choices,
        )


async def chunks_of(response: Response) -> AsyncIterator[StreamChunk]:
    """A whole response replayed as stream chunks (for providers that cannot stream)."""
    for index, part in enumerate(response.reasoning):
        yield ReasoningDelta(
            part.text,
            index,
            signature=part.signature,
            data=part.data,
            id=part.id,
            protocol=part.protocol,
        )
    refusal = response.refusal
    if refusal is not None:
        yield RefusalDelta(refusal)
    elif response.text:
        yield TextDelta(response.text)
    logprobs = response.logprobs
    if logprobs is not None:
        yield LogprobsDelta(logprobs)
    for index, call in enumerate(response.tool_calls):
        yield ToolCallDelta(index, call.id, call.name, call.arguments)
    for choice in response.choices[1:]:  # the other answers of n > 1, each after the other
        number = choice.index
        if choice.refusal is not None:
            yield ChoiceDelta(number, RefusalDelta(choice.refusal))
        elif choice.text:
            yield ChoiceDelta(number, TextDelta(choice.text))
        if choice.logprobs is not None:
            yield ChoiceDelta(number, LogprobsDelta(choice.logprobs))
        for index, call in enumerate(choice.tool_calls):
            yield ChoiceDelta(number, ToolCallDelta(index, call.id, call.name, call.arguments))
        yield ChoiceDelta(number, StreamEnd(choice.finish_reason))
    yield StreamEnd(response.finish_reason, response.usage, response.model, response.id)


class Stream:
    """A streamed answer: iterate it for chunks, then read :attr:`response`.

    ::

        async with client.stream(model="openai/gpt-4o-mini", prompt="Hi") as stream:
            async for chunk in stream:
                if isinstance(chunk, llmx.TextDelta):
                    print(chunk.text, end="")
        print(stream.response.usage)

    A request with ``n > 1`` streams every answer: answer 0's chunks as above, the
    others' wrapped in :class:`llmx.types.ChoiceDelta` (``index``, ``delta``), as the
    vendor interleaves them; :meth:`text` yields answer 0's text only, and
    :attr:`response` has every answer in ``choices``.

    Leaving the ``async with`` block early (or calling :meth:`aclose`) closes the
    connection. :meth:`text` iterates over text deltas only; :meth:`collect` consumes
    everything and returns the Response. Nothing is sent before the first iteration.
    Read a stream one way: its chunks, or :meth:`text` (a stream first read with
    :meth:`text` cannot then be iterated for chunks).
    """

    __slots__ = ("_gen", "_start", "_state", "_text")

    def __init__(
        self, start: Callable[[bool], AsyncGenerator[Any, None]], state: list[Response]
    ) -> None:
        self._start = start
        self._gen: AsyncGenerator[Any, None] | None = None
        self._text = False
        self._state = state

    @property
    def response(self) -> Response | None:
        """The assembled answer, set once the stream has ended."""
        return self._state[0] if self._state else None

    def _chunks(self) -> AsyncGenerator[StreamChunk, None]:
        gen = self._gen
        if gen is None:
            gen = self._gen = self._start(False)
        elif self._text:
            msg = "this stream is being read with text(); it cannot also be iterated for chunks"
            raise RuntimeError(msg)
        return gen

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        # The engine's generator itself: ``async for`` pulls from it with no frame of ours
        # in between (bench: 50-chunk stream, one hop per chunk fewer).
        return self._chunks()

    async def __anext__(self) -> StreamChunk:
        return await self._chunks().__anext__()

    def text(self) -> AsyncIterator[str]:
        """Only the text pieces, as they arrive (of answer 0 when ``n > 1``)."""
        if self._gen is None:
            # The engine yields the text itself: no generator of ours in between.
            self._text = True
            self._gen = gen = self._start(True)
            return gen
        return self._text_of(self._chunks())

    @staticmethod
    async def _text_of(chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[str]:
        async for chunk in chunks:
            if type(chunk) is TextDelta:
                yield chunk.text

    async def collect(self) -> Response:
        """Consume the rest of the stream and return the whole Response."""
        gen = self._gen if self._gen is not None else self._chunks()
        async for _ in gen:
            pass
        response = self.response
        assert response is not None
        return response

    async def aclose(self) -> None:
        """Stop the stream and close its connection."""
        if self._gen is not None:
            await self._gen.aclose()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

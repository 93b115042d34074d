"""The conformance kit's tests of several answers (``n``), token logprobs and refusals, a
mixin of :class:`~llmx.testing.conformance.ProviderConformance` (issue 15, item 7).

Three opt-in features (:attr:`Feature.OPT_IN`): :data:`CHOICES` (``Request.n > 1``, the
answers in ``Response.choices``), :data:`CHOICES_STREAMED` (``n > 1`` streamed too: the
other answers' chunks as :class:`~llmx.types.ChoiceDelta`, ``stream.response.choices``
as ``complete()`` gives them) and :data:`LOGPROBS` (``logprobs=``/``top_logprobs=``,
the tokens in ``Response.logprobs``, whole and streamed). A provider without them must
refuse them before sending (:class:`~llmx.UnsupportedFeatureError`; the helper
:func:`llmx.http.refuse_choices` does it in one line): a provider that ignores ``n``
would hand back one answer where the caller asked for several, and one that ignores
``logprobs`` would give ``None`` where the caller expects numbers.

Refusals: every provider's plain answer has ``refusal`` None and no ``choices``; with
``refusal_messages = True`` (the API sends a refusal message of its own, as OpenAI's
``refusal`` field), ``Reply(refusal="...")`` must come back as ``Response.refusal``
(also its text) with finish reason ``content_filter``, whole and streamed, the stream
carrying :class:`~llmx.types.RefusalDelta` pieces and no text deltas. The fake renders
a reply's ``choices`` (the further answers) and ``refusal``, and for ``logprobs``
tokens whose texts concatenate to the answer's text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import llmx
from llmx.testing._replies import Reply
from llmx.types import ChoiceDelta, LogprobsDelta, RefusalDelta

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer

__all__ = ["CHOICES", "CHOICES_STREAMED", "LOGPROBS", "ChoicesConformance"]

CHOICES = "choices"
"""Several answers per request (``Request.n``), in ``Response.choices``."""
CHOICES_STREAMED = "choices_streamed"
"""Several answers streamed (``client.stream(..., n=3)``): answer 0's chunks plain, the
others' in :class:`~llmx.types.ChoiceDelta`; without it (but with :data:`CHOICES`) a
stream with ``n > 1`` must be refused before sending."""
LOGPROBS = "logprobs"
"""Token log probabilities (``Request.logprobs``/``top_logprobs``), whole and streamed."""

REFUSAL = "I can't help with that."


class ChoicesConformance:
    """``n``, logprobs and refusals through the provider (see the module docstring)."""

    refusal_messages: ClassVar[bool] = False
    """Whether the API sends the model's refusal as a message of its own (OpenAI's
    ``refusal`` field, the Responses API's refusal parts): then the kit checks that
    ``Reply(refusal=...)`` comes back as ``Response.refusal``."""

    # Provided by ProviderConformance (declared here for the type checker).
    if TYPE_CHECKING:
        supports: ClassVar[frozenset[str]]
        provider_type: ClassVar[str]
        stream_usage: ClassVar[bool]

        @property
        def ref(self) -> str: ...

        def needs(self, *features: str) -> None: ...
        def run(self, scenario: Any, **options: Any) -> Any: ...

    def _refused_before_sending(self, feature: str, **options: Any) -> None:
        streaming = "streaming" in self.supports

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            with pytest.raises(llmx.UnsupportedFeatureError) as info:
                await client.complete(model=self.ref, prompt="x", **options)
            assert info.value.feature == feature, info.value
            if streaming:
                with pytest.raises(llmx.UnsupportedFeatureError):
                    await client.stream(model=self.ref, prompt="x", **options).collect()
            assert server.model_requests == [], "refused, but sent"

        self.run(scenario)

    def test_a_plain_answer_has_no_choices_and_no_refusal(self) -> None:
        """Without ``n``, logprobs or a refusal, ``choices`` is empty and both details None."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("Hello"))
            response = await client.complete(model=self.ref, prompt="x")
            assert (response.choices, response.refusal, response.logprobs) == ((), None, None)

        self.run(scenario)

    def test_several_answers(self) -> None:
        """``n=3`` gives three answers in ``choices``, the first being the Response's own."""
        if CHOICES not in self.supports:
            self._refused_before_sending("n", n=2)
            return

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("one", choices=("two", "three")))
            response = await client.complete(model=self.ref, prompt="x", n=3)
            assert [c.text for c in response.choices] == ["one", "two", "three"]
            assert [c.index for c in response.choices] == [0, 1, 2]
            assert response.text == "one"
            assert response.finish_reason == response.choices[0].finish_reason == "stop"

        self.run(scenario)

    def test_several_answers_streamed(self) -> None:
        """With :data:`CHOICES_STREAMED`, ``n=3`` streamed gives every answer: answer 0's
        chunks plain (``text()`` reads it alone), the others' as ``ChoiceDelta`` (each
        ended by a ``StreamEnd`` with its finish reason), and ``stream.response`` equal to
        the whole answer's text, choices and usage. Without it (or without :data:`CHOICES`),
        refused before sending."""
        if "streaming" not in self.supports:
            pytest.skip(f"{self.provider_type} does not stream")
        if CHOICES not in self.supports or CHOICES_STREAMED not in self.supports:

            async def refused(server: FakeServer, client: llmx.Client) -> None:
                with pytest.raises(llmx.UnsupportedFeatureError) as info:
                    await client.stream(model=self.ref, prompt="x", n=2).collect()
                assert info.value.feature == "n", info.value
                assert server.model_requests == [], "refused, but sent"

            self.run(refused)
            return

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            reply = Reply("one two", choices=("three four", "five"))
            server.enqueue(reply, reply, reply)
            whole = await client.complete(model=self.ref, prompt="x", n=3)
            async with client.stream(model=self.ref, prompt="x", n=3) as stream:
                chunks = [c async for c in stream]
            streamed = stream.response
            assert streamed is not None
            assert [c.text for c in streamed.choices] == ["one two", "three four", "five"]
            assert streamed.choices == whole.choices
            assert (streamed.text, streamed.finish_reason) == (whole.text, whole.finish_reason)
            if self.stream_usage:  # else an estimate (usage.estimated)
                assert streamed.usage == whole.usage
            plain = "".join(c.text for c in chunks if type(c) is llmx.TextDelta)
            assert plain == "one two"
            for index, text in ((1, "three four"), (2, "five")):
                mine = [c.delta for c in chunks if type(c) is ChoiceDelta and c.index == index]
                assert "".join(d.text for d in mine if type(d) is llmx.TextDelta) == text
                ends = [d for d in mine if type(d) is llmx.StreamEnd]
                assert [e.finish_reason for e in ends] == ["stop"], ends
                assert ends[0].usage is None, "usage belongs on the stream's own StreamEnd"
            assert [type(c) for c in chunks].count(llmx.StreamEnd) == 1
            assert any(type(c) is ChoiceDelta for c in chunks[: len(chunks) // 2 + 1]), (
                "the answers are not interleaved"
            )
            pieces = [p async for p in client.stream(model=self.ref, prompt="x", n=3).text()]
            assert "".join(pieces) == "one two"

        self.run(scenario)

    def test_logprobs(self) -> None:
        """``logprobs=True, top_logprobs=2``: one token per piece of the text, each with at
        most two alternatives, whole and streamed (``LogprobsDelta`` chunks)."""
        if LOGPROBS not in self.supports:
            self._refused_before_sending("logprobs", logprobs=True)
            return

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("Hello there"))
            response = await client.complete(
                model=self.ref, prompt="x", logprobs=True, top_logprobs=2
            )
            tokens = response.logprobs
            assert tokens, "no logprobs in the answer"
            assert "".join(t.token for t in tokens) == response.text == "Hello there"
            assert all(t.logprob <= 0 and len(t.top) <= 2 for t in tokens)
            assert response.choices[0].logprobs == tokens
            if "streaming" in self.supports:
                server.enqueue(Reply("Hello there"))
                chunks = []
                async with client.stream(model=self.ref, prompt="x", logprobs=True) as stream:
                    chunks = [c async for c in stream]
                streamed = stream.response
                assert streamed is not None
                assert streamed.logprobs
                assert any(type(c) is LogprobsDelta for c in chunks)
                assert "".join(t.token for t in streamed.logprobs) == "Hello there"

        self.run(scenario)

    def test_refusal_message(self) -> None:
        """The model's refusal message is ``Response.refusal`` (and its text), with finish
        reason ``content_filter``, whole and streamed (``RefusalDelta`` pieces)."""
        if not self.refusal_messages:
            pytest.skip(f"{self.provider_type}'s API has no refusal message (refusal_messages)")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("", refusal=REFUSAL))
            response = await client.complete(model=self.ref, prompt="x")
            assert response.refusal == REFUSAL == response.text
            assert response.finish_reason == "content_filter"
            if "streaming" in self.supports:
                server.enqueue(Reply("", refusal=REFUSAL))
                async with client.stream(model=self.ref, prompt="x") as stream:
                    chunks = [c async for c in stream]
                streamed = stream.response
                assert streamed is not None
                assert streamed.refusal == REFUSAL == streamed.text
                assert streamed.finish_reason == "content_filter"
                assert any(type(c) is RefusalDelta for c in chunks)
                assert not any(type(c) is llmx.TextDelta for c in chunks)

        self.run(scenario)

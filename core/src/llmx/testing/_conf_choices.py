"""The conformance kit's tests of several answers (``n``), token logprobs and refusals, a
mixin of :class:`~llmx.testing.conformance.ProviderConformance` (issue 15, item 7).

Two opt-in features (:attr:`Feature.OPT_IN`): :data:`CHOICES` (``Request.n > 1``, the
answers in ``Response.choices``) and :data:`LOGPROBS` (``logprobs=``/``top_logprobs=``,
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
from llmx.types import LogprobsDelta, RefusalDelta

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer

__all__ = ["CHOICES", "LOGPROBS", "ChoicesConformance"]

CHOICES = "choices"
"""Several answers per request (``Request.n``), in ``Response.choices``."""
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
        """``n=3`` gives three answers in ``choices``, the first being the Response's own;
        a stream of several answers works or is refused before sending."""
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
            if "streaming" in self.supports:
                sent = len(server.model_requests)
                server.enqueue(Reply("one", choices=("two",)))
                try:
                    streamed = await client.stream(model=self.ref, prompt="x", n=2).collect()
                except llmx.UnsupportedFeatureError:
                    assert len(server.model_requests) == sent, "refused, but sent"
                else:
                    assert [c.text for c in streamed.choices] == ["one", "two"]

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

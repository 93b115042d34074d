"""The conformance kit's reasoning tests (``Feature.REASONING``), a mixin of
:class:`~llmx.testing.conformance.ProviderConformance`.

A provider that supports reasoning maps ``Request.reasoning`` onto its vendor's
parameter, returns the reasoning as :class:`llmx.Reasoning` parts (and
:class:`llmx.ReasoningDelta` chunks, never in ``Stream.text()``), counts reasoning tokens,
and sends its own opaque reasoning state back so that a tool loop continues (the vendors'
fakes refuse a follow-up that lacks it, as the vendors do). Every provider, whether it
supports reasoning or not, drops another vendor's reasoning parts from what it sends;
one that does not support reasoning refuses ``reasoning=`` before sending.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import llmx
import llmx.types
from llmx.testing._replies import Reply

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer

__all__ = ["ReasoningConformance"]

REASONING = "reasoning"
"""``Feature.REASONING`` (repeated here: this module is imported by ``conformance``)."""

THOUGHT = "First, the city. Then the weather there."
"""The reasoning text the fakes are told to return."""

FOREIGN = "llmx-conformance-elsewhere"
"""The ``protocol`` of reasoning parts no provider makes: they must never be sent."""


class ReasoningConformance:
    """The reasoning tests; knobs: :attr:`reasoning_text`."""

    reasoning_text: ClassVar[bool] = True
    """Whether the API returns the reasoning's text (OpenAI's Chat Completions does not:
    it reports only the reasoning tokens). False: the text checks are skipped."""

    # Provided by ProviderConformance (declared for the type checker).
    if TYPE_CHECKING:
        supports: ClassVar[frozenset[str]]
        usage_details: ClassVar[frozenset[str]]
        stream_usage: ClassVar[bool]
        provider_type: ClassVar[str]

        def needs(self, *features: str) -> None: ...
        def ref_for(self, *features: str) -> str: ...
        def run(self, scenario: Any, **options: Any) -> Any: ...
        @staticmethod
        def view(server: FakeServer, index: int = -1) -> Any: ...

    @pytest.mark.parametrize("value", ["low", "medium", "high", 4096, "none"])
    def test_reasoning_is_sent(self, value: str | int) -> None:
        """``reasoning=`` (a level or a budget; ``"none"`` too) reaches the vendor's parameter."""
        self.needs(REASONING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            reply = await client.complete(
                model=self.ref_for(REASONING), prompt="Think first.", reasoning=value
            )
            assert reply.text == "Think first."
            assert self.view(server).reasoning is not None, "no reasoning parameter was sent"

        self.run(scenario)

    def test_reasoning_parts_and_deltas(self) -> None:
        """The reasoning arrives as Reasoning parts and ReasoningDelta chunks, apart from
        the answer (``Stream.text()`` has none of it), whole and streamed alike, with its
        tokens counted in ``usage.reasoning_tokens`` (part of ``output_tokens``)."""
        self.needs(REASONING)
        counted = "reasoning" in self.usage_details

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            reply = Reply(
                "The answer.",
                reasoning=THOUGHT,
                usage=(20, 30),
                reasoning_tokens=12 if counted else 0,
                chunk_size=5,
            )
            server.enqueue(reply, reply, reply)
            ref = self.ref_for(REASONING)
            whole = await client.complete(model=ref, prompt="q", reasoning="high")
            chunks: list[llmx.types.StreamChunk] = []
            async with client.stream(model=ref, prompt="q", reasoning="high") as stream:
                chunks.extend([chunk async for chunk in stream])
            streamed = stream.response
            assert streamed is not None
            texts = [
                piece
                async for piece in client.stream(model=ref, prompt="q", reasoning="high").text()
            ]
            assert "".join(texts) == whole.text == streamed.text == "The answer."
            assert streamed.reasoning == whole.reasoning
            if self.stream_usage:
                assert whole.usage == streamed.usage
            if counted:
                assert whole.usage.reasoning_tokens == 12
                assert whole.usage.output_tokens == 30
            deltas = [c for c in chunks if isinstance(c, llmx.ReasoningDelta)]
            if self.reasoning_text:
                assert whole.reasoning_text == THOUGHT
                assert "".join(d.text for d in deltas) == THOUGHT
                first = next(i for i, c in enumerate(chunks) if isinstance(c, llmx.ReasoningDelta))
                text_at = next(i for i, c in enumerate(chunks) if isinstance(c, llmx.TextDelta))
                assert first < text_at, "the reasoning streams before the answer"
                assert all(p.protocol for p in whole.reasoning), "parts name their protocol"
            message = whole.message
            assert message.role == "assistant"
            assert message.content[: len(whole.reasoning)] == whole.reasoning
            assert message.text == "The answer."

        self.run(scenario)

    @pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
    def test_reasoning_tool_loop(self, streamed: bool) -> None:
        """A tool loop with reasoning continues: the answer's ``message`` carries the
        vendor's state back (the fakes refuse a follow-up without it, as the vendors do)."""
        self.needs(REASONING, "tools")
        tool = llmx.Tool(
            "get_weather",
            "The weather in a city.",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        )

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(
                Reply(
                    reasoning=THOUGHT,
                    tool_calls=[("call_r1", "get_weather", '{"city":"Paris"}')],
                    chunk_size=6,
                ),
                Reply("Sunny in Paris.", reasoning="The tool answered."),
            )
            ref = self.ref_for(REASONING, "tools")
            question = llmx.Message.user("Weather in Paris?")
            kwargs: dict[str, Any] = {"tools": [tool], "reasoning": "medium"}
            if streamed:
                first = await client.stream(model=ref, messages=[question], **kwargs).collect()
            else:
                first = await client.complete(model=ref, messages=[question], **kwargs)
            (call,) = first.tool_calls
            convo = [question, first.message, llmx.Message.tool(call.id, '{"sky": "sunny"}')]
            second = await client.complete(model=ref, messages=convo, **kwargs)
            assert second.text == "Sunny in Paris."
            if self.reasoning_text:
                assert second.reasoning_text == "The tool answered.", (
                    "the follow-up reasons too (its state was kept, so reasoning stays on)"
                )
            view = self.view(server)
            assert [t.role for t in view.turns] == ["user", "assistant", "user"]

        self.run(scenario)

    def test_foreign_reasoning_state_is_not_sent(self) -> None:
        """Reasoning parts another vendor made (a fallback mid-conversation) are dropped:
        neither their text nor their signature or encrypted data reaches this API, and
        the request succeeds."""
        tools = "tools" in self.supports
        foreign = (
            llmx.Reasoning("FOREIGN-THOUGHT", signature="FOREIGN-SIGNATURE", protocol=FOREIGN),
            llmx.Reasoning(data="FOREIGN-ENCRYPTED", id="rs_foreign", protocol=FOREIGN),
        )
        question = llmx.Message.user("Weather in Oslo?")
        if tools:
            call = llmx.ToolCall("call_f1", "get_weather", '{"city":"Oslo"}')
            convo = [
                question,
                llmx.Message.assistant(tool_calls=[call], reasoning=foreign),
                llmx.Message.tool("call_f1", '{"sky": "grey"}'),
            ]
        else:
            convo = [
                question,
                llmx.Message.assistant("Grey.", reasoning=foreign),
                llmx.Message.user("And tomorrow?"),
            ]
        tool = llmx.Tool("get_weather", "w", {"type": "object", "properties": {}})
        reasoning = "low" if REASONING in self.supports else None

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            features = [f for f, used in ((REASONING, reasoning), ("tools", tools)) if used]
            ref = self.ref_for(*features)
            kwargs: dict[str, Any] = {"tools": [tool]} if tools else {}
            if reasoning:
                kwargs["reasoning"] = reasoning
            server.enqueue(Reply("Grey tomorrow too."))
            reply = await client.complete(model=ref, messages=convo, **kwargs)
            assert reply.text == "Grey tomorrow too."
            body = server.model_requests[-1].body
            for secret in (b"FOREIGN-THOUGHT", b"FOREIGN-SIGNATURE", b"FOREIGN-ENCRYPTED"):
                assert secret not in body, f"{secret.decode()} was sent: {json.loads(body)}"

        self.run(scenario)

    def test_reasoning_refused_when_unsupported(self) -> None:
        """A provider without reasoning refuses ``reasoning=`` before sending anything."""
        if REASONING in self.supports:
            pytest.skip(f"{self.provider_type} supports reasoning")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            with pytest.raises(llmx.UnsupportedFeatureError):
                await client.complete(model=self.ref_for(), prompt="x", reasoning="high")
            assert not server.model_requests, "the request was sent"

        self.run(scenario)

"""The conformance kit's tests of counting tokens before sending
(:attr:`~llmx.testing.conformance.Feature.TOKEN_COUNTING`), mixed into
:class:`~llmx.testing.conformance.ProviderConformance`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import llmx

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer, RecordedRequest

T = TypeVar("T")


class _Kit(Protocol):
    """What these tests use of :class:`~llmx.testing.conformance.ProviderConformance`
    (a protocol, so this module does not import the one that mixes it in)."""

    supports: ClassVar[frozenset[str]]

    @property
    def ref(self) -> str: ...

    def ref_for(self, *features: str) -> str: ...

    def needs(self, *features: str) -> None: ...

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None: ...

    def run(
        self, scenario: Callable[[FakeServer, llmx.Client], Awaitable[T]], **options: Any
    ) -> T: ...


TOKEN_COUNTING = "token_counting"
"""``count_tokens(request)`` (:class:`llmx.plugin.TokenCountingProvider`)."""


class TokenCountingConformance:
    """``client.count_tokens``: the provider's exact count when it declares
    ``token_counting`` (the count requests validated like model requests), else
    llmx's estimate, marked ``estimated``, with nothing sent."""

    def test_count_tokens(self: _Kit) -> None:
        """A count before sending: exact from the provider, or estimated without a request."""
        supported = TOKEN_COUNTING in self.supports
        ref = self.ref_for(TOKEN_COUNTING) if supported else self.ref

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            short = await client.count_tokens(model=ref, prompt="Count me")
            long = await client.count_tokens(model=ref, prompt="Count every one of us. " * 50)
            for usage in (short, long):
                assert usage.output_tokens == 0
                assert usage.input_tokens > 0
            assert long.input_tokens > short.input_tokens
            if not supported:
                assert short.estimated
                assert long.estimated
                assert server.request_count == 0, "an estimate must not send anything"
                return
            assert not short.estimated
            assert not long.estimated
            assert server.request_count == 2
            for recorded in server.requests:
                self.validate_request(server, recorded)

        self.run(scenario)

    def test_count_tokens_of_a_whole_request(self: _Kit) -> None:
        """System prompt and tools are part of what is counted, when the provider counts."""
        self.needs(TOKEN_COUNTING, "tools")
        ref = self.ref_for(TOKEN_COUNTING, "tools")
        tool = llmx.Tool(
            "lookup",
            "Look a word up in a very large dictionary of the English language",
            {"type": "object", "properties": {"word": {"type": "string"}}},
        )

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            bare = await client.count_tokens(model=ref, prompt="Define serendipity")
            whole = await client.count_tokens(model=ref, prompt="Define serendipity", tools=[tool])
            assert not whole.estimated
            assert whole.input_tokens >= bare.input_tokens
            for recorded in server.requests:
                self.validate_request(server, recorded)

        self.run(scenario)

"""The conformance kit's prompt-caching tests (:data:`Feature.PROMPT_CACHING`), mixed into
:class:`~llmx.testing.conformance.ProviderConformance`.

Supported: a request carrying ``cache=`` breakpoints (on the system prompt, a text part,
a message and a tool) and a ``prompt_cache_key`` is answered, whole and streamed, and
the cache reads and writes the API reports arrive in :class:`llmx.Usage` (the one-hour
part too when ``usage_details`` lists ``cache_write_1h``) and in the cost, at the
model's prices. Not supported: such a request is refused with
:class:`llmx.UnsupportedFeatureError` before anything is sent (by the provider itself,
or by llmx when the model's :class:`llmx.ModelInfo` lists capabilities without
``prompt_caching``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import llmx
from llmx.testing._replies import Reply

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer

__all__ = ["PROMPT_CACHING", "PromptCachingConformance"]

PROMPT_CACHING = "prompt_caching"
"""The feature's name (``Feature.PROMPT_CACHING``)."""

_TOOL = llmx.Tool(
    "lookup",
    "Look a word up.",
    {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
    cache=True,
)


class PromptCachingConformance:
    """Prompt-caching tests; see the module docstring. Reads the host class's settings."""

    # Declared for type checkers: ProviderConformance defines them.
    supports: ClassVar[frozenset[str]]
    usage_details: ClassVar[frozenset[str]]
    stream_usage: ClassVar[bool]
    provider_type: ClassVar[str]
    if TYPE_CHECKING:

        def run(
            self, scenario: Callable[[FakeServer, llmx.Client], Awaitable[Any]], **options: Any
        ) -> Any: ...
        def ref_for(self, *features: str) -> str: ...
        def model_for(self, *features: str) -> str: ...
        def needs(self, *features: str) -> None: ...

    def _cached_request(self) -> dict[str, Any]:
        """Keyword arguments of a request with a breakpoint at every place one can go."""
        tools = [_TOOL] if "tools" in self.supports else []
        messages = [
            llmx.Message.system("You are terse. " * 40, cache=True),
            llmx.Message.user(llmx.Text("A long document. " * 60, cache=True), "Summarise it."),
            llmx.Message.assistant("It is long."),
            llmx.Message.user("And shorter?", cache=llmx.CacheControl(ttl="5m")),
        ]
        return {"messages": messages, "tools": tools, "prompt_cache_key": "conformance-doc-1"}

    def test_prompt_caching(self) -> None:
        """Breakpoints and a prompt-cache key are accepted, whole and streamed; cache
        reads and writes arrive in the usage and are priced (or, unsupported: refused
        before sending)."""
        supported = PROMPT_CACHING in self.supports
        kwargs = self._cached_request()
        ref = self.ref_for(PROMPT_CACHING) if supported else self.ref_for()
        if not supported:

            async def refused(server: FakeServer, client: llmx.Client) -> None:
                with pytest.raises(llmx.UnsupportedFeatureError):
                    await client.complete(model=ref, **kwargs)
                with pytest.raises(llmx.UnsupportedFeatureError):
                    await client.complete(model=ref, prompt="x", prompt_cache_key="k")
                assert not server.model_requests, "a prompt-caching request was sent"

            self.run(refused)
            return

        details = self.usage_details
        reply = Reply(
            "cached",
            usage=(2000, 10),
            cached_tokens=1200 if "cache_read" in details else 0,
            cache_write_tokens=600 if "cache_write" in details else 0,
            cache_write_1h_tokens=200 if "cache_write_1h" in details else 0,
        )
        expected = llmx.Usage(
            2000,
            10,
            cache_read_tokens=reply.cached_tokens,
            cache_write_tokens=reply.cache_write_tokens,
            cache_write_1h_tokens=reply.cache_write_1h_tokens,
        )
        streamed = "streaming" in self.supports and self.stream_usage

        async def works(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(reply, reply)
            whole = await client.complete(model=ref, **kwargs)
            assert whole.text == "cached"
            assert whole.usage == expected
            info = client.model_info(ref)
            if info is not None and info.input_price is not None:
                assert whole.cost == pytest.approx(info.cost(expected))
            if streamed:
                answer = await client.stream(model=ref, **kwargs).collect()
                assert answer.usage == expected

        self.run(works)

    def test_prompt_caching_in_model_info(self) -> None:
        """The model's facts list ``prompt_caching`` exactly when the provider supports it."""
        if "model_info" not in self.supports:
            pytest.skip(f"{self.provider_type} has no model_info")
        registration = llmx.Registry().get("provider", self.provider_type)
        model = self.model_for(PROMPT_CACHING) if PROMPT_CACHING in self.supports else None
        info_of = getattr(registration.factory, "model_info", None)
        assert callable(info_of), "model_info should be a staticmethod of the provider class"
        info = info_of(model or self.model_for())
        assert isinstance(info, llmx.ModelInfo)
        assert info.supports(llmx.Capability.PROMPT_CACHING) == (PROMPT_CACHING in self.supports)

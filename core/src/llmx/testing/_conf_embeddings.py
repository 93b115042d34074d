"""The conformance kit's embeddings tests (feature ``embeddings``), mixed into
:class:`~llmx.testing.conformance.ProviderConformance`.

A provider that lists ``Feature.EMBEDDINGS`` in ``supports`` (and names its embedding
model in ``models``, ``{Feature.EMBEDDINGS: "acme-embed"}``) must answer
``Client.embed``: one vector per input in input order, all of one length, usage
reported; larger requests than its ``embedding_limits`` allow split into several
requests and reassembled in order; ``dimensions`` honoured (or, when
``embedding_limits.dimensions`` is false, refused before sending); errors typed as for
chat. A provider that does not list it must have ``Client.embed`` refused with
:class:`llmx.UnsupportedFeatureError` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import pytest

import llmx
from llmx.testing._replies import Reply

if TYPE_CHECKING:
    from llmx.plugin import EmbeddingLimits
    from llmx.testing._server import FakeServer

__all__ = ["EMBEDDINGS", "EmbeddingsConformance"]

T = TypeVar("T")

EMBEDDINGS = "embeddings"
"""The feature name (``Feature.EMBEDDINGS``)."""

_TEXTS = ("the cat sat on the mat", "quarterly revenue rose", "a cat sat on a mat", "x")


class _Suite(Protocol):
    provider_type: ClassVar[str]
    supports: ClassVar[frozenset[str]]

    def run(
        self, scenario: Callable[[FakeServer, llmx.Client], Awaitable[T]], **options: Any
    ) -> T: ...

    def needs(self, *features: str) -> None: ...

    def ref_for(self, *features: str) -> str: ...


def _limits(suite: _Suite) -> EmbeddingLimits:
    factory = llmx.Registry().get("provider", suite.provider_type).factory
    limits = getattr(factory, "embedding_limits", None)  # a class attribute, as documented
    if limits is None:
        pytest.skip(
            f"{suite.provider_type}'s embedding_limits is set per instance, not on the class"
        )
    return limits  # type: ignore[no-any-return]


class EmbeddingsConformance:
    """The embeddings tests (see the module docstring)."""

    def test_embeddings(self: _Suite) -> None:
        """One vector per input, in input order, of one length; usage and instance."""
        self.needs(EMBEDDINGS)
        ref = self.ref_for(EMBEDDINGS)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            response = await client.embed(model=ref, input=list(_TEXTS))
            assert isinstance(response, llmx.EmbeddingResponse)
            assert len(response.vectors) == len(_TEXTS)
            assert response.dimensions > 0
            assert {len(v) for v in response.vectors} == {response.dimensions}
            assert response.provider == "conf"
            assert response.usage.input_tokens > 0
            assert response.cost is None or response.cost >= 0
            assert len(server.model_requests) == 1
            backwards = await client.embed(model=ref, input=list(reversed(_TEXTS)))
            assert list(backwards.vectors) == list(reversed(response.vectors)), "input order"
            single = await client.embed(model=ref, input=_TEXTS[1])
            assert list(single.vectors) == [response.vectors[1]]

        self.run(scenario)

    def test_embeddings_split_to_the_provider_limit(self: _Suite) -> None:
        """More inputs than one request takes: several requests, vectors in input order."""
        self.needs(EMBEDDINGS)
        ref = self.ref_for(EMBEDDINGS)
        limits = _limits(self)
        count = limits.max_inputs + 1
        texts = [f"input number {i}" for i in range(count)]
        dimensions = 4 if limits.dimensions else None

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            whole = await client.embed(model=ref, input=texts, dimensions=dimensions)
            assert len(whole.vectors) == count
            assert len(server.model_requests) == 2
            first = await client.embed(model=ref, input=texts[0], dimensions=dimensions)
            last = await client.embed(model=ref, input=texts[-1], dimensions=dimensions)
            assert whole.vectors[0] == first.vectors[0], "input order"
            assert whole.vectors[-1] == last.vectors[0], "input order"
            assert whole.usage.input_tokens > first.usage.input_tokens

        self.run(scenario)

    def test_embeddings_dimensions(self: _Suite) -> None:
        """``dimensions`` shortens the vectors, or is refused before sending."""
        self.needs(EMBEDDINGS)
        ref = self.ref_for(EMBEDDINGS)
        limits = _limits(self)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            if not limits.dimensions:
                with pytest.raises(llmx.UnsupportedFeatureError):
                    await client.embed(model=ref, input=["x"], dimensions=8)
                assert not server.model_requests
                return
            response = await client.embed(model=ref, input=["a", "b"], dimensions=8)
            assert {len(v) for v in response.vectors} == {8}

        self.run(scenario)

    def test_embedding_errors_are_typed(self: _Suite) -> None:
        """A rate limit, a server error and a malformed body fail the call with the
        typed error chat gets; the usage of a reply is what the API reported."""
        self.needs(EMBEDDINGS)
        ref = self.ref_for(EMBEDDINGS)

        async def limited(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(server.error_for("rate_limit", retry_after=7))
            with pytest.raises(llmx.RateLimitError) as error:
                await client.embed(model=ref, input=["x"])
            assert error.value.retry_after == 7

        async def others(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(server.error_for("server"))
            with pytest.raises(llmx.ServerError):
                await client.embed(model=ref, input=["x"])
            server.enqueue(server.malformed_reply(stream=False))
            with pytest.raises(llmx.MalformedResponseError):
                await client.embed(model=ref, input=["x"])
            server.enqueue(Reply(usage=(42, 0)))
            assert (await client.embed(model=ref, input=["x"])).usage.input_tokens == 42

        self.run(limited)
        self.run(others)

    def test_embeddings_refused_before_sending_when_unsupported(self: _Suite) -> None:
        """Without the feature, ``Client.embed`` fails with UnsupportedFeatureError, unsent."""
        if EMBEDDINGS in self.supports:
            pytest.skip(f"{self.provider_type} makes embeddings")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            with pytest.raises(llmx.UnsupportedFeatureError) as refused:
                await client.embed(model=self.ref_for(), input=["x"])
            assert refused.value.feature == "embeddings"
            assert not server.model_requests

        self.run(scenario)

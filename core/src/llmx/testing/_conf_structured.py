"""The conformance kit's typed structured-output tests (``response_model=``), a mixin of
:class:`~llmx.testing.conformance.ProviderConformance`.

They belong to the ``json_schema`` feature (:attr:`Feature.JSON_SCHEMA`): ``response_model``
sends the schema derived from a class through the same :class:`~llmx.ResponseFormat` a
provider already renders, so a provider that supports JSON schemas supports typed
output with nothing more to write, and one that does not must refuse it before
sending. What each test checks: the schema arrives (in the vendor's strict form: the
fakes refuse what their vendor refuses), the reply is parsed into an instance, an
answer that fails validation is asked again with the errors in the next user turn
(counted in ``validation_retries``), one that never validates raises
:class:`~llmx.structured.StructuredOutputError` with the raw text, and a stream yields the JSON
text and then the instance.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
import pytest

import llmx
import llmx.structured
from llmx.testing._replies import Reply

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer

__all__ = ["Colour", "Pet", "StructuredOutputConformance"]


class Colour(enum.Enum):
    """A pet's colour."""

    BLACK = "black"
    WHITE = "white"


@attrs.frozen
class Owner:
    """Who keeps the pet."""

    name: str
    phone: str | None = None


@attrs.frozen
class Pet:
    """A pet, the response model of the structured-output tests."""

    name: str
    kind: Literal["cat", "dog"]
    age: int
    colour: Colour
    owner: Owner
    tags: list[str] = attrs.Factory(list)


GOOD = '{"name": "Tom", "kind": "cat", "age": 3, "colour": "black", "owner": {"name": "Ann"}}'
EXPECTED = Pet("Tom", "cat", 3, Colour.BLACK, Owner("Ann"))
BAD = '{"name": "Tom", "kind": "cow", "age": "three", "colour": "black", "owner": {"name": "Ann"}}'


class StructuredOutputConformance:
    """``response_model=`` through the provider (see the module docstring)."""

    # Provided by ProviderConformance (declared here for the type checker).
    if TYPE_CHECKING:
        supports: ClassVar[frozenset[str]]
        provider_type: ClassVar[str]

        @property
        def ref(self) -> str: ...

        def needs(self, *features: str) -> None: ...
        def ref_for(self, *features: str) -> str: ...
        def run(self, scenario: Any, **options: Any) -> Any: ...
        @staticmethod
        def view(server: FakeServer, index: int = -1) -> Any: ...

    def test_response_model_parsed(self) -> None:
        """The class's schema is sent (nested object, enum, optional fields) and the
        reply comes back as an instance in ``parsed``."""
        self.needs("json_schema")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply(GOOD))
            reply = await client.complete(
                model=self.ref_for("json_schema"), prompt="a pet?", response_model=Pet
            )
            assert reply.parsed == EXPECTED
            assert reply.validation_retries == 0
            schema = self.view(server).json_schema
            assert schema is not None, "no JSON schema reached the server"
            assert set(schema.get("properties", {})) == {
                "name",
                "kind",
                "age",
                "colour",
                "owner",
                "tags",
            }

        self.run(scenario)

    def test_response_model_reasks_with_the_errors(self) -> None:
        """An answer that fails validation is asked again: the reply and the errors go
        back as the next turns, and the second answer is the one parsed."""
        self.needs("json_schema")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply(BAD), Reply(GOOD))
            ref = self.ref_for("json_schema")
            reply = await client.complete(model=ref, prompt="a pet?", response_model=Pet)
            assert reply.parsed == EXPECTED
            assert reply.validation_retries == 1
            assert len(server.model_requests) == 2
            again = self.view(server, 1)
            assert again.turns[-2].role == "assistant"
            assert again.turns[-2].text == BAD
            assert "$.age: expected integer" in again.turns[-1].text
            assert "$.kind" in again.turns[-1].text
            assert again.json_schema is not None
            (stats,) = client.stats().models
            assert stats.validation_retries == 1
            assert stats.requests == 2

        self.run(scenario)

    def test_response_model_still_invalid(self) -> None:
        """With ``max_validation_retries=0`` one bad answer raises StructuredOutputError
        carrying the raw text and the errors."""
        self.needs("json_schema")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply(BAD))
            with pytest.raises(llmx.structured.StructuredOutputError) as info:
                await client.complete(
                    model=self.ref_for("json_schema"),
                    prompt="a pet?",
                    response_model=Pet,
                    max_validation_retries=0,
                )
            assert info.value.text == BAD
            assert any(e.startswith("$.age:") for e in info.value.errors)
            assert len(server.model_requests) == 1

        self.run(scenario)

    def test_response_model_streamed(self) -> None:
        """A stream yields the JSON text as it arrives; ``parsed()`` gives the instance."""
        self.needs("json_schema", "streaming")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply(GOOD, chunk_size=7))
            ref = self.ref_for("json_schema")
            async with client.stream(model=ref, prompt="a pet?", response_model=Pet) as stream:
                pieces = [piece async for piece in stream.text()]
                assert len(pieces) > 1
                assert "".join(pieces) == GOOD
                assert await stream.parsed() == EXPECTED
            assert self.view(server).stream is True

        self.run(scenario)

    def test_response_model_refused_without_json_schema(self) -> None:
        """A provider without JSON schemas refuses ``response_model`` before sending."""
        if "json_schema" in self.supports:
            pytest.skip(f"{self.provider_type} supports json_schema")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            with pytest.raises(llmx.UnsupportedFeatureError):
                await client.complete(model=self.ref, prompt="x", response_model=Pet)
            assert server.model_requests == []

        self.run(scenario)

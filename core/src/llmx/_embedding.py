"""The embedding value types: :class:`EmbeddingRequest`, :class:`EmbeddingResponse`, and
what a provider declares about its embeddings (:class:`EmbeddingLimits`).

A leaf module (it imports only :mod:`llmx._types`), so the engine's helpers can name
these types without an import cycle; the request path itself is :mod:`llmx._embed`.

Vectors are ``array.array("f")`` (float32), not lists of floats: 4 bytes per dimension
instead of a 24-byte Python float plus an 8-byte list slot (2,048 vectors of 1,536
dimensions: 12.6 MB instead of about 100 MB), decoded straight from a vendor's base64
bytes without creating a float object per number, and readable without a copy through
the buffer protocol (``numpy.frombuffer(v, dtype=numpy.float32)``, ``memoryview(v)``).
The vendors compute in float32 (OpenAI's base64 is float32), so nothing is lost; an
array behaves like a list of floats (``len``, indexing, iteration, ``list(v)``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs

from llmx._types import Attempt, Usage

__all__ = [
    "EmbeddingLimits",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingTask",
    "Vector",
]

Vector: TypeAlias = "array[float]"
"""One embedding: an ``array.array("f")`` of float32 numbers (see the module docstring)."""

EmbeddingTask = Literal["query", "document", "similarity", "classification", "clustering"]
"""What the vectors are for, for the providers that tune embeddings to a task (Gemini's
``taskType``: ``RETRIEVAL_QUERY``, ``RETRIEVAL_DOCUMENT``, ``SEMANTIC_SIMILARITY``,
``CLASSIFICATION``, ``CLUSTERING``); a hint the others ignore."""

_TASKS = frozenset(("query", "document", "similarity", "classification", "clustering"))


def _to_inputs(value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    inputs = tuple(value)
    for index, text in enumerate(inputs):
        if type(text) is not str:
            msg = f"input[{index}] is a {type(text).__name__}; embeddings take strings"
            raise TypeError(msg)
    return inputs


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class EmbeddingRequest:
    """One call for embeddings: ``input`` (one string or several) to ``model``.

    ``model`` is a model reference (``"openai/text-embedding-3-small"``) or an alias.
    ``dimensions`` asks for shorter vectors where the model can give them (OpenAI's
    ``dimensions``, Gemini's ``outputDimensionality``); a provider that cannot is
    refused before sending. ``task`` is a hint for providers that tune embeddings to a
    use (:data:`EmbeddingTask`). ``extra`` holds provider-specific request fields,
    passed through unchanged.
    """

    model: str
    input: tuple[str, ...] = attrs.field(converter=_to_inputs)
    dimensions: int | None = None
    task: EmbeddingTask | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen)

    def __attrs_post_init__(self) -> None:
        if not self.input:
            msg = "pass at least one input to embed"
            raise ValueError(msg)
        if self.dimensions is not None and (
            type(self.dimensions) is not int or self.dimensions < 1
        ):
            msg = f"dimensions must be a positive int, not {self.dimensions!r}"
            raise ValueError(msg)
        if self.task is not None and self.task not in _TASKS:
            msg = f"task must be one of {sorted(_TASKS)}, not {self.task!r}"
            raise ValueError(msg)

    def with_model(self, model: str) -> EmbeddingRequest:
        """The same request for another model (used when resolving refs and aliases)."""
        return EmbeddingRequest(model, self.input, self.dimensions, self.task, self.extra)

    def part(self, start: int, stop: int) -> EmbeddingRequest:
        """The same request for the inputs ``[start:stop]`` only (one batch of a split)."""
        return EmbeddingRequest(
            self.model, self.input[start:stop], self.dimensions, self.task, self.extra
        )


@attrs.frozen
class EmbeddingResponse:
    """Embeddings, and where and how they were obtained.

    ``vectors`` holds one :data:`Vector` per input, in input order. ``provider`` is the
    configured instance that answered, ``model`` the provider's model name, ``usage``
    the input tokens billed (summed over the batches a large request was split into;
    ``usage.estimated`` when the provider reported none), ``cost`` in USD at the
    model's input price, ``latency`` the seconds of the attempt that answered, and
    ``attempts`` every try. ``cached`` is True when the vectors came from the response
    cache (then ``attempts`` is empty and ``cost`` 0).
    """

    vectors: tuple[Vector, ...]
    model: str
    provider: str = ""
    usage: Usage = attrs.field(factory=Usage)
    latency: float = 0.0
    cost: float | None = None
    attempts: tuple[Attempt, ...] = ()
    cached: bool = attrs.field(default=False, kw_only=True)

    @property
    def dimensions(self) -> int:
        """The length of the vectors (0 when there are none)."""
        return len(self.vectors[0]) if self.vectors else 0


@attrs.frozen
class EmbeddingLimits:
    """What an :class:`~llmx.plugin.EmbeddingProvider` takes in one request.

    ``max_inputs``: the most inputs per request (OpenAI 2,048; Gemini's
    ``batchEmbedContents`` 100). ``max_tokens``: the most input tokens per request, if
    the API caps them (OpenAI 300,000), counted with a conservative estimate (a token
    per 3 UTF-8 bytes). The core splits a larger request into batches that fit, sends
    them (a few at a time) and puts the vectors back in input order.
    ``dimensions``: whether the provider can shorten vectors (``dimensions=``); when it
    cannot, such a request is refused before sending.
    """

    max_inputs: int
    max_tokens: int | None = None
    dimensions: bool = True

    def __attrs_post_init__(self) -> None:
        if self.max_inputs < 1 or (self.max_tokens is not None and self.max_tokens < 1):
            msg = f"embedding limits must be positive: {self!r}"
            raise ValueError(msg)

"""Embeddings on Gemini's ``POST models/{model}:batchEmbedContents``.

The wire: ``{"requests": [EmbedContentRequest, ...]}``, each ``{"model": "models/{m}",
"content": {"parts": [{"text"}]}, "taskType"?, "outputDimensionality"?}``, answered by
``{"embeddings": [{"values": [...]}], "usageMetadata"?: {"promptTokenCount"}}`` in
request order. One call takes at most 100 requests (the API's limit; the core splits
larger ones); each input at most 2,048 tokens, which the API enforces.

``EmbeddingRequest.task`` maps to ``taskType`` (``query`` -> ``RETRIEVAL_QUERY``,
``document`` -> ``RETRIEVAL_DOCUMENT``, ``similarity`` -> ``SEMANTIC_SIMILARITY``,
``classification``, ``clustering``); ``dimensions`` to ``outputDimensionality``. Usage is
``usageMetadata.promptTokenCount`` when the API sends it, else estimated (marked
``usage.estimated``).
"""

from __future__ import annotations

import json
from array import array
from typing import Any

from llmx import (
    Capability,
    EmbeddingResponse,
    MalformedResponseError,
    ModelInfo,
    Usage,
)
from llmx.plugin import EmbeddingLimits, EmbeddingRequest

__all__ = [
    "EMBEDDING_LIMITS",
    "EMBEDDING_MODELS",
    "TASK_TYPES",
    "build_embedding_body",
    "embedding_lookup",
    "parse_embeddings",
]

EMBEDDING_LIMITS = EmbeddingLimits(max_inputs=100, dimensions=True)
"""What one ``batchEmbedContents`` call takes: 100 requests."""

TASK_TYPES = {
    "query": "RETRIEVAL_QUERY",
    "document": "RETRIEVAL_DOCUMENT",
    "similarity": "SEMANTIC_SIMILARITY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
}
"""``EmbeddingRequest.task`` -> Gemini's ``taskType``."""


def _m(model_id: str, price: float) -> ModelInfo:
    # The context window is per input: the planner compares it with the longest input.
    return ModelInfo(
        model_id,
        context_window=2048,
        capabilities=(Capability.EMBEDDINGS,),
        input_price=price,
        output_price=0.0,
    )


EMBEDDING_MODELS: dict[str, ModelInfo] = {
    m.id: m for m in (_m("gemini-embedding-001", 0.15), _m("text-embedding-004", 0.0))
}
"""Gemini's embedding models: USD per million input tokens (paid tier)."""


def embedding_lookup(model: str) -> ModelInfo | None:
    """Facts about a Gemini embedding model (``models/`` prefix allowed; None if unknown)."""
    name = model.removeprefix("models/")
    info = EMBEDDING_MODELS.get(name)
    return info if info is None or name == model else info.renamed(model)


def build_embedding_body(request: EmbeddingRequest) -> dict[str, Any]:
    """The ``batchEmbedContents`` body of ``request``: one ``EmbedContentRequest`` per
    input; ``extra`` fields are added to each of them."""
    name = request.model if request.model.startswith("models/") else f"models/{request.model}"
    common: dict[str, Any] = {}
    if request.task is not None:
        common["taskType"] = TASK_TYPES[request.task]
    if request.dimensions is not None:
        common["outputDimensionality"] = request.dimensions
    common.update(request.extra)
    return {
        "requests": [
            {"model": name, "content": {"parts": [{"text": text}]}, **common}
            for text in request.input
        ]
    }


def _read(obj: Any, request: EmbeddingRequest) -> tuple[list[array[float]], Usage]:
    count = len(request.input)
    items = obj["embeddings"]
    if type(items) is not list or len(items) != count:
        msg = f"{len(items) if type(items) is list else 'no'} embeddings for {count} inputs"
        raise ValueError(msg)
    vectors = [array("f", item["values"]) for item in items]
    meta = obj.get("usageMetadata")
    if isinstance(meta, dict) and type(meta.get("promptTokenCount")) is int:
        usage = Usage(meta["promptTokenCount"], 0)
    else:
        usage = Usage(-(-sum(len(t) for t in request.input) // 4), 0, estimated=True)
    return vectors, usage


def parse_embeddings(
    data: bytes, request: EmbeddingRequest, provider: str, *, host: str = "the Gemini API"
) -> EmbeddingResponse:
    """The :class:`~llmx.EmbeddingResponse` of a ``batchEmbedContents`` answer."""
    try:
        vectors, usage = _read(json.loads(data), request)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        excerpt = data[:200].decode("utf-8", "replace")
        msg = f"unexpected embeddings answer from {host} ({err}): {excerpt!r}"
        raise MalformedResponseError(
            msg, provider=provider, model=request.model, status=200
        ) from err
    return EmbeddingResponse(tuple(vectors), request.model, provider, usage)

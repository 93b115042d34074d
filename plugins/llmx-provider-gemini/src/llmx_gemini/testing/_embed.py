"""``POST /v1beta/models/{model}:batchEmbedContents`` of the fake Gemini server.

Reproduces the ``models.batchEmbedContents`` reference: ``{"requests": [EmbedContentRequest]}``
answered by ``{"embeddings": [{"values": [...]}], "usageMetadata": {"promptTokenCount"}}``
in request order. The API's 400 answers: more than 100 requests
(``at most 100 requests can be in one batch``), a request whose ``model`` is not the
URL's, no text to embed, an unknown field (``Unknown name``), an unknown ``taskType``.

Vectors are :func:`llmx.testing.fake_embedding` of the model's real length (3,072 for
``gemini-embedding-001``, 768 for ``text-embedding-004``; 16 for a model it does not
know), or ``outputDimensionality``. A queued :class:`~llmx.testing.Reply` sets ``usage``
/ ``omit_usage`` / ``delay``; any other queued reply is answered as for
``generateContent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmx.testing import RecordedRequest, Reply, approx_tokens, fake_embedding

if TYPE_CHECKING:
    from aiohttp import web

    from llmx_gemini.testing._server import FakeGeminiServer

__all__ = ["EMBEDDING_DIMENSIONS", "MAX_REQUESTS", "answer_batch_embed"]

EMBEDDING_DIMENSIONS: dict[str, int] = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
"""Vector lengths of the models the fake knows (others: 16)."""

MAX_REQUESTS = 100

_FIELDS = frozenset(
    {"model", "content", "taskType", "title", "outputDimensionality", "embedContentConfig"}
)
_TASKS = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    }
)


def _text(content: Any) -> str | None:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return None
    texts = [p.get("text") for p in content["parts"] if isinstance(p, dict)]
    if not texts or not all(isinstance(t, str) for t in texts):
        return None
    return "".join(t for t in texts if isinstance(t, str))


async def answer_batch_embed(
    server: FakeGeminiServer, request: web.BaseRequest, recorded: RecordedRequest
) -> web.StreamResponse:
    """Answer a ``batchEmbedContents`` request."""
    model = server.model_of(recorded)
    body = recorded.json
    if not isinstance(body, dict):
        return await server.error(request, 400, "Invalid JSON payload received. Unexpected token.")
    for key in body:
        if key != "requests":
            message = f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
            return await server.error(request, 400, message)
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return await server.error(
            request, 400, "* BatchEmbedContentsRequest.requests: requests is not specified\n"
        )
    if len(requests) > MAX_REQUESTS:
        return await server.error(
            request,
            400,
            f"* BatchEmbedContentsRequest.requests: at most {MAX_REQUESTS} requests can be in one batch\n",
        )
    texts: list[str] = []
    dimensions = None
    for index, item in enumerate(requests):
        if not isinstance(item, dict):
            return await server.error(request, 400, "Invalid JSON payload received.")
        for key in item:
            if key not in _FIELDS:
                message = (
                    f'Invalid JSON payload received. Unknown name "{key}" at '
                    f"'requests[{index}]': Cannot find field."
                )
                return await server.error(request, 400, message)
        if item.get("model") != f"models/{model}":
            message = (
                f"Model names should be the same in the batch request and in "
                f"requests[{index}]: models/{model} vs {item.get('model')}"
            )
            return await server.error(request, 400, message)
        if "taskType" in item and item["taskType"] not in _TASKS:
            message = f"Invalid value at 'requests[{index}].task_type' ({item['taskType']!r})"
            return await server.error(request, 400, message)
        text = _text(item.get("content"))
        if not text:
            return await server.error(
                request,
                400,
                f"* BatchEmbedContentsRequest.requests[{index}].content: contents is not specified\n",
            )
        texts.append(text)
        dimensions = item.get("outputDimensionality", dimensions)
    reply = server.next_reply()
    if reply is not None and not isinstance(reply, Reply):
        return await server.answer(request, recorded, reply)
    if reply is not None:
        await server.sleep(reply.delay)
    length = dimensions if isinstance(dimensions, int) and dimensions > 0 else None
    length = length or EMBEDDING_DIMENSIONS.get(model, 16)
    payload: dict[str, Any] = {"embeddings": [{"values": fake_embedding(t, length)} for t in texts]}
    if reply is None or not reply.omit_usage:
        prompt = (
            reply.usage[0]
            if reply is not None and reply.usage
            else sum(approx_tokens(t) for t in texts)
        )
        payload["usageMetadata"] = {
            "promptTokenCount": prompt,
            "promptTokenDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
    return await server.json_response(request, 200, payload, headers=server.response_headers())

"""``POST /v1/embeddings`` of the fake OpenAI (and Azure) servers.

Reproduces OpenAI's "Create embeddings" reference: ``{"object": "list", "data": [{"object":
"embedding", "index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}``,
each vector as JSON numbers or, with ``encoding_format: "base64"``, as the base64 of its
little-endian float32 bytes; ``dimensions`` shortens the vectors (refused by
``text-embedding-ada-002``, as by OpenAI). The API's limits are enforced with its own
400 answers: at most 2,048 inputs, no empty input (``'$.input' is invalid``), at most
300,000 tokens per request (``max_tokens_per_request``).

Vectors are :func:`llmx.testing.fake_embedding` (texts sharing words are close), of the
model's real length (1,536 for ``text-embedding-3-small``; 16 for a model it does not
know). A queued :class:`~llmx.testing.Reply` sets ``usage`` / ``omit_usage`` /
``model`` / ``delay``; any other queued reply (errors, stalls, resets, raw bodies) is
answered as for chat.
"""

from __future__ import annotations

import base64
import struct
from typing import TYPE_CHECKING, Any

from llmx.testing import RecordedRequest, Reply, approx_tokens, fake_embedding

if TYPE_CHECKING:
    from aiohttp import web

    from llmx_openai.testing._openai import FakeOpenAIServer

__all__ = ["EMBEDDING_DIMENSIONS", "MAX_INPUTS", "MAX_TOKENS", "answer_embeddings"]

EMBEDDING_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
"""Vector lengths of the models the fake knows (others: 16)."""

MAX_INPUTS = 2048
MAX_TOKENS = 300_000
_INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: "
    "https://platform.openai.com/docs/api-reference."
)


def _encode(vector: list[float], encoding: Any) -> Any:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


async def answer_embeddings(
    server: FakeOpenAIServer,
    request: web.BaseRequest,
    recorded: RecordedRequest,
    *,
    model: str | None = None,
) -> web.StreamResponse:
    """Answer an embeddings request (``model``: the Azure deployment, else the body's)."""
    body = recorded.json
    if not isinstance(body, dict):
        return await server.error(request, 400, "We could not parse the JSON body of your request.")
    model = model or body.get("model")
    if not isinstance(model, str):
        return await server.error(request, 400, "you must provide a model parameter")
    inputs = body.get("input")
    if inputs is None:
        return await server.error(
            request, 400, "Missing required parameter: 'input'.", param="input"
        )
    if isinstance(inputs, str):
        inputs = [inputs]
    if (
        not isinstance(inputs, list)
        or not 1 <= len(inputs) <= MAX_INPUTS
        or not all(isinstance(t, str) and t for t in inputs)
    ):
        return await server.error(request, 400, _INVALID_INPUT)
    tokens = [approx_tokens(t) for t in inputs]
    if sum(tokens) > MAX_TOKENS:
        message = f"Requested {sum(tokens)} tokens, max {MAX_TOKENS} tokens per request"
        return await server.error(request, 400, message, code="max_tokens_per_request")
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if model == "text-embedding-ada-002":
            message = "This model does not support specifying dimensions."
            return await server.error(request, 400, message, param="dimensions")
        if not isinstance(dimensions, int) or dimensions < 1:
            return await server.error(request, 400, "Invalid 'dimensions'.", param="dimensions")
    reply = server.next_reply()
    if reply is not None and not isinstance(reply, Reply):
        return await server.answer(request, recorded, reply)
    if reply is not None:
        await server.sleep(reply.delay)
    length = dimensions or EMBEDDING_DIMENSIONS.get(model, 16)
    encoding = body.get("encoding_format")
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _encode(fake_embedding(t, length), encoding),
        }
        for i, t in enumerate(inputs)
    ]
    payload: dict[str, Any] = {
        "object": "list",
        "data": data,
        "model": (reply.model if reply is not None and reply.model else None) or model,
    }
    if reply is None or not reply.omit_usage:
        prompt = reply.usage[0] if reply is not None and reply.usage else sum(tokens)
        payload["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
    return await server.json_response(request, 200, payload, headers=server.response_headers())

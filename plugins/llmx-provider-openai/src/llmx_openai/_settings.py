"""The ``openai`` provider type's own keys in ``[providers.NAME]``."""

from __future__ import annotations

from typing import Literal

import attrs

from llmx import Secret

MaxTokensField = Literal["auto", "max_tokens", "max_completion_tokens"]
EmbeddingEncoding = Literal["auto", "base64", "float"]


@attrs.frozen
class OpenAISettings:
    """Keys of an ``openai`` instance besides the common ones (``base_url``, ``api_key``...).

    ``organization`` and ``project`` are sent as the ``OpenAI-Organization`` and
    ``OpenAI-Project`` headers. ``stream_usage`` asks for the final usage chunk of a
    stream (``stream_options.include_usage``); turn it off for servers that reject
    ``stream_options``. ``api_key_env`` names the environment variable read when no
    ``api_key`` is configured.

    ``max_tokens_field`` is the request field carrying ``max_tokens``. OpenAI deprecated
    ``max_tokens`` in favour of ``max_completion_tokens`` and its reasoning models (o1,
    o3, o4-mini, gpt-5) reject ``max_tokens``, while many OpenAI-compatible servers
    (older vLLM, llama.cpp, LM Studio, some gateways) only know ``max_tokens``. The
    default ``"auto"`` therefore sends ``max_completion_tokens`` to api.openai.com and
    ``max_tokens`` to every other base URL; set it explicitly to override.

    ``embedding_encoding`` is the ``encoding_format`` of embeddings requests: ``"auto"``
    asks api.openai.com for ``base64`` (float32 bytes, much faster to read) and other
    servers, not all of which implement base64, for ``float``.
    """

    organization: str | None = None
    project: str | None = None
    stream_usage: bool = True
    max_tokens_field: MaxTokensField = "auto"
    api_key_env: str = "OPENAI_API_KEY"
    embedding_encoding: EmbeddingEncoding = "auto"


@attrs.frozen
class AzureSettings:
    """Keys of an ``azure`` instance besides the common ones (``base_url``, ``api_key``...).

    ``base_url`` is the resource endpoint (``https://NAME.openai.azure.com``; default
    ``$AZURE_OPENAI_ENDPOINT``); the model name of a request is the *deployment* name
    (rename with ``models``). ``api_version`` is sent as the ``api-version`` query
    parameter. Authenticate with ``api_key`` (sent as ``api-key``; default
    ``$AZURE_OPENAI_API_KEY``, see ``api_key_env``) or with ``token``, a Microsoft Entra
    ID access token (``{ env = "..." }``), sent as ``Authorization: Bearer``.
    ``stream_usage`` asks for the usage chunk of a stream (``stream_options``);
    ``max_tokens_field`` is the request field carrying ``max_tokens`` (``"auto"``:
    ``max_completion_tokens`` from api-version 2024-09-01 on, which the o-series
    deployments require, else ``max_tokens``). ``embedding_encoding``: the
    ``encoding_format`` of embeddings requests (``"auto"``: ``base64``).
    """

    api_version: str = "2024-10-21"
    token: Secret | None = None
    stream_usage: bool = True
    max_tokens_field: MaxTokensField = "auto"
    api_key_env: str = "AZURE_OPENAI_API_KEY"
    embedding_encoding: EmbeddingEncoding = "auto"


@attrs.frozen
class ResponsesSettings:
    """Keys of an ``openai-responses`` instance besides the common ones (``base_url``...).

    ``organization``, ``project`` and ``api_key_env`` are the ``openai`` type's.

    ``store`` is sent with every request: false (the default) keeps nothing on OpenAI's
    side, so every request carries the whole conversation, as with Chat Completions;
    true stores each response, which a later request can continue with
    ``extra={"previous_response_id": response.id}`` instead of resending the history
    (docs/features/responses-api.md).

    ``encrypted_reasoning`` asks for ``include: ["reasoning.encrypted_content"]``, the
    reasoning items a stateless conversation (store false) sends back on its next turn:
    ``"auto"`` for reasoning models (o-series, gpt-5) and requests that set
    ``reasoning=``, when ``store`` is false,
    ``"always"`` or ``"never"`` otherwise (other models refuse the include).

    ``count_tokens``: whether ``client.count_tokens`` asks ``POST /responses/input_tokens``
    (exact) or answers with llmx's estimate. None (the default): the endpoint, except
    on Azure OpenAI's v1 API (a ``base_url`` on ``*.openai.azure.com`` or ending in
    ``/openai/v1``), which does not serve it; false for a gateway without it.
    """

    organization: str | None = None
    project: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    store: bool = False
    encrypted_reasoning: Literal["auto", "always", "never"] = "auto"
    count_tokens: bool | None = None

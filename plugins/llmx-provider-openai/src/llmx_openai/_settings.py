"""The ``openai`` provider type's own keys in ``[providers.NAME]``."""

from __future__ import annotations

from typing import Literal

import attrs

MaxTokensField = Literal["auto", "max_tokens", "max_completion_tokens"]


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
    """

    organization: str | None = None
    project: str | None = None
    stream_usage: bool = True
    max_tokens_field: MaxTokensField = "auto"
    api_key_env: str = "OPENAI_API_KEY"

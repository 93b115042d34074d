"""The ``anthropic`` provider type's own keys in ``[providers.NAME]``."""

from __future__ import annotations

import attrs


@attrs.frozen
class AnthropicSettings:
    """Keys of an ``anthropic`` instance besides the common ones (``base_url``, ``api_key``...).

    ``version`` is sent as the ``anthropic-version`` header (the API version the wire
    format is pinned to). ``beta`` lists feature flags sent as ``anthropic-beta``.
    ``default_max_tokens`` is sent when a request sets no ``max_tokens`` (the Messages
    API requires it); unset, it is the model's output limit capped at 8192 tokens
    (4096 for unknown models). ``api_key_env`` names the environment variable read
    when no ``api_key`` is configured.
    """

    version: str = "2023-06-01"
    beta: tuple[str, ...] = ()
    default_max_tokens: int | None = None
    api_key_env: str = "ANTHROPIC_API_KEY"

    def __attrs_post_init__(self) -> None:
        if self.default_max_tokens is not None and self.default_max_tokens < 1:
            msg = "default_max_tokens must be at least 1"
            raise ValueError(msg)

"""The ``gemini`` provider type's own keys in ``[providers.NAME]``."""

from __future__ import annotations

import attrs


@attrs.frozen
class GeminiSettings:
    """Keys of a ``gemini`` instance besides the common ones (``base_url``, ``api_key``...).

    ``api_key_env`` names the environment variable read when no ``api_key`` is
    configured (``GOOGLE_API_KEY`` is tried after it, as Google's SDK does).
    ``safety_settings`` is sent as ``safetySettings``: ``{category: threshold}``, e.g.
    ``{ HARM_CATEGORY_HARASSMENT = "BLOCK_ONLY_HIGH" }``.
    """

    api_key_env: str = "GEMINI_API_KEY"
    safety_settings: dict[str, str] = attrs.field(factory=dict)

"""llmx plugin: the ``gemini`` provider type (Google's Gemini API, ``generateContent``).

Registered through the ``llmx`` entry point ``gemini = "llmx_gemini"``; configure an
instance with ``type = "gemini"`` in ``[providers.NAME]``. Importing this module is
cheap: the provider (and aiohttp) load when the registry asks for the provider type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmx.plugin import hookimpl
from llmx_gemini._settings import GeminiSettings

if TYPE_CHECKING:
    from llmx.plugin import Register
    from llmx_gemini._provider import DEFAULT_BASE_URL, GeminiProvider

__all__ = [
    "DEFAULT_BASE_URL",
    "GeminiProvider",
    "GeminiSettings",
    "llmx_contract",
    "llmx_register_providers",
]
__version__ = "0.1.0"

llmx_contract = "1.0"
"""The llmx plugin contract version this plugin was written for."""


@hookimpl
def llmx_register_providers(register: Register) -> None:
    """Register the ``gemini`` provider type with its settings class."""
    from llmx_gemini._provider import GeminiProvider

    register("gemini", GeminiProvider, settings=GeminiSettings)


def __getattr__(name: str) -> Any:
    if name in ("GeminiProvider", "DEFAULT_BASE_URL"):
        from llmx_gemini import _provider

        return getattr(_provider, name)
    msg = f"module 'llmx_gemini' has no attribute {name!r}"
    raise AttributeError(msg)

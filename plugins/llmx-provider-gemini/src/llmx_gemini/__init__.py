"""llmx plugin: the ``gemini`` provider type (Google's Gemini API, ``generateContent``).

Registered through the ``llmx`` entry point ``gemini = "llmx_gemini"``; configure an
instance with ``type = "gemini"`` in ``[providers.NAME]``. Importing this module is
cheap: the provider (and aiohttp) load when the registry asks for the provider type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx.plugin import hookimpl, lazy_exports
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


_LAZY = {
    "GeminiProvider": "llmx_gemini._provider",
    "DEFAULT_BASE_URL": "llmx_gemini._provider",
}

# Only __getattr__: pluggy finds the hook implementations above with dir(module).
__getattr__ = lazy_exports(__name__, _LAZY, globals())[0]

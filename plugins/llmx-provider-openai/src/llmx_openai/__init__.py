"""llmx plugin: the ``openai`` provider type (OpenAI Chat Completions and compatible servers).

Registered through the ``llmx`` entry point ``openai = "llmx_openai"``; configure an
instance with ``type = "openai"`` in ``[providers.NAME]``. Importing this module is
cheap: the provider (and aiohttp) load when the registry asks for the provider type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import llmx
from llmx_openai._settings import OpenAISettings

if TYPE_CHECKING:
    from llmx_openai._provider import DEFAULT_BASE_URL, OpenAIProvider

__all__ = [
    "DEFAULT_BASE_URL",
    "OpenAIProvider",
    "OpenAISettings",
    "llmx_contract",
    "llmx_register_providers",
]
__version__ = "0.1.0"

llmx_contract = "1.0"
"""The llmx plugin contract version this plugin was written for."""


@llmx.hookimpl
def llmx_register_providers(register: llmx.Register) -> None:
    """Register the ``openai`` provider type with its settings class."""
    from llmx_openai._provider import OpenAIProvider

    register("openai", OpenAIProvider, settings=OpenAISettings)


def __getattr__(name: str) -> Any:
    if name in ("OpenAIProvider", "DEFAULT_BASE_URL"):
        from llmx_openai import _provider

        return getattr(_provider, name)
    msg = f"module 'llmx_openai' has no attribute {name!r}"
    raise AttributeError(msg)

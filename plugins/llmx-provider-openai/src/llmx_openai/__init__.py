"""llmx plugin: the ``openai``, ``azure`` and ``openai-responses`` provider types (OpenAI
Chat Completions, OpenAI-compatible servers, Azure OpenAI, and OpenAI's Responses API).

Registered through the ``llmx`` entry points ``openai``, ``azure`` and
``openai-responses`` (all ``"llmx_openai"``); configure an instance with
``type = "openai"``, ``"azure"`` or ``"openai-responses"`` in ``[providers.NAME]``. Importing this module is cheap: the
providers (and aiohttp) load when the registry asks for a provider type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx.plugin import hookimpl, lazy_exports
from llmx_openai._settings import AzureSettings, OpenAISettings, ResponsesSettings

if TYPE_CHECKING:
    from llmx.plugin import Register
    from llmx_openai._azure import AzureOpenAIProvider
    from llmx_openai._provider import DEFAULT_BASE_URL, OpenAIProvider
    from llmx_openai._responses import OpenAIResponsesProvider

__all__ = [
    "DEFAULT_BASE_URL",
    "AzureOpenAIProvider",
    "AzureSettings",
    "OpenAIProvider",
    "OpenAIResponsesProvider",
    "OpenAISettings",
    "ResponsesSettings",
    "llmx_contract",
    "llmx_register_providers",
]
__version__ = "0.1.0"

llmx_contract = "1.0"
"""The llmx plugin contract version this plugin was written for."""


@hookimpl
def llmx_register_providers(register: Register) -> None:
    """Register the ``openai``, ``azure`` and ``openai-responses`` provider types with
    their settings classes."""
    from llmx_openai._azure import AzureOpenAIProvider
    from llmx_openai._provider import OpenAIProvider
    from llmx_openai._responses import OpenAIResponsesProvider

    register("openai", OpenAIProvider, settings=OpenAISettings)
    register("azure", AzureOpenAIProvider, settings=AzureSettings)
    register("openai-responses", OpenAIResponsesProvider, settings=ResponsesSettings)


_LAZY = {
    "OpenAIProvider": "llmx_openai._provider",
    "DEFAULT_BASE_URL": "llmx_openai._provider",
    "AzureOpenAIProvider": "llmx_openai._azure",
    "OpenAIResponsesProvider": "llmx_openai._responses",
}

# Only __getattr__: pluggy finds the hook implementations above with dir(module).
__getattr__ = lazy_exports(__name__, _LAZY, globals())[0]

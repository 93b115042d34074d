"""llmx plugin: the ``anthropic`` provider type (Anthropic's Messages API, Claude models).

Registered through the ``llmx`` entry point ``anthropic = "llmx_anthropic"``; configure
an instance with ``type = "anthropic"`` in ``[providers.NAME]``. Importing this module
is cheap: the provider (and aiohttp) load when the registry asks for the provider type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx.plugin import hookimpl, lazy_exports
from llmx_anthropic._settings import AnthropicSettings

if TYPE_CHECKING:
    from llmx.plugin import Register
    from llmx_anthropic._provider import DEFAULT_BASE_URL, AnthropicProvider

__all__ = [
    "DEFAULT_BASE_URL",
    "AnthropicProvider",
    "AnthropicSettings",
    "llmx_contract",
    "llmx_register_providers",
]
__version__ = "0.1.0"

llmx_contract = "1.0"
"""The llmx plugin contract version this plugin was written for."""


@hookimpl
def llmx_register_providers(register: Register) -> None:
    """Register the ``anthropic`` provider type with its settings class."""
    from llmx_anthropic._provider import AnthropicProvider

    register("anthropic", AnthropicProvider, settings=AnthropicSettings)


_LAZY = {
    "AnthropicProvider": "llmx_anthropic._provider",
    "DEFAULT_BASE_URL": "llmx_anthropic._provider",
}

# Only __getattr__: pluggy finds the hook implementations above with dir(module).
__getattr__ = lazy_exports(__name__, _LAZY, globals())[0]

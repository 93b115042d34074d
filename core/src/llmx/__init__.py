"""llmx: one fast, async Python API over every LLM provider, as a minimal core plus plugins.

::

    import llmx

    async with llmx.Client() as client:          # reads llmx.toml / [tool.llmx] / LLMX_*
        reply = await client.complete(model="openai/gpt-4o-mini", prompt="Hello")
        print(reply.text, reply.usage, reply.cost)

This namespace holds what an application needs: the clients, the value types, the
errors and the configuration. Writing a plugin (a provider, a cache backend, a routing
strategy, event hooks)? Its contract lives in :mod:`llmx.plugin`; the value types and
errors are the same objects in both. Names needed only in annotations (``Role``,
``Part``, ``StreamChunk``, ``FinishReason``, ``CacheMode``, ``HealthStatus``) are in :mod:`llmx.types`,
and those of typed structured output in :mod:`llmx.structured`.

``import llmx`` is cheap: names are imported from their private modules on first use,
and aiohttp, cattrs and the CLI are imported only when a request, a conversion or a
command needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from llmx._lazy import lazy_exports
from llmx._version import VERSION

__version__ = VERSION
"""The version of the ``llmx`` distribution."""

_EXPORTS: dict[str, str] = {
    # clients
    "Client": "llmx._client",
    "SyncClient": "llmx._sync",
    "Stream": "llmx._stream",
    "Registry": "llmx._registry",
    # configuration
    "Config": "llmx._config",
    "ProviderConfig": "llmx._config",
    "load_config": "llmx._config",
    "Secret": "llmx._secret",
    "CachePolicy": "llmx._settings",
    # what a client reports
    "Stats": "llmx._stats",
    # value types
    "Message": "llmx._types",
    "Text": "llmx._types",
    "CacheControl": "llmx._types",
    "Image": "llmx._types",
    "Document": "llmx._types",
    "Audio": "llmx._types",
    "ToolCall": "llmx._types",
    "ToolResult": "llmx._types",
    "Tool": "llmx._types",
    "ToolChoice": "llmx._types",
    "ResponseFormat": "llmx._types",
    "Request": "llmx._types",
    "Response": "llmx._types",
    "EmbeddingResponse": "llmx._embedding",
    "Usage": "llmx._types",
    "ProviderBatchReport": "llmx._provider_batch",
    "Attempt": "llmx._types",
    "TextDelta": "llmx._types",
    "ToolCallDelta": "llmx._types",
    "StreamEnd": "llmx._types",
    "ModelInfo": "llmx._types",
    "Capability": "llmx._types",
    # reasoning (issue 15, item 1)
    "Reasoning": "llmx._types",
    "ReasoningDelta": "llmx._types",
    # n > 1, logprobs and refusals (issue 15, item 7)
    # (TokenLogprob, LogprobsDelta and RefusalDelta live in llmx.types: the
    # namespace stays within 60 names)
    # errors
    "LlmxError": "llmx._errors",
    "ConfigError": "llmx._errors",
    "ClientClosedError": "llmx._errors",
    "UnsupportedFeatureError": "llmx._errors",
    "PluginError": "llmx._errors",
    "PluginNotInstalledError": "llmx._errors",
    "PluginLoadError": "llmx._errors",
    "PluginConflictError": "llmx._errors",
    "PluginIncompatibleError": "llmx._errors",
    "ProviderError": "llmx._errors",
    "AuthenticationError": "llmx._errors",
    "PermissionDeniedError": "llmx._errors",
    "ModelNotFoundError": "llmx._errors",
    "BadRequestError": "llmx._errors",
    "ContextWindowExceededError": "llmx._errors",
    "ContentFilterError": "llmx._errors",
    "ConflictError": "llmx._errors",
    "RateLimitError": "llmx._errors",
    "ProviderTimeoutError": "llmx._errors",
    "ProviderConnectionError": "llmx._errors",
    "ServerError": "llmx._errors",
    "MalformedResponseError": "llmx._errors",
    "AllCandidatesFailedError": "llmx._errors",
    "CircuitOpenError": "llmx._errors",
    "DeadlineExceededError": "llmx._errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def _hint(name: str) -> str:
    if name.startswith("_") or name in ("plugin", "types"):
        return ""
    if name in _namespace("llmx.types"):
        return f"; it is a name for annotations: from llmx.types import {name}"
    if name in _namespace("llmx.plugin"):
        return f"; it is part of the plugin-author API: from llmx.plugin import {name}"
    return ""


def _namespace(module: str) -> list[str]:
    """``module.__all__`` (``llmx.plugin``, ``llmx.types``), for the hint above. ``from llmx
    import hookspecs`` asks this module's ``__getattr__`` first, so it is skipped for
    private names and the namespaces themselves (importing one by its full name never
    comes back here)."""
    return importlib.import_module(module).__all__  # type: ignore[no-any-return]


__getattr__, _ = lazy_exports("llmx", _EXPORTS, globals(), hint=_hint)


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from llmx._client import Client as Client
    from llmx._config import Config as Config
    from llmx._config import ProviderConfig as ProviderConfig
    from llmx._config import load_config as load_config
    from llmx._embedding import EmbeddingResponse as EmbeddingResponse
    from llmx._errors import AllCandidatesFailedError as AllCandidatesFailedError
    from llmx._errors import AuthenticationError as AuthenticationError
    from llmx._errors import BadRequestError as BadRequestError
    from llmx._errors import CircuitOpenError as CircuitOpenError
    from llmx._errors import ClientClosedError as ClientClosedError
    from llmx._errors import ConfigError as ConfigError
    from llmx._errors import ConflictError as ConflictError
    from llmx._errors import ContentFilterError as ContentFilterError
    from llmx._errors import ContextWindowExceededError as ContextWindowExceededError
    from llmx._errors import DeadlineExceededError as DeadlineExceededError
    from llmx._errors import LlmxError as LlmxError
    from llmx._errors import MalformedResponseError as MalformedResponseError
    from llmx._errors import ModelNotFoundError as ModelNotFoundError
    from llmx._errors import PermissionDeniedError as PermissionDeniedError
    from llmx._errors import PluginConflictError as PluginConflictError
    from llmx._errors import PluginError as PluginError
    from llmx._errors import PluginIncompatibleError as PluginIncompatibleError
    from llmx._errors import PluginLoadError as PluginLoadError
    from llmx._errors import PluginNotInstalledError as PluginNotInstalledError
    from llmx._errors import ProviderConnectionError as ProviderConnectionError
    from llmx._errors import ProviderError as ProviderError
    from llmx._errors import ProviderTimeoutError as ProviderTimeoutError
    from llmx._errors import RateLimitError as RateLimitError
    from llmx._errors import ServerError as ServerError
    from llmx._errors import UnsupportedFeatureError as UnsupportedFeatureError
    from llmx._provider_batch import ProviderBatchReport as ProviderBatchReport
    from llmx._registry import Registry as Registry
    from llmx._secret import Secret as Secret
    from llmx._settings import CachePolicy as CachePolicy
    from llmx._stats import Stats as Stats
    from llmx._stream import Stream as Stream
    from llmx._sync import SyncClient as SyncClient
    from llmx._types import Attempt as Attempt
    from llmx._types import Audio as Audio
    from llmx._types import CacheControl as CacheControl
    from llmx._types import Capability as Capability
    from llmx._types import Document as Document
    from llmx._types import Image as Image
    from llmx._types import Message as Message
    from llmx._types import ModelInfo as ModelInfo
    from llmx._types import Reasoning as Reasoning
    from llmx._types import ReasoningDelta as ReasoningDelta
    from llmx._types import Request as Request
    from llmx._types import Response as Response
    from llmx._types import ResponseFormat as ResponseFormat
    from llmx._types import StreamEnd as StreamEnd
    from llmx._types import Text as Text
    from llmx._types import TextDelta as TextDelta
    from llmx._types import Tool as Tool
    from llmx._types import ToolCall as ToolCall
    from llmx._types import ToolCallDelta as ToolCallDelta
    from llmx._types import ToolChoice as ToolChoice
    from llmx._types import ToolResult as ToolResult
    from llmx._types import Usage as Usage

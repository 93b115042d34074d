"""Testing helpers of llmx-provider-openai: fakes of OpenAI's and Azure OpenAI's APIs.

* :class:`FakeOpenAIServer`: OpenAI's Chat Completions and Models API on 127.0.0.1,
  speaking its exact wire format (JSON and SSE); :class:`OpenAIQuirks` makes it behave
  like the OpenAI-compatible servers that deviate from it (vLLM, Ollama, LiteLLM, ...).
* :class:`FakeAzureOpenAIServer`: an Azure OpenAI resource (deployments in the URL,
  ``api-version``, content-filter results, Azure's error bodies).

Both are :class:`llmx.testing.FakeServer` subclasses, scripted with the kit's reply
types (:class:`llmx.testing.Reply`, :class:`llmx.testing.ErrorReply`, ...), so any code
that speaks the OpenAI protocol can be tested against them. The pytest plugin (installed
with this distribution) provides the fixtures ``fake_openai`` and ``fake_azure_openai``.

Importing this package is cheap: each fake (and aiohttp) is imported on first use, so
the pytest plugin costs nothing in test sessions that do not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx.plugin import lazy_exports

_EXPORTS: dict[str, str] = {
    "FakeOpenAIServer": "llmx_openai.testing._openai",
    "OpenAIQuirks": "llmx_openai.testing._openai",
    "FakeAzureOpenAIServer": "llmx_openai.testing._azure",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from llmx_openai.testing._azure import FakeAzureOpenAIServer as FakeAzureOpenAIServer
    from llmx_openai.testing._openai import FakeOpenAIServer as FakeOpenAIServer
    from llmx_openai.testing._openai import OpenAIQuirks as OpenAIQuirks

"""llmx's testing kit, for llmx itself and for third-party plugin authors.

* :class:`ScriptedProvider`, :func:`scripted_plugin`, :func:`scripted_client`: a
  provider answering from a script, in memory, for unit tests of code built on llmx.
* :class:`FakeOpenAIServer`: a local HTTP server speaking OpenAI's exact Chat
  Completions wire format (JSON and SSE), scripted per request with :class:`Reply`,
  :class:`ErrorReply`, :class:`RawReply`, :class:`MidStreamError` and :class:`Stall`,
  including wire faults (split TCP reads, dropped connections, missing ``[DONE]``).
  :class:`FakeServer` is the base class for fakes of other providers.
* A pytest plugin (installed with llmx) providing the ``fake_openai`` and
  ``scripted_provider`` fixtures.

``import llmx`` never imports this package; importing it is cheap, and aiohttp is
imported only when a fake server starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ScriptedProvider": "llmx.testing._scripted",
    "ScriptedPlugin": "llmx.testing._scripted",
    "ScriptItem": "llmx.testing._scripted",
    "scripted_plugin": "llmx.testing._scripted",
    "scripted_client": "llmx.testing._scripted",
    "FakeServer": "llmx.testing._server",
    "Handler": "llmx.testing._server",
    "RecordedRequest": "llmx.testing._server",
    "FakeOpenAIServer": "llmx.testing._openai",
    "Reply": "llmx.testing._replies",
    "ErrorReply": "llmx.testing._replies",
    "RawReply": "llmx.testing._replies",
    "MidStreamError": "llmx.testing._replies",
    "Stall": "llmx.testing._replies",
    "ReplyItem": "llmx.testing._replies",
    "approx_tokens": "llmx.testing._replies",
}

__all__ = [
    "ErrorReply",
    "FakeOpenAIServer",
    "FakeServer",
    "Handler",
    "MidStreamError",
    "RawReply",
    "RecordedRequest",
    "Reply",
    "ReplyItem",
    "ScriptItem",
    "ScriptedPlugin",
    "ScriptedProvider",
    "Stall",
    "approx_tokens",
    "scripted_client",
    "scripted_plugin",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'llmx.testing' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from llmx.testing._openai import FakeOpenAIServer
    from llmx.testing._replies import (
        ErrorReply,
        MidStreamError,
        RawReply,
        Reply,
        ReplyItem,
        Stall,
        approx_tokens,
    )
    from llmx.testing._scripted import (
        ScriptedPlugin,
        ScriptedProvider,
        ScriptItem,
        scripted_client,
        scripted_plugin,
    )
    from llmx.testing._server import FakeServer, Handler, RecordedRequest

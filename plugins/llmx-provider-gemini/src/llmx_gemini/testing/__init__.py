"""Testing helpers of llmx-provider-gemini: a fake of the Gemini API.

:class:`FakeGeminiServer` serves the Gemini API's ``generateContent``,
``streamGenerateContent`` and models endpoints on 127.0.0.1, speaking its exact wire
format. It is a :class:`llmx.testing.FakeServer` subclass scripted with the kit's reply
types (:class:`llmx.testing.Reply`, :class:`llmx.testing.ErrorReply`, ...). The pytest
plugin (installed with this distribution) provides the fixture ``fake_gemini``.

Importing this package is cheap: each fake (and aiohttp) is imported on first use, so
the pytest plugin costs nothing in test sessions that do not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx.plugin import lazy_exports

_EXPORTS: dict[str, str] = {
    "FakeGeminiServer": "llmx_gemini.testing._server",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from llmx_gemini.testing._server import FakeGeminiServer as FakeGeminiServer

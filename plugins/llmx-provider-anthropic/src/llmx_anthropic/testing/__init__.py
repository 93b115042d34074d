"""Testing helpers of llmx-provider-anthropic: a fake of Anthropic's Messages API.

:class:`FakeAnthropicServer` serves Anthropic's Messages and Models API on 127.0.0.1,
speaking its exact wire format (JSON and named SSE events). It is a
:class:`llmx.testing.FakeServer` subclass scripted with the kit's reply types
(:class:`llmx.testing.Reply`, :class:`llmx.testing.ErrorReply`, ...). The pytest plugin
(installed with this distribution) provides the fixture ``fake_anthropic``.

Importing this package is cheap: each fake (and aiohttp) is imported on first use, so
the pytest plugin costs nothing in test sessions that do not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx.plugin import lazy_exports

_EXPORTS: dict[str, str] = {
    "FakeAnthropicServer": "llmx_anthropic.testing._server",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from llmx_anthropic.testing._server import FakeAnthropicServer as FakeAnthropicServer

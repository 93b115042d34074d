"""pytest fixtures of llmx-provider-gemini: a fake Gemini server.

Installed with the distribution (entry point ``pytest11: llmx_gemini``). Importing it is
cheap: the fake (and aiohttp) load only when a test asks for the fixture.

* ``fake_gemini``: a started :class:`~llmx_gemini.testing.FakeGeminiServer` running in a
  background thread with its own event loop, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmx_gemini.testing import FakeGeminiServer


@pytest.fixture
def fake_gemini() -> Iterator[FakeGeminiServer]:
    """A fake Gemini server on 127.0.0.1 in a background thread, for one test."""
    from llmx_gemini.testing import FakeGeminiServer

    with FakeGeminiServer().in_thread() as server:
        yield server

"""pytest fixtures of llmx-provider-anthropic: a fake Anthropic server.

Installed with the distribution (entry point ``pytest11: llmx_anthropic``). Importing it
is cheap: the fake (and aiohttp) load only when a test asks for the fixture.

* ``fake_anthropic``: a started :class:`~llmx_anthropic.testing.FakeAnthropicServer`
  running in a background thread with its own event loop, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmx_anthropic.testing import FakeAnthropicServer


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    """A fake Anthropic server on 127.0.0.1 in a background thread, for one test."""
    from llmx_anthropic.testing import FakeAnthropicServer

    with FakeAnthropicServer().in_thread() as server:
        yield server

"""pytest fixtures of llmx-provider-openai: fake OpenAI and Azure OpenAI servers.

Installed with the distribution (entry point ``pytest11: llmx_openai``). Importing it is
cheap: the fakes (and aiohttp) load only when a test asks for a fixture.

* ``fake_openai``: a started :class:`~llmx_openai.testing.FakeOpenAIServer` running in a
  background thread with its own event loop (usable from sync and async tests, and by
  subprocesses via ``fake_openai.base_url``), stopped after the test.
* ``fake_azure_openai``: the same for :class:`~llmx_openai.testing.FakeAzureOpenAIServer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI server on 127.0.0.1 in a background thread, for one test."""
    from llmx_openai.testing import FakeOpenAIServer

    with FakeOpenAIServer().in_thread() as server:
        yield server


@pytest.fixture
def fake_azure_openai() -> Iterator[FakeAzureOpenAIServer]:
    """A fake Azure OpenAI resource on 127.0.0.1 in a background thread, for one test."""
    from llmx_openai.testing import FakeAzureOpenAIServer

    with FakeAzureOpenAIServer().in_thread() as server:
        yield server

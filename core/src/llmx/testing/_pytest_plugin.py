"""llmx's pytest plugin (entry point ``pytest11: llmx``): fixtures of the testing kit.

Installed with llmx, so plugin authors get the fixtures without any set-up. Importing
it is cheap: the kit's modules (and aiohttp) load only when a fixture is used.

* ``fake_openai``: a started :class:`~llmx.testing.FakeOpenAIServer` running in a
  background thread with its own event loop (usable from sync and async tests, and by
  subprocesses via ``fake_openai.base_url``), stopped after the test.
* ``fake_anthropic``, ``fake_gemini``, ``fake_azure_openai``: the same for
  :class:`~llmx.testing.FakeAnthropicServer`, :class:`~llmx.testing.FakeGeminiServer`
  and :class:`~llmx.testing.FakeAzureOpenAIServer`.
* ``scripted_provider``: a fresh, empty :class:`~llmx.testing.ScriptedProvider`; give
  it answers with ``.enqueue(...)`` and a client with
  ``llmx.testing.scripted_client(scripted_provider)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmx.testing._anthropic import FakeAnthropicServer
    from llmx.testing._azure import FakeAzureOpenAIServer
    from llmx.testing._gemini import FakeGeminiServer
    from llmx.testing._openai import FakeOpenAIServer
    from llmx.testing._scripted import ScriptedProvider


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI server on 127.0.0.1 in a background thread, for one test."""
    from llmx.testing._openai import FakeOpenAIServer

    with FakeOpenAIServer().in_thread() as server:
        yield server


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    """A fake Anthropic server on 127.0.0.1 in a background thread, for one test."""
    from llmx.testing._anthropic import FakeAnthropicServer

    with FakeAnthropicServer().in_thread() as server:
        yield server


@pytest.fixture
def fake_gemini() -> Iterator[FakeGeminiServer]:
    """A fake Gemini server on 127.0.0.1 in a background thread, for one test."""
    from llmx.testing._gemini import FakeGeminiServer

    with FakeGeminiServer().in_thread() as server:
        yield server


@pytest.fixture
def fake_azure_openai() -> Iterator[FakeAzureOpenAIServer]:
    """A fake Azure OpenAI resource on 127.0.0.1 in a background thread, for one test."""
    from llmx.testing._azure import FakeAzureOpenAIServer

    with FakeAzureOpenAIServer().in_thread() as server:
        yield server


@pytest.fixture
def scripted_provider() -> ScriptedProvider:
    """An empty scripted provider (it echoes until given answers with ``enqueue``)."""
    from llmx.testing._scripted import ScriptedProvider

    return ScriptedProvider()

"""llmx's pytest plugin (entry point ``pytest11: llmx``): fixtures of the testing kit.

Installed with llmx, so plugin authors get the fixtures without any set-up. Importing
it is cheap: the kit's modules (and aiohttp) load only when a fixture is used.

* ``scripted_provider``: a fresh, empty :class:`~llmx.testing.ScriptedProvider`; give
  it answers with ``.enqueue(...)`` and a client with
  ``llmx.testing.scripted_client(scripted_provider)``.

The fixtures with fakes of vendors' APIs (``fake_openai``, ``fake_azure_openai``,
``fake_anthropic``, ``fake_gemini``) come with the provider distributions, from their
own pytest plugins (``llmx_openai.testing`` and so on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmx.testing._scripted import ScriptedProvider


@pytest.fixture
def scripted_provider() -> ScriptedProvider:
    """An empty scripted provider (it echoes until given answers with ``enqueue``)."""
    from llmx.testing._scripted import ScriptedProvider

    return ScriptedProvider()

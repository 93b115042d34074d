"""Fixtures for the openai provider's tests: a fake OpenAI server on 127.0.0.1 (in the
test's loop) and llmx clients configured against it. Every test talks real HTTP to the
fake; nothing of the provider is patched."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

import llmx
from llmx_openai.testing import FakeOpenAIServer

KEY = "test-key"
MODEL = "fake/gpt-4o-mini"


def config_for(server: FakeOpenAIServer, **options: Any) -> dict[str, Any]:
    """A client config with one ``openai`` instance named ``fake`` pointing at ``server``.

    The pipeline's retries are off (``retry = {attempts = 1}``): these tests check what
    the provider raises for each answer, not the pipeline's resilience.
    """
    provider: dict[str, Any] = {
        "type": "openai",
        "base_url": server.base_url,
        "api_key": KEY,
        "retry": {"attempts": 1},
    }
    provider.update(options)
    return {"providers": {"fake": provider}}


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OPENAI_* or LLMX_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "LLMX_")):
            monkeypatch.delenv(name)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    """A fake OpenAI server requiring the key ``test-key``."""
    async with FakeOpenAIServer(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def client(server: FakeOpenAIServer) -> AsyncIterator[llmx.Client]:
    """A client whose instance ``fake`` (type ``openai``) talks to ``server``."""
    async with llmx.Client(config_for(server)) as c:
        yield c


@pytest.fixture
async def make_client(server: FakeOpenAIServer) -> AsyncIterator[Callable[..., llmx.Client]]:
    """A factory of clients with extra ``[providers.fake]`` options; all closed afterwards."""
    made: list[llmx.Client] = []

    def make(**options: Any) -> llmx.Client:
        c = llmx.Client(config_for(server, **options))
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, for raw requests to the fake server."""
    async with aiohttp.ClientSession() as session:
        yield session

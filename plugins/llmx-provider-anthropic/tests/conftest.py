"""Fixtures for the anthropic provider's tests: a fake Anthropic server on 127.0.0.1 (in
the test's loop) and clients configured against it. Every test talks real HTTP to the
fake; nothing of the provider is patched."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from llmx_anthropic.testing import FakeAnthropicServer

import llmx

KEY = "test-key"


def config_for(server: FakeAnthropicServer, **options: Any) -> dict[str, Any]:
    """A config with one ``anthropic`` instance ``fake`` pointing at ``server`` (no retries)."""
    provider: dict[str, Any] = {
        "type": "anthropic",
        "base_url": server.base_url,
        "api_key": KEY,
        "retry": {"attempts": 1},
    }
    provider.update(options)
    return {"providers": {"fake": provider}}


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ANTHROPIC_* or LLMX_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "LLMX_")):
            monkeypatch.delenv(name)


@pytest.fixture
async def server() -> AsyncIterator[FakeAnthropicServer]:
    """A fake Anthropic server requiring the key ``test-key``."""
    async with FakeAnthropicServer(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def client(server: FakeAnthropicServer) -> AsyncIterator[llmx.Client]:
    """A client whose instance ``fake`` (type ``anthropic``) talks to ``server``."""
    async with llmx.Client(config_for(server)) as c:
        yield c


@pytest.fixture
def make_config(server: Any) -> Callable[..., dict[str, Any]]:
    """``make_config(**options)``: the config of instance ``fake`` with extra options."""

    def make(**options: Any) -> dict[str, Any]:
        return config_for(server, **options)

    return make


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, for raw requests to the fake server."""
    async with aiohttp.ClientSession() as session:
        yield session

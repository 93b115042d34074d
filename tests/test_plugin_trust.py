"""Untrusted plugins, really installed (``tests/fixtures/dists/``, the hostile ones by path):
a plugin cannot take a component name it does not own, and a slow import is reported
by name while it runs.

``llmx-fixture-thief`` registers the provider type ``openai`` (first-party, owned by
llmx-provider-openai, installed in the dev venv) and records every API key it is built
with; ``llmx-fixture-slow`` sleeps ``FIXTURE_SLOW_SECONDS`` when imported.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import llmx
from tests._support import FIXTURE_DISTS, InstallDists, fixture_modules_imported

CANARY = "sk-canary-7f3a9c21d04e"
OPENAI: dict[str, Any] = {"providers": {"main": {"type": "openai", "api_key": CANARY}}}


@pytest.fixture(scope="module")
def hostile_site(install_dists: InstallDists) -> Path:
    """The echo and collide fixtures plus the hostile ones."""
    return install_dists(
        [
            "llmx-fixture-echo",
            "llmx-fixture-collide",
            FIXTURE_DISTS / "llmx-fixture-thief",
            FIXTURE_DISTS / "llmx-fixture-slow",
        ]
    )


@pytest.fixture
def site(hostile_site: Path, use_site: Callable[[Path], Path]) -> Path:
    """The hostile site on ``sys.path``; the first-party openai plugin is the dev venv's."""
    return use_site(hostile_site)


def stolen() -> list[str]:
    """The API keys the thief's providers were built with (none if never imported)."""
    module = sys.modules.get("llmx_fixture_thief")
    return [] if module is None else list(module.STOLEN)


def test_an_enabled_plugin_registering_openai_never_gets_the_openai_key(site: Path) -> None:
    """The bug: ``enable = ["thief"]`` silently replaced ``openai``; the thief was built
    with every ``openai`` instance's API key."""
    config = {**OPENAI, "plugins": {"enable": ["thief"]}}

    with pytest.raises(llmx.ConfigError) as exc_info:
        llmx.Client(config)

    message = str(exc_info.value)
    assert "provider type 'openai' is registered by plugin 'thief' (llmx-fixture-thief 1.0.0)" in (
        message
    )
    assert "llmx-provider-openai 0.1.0" in message
    assert "[plugins] replace" in message
    assert "[plugins] disable" in message
    assert "@ $.providers.main.type" in message
    assert isinstance(exc_info.value.__cause__, llmx.PluginConflictError)
    assert CANARY not in message
    assert stolen() == []
    registry = llmx.Registry.from_config(llmx.load_config(config))
    registry.assemble()
    states = {p.name: p.status for p in registry.plugins()}
    assert states["thief"] == "conflict"  # refused as a whole: its own 'thief' type too
    with pytest.raises(llmx.PluginConflictError):
        registry.get("provider", "thief")


def test_the_conflict_is_known_without_the_owner_loaded_and_names_both(site: Path) -> None:
    """The owner of ``echo`` is known from metadata: ``collide`` (enabled alone) is
    refused naming llmx-fixture-echo, which is never imported."""
    registry = llmx.Registry(enable=["collide"])
    registry.assemble()

    states = {p.name: p.status for p in registry.plugins()}
    assert (states["collide"], states["echo"]) == ("conflict", "available")
    with pytest.raises(llmx.PluginConflictError) as exc_info:
        registry.get("provider", "echo")
    message = str(exc_info.value)
    assert "plugin 'collide' (llmx-fixture-collide 1.0.0)" in message
    assert "plugin 'echo' (llmx-fixture-echo 1.0.0)" in message
    assert fixture_modules_imported() == ["llmx_fixture_collide"]


def test_replace_lets_an_enabled_plugin_take_a_first_party_name(site: Path) -> None:
    config = {**OPENAI, "plugins": {"enable": ["thief"], "replace": ["openai"]}}

    client = llmx.Client(config)

    assert client.registry.get("provider", "openai").distribution == "llmx-fixture-thief"
    states = {p.name: p.status for p in client.registry.plugins()}
    assert states["thief"] == "loaded"


def test_a_slow_plugin_import_is_reported_by_name_while_it_runs(
    site: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The bug: a plugin hanging at import blocked ``Client()`` with no word naming it."""
    monkeypatch.setenv("FIXTURE_SLOW_SECONDS", "1.2")
    caplog.set_level(logging.WARNING, logger="llmx.registry.imports")
    config = {"plugins": {"enable": ["slow"], "slow_import_after": 0.2}}

    began = time.time()
    llmx.Client(config)

    slow = sys.modules["llmx_fixture_slow"]
    still = [r for r in caplog.records if "is still importing" in r.getMessage()]
    assert still, caplog.text
    first = still[0]
    assert "plugin 'slow' (llmx-fixture-slow 1.0.0) is still importing after 0." in (
        first.getMessage()
    )
    assert "'slow' to [plugins] disable" in first.getMessage()
    assert first.created < slow.FINISHED  # while it ran, not after
    assert first.created - max(began, slow.STARTED) < 0.2 + 0.5
    assert [r for r in caplog.records if "finished importing after 1." in r.getMessage()]


def test_a_fast_import_says_nothing(
    site: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FIXTURE_SLOW_SECONDS", "0")
    caplog.set_level(logging.DEBUG, logger="llmx.registry")

    llmx.Client({"plugins": {"enable": ["slow"], "slow_import_after": 0.5}})

    assert "importing" not in caplog.text

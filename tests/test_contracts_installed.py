"""Component contracts against a really installed plugin: a component that lacks what
its protocol requires is refused when it is built, naming the plugin, its distribution
and version (the in-process cases are in core/tests/test_contracts.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import llmx


@pytest.fixture
def site(clean_site: Path, use_site: Callable[[Path], Path]) -> Path:
    """Every fixture distribution but the ``echo`` twin, on ``sys.path``."""
    return use_site(clean_site)


def test_a_retry_policy_without_attempts_is_refused_naming_its_distribution(site: Path) -> None:
    config = {"providers": {"e": {"type": "echo"}}, "retry": {"policy": "misfit"}}

    with pytest.raises(llmx.PluginError) as exc_info:
        llmx.Client(config)

    err = exc_info.value
    assert (err.plugin, err.distribution, err.version) == ("misfit", "llmx-fixture-misfit", "1.0.0")
    message = str(err)
    assert "retry policy 'misfit' from plugin 'misfit' (llmx-fixture-misfit 1.0.0)" in message
    assert "without attempts, max_retry_after" in message
    assert "the RetryPolicy protocol requires" in message
    assert "pip install -U llmx-fixture-misfit" in message
    assert "llmx_fixture_misfit" in sys.modules  # loaded on demand, by the policy's name

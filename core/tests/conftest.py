"""Fixtures for the core's tests (helpers live in core_support.py)."""

from __future__ import annotations

import pytest
import stamina

import llmx

from core_support import TestPlugin


@pytest.fixture
def plugin() -> TestPlugin:
    """A fresh test plugin."""
    return TestPlugin(
        models={
            "text-only": llmx.ModelInfo(
                "text-only", 1000, 100, ["streaming"], input_price=1.0, output_price=2.0
            ),
            "vision": llmx.ModelInfo("vision", 1000, 100, ["streaming", "vision", "tools"]),
        }
    )


@pytest.fixture
def registry(plugin: TestPlugin) -> llmx.Registry:
    """A registry with only the builtins and the test plugin."""
    import importlib_metadata

    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    reg = llmx.Registry(entry_points=[builtins])
    reg.register(plugin, name="test")
    return reg


@pytest.fixture(autouse=True)
def _stamina_testing() -> object:
    """Retries happen (up to 3 attempts) but never wait; a test that proves real
    timing turns this off with ``stamina.set_testing(False)``."""
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


@pytest.fixture(autouse=True)
def _no_llmx_log_handler() -> object:
    """A test whose config has a ``[logging]`` section leaves no handler behind."""
    yield
    from llmx import _logging

    _logging.reset()

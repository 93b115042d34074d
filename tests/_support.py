"""Helpers shared by the cross-distribution tests (imported by ``conftest.py`` and tests).

Kept out of ``conftest.py`` so tests can import them by a unique module name.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DISTS = Path(__file__).resolve().parent / "fixtures" / "dists"
TEMPLATE = REPO / "contrib" / "_template"

HOSTILE_FIXTURES = ("llmx-fixture-marker", "llmx-fixture-slow", "llmx-fixture-thief")
"""Fixture distributions that misbehave on purpose (an import that hangs, a plugin taking
another's component name, one that writes a marker file when imported): installed only by the tests that ask for them, by path
(``install_dists([FIXTURE_DISTS / name])``), never in the shared sites."""

ALL_FIXTURES = tuple(
    sorted(
        p.name
        for p in FIXTURE_DISTS.iterdir()
        if (p / "pyproject.toml").is_file() and p.name not in HOSTILE_FIXTURES
    )
)
"""Every fixture distribution, including ``llmx-fixture-echo-twin`` (not the hostile ones)."""

CLEAN_FIXTURES = tuple(d for d in ALL_FIXTURES if d != "llmx-fixture-echo-twin")
"""Every fixture distribution except the twin, so the ``echo`` entry point is unambiguous."""

InstallDists = Callable[[Iterable[str | Path]], Path]
"""The ``install_dists`` fixture: a set of distribution names or source trees -> site dir."""

FIXTURE_MODULE_PREFIXES = ("llmx_fixture_", "llmx_provider_template")
"""Modules the fixture distributions (and the template) install."""


def run(cmd: list[str | os.PathLike[str]], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``, failing the test with its output if it exits non-zero."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def build_wheels(sources: Iterable[Path], out: Path) -> None:
    """Build wheels of ``sources`` into ``out`` without their dependencies.

    Uses the dev venv's hatchling (no build isolation, so no network); falls back to
    build isolation if hatchling is not installed.
    """
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", out, *sources],
        cwd=REPO,
    )


def project_name(source: Path) -> str:
    """The ``[project] name`` of a source tree."""
    with (source / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["name"])


def wheel_prefix(dist: str) -> str:
    """The file-name prefix of ``dist``'s wheels (``llmx-fixture-echo`` -> ``llmx_fixture_echo-``)."""
    return dist.replace("-", "_") + "-"


def drop_fixture_modules() -> None:
    """Forget every imported fixture plugin module, so the next test imports afresh."""
    for name in [m for m in sys.modules if m.startswith(FIXTURE_MODULE_PREFIXES)]:
        del sys.modules[name]


def fixture_modules_imported() -> list[str]:
    """The fixture plugin modules currently imported."""
    return sorted(m for m in sys.modules if m.startswith(FIXTURE_MODULE_PREFIXES))


def subprocess_env(site: Path | None, home: Path) -> dict[str, str]:
    """An environment for running ``llmx`` in a subprocess.

    ``PYTHONPATH`` is the site directory (or unset); no ``LLMX_*`` variables; the user
    config directory points into ``home`` so no real ``~/.config/llmx/llmx.toml`` is read.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMX_", "PYTHON"))}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["HOME"] = str(home)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


async def serve_app(app: Any) -> tuple[Any, str]:
    """Start an aiohttp ``app`` on a free port of 127.0.0.1; ``(runner, base URL)`` (clean
    up with ``await runner.cleanup()``)."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` loaded as a module (the scripts directory is no package)."""
    path = REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"llmx_scripts_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module

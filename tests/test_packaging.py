"""llmx and a first-party plugin as installed distributions, not as the dev tree.

Builds wheels of ``core/`` and ``plugins/llmx-provider-openai``, installs them (not
editable, dependencies from the index) into one fresh venv for the whole module, and checks
what a user gets: the ``llmx`` script, plugin discovery through entry points, ``py.typed``,
and a cheap ``import llmx``.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from tests._support import REPO, build_wheels, run, subprocess_env

pytestmark = pytest.mark.packaging

CORE = REPO / "core"
OPENAI = REPO / "plugins" / "llmx-provider-openai"


def only(directory: Path, pattern: str) -> Path:
    """The single file in ``directory`` matching ``pattern``."""
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {directory}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the wheels of llmx and llmx-provider-openai."""
    out = tmp_path_factory.mktemp("wheels")
    build_wheels([CORE, OPENAI], out)
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> Path:
    """A fresh venv with both wheels installed (created once for the module).

    The venv is made without pip and filled by the dev venv's pip (``pip --python``),
    which saves bootstrapping pip into it.
    """
    root = tmp_path_factory.mktemp("packaging") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", root])
    pip = [sys.executable, "-m", "pip", "--python", root / "bin" / "python", "install", "-q"]
    core_wheel = only(wheels, "llmx-*.whl")
    openai_wheel = only(wheels, "llmx_provider_openai-*.whl")
    run([*pip, "--find-links", wheels, core_wheel, openai_wheel])
    return root


def test_the_core_wheel_ships_its_type_marker_and_entry_points(wheels: Path) -> None:
    with zipfile.ZipFile(only(wheels, "llmx-*.whl")) as whl:
        names = set(whl.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        declared = whl.read(entry_points).decode()

    assert "llmx/py.typed" in names
    assert "llmx/__init__.py" in names
    assert "llmx/testing/__init__.py" in names
    assert "builtins = llmx._builtins" in declared
    assert "llmx = llmx._cli:main" in declared


def test_the_plugin_wheel_ships_its_package_and_entry_point(wheels: Path) -> None:
    with zipfile.ZipFile(only(wheels, "llmx_provider_openai-*.whl")) as whl:
        names = set(whl.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        declared = whl.read(entry_points).decode()

    assert "llmx_openai/__init__.py" in names
    assert "openai = llmx_openai" in declared


def test_llmx_plugins_in_a_fresh_venv_lists_and_loads_the_plugin(
    venv: Path, tmp_path: Path
) -> None:
    proc = run(
        [venv / "bin" / "llmx", "plugins", "--json", "--load"],
        cwd=tmp_path,
        env=subprocess_env(None, tmp_path),
    )

    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["builtins"]["status"] == "loaded"
    assert rows["builtins"]["distribution"] == "llmx"
    openai = rows["openai"]
    assert (openai["distribution"], openai["status"], openai["error"]) == (
        "llmx-provider-openai",
        "loaded",
        None,
    )
    assert "provider:openai" in openai["registers"]
    assert "Traceback" not in proc.stderr


def test_the_venv_uses_the_installed_llmx_not_the_dev_tree(venv: Path, tmp_path: Path) -> None:
    code = "import llmx; print(llmx.__file__)"
    proc = run(
        [venv / "bin" / "python", "-c", code], cwd=tmp_path, env=subprocess_env(None, tmp_path)
    )

    location = Path(proc.stdout.strip())
    assert location.is_relative_to(venv)
    assert not location.is_relative_to(REPO / "core")


def test_import_llmx_does_not_import_aiohttp(venv: Path, tmp_path: Path) -> None:
    code = "import llmx, sys; assert 'aiohttp' not in sys.modules, 'import llmx imported aiohttp'"

    run([venv / "bin" / "python", "-c", code], cwd=tmp_path, env=subprocess_env(None, tmp_path))

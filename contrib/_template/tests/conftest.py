"""llmx finds plugins through installed entry points, so these tests need this
distribution installed (``pip install -e .``). If it is not, it is installed once into a
temporary directory (``pip install --no-deps --target``) put first on ``sys.path``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "llmx-provider-template"

_sites: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Install the plugin for this session if it is not installed."""
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        return
    site = tempfile.mkdtemp(prefix="llmx-plugin-site-")
    no_isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *no_isolation]
    proc = subprocess.run(
        [*cmd, "--target", site, str(PROJECT)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        msg = f"installing {DISTRIBUTION} failed:\n{proc.stdout}\n{proc.stderr}"
        raise pytest.UsageError(msg)
    sys.path.insert(0, site)
    _sites.append(site)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the installation made for this session, if any."""
    while _sites:
        site = _sites.pop()
        if site in sys.path:
            sys.path.remove(site)
        shutil.rmtree(site, ignore_errors=True)

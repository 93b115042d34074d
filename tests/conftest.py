"""Shared fixtures for the cross-distribution tests: really installed fixture plugins.

The distributions under ``tests/fixtures/dists/`` are built into wheels once per session
(hatchling from the dev venv, no network) and installed with ``pip install --target`` into
temporary site directories, one per chosen set of distributions (cached per set). A test
puts a site directory on ``sys.path`` and builds an ``llmx.Registry``, which then discovers
the fixtures through their entry-point metadata exactly as it would in an application.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tests._support import (
    ALL_FIXTURES,
    CLEAN_FIXTURES,
    FIXTURE_DISTS,
    InstallDists,
    build_wheels,
    drop_fixture_modules,
    project_name,
    run,
    wheel_prefix,
)


def pytest_configure(config: pytest.Config) -> None:
    """Register this suite's markers (pytest runs with ``--strict-markers``)."""
    config.addinivalue_line(
        "markers",
        "packaging: builds wheels and a fresh venv to test llmx as an installed distribution",
    )


@pytest.fixture(scope="session")
def install_dists(tmp_path_factory: pytest.TempPathFactory) -> InstallDists:
    """``install_dists(names_or_paths) -> site dir``: install a set of distributions.

    Names are fixture distributions (``"llmx-fixture-echo"``), whose wheels are all built
    in one go on first use; paths are source trees (e.g. the plugin template), built on
    demand. Each distinct set gets its own ``pip install --no-deps --target`` directory,
    cached for the session.
    """
    sites: dict[frozenset[str], Path] = {}
    wheels_dir = tmp_path_factory.mktemp("wheels")
    fixtures_built = False

    def wheel_for(item: str | Path) -> Path:
        nonlocal fixtures_built
        if isinstance(item, Path):
            prefix = wheel_prefix(project_name(item))
            if not list(wheels_dir.glob(f"{prefix}*.whl")):
                build_wheels([item], wheels_dir)
        else:
            prefix = wheel_prefix(item)
            if not fixtures_built:
                build_wheels([FIXTURE_DISTS / d for d in ALL_FIXTURES], wheels_dir)
                fixtures_built = True
        found = sorted(wheels_dir.glob(f"{prefix}*.whl"))
        if len(found) != 1:
            pytest.fail(f"expected exactly one wheel for {item}, found {found}")
        return found[0]

    def install(items: Iterable[str | Path]) -> Path:
        chosen = list(dict.fromkeys(items))
        key = frozenset(str(i) for i in chosen)
        site = sites.get(key)
        if site is None:
            site = tmp_path_factory.mktemp("site")
            wheels = [wheel_for(i) for i in chosen]
            pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
            run([*pip, "--target", site, *wheels])
            sites[key] = site
        return site

    return install


@pytest.fixture(scope="session")
def fixture_site(install_dists: InstallDists) -> Path:
    """A site directory with every fixture distribution installed (twin included)."""
    return install_dists(ALL_FIXTURES)


@pytest.fixture(scope="session")
def clean_site(install_dists: InstallDists) -> Path:
    """A site directory with every fixture distribution except the ``echo`` twin."""
    return install_dists(CLEAN_FIXTURES)


@pytest.fixture
def use_site(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Path]:
    """``use_site(site)``: put an installed site directory on ``sys.path`` for this test."""

    def use(site: Path) -> Path:
        monkeypatch.syspath_prepend(str(site))
        return site

    return use


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep tests independent: no ``LLMX_*`` variables, no fixture module left imported."""
    for name in [n for n in os.environ if n.startswith("LLMX_")]:
        monkeypatch.delenv(name)
    drop_fixture_modules()
    yield
    drop_fixture_modules()

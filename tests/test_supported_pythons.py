"""The supported Pythons are said once per place that needs them, and the same everywhere:
noxfile.py's ``SUPPORTED`` (what ``.ci/run`` and ``nox`` run), the CI workflow's matrix,
every distribution's ``requires-python`` and classifiers, and the oldest Python the lock
is compiled for (``scripts/lock``)."""

from __future__ import annotations

import re
import runpy

import pytest
import yaml

from tests._support import REPO, tomllib

SUPPORTED: tuple[str, ...] = tuple(runpy.run_path(str(REPO / "noxfile.py"))["SUPPORTED"])
DISTRIBUTIONS = sorted(
    p.parent.relative_to(REPO).as_posix()
    for p in [
        REPO / "core" / "pyproject.toml",
        *REPO.glob("plugins/*/pyproject.toml"),
        *REPO.glob("contrib/*/pyproject.toml"),
    ]
)


def test_the_supported_range_is_contiguous_from_3_10() -> None:
    minors = [int(v.split(".")[1]) for v in SUPPORTED]
    assert SUPPORTED[0] == "3.10"
    assert minors == list(range(minors[0], minors[0] + len(minors)))


def test_every_distribution_is_found() -> None:
    assert {"core", "plugins/llmx-redis", "contrib/llmx-provider-llamacpp"} <= set(DISTRIBUTIONS)


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_every_distribution_states_the_supported_range(dist: str) -> None:
    with (REPO / dist / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]

    assert project["requires-python"] == f">={SUPPORTED[0]}", dist
    stated = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in project.get("classifiers", [])
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert stated == sorted(SUPPORTED, key=lambda v: int(v.split(".")[1])), (
        f"{dist}/pyproject.toml: the classifiers name Pythons {stated}, the supported ones"
        f" are {list(SUPPORTED)} (noxfile.py SUPPORTED)"
    )
    assert "Programming Language :: Python :: 3 :: Only" in project["classifiers"]


def test_the_ci_workflow_tests_every_supported_python_on_linux_and_macos() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]

    assert [str(v) for v in matrix["python"]] == list(SUPPORTED)
    assert {os.split("-")[0] for os in matrix["os"]} == {"ubuntu", "macos"}
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("run") == "scripts/test" for step in steps)


def test_the_lock_is_compiled_for_the_oldest_supported_python() -> None:
    lock = (REPO / "scripts" / "lock").read_text()

    assert f"--python-version {SUPPORTED[0]}" in lock
    assert "--universal" in lock

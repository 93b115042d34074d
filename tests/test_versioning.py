"""docs/versioning.md against the repository: the distributions' versions and their
`llmx` ranges, the core's extras, the licence files, the contract table, and the page's
runnable examples.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import llmx
import llmx.hookspecs
from tests._support import REPO, load_script, subprocess_env

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 only
    import tomli as tomllib

PAGE = REPO / "docs" / "versioning.md"


@pytest.fixture(scope="module")
def build() -> ModuleType:
    """scripts/build.py (its list of distributions and its version checks)."""
    return load_script("build")


def table(heading_text: str) -> list[list[str]]:
    """The rows of the first Markdown table after the line containing ``heading_text``."""
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(heading_text)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows


def project(path: str) -> dict[str, object]:
    return tomllib.loads((REPO / path / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def test_the_distribution_table_is_the_workspace(build: ModuleType) -> None:
    rows = table("| distribution | directory | requires |")
    documented = {r[0].strip("`"): (r[1].strip("`").rstrip("/"), r[2].strip("`")) for r in rows}
    dists = {d.name: d.rel for d in build.distributions()}
    assert {name: rel for name, (rel, _) in documented.items()} == dists
    for name, (rel, requires) in documented.items():
        deps = [Requirement(x) for x in project(rel)["dependencies"]]  # type: ignore[attr-defined]
        on_llmx = [r.specifier for r in deps if r.name == "llmx"]
        if name == "llmx":
            assert requires == "—"
        else:
            assert on_llmx == [Requirement(requires).specifier], (
                f"{name}: the page says {requires}, its pyproject.toml says llmx{on_llmx}"
            )


def test_every_version_is_semantic_and_every_plugin_stays_in_the_llmx_series(
    build: ModuleType,
) -> None:
    dists = build.distributions()
    core = next(d for d in dists if d.name == "llmx")
    assert core.version == llmx.__version__, "core/pyproject.toml and llmx._version disagree"
    problems = []
    for d in dists:
        problems += build.check_version(d.version, d.name)
        if d.name != "llmx":
            deps = [Requirement(x) for x in project(d.rel)["dependencies"]]  # type: ignore[attr-defined]
            problems += [f"{d.name}: {p}" for p in build.check_llmx_requirement(deps, core.version)]
    template = project("contrib/_template")
    problems += build.check_llmx_requirement(
        [Requirement(x) for x in template["dependencies"]],  # type: ignore[attr-defined]
        core.version,
    )
    assert not problems


def test_the_core_extras_install_the_plugins_of_their_series(build: ModuleType) -> None:
    extras: dict[str, list[str]] = project("core")["optional-dependencies"]  # type: ignore[assignment]
    plugins = {
        canonicalize_name(d.name): Version(d.version)
        for d in build.distributions()
        if d.rel.startswith("plugins/")
    }
    named = {}
    for extra in ("openai", "anthropic", "gemini", "redis", "otel", "prometheus"):
        (req,) = map(Requirement, extras[extra])
        name = canonicalize_name(req.name)
        assert name in plugins, f"[{extra}] names {name}, not a first-party plugin"
        version = plugins[name]
        assert req.specifier.contains(version), f"[{extra}]: {req} does not admit {version}"
        nxt = Version(f"{version.major}.{version.minor + 1}.0")
        assert not req.specifier.contains(nxt), f"[{extra}]: {req} admits the next series {nxt}"
        named[extra] = name
    assert extras["all"] == ["llmx[openai,anthropic,gemini,redis,otel,prometheus]"]
    assert set(named.values()) == set(plugins), "every first-party plugin has its extra"


def test_every_distribution_ships_the_same_licence(build: ModuleType) -> None:
    licence = (REPO / "LICENSE").read_text()
    assert "MIT License" in licence
    for d in build.distributions():
        assert (d.path / "LICENSE").read_text() == licence, f"{d.rel}/LICENSE differs from LICENSE"
        assert project(d.rel)["license"] == "MIT"


def _added_in(hook: object) -> str:
    found = re.search(r"Added in contract (\d+\.\d+)", inspect.getdoc(hook) or "")
    return found.group(1) if found else "1.0"


def test_the_contract_tables_match_the_hook_specs() -> None:
    contract = llmx.hookspecs.CONTRACT_VERSION
    hooks = {
        name: _added_in(obj)
        for name, obj in vars(llmx.hookspecs).items()
        if name.startswith("llmx_") and callable(obj)
    }
    documented = {
        hook.strip("` "): row[0]
        for row in table("| contract | hooks |")
        for hook in row[1].split(",")
    }
    assert documented == hooks, "the page's table of hooks per contract version is stale"
    releases = table("| llmx | speaks contract | accepts plugins declaring |")
    current = Version(llmx.__version__)
    row = next((r for r in releases if r[0] == f"{current.major}.{current.minor}.x"), None)
    assert row is not None, f"no row for llmx {current.major}.{current.minor}.x"
    assert row[1] == contract
    accepted = re.findall(r"\d+\.\d+", row[2])
    assert accepted[-1] == contract
    assert all(Version(v) <= Version(contract) for v in accepted)
    assert {v.split(".")[0] for v in accepted} == {contract.split(".")[0]}


def _run_blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"<!-- run -->\n```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("code", _run_blocks(), ids=lambda c: c.splitlines()[-1][:40])
def test_the_runnable_examples_of_the_page_run(code: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(None, tmp_path),
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_page_has_runnable_examples() -> None:
    assert len(_run_blocks()) >= 2

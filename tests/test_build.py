"""scripts/build's checks, on wheels made here with each defect: every check can fail.

scripts/build itself (run by scripts/test's `== build` stage) builds, compares, inspects
and installs the real distributions; these tests prove that what it inspects would be
caught.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests._support import REPO, load_script

README = "# llmx-provider-acme\n\nThe acme provider type for llmx, with enough words to count.\n"


@pytest.fixture(scope="module")
def build() -> ModuleType:
    """scripts/build.py."""
    return load_script("build")


def metadata(**changes: object) -> str:
    fields: dict[str, object] = {
        "Metadata-Version": "2.4",
        "Name": "llmx-provider-acme",
        "Version": "0.1.0",
        "Summary": "acme",
        "Author": "llmx developers",
        "License-Expression": "MIT",
        "License-File": "LICENSE",
        "Requires-Python": ">=3.10",
        "Classifier": ["Development Status :: 3 - Alpha", "Programming Language :: Python :: 3"],
        "Project-URL": [
            f"{u}, https://example.org/{u}"
            for u in ("Homepage", "Documentation", "Source", "Changelog", "Issues")
        ],
        "Requires-Dist": ["llmx~=0.1.0"],
        "Description-Content-Type": "text/markdown",
    }
    body = str(changes.pop("body", README))
    fields.update(changes)
    lines = [
        f"{key}: {v}"
        for key, value in fields.items()
        for v in (value if isinstance(value, list) else [value])
        if v is not None
    ]
    return "\n".join(lines) + "\n\n" + body


def make_wheel(
    path: Path, *, meta: str, extra: dict[str, str] | None = None, typed: bool = True
) -> Path:
    wheel = path / "llmx_provider_acme-0.1.0-py3-none-any.whl"
    info = "llmx_provider_acme-0.1.0.dist-info"
    files = {
        "llmx_provider_acme/__init__.py": "",
        f"{info}/METADATA": meta,
        f"{info}/licenses/LICENSE": "MIT",
        f"{info}/entry_points.txt": "[llmx]\nacme = llmx_provider_acme\n",
        **(extra or {}),
    }
    if typed:
        files["llmx_provider_acme/py.typed"] = ""
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return wheel


def acme(build: ModuleType, typed: bool = True) -> object:
    return build.Distribution(REPO / "plugins" / "acme", "llmx-provider-acme", "0.1.0", typed)


def test_a_complete_wheel_passes(build: ModuleType, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, meta=metadata())
    assert build.inspect_wheel(wheel, acme(build), "0.1.0") == []


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"llmx_provider_acme/__pycache__/x.cpython-311.pyc": ""}, "__pycache__"),
        ({"llmx_provider_acme/tests/test_x.py": ""}, "tests/test_x.py must not be shipped"),
        ({"tests/fixtures/a.json": ""}, "fixtures/a.json must not be shipped"),
        ({"llmx_provider_acme/.mypy_cache/x": ""}, ".mypy_cache"),
        ({"llmx_provider_acme/conftest.py": ""}, "conftest.py must not be shipped"),
    ],
)
def test_tests_fixtures_caches_and_bytecode_are_refused(
    build: ModuleType, tmp_path: Path, extra: dict[str, str], problem: str
) -> None:
    wheel = make_wheel(tmp_path, meta=metadata(), extra=extra)
    (found,) = build.inspect_wheel(wheel, acme(build), "0.1.0")
    assert problem in found


def test_py_typed_matches_the_typed_classifier(build: ModuleType, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, meta=metadata(), typed=False)
    (found,) = build.inspect_wheel(wheel, acme(build, typed=True), "0.1.0")
    assert "py.typed is missing" in found
    wheel = make_wheel(tmp_path, meta=metadata(), typed=True)
    (found,) = build.inspect_wheel(wheel, acme(build, typed=False), "0.1.0")
    assert "without the Typing :: Typed classifier" in found


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"Classifier": None}, "Development Status"),
        ({"Project-URL": ["Homepage, https://example.org"]}, "project URLs missing"),
        ({"Requires-Python": None}, "Requires-Python is missing"),
        ({"License-Expression": None}, "License-Expression is missing"),
        ({"Description-Content-Type": "text/x-rst"}, "not declared as Markdown"),
        (
            {"body": "# acme\n\nSee [the docs](../../docs/x.md) for much more about acme."},
            "relatively",
        ),
        ({"Version": "0.1"}, "not semantic"),
        ({"Requires-Dist": ["llmx~=0.1"]}, "admits llmx 0.2.0"),
        ({"Requires-Dist": ["llmx>=0.2"]}, "does not admit this llmx 0.1.0"),
        ({"Requires-Dist": []}, "must require `llmx`"),
    ],
)
def test_incomplete_metadata_is_refused(
    build: ModuleType, tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    wheel = make_wheel(tmp_path, meta=metadata(**change))
    found = build.inspect_wheel(wheel, acme(build), "0.1.0")
    assert any(problem in p for p in found), found


def test_a_plugin_wheel_without_an_llmx_entry_point_is_refused(
    build: ModuleType, tmp_path: Path
) -> None:
    info = "llmx_provider_acme-0.1.0.dist-info"
    extra = {f"{info}/entry_points.txt": "[console_scripts]\nacme = acme:main\n"}
    wheel = make_wheel(tmp_path, meta=metadata(), extra=extra)
    found = build.inspect_wheel(wheel, acme(build), "0.1.0")
    assert any("`llmx` group" in p for p in found), found


def test_two_builds_that_differ_are_reported(build: ModuleType, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    make_wheel(a, meta=metadata())
    make_wheel(b, meta=metadata(Summary="acme!"))
    assert build.compare_builds(a, a) == []
    (problem,) = build.compare_builds(a, b)
    assert "two builds differ" in problem
    assert "METADATA" in problem


def test_the_runtime_lock_is_the_locked_subset_with_hashes(
    build: ModuleType, tmp_path: Path
) -> None:
    lock = tmp_path / "dev.lock"
    lock.write_text(
        "# header\nattrs==25.1.0 \\\n    --hash=sha256:aa\n"
        "tomli==2.2.1 ; python_full_version < '3.11' \\\n    --hash=sha256:bb\n"
        "ruff==0.17.6 \\\n    --hash=sha256:cc\n"
    )
    subset = build.locked_subset(lock, {"attrs", "tomli"})
    assert "attrs==25.1.0" in subset
    assert "--hash=sha256:bb" in subset
    assert "ruff" not in subset
    with pytest.raises(build.BuildError, match=r"\['pluggy'\] are not in dev.lock"):
        build.locked_subset(lock, {"attrs", "pluggy"})


def test_the_workspace_distributions_are_all_built(build: ModuleType) -> None:
    names = [d.name for d in build.distributions()]
    assert names[0] == "llmx"
    assert set(names) == {
        "llmx",
        "llmx-provider-openai",
        "llmx-provider-anthropic",
        "llmx-provider-gemini",
        "llmx-redis",
        "llmx-otel",
        "llmx-prometheus",
        "llmx-provider-llamacpp",
    }


def test_the_readme_is_rendered_as_pypi_renders_it(
    build: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    html = build.render_markdown("# acme\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n")
    assert "<table>" in html
    assert ">acme<" in html
    monkeypatch.setattr(build, "render_markdown", lambda text: None)
    wheel = make_wheel(tmp_path, meta=metadata())
    found = build.inspect_wheel(wheel, acme(build), "0.1.0")
    assert found == [f"{wheel.name}: the README does not render as PyPI renders it"]

"""The plugin template (``contrib/_template``) as a real distribution: built, installed with
pip into a site directory, discovered through its entry point and used through
``llmx.Client``; and a copy renamed the way its README says (``rename.py``), installed,
and passing its own tests — the conformance suite against its fake server among them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import llmx
from tests._support import TEMPLATE, InstallDists, subprocess_env

KEY = "tk-install-test"
NAME = "acme2"
"""What the copy is renamed to: ``llmx-provider-acme2``, ``llmx_provider_acme2``, type ``acme2``."""

_CONFORMANCE_EXAMPLES = 3
"""Hypothesis examples per property test of the copy's conformance run (the knob's default
is 12; fewer keep this test fast, the template's own run uses the default)."""


@pytest.fixture
def template_site(install_dists: InstallDists, use_site: Callable[[Path], Path]) -> Path:
    """The template installed on its own (``pip install --no-deps --target``), on ``sys.path``."""
    return use_site(install_dists([TEMPLATE]))


@pytest.fixture
async def template_api(template_site: Path) -> AsyncIterator[Any]:
    """The template's own fake Template API (``llmx_provider_template.testing``) on 127.0.0.1."""
    from llmx_provider_template.testing import FakeTemplateServer

    async with FakeTemplateServer(api_key=KEY) as server:
        yield server


def test_the_installed_template_is_discovered_without_being_imported(template_site: Path) -> None:
    plugins = {p.name: p for p in llmx.Registry().plugins()}

    template = plugins["template"]
    assert (template.distribution, template.version, template.status) == (
        "llmx-provider-template",
        "0.1.0",
        "available",
    )
    assert "llmx_provider_template" not in sys.modules


async def test_one_completion_through_the_installed_template(
    template_site: Path, template_api: Any
) -> None:
    config = {"providers": {"t": {"type": "template", "base_url": template_api.base_url}}}
    config["providers"]["t"]["api_key"] = KEY

    async with llmx.Client(config) as client:
        reply = await client.complete(model="t/tmpl-small", prompt="hello")
        streamed = await client.stream(model="t/tmpl-small", prompt="hello again").collect()

    assert (reply.text, reply.provider, reply.model) == ("hello", "t", "tmpl-small")
    assert reply.usage.input_tokens > 0
    assert reply.cost is not None
    assert streamed.text == "hello again"
    module = sys.modules["llmx_provider_template"]
    assert Path(module.__file__ or "").is_relative_to(template_site)


def test_llmx_plugins_lists_the_installed_template(
    install_dists: InstallDists, tmp_path: Path
) -> None:
    site = install_dists([TEMPLATE])
    proc = subprocess.run(
        [sys.executable, "-m", "llmx", "plugins", "--json", "--load"],
        cwd=tmp_path,
        env=subprocess_env(site, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["template"]["status"] == "loaded"
    assert rows["template"]["registers"] == ["provider:template"]


def _renamed_copy(tmp_path: Path) -> Path:
    """A copy of the template, renamed to ``acme2`` by its own ``rename.py``."""
    copy = tmp_path / f"llmx-provider-{NAME}"
    shutil.copytree(
        TEMPLATE, copy, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache")
    )
    proc = subprocess.run(
        [sys.executable, "rename.py", NAME],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return copy


def test_a_renamed_copy_has_no_trace_of_the_template(tmp_path: Path) -> None:
    copy = _renamed_copy(tmp_path)

    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        f"src/llmx_provider_{NAME}/__init__.py",
        f"src/llmx_provider_{NAME}/_provider.py",
        f"src/llmx_provider_{NAME}/py.typed",
        f"src/llmx_provider_{NAME}/testing.py",
        "tests/conftest.py",
        f"tests/test_{NAME}_conformance.py",
        f"tests/test_{NAME}_provider.py",
    ]
    leftovers = [f for f in files if re.search("template", (copy / f).read_text(), re.I)]
    assert leftovers == []
    pyproject = (copy / "pyproject.toml").read_text()
    assert f'name = "llmx-provider-{NAME}"' in pyproject
    assert f'{NAME} = "llmx_provider_{NAME}"' in pyproject  # the entry point
    assert 'dependencies = ["llmx~=0.1.0"]' in pyproject


def test_a_renamed_copy_installs_and_passes_its_own_tests(
    install_dists: InstallDists, tmp_path: Path
) -> None:
    copy = _renamed_copy(tmp_path)
    conformance = copy / "tests" / f"test_{NAME}_conformance.py"
    text = conformance.read_text()
    assert "    hypothesis_examples = 12\n" in text
    conformance.write_text(
        text.replace("hypothesis_examples = 12", f"hypothesis_examples = {_CONFORMANCE_EXAMPLES}")
    )
    site = install_dists([copy])
    env = subprocess_env(site, tmp_path)

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    plugins = subprocess.run(
        [sys.executable, "-m", "llmx", "plugins", "--json", "--load"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert tests.returncode == 0, tests.stdout + tests.stderr
    summary = tests.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert int(passed[1]) >= 65, summary  # the kit's ~60 tests and the provider's own
    assert "failed" not in summary
    assert "error" not in summary
    # The only tests not run are of the features the template's API lacks and the
    # opt-in embeddings (whose refusal test runs), said so, and the refusal-message test
    # (the template's API has no refusal message).
    skipped = re.findall(r"^SKIPPED .*$", tests.stdout, re.M)
    assert len(skipped) == 9, skipped
    features = (
        "images|json_schema|token_counting|embeddings|reasoning|provider_batch|documents|audio"
    )
    no_refusal = f"{NAME}'s API has no refusal message (refusal_messages)"
    assert all(
        re.search(f"{NAME} does not support ({features})$", s) or s.endswith(no_refusal)
        for s in skipped
    ), skipped
    assert plugins.returncode == 0, plugins.stderr
    rows = {row["name"]: row for row in json.loads(plugins.stdout)}
    assert rows[NAME]["distribution"] == f"llmx-provider-{NAME}"
    assert rows[NAME]["registers"] == [f"provider:{NAME}"]

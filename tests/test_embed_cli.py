"""``llmx embed`` as a user runs it: texts from the arguments or standard input, embedded
through the configured pipeline (a fake OpenAI server on 127.0.0.1), printed as one JSON
object; a provider without embeddings is one clean error line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llmx.testing import fake_embedding
from llmx_openai.testing import FakeOpenAIServer


def llmx(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    env["XDG_CONFIG_HOME"] = str(cwd / ".config")
    env["XDG_DATA_HOME"] = str(cwd / ".data")
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_embed_prints_the_vectors_as_json(tmp_path: Path) -> None:
    with FakeOpenAIServer().in_thread() as server:
        (tmp_path / "llmx.toml").write_text(
            f'[providers.oa]\ntype = "openai"\nbase_url = "{server.base_url}"\n'
            'api_key = "test-key"\n'
            '[providers.claude]\ntype = "anthropic"\napi_key = "test-key"\n'
        )
        args = ["embed", "-m", "oa/text-embedding-3-small", "-d", "4", "--task", "query"]
        result = llmx([*args, "the cat", "a dog"], tmp_path)
        piped = llmx(args, tmp_path, stdin="the cat\n\na dog\n")
        refused = llmx(["embed", "-m", "claude/claude-sonnet-4-6", "x"], tmp_path)
        no_model = llmx(["embed", "x"], tmp_path)
        bodies = [r.json for r in server.model_requests]
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["vectors"] == [fake_embedding("the cat", 4), fake_embedding("a dog", 4)]
    assert (data["model"], data["provider"], data["dimensions"]) == (
        "text-embedding-3-small",
        "oa",
        4,
    )
    assert data["usage"] == {"input_tokens": 4, "estimated": False}
    assert data["cost"] > 0
    assert data["cached"] is False
    assert json.loads(piped.stdout)["vectors"] == data["vectors"]
    assert bodies[0]["input"] == ["the cat", "a dog"]
    assert refused.returncode == 1
    assert refused.stderr.startswith("llmx: error: ")
    assert "does not make embeddings" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert no_model.returncode == 1
    assert "pass -m instance/model" in no_model.stderr
    assert len(bodies) == 2, "nothing was sent for the refused request"

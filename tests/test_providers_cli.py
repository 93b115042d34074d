"""``llmx chat`` end to end, as a user runs it: a subprocess reading ``llmx.toml``, the
installed provider plugins (discovered through their entry points), and fake Anthropic,
Gemini and Azure OpenAI servers on 127.0.0.1, each in its own thread — so the CLI talks
the vendors' real wire formats over real HTTP, streamed and not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

from llmx.testing import FakeServer, Reply
from llmx_openai.testing import FakeAzureOpenAIServer

KEY = "sk-cli-provider-test-key-0123456789"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeServer]]:
    """The three fakes, running in background threads for the whole module."""
    with (
        FakeAnthropicServer(api_key=KEY).in_thread() as anthropic,
        FakeGeminiServer(api_key=KEY).in_thread() as gemini,
        FakeAzureOpenAIServer(api_key=KEY).in_thread() as azure,
    ):
        yield {"anthropic": anthropic, "gemini": gemini, "azure": azure}


@pytest.fixture
def workdir(tmp_path: Path, servers: dict[str, FakeServer]) -> Path:
    """A directory with an ``llmx.toml`` pointing each provider type at its fake."""
    for server in servers.values():
        server.clear()
    lines = []
    for name, server in servers.items():
        lines += [
            f"[providers.{name}]",
            f'type = "{name}"',
            f'base_url = "{server.base_url}"',
            'api_key = { env = "CLI_TEST_PROVIDER_KEY" }',
            "retry = { attempts = 1 }",
            "",
        ]
    (tmp_path / "llmx.toml").write_text("\n".join(lines))
    return tmp_path


def llmx(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLMX_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "AZURE_"))
    }
    env["CLI_TEST_PROVIDER_KEY"] = KEY
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


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("anthropic/claude-sonnet-4-6", "/v1/messages"),
        ("gemini/gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
        ("azure/gpt-4o", "/openai/deployments/gpt-4o/chat/completions"),
    ],
)
def test_chat_streams_through_each_provider(
    workdir: Path, servers: dict[str, FakeServer], model: str, path: str
) -> None:
    server = servers[model.split("/")[0]]
    server.enqueue(Reply("Bonjour, comment ça va ?", chunk_size=4))
    result = llmx(["chat", "-m", model, "--system", "Answer in French.", "hi"], workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Bonjour, comment ça va ?\n"
    (sent,) = server.model_requests
    assert sent.path == path
    view = server.describe(sent)
    assert view.stream is True
    assert view.system == "Answer in French."
    assert view.last_user_text() == "hi"
    assert KEY not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "model", ["anthropic/claude-sonnet-4-6", "gemini/gemini-2.5-flash", "azure/gpt-4o"]
)
def test_chat_no_stream_json(workdir: Path, servers: dict[str, FakeServer], model: str) -> None:
    server = servers[model.split("/")[0]]
    server.enqueue(Reply("forty-two", usage=(12, 3)))
    result = llmx(["chat", "-m", model, "--json", "--max-tokens", "20", "question"], workdir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["text"] == "forty-two"
    assert answer["provider"] == model.split("/")[0]
    assert answer["usage"]["input_tokens"] == 12
    assert answer["usage"]["output_tokens"] == 3
    assert server.describe(server.model_requests[-1]).max_tokens == 20


def test_chat_reports_a_provider_error_in_one_line(
    workdir: Path, servers: dict[str, FakeServer]
) -> None:
    servers["anthropic"].enqueue(servers["anthropic"].error_for("overloaded"))
    result = llmx(["chat", "-m", "anthropic/claude-sonnet-4-6", "hi"], workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("llmx: error: ")
    assert "Overloaded" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("model", "counted"),
    [
        ("anthropic/claude-sonnet-4-6", True),
        ("gemini/gemini-2.5-flash", True),
        ("azure/gpt-4o", False),  # no counting endpoint: the estimate, said so, nothing sent
    ],
)
def test_tokens_counts_before_sending(
    workdir: Path, servers: dict[str, FakeServer], model: str, counted: bool
) -> None:
    server = servers[model.split("/")[0]]
    prompt = "How many tokens is this prompt?"
    result = llmx(["tokens", "-m", model, "-s", "Be brief.", "--json", prompt], workdir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["estimated"] is not counted
    text = llmx(["tokens", "-m", model, "-s", "Be brief.", prompt], workdir).stdout
    if counted:
        assert len(server.requests) == 2
        assert "count" in server.requests[0].path.lower()
        assert server.model_requests == []  # nothing generated
        assert text == f"{answer['input_tokens']} input tokens (counted by {model}'s provider)\n"
    else:
        assert server.requests == []
        assert text.startswith(f"~{answer['input_tokens']} input tokens (an estimate")


def test_tokens_reports_a_provider_error_in_one_line(
    workdir: Path, servers: dict[str, FakeServer]
) -> None:
    servers["anthropic"].enqueue(servers["anthropic"].error_for("rate_limit", retry_after=3))
    result = llmx(["tokens", "-m", "anthropic/claude-sonnet-4-6", "hi"], workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("llmx: error: ")
    assert "Traceback" not in result.stderr
    assert KEY not in result.stderr

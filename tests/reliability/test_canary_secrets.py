"""Canary secrets: a key in ``api_key``, in a ``headers`` secret, in the environment and a
password in a Redis URL (an unreachable cache),
against a loopback server that echoes every credential it receives back (in error
bodies, error headers and model lists). No canary may appear in any output of the CLI
(``chat``, ``--debug`` tracebacks, ``health`` table and JSON, ``models --live``,
``config check``, ``batch`` result files) or of the Python API (errors, their str and
repr, the config's repr, log records).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import llmx
from tests._support import serve_app

KEY = "sk-canary-key-5f2b9c7e1d"
HEADER = "tok-canary-header-8a1e"
ENV_KEY = "sk-canary-env-3c9d0f"
REDIS_PASSWORD = "pw-canary-redis-77e1"
CANARIES = (KEY, HEADER, ENV_KEY, REDIS_PASSWORD)


class Echo:
    """Answers every request by echoing the credentials it carried."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner, self.base = await serve_app(app)

    async def handle(self, request: web.Request) -> web.Response:
        said = " ".join(
            f"{name}={value}"
            for name, value in request.headers.items()
            if name.lower() in ("authorization", "x-team-token", "x-api-key")
        )
        if request.method == "GET" and request.path.endswith("/models"):
            return web.json_response(
                {"object": "list", "data": [{"id": f"model-for-{said}", "object": "model"}]}
            )
        return web.json_response(
            {"error": {"message": f"rejected credentials: {said}", "type": "invalid_key"}},
            status=401,
            headers={"X-Echo": said},
        )


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = Echo()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


def _config_file(tmp_path: Path, echo: Echo) -> Path:
    path = tmp_path / "llmx.toml"
    path.write_text(
        f"""
[providers.lit]
type = "openai"
base_url = "{echo.base}/v1"
api_key = "{KEY}"
headers = {{ "X-Team-Token" = "{HEADER}" }}
retry = {{ attempts = 1 }}

[providers.env]
type = "openai"
base_url = "{echo.base}/v1"
api_key = {{ env = "CANARY_ENV_KEY" }}
retry = {{ attempts = 1 }}

[cache]
backend = "redis"
url = "redis://:{REDIS_PASSWORD}@127.0.0.1:{_closed_port()}/0"
""",
        encoding="utf-8",
    )
    return path


def _closed_port() -> int:
    """A loopback port nothing listens on (the Redis of the config is unreachable: its
    errors and warnings are output that must not carry its password either)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], tmp_path: Path) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LLMX_", "OPENAI_"))},
        "CANARY_ENV_KEY": ENV_KEY,
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    return f"{proc.stdout}\n{proc.stderr}"


def _leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "-m", "lit/m", "hi"],
        ["chat", "-m", "env/m", "hi"],
        ["--debug", "chat", "-m", "lit/m", "hi"],
        ["health"],
        ["health", "--json"],
        ["models", "--live"],
        ["models", "--live", "--json"],
        ["config", "check"],
    ],
    ids=lambda a: " ".join(a),
)
async def test_no_cli_output_carries_a_canary(echo: Echo, tmp_path: Path, args: list[str]) -> None:
    config = _config_file(tmp_path, echo)
    out = await asyncio.to_thread(_run, ["--config", str(config), *args], tmp_path)
    print(f"\n[canary] llmx {' '.join(args)}: {len(out)} characters of output, leaks: "
          f"{_leaks(out) or 'none'}")  # fmt: skip
    assert not _leaks(out), out
    assert out.strip()  # the command said something (not a silent pass)


async def test_batch_result_files_carry_no_canary(echo: Echo, tmp_path: Path) -> None:
    config = _config_file(tmp_path, echo)
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        "\n".join(
            json.dumps({"id": f"r{i}", "prompt": "hi", "model": m})
            for i, m in enumerate(["lit/m", "env/m"])
        )
        + "\n",
        encoding="utf-8",
    )
    results = tmp_path / "out.jsonl"
    out = await asyncio.to_thread(
        _run,
        ["--config", str(config), "batch", str(lines), "-o", str(results)],
        tmp_path,
    )
    written = results.read_text(encoding="utf-8") if results.exists() else ""
    print(f"\n[canary] llmx batch: {len(written)} characters written, leaks: "
          f"{_leaks(written + out) or 'none'}")  # fmt: skip
    assert written.count('"error"') >= 2, (written, out)
    assert not _leaks(written + out)


async def test_no_python_api_output_carries_a_canary(
    echo: Echo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CANARY_ENV_KEY", ENV_KEY)
    caplog.set_level(logging.DEBUG, logger="llmx")
    config = llmx.load_config(_config_file(tmp_path, echo))
    seen: list[str] = [repr(config), str(config)]
    async with llmx.Client(config) as client:
        for model in ("lit/m", "env/m"):
            with pytest.raises(llmx.AuthenticationError) as info:
                await client.complete(model=model, prompt="hi")
            error: Any = info.value
            seen += [str(error), repr(error), error.message, str(error.code)]
            stream = client.stream(model=model, prompt="hi")
            with pytest.raises(llmx.AuthenticationError) as streamed:
                await stream.collect()
            seen.append(str(streamed.value))
        for instance in ("lit", "env"):
            models = await client.list_models(instance)
            seen += [m.id for m in models]
        seen.append(repr(client))
        seen.append(repr(client.stats()))
    text = "\n".join(seen) + caplog.text
    assert not _leaks(text), _leaks(text)

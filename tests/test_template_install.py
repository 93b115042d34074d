"""The plugin template (``contrib/_template``) as a real distribution: built, installed with
pip into a site directory, discovered through its entry point and used through ``llmx.Client``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

import llmx
from tests._support import TEMPLATE, InstallDists, subprocess_env


@pytest.fixture
def template_site(install_dists: InstallDists, use_site: Callable[[Path], Path]) -> Path:
    """The template installed on its own (``pip install --no-deps --target``), on ``sys.path``."""
    return use_site(install_dists([TEMPLATE]))


@pytest.fixture
async def template_api() -> AsyncIterator[str]:
    """A minimal Template API on 127.0.0.1 (``POST /generate``); yields its base URL."""

    async def generate(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"output": f"{body['model']} says {body['prompt']}", "tokens_in": 1, "tokens_out": 3}
        )

    app = web.Application()
    app.router.add_post("/generate", generate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


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
    template_site: Path, template_api: str
) -> None:
    config = {"providers": {"t": {"type": "template", "base_url": template_api}}}

    async with llmx.Client(config) as client:
        reply = await client.complete(model="t/tiny", prompt="hello")

    assert (reply.text, reply.provider, reply.model) == ("tiny says hello", "t", "tiny")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (1, 3)
    assert reply.cost is not None
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

"""Tests of the Template provider: through ``llmx.Client`` against a fake Template API on
127.0.0.1, and its error mapping against the provider itself.

llmx finds plugins through installed entry points, so these tests need the distribution
installed (``pip install -e .``). If it is not, it is installed once into a temporary
directory (``pip install --no-deps --target``) that each test puts on ``sys.path``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

import llmx
from llmx.plugin import ProviderContext

PROJECT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "llmx-provider-template"


@pytest.fixture(scope="session")
def _site(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Where the plugin is installed for this session, if it was not installed already."""
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        return None
    site = tmp_path_factory.mktemp("site")
    no_isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *no_isolation]
    proc = subprocess.run(
        [*cmd, "--target", str(site), str(PROJECT)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"installing {DISTRIBUTION} failed:\n{proc.stdout}\n{proc.stderr}")
    return site


@pytest.fixture(autouse=True)
def _installed(_site: Path | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the installed plugin discoverable for one test."""
    if _site is not None:
        monkeypatch.syspath_prepend(str(_site))


@attrs.define
class FakeTemplateAPI:
    """A Template API on 127.0.0.1 that records requests and answers from a queue.

    ``replies`` holds ``(status, json_body_or_text, headers)``; when it is empty the API
    echoes the prompt, counting words as tokens.
    """

    base_url: str = ""
    requests: list[dict[str, Any]] = attrs.field(factory=list)
    headers: list[dict[str, str]] = attrs.field(factory=list)
    replies: list[tuple[int, Any, dict[str, str]]] = attrs.field(factory=list)

    async def generate(self, request: web.Request) -> web.Response:
        """``POST /generate`` (and any other path the tests route here)."""
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.replies:
            status, payload, headers = self.replies.pop(0)
            if isinstance(payload, str):
                return web.Response(status=status, text=payload, headers=headers)
            return web.json_response(payload, status=status, headers=headers)
        prompt = body["prompt"]
        words = len(prompt.split())
        return web.json_response(
            {"output": f"echo: {prompt}", "tokens_in": words, "tokens_out": words + 1}
        )


@pytest.fixture
async def api() -> AsyncIterator[FakeTemplateAPI]:
    """A fake Template API serving ``/generate`` and ``/v2/generate`` on a free port."""
    fake = FakeTemplateAPI()
    app = web.Application()
    app.router.add_post("/generate", fake.generate)
    app.router.add_post("/v2/generate", fake.generate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.base_url = f"http://{host}:{port}"
    yield fake
    await runner.cleanup()


def config(api: FakeTemplateAPI, **options: Any) -> dict[str, Any]:
    """A config with one ``template`` instance named ``t`` pointing at the fake API."""
    return {"providers": {"t": {"type": "template", "base_url": api.base_url, **options}}}


async def test_complete_through_the_client(api: FakeTemplateAPI) -> None:
    async with llmx.Client(config(api)) as client:
        reply = await client.complete(model="t/tiny", prompt="hello there")

    assert reply.text == "echo: hello there"
    assert (reply.provider, reply.model, reply.finish_reason) == ("t", "tiny", "stop")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (2, 3)
    assert reply.cost == pytest.approx((2 * 0.5 + 3 * 1.5) / 1_000_000)
    assert api.requests == [{"model": "tiny", "prompt": "hello there"}]
    assert "Authorization" not in api.headers[0]


async def test_sends_the_api_key_and_the_conversation(
    api: FakeTemplateAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPLATE_API_KEY", "tk-secret")
    cfg = config(api, api_key={"env": "TEMPLATE_API_KEY"}, endpoint="/v2/generate")

    async with llmx.Client(cfg) as client:
        await client.complete(model="t/big", system="Be brief.", prompt="Hi")

    assert api.requests == [{"model": "big", "prompt": "system: Be brief.\n\nuser: Hi"}]
    assert api.headers[0]["Authorization"] == "Bearer tk-secret"


def test_model_info_needs_no_network() -> None:
    client = llmx.Client({"providers": {"t": {"type": "template"}}})

    info = client.model_info("t/tiny")
    assert info is not None
    assert info.context_window == 4096
    assert client.model_info("t/unknown") is None


async def test_unsupported_features_are_refused_before_sending(api: FakeTemplateAPI) -> None:
    async with llmx.Client(config(api)) as client:
        with pytest.raises(llmx.UnsupportedFeatureError):
            await client.complete(model="t/tiny", prompt="x", tools=[llmx.Tool("f")])

    assert api.requests == []


def test_a_misspelled_setting_is_a_config_error() -> None:
    with pytest.raises(
        llmx.ConfigError, match=r"extra fields found \(endpont\) @ \$\.providers\.t"
    ):
        llmx.Client({"providers": {"t": {"type": "template", "endpont": "/v2/generate"}}})


def test_discovered_through_its_entry_point() -> None:
    plugins = {p.name: p for p in llmx.Registry().plugins()}

    assert plugins["template"].distribution == "llmx-provider-template"


# -- error mapping, against the provider directly (no retries or fallback in the way) ---------


def build_provider(base_url: str, session: aiohttp.ClientSession) -> Any:
    """A ``template`` provider instance ``t``, built the way llmx builds one."""
    registration = llmx.Registry().get("provider", "template")
    assert registration.settings is not None
    cfg = llmx.ProviderConfig(type="template", base_url=base_url)
    return registration.factory(ProviderContext("t", cfg, registration.settings(), session))


@pytest.fixture
async def provider(api: FakeTemplateAPI) -> AsyncIterator[Any]:
    """A ``template`` provider talking to the fake API, with a session it borrows."""
    async with aiohttp.ClientSession() as session:
        yield build_provider(api.base_url, session)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, llmx.BadRequestError),
        (401, llmx.AuthenticationError),
        (404, llmx.ModelNotFoundError),
        (500, llmx.ServerError),
        (503, llmx.ServerError),
    ],
)
async def test_http_errors_map_to_llmx_errors(
    api: FakeTemplateAPI, provider: Any, status: int, error: type[llmx.ProviderError]
) -> None:
    api.replies.append((status, "nope", {}))

    with pytest.raises(error) as exc_info:
        await provider.complete(llmx.Request("tiny", "hi"))
    assert (exc_info.value.status, exc_info.value.provider) == (status, "t")
    assert "nope" in str(exc_info.value)


async def test_rate_limits_carry_retry_after(api: FakeTemplateAPI, provider: Any) -> None:
    api.replies.append((429, {"error": "slow down"}, {"Retry-After": "7"}))

    with pytest.raises(llmx.RateLimitError) as exc_info:
        await provider.complete(llmx.Request("tiny", "hi"))
    assert exc_info.value.retry_after == 7
    assert exc_info.value.retryable


@pytest.mark.parametrize("body", ["not json", {"output": "missing token counts"}, ["a list"]])
async def test_a_malformed_answer_is_a_malformed_response_error(
    api: FakeTemplateAPI, provider: Any, body: Any
) -> None:
    api.replies.append((200, body, {}))

    with pytest.raises(llmx.MalformedResponseError):
        await provider.complete(llmx.Request("tiny", "hi"))


async def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        provider = build_provider(f"http://127.0.0.1:{port}", session)
        with pytest.raises(llmx.ProviderConnectionError):
            await provider.complete(llmx.Request("tiny", "hi"))

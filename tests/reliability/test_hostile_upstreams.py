"""Hostile upstreams on 127.0.0.1: bodies that never end, redirects that would carry the
key away, and servers that echo credentials back. Each case runs a real client process
against a real server and prints its figures (``-s`` shows them):

* an endless 200 JSON body, an endless error body, an endless SSE line and an endless
  NDJSON line: the client's peak RSS growth and how soon after the cap was crossed the
  typed error arrived (issue 14: within the cap + 50 MB, within a second);
* redirects to another origin (and from https-style to plain http): never followed, the
  key never reaches the target;
* a key echoed in an error body or header: never in the error, its str, or a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import llmx
from tests._support import serve_app

CAP = 8 * 2**20
"""The caps the client processes run with (small, so each case takes a second)."""

CANARY = "sk-canary-0123456789abcdef"


class Hostile:
    """One loopback server, several hostile routes; records when each route had sent
    ``CAP`` bytes and what every request carried."""

    def __init__(self) -> None:
        self.crossed: dict[str, float] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        for path, kind in (
            ("/json/v1/chat/completions", "json"),
            ("/error/v1/chat/completions", "error"),
            ("/sse/v1/chat/completions", "sse"),
            ("/ndjson/stream", "ndjson"),
            ("/lying/v1/chat/completions", "lying"),
        ):
            app.router.add_post(path, self._endless(kind))
        for name in ("same", "other", "away"):
            app.router.add_post(f"/redirect-{name}/v1/chat/completions", self._redirect(name))
        app.router.add_post("/elsewhere/v1/chat/completions", self.elsewhere)
        app.router.add_post("/echo/v1/chat/completions", self.echo)
        self.runner, self.base = await serve_app(app)

    async def close(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    def _endless(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            await request.read()
            status = 500 if kind == "error" else 200
            ctype = {
                "sse": "text/event-stream",
                "ndjson": "application/x-ndjson",
            }.get(kind, "application/json")
            headers = {"Content-Type": ctype}
            if kind == "lying":
                headers["Content-Length"] = str(10 * CAP)  # announces more than the cap
            response = web.StreamResponse(status=status, headers=headers)
            await response.prepare(request)
            start = {
                "json": b'{"id": "x", "choices": [{"message": {"content": "',
                "error": b'{"error": {"message": "',
                "sse": b'data: {"choices": [{"delta": {"content": "',
                "ndjson": b'{"t": "',
                "lying": b"",
            }[kind]
            piece = b"a" * 65536
            sent = len(start)
            await response.write(start)
            try:
                while sent < 4 * CAP:  # stops on its own, far past the cap
                    await response.write(piece)
                    sent += len(piece)
                    if sent >= CAP and kind not in self.crossed:
                        self.crossed[kind] = time.time()
            except (ConnectionResetError, RuntimeError):
                pass  # the client closed the connection: as it should
            return response

        return handler

    def _redirect(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            self.seen.append((request.path, dict(request.headers)))
            port = self.base.rsplit(":", 1)[1]
            target = {
                "same": "/elsewhere/v1/chat/completions",  # same server: still not followed
                "other": f"http://localhost:{port}/elsewhere/v1/chat/completions",  # origin
                "away": "http://user:pw@example.invalid/steal?key=1",  # another host
            }[name]
            raise web.HTTPTemporaryRedirect(target)

        return handler

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, dict(request.headers)))
        return web.json_response({"choices": [{"message": {"content": "stolen"}}]})

    async def echo(self, request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "")
        extra = request.headers.get("X-Team-Token", "")
        return web.json_response(
            {"error": {"message": f"invalid key {key} (token {extra})", "type": "auth"}},
            status=401,
            headers={"X-Echo": key},
        )


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    await server.start()
    yield server
    await server.close()


_CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import llmx
    from llmx.http import Endpoint

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    async def main(base, kind, cap):
        provider = {"type": "openai", "base_url": f"{base}/{kind}/v1", "api_key": "k",
                    "retry": {"attempts": 3}, "max_response_bytes": cap,
                    "max_event_bytes": cap}
        async with llmx.Client({"providers": {"h": provider}}) as client:
            await client.complete(model="h/m", prompt="warm-up") if False else None
            before = rss_mb()
            error = None
            try:
                if kind == "sse":
                    await client.stream(model="h/m", prompt="hi").collect()
                elif kind == "ndjson":
                    from llmx.plugin import ProviderContext
                    from llmx._config import ProviderConfig
                    import aiohttp
                    class Decoder:
                        finished = False
                        final_event = "the end"
                        def feed(self, item): return ()
                        def end(self): return None
                    async with aiohttp.ClientSession() as session:
                        ctx = ProviderContext("h", ProviderConfig(type="x",
                              max_response_bytes=cap, max_event_bytes=cap), None, session)
                        http = Endpoint(ctx, base_url=base)
                        async for _ in http.stream(http.url("/ndjson/stream"), b"{}", "m",
                                                   Decoder(), framing="ndjson"):
                            pass
                else:
                    await client.complete(model="h/m", prompt="hi")
            except llmx.ProviderError as err:
                error = err
            at = time.time()
        # VmHWM: this process's own peak since its exec (getrusage's ru_maxrss would
        # count the parent's memory at the fork too)
        with open("/proc/self/status") as f:
            peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
        print(json.dumps({
            "before_mb": before, "peak_mb": peak, "error_at": at,
            "error": type(error).__name__ if error else None,
            "code": getattr(error, "code", None), "retryable": getattr(error, "retryable", None),
            "attempts": len(getattr(error, "attempts", ()) or ()),
            "message": str(error),
        }))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


@pytest.mark.parametrize("kind", ["json", "error", "sse", "ndjson", "lying"])
async def test_an_endless_upstream_is_cut_at_the_cap(hostile: Hostile, kind: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLIENT,
        hostile.base,
        kind,
        str(CAP),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    growth = result["peak_mb"] - result["before_mb"]
    print(
        f"\n[hostile {kind}] {result['error']} ({result['code']}) after the cap of "
        f"{CAP / 2**20:.0f} MiB; peak RSS growth {growth:.1f} MB; "
        + (
            f"error {result['error_at'] - hostile.crossed[kind]:.2f} s after the server "
            "had sent the cap"
            if kind in hostile.crossed and kind != "error"
            else "read 64 KiB of each error body, then closed"
            if kind == "error"
            else "refused before reading (Content-Length above the cap)"
        )
    )
    if kind == "error":
        # The error body is read to 64 KiB for its message, then the connection closed:
        # a server error, retried (three attempts), each cut short.
        assert result["error"] == "ServerError", result
        assert result["attempts"] == 3
        assert growth < 50
    else:
        assert result["error"] == "MalformedResponseError", result
        assert result["code"] == "too_large"
        assert result["retryable"] is False
        assert result["attempts"] == (0 if kind == "ndjson" else 1)  # not retried
        assert growth < CAP / 2**20 + 50, result
        assert "[providers.h]" in result["message"], result
    if kind in hostile.crossed and kind != "error":
        assert result["error_at"] - hostile.crossed[kind] < 1.0, (result, hostile.crossed)


def _provider(hostile: Hostile, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "openai",
        "base_url": f"{hostile.base}/{prefix}/v1",
        "api_key": CANARY,
        "retry": {"attempts": 1},
        **extra,
    }


@pytest.mark.parametrize("name", ["same", "other", "away"])
async def test_a_redirect_is_never_followed_with_the_key(hostile: Hostile, name: str) -> None:
    config = {
        "providers": {
            "r": _provider(hostile, f"redirect-{name}", headers={"X-Team-Token": CANARY + "t"})
        }
    }
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.MalformedResponseError) as info:
            await client.complete(model="r/m", prompt="hi")
    error = info.value
    print(f"\n[hostile redirect-{name}] {error}")
    assert error.code == "redirect"
    assert error.retryable is False
    assert error.status == 307
    assert "does not follow redirects" in str(error)
    assert [path for path, _ in hostile.seen] == [f"/redirect-{name}/v1/chat/completions"]
    assert CANARY not in str(error)
    assert "pw" not in str(error)
    assert "key=1" not in str(error)


async def test_a_redirect_names_its_target_without_its_credentials(hostile: Hostile) -> None:
    config = {"providers": {"r": _provider(hostile, "redirect-same")}}
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.MalformedResponseError) as info:
            await client.complete(model="r/m", prompt="hi")
    assert f"{hostile.base}/elsewhere/v1/chat/completions" in str(info.value)
    assert not any(path.startswith("/elsewhere") for path, _ in hostile.seen)


async def test_an_echoed_key_is_scrubbed_from_errors_and_logs(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    team = CANARY + "-team"
    config = {"providers": {"e": _provider(hostile, "echo", headers={"X-Team-Token": team})}}
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.AuthenticationError) as info:
            await client.complete(model="e/m", prompt="hi")
    text = f"{info.value} {info.value!r} {info.value.message}"
    assert CANARY not in text
    assert "invalid key Bearer ***" in text
    assert "(token ***)" in text
    logging.getLogger("llmx.test").warning("upstream said %s", info.value.args[0] + CANARY)
    assert CANARY not in caplog.text


def test_plain_http_to_another_host_with_a_key_is_refused_unless_allowed() -> None:
    from llmx._config import ProviderConfig
    from llmx.http import Endpoint
    from llmx.plugin import ProviderContext

    def endpoint(base: str, **config: Any) -> Endpoint:
        ctx = ProviderContext("p", ProviderConfig(type="x", **config), None, None)
        return Endpoint(ctx, base_url=base, secret="sk-abcdef")

    with pytest.raises(llmx.ConfigError, match=r"plain http to another machine.*allow_insecure"):
        endpoint("http://api.example.com/v1")
    endpoint("https://api.example.com/v1")
    endpoint("http://127.0.0.1:8080/v1")
    endpoint("http://localhost:8080/v1")
    endpoint("http://[::1]:8080/v1")
    endpoint("http://api.example.com/v1", allow_insecure_http=True)
    ctx = ProviderContext("p", ProviderConfig(type="x"), None, None)
    Endpoint(ctx, base_url="http://api.example.com/v1")  # no credential: nothing to protect

"""The first-party providers against the quirks of servers nobody here wrote, imitated
on 127.0.0.1 with their exact bodies: llama.cpp's server (its OpenAI and Anthropic
routes) answering an over-long prompt, a model list whose page cursor never advances,
and the User-Agent every request carries."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import llmx
from tests._support import serve_app

# llama.cpp's server (tools/server), for a prompt longer than its context (-c 4096):
# the same body on /v1/chat/completions and /v1/messages.
LLAMA_CPP_CONTEXT_ERROR = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 5023,
        "n_ctx": 4096,
    }
}

OPENAI_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "big",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "fits"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5023, "completion_tokens": 1, "total_tokens": 5024},
}


class Server:
    """A tiny HTTP server recording requests; ``routes`` maps (instance path prefix,
    path) to a handler."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.base = ""
        self.model_pages = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/small/v1/chat/completions", self.too_long)
        app.router.add_post("/small/v1/messages", self.too_long)
        app.router.add_post("/big/v1/chat/completions", self.answer)
        app.router.add_get("/loop/v1/models", self.same_page)
        app.middlewares.append(self.record)
        self.runner, self.base = await serve_app(app)

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        response: web.StreamResponse = await handler(request)
        return response

    async def too_long(self, request: web.Request) -> web.Response:
        return web.json_response(LLAMA_CPP_CONTEXT_ERROR, status=400)

    async def answer(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAI_ANSWER)

    async def same_page(self, request: web.Request) -> web.Response:
        # A server that ignores after_id and repeats its first page with has_more.
        self.model_pages += 1
        return web.json_response(
            {
                "data": [
                    {"type": "model", "id": "local-a", "display_name": "A"},
                    {"type": "model", "id": "local-b", "display_name": "B"},
                ],
                "has_more": True,
                "first_id": "local-a",
                "last_id": "local-b",
            }
        )


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "LLMX_")):
            monkeypatch.delenv(name)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    await srv.start()
    yield srv
    assert srv.runner is not None
    await srv.runner.cleanup()


def _instance(server: Server, kind: str, prefix: str, **extra: Any) -> dict[str, Any]:
    path = "/v1" if kind == "openai" else ""
    return {
        "type": kind,
        "base_url": f"{server.base}/{prefix}{path}",
        "api_key": "sk-local",
        "retry": {"attempts": 1},
        **extra,
    }


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_llama_cpp_context_size_error_is_a_context_window_error(
    server: Server, kind: str
) -> None:
    config = {"providers": {"small": _instance(server, kind, "small")}}
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.ContextWindowExceededError) as info:
            await client.complete(model="small/local", prompt="a very long prompt")
    assert info.value.status == 400
    assert info.value.code == "exceed_context_size_error"
    assert info.value.provider == "small"


async def test_an_alias_moves_on_to_a_larger_window_after_llama_cpp_says_too_long(
    server: Server,
) -> None:
    config = {
        "providers": {
            "small": _instance(server, "openai", "small"),
            "big": _instance(server, "openai", "big"),
        },
        "aliases": {"local": ["small/local", "big/local"]},
    }
    async with llmx.Client(config) as client:
        reply = await client.complete(model="local", prompt="a very long prompt")
    assert reply.text == "fits"
    assert reply.provider == "big"
    assert [a.provider for a in reply.attempts] == ["small", "big"]


async def test_model_listing_stops_when_the_page_cursor_does_not_advance(server: Server) -> None:
    config = {"providers": {"loop": _instance(server, "anthropic", "loop")}}
    async with llmx.Client(config) as client:
        models = await client.list_models("loop")
    assert [m.id for m in models] == ["local-a", "local-b"]
    assert server.model_pages == 2  # the first page, then the repeated cursor: no more


async def test_every_request_carries_llmx_user_agent_unless_configured(server: Server) -> None:
    config = {
        "providers": {
            "big": _instance(server, "openai", "big"),
            "custom": _instance(server, "openai", "big", headers={"User-Agent": "my-app/2.0"}),
        }
    }
    async with llmx.Client(config) as client:
        await client.complete(model="big/local", prompt="hi")
        await client.complete(model="custom/local", prompt="hi")
    agents = [headers["User-Agent"] for _, _, headers in server.requests]
    assert agents == [f"llmx/{llmx.__version__}", "my-app/2.0"]
    assert json.dumps(server.requests).count("sk-local") == 2  # the key went as auth only

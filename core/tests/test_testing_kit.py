"""Tests of the testing kit itself: the scripted provider, and the fake OpenAI server's
wire format checked with raw aiohttp requests (no llmx provider involved).

The fake server's fixtures reproduce OpenAI's documented Chat Completions behaviour
(API reference, "Create chat completion" and "The chat completion chunk object"):
``chat.completion`` JSON bodies, ``text/event-stream`` bodies of ``data: {...}`` events
ending with ``data: [DONE]``, the ``stream_options.include_usage`` final chunk with
``"choices": []``, and ``{"error": {message, type, param, code}}`` error bodies.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import llmx
from llmx.plugin import CONTRACT_VERSION
from llmx.testing import (
    ErrorReply,
    MidStreamError,
    RawReply,
    Reply,
    ScriptedProvider,
    Stall,
    approx_tokens,
    scripted_client,
    scripted_plugin,
)
from llmx_openai.testing import FakeOpenAIServer

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def chat(
    text: str = "Hello", *, stream: bool = False, usage: bool = False, model: str = "gpt-4o-mini"
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
        if usage:
            body["stream_options"] = {"include_usage": True}
    return body


def events_of(raw: bytes, line_ending: bytes = b"\n") -> list[bytes]:
    """The ``data:`` payloads of an SSE body, checking the exact framing."""
    separator = line_ending * 2
    assert raw.endswith(separator)
    blocks = raw[: -len(separator)].split(separator)
    for block in blocks:
        assert block.startswith(b"data: ")
        assert line_ending not in block
    return [b[len(b"data: ") :] for b in blocks]


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, server: FakeOpenAIServer, body: Any, **kw: Any
) -> tuple[int, Any, bytes]:
    headers = kw.pop("headers", AUTH)
    async with http.post(
        f"{server.base_url}/chat/completions", json=body, headers=headers, **kw
    ) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def read_into(resp: aiohttp.ClientResponse, buffer: bytearray) -> None:
    async for piece in resp.content.iter_any():
        buffer += piece


# -- scripted provider ----------------------------------------------------------------------


async def test_scripted_provider_plays_its_script_then_echoes() -> None:
    error = llmx.RateLimitError("slow down", provider="scripted")
    canned = llmx.Response(text="canned", model="m", provider="scripted", finish_reason="length")
    provider = ScriptedProvider(["first", canned, error])
    async with scripted_client(provider, config={"retry": {"policy": "none"}}) as client:
        first = await client.complete(model="scripted/small", prompt="one")
        second = await client.complete(model="scripted/small", prompt="two")
        with pytest.raises(llmx.RateLimitError):
            await client.complete(model="scripted/small", prompt="three")
        echo = await client.complete(model="scripted/small", system="be brief", prompt="echo me")
    assert first.text == "first"
    assert first.finish_reason == "stop"
    assert first.usage == llmx.Usage(approx_tokens("one"), approx_tokens("first"))
    assert (second.text, second.finish_reason) == ("canned", "length")
    assert echo.text == "echo me"
    assert [r.messages[-1].text for r in provider.requests] == ["one", "two", "three", "echo me"]
    assert provider.remaining == 0


async def test_scripted_provider_streams_text_and_tool_calls() -> None:
    call = llmx.ToolCall("call_1", "lookup", '{"q": "x"}')
    provider = ScriptedProvider(
        [
            llmx.Response(
                text="Looking it up",
                model="m",
                provider="p",
                tool_calls=(call,),
                finish_reason="tool_calls",
            )
        ]
    )
    async with (
        scripted_client(provider) as client,
        client.stream(model="scripted/m", prompt="hi") as stream,
    ):
        chunks = [c async for c in stream]
    texts = [c.text for c in chunks if isinstance(c, llmx.TextDelta)]
    assert len(texts) > 1
    assert "".join(texts) == "Looking it up"
    assert stream.response is not None
    assert stream.response.tool_calls == (call,)
    assert stream.response.finish_reason == "tool_calls"


async def test_scripted_model_info_and_cost() -> None:
    info = llmx.ModelInfo("small", input_price=1.0, output_price=2.0)
    provider = ScriptedProvider(["answer"])
    async with scripted_client(provider, models={"small": info}) as client:
        assert client.model_info("scripted/small") == info
        reply = await client.complete(model="scripted/small", prompt="question")
    expected = (approx_tokens("question") * 1.0 + approx_tokens("answer") * 2.0) / 1_000_000
    assert reply.cost == pytest.approx(expected)


async def test_scripted_client_merges_config_and_custom_name() -> None:
    client = scripted_client(["a", "b"], name="canned", config={"aliases": {"smart": ["canned/x"]}})
    async with client:
        assert client.instances() == ["canned"]
        reply = await client.complete(model="smart", prompt="hi")
    assert reply.text == "a"
    assert reply.provider == "canned"


def test_scripted_plugin_registers_its_provider_type() -> None:
    plugin = scripted_plugin(["x"], name="mock")
    assert plugin.llmx_contract == CONTRACT_VERSION
    registry = llmx.Registry(entry_points=[])
    registry.register(plugin, name="mock-plugin")
    registration = registry.get("provider", "mock")
    assert registration.factory is plugin
    assert registration.plugin == "mock-plugin"


async def test_scripted_provider_fixture(scripted_provider: ScriptedProvider) -> None:
    scripted_provider.enqueue("from the fixture")
    async with scripted_client(scripted_provider) as client:
        assert (await client.complete(model="scripted/m", prompt="x")).text == "from the fixture"


# -- fake OpenAI server: JSON --------------------------------------------------------------


async def test_default_reply_echoes_the_last_user_message(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    status, headers, raw = await post(http, server, chat("héllo wörld"))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["x-request-id"].startswith("req_")
    body = json.loads(raw)
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "héllo wörld",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = body["usage"]
    assert usage["prompt_tokens"] == usage["completion_tokens"] == approx_tokens("héllo wörld")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "héllo wörld".encode() in raw  # UTF-8 on the wire, not \\u escapes
    recorded = server.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.json == chat("héllo wörld")
    assert server.request_count == 1


async def test_json_reply_with_tool_calls_and_usage_details(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(
        Reply(
            tool_calls=[("call_abc", "get_weather", '{"city":"Paris"}')],
            usage=(100, 20),
            cached_tokens=64,
            reasoning_tokens=8,
            model="gpt-4o-2024-08-06",
            id="chatcmpl-fixed",
        )
    )
    _, _, raw = await post(http, server, chat())
    body = json.loads(raw)
    assert body["id"] == "chatcmpl-fixed"
    assert body["model"] == "gpt-4o-2024-08-06"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None  # null content alongside tool calls
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert body["usage"]["prompt_tokens"] == 100
    assert body["usage"]["completion_tokens"] == 20
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 64
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 8


async def test_omit_usage_in_json(server: FakeOpenAIServer, http: aiohttp.ClientSession) -> None:
    server.enqueue(Reply("x", omit_usage=True))
    _, _, raw = await post(http, server, chat())
    assert "usage" not in json.loads(raw)


# -- fake OpenAI server: SSE ---------------------------------------------------------------


async def test_stream_framing_done_and_usage_chunk(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("Hello there", chunk_size=4))
    status, headers, raw = await post(http, server, chat(stream=True, usage=True))
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Transfer-Encoding"] == "chunked"
    payloads = events_of(raw)
    assert payloads[-1] == b"[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert contents == ["Hell", "o th", "ere"]
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all(c["usage"] is None for c in chunks[:-1])  # every chunk carries "usage": null
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == approx_tokens("Hello there")


async def test_stream_without_include_usage_has_no_usage_chunk(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(http, server, chat("abc", stream=True))
    chunks = [json.loads(p) for p in events_of(raw)[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("repeat", [False, True])
async def test_stream_tool_call_deltas(
    server: FakeOpenAIServer, http: aiohttp.ClientSession, repeat: bool
) -> None:
    server.enqueue(
        Reply(
            tool_calls=[("call_1", "f", '{"a": 1}'), ("call_2", "g", "{}")],
            chunk_size=3,
            repeat_tool_call_ids=repeat,
        )
    )
    _, _, raw = await post(http, server, chat(stream=True))
    chunks = [json.loads(p) for p in events_of(raw)[:-1]]
    deltas = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert deltas[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    later = [d for d in deltas[1:] if d["index"] == 0]
    assert "".join(d["function"]["arguments"] for d in later) == '{"a": 1}'
    assert all(("id" in d) is repeat for d in later)
    assert any(d["index"] == 1 and d["id"] == "call_2" for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("line_ending", ["\r\n", "\r"])
async def test_stream_line_endings(
    server: FakeOpenAIServer, http: aiohttp.ClientSession, line_ending: str
) -> None:
    server.enqueue(Reply("hi", line_ending=line_ending))
    _, _, raw = await post(http, server, chat(stream=True))
    assert events_of(raw, line_ending.encode())[-1] == b"[DONE]"


async def test_omit_done_omit_usage_and_end_after(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(
        Reply("abc", omit_done=True, omit_usage=True), Reply("abcdef", chunk_size=1, end_after=3)
    )
    _, _, raw = await post(http, server, chat(stream=True, usage=True))
    payloads = events_of(raw)
    assert b"[DONE]" not in payloads
    assert json.loads(payloads[-1])["choices"][0]["finish_reason"] == "stop"
    _, _, raw = await post(http, server, chat(stream=True, usage=True))
    chunks = [json.loads(p) for p in events_of(raw)]
    assert len(chunks) == 3
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


async def test_split_at_produces_separate_reads(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    # "é" is two bytes in UTF-8: cut between them, and between the "\r" and "\n" ending a line.
    server.enqueue(Reply("é", id="chatcmpl-x", line_ending="\r\n"))
    _, _, whole = await post(http, server, chat(stream=True))
    inside_char = whole.index("é".encode()) + 1
    inside_crlf = whole.index(b"\r\n") + 1
    offsets = sorted({inside_crlf, inside_char, len(whole) - 3})
    server.enqueue(Reply("é", id="chatcmpl-x", line_ending="\r\n", split_at=offsets))
    async with http.post(
        f"{server.base_url}/chat/completions", json=chat(stream=True), headers=AUTH
    ) as resp:
        reads = [piece async for piece in resp.content.iter_any()]
    created = re.compile(rb'"created":\d+')
    assert created.sub(b"", b"".join(reads)) == created.sub(b"", whole)
    boundaries = set()
    position = 0
    for piece in reads[:-1]:
        position += len(piece)
        boundaries.add(position)
    assert set(offsets) <= boundaries


async def test_drop_after_aborts_the_connection(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("abcdefghijklmnopqrstuvwxyz", chunk_size=2, drop_after=150))
    received = bytearray()
    async with http.post(
        f"{server.base_url}/chat/completions", json=chat(stream=True), headers=AUTH
    ) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_into(resp, received)
    assert len(received) == 150
    assert b"[DONE]" not in received


async def test_drop_after_cuts_a_json_body(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("a long enough answer", drop_after=20))
    async with http.post(f"{server.base_url}/chat/completions", json=chat(), headers=AUTH) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_mid_stream_error_event(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(
        MidStreamError(after_events=2, text="partial answer"), MidStreamError(status=503)
    )
    _, _, raw = await post(http, server, chat(stream=True))
    payloads = [json.loads(p) for p in events_of(raw)]
    assert len(payloads) == 3
    assert payloads[-1] == {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    status, _, raw = await post(http, server, chat())
    assert status == 503
    assert json.loads(raw)["error"]["type"] == "server_error"


# -- fake OpenAI server: errors, auth, endpoints --------------------------------------------


async def test_error_replies(server: FakeOpenAIServer, http: aiohttp.ClientSession) -> None:
    server.enqueue(
        ErrorReply(429, headers={"retry-after": "2"}),
        ErrorReply(
            400,
            message="This model's maximum context length is 128000 tokens.",
            code="context_length_exceeded",
            param="messages",
        ),
        ErrorReply(502, body="<html><body><h1>502 Bad Gateway</h1></body></html>"),
        ErrorReply(422, body={"detail": "Input should be a valid string"}),
        RawReply(200, b'{"choices": [', content_type="application/json"),
    )
    status, headers, raw = await post(http, server, chat())
    assert status == 429
    assert headers["retry-after"] == "2"
    assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
    status, _, raw = await post(http, server, chat())
    assert (status, json.loads(raw)) == (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    )
    status, headers, raw = await post(http, server, chat())
    assert (status, headers["Content-Type"]) == (502, "text/html; charset=utf-8")
    assert raw.startswith(b"<html>")
    status, _, raw = await post(http, server, chat())
    assert (status, json.loads(raw)) == (422, {"detail": "Input should be a valid string"})
    status, _, raw = await post(http, server, chat())
    assert (status, raw) == (200, b'{"choices": [')


async def test_auth_is_checked(server: FakeOpenAIServer, http: aiohttp.ClientSession) -> None:
    server.enqueue(Reply("not consumed by refused requests"))
    status, _, raw = await post(http, server, chat(), headers={})
    assert status == 401
    assert json.loads(raw)["error"]["code"] is None
    assert "didn't provide an API key" in json.loads(raw)["error"]["message"]
    wrong = "sk-wrong-0123456789abcdef"
    status, _, raw = await post(http, server, chat(), headers={"Authorization": f"Bearer {wrong}"})
    error = json.loads(raw)["error"]
    assert (status, error["code"], error["type"]) == (
        401,
        "invalid_api_key",
        "invalid_request_error",
    )
    assert wrong not in error["message"]
    assert server.pending == 1
    assert server.request_count == 2


async def test_no_auth_check_without_api_key(http: aiohttp.ClientSession) -> None:
    async with FakeOpenAIServer(api_key=None) as server:
        status, _, _ = await post(http, server, chat(), headers={})
    assert status == 200


async def test_models_and_unknown_urls(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.base_url}/models", headers=AUTH) as resp:
        listing = await resp.json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == server.models
    assert listing["data"][0]["object"] == "model"
    async with http.get(f"{server.base_url}/models/gpt-4o", headers=AUTH) as resp:
        assert (await resp.json())["id"] == "gpt-4o"
    async with http.get(f"{server.base_url}/models/nope", headers=AUTH) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "model_not_found"
    async with http.post(f"{server.base_url}/nothing", headers=AUTH) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["message"] == "Invalid URL (POST /v1/nothing)"


async def test_bad_request_bodies(server: FakeOpenAIServer, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{server.base_url}/chat/completions", data=b"{nope", headers=AUTH
    ) as resp:
        assert resp.status == 400
        assert "could not parse the JSON body" in (await resp.json())["error"]["message"]
    status, _, _ = await post(http, server, {"messages": []})
    assert status == 400


async def test_stall_and_client_disconnect(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(Stall(5.0))
    with pytest.raises(asyncio.TimeoutError):
        await post(http, server, chat(), timeout=aiohttp.ClientTimeout(total=0.2))
    server.enqueue(Reply("x" * 40, chunk_size=1, chunk_delay=0.01))
    async with http.post(
        f"{server.base_url}/chat/completions", json=chat(stream=True), headers=AUTH
    ) as resp:
        await resp.content.readany()
        resp.close()
    await server.wait_for_disconnects(1, timeout=5)
    assert server.disconnects >= 1


# -- thread mode, fixture, imports --------------------------------------------------------------


def test_thread_mode_from_sync_code() -> None:
    with FakeOpenAIServer().in_thread() as server:
        server.enqueue(Reply("from a thread"))
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=json.dumps(chat()).encode(),
            headers={**AUTH, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["choices"][0]["message"]["content"] == "from a thread"
        url = server.base_url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/models", timeout=2)


async def test_fake_openai_fixture_serves_async_tests(
    fake_openai: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    fake_openai.enqueue(Reply("threaded"))
    status, _, raw = await post(http, fake_openai, chat())
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "threaded"


def test_reply_validation() -> None:
    with pytest.raises(ValueError, match="line_ending"):
        Reply(line_ending="\n\n")
    with pytest.raises(ValueError, match="chunk_size"):
        Reply(chunk_size=0)
    assert Reply(split_at=[9, 3, 3]).split_at == (3, 9)
    assert Reply(tool_calls=[("a", "b", "{}")]).derived_finish_reason == "tool_calls"
    assert RawReply(body="é").body == "é".encode()


def test_import_llmx_does_not_import_the_kit() -> None:
    code = (
        "import sys, llmx\n"
        "llmx.Client, llmx.Request\n"
        "assert 'llmx.testing' not in sys.modules, 'import llmx imported the testing kit'\n"
        "import llmx.testing._pytest_plugin\n"
        "assert 'aiohttp' not in sys.modules, 'the pytest plugin imported aiohttp'\n"
        "import llmx_openai.testing._pytest_plugin\n"
        "assert 'aiohttp' not in sys.modules, 'the openai pytest plugin imported aiohttp'\n"
        "assert 'llmx_openai.testing._openai' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

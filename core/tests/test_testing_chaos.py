"""Fault injection in the fake servers (``llmx.testing``: ``Faults``, ``Fault``,
``schedule``, ``set_down``), checked with raw aiohttp requests — no llmx provider
involved — so the lead's reliability tests can trust what each fault does on the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

from llmx.testing import ErrorReply, Fault, Faults, Injection, Reply
from llmx_openai.testing import FakeOpenAIServer

AUTH = {"Authorization": "Bearer test-key"}


def chat(stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello there"}],
    }
    if stream:
        body["stream"] = True
    return body


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, server: FakeOpenAIServer, *, stream: bool = False
) -> tuple[int, dict[str, str], bytes]:
    async with http.post(
        f"{server.base_url}/chat/completions", json=chat(stream), headers=AUTH
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_scheduled_errors_with_and_without_retry_after(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.schedule([Fault.error(429, retry_after=2), Fault.error(429), Fault.error(529)])
    status, headers, body = await post(http, server)
    assert (status, headers.get("Retry-After")) == (429, "2")
    assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
    status, headers, _ = await post(http, server)
    assert (status, "Retry-After" in headers) == (429, False)
    status, _, body = await post(http, server)
    assert status == 529
    assert json.loads(body)["error"]["type"] == "server_error"
    status, _, body = await post(http, server)  # the schedule is used up: healthy again
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "Hello there"
    assert server.injected == {"error": 3}
    assert [i.request for i in server.injections] == [1, 2, 3]


async def test_replacing_faults_leave_the_scripted_replies_queued(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("scripted answer"))
    server.schedule([Fault.error(503), Fault.reset(), None])
    assert (await post(http, server))[0] == 503
    with pytest.raises(aiohttp.ClientError):
        await post(http, server)
    status, _, body = await post(http, server)
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "scripted answer"
    assert server.pending == 0
    assert server.injected == {"error": 1, "reset": 1}


async def test_reset_closes_the_connection_without_an_answer(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.schedule([Fault.reset(), Fault.reset()])
    for stream in (False, True):
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await post(http, server, stream=stream)
    assert (await post(http, server))[0] == 200


async def test_stall_before_the_headers(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.schedule([Fault.stall(0.6)])
    timeout = aiohttp.ClientTimeout(total=0.2)
    started = time.perf_counter()
    request = http.post(
        f"{server.base_url}/chat/completions", json=chat(), headers=AUTH, timeout=timeout
    )
    with pytest.raises(asyncio.TimeoutError):
        await request
    assert time.perf_counter() - started < 0.5
    await server.wait_for_disconnects(1, timeout=3)  # the stalled answer finds the client gone


async def test_stall_mid_stream_sends_some_then_pauses(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("a" * 30, chunk_size=3))
    server.schedule([Fault.stall_mid_stream(0.3)])
    arrivals: list[tuple[float, bytes]] = []
    started = time.perf_counter()
    async with http.post(
        f"{server.base_url}/chat/completions", json=chat(stream=True), headers=AUTH
    ) as resp:
        assert resp.status == 200
        arrivals.extend(
            [(time.perf_counter() - started, piece) async for piece in resp.content.iter_any()]
        )
    body = b"".join(p for _, p in arrivals)
    assert body.endswith(b"data: [DONE]\n\n")  # the whole stream, in the end
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) >= 0.25
    assert arrivals[0][0] < 0.2  # the first events came before the pause


async def test_stall_mid_body_of_a_json_answer(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.schedule([Fault.stall_mid_stream(0.25)])
    started = time.perf_counter()
    status, _, body = await post(http, server)
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "Hello there"
    assert time.perf_counter() - started >= 0.25


async def test_drop_aborts_halfway(server: FakeOpenAIServer, http: aiohttp.ClientSession) -> None:
    server.enqueue(Reply("x" * 60, chunk_size=5), Reply("y" * 60))
    server.schedule([Fault.drop(), Fault.drop()])
    received: list[bytes] = []

    async def read_stream() -> None:
        async with http.post(
            f"{server.base_url}/chat/completions", json=chat(stream=True), headers=AUTH
        ) as resp:
            async for piece in resp.content.iter_any():
                received.append(piece)  # noqa: PERF401 - keep what arrived before the drop

    with pytest.raises(aiohttp.ClientPayloadError):
        await read_stream()
    assert b"".join(received).startswith(b"data: ")
    assert b"[DONE]" not in b"".join(received)
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(http, server)
    assert server.injected["drop"] == 2


async def test_truncate_ends_cleanly_but_early(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("a complete answer", chunk_size=2), Reply("whole json answer"))
    server.schedule([Fault.truncate(), Fault.truncate()])
    status, _, body = await post(http, server, stream=True)
    assert status == 200
    assert body.startswith(b"data: ")
    assert b'finish_reason":"stop' not in body
    assert b"[DONE]" not in body
    status, headers, body = await post(http, server)
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)  # a complete HTTP answer...
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        json.loads(body)  # ...whose JSON is cut short


async def test_malformed_json_and_stream(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.schedule([Fault.malformed(), Fault.malformed()])
    status, _, body = await post(http, server)
    assert status == 200
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(body)
    status, _, body = await post(http, server, stream=True)
    events = [e for e in body.split(b"\n\n") if e]
    json.loads(events[0][len(b"data: ") :])  # the first event is fine
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(events[1][len(b"data: ") :])


async def test_slow_drip(server: FakeOpenAIServer, http: aiohttp.ClientSession) -> None:
    server.schedule([Fault.slow(0.01)])
    pieces = 0
    started = time.perf_counter()
    async with http.post(
        f"{server.base_url}/chat/completions", json=chat(stream=True), headers=AUTH
    ) as resp:
        async for _ in resp.content.iter_any():
            pieces += 1
        assert resp.status == 200
    assert pieces > 10
    assert time.perf_counter() - started >= 0.1


async def _statuses(server: FakeOpenAIServer, http: aiohttp.ClientSession, n: int) -> list[int]:
    return [(await post(http, server))[0] for _ in range(n)]


async def test_random_errors_are_reproducible_and_counted(http: aiohttp.ClientSession) -> None:
    runs = []
    for _ in range(2):
        async with FakeOpenAIServer() as server:
            server.chaos(Faults(p_error=0.3, statuses=(500, 503), seed=1))
            statuses = await _statuses(server, http, 60)
            errors = [s for s in statuses if s != 200]
            assert set(errors) <= {500, 503}
            assert server.injected["error"] == len(errors)
            assert [i.request for i in server.injections] == [
                n for n, s in enumerate(statuses, 1) if s != 200
            ]
            runs.append(statuses)
    assert runs[0] == runs[1]
    assert 8 <= runs[0].count(500) + runs[0].count(503) <= 30


async def test_another_seed_gives_other_faults(http: aiohttp.ClientSession) -> None:
    seen = []
    for seed in (1, 2):
        async with FakeOpenAIServer() as server:
            server.chaos(Faults(p_error=0.5, seed=seed))
            seen.append(await _statuses(server, http, 30))
    assert seen[0] != seen[1]


async def test_retry_after_probability_and_chaos_off(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.chaos(Faults(p_error=1.0, statuses=(429,), retry_after=1.5, p_retry_after=0.5, seed=3))
    with_header = 0
    for _ in range(20):
        status, headers, _ = await post(http, server)
        assert status == 429
        with_header += headers.get("Retry-After") == "1.5"
    assert 3 <= with_header <= 17
    server.chaos(None)
    assert (await post(http, server))[0] == 200


async def test_mixed_faults_by_kind(server: FakeOpenAIServer, http: aiohttp.ClientSession) -> None:
    server.chaos(Faults(p_reset=0.25, p_truncate=0.25, p_malformed=0.25, seed=7))
    outcomes = []
    for _ in range(40):
        try:
            _, _, body = await post(http, server)
        except aiohttp.ClientError:
            outcomes.append("reset")
            continue
        try:
            json.loads(body)
            outcomes.append("ok")
        except ValueError:
            outcomes.append("broken")
    injected = server.injected
    assert outcomes.count("reset") == injected["reset"]
    assert outcomes.count("broken") == injected["truncate"] + injected["malformed"]
    assert outcomes.count("ok") == 40 - sum(injected.values())
    assert all(isinstance(i, Injection) for i in server.injections)


async def test_schedule_wins_over_chaos(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.chaos(Faults(p_error=1.0, statuses=(500,)))
    server.schedule([None, Fault.error(502)])
    assert await _statuses(server, http, 3) == [200, 502, 500]


async def test_down_resets_every_connection_until_back_up(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    assert (await post(http, server))[0] == 200  # a pooled keep-alive connection exists
    server.set_down(True)
    assert server.down
    for _ in range(3):
        with pytest.raises(aiohttp.ClientError):
            await post(http, server)
    with pytest.raises(aiohttp.ClientError):
        async with http.get(f"{server.base_url}/models", headers=AUTH):
            pass
    assert server.injected["down"] >= 4  # aiohttp retries once on a reused connection
    assert server.request_count == 1  # refused requests are not recorded
    server.set_down(False)
    assert (await post(http, server))[0] == 200


def test_down_switch_from_another_thread() -> None:
    with FakeOpenAIServer().in_thread() as server:

        async def main() -> list[str]:
            out = []
            async with aiohttp.ClientSession() as http:
                for down in (True, False):
                    server.set_down(down)
                    try:
                        out.append(str((await post(http, server))[0]))
                    except aiohttp.ClientError:
                        out.append("down")
            return out

        assert asyncio.run(main()) == ["down", "200"]


async def test_faults_render_in_each_providers_own_format(http: aiohttp.ClientSession) -> None:
    async with FakeAnthropicServer() as anthropic:
        anthropic.schedule([Fault.error(529), Fault.error(429, retry_after=4)])
        headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "x"}],
        }
        async with http.post(f"{anthropic.url}/v1/messages", json=body, headers=headers) as resp:
            assert resp.status == 529
            assert (await resp.json())["error"] == {
                "type": "overloaded_error",
                "message": "Overloaded",
            }
        async with http.post(f"{anthropic.url}/v1/messages", json=body, headers=headers) as resp:
            assert resp.status == 429
            assert resp.headers["retry-after"] == "4"
            assert (await resp.json())["error"]["type"] == "rate_limit_error"
    async with FakeGeminiServer() as gemini:
        gemini.schedule([Fault.error(503)])
        url = f"{gemini.base_url}/models/gemini-2.5-flash:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
        async with http.post(url, json=body, headers={"x-goog-api-key": "test-key"}) as resp:
            assert resp.status == 503
            assert (await resp.json())["error"]["status"] == "UNAVAILABLE"


async def test_only_model_requests_draw_faults(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.schedule([Fault.error(500)])
    async with http.get(f"{server.base_url}/models", headers=AUTH) as resp:
        assert resp.status == 200
    assert server.injected == {}
    assert (await post(http, server))[0] == 500
    assert len(server.model_requests) == 1


def test_fault_and_faults_validation() -> None:
    with pytest.raises(ValueError, match="add up to"):
        Faults(p_error=0.6, p_reset=0.6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(p_drop=1.5)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Faults(p_error=0.1, statuses=(200,))
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Fault.error(302)
    assert Fault.slow(0.5) == Fault("slow", seconds=0.5)


async def test_clear_forgets_counters(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    server.enqueue(ErrorReply(500))
    server.schedule([Fault.error(502)])
    await post(http, server)
    server.clear()
    assert (server.injected, server.injections, server.pending, server.requests) == ({}, [], 0, [])

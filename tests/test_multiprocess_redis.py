"""Several processes, one Redis: together they stay under one rate limit, and one
process's answer is another's cache hit.

Four worker processes (real ``python`` subprocesses with llmx, llmx-provider-openai and
llmx-redis) send to one fake OpenAI server running in this process's thread, through a
Redis limiter of 120 requests per minute enforced over 5-second windows (10 per
window). The server's arrival times must keep the quota in every window.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmx_redis.testing import RedisServer

from llmx_openai.testing import FakeOpenAIServer

WORKER = r"""
import asyncio, json, sys, time
import llmx

async def main() -> None:
    args = json.loads(sys.argv[1])
    out = {"sent": 0, "refused": 0, "cached": 0}
    async with llmx.Client(args["config"]) as client:
        if args["mode"] == "rate":
            await asyncio.sleep(max(0.0, args["start"] - time.time()))

            async def sender(k: int) -> None:
                i = 0
                while time.time() < args["end"]:
                    i += 1
                    try:
                        await client.complete(model="main/gpt-4o-mini", prompt=f"{args['id']}-{k}-{i}")
                        out["sent"] += 1
                    except llmx.RateLimitError:
                        out["refused"] += 1

            tasks = [asyncio.ensure_future(sender(k)) for k in range(args["concurrency"])]
            await asyncio.wait(tasks, timeout=max(0.0, args["end"] - time.time()))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        else:
            response = await client.complete(model="main/gpt-4o-mini", prompt=args["prompt"])
            out["cached"] = int(response.cached)
            out["text"] = response.text
    print(json.dumps(out))

asyncio.run(main())
"""


class TimedServer(FakeOpenAIServer):
    """The fake OpenAI server, noting when each chat request arrived (wall clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def route(self, method: str, path: str) -> Any:
        handler = super().route(method, path)
        if handler is None or path != "/v1/chat/completions":
            return handler

        async def timed(request: Any, recorded: Any) -> Any:
            self.arrivals.append(time.time())
            return await handler(request, recorded)

        return timed


@pytest.fixture
def server() -> Iterator[TimedServer]:
    with TimedServer().in_thread() as fake:
        yield fake


def _config(fake: FakeOpenAIServer, redis_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {
            "main": {
                "type": "openai",
                "base_url": fake.base_url,
                "api_key": "test-key",
                "limits": {"rpm": 120, "period": 5, "max_wait": 30},
            }
        },
        "retry": {"attempts": 1},
        "limiter": {"backend": "redis", "url": redis_url},
        **extra,
    }


def _spawn(script: Path, args: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    j = 0
    for i in range(len(times)):
        while times[i] - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_four_processes_stay_under_one_quota(
    server: TimedServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.flush()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start = time.time() + 4  # time for every worker to import and connect
    window = 20.0
    config = _config(server, redis_server.url)
    workers = [
        _spawn(
            script,
            {
                "mode": "rate",
                "id": n,
                "config": config,
                "start": start,
                "end": start + window,
                "concurrency": 4,
            },
        )
        for n in range(4)
    ]
    results = [_result(w) for w in workers]
    inside = [t for t in server.arrivals if start <= t < start + window]
    rate = len(inside) / window * 60
    print(
        f"\n4 processes, quota 120/min over 5 s windows: {len(inside)} requests in {window:g} s = {rate:.1f}/min"
    )
    # every 5-second window holds at most 10 (50 ms less, for the way from Redis to the server)
    assert _max_in_window(server.arrivals, 5.0 - 0.05) <= 10, sorted(server.arrivals)
    assert len(inside) <= 40  # 120/min over 20 s
    assert len(inside) >= 30, results  # and the limiter does not starve the workers
    assert sum(r["sent"] for r in results) == len(server.arrivals)
    assert all(r["sent"] > 0 for r in results)  # every process got its turns


def test_one_process_answer_is_another_process_cache_hit(
    server: TimedServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.flush()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    config = _config(server, redis_server.url, cache={"backend": "redis", "url": redis_server.url})
    args = {"mode": "once", "config": config, "prompt": "shared question"}
    first = _result(_spawn(script, args))
    second = _result(_spawn(script, args))
    assert first["cached"] == 0
    assert second["cached"] == 1
    assert second["text"] == first["text"]
    assert len(server.arrivals) == 1

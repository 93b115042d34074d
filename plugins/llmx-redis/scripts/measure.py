"""Figures for docs/caching.md, outside pytest: cache hit latency per backend, and the
accuracy of the rate limiter (one process, local and Redis; four processes, Redis).

    .venv/bin/python plugins/llmx-redis/scripts/measure.py [--window 60] [--skip-limits]

Starts its own redis-server (llmx_redis.testing) and fake OpenAI server (llmx.testing,
in a thread, so the client's loop does not serve it). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llmx_redis.testing import RedisServer

import llmx
from llmx_openai.testing import FakeOpenAIServer


class TimedServer(FakeOpenAIServer):
    """The fake OpenAI server, noting when each chat request arrived."""

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


def provider(fake: FakeOpenAIServer, **extra: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": fake.base_url, "api_key": "test-key", **extra}


async def latency(config: dict[str, Any], *, hits: bool, n: int) -> float:
    """Median µs of ``client.complete`` (the same prompt: hits; distinct ones: misses)."""
    samples = []
    async with llmx.Client(config) as client:
        await client.complete(model="main/gpt-4o-mini", prompt="warm up")
        for i in range(n):
            prompt = "warm up" if hits else f"miss {i}"
            started = time.perf_counter()
            response = await client.complete(model="main/gpt-4o-mini", prompt=prompt)
            samples.append(time.perf_counter() - started)
            assert response.cached == hits
    return statistics.median(samples) * 1e6


async def cache_figures(fake: FakeOpenAIServer, redis: RedisServer, n: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, dict[str, Any]]] = [
            ("memory", {"backend": "memory"}),
            ("sqlite", {"backend": "sqlite", "path": str(Path(tmp) / "c.sqlite3")}),
            ("redis (loopback)", {"backend": "redis", "url": redis.url}),
        ]
        base = {"providers": {"main": provider(fake)}}
        miss = await latency(base, hits=False, n=n // 4)
        rows.append(f"| miss: fake OpenAI server on loopback, no cache | {miss:,.0f} |")
        for name, section in backends:
            hit = await latency({**base, "cache": section}, hits=True, n=n)
            rows.append(f"| hit: {name} | {hit:,.0f} |")
    return rows


WORKER = r"""
import asyncio, json, sys, time
import llmx

async def main() -> None:
    args = json.loads(sys.argv[1])
    sent = 0
    async with llmx.Client(args["config"]) as client:
        await asyncio.sleep(max(0.0, args["start"] - time.time()))

        async def sender(k: int) -> None:
            nonlocal sent
            i = 0
            while time.time() < args["end"]:
                i += 1
                try:
                    await client.complete(model="main/gpt-4o-mini", prompt=f"{args['id']}-{k}-{i}")
                    sent += 1
                except llmx.RateLimitError:
                    pass

        tasks = [asyncio.ensure_future(sender(k)) for k in range(8)]
        await asyncio.wait(tasks, timeout=max(0.0, args["end"] - time.time()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"sent": sent}))

asyncio.run(main())
"""


def limiter_figure(
    fake: TimedServer, redis: RedisServer | None, processes: int, window: float, rpm: int
) -> str:
    fake.arrivals.clear()
    limits = {"rpm": rpm, "period": 10, "max_wait": 60}
    config: dict[str, Any] = {"providers": {"main": provider(fake, limits=limits)}}
    if redis is not None:
        config["limiter"] = {"backend": "redis", "url": redis.url}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER)
        start = time.time() + 3
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    json.dumps({"config": config, "start": start, "end": start + window, "id": n}),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(processes)
        ]
        for w in workers:
            w.communicate(timeout=window + 60)
    inside = [t for t in fake.arrivals if start <= t < start + window]
    rate = len(inside) / window * 60
    where = "Redis" if redis is not None else "local"
    return (
        f"| {processes} process{'es' if processes > 1 else ''}, {where} limiter | {rpm} "
        f"| {len(inside)} in {window:g} s | {rate:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--skip-limits", action="store_true")
    args = parser.parse_args()
    with RedisServer() as redis, TimedServer().in_thread() as fake:
        print("| request | median µs |\n|---|---|")
        for row in asyncio.run(cache_figures(fake, redis, args.n)):
            print(row, flush=True)
        if args.skip_limits:
            return
        redis.flush()
        print("\n| setup | quota (rpm) | requests seen | measured rpm |\n|---|---|---|---|")
        print(limiter_figure(fake, None, 1, args.window, 120), flush=True)
        print(limiter_figure(fake, redis, 1, args.window, 120), flush=True)
        redis.flush()
        print(limiter_figure(fake, redis, 4, args.window, 120), flush=True)


if __name__ == "__main__":
    main()

"""``python -m bench icount``: instructions per request, immune to a noisy machine.

Wall-clock ratios on a shared VM move by a few per cent between runs with nothing
changed; a change worth 1-2 % of a request cannot be seen that way. This counts the
client process's instructions under ``valgrind --tool=callgrind`` instead: each config
sends N and then 2N requests (after a warm-up) at the given concurrency to the bench's
fake server, and the difference, divided by N, is what one request costs, start-up and
imports cancelled out. Repeatable to about 2 % at N = 400 (``PYTHONHASHSEED=0``; less
spread with a larger N). It needs
valgrind (``apt-get install valgrind``); each config takes about a minute.

::

    python -m bench icount                          # raw, llmx, llmx-pipeline
    python -m bench icount --configs llmx --requests 400 --concurrency 1
    python -m bench icount --configs raw,llmx,llmx-otel   # what OpenTelemetry costs
    python -m bench icount --stream --requests 200  # 50-chunk streams, raw = chunked reads

``--stream`` counts whole 50-chunk streams instead (the bench server's default), each
read to the end as text; its raw floor reads the socket in chunks and splits lines as
llmx's SSE parser does (the floor the stream goal is judged against).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

from bench.clients import LLMX_CONFIGS

_COLLECTED = re.compile(r"Collected : (\d+)")
_WARM_UP = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _child(kind: str, requests: int, concurrency: int, base: str, stream: bool) -> None:
    """The measured process: the warm-up, then ``requests`` requests."""
    semaphore = asyncio.Semaphore(concurrency)

    async def drive(call: Any) -> None:
        for _ in range(_WARM_UP):
            await call()

        async def one() -> None:
            async with semaphore:
                await call()

        await asyncio.gather(*(one() for _ in range(requests)))

    if kind == "raw":
        import aiohttp

        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def raw() -> str:
                headers = {"Authorization": "Bearer x"}
                url = f"{base}/v1/chat/completions"
                async with session.post(url, json=body, headers=headers) as resp:
                    resp.raise_for_status()
                    data = await resp.read()
                return str(json.loads(data)["choices"][0]["message"]["content"])

            async def raw_stream() -> str:
                from bench.drivers.raw import _lines

                headers = {"Authorization": "Bearer x"}
                url = f"{base}/v1/chat/completions"
                parts: list[str] = []
                async with session.post(url, json=stream_body, headers=headers) as resp:
                    resp.raise_for_status()
                    async for line in _lines(resp):
                        if not line.startswith(b"data:"):
                            continue
                        data = line[5:].strip()
                        if data == b"[DONE]":
                            break
                        choices = json.loads(data)["choices"]
                        text = choices[0]["delta"].get("content") if choices else None
                        if text:
                            parts.append(text)
                return "".join(parts)

            stream_body = {**body, "stream": True}
            await drive(raw_stream if stream else raw)
        return
    import llmx

    spec = LLMX_CONFIGS[kind]
    config = llmx.Config.from_dict(spec.config(base))
    registry = llmx.Registry.from_config(config)
    if spec.event_hooks:
        from bench.drivers.llmx_client import _event_hooks_plugin

        registry.register(_event_hooks_plugin(), name="bench-event-hooks")
    if spec.otel:
        from bench.drivers.llmx_client import _otel_plugin

        registry.register(_otel_plugin(), name="bench-otel")
    async with llmx.Client(config, registry=registry) as client:

        async def call() -> str:
            return (await client.complete(model=spec.model, prompt="Hi")).text

        async def call_stream() -> str:
            async with client.stream(model=spec.model, prompt="Hi") as reply:
                return "".join([piece async for piece in reply.text()])

        await drive(call_stream if stream else call)


def _count(kind: str, requests: int, concurrency: int, base: str, stream: bool) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.icount",
        "child",
        kind,
        str(requests),
        str(concurrency),
        base,
        "stream" if stream else "complete",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        msg = f"the {kind} run failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        raise SystemExit(msg)
    return int(found.group(1))


def main(argv: list[str]) -> None:
    """Count each config's instructions per request and print them against raw's."""
    if argv[:1] == ["child"]:
        kind, requests, concurrency, base = argv[1], int(argv[2]), int(argv[3]), argv[4]
        asyncio.run(_child(kind, requests, concurrency, base, argv[5] == "stream"))
        return
    parser = argparse.ArgumentParser(prog="python -m bench icount", description=__doc__)
    parser.add_argument("--configs", default="raw,llmx,llmx-pipeline")
    parser.add_argument("--requests", type=int, default=400, help="N (then 2N) per config")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--stream", action="store_true", help="count 50-chunk streams (raw: chunked reads)"
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        msg = "python -m bench icount needs valgrind: apt-get install valgrind"
        raise SystemExit(msg)
    kinds = [k.strip() for k in args.configs.split(",") if k.strip()]
    unknown = [k for k in kinds if k != "raw" and k not in LLMX_CONFIGS]
    if unknown:
        known = ", ".join(["raw", *LLMX_CONFIGS])
        msg = f"unknown config(s) {', '.join(unknown)}; known: {known}"
        raise SystemExit(msg)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench", "server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    msg = "the bench server did not start"
                    raise SystemExit(msg) from None
                time.sleep(0.1)
        n, results = args.requests, {}
        for kind in kinds:
            low = _count(kind, n, args.concurrency, base, args.stream)
            high = _count(kind, 2 * n, args.concurrency, base, args.stream)
            results[kind] = (high - low) / n
            what = "stream" if args.stream else "request"
            print(f"{kind:16s} {results[kind] / 1000:8.1f}k instructions/{what}", flush=True)
    finally:
        server.terminate()
        server.wait()
    if "raw" in results:
        print(f"\nagainst raw aiohttp (concurrency {args.concurrency}, N = {n}):")
        for kind, value in results.items():
            print(f"  {kind:16s} {value / results['raw']:.3f}x")


if __name__ == "__main__":
    main(sys.argv[1:])

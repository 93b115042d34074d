"""What every driver process does, whatever client it drives (stdlib only).

A driver is started fresh for one metric of one round (``python -m bench.drivers.raw
'<spec json>'``). It imports its client library, builds the client, sends one request
(the *cold start*: from the moment the runner spawned the process to that first
reply), then runs the phase the spec names and prints one JSON line with the results:

``seq``
    requests one after another: latency median/p99 and CPU time per request.
``tput``
    ``concurrency`` workers sharing a request budget: requests per second and the
    process's peak RSS.
``stream``
    streams one after another: time to first and to last text chunk.
``memory``
    many requests at ``concurrency``; RSS (after a GC) at regular checkpoints.

Every answer is checked against the text the fake server sends (streams reassembled),
and the driver reports how many requests it sent, which the runner compares with the
server's own count. Any mismatch ends the driver with an error.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bench.wire import REPLY_TEXT, stream_text

WARMUP_S = 0.3
"""Default bound on a warm-up phase, so slow clients do not spend seconds warming up."""

SPAWN_ENV = "BENCH_SPAWN_NS"
"""Environment variable: ``time.monotonic_ns()`` just before the runner spawned us."""


class Adapter(Protocol):
    """One client under test, as the harness drives it."""

    async def open(self) -> None:
        """Create the client (sessions, pools); called inside the event loop."""

    async def complete(self) -> str:
        """Send one chat request; return the answer's text."""

    async def stream(self, first: Callable[[], None]) -> str:
        """Stream one answer; call ``first()`` when the first text piece arrives; return all text."""

    async def close(self) -> None:
        """Release the client."""


class BenchError(Exception):
    """A wrong answer or a misbehaving client: the measurement is void."""


class SkipError(Exception):
    """This client cannot run this spec (a provider type or feature is missing)."""


def rss_bytes() -> int:
    """The current resident set size (Linux ``/proc/self/statm``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (``ru_maxrss``; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    """Median, p90, p99, mean, min and max of ``values`` (seconds), plus the count."""
    s = sorted(values)
    return {
        "n": len(s),
        "median": percentile(s, 0.5),
        "p90": percentile(s, 0.9),
        "p99": percentile(s, 0.99),
        "mean": sum(s) / len(s) if s else float("nan"),
        "min": s[0] if s else float("nan"),
        "max": s[-1] if s else float("nan"),
    }


class Harness:
    """Runs one phase against one adapter (see the module docstring)."""

    def __init__(self, spec: dict[str, Any], adapter: Adapter) -> None:
        self.spec = spec
        self.adapter = adapter
        self.sent = 0
        self.expected_stream = stream_text(int(spec.get("chunks", 50)))

    # -- single requests -------------------------------------------------------------------

    async def one(self) -> None:
        self.sent += 1
        text = await self.adapter.complete()
        if text != REPLY_TEXT:
            msg = f"wrong answer: {text!r:.120} (expected {REPLY_TEXT!r})"
            raise BenchError(msg)

    async def one_stream(self) -> tuple[float, float]:
        """(time to first text chunk, time to the end) of one stream, in seconds."""
        first: list[float] = []
        perf = time.perf_counter

        def mark() -> None:
            if not first:
                first.append(perf())

        self.sent += 1
        t0 = perf()
        text = await self.adapter.stream(mark)
        t1 = perf()
        if text != self.expected_stream:
            msg = f"wrong stream: {text!r:.120}... ({len(text)} chars, expected {len(self.expected_stream)})"
            raise BenchError(msg)
        if not first:
            msg = "the stream delivered no text chunk"
            raise BenchError(msg)
        return first[0] - t0, t1 - t0

    async def pool(self, concurrency: int, budget: int, seconds: float) -> tuple[int, float]:
        """``concurrency`` workers send until ``budget`` requests or ``seconds`` are used up."""
        perf = time.perf_counter
        t0 = perf()
        deadline = t0 + seconds
        left = [budget]
        done = [0]

        async def worker() -> None:
            while left[0] > 0 and perf() < deadline:
                left[0] -= 1
                await self.one()
                done[0] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done[0], perf() - t0

    # -- phases ----------------------------------------------------------------------------

    async def warmup(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Up to ``warmup`` calls of ``fn``, for at most ``warmup_s`` seconds."""
        perf = time.perf_counter
        deadline = perf() + self.spec.get("warmup_s", WARMUP_S)
        for _ in range(self.spec["warmup"]):
            await fn()
            if perf() > deadline:
                break

    async def phase_seq(self) -> dict[str, Any]:
        spec = self.spec
        await self.warmup(self.one)
        perf = time.perf_counter
        latencies: list[float] = []
        deadline = perf() + spec["max_s"]
        cpu0 = time.process_time()
        while len(latencies) < spec["max_n"] and perf() < deadline:
            t0 = perf()
            await self.one()
            latencies.append(perf() - t0)
        cpu = time.process_time() - cpu0
        return {"latency": summary(latencies), "cpu_per_request": cpu / len(latencies)}

    async def phase_tput(self) -> dict[str, Any]:
        spec = self.spec
        concurrency = spec["concurrency"]
        warmup_s = spec.get("warmup_s", WARMUP_S)
        await self.pool(concurrency, max(spec["warmup"], 2 * concurrency), warmup_s)
        cpu0 = time.process_time()
        done, elapsed = await self.pool(concurrency, spec["max_n"], spec["max_s"])
        cpu = time.process_time() - cpu0
        return {
            "concurrency": concurrency,
            "requests": done,
            "elapsed": elapsed,
            "rps": done / elapsed,
            "cpu_per_request": cpu / done,
            "peak_rss": peak_rss_bytes(),
        }

    async def phase_stream(self) -> dict[str, Any]:
        spec = self.spec
        await self.warmup(self.one_stream)
        perf = time.perf_counter
        ttfc: list[float] = []
        ttlc: list[float] = []
        deadline = perf() + spec["max_s"]
        cpu0 = time.process_time()
        while len(ttlc) < spec["max_n"] and perf() < deadline:
            first, last = await self.one_stream()
            ttfc.append(first)
            ttlc.append(last)
        cpu = time.process_time() - cpu0
        return {
            "ttfc": summary(ttfc),
            "ttlc": summary(ttlc),
            "cpu_per_stream": cpu / len(ttlc),
            "chunks": spec.get("chunks", 50),
        }

    async def phase_memory(self) -> dict[str, Any]:
        spec = self.spec
        total, every, concurrency = spec["total"], spec["every"], spec["concurrency"]
        deadline = time.perf_counter() + spec.get("max_s", 3600.0)
        points: list[tuple[int, int]] = []
        gc.collect()
        points.append((0, rss_bytes()))
        done = 0
        while done < total and (len(points) < 3 or time.perf_counter() < deadline):
            batch = min(every, total - done)
            n, _ = await self.pool(concurrency, batch, 3600.0)
            done += n
            gc.collect()
            points.append((done, rss_bytes()))
        return {
            "points": points,
            "peak_rss": peak_rss_bytes(),
            "concurrency": concurrency,
            "planned": total,
            "cut_short": done < total,
        }

    async def run(self) -> dict[str, Any]:
        spawn_ns = int(os.environ.get(SPAWN_ENV, "0"))
        perf = time.perf_counter
        t0 = perf()
        await self.adapter.open()
        opened = perf() - t0
        await self.one()  # the cold start: process start -> first reply
        cold = (time.monotonic_ns() - spawn_ns) / 1e9 if spawn_ns else float("nan")
        first_request = perf() - t0 - opened
        phase: Callable[[], Awaitable[dict[str, Any]]] = getattr(self, f"phase_{self.spec['mode']}")
        try:
            result = await phase()
        finally:
            await self.adapter.close()
        result.update(
            cold_start=cold,
            open_s=opened,
            first_request_s=first_request,
            sent=self.sent,
            rss_end=rss_bytes(),
        )
        return result


def main(build: Callable[[dict[str, Any]], Adapter], import_name: str) -> None:
    """Entry point of a driver module: ``main(build_adapter, "library")``.

    Reads the spec (JSON) from ``argv[1]``, times ``import <import_name>``, builds the
    adapter, runs the phase and prints the result as one JSON line on stdout. Exits
    with status 1 and a one-line reason on stderr if anything goes wrong; exits 3 if
    the spec asks for something this client cannot do (``"skip"`` in the output).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    spec = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    importlib.import_module(import_name)
    import_s = time.perf_counter() - t0
    try:
        adapter = build(spec)
    except SkipError as err:
        print(json.dumps({"skip": str(err)}), flush=True)
        sys.exit(3)
    try:
        result = asyncio.run(Harness(spec, adapter).run())
    except SkipError as err:
        print(json.dumps({"skip": str(err)}), flush=True)
        sys.exit(3)
    except Exception as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    result["import_s"] = import_s
    print(json.dumps(result), flush=True)

"""``python -m bench profile``: where llmx's time goes on the hot paths.

Against the fake server (pinned to one core, this process to the other) it:

1. times ``import llmx`` and ``llmx.Client(config)`` with ``python -X importtime``;
2. times raw aiohttp and llmx in-process without a profiler (the calibration: the
   profiler inflates Python-heavy code, so read its shares, not its absolute times);
3. runs raw aiohttp and llmx sequentially (complete, then stream) under cProfile and
   prints the time per request by area (llmx core, the openai plugin, aiohttp, asyncio,
   json, ...), raw next to llmx, then the top functions by own and cumulative time;
4. if pyinstrument is installed, prints its call tree of the same llmx runs.

Everything printed is also written to ``bench/results/profile-<timestamp>.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from bench.clients import LLMX_CONFIGS, llmx_client
from bench.system import CLIENT_CPU, RESULTS, SCRATCH, child_env, dev_python, running_server
from bench.wire import DEFAULT_CHUNKS

X = "\N{MULTIPLICATION SIGN}"

CALIBRATION_BATCHES = 10

IDLE = "idle (waiting in epoll)"
"""The event loop waiting for the server: not CPU, left out of the shares."""

_LLMX_AREAS = ("llmx core", "llmx_openai (plugin)", "llmx types (attrs-generated)")

_AREAS: tuple[tuple[str, str], ...] = (
    ("<attrs generated", "llmx types (attrs-generated)"),
    ("llmx_openai", "llmx_openai (plugin)"),
    ("/llmx/", "llmx core"),
    ("/bench/", "bench harness"),
    ("/aiohttp/", "aiohttp"),
    ("/yarl/", "yarl/multidict"),
    ("/multidict/", "yarl/multidict"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("/attr/", "attrs"),
    ("/attrs/", "attrs"),
    ("/pluggy/", "pluggy"),
)


def area_of(filename: str, func: str) -> str:
    """The area a profiled function belongs to (by its file)."""
    for needle, name in _AREAS:
        if needle in filename:
            return name
    if filename == "~":
        if "poll' of 'select" in func:
            return IDLE
        if "json" in func or "scanstring" in func:
            return "json"
        return "builtins (C)"
    return "other"


class Out:
    """Prints and keeps a copy for the report file."""

    def __init__(self) -> None:
        self.buf = io.StringIO()

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.buf.write(text + "\n")


def importtime(code: str) -> list[tuple[int, int, str]]:
    """``python -X importtime -c code``: [(self µs, cumulative µs, module)], slowest first."""
    done = subprocess.run(
        [dev_python(), "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=SCRATCH,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (.+)", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), m.group(3).rstrip()))
    return rows


def _import_report(out: Out, base_url: str, config_key: str) -> None:
    config = LLMX_CONFIGS[config_key].config(base_url)
    help_code = "import sys; sys.argv = ['llmx', '--help']; from llmx._cli import main; main()"
    for title, code in (
        ("import llmx", "import llmx"),
        ("import llmx; llmx.Client(config)", f"import llmx; llmx.Client({config!r})"),
        ("llmx --help", help_code),
    ):
        importtime(code)  # once to warm the bytecode cache
        rows = importtime(code)
        total = sum(r[1] for r in rows if not r[2].startswith(" "))  # top-level imports only
        out(f"## {title}: {total / 1000:.1f} ms of imports (python -X importtime)")
        out("  cumulative   self  module")
        for self_us, cum_us, name in sorted(rows, key=lambda r: -r[1])[:14]:
            out(f"  {cum_us / 1000:8.1f} ms {self_us / 1000:6.1f}  {name.strip()}")
        out()
    _startup_profile(out, config)


_STARTUP_CODE = """
import cProfile, io, pstats
profile = cProfile.Profile()
profile.enable()
import llmx
registry = llmx.Registry()
registry.assemble()
registry.plugins()
client = llmx.Client(CONFIG)
profile.disable()
text = io.StringIO()
pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(30)
print(text.getvalue())
"""


def _startup_profile(out: Out, config: dict[str, Any]) -> None:
    """cProfile of a fresh process's start-up: import, registry assembly, Client()."""
    code = _STARTUP_CODE.replace("CONFIG", repr(config))
    done = subprocess.run(
        [dev_python(), "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=SCRATCH,
        check=False,
    )
    out("## start-up under cProfile: import llmx, Registry().assemble(), llmx.Client(config)")
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    for line in lines[:45]:
        out("  " + line.replace(str(SCRATCH), "."))
    if done.returncode:
        out(f"  (failed: {done.stderr.strip()[-300:]})")
    out()


@contextlib.contextmanager
def profiled(prof: cProfile.Profile | None) -> Iterator[None]:
    if prof is not None:
        prof.enable()
    try:
        yield
    finally:
        if prof is not None:
            prof.disable()


async def _loop(fn: Callable[[], Awaitable[Any]], n: int, prof: cProfile.Profile | None) -> float:
    """Seconds per call of ``fn`` over ``n`` sequential calls (profiled if ``prof``)."""
    t0 = time.perf_counter()
    with profiled(prof):
        for _ in range(n):
            await fn()
    return (time.perf_counter() - t0) / n


async def _calibrate(out: Out, harnesses: dict[str, Any], args: argparse.Namespace) -> None:
    """Wall and CPU time per request and per stream, without a profiler.

    Raw aiohttp and llmx alternate in batches (``CALIBRATION_BATCHES`` of each), so both
    see the same machine; the ratios are medians of the per-batch ratios.
    """
    out(f"## Calibration (no profiler): {CALIBRATION_BATCHES} alternating batches, medians")
    for what, attr, total in (
        ("request", "one", args.requests),
        ("stream", "one_stream", args.streams),
    ):
        n = max(1, total // CALIBRATION_BATCHES)
        wall: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)
        for _ in range(CALIBRATION_BATCHES):
            for name, h in harnesses.items():
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(n):
                    await getattr(h, attr)()
                wall[name].append((time.perf_counter() - t0) / n)
                cpu[name].append((time.process_time() - c0) / n)
        raw = next(iter(harnesses))
        for name in harnesses:
            w_ratio = statistics.median(a / b for a, b in zip(wall[name], wall[raw], strict=True))
            c_ratio = statistics.median(a / b for a, b in zip(cpu[name], cpu[raw], strict=True))
            added = statistics.median(a - b for a, b in zip(cpu[name], cpu[raw], strict=True))
            out(
                f"  {name:32} {statistics.median(wall[name]) * 1e6:8.0f} µs/{what} ({w_ratio:.2f}{X} raw)"
                f"   CPU {statistics.median(cpu[name]) * 1e6:8.0f} µs/{what} ({c_ratio:.2f}{X} raw, "
                f"{added * 1e6:+.0f} µs)"
            )
    out()


def _adapters(base_url: str, config_key: str) -> dict[str, Any]:
    from bench.drivers._harness import Harness
    from bench.drivers.llmx_client import LlmxAdapter
    from bench.drivers.raw import RawAdapter

    client = llmx_client(config_key, base_url)
    spec_raw = {"base_url": base_url, "options": {"format": "openai"}, "chunks": DEFAULT_CHUNKS}
    spec_llmx = {"base_url": base_url, "options": client.options, "chunks": DEFAULT_CHUNKS}
    return {
        "raw aiohttp": Harness(spec_raw, RawAdapter(spec_raw)),
        client.label: Harness(spec_llmx, LlmxAdapter(spec_llmx)),
    }


def _areas(stats: pstats.Stats, per: int) -> dict[str, float]:
    """µs per request by area (own time)."""
    out: dict[str, float] = defaultdict(float)
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        out[area_of(filename, func)] += tt * 1e6 / per
    return dict(out)


def _top(out: Out, stats: pstats.Stats, per: int, *, key: int, n: int, only_llmx: bool) -> None:
    """The top ``n`` functions by own (``key=0``) or cumulative (``key=1``) time.

    Shares are of the CPU time, i.e. without the event loop's idle wait. cProfile counts
    a coroutine once per resumption, so ``calls/req`` of coroutines is inflated.
    """
    entries = stats.stats.items()  # type: ignore[attr-defined]
    busy = sum(v[2] for (f, _l, fn), v in entries if area_of(f, fn) != IDLE)
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in entries:
        area = area_of(filename, func)
        if area == IDLE or (only_llmx and area not in _LLMX_AREAS):
            continue
        rows.append((tt, ct, nc, filename, line, func))
    rows.sort(key=lambda r: -r[key])
    out(
        f"  {'own µs/req':>10} {'own %':>6} {'cum µs/req':>10} {'cum %':>6} {'calls/req':>9}  function"
    )
    for tt, ct, nc, filename, line, func in rows[:n]:
        out(
            f"  {tt * 1e6 / per:10.1f} {100 * tt / busy:5.1f}% {ct * 1e6 / per:10.1f} "
            f"{100 * ct / busy:5.1f}% {nc / per:9.1f}  {_short(filename)}:{line}({func})"
        )


def _short(filename: str) -> str:
    for marker in ("/core/src/", "/src/", "site-packages/", "/lib/python3"):
        i = filename.find(marker)
        if i >= 0:
            return filename[i + len(marker) :]
    return filename


async def _profile(out: Out, base_url: str, args: argparse.Namespace) -> None:
    harnesses = _adapters(base_url, args.config)
    for h in harnesses.values():
        await h.adapter.open()
    try:
        for h in harnesses.values():  # warm up: connections, caches, lazy imports
            for _ in range(200):
                await h.one()
            for _ in range(20):
                await h.one_stream()

        await _calibrate(out, harnesses, args)

        for what, attr, n in (
            ("complete", "one", args.requests),
            ("stream (50 chunks)", "one_stream", args.streams),
        ):
            profiles: dict[str, pstats.Stats] = {}
            for name, h in harnesses.items():
                prof = cProfile.Profile()
                await _loop(getattr(h, attr), n, prof)
                profiles[name] = pstats.Stats(prof)
            areas = {name: _areas(st, n) for name, st in profiles.items()}
            names = list(profiles)
            out(f"## {what}: own time per request by area under cProfile (µs)")
            out(
                f"  {'area':30}" + "".join(f"{nm[:22]:>24}" for nm in names) + f"{'difference':>12}"
            )
            keys = sorted(
                {k for a in areas.values() for k in a}, key=lambda k: -areas[names[-1]].get(k, 0)
            )
            for k in keys:
                vals = [areas[nm].get(k, 0.0) for nm in names]
                out(
                    f"  {k:30}"
                    + "".join(f"{v:24.1f}" for v in vals)
                    + f"{vals[-1] - vals[0]:+12.1f}"
                )
            totals = [sum(v for k, v in areas[nm].items() if k != IDLE) for nm in names]
            out(
                f"  {'total CPU (without idle)':30}"
                + "".join(f"{v:24.1f}" for v in totals)
                + f"{totals[-1] - totals[0]:+12.1f}"
            )
            out("  (cProfile inflates every Python call; compare the areas, not the absolute sums)")
            out()
            llmx_stats = profiles[names[-1]]
            out(f"## {what}: {names[-1]}: top functions by own time")
            _top(out, llmx_stats, n, key=0, n=args.top, only_llmx=False)
            out()
            out(f"## {what}: {names[-1]}: llmx functions by cumulative time")
            _top(out, llmx_stats, n, key=1, n=args.top, only_llmx=True)
            out()

    finally:
        for h in harnesses.values():
            await h.adapter.close()


def _pyinstrument(out: Out, base_url: str, args: argparse.Namespace) -> None:
    """pyinstrument's call tree of llmx's complete and stream loops (if it is installed)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        out(
            "(pyinstrument is not installed: pip install pyinstrument into .venv for its call tree)"
        )
        return
    from bench.drivers._harness import Harness
    from bench.drivers.llmx_client import LlmxAdapter

    client = llmx_client(args.config, base_url)
    spec = {"base_url": base_url, "options": client.options, "chunks": DEFAULT_CHUNKS}
    for what, attr, n in (
        ("complete", "one", args.requests),
        ("stream", "one_stream", args.streams),
    ):
        h = Harness(spec, LlmxAdapter(spec))

        async def go(h: Harness = h, attr: str = attr, n: int = n) -> None:
            await h.adapter.open()
            try:
                for _ in range(n):
                    await getattr(h, attr)()
            finally:
                await h.adapter.close()

        profiler = Profiler(async_mode="disabled")
        profiler.start()
        asyncio.run(go())
        profiler.stop()
        out(f"## pyinstrument: {client.label}, {what} x{n} (includes client set-up)")
        out(profiler.output_text(unicode=True, color=False, show_all=False))


def main(argv: list[str] | None = None) -> None:
    """``python -m bench profile``: see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m bench profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--config", default="llmx", choices=sorted(LLMX_CONFIGS), help="llmx config to profile"
    )
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests per run")
    parser.add_argument("--streams", type=int, default=300, help="sequential streams per run")
    parser.add_argument("--top", type=int, default=25, help="functions to list")
    args = parser.parse_args(argv)
    out = Out()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {CLIENT_CPU})
    with running_server(DEFAULT_CHUNKS) as server:
        out(
            f"# llmx profile ({args.config}), {time.strftime('%Y-%m-%d %H:%M:%S')}, load {os.getloadavg()}"
        )
        out()
        _import_report(out, server.base_url, args.config)
        asyncio.run(_profile(out, server.base_url, args))
        _pyinstrument(out, server.base_url, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"profile-{time.strftime('%Y%m%d-%H%M%S')}-{args.config}.txt"
    path.write_text(out.buf.getvalue())
    print(f"(written to {path})", file=sys.stderr)

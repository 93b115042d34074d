"""The bench run: every metric, every client, fresh processes, interleaved rounds.

``python -m bench`` runs :data:`FULL`; ``--quick`` runs :data:`QUICK`. One round runs,
for each metric, every client once (raw aiohttp first), each in a fresh process, so
that the ratios against raw aiohttp are taken within the same round. After the rounds
come the one-off measurements (memory growth, installed plugins, cache hits). The
results go to ``bench/results/<timestamp>.json`` and ``bench/results/latest.md``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import report
from bench.clients import (
    CACHE_BACKENDS,
    LLMX_CONFIGS,
    PEER_ENV,
    PEERS,
    Client,
    llmx_client,
    peer_client,
    raw_chunked_client,
    raw_client,
)
from bench.drivers._harness import SPAWN_ENV
from bench.plugins import install_dummies
from bench.system import (
    CLIENT_CPU,
    PEERS_VENV,
    PRIORITY,
    REPO,
    RESULTS,
    SCRATCH,
    SERVER_CPU,
    NoiseMeter,
    Server,
    child_env,
    cpu_delta,
    cpu_times,
    dev_python,
    ensure_peers_venv,
    loadavg,
    log,
    machine,
    peer_versions,
    peers_python,
    pinned,
    running_server,
)
from bench.wire import DEFAULT_CHUNKS, MODEL, PROMPT, REPLY_TEXT, stream_text


@dataclass(frozen=True)
class Plan:
    """How much of everything a run does."""

    name: str
    rounds: int
    seq: dict[str, Any]
    tput: dict[str, Any]
    stream: dict[str, Any]
    sweep_levels: tuple[int, ...]
    sweep: dict[str, Any]
    memory: dict[str, Any]
    import_reps: int
    peer_import_reps: int
    plugin_counts: tuple[int, ...]
    plugin_reps: int
    cache_hits: int
    peers: bool
    budget_s: float = 570.0
    """The run's time budget: the memory phase is shortened to keep within it."""
    reserve_s: float = 40.0
    """Time kept for the phases after the memory phase (plugins, cache, report)."""
    chunks: int = DEFAULT_CHUNKS
    timeout: float = 180.0
    notes: list[str] = field(default_factory=list)


FULL = Plan(
    name="full",
    rounds=3,
    seq={"warmup": 200, "max_n": 3000, "max_s": 1.0},
    tput={"concurrency": 64, "warmup": 256, "max_n": 20000, "max_s": 1.2},
    stream={"warmup": 30, "max_n": 1000, "max_s": 1.0},
    sweep_levels=(1, 16, 64, 256, 1024),
    sweep={"warmup": 256, "max_n": 20000, "max_s": 0.8},
    memory={"total": 100_000, "every": 10_000, "concurrency": 64},
    import_reps=3,
    peer_import_reps=1,
    plugin_counts=(0, 10, 50),
    plugin_reps=5,
    cache_hits=2000,
    peers=True,
)
"""The full run (< 10 minutes on the 2-core reference machine)."""

QUICK = Plan(
    name="quick",
    rounds=1,
    seq={"warmup": 50, "max_n": 500, "max_s": 0.3, "warmup_s": 0.1},
    tput={"concurrency": 64, "warmup": 128, "max_n": 3000, "max_s": 0.3, "warmup_s": 0.1},
    stream={"warmup": 10, "max_n": 200, "max_s": 0.3, "warmup_s": 0.1},
    sweep_levels=(1, 64, 1024),
    sweep={"warmup": 128, "max_n": 3000, "max_s": 0.3, "warmup_s": 0.1},
    memory={"total": 5_000, "every": 1_000, "concurrency": 64},
    import_reps=2,
    peer_import_reps=1,
    plugin_counts=(0, 50),
    plugin_reps=2,
    cache_hits=200,
    peers=False,
    budget_s=55.0,
    reserve_s=15.0,
)
"""The smoke run for CI (< 60 s, one round, small counts, no peers)."""

QUIET_CORES = 0.15
"""Foreign CPU load (in cores) below which ``--wait-quiet`` considers the machine quiet."""

_IMPORT_CODE = (
    "import time\nt0 = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t0)\n"
)


class Runner:
    """Runs a :class:`Plan` and returns the results (see the module docstring)."""

    def __init__(
        self, plan: Plan, *, only: set[str] | None = None, wait_quiet_s: float = 0.0
    ) -> None:
        self.plan = plan
        self.only = only
        self.wait_quiet_s = wait_quiet_s
        self.waited = 0.0
        self.runs: list[dict[str, Any]] = []
        self.imports: list[dict[str, Any]] = []
        self.notes: list[str] = list(plan.notes)
        self.skipped: dict[str, str] = {}
        self.server: Server | None = None
        self.noise_rounds: list[dict[str, Any]] = []
        self.started = time.monotonic()

    # -- helpers ---------------------------------------------------------------------------

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:5.0f}s"

    def python_for(self, client: Client) -> str:
        return peers_python() if client.python == "peers" else dev_python()

    def env_for(self, python: str, pythonpath: tuple[Path, ...] = ()) -> dict[str, str]:
        return child_env(PEER_ENV if python == peers_python() else None, pythonpath)

    def spawn(
        self, cmd: list[str], env: dict[str, str], timeout: float
    ) -> tuple[subprocess.CompletedProcess[str] | None, float]:
        """Run ``cmd`` pinned to the client CPU: (completed process or None on timeout, wall s)."""
        argv, preexec = pinned(cmd, CLIENT_CPU)
        env = dict(env)
        t0 = time.perf_counter()
        env[SPAWN_ENV] = str(time.monotonic_ns())
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=env,
                cwd=SCRATCH,
                timeout=timeout,
                preexec_fn=preexec,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - t0
        return done, time.perf_counter() - t0

    # -- set-up ----------------------------------------------------------------------------

    def warm_bytecode(self) -> None:
        """Compile llmx's sources once, so no measured process pays for it."""
        srcs = [str(REPO / "core" / "src"), *map(str, sorted(REPO.glob("plugins/*/src")))]
        subprocess.run(
            [dev_python(), "-m", "compileall", "-q", *srcs, str(REPO / "bench")],
            capture_output=True,
            env=child_env(),
            check=False,
        )

    def installed_plugins(self) -> list[str]:
        code = "import json, llmx\nprint(json.dumps([p.name for p in llmx.Registry().plugins()]))"
        done = subprocess.run(
            [dev_python(), "-c", code], capture_output=True, text=True, env=child_env(), cwd=SCRATCH
        )
        try:
            return json.loads(done.stdout)  # type: ignore[no-any-return]
        except ValueError:
            return []

    def clients(self, base_url: str) -> list[Client]:
        """The clients of this run: raw aiohttp floors first, then llmx, then peers."""

        def wanted(key: str) -> bool:
            return self.only is None or key in self.only

        installed = set(self.installed_plugins())
        llmx: list[Client] = []
        formats: list[str] = []
        for key, cfg in LLMX_CONFIGS.items():
            if not wanted(key):
                continue
            if cfg.provider_type not in installed:
                self.skipped[key] = (
                    f"provider type {cfg.provider_type!r} is not installed "
                    f"(no llmx plugin named {cfg.provider_type!r})"
                )
                continue
            llmx.append(llmx_client(key, base_url))
            if cfg.format != "openai" and cfg.format not in formats:
                formats.append(cfg.format)
        peers: list[Client] = []
        peer_keys = [key for key in PEERS if wanted(key)]
        if peer_keys and not self.plan.peers:
            for key in peer_keys:
                self.skipped[key] = "peers are not run in this mode (--quick or --no-peers)"
        elif peer_keys:
            ok, note = ensure_peers_venv()
            for key in peer_keys:
                if ok:
                    peers.append(peer_client(key))
                else:
                    self.skipped[key] = note
        floors = [raw_client("openai"), *map(raw_client, formats)]
        chunked = [raw_chunked_client("openai"), *map(raw_chunked_client, formats)]
        return [*floors, *chunked, *llmx, *peers]

    def self_check(self, server: Server) -> None:
        """Every route of the fake server answers the expected text (stdlib parsing)."""
        cases = {
            "openai": ("/v1/chat/completions", "/v1/chat/completions", {"model": MODEL}),
            "anthropic": ("/v1/messages", "/v1/messages", {"model": MODEL}),
            "gemini": (
                f"/v1beta/models/{MODEL}:generateContent",
                f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
                {},
            ),
        }
        headers = {"Content-Type": "application/json"}
        chunks = self.plan.chunks
        for fmt, (path, stream_path, body) in cases.items():
            status, data = server.request(
                "POST",
                path,
                json.dumps({**body, "messages": [{"role": "user", "content": PROMPT}]}).encode(),
                headers,
            )
            text = _text_of(fmt, json.loads(data))
            if status != 200 or text != REPLY_TEXT:
                msg = f"fake server self-check failed for {fmt}: {status} {text!r}"
                raise RuntimeError(msg)
            payload = json.dumps({**body, "stream": True}).encode()
            status, data = server.request("POST", stream_path, payload, headers)
            pieces = [
                _delta_of(fmt, json.loads(line[6:]))
                for line in data.decode().splitlines()
                if line.startswith("data: ") and line != "data: [DONE]"
            ]
            if status != 200 or "".join(pieces) != stream_text(chunks):
                msg = f"fake server self-check failed for {fmt} streaming: {status}"
                raise RuntimeError(msg)
        stats = server.call("POST", "/__reset")
        if stats["requests"] != 2 * len(cases):
            msg = f"fake server counted {stats['requests']} requests, expected {2 * len(cases)}"
            raise RuntimeError(msg)

    # -- measuring -------------------------------------------------------------------------

    def drive(
        self,
        client: Client,
        mode: str,
        params: dict[str, Any],
        round_no: int,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One driver process; records and returns the run."""
        assert self.server is not None
        spec = {
            "base_url": self.server.base_url,
            "mode": mode,
            "chunks": self.plan.chunks,
            "options": client.options,
            **params,
        }
        python = self.python_for(client)
        self.server.call("POST", "/__reset")
        done, wall = self.spawn(
            [python, "-m", f"bench.drivers.{client.driver}", json.dumps(spec)],
            self.env_for(python),
            timeout or self.plan.timeout,
        )
        run: dict[str, Any] = {
            "round": round_no,
            "client": client.key,
            "mode": mode,
            "wall_s": wall,
        }
        if "concurrency" in params:
            run["concurrency"] = params["concurrency"]
        if done is None:
            run.update(
                status="error", reason=f"timed out after {timeout or self.plan.timeout:.0f} s"
            )
        elif done.returncode == 3:
            run.update(status="skip", reason=_last_json(done.stdout).get("skip", "skipped"))
            self.skipped[client.key] = run["reason"]
        elif done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            run.update(status="error", reason=f"exit {done.returncode}: {tail}")
        else:
            result = _last_json(done.stdout)
            seen = self.server.call("GET", "/__stats")["requests"]
            run["result"] = result
            run["server_requests"] = seen
            if seen == result.get("sent"):
                run["status"] = "ok"
            else:
                run.update(
                    status="count-mismatch",
                    reason=f"client sent {result.get('sent')} requests, the server saw {seen}",
                )
        if run["status"] != "ok":
            log(f"  {client.key} {mode}: {run['status']}: {run.get('reason')}")
        self.runs.append(run)
        return run

    def measure_imports(self, modules: list[tuple[str, str]], round_no: int) -> None:
        """``import X`` alone in fresh processes (fewer repetitions for the slow peers)."""
        plan = self.plan
        for rep in range(plan.import_reps):
            for python, module in modules:
                if python == peers_python() and rep >= plan.peer_import_reps:
                    continue
                done, wall = self.spawn(
                    [python, "-c", _IMPORT_CODE.format(module=module)], self.env_for(python), 120
                )
                entry: dict[str, Any] = {"round": round_no, "module": module, "wall_s": wall}
                if done is not None and done.returncode == 0:
                    entry["import_s"] = float(done.stdout.strip().splitlines()[-1])
                else:
                    entry["error"] = "failed" if done is None else done.stderr.strip()[-300:]
                self.imports.append(entry)

    def wait_quiet(self) -> None:
        """With ``--wait-quiet S``: wait (at most S s) until other processes leave the CPUs alone."""
        limit = self.wait_quiet_s
        if limit <= 0 or self.server is None:
            return
        start = time.monotonic()
        deadline = start + limit
        try:
            self._wait_quiet(deadline, limit)
        finally:
            self.waited += time.monotonic() - start

    def _wait_quiet(self, deadline: float, limit: float) -> None:
        assert self.server is not None
        while True:
            meter = NoiseMeter([self.server.proc.pid])
            time.sleep(2.0)
            busy = meter.read()["foreign_cores"]
            if busy < QUIET_CORES:
                return
            if time.monotonic() > deadline:
                log(f"  still noisy ({busy:.2f} cores used by other processes); going on")
                self.notes.append(
                    f"--wait-quiet gave up after {limit:.0f} s ({busy:.2f} foreign cores)"
                )
                return
            log(f"  waiting for quiet: other processes use {busy:.2f} cores")

    def rounds(self, clients: list[Client]) -> None:
        plan = self.plan
        modules = list(dict.fromkeys((self.python_for(c), c.import_name) for c in clients))
        sweepers = [c for c in clients if c.sweep]
        for r in range(1, plan.rounds + 1):
            assert self.server is not None
            self.wait_quiet()
            meter = NoiseMeter([self.server.proc.pid])
            log(f"{self.elapsed()} round {r}/{plan.rounds}: imports")
            self.measure_imports(modules, r)
            for mode, params in (("seq", plan.seq), ("tput", plan.tput), ("stream", plan.stream)):
                log(f"{self.elapsed()} round {r}/{plan.rounds}: {mode}")
                for client in clients:
                    if client.key in self.skipped or mode not in client.modes:
                        continue
                    self.drive(client, mode, params, r)
            levels = [c for c in plan.sweep_levels if c != plan.tput["concurrency"]]
            if levels and sweepers:
                log(f"{self.elapsed()} round {r}/{plan.rounds}: concurrency sweep {levels}")
            for level in levels:
                for client in sweepers:
                    if client.key not in self.skipped:
                        self.drive(client, "tput", {**plan.sweep, "concurrency": level}, r)
            noise = meter.read()
            self.noise_rounds.append({"round": r, **noise})
            if noise["foreign_cores"] > 0.1:
                log(
                    f"  noise: other processes used {noise['foreign_cores']:.2f} cores during round {r}"
                )

    def memory(self, clients: list[Client]) -> None:
        """RSS growth over many requests: raw, and the pipeline-on llmx config (else the
        other llmx configs marked for it)."""
        params = self.plan.memory
        live = [c for c in clients if c.memory and c.key not in self.skipped]
        llmx = [c for c in live if c.family == "llmx"]
        chosen = [c for c in llmx if c.pipeline] or llmx
        chosen = [c for c in live if c.family != "llmx"] + chosen
        for i, client in enumerate(chosen):
            if client.key in self.skipped:
                continue
            spent = time.monotonic() - self.started - self.waited
            left = self.plan.budget_s - self.plan.reserve_s - spent
            max_s = max(5.0, left / (len(chosen) - i))
            log(
                f"{self.elapsed()} memory growth: {client.key}, {params['total']:,} requests "
                f"(at most {max_s:.0f} s)"
            )
            run = self.drive(client, "memory", {**params, "max_s": max_s}, 0, timeout=900)
            result = run.get("result", {})
            if result.get("cut_short"):
                reached = result["points"][-1][0]
                self.notes.append(
                    f"memory growth of {client.key} stopped at {reached:,} of {params['total']:,} "
                    f"requests to keep the run within {self.plan.budget_s:.0f} s"
                )

    def plugins(self) -> dict[str, Any]:
        """Start-up costs with 0/10/50 dummy plugins installed."""
        plan = self.plan
        assert self.server is not None
        log(f"{self.elapsed()} installed plugins: {', '.join(map(str, plan.plugin_counts))}")
        SCRATCH.mkdir(parents=True, exist_ok=True)
        sites: dict[int, tuple[Path, ...]] = {}
        for count in plan.plugin_counts:
            try:
                sites[count] = (install_dummies(SCRATCH, count),) if count else ()
            except (subprocess.CalledProcessError, OSError) as err:
                self.notes.append(f"could not install {count} dummy plugins: {err}")
        config = LLMX_CONFIGS["llmx"].config(self.server.base_url)
        llmx_bin = str(Path(dev_python()).parent / "llmx")
        samples: dict[int, list[dict[str, Any]]] = {count: [] for count in sites}
        for _ in range(plan.plugin_reps):
            for count, site in sites.items():
                env = child_env(pythonpath=site)
                probe, _ = self.spawn(
                    [
                        dev_python(),
                        "-m",
                        "bench.drivers.registry_probe",
                        json.dumps({"config": config}),
                    ],
                    env,
                    120,
                )
                sample: dict[str, Any] = {}
                if probe is not None and probe.returncode == 0:
                    sample.update(_last_json(probe.stdout))
                else:
                    sample["error"] = (
                        "probe failed" if probe is None else probe.stderr.strip()[-300:]
                    )
                helped, wall = self.spawn([llmx_bin, "--help"], env, 60)
                if helped is not None and helped.returncode == 0:
                    sample["help_s"] = wall
                else:
                    sample["help_error"] = (
                        "failed" if helped is None else helped.stderr.strip()[-300:]
                    )
                samples[count].append(sample)
        return {str(count): s for count, s in samples.items()}

    def cache(self) -> dict[str, Any]:
        """The cache-hit slot (reports "not available yet" until backends exist)."""
        assert self.server is not None
        log(f"{self.elapsed()} cache hits")
        SCRATCH.mkdir(parents=True, exist_ok=True)
        backends: dict[str, Any] = {}
        why: dict[str, str] = {}
        redis_proc: subprocess.Popen[bytes] | None = None
        redis_url = ""
        cache_dir = Path(tempfile.mkdtemp(prefix="cache-", dir=SCRATCH))  # fresh: no stale hits
        code = "import json, llmx\nr = llmx.Registry()\nr.load_all()\nprint(json.dumps(r.names('cache')))"
        done = subprocess.run(
            [dev_python(), "-c", code], capture_output=True, text=True, env=child_env(), cwd=SCRATCH
        )
        registered = set(json.loads(done.stdout or "[]")) if done.returncode == 0 else set()
        if "redis" in registered:
            redis_proc, redis_url, reason = _start_redis()
            if redis_proc is None:
                why["redis"] = reason
        try:
            for name, options in CACHE_BACKENDS.items():
                if name == "redis" and name in registered and redis_proc is None:
                    backends[name] = None
                else:
                    backends[name] = options(str(cache_dir), redis_url)
            for name in sorted(registered - set(backends)):
                backends[name] = {}
            spec = {
                "base_url": self.server.base_url,
                "config": LLMX_CONFIGS["llmx"].config(self.server.base_url),
                "model": LLMX_CONFIGS["llmx"].model,
                "backends": backends,
                "why": why,
                "hits": self.plan.cache_hits,
            }
            probe, _ = self.spawn(
                [dev_python(), "-m", "bench.drivers.cache_probe", json.dumps(spec)],
                child_env(),
                300,
            )
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(timeout=10)
        if probe is None or probe.returncode != 0:
            err = "timed out" if probe is None else probe.stderr.strip()[-400:]
            return {"error": err, "registered": sorted(registered)}
        return _last_json(probe.stdout)

    # -- the whole run ---------------------------------------------------------------------

    def run(
        self, *, memory: bool = True, plugins: bool = True, cache: bool = True
    ) -> dict[str, Any]:
        plan = self.plan
        SCRATCH.mkdir(parents=True, exist_ok=True)
        meta = machine()
        meta.update(
            plan=asdict(plan), nice=PRIORITY["nice"], started=time.strftime("%Y-%m-%d %H:%M:%S %z")
        )
        load_before, cpu_before = loadavg(), cpu_times()
        self.warm_bytecode()
        results: dict[str, Any] = {"meta": meta}
        with running_server(plan.chunks) as server:
            self.server = server
            whole = NoiseMeter([server.proc.pid])
            self.self_check(server)
            clients = self.clients(server.base_url)
            if any(c.python == "peers" for c in clients):
                meta["peer_versions"] = peer_versions()
                meta["peers_venv"] = str(PEERS_VENV.relative_to(REPO))
            log(f"{self.elapsed()} clients: {', '.join(c.key for c in clients)}")
            for key, why in self.skipped.items():
                log(f"  skipped {key}: {why}")
            self.rounds(clients)
            if memory:
                self.memory(clients)
            results["plugins"] = self.plugins() if plugins else {}
            results["cache"] = self.cache() if cache else {}
            results["server_final"] = server.call("GET", "/__stats")
            whole_noise = whole.read()
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        meta["duration_s"] = round(time.monotonic() - self.started, 1)
        meta["waited_for_quiet_s"] = round(self.waited, 1)
        results["noise"] = {
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
            "cpu": cpu_delta(cpu_before, cpu_times()),
            "foreign": whole_noise,
            "rounds": self.noise_rounds,
            "server_cpu": SERVER_CPU,
            "client_cpu": CLIENT_CPU,
        }
        results["clients"] = {
            c.key: {
                "label": c.label,
                "family": c.family,
                "python": c.python,
                "import": c.import_name,
                "pipeline": c.pipeline,
                "format": c.options.get("format", "openai"),
            }
            for c in clients
        }
        results["skipped"] = self.skipped
        results["notes"] = self.notes
        results["runs"] = self.runs
        results["imports"] = self.imports
        results["summary"] = report.summarize(results)
        return results


# -- small helpers -----------------------------------------------------------------------


def _last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)  # type: ignore[no-any-return]
            except ValueError:
                break
    return {}


def _text_of(fmt: str, obj: Any) -> str:
    if fmt == "openai":
        return obj["choices"][0]["message"]["content"]  # type: ignore[no-any-return]
    if fmt == "anthropic":
        return "".join(b["text"] for b in obj["content"])
    return "".join(p["text"] for p in obj["candidates"][0]["content"]["parts"])


def _delta_of(fmt: str, obj: Any) -> str:
    if fmt == "openai":
        return (obj["choices"][0]["delta"].get("content") or "") if obj["choices"] else ""
    if fmt == "anthropic":
        return obj["delta"].get("text", "") if obj["type"] == "content_block_delta" else ""
    return "".join(p.get("text", "") for p in obj["candidates"][0]["content"]["parts"])


def _start_redis() -> tuple[subprocess.Popen[bytes] | None, str, str]:
    """A throwaway redis-server on a free loopback port: (process, url, why-not)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None, "", "redis-server is not installed (apt-get install redis-server)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd, preexec = pinned(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        SERVER_CPU,
    )
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0", ""
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None, "", "redis-server did not start"


def run(
    plan: Plan,
    *,
    only: set[str] | None = None,
    wait_quiet_s: float = 0.0,
    nice: int = 0,
    memory: bool = True,
    plugins: bool = True,
    cache: bool = True,
) -> Path:
    """Run ``plan``, write the JSON and markdown results, print the table; returns the JSON path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    PRIORITY["nice"] = nice
    results = Runner(plan, only=only, wait_quiet_s=wait_quiet_s).run(
        memory=memory, plugins=plugins, cache=cache
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{stamp}-{plan.name}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    markdown = report.markdown(results)
    (RESULTS / "latest.md").write_text(markdown)
    print(markdown)
    log(
        f"wrote {path.relative_to(REPO)} and bench/results/latest.md in {results['meta']['duration_s']:.0f} s"
    )
    return path


def with_overrides(
    plan: Plan, *, rounds: int | None, memory_requests: int | None, peers: bool | None
) -> Plan:
    """``plan`` with command-line overrides applied."""
    if rounds is not None:
        plan = replace(plan, rounds=rounds)
    if memory_requests is not None:
        every = max(1, memory_requests // 10)
        plan = replace(plan, memory={**plan.memory, "total": memory_requests, "every": every})
    if peers is not None:
        plan = replace(plan, peers=peers)
    return plan


if __name__ == "__main__":  # pragma: no cover - use python -m bench
    sys.exit("run: python -m bench")

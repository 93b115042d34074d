"""The machine side of the bench: paths, CPU pinning, child environments, the fake
server's lifecycle, the peers venv, and machine-noise readings."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.clients import PEER_ENV, PEER_REQUIREMENTS

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
SCRATCH = BENCH / ".scratch"
PEERS_VENV = BENCH / ".venv-peers"

SERVER_CPU = 0
CLIENT_CPU = 1


def log(message: str) -> None:
    """Progress on stderr (stdout is kept for the final table)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- pinning and environments ------------------------------------------------------------


def pinning() -> str:
    """How processes are pinned here: ``taskset``, ``sched_setaffinity`` or ``none``."""
    if (os.cpu_count() or 1) < 2:
        return "none"
    if shutil.which("taskset"):
        return "taskset"
    if hasattr(os, "sched_setaffinity"):
        return "sched_setaffinity"
    return "none"


PRIORITY: dict[str, int] = {"nice": 0}
"""Niceness the measured processes get (``--nice``; 0 = unchanged). Set by the runner."""


def pinned(cmd: Sequence[str], cpu: int) -> tuple[list[str], Any]:
    """``cmd`` pinned to ``cpu`` (and reniced, see :data:`PRIORITY`): (argv, preexec_fn)."""
    how = pinning()
    nice = PRIORITY["nice"]
    argv = ["taskset", "-c", str(cpu), *cmd] if how == "taskset" else list(cmd)

    def preexec() -> None:
        if nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        if how == "sched_setaffinity":
            os.sched_setaffinity(0, {cpu})

    return argv, preexec if (nice or how == "sched_setaffinity") else None


def child_env(
    extra: Mapping[str, str] | None = None, pythonpath: Sequence[Path] = ()
) -> dict[str, str]:
    """The environment of a measured process.

    ``LLMX_*`` variables are dropped (the bench passes its config explicitly), bytecode
    writing is allowed (``PYTHONDONTWRITEBYTECODE`` would make every import compile
    from source, which no installed app pays), and the repository root is on
    ``PYTHONPATH`` so that ``bench.drivers`` is importable from any venv.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *map(str, pythonpath)])
    if extra:
        env.update(extra)
    return env


def dev_python() -> str:
    """The dev venv's Python (the one running the bench)."""
    return sys.executable


def peers_python() -> str:
    """The peers venv's Python."""
    return str(PEERS_VENV / "bin" / "python")


def ensure_peers_venv() -> tuple[bool, str]:
    """Create ``bench/.venv-peers`` with the peer libraries if needed: (ok, note)."""
    stamp = PEERS_VENV / ".bench-installed"
    want = "\n".join(PEER_REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == want:
        return True, "peers venv ready"
    log(
        f"creating {PEERS_VENV.relative_to(REPO)} with {', '.join(PEER_REQUIREMENTS)} (once; ~1-2 min)"
    )
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        if not (PEERS_VENV / "bin" / "python").exists():
            subprocess.run([base, "-m", "venv", str(PEERS_VENV)], check=True, capture_output=True)
        subprocess.run(
            [
                peers_python(),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PEER_REQUIREMENTS,
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        detail = getattr(err, "stderr", b"") or b""
        tail = detail.decode(errors="replace").strip().splitlines()[-3:]
        return False, f"could not install the peers venv: {err} {' | '.join(tail)}"
    stamp.write_text(want)
    return True, "peers venv created"


def peer_versions() -> dict[str, str]:
    """Versions of the peer libraries in the peers venv."""
    code = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for d in ('openai', 'litellm', 'aiohttp', 'httpx'):\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        done = subprocess.run(
            [peers_python(), "-c", code], capture_output=True, text=True, timeout=60
        )
        return json.loads(done.stdout)  # type: ignore[no-any-return]
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


# -- the fake server ---------------------------------------------------------------------


class Server:
    """The fake server in its own process, pinned to :data:`SERVER_CPU`."""

    def __init__(self, chunks: int) -> None:
        cmd, preexec = pinned(
            [dev_python(), "-m", "bench", "server", "--port", "0", "--chunks", str(chunks)],
            SERVER_CPU,
        )
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_env(),
            cwd=REPO,
            preexec_fn=preexec,  # only sets the CPU affinity
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            msg = f"the fake server did not start (said {line!r})"
            raise RuntimeError(msg)
        self.port = int(line)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str) -> dict[str, Any]:
        """A control request (``/__stats``, ``/__reset``, ``/__config``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path)
            return json.loads(conn.getresponse().read())  # type: ignore[no-any-return]
        finally:
            conn.close()

    def request(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """An API request (used by the self-check)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the server process we started."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def running_server(chunks: int) -> Iterator[Server]:
    """The fake server for the duration of the block."""
    server = Server(chunks)
    try:
        yield server
    finally:
        server.stop()


# -- noise and machine facts -------------------------------------------------------------

_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times() -> dict[str, dict[str, int]]:
    """``/proc/stat`` CPU lines (all and per CPU) as jiffies by field; {} elsewhere."""
    out: dict[str, dict[str, int]] = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                name, *values = line.split()
                out[name] = dict(zip(_STAT_FIELDS, map(int, values), strict=False))
    except OSError:
        pass
    return out


def cpu_delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, Any]:
    """Percent of time per field between two :func:`cpu_times` readings."""
    out: dict[str, Any] = {}
    for name, b in before.items():
        a = after.get(name)
        if a is None:
            continue
        diff = {k: a.get(k, 0) - b.get(k, 0) for k in _STAT_FIELDS}
        total = sum(diff.values()) or 1
        out[name] = {k: round(100 * v / total, 2) for k, v in diff.items()}
        out[name]["busy"] = round(100 * (total - diff["idle"] - diff["iowait"]) / total, 2)
    return out


def _proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/PID/stat``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def own_cpu_seconds(pids: Sequence[int] = ()) -> float:
    """CPU seconds used by the bench: this process, its reaped children, and ``pids``."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total + sum(_proc_cpu_seconds(p) for p in pids)


def busy_cpu_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (``/proc/stat``)."""
    total = cpu_times().get("cpu")
    if not total:
        return 0.0
    busy = sum(total.values()) - total.get("idle", 0) - total.get("iowait", 0)
    return busy / os.sysconf("SC_CLK_TCK")


class NoiseMeter:
    """How much CPU *other* processes took while the bench measured.

    Foreign CPU = everything the machine's CPUs did (``/proc/stat``) minus what the
    bench's own processes did (runner, drivers, the fake server). On an idle machine it
    is close to 0; a parallel compile shows up here, and its numbers are suspect.
    """

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.pids = list(pids)
        self.t0 = time.monotonic()
        self.busy0 = busy_cpu_seconds()
        self.own0 = own_cpu_seconds(self.pids)
        self.load0 = loadavg()

    def read(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        foreign = max(
            0.0, (busy_cpu_seconds() - self.busy0) - (own_cpu_seconds(self.pids) - self.own0)
        )
        return {
            "wall_s": round(wall, 2),
            "foreign_cpu_s": round(foreign, 2),
            "foreign_cores": round(foreign / wall, 3) if wall else 0.0,
            "loadavg_before": self.load0,
            "loadavg_after": loadavg(),
        }


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    try:
        return list(os.getloadavg())
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(REPO), "status", "--porcelain", "--", "core", "plugins"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pinning": pinning(),
        "git": commit + ("+dirty" if dirty else ""),
        "pythondontwritebytecode_in_env": "PYTHONDONTWRITEBYTECODE" in os.environ,
        "peer_env": PEER_ENV,
    }

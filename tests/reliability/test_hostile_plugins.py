"""Reliability under hostile plugin distributions, really installed (issue 14, defects 2
and 6), with figures: run with ``-s`` to see them (each also a ``record_property``).

- A plugin hanging at import (``llmx-fixture-slow``, 30 s) installed but not used:
  ``llmx plugins`` does not wait for it (figure: its wall time).
- The same plugin enabled: ``Client()`` and ``llmx plugins --load`` name it while it
  runs (figure: seconds from the import starting to the warning, threshold 0.5 s).
- A plugin registering ``openai`` (``llmx-fixture-thief``) enabled next to an ``openai``
  instance with a canary key: refused, the key never reaches it (figure: keys stolen).
- The watchdog's cost per plugin load (figure: µs, with and without it).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests._support import FIXTURE_DISTS, InstallDists, subprocess_env

THRESHOLD = 0.5
CANARY = "sk-canary-hostile-0c7d1e"

Report = Callable[[str, float, str], None]


@pytest.fixture
def report(record_property: Callable[[str, object], None]) -> Report:
    """``report(name, value, unit)``: print a figure and record it as a property."""

    def emit(name: str, value: float, unit: str) -> None:
        print(f"\n[reliability] hostile plugins: {name} = {value:.3f} {unit}")
        record_property(name, round(value, 6))

    return emit


@pytest.fixture(scope="module")
def hostile_site(install_dists: InstallDists) -> Path:
    return install_dists(
        [
            "llmx-fixture-echo",
            FIXTURE_DISTS / "llmx-fixture-slow",
            FIXTURE_DISTS / "llmx-fixture-thief",
        ]
    )


def timed_stderr(
    args: list[str], site: Path, cwd: Path, env: dict[str, str]
) -> tuple[int, list[tuple[float, str]], str]:
    """Run ``python ARGS``; its exit code, each stderr line with the monotonic time it
    arrived, and its stdout."""
    full_env = subprocess_env(site, cwd)
    full_env.update(env)
    out: list[str] = []
    with subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None
        assert stderr is not None
        reader = threading.Thread(target=lambda: out.append(stdout.read()), daemon=True)
        reader.start()
        lines = [(time.monotonic(), line.rstrip("\n")) for line in stderr]
        code = proc.wait(timeout=60)
        reader.join(timeout=10)
    return code, lines, "".join(out)


def warning_delay(lines: list[tuple[float, str]]) -> float:
    """Seconds from the slow import starting to the first warning naming it."""
    started = next(t for t, line in lines if line == "llmx-fixture-slow: importing")
    warned = next((t, line) for t, line in lines if "is still importing" in line)
    assert "plugin 'slow' (llmx-fixture-slow 1.0.0)" in warned[1]
    return warned[0] - started


def test_llmx_plugins_does_not_wait_for_a_hanging_plugin(
    hostile_site: Path, tmp_path: Path, report: Report
) -> None:
    began = time.monotonic()
    code, lines, out = timed_stderr(["-m", "llmx", "plugins"], hostile_site, tmp_path, {})
    took = time.monotonic() - began

    report("llmx_plugins_with_hanging_plugin_s", took, "s (the plugin hangs 30 s at import)")
    assert code == 0
    assert not any("llmx-fixture-slow: importing" in line for _, line in lines)
    assert "slow" in out
    assert took < 10


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "llmx", "plugins", "--load"],
        ["-c", "import llmx; llmx.Client({'plugins': {'enable': ['slow']}})"],
    ],
    ids=["llmx-plugins-load", "Client"],
)
def test_a_slow_import_is_named_within_the_threshold(
    hostile_site: Path, tmp_path: Path, report: Report, args: list[str]
) -> None:
    env = {"FIXTURE_SLOW_SECONDS": "2", "LLMX_PLUGINS__SLOW_IMPORT_AFTER": str(THRESHOLD)}

    code, lines, _ = timed_stderr(args, hostile_site, tmp_path, env)

    assert code == 0, lines
    delay = warning_delay(lines)
    where = "llmx plugins --load" if "plugins" in args else "Client()"
    report(f"slow_import_warning_after_s[{where}]", delay, f"s (threshold {THRESHOLD} s)")
    assert THRESHOLD - 0.05 <= delay < THRESHOLD + 0.5


def test_a_plugin_taking_openai_never_receives_the_key(
    hostile_site: Path, tmp_path: Path, report: Report
) -> None:
    script = (
        "import sys, llmx\n"
        "config = {'plugins': {'enable': ['thief']},\n"
        f"          'providers': {{'main': {{'type': 'openai', 'api_key': {CANARY!r}}}}}}}\n"
        "try:\n"
        "    llmx.Client(config)\n"
        "except llmx.ConfigError as err:\n"
        "    print('refused:', err)\n"
        "thief = sys.modules.get('llmx_fixture_thief')\n"
        "print('stolen:', len(thief.STOLEN) if thief else 0)\n"
    )

    code, lines, out = timed_stderr(["-c", script], hostile_site, tmp_path, {})

    assert code == 0, lines
    stolen = int(out.rsplit("stolen:", 1)[1])
    report("keys_received_by_a_plugin_taking_openai", stolen, "keys")
    assert stolen == 0
    assert "refused:" in out
    assert "plugin 'thief' (llmx-fixture-thief 1.0.0)" in out
    assert CANARY not in out + "".join(line for _, line in lines)


def test_the_import_watchdog_costs_microseconds_per_plugin_load(report: Report) -> None:
    """A plugin load is not on the request path; still, the watchdog (a thread per load)
    must stay negligible next to an import."""
    import importlib_metadata

    import llmx

    ep = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")

    def per_load(after: float | None) -> float:
        rounds = 200
        began = time.perf_counter()
        for _ in range(rounds):
            llmx.Registry(entry_points=[ep], slow_import_after=after).load("builtins")
        return (time.perf_counter() - began) / rounds * 1e6

    per_load(None)  # warm up
    without, with_watch = (
        min(per_load(None) for _ in range(3)),
        min(per_load(3.0) for _ in range(3)),
    )
    report("registry_load_without_watchdog_us", without, "µs")
    report("registry_load_with_watchdog_us", with_watch, "µs")
    assert with_watch - without < 2000

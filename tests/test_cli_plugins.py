"""``llmx plugins`` as a subprocess, against really installed fixture distributions.

Contract: ``llmx plugins --json`` prints a JSON array of
``{"name", "distribution", "version", "status", "registers": ["kind:name", ...], "hooks":
["llmx_...", ...], "error"}``
and exits 0, whatever state the plugins are in; plain ``llmx plugins`` prints the same facts
as a table, one row per plugin, with the error message of a failed one. A broken plugin is
reported, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests._support import CLEAN_FIXTURES, FIXTURE_DISTS, InstallDists, subprocess_env

# Without llmx-fixture-collide, so loading everything gives no component conflict.
CLI_FIXTURES = tuple(d for d in CLEAN_FIXTURES if d != "llmx-fixture-collide")
ROW_KEYS = {"name", "distribution", "version", "status", "registers", "hooks", "error"}


def llmx_cli(
    *args: str, site: Path | None, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m llmx ARGS`` in ``cwd`` with ``site`` as ``PYTHONPATH``."""
    full_env = subprocess_env(site, cwd)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def plugins_json(site: Path, cwd: Path, *extra: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """``llmx plugins --json [EXTRA]``, checked for exit code 0 and no traceback, by
    plugin name."""
    proc = llmx_cli("plugins", "--json", *extra, site=site, cwd=cwd, **kwargs)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) == ROW_KEYS
    by_name = {row["name"]: row for row in rows}
    assert len(by_name) == len(rows), "one row per plugin"
    return by_name


@pytest.fixture(scope="module")
def cli_site(install_dists: InstallDists) -> Path:
    """The fixture plugins for the CLI tests (no twin, no component collision)."""
    return install_dists(CLI_FIXTURES)


def test_plugins_json_reports_every_plugin_and_its_state(cli_site: Path, tmp_path: Path) -> None:
    rows = plugins_json(cli_site, tmp_path, "--load")

    echo = rows["echo"]
    assert (echo["distribution"], echo["version"], echo["status"]) == (
        "llmx-fixture-echo",
        "1.0.0",
        "loaded",
    )
    assert set(echo["registers"]) == {
        "provider:echo",
        "routing_strategy:reverse",
        "command:echo-hello",
    }
    assert echo["error"] is None
    assert rows["builtins"]["distribution"] == "llmx"
    assert rows["builtins"]["status"] == "loaded"
    assert "routing_strategy:priority" in rows["builtins"]["registers"]
    assert (rows["events"]["status"], rows["events"]["registers"]) == ("loaded", [])

    broken = rows["broken"]
    assert (broken["distribution"], broken["status"], broken["registers"]) == (
        "llmx-fixture-broken",
        "failed",
        [],
    )
    assert "RuntimeError: boom" in broken["error"]
    assert rows["typo"]["status"] == "failed"
    assert "llmx_register_provider" in rows["typo"]["error"]
    for name in ("old", "future"):
        assert rows[name]["status"] == "incompatible"
        assert f"llmx-fixture-{name}" in rows[name]["error"]
    nocontract = rows["nocontract"]  # declaring a contract version is optional
    assert (nocontract["status"], nocontract["registers"]) == ("loaded", ["provider:nocontract"])
    assert "upgrade llmx" in rows["future"]["error"]
    assert "upgrade the plugin" in rows["old"]["error"]


def test_plugins_table_has_one_row_per_plugin_with_errors(cli_site: Path, tmp_path: Path) -> None:
    rows = plugins_json(cli_site, tmp_path, "--load")
    proc = llmx_cli("plugins", "--load", site=cli_site, cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for name, row in rows.items():
        mine = [line for line in lines if line.split()[:1] == [name]]
        assert len(mine) == 1, f"one row for {name!r} in:\n{proc.stdout}"
        for fact in (row["distribution"], row["version"], row["status"]):
            assert fact in mine[0]
    broken_row = next(line for line in lines if line.startswith("broken "))
    assert "RuntimeError: boom" in broken_row
    echo_row = next(line for line in lines if line.startswith("echo "))
    assert "provider:echo" in echo_row


def test_plugins_reports_an_entry_point_name_conflict(fixture_site: Path, tmp_path: Path) -> None:
    rows = plugins_json(fixture_site, tmp_path)

    echo = rows["echo"]
    assert echo["status"] == "conflict"
    assert "llmx-fixture-echo 1.0.0" in echo["error"]
    assert "llmx-fixture-echo-twin 1.0.0" in echo["error"]


def test_plugins_honours_plugins_config(cli_site: Path, tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text('[plugins]\ndisable = ["broken"]\n', encoding="utf-8")

    rows = plugins_json(cli_site, tmp_path, "--load")

    assert rows["broken"]["status"] == "disabled"
    assert rows["echo"]["status"] == "loaded"


def test_plugins_without_autoload_loads_nothing_optional(cli_site: Path, tmp_path: Path) -> None:
    rows = plugins_json(cli_site, tmp_path, env={"LLMX_DISABLE_PLUGIN_AUTOLOAD": "1"})

    assert rows["builtins"]["status"] == "loaded"
    assert {rows[n]["status"] for n in ("echo", "broken", "events")} == {"available"}


def test_enabled_plugin_adds_a_command(install_dists: InstallDists, tmp_path: Path) -> None:
    """A command registered through ``llmx_register_commands`` appears in ``llmx --help``
    and runs once its plugin is enabled; without enabling, the installed plugin adds
    nothing (and is never imported)."""
    site = install_dists(CLI_FIXTURES)
    before = llmx_cli("--help", site=site, cwd=tmp_path)
    assert before.returncode == 0
    assert "echo-hello" not in before.stdout
    (tmp_path / "llmx.toml").write_text('[plugins]\nenable = ["echo"]\n')
    after = llmx_cli("--help", site=site, cwd=tmp_path)
    assert "echo-hello" in after.stdout
    ran = llmx_cli("echo-hello", "plugins", site=site, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "hello, plugins"
    listed = json.loads(llmx_cli("plugins", "--json", site=site, cwd=tmp_path).stdout)
    echo = next(row for row in listed if row["name"] == "echo")
    assert "command:echo-hello" in echo["registers"]


EVENT_HOOKS = ["llmx_attempt_end", "llmx_request_end", "llmx_request_error", "llmx_request_start"]


def test_plugins_lists_the_hooks_each_plugin_implements(cli_site: Path, tmp_path: Path) -> None:
    """The bug: a plugin with event hooks only (``events``) showed "-", as if it did nothing."""
    rows = plugins_json(cli_site, tmp_path, "--load")

    assert rows["events"]["hooks"] == EVENT_HOOKS
    assert rows["echo"]["hooks"] == [
        "llmx_register_commands",
        "llmx_register_providers",
        "llmx_register_routing_strategies",
    ]
    assert rows["broken"]["hooks"] == []  # never loaded
    proc = llmx_cli("plugins", "--load", site=cli_site, cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert "REGISTERS / HOOKS / ERROR" in lines[0]
    events_row = next(line for line in lines if line.startswith("events "))
    assert events_row.rstrip().endswith("hooks: " + ", ".join(EVENT_HOOKS))
    echo_row = next(line for line in lines if line.startswith("echo "))
    assert "hooks:" not in echo_row  # registration hooks are shown by what they registered
    assert " - " not in events_row + echo_row


def test_plugins_without_autoload_says_what_is_not_loaded(cli_site: Path, tmp_path: Path) -> None:
    proc = llmx_cli(
        "plugins", site=cli_site, cwd=tmp_path, env={"LLMX_DISABLE_PLUGIN_AUTOLOAD": "1"}
    )

    events_row = next(line for line in proc.stdout.splitlines() if line.startswith("events "))
    assert events_row.rstrip().endswith("(not loaded)")


# -- inspecting plugins without running them ---------------------------------------------


@pytest.fixture(scope="module")
def slow_site(install_dists: InstallDists) -> Path:
    """The CLI fixtures plus ``llmx-fixture-slow``, whose import hangs (30 s by default)."""
    return install_dists([*CLI_FIXTURES, FIXTURE_DISTS / "llmx-fixture-slow"])


def test_plugins_imports_only_what_the_config_loads(slow_site: Path, tmp_path: Path) -> None:
    """The bug: ``llmx plugins`` imported (ran) every installed plugin, and waited for
    one hanging at import; now it reads their metadata and imports none the config does
    not load."""
    began = time.monotonic()
    proc = llmx_cli("plugins", "--json", site=slow_site, cwd=tmp_path)
    took = time.monotonic() - began

    assert proc.returncode == 0, proc.stderr
    assert "llmx-fixture-slow: importing" not in proc.stderr
    assert took < 15, f"llmx plugins took {took:.1f} s"
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert (rows["slow"]["distribution"], rows["slow"]["version"]) == ("llmx-fixture-slow", "1.0.0")
    assert {rows[n]["status"] for n in ("slow", "echo", "broken", "events")} == {"available"}
    assert rows["builtins"]["status"] == "loaded"
    table = llmx_cli("plugins", site=slow_site, cwd=tmp_path)
    assert "not imported" in table.stderr
    assert "llmx plugins --load" in table.stderr


def test_plugins_loads_the_plugins_the_config_uses(slow_site: Path, tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text(
        '[plugins]\nenable = ["events"]\n\n[providers.e]\ntype = "echo"\n', encoding="utf-8"
    )

    rows = plugins_json(slow_site, tmp_path)

    assert rows["echo"]["status"] == "loaded"
    assert "provider:echo" in rows["echo"]["registers"]
    assert rows["events"]["status"] == "loaded"
    assert {rows[n]["status"] for n in ("slow", "broken")} == {"available"}


def test_plugins_load_reports_a_slow_import_by_name_while_it_runs(
    slow_site: Path, tmp_path: Path
) -> None:
    env = {"FIXTURE_SLOW_SECONDS": "1.5", "LLMX_PLUGINS__SLOW_IMPORT_AFTER": "0.3"}

    proc = llmx_cli("plugins", "--load", "--json", site=slow_site, cwd=tmp_path, env=env)

    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    started = lines.index("llmx-fixture-slow: importing")
    still = [i for i, line in enumerate(lines) if "is still importing" in line]
    done = [i for i, line in enumerate(lines) if "finished importing" in line]
    assert still, proc.stderr
    assert done, proc.stderr
    assert started < still[0] < done[0]
    assert lines[still[0]].startswith(
        "llmx: WARNING: plugin 'slow' (llmx-fixture-slow 1.0.0) is still importing after 0.3 s"
    )
    assert "add 'slow' to [plugins] disable" in lines[still[0]]
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["slow"]["status"] == "loaded"


def test_plugins_never_shows_a_plugin_taking_a_first_party_name_as_loaded(
    install_dists: InstallDists, tmp_path: Path
) -> None:
    """The bug: with ``thief`` (registering ``openai``) enabled, ``llmx plugins`` showed
    it and llmx-provider-openai both loaded, both registering ``provider:openai``."""
    site = install_dists(["llmx-fixture-echo", FIXTURE_DISTS / "llmx-fixture-thief"])
    (tmp_path / "llmx.toml").write_text(
        '[plugins]\nenable = ["thief"]\n\n[providers.main]\ntype = "openai"\napi_key = "sk-x"\n',
        encoding="utf-8",
    )

    for extra in ((), ("--load",)):
        rows = plugins_json(site, tmp_path, *extra)

        thief = rows["thief"]
        assert (thief["status"], thief["registers"]) == ("conflict", [])
        assert "plugin 'thief' (llmx-fixture-thief 1.0.0)" in thief["error"]
        assert "llmx-provider-openai 0.1.0" in thief["error"]
        assert rows["openai"]["status"] == "loaded"
        holders = {
            row["distribution"]
            for row in rows.values()
            if row["status"] == "loaded" and "provider:openai" in row["registers"]
        }
        assert holders == {"llmx-provider-openai"}  # openai (and azure, the same module)

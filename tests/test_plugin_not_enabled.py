"""An installed plugin that the config neither enables nor uses is never imported.

``llmx-fixture-marker`` (``tests/fixtures/dists/``) exposes the ``llmx`` entry point
``marker``; the first thing its module does when imported is append a line to the file
``FIXTURE_MARKER_FILE`` names. It is really installed (pip, from its wheel) into a fresh
venv whose other packages are the dev venv's (a ``.pth`` file adds its site-packages),
and every check runs in a new interpreter of that venv — the library, each CLI command
that reads plugins or config, a real request — then looks for the marker file, which
must not exist. The controls (the config enables the plugin, or names its provider type)
show the marker does appear when the plugin is imported, so the test can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests._support import FIXTURE_DISTS, build_wheels, run, subprocess_env

MARKER_DIST = FIXTURE_DISTS / "llmx-fixture-marker"

# A real request through the first-party openai provider against its fake server, with
# the builtins' cache, retry policy and routing strategy, and the llmx-redis plugin enabled
# (an enabled plugin is imported; the marker plugin is not).
REQUEST = textwrap.dedent(
    """
    import asyncio
    import json
    import sys

    import llmx
    from llmx.testing import Reply
    from llmx_openai.testing import FakeOpenAIServer

    extra = json.loads(sys.argv[1])

    async def main() -> None:
        async with FakeOpenAIServer(api_key="sk-test") as server:
            server.enqueue(Reply(text="hello"))
            config = {
                "providers": {
                    "main": {"type": "openai", "api_key": "sk-test", "base_url": server.base_url}
                },
                "cache": {"backend": "memory"},
                "retry": {"policy": "stamina"},
                "routing": {"strategy": "priority"},
                **extra,
            }
            async with llmx.Client(config) as client:
                client.registry.assemble()
                reply = await client.complete(model="main/gpt-4o-mini", prompt="hi")
                states = {p.name: p.status for p in client.registry.plugins()}
        print(json.dumps({"text": reply.text, "states": states}))

    asyncio.run(main())
    """
)

# Asking for a component in ways that must not import an unrelated plugin: a misspelt
# provider type, the plugin's own type with autoload off or with the plugin disabled.
# Each is refused; the message is printed.
REFUSED = textwrap.dedent(
    """
    import json
    import sys

    import llmx

    try:
        llmx.Client(json.loads(sys.argv[1]))
    except llmx.LlmxError as err:
        print(json.dumps({"refused": str(err)}))
    else:
        print(json.dumps({"refused": None}))
    """
)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with llmx-fixture-marker really installed from its wheel.

    Made without pip and filled by the dev venv's pip (``pip --python``); a ``.pth`` file
    puts the dev venv's site-packages (llmx, the first-party plugins, aiohttp...) after
    its own, so nothing else needs installing.
    """
    root = tmp_path_factory.mktemp("not-enabled") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", root])
    python = root / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    dev_site = sysconfig.get_paths()["purelib"]
    Path(purelib.stdout.strip(), "_llmx_dev_site.pth").write_text(
        f"import site; site.addsitedir({dev_site!r})\n"
    )
    wheels = tmp_path_factory.mktemp("marker-wheel")
    build_wheels([MARKER_DIST], wheels)
    (wheel,) = wheels.glob("llmx_fixture_marker-*.whl")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
    run([*pip, "--no-deps", "--no-index", wheel])
    return root


def in_venv(
    venv: Path, tmp_path: Path, args: list[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the venv, in ``tmp_path`` (its ``llmx.toml``, if any, is the
    config), with ``FIXTURE_MARKER_FILE`` pointing at ``tmp_path/marker``."""
    env = subprocess_env(None, tmp_path)
    env["FIXTURE_MARKER_FILE"] = str(tmp_path / "marker")
    cmd: list[str | Path] = [venv / "bin" / "python", *args]
    if check:
        return run(cmd, cwd=tmp_path, env=env)
    return subprocess.run(
        [str(c) for c in cmd], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )


def imported(tmp_path: Path) -> list[str]:
    """The marker's lines: one per process that imported the plugin."""
    marker = tmp_path / "marker"
    return marker.read_text().splitlines() if marker.exists() else []


def test_the_marker_plugin_is_installed_in_the_venv_and_listed_unloaded(
    venv: Path, tmp_path: Path
) -> None:
    proc = in_venv(venv, tmp_path, ["-m", "llmx", "plugins", "--json"])

    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["marker"]["distribution"] == "llmx-fixture-marker"
    assert rows["marker"]["status"] == "available"
    located = in_venv(
        venv,
        tmp_path,
        [
            "-c",
            "import importlib.metadata as m; print(m.distribution('llmx-fixture-marker')._path)",
        ],
    )
    assert Path(located.stdout.strip()).is_relative_to(venv)  # installed there, not on a path
    assert imported(tmp_path) == []


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"plugins": {"enable": ["redis"]}}, id="another-plugin-enabled"),
        pytest.param({"plugins": {"autoload": False, "enable": ["openai"]}}, id="autoload-off"),
    ],
)
def test_a_real_request_never_imports_a_plugin_the_config_does_not_enable(
    venv: Path, tmp_path: Path, extra: dict[str, object]
) -> None:
    proc = in_venv(venv, tmp_path, ["-c", REQUEST, json.dumps(extra)])

    result = json.loads(proc.stdout)
    assert result["text"] == "hello"
    assert result["states"]["marker"] == "available"
    assert result["states"]["openai"] == "loaded"
    assert imported(tmp_path) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["plugins"], id="plugins"),
        pytest.param(["plugins", "--json"], id="plugins-json"),
        pytest.param(["config", "check"], id="config-check"),
        pytest.param(["models"], id="models"),
    ],
)
def test_cli_commands_never_import_a_plugin_the_config_does_not_enable(
    venv: Path, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "llmx.toml").write_text(
        textwrap.dedent(
            """
            [providers.main]
            type = "openai"
            api_key = "sk-test"
            base_url = "http://127.0.0.1:9/v1"

            [cache]
            backend = "memory"

            [plugins]
            enable = ["redis"]
            """
        )
    )

    proc = in_venv(venv, tmp_path, ["-m", "llmx", *args])

    assert "Traceback" not in proc.stderr
    assert imported(tmp_path) == []


@pytest.mark.parametrize(
    ("config", "says"),
    [
        pytest.param(
            {"providers": {"main": {"type": "markr"}}, "plugins": {"autoload": False}},
            "(did you mean 'marker'?)",
            id="misspelt-type-autoload-off",
        ),
        pytest.param(
            {"providers": {"main": {"type": "markr"}}},
            "(did you mean 'marker'?); 'marker' (llmx-fixture-marker) is an installed plugin",
            id="misspelt-type",
        ),
        pytest.param(
            {"providers": {"main": {"type": "marker"}}, "plugins": {"autoload": False}},
            "[plugins] enable",
            id="own-type-autoload-off",
        ),
        pytest.param(
            {"providers": {"main": {"type": "marker"}}, "plugins": {"disable": ["marker"]}},
            "[plugins] disable",
            id="own-type-disabled",
        ),
    ],
)
def test_a_refused_lookup_never_imports_the_plugin(
    venv: Path, tmp_path: Path, config: dict[str, object], says: str
) -> None:
    proc = in_venv(venv, tmp_path, ["-c", REFUSED, json.dumps(config)])

    refused = json.loads(proc.stdout)["refused"]
    assert refused is not None
    assert says in refused
    assert imported(tmp_path) == []


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"plugins": {"enable": ["marker"]}}, id="enabled"),
        pytest.param({"providers": {"main": {"type": "marker"}}}, id="its-type-named"),
    ],
)
def test_control_the_marker_appears_when_the_config_loads_the_plugin(
    venv: Path, tmp_path: Path, config: dict[str, object]
) -> None:
    """Without this, a marker that is never written would pass every test above."""
    proc = in_venv(venv, tmp_path, ["-c", REFUSED, json.dumps(config)])

    assert json.loads(proc.stdout)["refused"] is None
    lines = imported(tmp_path)
    assert len(lines) == 1
    assert lines[0].startswith("imported by ")

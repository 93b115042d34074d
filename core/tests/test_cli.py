"""The CLI as a user runs it: one clear line per error, no tracebacks, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "sk-cli-SECRET-abcdef123456"


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m llmx ARGS`` in ``cwd`` with a clean LLMX_* environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    full_env["XDG_CONFIG_HOME"] = str(cwd / ".config")
    full_env["XDG_DATA_HOME"] = str(cwd / ".data")  # no local model: nothing answers by default
    full_env["LLMX_MODELS_DIR"] = str(cwd / ".data" / "models")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def assert_one_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("llmx: error: ")
    for fragment in fragments:
        assert fragment in result.stderr


def test_help(tmp_path: Path) -> None:
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("chat", "config", "models", "plugins"):
        assert command in result.stdout


def test_config_check_prints_redacted_config(tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text(
        f'[providers.main]\ntype = "openai"\napi_key = "{SECRET}"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[providers.other]\ntype = "openai"\napi_key = { env = "LLMX_TEST_UNSET_KEY" }\n'
        'base_url = "http://127.0.0.1:9/v1"\n'
    )
    result = run(["config", "check"], tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["providers"]["main"]["api_key"] == "***"
    assert data["providers"]["other"]["api_key"] == {"env": "LLMX_TEST_UNSET_KEY"}
    assert "LLMX_TEST_UNSET_KEY" in result.stderr  # warned: not set
    assert SECRET not in result.stdout + result.stderr


def test_config_check_names_key_path(tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text('[providers.main]\ntype = "openai"\napi_kye = "x"\n')
    result = run(["config", "check"], tmp_path)
    assert_one_clean_error(result, "extra fields found (api_kye) @ $.providers.main")


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text("[providers\n")
    assert_one_clean_error(run(["config", "check"], tmp_path), "not valid TOML")
    assert_one_clean_error(run(["chat", "-m", "a/b", "hi"], tmp_path), "not valid TOML")


def test_unknown_provider_type(tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text('[providers.main]\ntype = "nosuchtype"\n')
    assert_one_clean_error(
        run(["config", "check"], tmp_path),
        "unknown provider type 'nosuchtype'",
        "$.providers.main.type",
    )


def test_chat_without_model_explains(tmp_path: Path) -> None:
    assert_one_clean_error(run(["chat", "hello"], tmp_path), "no model chosen", "-m")


def test_chat_unknown_instance(tmp_path: Path) -> None:
    assert_one_clean_error(
        run(["chat", "-m", "nowhere/x", "hello"], tmp_path), "unknown provider instance 'nowhere'"
    )


def test_chat_needs_a_prompt(tmp_path: Path) -> None:
    result = run(["chat", "-m", "a/b"], tmp_path, stdin="   ")
    assert result.returncode == 2  # a usage error
    assert "prompt is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_option(tmp_path: Path) -> None:
    result = run(["--config", str(tmp_path / "nope.toml"), "models"], tmp_path)
    assert_one_clean_error(result, "does not exist")


def test_models_lists_instances_and_aliases(tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text(
        'default_model = "main/fast"\n[providers.main]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'models = { fast = "gpt-4o-mini" }\n[aliases]\nsmart = ["main/gpt-4o"]\n'
    )
    result = run(["models", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["instances"][0]["instance"] == "main"
    assert data["instances"][0]["mapped"] == {"fast": "gpt-4o-mini"}
    assert data["aliases"] == {"smart": ["main/gpt-4o"]}
    text = run(["models"], tmp_path).stdout
    assert "main/fast -> gpt-4o-mini" in text


@pytest.mark.parametrize(
    "module", ["aiohttp", "cattrs", "click", "importlib_metadata", "llmx._client"]
)
def test_import_llmx_is_light(module: str) -> None:
    code = f"import llmx, sys; print({module!r} in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_lazy_names_resolve() -> None:
    import llmx

    for name in llmx.__all__:
        assert getattr(llmx, name) is not None
    with pytest.raises(AttributeError):
        llmx.no_such_name  # noqa: B018


def test_plugins_lists_components_and_hooks_of_the_installed_first_party_plugins(
    tmp_path: Path,
) -> None:
    """The dev environment has the first-party plugins installed; one distribution
    (llmx-provider-openai) carries three entry points that name one module. ``--load``
    imports them all (plain ``llmx plugins`` imports only what the config loads)."""
    result = run(["plugins", "--json", "--load"], tmp_path)

    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("openai", "azure", "openai-responses"):
        assert rows[name]["distribution"] == "llmx-provider-openai"
        assert rows[name]["registers"] == [
            "provider:openai",
            "provider:azure",
            "provider:openai-responses",
        ]
        assert rows[name]["hooks"] == ["llmx_register_providers"]
    assert rows["redis"]["hooks"] == [
        "llmx_register_breaker_stores",
        "llmx_register_caches",
        "llmx_register_limiters",
    ]
    table = run(["plugins", "--load"], tmp_path).stdout.splitlines()
    redis = next(line for line in table if line.startswith("redis "))
    assert redis.rstrip().endswith("cache:redis, limiter:redis, breaker_store:redis")


def test_an_unknown_llmx_variable_is_one_warning_and_a_bad_one_an_error_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "llmx.toml").write_text('[providers.main]\ntype = "openai"\n')

    ignored = run(["config", "check"], tmp_path, env={"LLMX_REDIS_URL": "redis://127.0.0.1:1"})
    bad = run(["config", "check"], tmp_path, env={"LLMX_DEADLINE": "soon"})

    assert ignored.returncode == 0, ignored.stderr
    warnings = [line for line in ignored.stderr.splitlines() if "LLMX_REDIS_URL" in line]
    assert len(warnings) == 1  # once, though the CLI loads the config twice
    assert warnings[0].startswith("llmx: WARNING: environment variable LLMX_REDIS_URL is ignored")
    assert_one_clean_error(
        bad,
        "invalid config from LLMX_* environment variables, over",
        "@ $.deadline (set by environment variable LLMX_DEADLINE)",
    )
    assert "invalid config in" not in bad.stderr

"""Configuration: sources, environment overrides, precise errors, and secrets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmx
from llmx._config import env_overrides, find_config_file

SECRET = "sk-live-SUPERSECRET-0123456789"

TOML = """
default_model = "main/gpt-4o-mini"

[plugins]
enable = ["openai"]

[providers.main]
type = "openai"
api_key = { env = "TEST_LLMX_KEY" }
base_url = "http://127.0.0.1:9/v1"
priority = 2
models = { fast = "gpt-4o-mini" }

[aliases]
smart = ["main/gpt-4o", "other/claude"]
cheap = { candidates = ["main/gpt-4o-mini"], strategy = "priority" }
"""


def test_load_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "llmx.toml"
    path.write_text(TOML)
    config = llmx.load_config(path, environ={})
    assert config.default_model == "main/gpt-4o-mini"
    assert config.plugins.enable == ("openai",)
    main = config.providers["main"]
    assert main.type == "openai"
    assert main.api_key == llmx.Secret(env="TEST_LLMX_KEY")
    assert main.map_model("fast") == "gpt-4o-mini"
    assert main.priority == 2
    assert config.aliases["smart"].candidates == ("main/gpt-4o", "other/claude")
    assert config.aliases["cheap"].strategy == "priority"
    assert config.source == str(path)


def test_pyproject_tool_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n[tool.llmx]\ndefault_model = "x/y"\n[tool.llmx.providers.x]\ntype = "openai"\n'
    )
    found = find_config_file(tmp_path)
    assert found == tmp_path / "pyproject.toml"
    config = llmx.load_config(found, environ={})
    assert config.default_model == "x/y"
    assert "[tool.llmx]" in (config.source or "")


def test_find_config_prefers_llmx_toml_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMX_CONFIG", raising=False)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    (tmp_path / "llmx.toml").write_text("")
    assert find_config_file(sub) == tmp_path / "llmx.toml"
    monkeypatch.setenv("LLMX_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert find_config_file(sub) == tmp_path / "elsewhere.toml"


def test_env_overrides() -> None:
    env = {
        "LLMX_DEFAULT_MODEL": "main/gpt-4o",
        "LLMX_PROVIDERS__MAIN__BASE_URL": "http://127.0.0.1:1/v1",
        "LLMX_PROVIDERS__MAIN__PRIORITY": "7",
        "LLMX_PROVIDERS__MAIN__VERIFY_TLS": "false",
        "LLMX_PLUGINS__ENABLE": '["a", "b"]',
        "LLMX_CONFIG": "ignored.toml",
        "OTHER": "x",
    }
    assert env_overrides(env) == {
        "default_model": "main/gpt-4o",
        "providers": {
            "main": {"base_url": "http://127.0.0.1:1/v1", "priority": 7, "verify_tls": False}
        },
        "plugins": {"enable": ["a", "b"]},
    }
    config = llmx.load_config(
        {"providers": {"main": {"type": "openai", "priority": 1}}}, environ=env
    )
    assert config.providers["main"].priority == 7
    assert config.providers["main"].verify_tls is False
    assert config.default_model == "main/gpt-4o"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"providers": {"main": {"api_key": "x"}}},
            "required field missing @ $.providers.main.type",
        ),
        ({"providers": {"main": {"type": 3}}}, "@ $.providers.main.type"),
        (
            {"providers": {"main": {"type": "openai", "priority": "high"}}},
            "@ $.providers.main.priority",
        ),
        ({"providers": {"main": {"type": "openai", "timeout": -1}}}, "positive"),
        (
            {"providers": {"m": {"type": "openai", "api_key": {"envv": "X"}}}},
            "extra fields found (envv)",
        ),
        ({"plugins": {"enabel": []}}, "extra fields found (enabel) @ $.plugins"),
        ({"aliases": {"smart": []}}, "at least one candidate 'instance/model' @ $.aliases.smart"),
        ({"aliases": {"smart": ["nomodel"]}}, "'instance/model' @ $.aliases.smart"),
        ({"cache": {"backend": 3}}, "@ $.cache.backend"),
        ({"provders": {}}, "extra fields found (provders) @ $"),
        ({"providers": []}, "@ $.providers"),
    ],
)
def test_errors_name_the_path(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(llmx.ConfigError) as info:
        llmx.load_config(data, environ={})
    assert expected in str(info.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "llmx.toml"
    bad.write_text("[providers\n")
    with pytest.raises(llmx.ConfigError, match="not valid TOML"):
        llmx.load_config(bad, environ={})
    with pytest.raises(llmx.ConfigError, match="does not exist"):
        llmx.load_config(tmp_path / "missing.toml", environ={})


toml_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.sampled_from(["openai", "main/gpt", "priority", "env", "file"])
)
keys = st.sampled_from(
    [
        "providers", "aliases", "default_model", "plugins", "cache", "retry", "routing", "type",
        "api_key", "base_url", "priority", "weight", "models", "timeout", "enable", "disable",
        "candidates", "strategy", "env", "file", "main", "strict", "autoload", "headers",
    ]
) | st.text(max_size=6)  # fmt: skip
trees = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, trees, max_size=5))
def test_arbitrary_configs_raise_only_config_error(data: dict[str, Any]) -> None:
    try:
        config = llmx.load_config(data, environ={})
    except llmx.ConfigError as err:
        message = str(err)
    else:
        message = ""
    if message:
        assert "@ $" in message
        return
    # Whatever passed validation is well-typed.
    for p in config.providers.values():
        assert isinstance(p.type, str)
        assert isinstance(p.timeout, float)
        assert p.timeout > 0


# -- secrets -----------------------------------------------------------------------------


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLMX_KEY", SECRET)
    assert llmx.Secret(env="TEST_LLMX_KEY").get() == SECRET
    f = tmp_path / "key.txt"
    f.write_text(SECRET + "\n")
    assert llmx.Secret(file=str(f)).get() == SECRET
    assert llmx.Secret.literal(SECRET).get() == SECRET
    with pytest.raises(ValueError, match="exactly one"):
        llmx.Secret()


def test_missing_secret_names_variable_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_LLMX_MISSING", raising=False)
    config = llmx.load_config(
        {"providers": {"main": {"type": "openai", "api_key": {"env": "TEST_LLMX_MISSING"}}}},
        environ={},
    )
    key = config.providers["main"].api_key
    assert key is not None
    with pytest.raises(llmx.ConfigError) as info:
        key.get()
    assert "TEST_LLMX_MISSING" in str(info.value)
    assert "$.providers.main.api_key" in str(info.value)
    with pytest.raises(llmx.ConfigError, match="cannot read secret file"):
        llmx.Secret(file="/nonexistent/key").get()


def test_secrets_never_shown(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "providers": {
            "main": {
                "type": "openai",
                "api_key": SECRET,
                "headers": {"X-Token": SECRET},
                "extra_token": SECRET,
            }
        }
    }
    config = llmx.load_config(data, environ={})
    secret = config.providers["main"].api_key
    shown = [repr(config), str(config), repr(secret), str(secret), repr(config.providers["main"])]
    shown.append(str(config.describe()))
    logging.getLogger("test").warning("config: %s %r", config, secret)
    print(config, secret)
    out = capsys.readouterr()
    shown += [caplog.text, out.out, out.err]
    for text in shown:
        assert SECRET not in text
    assert "***" in str(config.describe())


def test_secret_not_in_config_errors() -> None:
    data = {"providers": {"main": {"type": "openai", "api_key": SECRET, "priority": SECRET}}}
    with pytest.raises(llmx.ConfigError) as info:
        llmx.load_config(data, environ={})
    assert "priority" in str(info.value)
    # A wrong value elsewhere may be echoed, but never the api_key's value.
    data = {"providers": {"main": {"type": "openai", "api_key": SECRET, "timeout": "slow"}}}
    with pytest.raises(llmx.ConfigError) as info:
        llmx.load_config(data, environ={})
    assert SECRET not in str(info.value)

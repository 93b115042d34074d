"""Configuration: sources, environment overrides, precise errors, and secrets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmx
import llmx._config
from llmx._config import ENV_SECTIONS, ENV_SPECIAL, env_overrides, find_config_file

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
        "breaker", "retry_budget", "limits", "adaptive_concurrency", "cooldown", "ratio",
        "window", "rpm", "max", "min", "initial", "mode", "ttl", "backend", "namespace",
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


# -- misspellings: every unknown key or name is an error with its path ----------------------

STRATEGIES = ["priority", "round_robin", "weighted", "lowest_cost", "lowest_latency", "least_busy"]
INSTANCES = ["main", "backup", "europe"]
positive = st.floats(min_value=0.5, max_value=100, allow_nan=False)


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Configs that llmx.Client() accepts with the flex provider type and the builtins."""
    names = draw(st.lists(st.sampled_from(INSTANCES), min_size=1, max_size=3, unique=True))
    provider_keys = {
        "priority": st.integers(0, 5),
        "timeout": positive,
        "models": st.just({"fast": "m"}),
        "breaker": st.fixed_dictionaries(
            {},
            optional={
                "failure_threshold": st.integers(1, 9),
                "cooldown": positive,
                "enabled": st.booleans(),
            },
        ),
        "limits": st.fixed_dictionaries(
            {"rpm": st.integers(60, 600)},
            optional={"max_wait": positive, "models": st.just({"m": {"tpm": 1000}})},
        ),
        "cache": st.fixed_dictionaries(
            {}, optional={"ttl": positive, "mode": st.sampled_from(["off", "read_write"])}
        ),
        "retry": st.fixed_dictionaries({}, optional={"attempts": st.integers(1, 4)}),
        "adaptive_concurrency": st.just(True)
        | st.fixed_dictionaries({}, optional={"max": st.integers(8, 64), "initial": st.just(4)}),
    }
    providers = {
        n: draw(st.fixed_dictionaries({"type": st.just("flex")}, optional=provider_keys))
        for n in names
    }
    candidates = [f"{n}/m" for n in names]
    alias = st.just(candidates) | st.fixed_dictionaries(
        {"candidates": st.just(candidates)},
        optional={
            "strategy": st.sampled_from(STRATEGIES),
            "fallback": st.just("try_all"),
            "deadline": positive,
            "cache": st.just({"mode": "off"}),
        },
    )
    sections = {
        "aliases": st.fixed_dictionaries({"smart": alias}),
        "plugins": st.fixed_dictionaries({}, optional={"enable": st.just(["flex"])}),
        "routing": st.fixed_dictionaries({}, optional={"strategy": st.sampled_from(STRATEGIES)})
        | st.just({"strategy": "hedged", "base": "priority", "delay": "p95"}),
        "retry": st.fixed_dictionaries(
            {}, optional={"policy": st.just("stamina"), "attempts": st.integers(1, 4)}
        ),
        "cache": st.fixed_dictionaries(
            {"backend": st.just("memory")},
            optional={"ttl": positive, "namespace": st.just("app"), "max_entries": st.just(100)},
        ),
        "limiter": st.just({"backend": "local"}),
        "breaker_store": st.just({"backend": "memory"}),
        "breaker": st.fixed_dictionaries({}, optional={"failure_rate": st.just(0.5)}),
        "retry_budget": st.fixed_dictionaries({}, optional={"ratio": st.just(0.1)}),
        "logging": st.fixed_dictionaries(
            {},
            optional={
                "level": st.sampled_from(["debug", "INFO", "Warning"]),
                "format": st.sampled_from(["text", "json"]),
                "content": st.booleans(),
            },
        ),
        "deadline": positive,
    }
    config = draw(st.fixed_dictionaries({"providers": st.just(providers)}, optional=sections))
    config["default_model"] = draw(
        st.sampled_from(["smart", candidates[0]] if "aliases" in config else [candidates[0]])
    )
    return config


def key_sites(config: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """``(path, table, key)`` for each key of a table with fixed keys."""
    tables: list[tuple[str, Any]] = [("$", config)]
    tables += [(f"$.{k}", v) for k, v in config.items() if k not in ("providers", "aliases")]
    for n, p in config["providers"].items():
        tables.append((f"$.providers.{n}", p))
        tables += [(f"$.providers.{n}.{k}", v) for k, v in p.items() if k != "models"]
        for m, limits in p.get("limits", {}).get("models", {}).items():
            tables.append((f"$.providers.{n}.limits.models.{m}", limits))
    for a, alias in config.get("aliases", {}).items():
        if isinstance(alias, dict):
            tables.append((f"$.aliases.{a}", alias))
            tables += [(f"$.aliases.{a}.{k}", v) for k, v in alias.items() if k == "cache"]
    return [(path, t, k) for path, t in tables if isinstance(t, dict) for k in t]


def name_sites(config: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(path, container, key)`` for each value naming a component, plugin, instance or
    one of a fixed set of choices (a cache mode, a fallback)."""
    sites: list[tuple[str, Any, Any]] = [("$.default_model", config, "default_model")]
    for section, key in [
        ("routing", "strategy"),
        ("routing", "base"),
        ("retry", "policy"),
        ("cache", "backend"),
        ("limiter", "backend"),
        ("breaker_store", "backend"),
    ]:
        if key in config.get(section, {}):
            sites.append((f"$.{section}.{key}", config[section], key))
    for i, _ in enumerate(config.get("plugins", {}).get("enable", [])):
        sites.append((f"$.plugins.enable[{i}]", config["plugins"]["enable"], i))
    for n, p in config["providers"].items():
        sites.append((f"$.providers.{n}.type", p, "type"))
        if "mode" in p.get("cache", {}):
            sites.append((f"$.providers.{n}.cache.mode", p["cache"], "mode"))
    for a, alias in config.get("aliases", {}).items():
        candidates = alias if isinstance(alias, list) else alias["candidates"]
        sites += [(f"$.aliases.{a}", candidates, i) for i in range(len(candidates))]
        if isinstance(alias, dict):
            for key in ("strategy", "fallback"):
                if key in alias:
                    sites.append((f"$.aliases.{a}.{key}", alias, key))
            if "cache" in alias:
                sites.append((f"$.aliases.{a}.cache.mode", alias["cache"], "mode"))
    return sites


def misspelled(word: str) -> st.SearchStrategy[str]:
    """One edit of ``word``: a letter added, dropped, swapped with the next, or replaced."""
    letters = st.sampled_from("abcdefghijklmnopqrstuvwxyz_")
    at = st.integers(0, len(word) - 1)
    return st.one_of(
        st.tuples(st.integers(0, len(word)), letters).map(
            lambda t: word[: t[0]] + t[1] + word[t[0] :]
        ),
        at.map(lambda i: word[:i] + word[i + 1 :]),
        at.filter(lambda i: i + 1 < len(word)).map(
            lambda i: word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        ),
        st.tuples(at, letters).map(lambda t: word[: t[0]] + t[1] + word[t[0] + 1 :]),
    )


def flex_registry() -> llmx.Registry:
    import importlib_metadata

    from core_support import FlexPlugin

    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(FlexPlugin(), name="flex")
    return registry


def every_valid_name(registry: llmx.Registry) -> set[str]:
    """Each key and name some part of a config accepts (a misspelling must be none of them)."""
    import attrs

    from llmx import _config, _settings

    classes: list[Any] = [
        _config.Config, _config.PluginsConfig, _config.ProviderConfig, _config.AliasConfig,
        _config.BreakerConfig, _config.RetryBudgetConfig, _config.AdaptiveConfig,
        _config.LoggingConfig,
        _settings.LimitSettings, _settings.ModelLimitSettings, _settings.CachePolicy,
    ]  # fmt: skip
    names = {"backend", "policy", "strategy", "namespace", "smart", "fast", *INSTANCES}
    names |= {"read_write", "read_only", "refresh", "off", "fail_fast", "try_all"}
    for kind in (
        "provider",
        "cache",
        "retry_policy",
        "routing_strategy",
        "limiter",
        "breaker_store",
    ):
        for reg in registry.registrations(kind):
            names.add(reg.name)
            if reg.settings is not None:
                classes.append(reg.settings)
    names |= {p.name for p in registry.plugins()}
    return names | {f.name for cls in classes for f in attrs.fields(cls)}


@given(valid_configs(), st.data())
def test_a_misspelled_key_or_name_is_an_error_with_its_path(
    config: dict[str, Any], data: st.DataObject
) -> None:
    import copy

    llmx.Client(copy.deepcopy(config), registry=flex_registry())  # the generator's are valid
    registry = flex_registry()
    valid = every_valid_name(registry)
    bad = copy.deepcopy(config)
    sites: list[tuple[str, str, Any, Any]] = [("key", *s) for s in key_sites(bad)]
    sites += [("name", *s) for s in name_sites(bad)]
    kind, path, container, key = data.draw(st.sampled_from(sites), label="site")
    if kind == "key":
        wrong = data.draw(misspelled(key).filter(lambda w: w not in valid), label="key")
        container[wrong] = container.pop(key)
    else:
        value: str = container[key]
        instance, slash, model = value.partition("/")
        wrong = data.draw(misspelled(instance).filter(lambda w: w not in valid), label="name")
        container[key] = wrong + slash + model
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client(bad, registry=registry)
    message = str(info.value)
    assert f"@ {path}" in message
    if "required field missing" not in message:
        assert "did you mean" in message


@given(valid_configs(), st.data())
def test_any_value_anywhere_is_accepted_or_a_config_error(
    config: dict[str, Any], data: st.DataObject
) -> None:
    import copy

    bad = copy.deepcopy(config)
    sites = key_sites(bad)
    _, table, key = data.draw(st.sampled_from(sites), label="site")
    table[key] = data.draw(trees, label="value")
    try:
        llmx.Client(bad, registry=flex_registry())
    except llmx.ConfigError as err:
        message = str(err)
    else:
        return
    assert "@ $" in message


# -- the LLMX_ environment namespace ------------------------------------------------------


@pytest.fixture
def env_warnings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> pytest.LogCaptureFixture:
    """The ``llmx.config`` warnings of this test (the once-per-process memory reset)."""
    monkeypatch.setattr(llmx._config, "_env_warned", set())
    caplog.set_level(logging.WARNING, logger="llmx.config")
    return caplog


def warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmx.config"]


def test_a_plugins_own_llmx_variable_is_not_read_as_config(
    env_warnings: pytest.LogCaptureFixture,
) -> None:
    """The bug: ``LLMX_REDIS_URL`` (made up by a plugin) became the config key
    ``redis_url`` and the error blamed llmx.toml."""
    env = {"LLMX_REDIS_URL": "redis://127.0.0.1:1", "LLMX_DEFAULT_MODEL": "main/m"}

    config = llmx.load_config({"providers": {"main": {"type": "openai"}}}, environ=env)
    llmx.load_config({}, environ=env)

    assert config.default_model == "main/m"
    assert env_overrides(env) == {"default_model": "main/m"}
    (message,) = warned(env_warnings)  # once per process, however often the config loads
    assert message.startswith("environment variable LLMX_REDIS_URL is ignored")
    assert "the plugin's own prefix" in message
    assert "LLMX_<SECTION>__<KEY>" in message
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("LLMX_DEFAULT_MODLE", "LLMX_DEFAULT_MODEL"),
        ("LLMX_PROVIDER__MAIN__BASE_URL", "LLMX_PROVIDERS__MAIN__BASE_URL"),
        ("LLMX_DISABLE_PLUGINS_AUTOLOAD", "LLMX_DISABLE_PLUGIN_AUTOLOAD"),
    ],
)
def test_a_misspelled_llmx_variable_is_ignored_with_the_name_it_resembles(
    env_warnings: pytest.LogCaptureFixture, name: str, meant: str
) -> None:
    config = llmx.load_config({}, environ={name: "x"})

    assert config == llmx.load_config({}, environ={})
    (message,) = warned(env_warnings)
    assert f"environment variable {name} is ignored" in message
    assert f"(did you mean {meant!r}?)" in message


def test_an_llmx_variable_the_config_names_as_a_secret_is_not_warned_about(
    env_warnings: pytest.LogCaptureFixture,
) -> None:
    data = {"providers": {"main": {"type": "openai", "api_key": {"env": "LLMX_OPENAI_KEY"}}}}

    llmx.load_config(data, environ={"LLMX_OPENAI_KEY": SECRET, "LLMX_CONFIG": "x.toml"})

    assert warned(env_warnings) == []


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"LLMX_PROVIDERS__MAIN__BASE_ULR": "http://127.0.0.1:1"},
            "extra fields found (base_ulr) @ $.providers.main; did you mean 'base_url'? "
            "(set by environment variable LLMX_PROVIDERS__MAIN__BASE_ULR)",
        ),
        (
            {"LLMX_PROVIDERS__NEW__BASE_URL": "http://127.0.0.1:1"},
            "required field missing @ $.providers.new.type "
            "(set by environment variable LLMX_PROVIDERS__NEW__BASE_URL)",
        ),
        (
            {"LLMX_DEADLINE": "soon"},
            "@ $.deadline (set by environment variable LLMX_DEADLINE)",
        ),
        (
            {"LLMX_PROVIDERS__MAIN": "3"},
            "@ $.providers.main (set by environment variable LLMX_PROVIDERS__MAIN)",
        ),
    ],
)
def test_an_error_about_a_key_a_variable_set_names_the_variable_not_the_file(
    tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    path = tmp_path / "llmx.toml"
    path.write_text('[providers.main]\ntype = "openai"\n', encoding="utf-8")

    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client(llmx.load_config(path, environ=env))  # the client validates the config

    message = str(info.value)
    assert fragment in message
    assert message.startswith(f"invalid config from LLMX_* environment variables, over {path}:")
    assert f"invalid config in {path}" not in message


def test_file_and_variable_problems_are_each_blamed_on_their_source(tmp_path: Path) -> None:
    path = tmp_path / "llmx.toml"
    path.write_text('[providers.main]\ntype = "openai"\npriority = "high"\n', encoding="utf-8")

    with pytest.raises(llmx.ConfigError) as info:
        llmx.load_config(path, environ={"LLMX_PLUGINS__STRICT": "maybe"})

    first, *lines = str(info.value).splitlines()
    assert first == f"invalid config in {path} and LLMX_* environment variables:"
    (file_line,) = [line for line in lines if "@ $.providers.main.priority" in line]
    assert "environment variable" not in file_line
    (env_line,) = [line for line in lines if "@ $.plugins.strict" in line]
    assert env_line.endswith("(set by environment variable LLMX_PLUGINS__STRICT)")


def test_a_plugin_check_on_a_key_a_variable_set_names_the_variable() -> None:
    """What only the plugins can judge (a component's name) is checked by validate(),
    which names the variable the same way."""
    config = llmx.load_config({}, environ={"LLMX_ROUTING__STRATEGY": "fastest"})
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client(config)  # validates the config against the installed plugins

    message = str(info.value)
    assert message.startswith("invalid config from LLMX_* environment variables:")
    assert "unknown routing strategy 'fastest'" in message
    assert message.endswith("(set by environment variable LLMX_ROUTING__STRATEGY)")


@pytest.mark.parametrize("key", ["env", "source"])
def test_where_the_config_came_from_cannot_be_written_in_it(key: str) -> None:
    with pytest.raises(llmx.ConfigError, match=rf"extra fields found \({key}\) @ \$"):
        llmx.load_config({key: {"LLMX_X": "$.x"}}, environ={})


env_names = st.from_regex(r"LLMX_[A-Z0-9_]{0,30}", fullmatch=True)


@given(st.dictionaries(env_names, st.sampled_from(["1", "x", "true", '["a"]']), max_size=8))
@settings(max_examples=200, deadline=None)
def test_only_the_config_namespace_is_read_from_the_environment(env: dict[str, str]) -> None:
    overrides = env_overrides(env)

    assert set(overrides) <= set(ENV_SECTIONS)
    for name in env:
        first = name[len("LLMX_") :].split("__")[0].lower()
        if name in ENV_SPECIAL or first not in ENV_SECTIONS:
            continue
        # A variable in the namespace lands under its path (unless one above it set a value).
        parts = [p.lower() for p in name[len("LLMX_") :].split("__")]
        if all(parts):
            node: Any = overrides
            for part in parts:
                if not isinstance(node, dict):
                    break
                assert part in node
                node = node[part]


# -- files that cannot be read or parsed (issue 14, defect 10) --------------------------------

UNREADABLE_FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "latin1": (
        b'# caf\xe9 au lait\ndefault_model = "main/x"\n',
        ("is not UTF-8", "byte 0xe9 at line 1, column 6"),
    ),
    "latin1-value": (
        b'[providers.main]\ntype = "openai"\nbase_url = "http://h\xe9/v1"\n',
        ("is not UTF-8", "line 3, column 21"),
    ),
    "deep-arrays": (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", ("64 levels", "line 1, column")),
    "deep-inline-tables": (
        b"a = " + b"{x=" * 5000 + b"1" + b"}" * 5000 + b"\n",
        ("64 levels", "line 1, column"),
    ),
    "deep-dotted-keys": (
        b"[plugins.settings." + b".".join([b"b"] * 5000) + b"]\n",
        ("64 levels", "@ $.plugins.settings.b.b."),
    ),
    "deep-dotted-key-value": (
        b"a." + b".".join([b"b"] * 5000) + b" = 1\n",
        ("64 levels", "@ $.a.b"),
    ),
    "invalid-toml": (b"[providers.main]\ntype = = 1\n", ("not valid TOML", "line 2, column 8")),
    "nul-bytes": (b"\0" * 64, ("not valid TOML", "line 1, column 1")),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE_FILES))
def test_a_file_that_cannot_be_parsed_is_a_config_error_naming_file_and_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    content, fragments = UNREADABLE_FILES[name]
    path = tmp_path / "llmx.toml"
    path.write_bytes(content)
    with pytest.raises(llmx.ConfigError) as info:
        llmx.load_config(path, environ={})
    assert str(path) in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)
    # Found rather than named: the same error.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(llmx.ConfigError) as found:
        llmx.load_config(None, environ={})
    assert str(found.value) == str(info.value).replace(str(path), str(path.resolve()))


def test_a_directory_or_an_endless_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(llmx.ConfigError, match="is a directory"):
        llmx.load_config(tmp_path, environ={})
    with pytest.raises(llmx.ConfigError, match="larger than 10 MB"):
        llmx.load_config("/dev/zero", environ={})


def test_a_deep_mapping_or_variable_is_a_config_error() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["b"] = {}
        node = node["b"]
    with pytest.raises(llmx.ConfigError, match="the config mapping nests"):
        llmx.load_config({"plugins": {"settings": deep}}, environ={})
    value = "[" * 5000 + "]" * 5000
    # Too deep for the TOML parser: read as text, as any value that is not TOML is.
    assert env_overrides({"LLMX_PLUGINS__X": value}) == {"plugins": {"x": value}}
    value = "[" * 100 + "]" * 100
    with pytest.raises(llmx.ConfigError, match="LLMX_\\* environment variables nest"):
        llmx.load_config({}, environ={"LLMX_PLUGINS__SETTINGS__X__Y": value})


TOML_PIECES = st.sampled_from(
    [b"[", b"]", b"{", b"}", b"=", b"a", b".", b'"', b"'", b"#", b"\n", b" ", b"1", b",", b"\xe9"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(TOML_PIECES, max_size=300).map(b"".join),
        st.integers(60, 3000).map(lambda n: b"a = " + b"[" * n + b"]" * n),
    )
)
def test_any_bytes_as_a_config_file_load_or_raise_config_error(content: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "llmx.toml"
        path.write_bytes(content)
        try:
            llmx.load_config(path, environ={})
        except llmx.ConfigError as err:
            assert str(path) in str(err)  # noqa: PT017 - loading may also succeed

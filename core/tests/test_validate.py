"""Whole-config validation (``llmx._validate``): ``llmx.Client()`` and ``llmx config check``
reject every unknown key and name before the first request, with its path and a
"did you mean" hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from test_cli import assert_one_clean_error, run

import llmx
from llmx.plugin import Register, hookimpl

from core_support import FlexPlugin, flex_client

PROVIDER = '[providers.main]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'

# (llmx.toml, fragments the one-line error must contain): each passed `config check` before.
CLI_CASES = [
    pytest.param(
        PROVIDER + '[routing]\nstratgy = "lowest_cost"\n',
        ["extra fields found (stratgy) @ $.routing", "did you mean 'strategy'?"],
        id="routing-key-typo",
    ),
    pytest.param(
        PROVIDER + '[routing]\nstrategy = "lowest_cots"\n',
        ["unknown routing strategy 'lowest_cots'", "@ $.routing.strategy", "'lowest_cost'"],
        id="routing-strategy-typo",
    ),
    pytest.param(
        PROVIDER + '[routing]\nstrategy = "hedged"\nbase = "priorty"\n',
        ["unknown routing strategy 'priorty'", "@ $.routing.base", "did you mean 'priority'?"],
        id="hedged-base-typo",
    ),
    pytest.param(
        PROVIDER + '[aliases]\nsmart = ["mian/gpt-4o"]\n',
        ["unknown provider instance 'mian'", "@ $.aliases.smart", "did you mean 'main'?"],
        id="alias-candidate-instance",
    ),
    pytest.param(
        PROVIDER + '[aliases.smart]\ncandidates = ["main/gpt-4o"]\nstrategy = "round_robbin"\n',
        ["@ $.aliases.smart.strategy", "did you mean 'round_robin'?"],
        id="alias-strategy-typo",
    ),
    pytest.param(
        '[plugins]\nenable = ["opneai"]\n' + PROVIDER,
        ["'opneai'", "@ $.plugins.enable[0]", "did you mean 'openai'?"],
        id="plugins-enable-typo",
    ),
    pytest.param(
        '[plugins]\ndisable = ["anthropik"]\n' + PROVIDER,
        ["'anthropik'", "@ $.plugins.disable[0]", "did you mean 'anthropic'?"],
        id="plugins-disable-typo",
    ),
    pytest.param(
        "[retry]\natempts = 3\n",
        ["extra fields found (atempts) @ $.retry", "did you mean 'attempts'?"],
        id="retry-key-without-providers",
    ),
    pytest.param(
        '[retry]\npolicy = "stamna"\n',
        ["unknown retry policy 'stamna'", "@ $.retry.policy", "did you mean 'stamina'?"],
        id="retry-policy-without-providers",
    ),
    pytest.param(
        PROVIDER + "retry = { atempts = 5 }\n",
        ["extra fields found (atempts) @ $.providers.main.retry", "'attempts'"],
        id="instance-retry-key",
    ),
    pytest.param(
        '[limiter]\nbackend = "locl"\n',
        ["unknown rate limiter 'locl'", "@ $.limiter.backend", "did you mean 'local'?"],
        id="limiter-backend-typo",
    ),
    pytest.param(
        '[breaker_store]\nbackend = "memroy"\n',
        ["unknown breaker store 'memroy'", "@ $.breaker_store.backend", "'memory'"],
        id="breaker-store-backend-typo",
    ),
    pytest.param(
        '[cache]\nbackend = "sqlit"\n',
        ["unknown cache backend 'sqlit'", "@ $.cache.backend", "did you mean 'sqlite'?"],
        id="cache-backend-typo",
    ),
    pytest.param(
        "[breaker]\nfailure_treshold = 3\n",
        ["extra fields found (failure_treshold) @ $.breaker", "'failure_threshold'"],
        id="breaker-key-typo",
    ),
    pytest.param(
        PROVIDER + "api_kye = 'x'\n",
        ["extra fields found (api_kye) @ $.providers.main", "did you mean 'api_key'?"],
        id="provider-key-typo",
    ),
]


@pytest.mark.parametrize(("toml", "fragments"), CLI_CASES)
def test_config_check_rejects_typos(tmp_path: Path, toml: str, fragments: list[str]) -> None:
    (tmp_path / "llmx.toml").write_text(toml)
    result = run(["config", "check"], tmp_path)
    assert_one_clean_error(result, *fragments)
    assert "config OK" not in result.stderr


def test_config_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text(
        PROVIDER + '[routing]\nstrategy = "lowest_cots"\n[aliases]\nsmart = ["mian/gpt-4o"]\n'
    )
    result = run(["config", "check"], tmp_path)
    assert_one_clean_error(result, "@ $.routing.strategy", "@ $.aliases.smart")


def test_config_check_accepts_the_documented_sections(tmp_path: Path) -> None:
    (tmp_path / "llmx.toml").write_text(
        'default_model = "smart"\n'
        + PROVIDER
        + "limits = { rpm = 500, tpm = 200000, max_concurrent = 64, max_wait = 20, "
        + 'models."gpt-4o" = { rpm = 100, tpm = 30000 } }\n'
        + "cache = { ttl = 3600 }\n"
        + "retry = { attempts = 5 }\n"
        + "breaker = { cooldown = 10.0 }\n"
        + "adaptive_concurrency = { max = 16 }\n"
        + "[breaker]\nfailure_threshold = 5\nfailure_rate = 0.5\n"
        + "[retry_budget]\nratio = 0.2\nmin_retries = 10\nwindow = 10.0\n"
        + '[retry]\npolicy = "stamina"\nattempts = 3\n'
        + '[routing]\nstrategy = "hedged"\nbase = "lowest_latency"\ndelay = "p95"\n'
        + '[cache]\nbackend = "memory"\nttl = 86400\nmode = "read_write"\nmax_entries = 100\n'
        + '[limiter]\nbackend = "local"\n[breaker_store]\nbackend = "memory"\n'
        + '[aliases.smart]\ncandidates = ["main/gpt-4o", "openai/gpt-4o-mini"]\n'
        + 'cache = { mode = "off" }\n'
    )
    result = run(["config", "check"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stderr


# -- the Python API: llmx.Client() -------------------------------------------------------------


def flex(**sections: Any) -> dict[str, Any]:
    """A config with one ``flex`` instance ``main`` plus ``sections``."""
    return {"providers": {"main": {"type": "flex"}}, **sections}


API_CASES = [
    pytest.param(
        flex(routing={"stratgy": "lowest_cost"}),
        ["extra fields found (stratgy) @ $.routing", "did you mean 'strategy'?"],
        id="routing-key-typo",
    ),
    pytest.param(
        flex(routing={"strategy": "lowest_cots"}),
        ["@ $.routing.strategy", "did you mean 'lowest_cost'?"],
        id="routing-strategy-typo",
    ),
    pytest.param(
        flex(routing={"strategy": "hedged", "delay": "p95", "bugdet": 0.1}),
        ["extra fields found (bugdet) @ $.routing", "did you mean 'budget'?"],
        id="strategy-settings-typo",
    ),
    pytest.param(
        flex(aliases={"smart": ["mian/m"]}),
        ["unknown provider instance 'mian'", "@ $.aliases.smart", "did you mean 'main'?"],
        id="alias-candidate-instance",
    ),
    pytest.param(
        flex(plugins={"enable": ["flx"]}),
        ["'flx'", "@ $.plugins.enable[0]", "did you mean 'flex'?"],
        id="plugins-enable-typo",
    ),
    pytest.param(
        {"retry": {"atempts": 2}},
        ["extra fields found (atempts) @ $.retry", "did you mean 'attempts'?"],
        id="retry-without-providers",
    ),
    pytest.param(
        flex(default_model="mian/m"),
        ["@ $.default_model", "did you mean 'main'?"],
        id="default-model-instance",
    ),
    pytest.param(
        {"providers": {"main": {"type": "flexx"}}},
        ["unknown provider type 'flexx'", "@ $.providers.main.type", "did you mean 'flex'?"],
        id="provider-type-typo",
    ),
    pytest.param(
        {"providers": {"main": {"type": "flex", "breaker": {"colldown": 1}}}},
        ["extra fields found (colldown) @ $.providers.main.breaker", "'cooldown'"],
        id="instance-breaker-typo",
    ),
    pytest.param(
        {"providers": {"main": {"type": "flex", "adaptive_concurrency": {"mx": 8}}}},
        ["@ $.providers.main.adaptive_concurrency", "did you mean 'max'?"],
        id="adaptive-typo",
    ),
    pytest.param(
        flex(retry_budget={"ratoi": 0.1}),
        ["extra fields found (ratoi) @ $.retry_budget", "did you mean 'ratio'?"],
        id="retry-budget-typo",
    ),
]


@pytest.mark.parametrize(("data", "fragments"), API_CASES)
def test_client_rejects_typos_before_the_first_request(
    data: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(llmx.ConfigError) as info:
        flex_client(FlexPlugin(), data)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


async def test_typed_sections_reach_the_deployment() -> None:
    data = {
        "providers": {
            "main": {
                "type": "flex",
                "max_concurrent": 8,
                "breaker": {"cooldown": 3.0},
                "adaptive_concurrency": {"initial": 4, "decrease_factor": 0.25},
                "limits": {"rpm": 120},
            },
            "other": {"type": "flex", "adaptive_concurrency": True},
        },
        "breaker": {"failure_threshold": 2, "cooldown": 9.0},
        "retry_budget": {"min_retries": 4},
    }
    async with flex_client(FlexPlugin(), data) as client:
        main = client._pool.get("main")
        assert main.breaker.settings.failure_threshold == 2  # from [breaker]
        assert main.breaker.settings.cooldown == 3.0  # the instance's own
        assert main.budget.settings.min_retries == 4
        assert main.limit is not None
        assert (main.limit.settings.initial, main.limit.settings.max) == (4, 8)
        assert main.limit.settings.decrease_factor == 0.25
        assert main.limiter is not None
        assert main.limiter.settings.rpm == 120
        other = client._pool.get("other")
        assert other.breaker.settings.cooldown == 9.0
        assert other.limit is not None
        assert other.limit.settings.max == 1024
        assert other.limiter is None


def test_describe_shows_the_keys_given() -> None:
    config = llmx.load_config(
        {
            "providers": {"main": {"type": "flex", "breaker": {"cooldown": 3}}},
            "breaker": {"failure_threshold": 2},
            "cache": {"backend": "memory", "ttl": 60, "namespace": "app", "max_entries": 5},
        },
        environ={},
    )
    described = config.describe()
    assert described["breaker"] == {"failure_threshold": 2}
    assert described["retry_budget"] == {}
    assert described["providers"]["main"]["breaker"] == {"cooldown": 3.0}
    assert described["providers"]["main"]["adaptive_concurrency"] is False
    assert described["cache"] == {
        "backend": "memory",
        "ttl": 60.0,
        "namespace": "app",
        "max_entries": 5,
    }


@attrs.frozen
class NeedySettings:
    """A strategy setting without a default."""

    target: str


class NeedyStrategyPlugin:
    """Registers routing strategy ``needy``, whose settings must name a ``target``."""

    @hookimpl
    def llmx_register_routing_strategies(self, register: Register) -> None:
        register("needy", lambda settings: None, settings=NeedySettings)


def needy_registry() -> llmx.Registry:
    import importlib_metadata

    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(NeedyStrategyPlugin(), name="needy")
    return registry


def test_a_strategy_outside_routing_needs_settings_it_cannot_get() -> None:
    # Its settings come from [routing] only when it is the [routing] strategy.
    alias = {"smart": {"candidates": ["main/m"], "strategy": "needy"}}
    with pytest.raises(llmx.ConfigError) as info:
        flex_client(FlexPlugin(), flex(aliases=alias), registry=needy_registry())
    assert "required field missing @ $.aliases.smart.strategy" in str(info.value)
    routing = {"strategy": "needy", "target": "x"}
    flex_client(FlexPlugin(), flex(aliases=alias, routing=routing), registry=needy_registry())

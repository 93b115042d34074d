"""Plugin discovery and loading against really installed distributions.

Every test here installs fixture distributions (``tests/fixtures/dists/``) with pip into a
temporary site directory, puts it on ``sys.path`` and lets ``llmx.Registry`` discover them
through the ``llmx`` entry-point group: installed is not loaded, a broken plugin never takes
the others down, and every failure names the plugin, its distribution and version.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import llmx
from llmx.plugin import PluginInfo, hookimpl, hookspec
from tests._support import fixture_modules_imported

FIXTURE_PLUGINS = {
    "broken": "llmx-fixture-broken",
    "collide": "llmx-fixture-collide",
    "echo": "llmx-fixture-echo",
    "events": "llmx-fixture-events",
    "future": "llmx-fixture-future",
    "nocontract": "llmx-fixture-nocontract",
    "old": "llmx-fixture-old",
    "typo": "llmx-fixture-typo",
}
ECHO_CONFIG: dict[str, Any] = {"providers": {"e": {"type": "echo"}}}


@pytest.fixture
def site(clean_site: Path, use_site: Callable[[Path], Path]) -> Path:
    """Every fixture distribution but the ``echo`` twin, on ``sys.path``."""
    return use_site(clean_site)


def statuses(registry: llmx.Registry) -> dict[str, str]:
    """``{plugin name: status}`` for every plugin the registry knows."""
    return {p.name: p.status for p in registry.plugins()}


def info(registry: llmx.Registry, name: str) -> PluginInfo:
    """The registry's record of plugin ``name``."""
    return {p.name: p for p in registry.plugins()}[name]


# -- discovery: installed is not loaded -----------------------------------------------


def test_plugins_lists_every_installed_plugin_without_importing_any(site: Path) -> None:
    registry = llmx.Registry()
    plugins = {p.name: p for p in registry.plugins()}

    for name, dist in FIXTURE_PLUGINS.items():
        assert plugins[name].distribution == dist
        assert plugins[name].version == "1.0.0"
        assert plugins[name].status == "available"
    assert plugins["builtins"].distribution == "llmx"
    assert fixture_modules_imported() == []


def test_a_provider_type_loads_only_the_plugin_named_after_it(site: Path) -> None:
    client = llmx.Client(ECHO_CONFIG)

    found = statuses(client.registry)
    assert found["echo"] == "loaded"
    assert found["builtins"] == "loaded"
    assert {found[n] for n in FIXTURE_PLUGINS if n != "echo"} == {"available"}
    assert fixture_modules_imported() == ["llmx_fixture_echo"]
    assert "llmx_fixture_broken" not in sys.modules


def test_enable_loads_plugins_up_front(site: Path) -> None:
    registry = llmx.Registry(enable=["events", "echo"]).assemble()

    found = statuses(registry)
    assert found["events"] == found["echo"] == "loaded"
    assert found["broken"] == "available"
    assert registry.names("provider") == ["echo"]
    assert {"priority", "reverse"} <= set(registry.names("routing_strategy"))


def test_disable_keeps_a_plugin_from_loading(site: Path) -> None:
    registry = llmx.Registry(disable=["echo"])

    assert info(registry, "echo").status == "disabled"
    with pytest.raises(llmx.PluginLoadError, match=r"\[plugins\] disable") as exc_info:
        registry.load("echo")
    assert exc_info.value.distribution == "llmx-fixture-echo"
    assert "llmx_fixture_echo" not in sys.modules


def test_a_disabled_provider_type_is_reported_as_disabled_not_as_missing(site: Path) -> None:
    """Core bug: ``Registry.get`` on a disabled plugin says "not installed, pip install ...".

    ``_unknown`` only special-cases ``status == "available"``; a ``disabled`` plugin falls
    through to the :class:`PluginNotInstalledError` branch, advising to install a
    distribution that is installed.
    """
    registry = llmx.Registry(disable=["echo"])

    with pytest.raises(llmx.PluginError) as exc_info:
        registry.get("provider", "echo")
    assert not isinstance(exc_info.value, llmx.PluginNotInstalledError)
    assert "[plugins] disable" in str(exc_info.value)
    assert "llmx_fixture_echo" not in sys.modules


def test_builtins_can_be_disabled_like_any_plugin(site: Path) -> None:
    registry = llmx.Registry(disable=["builtins"]).assemble()

    assert info(registry, "builtins").status == "disabled"
    assert registry.names("routing_strategy") == []


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_without_autoload_a_plugin_that_is_not_enabled_does_not_load(
    site: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "environment":
        monkeypatch.setenv("LLMX_DISABLE_PLUGIN_AUTOLOAD", "1")
        registry = llmx.Registry()
    else:
        registry = llmx.Registry(autoload=False)

    with pytest.raises(llmx.PluginLoadError, match=r"add it to \[plugins\] enable") as exc_info:
        registry.get("provider", "echo")
    assert exc_info.value.plugin == "echo"
    assert "llmx_fixture_echo" not in sys.modules


def test_without_autoload_the_client_names_the_config_fix(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMX_DISABLE_PLUGIN_AUTOLOAD", "1")

    with pytest.raises(llmx.ConfigError, match=r"add it to \[plugins\] enable") as exc_info:
        llmx.Client(ECHO_CONFIG)
    assert "$.providers.e.type" in str(exc_info.value)
    assert isinstance(exc_info.value.__cause__, llmx.PluginLoadError)
    assert "llmx_fixture_echo" not in sys.modules


async def test_without_autoload_enabled_plugins_still_load(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMX_DISABLE_PLUGIN_AUTOLOAD", "1")
    config = {**ECHO_CONFIG, "plugins": {"enable": ["echo"]}}

    async with llmx.Client(config) as client:
        reply = await client.complete(model="e/m", prompt="still here")
    assert reply.text == "still here"
    assert statuses(client.registry)["events"] == "available"


# -- failures: named, chained, contained ------------------------------------------------


def test_a_broken_plugin_is_a_load_error_naming_plugin_distribution_and_version(
    site: Path,
) -> None:
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginLoadError) as exc_info:
        registry.load("broken")
    err = exc_info.value
    assert (err.plugin, err.distribution, err.version) == ("broken", "llmx-fixture-broken", "1.0.0")
    assert "'broken'" in str(err)
    assert "llmx-fixture-broken 1.0.0" in str(err)
    assert "RuntimeError: boom" in str(err)
    assert isinstance(err.__cause__, RuntimeError)
    assert str(err.__cause__) == "boom"
    assert info(registry, "broken").status == "failed"
    assert info(registry, "broken").error is err


def test_a_broken_plugin_fails_once_and_takes_nothing_else_down(site: Path) -> None:
    registry = llmx.Registry()
    with pytest.raises(llmx.PluginLoadError):
        registry.load("broken")

    with pytest.raises(llmx.PluginLoadError) as again:
        registry.get("provider", "broken")
    assert "boom" in str(again.value)
    assert registry.get("provider", "echo").distribution == "llmx-fixture-echo"
    assert statuses(registry)["echo"] == "loaded"


async def test_an_enabled_broken_plugin_is_logged_and_the_client_still_works(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {**ECHO_CONFIG, "plugins": {"enable": ["broken"]}}
    caplog.set_level(logging.WARNING, logger="llmx.registry")

    async with llmx.Client(config) as client:
        reply = await client.complete(model="e/m", prompt="hello")

    assert reply.text == "hello"
    assert statuses(client.registry)["broken"] == "failed"
    assert any("llmx-fixture-broken" in r.getMessage() for r in caplog.records)


def test_strict_makes_an_enabled_broken_plugin_raise_at_assemble(site: Path) -> None:
    registry = llmx.Registry(enable=["broken"], strict=True)

    with pytest.raises(llmx.PluginLoadError, match="boom") as exc_info:
        registry.assemble()
    assert isinstance(exc_info.value.__cause__, RuntimeError)


def test_strict_client_reports_the_broken_plugin_not_a_provider_type(site: Path) -> None:
    """Core bug: with ``strict = true`` a broken *enabled* plugin surfaces from
    ``ProviderPool.get`` (which triggers ``assemble``) and is re-raised as a ConfigError
    ``... @ $.providers.e.type``, blaming an instance whose type is fine.
    """
    config = {**ECHO_CONFIG, "plugins": {"enable": ["broken"], "strict": True}}

    with pytest.raises(llmx.PluginLoadError, match="boom"):
        llmx.Client(config)


def test_not_installed_and_failed_to_load_are_different_errors(site: Path) -> None:
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginNotInstalledError, match="pip install") as missing:
        registry.load("nosuch")
    with pytest.raises(llmx.PluginLoadError) as failed:
        registry.load("broken")

    assert not isinstance(missing.value, llmx.PluginLoadError)
    assert not isinstance(failed.value, llmx.PluginNotInstalledError)
    with pytest.raises(llmx.PluginNotInstalledError, match="unknown provider type 'nosuch'"):
        registry.get("provider", "nosuch")


def test_strict_makes_an_enabled_but_missing_plugin_raise(site: Path) -> None:
    with pytest.raises(llmx.PluginNotInstalledError, match="'nosuch'"):
        llmx.Registry(enable=["nosuch"], strict=True).assemble()


def test_a_component_registered_by_two_plugins_is_a_conflict_naming_both(site: Path) -> None:
    registry = llmx.Registry(enable=["echo", "collide"])

    with pytest.raises(llmx.PluginConflictError) as exc_info:
        registry.get("provider", "echo")
    message = str(exc_info.value)
    assert "llmx-fixture-echo 1.0.0" in message
    assert "llmx-fixture-collide 1.0.0" in message
    assert "[plugins] disable" in message


def test_an_entry_point_name_claimed_by_two_distributions_is_a_conflict(
    fixture_site: Path, use_site: Callable[[Path], Path]
) -> None:
    use_site(fixture_site)
    registry = llmx.Registry()

    assert info(registry, "echo").status == "conflict"
    with pytest.raises(llmx.PluginConflictError) as exc_info:
        registry.load("echo")
    message = str(exc_info.value)
    assert "llmx-fixture-echo 1.0.0" in message
    assert "llmx-fixture-echo-twin 1.0.0" in message
    with pytest.raises(llmx.PluginConflictError):
        registry.get("provider", "echo")
    assert "llmx_fixture_echo" not in sys.modules
    assert "llmx_fixture_echo_twin" not in sys.modules


def test_a_misspelled_hook_is_a_load_error(site: Path) -> None:
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginLoadError, match="llmx_register_provider") as exc_info:
        registry.load("typo")
    assert "llmx-fixture-typo 1.0.0" in str(exc_info.value)
    assert info(registry, "typo").status == "failed"
    # The misspelled plugin was unregistered: loading the next plugin is unaffected.
    assert registry.load("echo").status == "loaded"


@pytest.mark.parametrize(
    ("plugin", "advice"),
    [
        ("old", r"upgrade the plugin \(pip install -U llmx-fixture-old\)"),
        ("future", r"upgrade llmx \(pip install -U llmx\)"),
    ],
)
def test_an_incompatible_contract_says_what_to_upgrade(
    site: Path, plugin: str, advice: str
) -> None:
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginIncompatibleError, match=advice) as exc_info:
        registry.load(plugin)
    err = exc_info.value
    assert (err.plugin, err.distribution) == (plugin, FIXTURE_PLUGINS[plugin])
    assert f"{FIXTURE_PLUGINS[plugin]} 1.0.0" in str(err)
    assert info(registry, plugin).status == "incompatible"
    assert registry.names("provider") == []


def test_a_plugin_that_declares_no_contract_loads(site: Path) -> None:
    """``llmx_contract`` is optional until llmx 1.0: Requires-Dist keeps versions compatible."""
    registry = llmx.Registry()

    assert registry.load("nocontract").status == "loaded"
    assert registry.get("provider", "nocontract").distribution == "llmx-fixture-nocontract"


# -- end to end through llmx.Client ---------------------------------------------------------


async def test_client_completes_through_an_installed_provider_plugin(site: Path) -> None:
    async with llmx.Client({"providers": {"e": {"type": "echo"}}}) as client:
        reply = await client.complete(model="e/hi", prompt="hello")

    assert reply.text == "hello"
    assert (reply.provider, reply.model) == ("e", "hi")
    assert [a.provider for a in reply.attempts] == ["e"]


async def test_an_unconfigured_instance_named_after_a_type_works(site: Path) -> None:
    async with llmx.Client({}) as client:
        reply = await client.complete(model="echo/any", prompt="implicit")

    assert (reply.text, reply.provider) == ("implicit", "echo")


async def test_type_specific_settings_reach_the_provider(site: Path) -> None:
    config = {"providers": {"e": {"type": "echo", "prefix": "> "}}}

    async with llmx.Client(config) as client:
        reply = await client.complete(model="e/m", prompt="quoted")

    assert reply.text == "> quoted"


def test_an_unknown_type_specific_key_is_a_config_error_with_its_path(site: Path) -> None:
    config = {"providers": {"e": {"type": "echo", "api_kye": "sk-123"}}}

    with pytest.raises(llmx.ConfigError) as exc_info:
        llmx.Client(config)
    assert "extra fields found (api_kye) @ $.providers.e" in str(exc_info.value)
    assert "sk-123" not in str(exc_info.value)


def test_a_wrongly_typed_type_specific_key_is_a_config_error(site: Path) -> None:
    with pytest.raises(llmx.ConfigError, match=r"\$\.providers\.e\.prefix"):
        llmx.Client({"providers": {"e": {"type": "echo", "prefix": 3}}})


async def test_a_plugin_routing_strategy_orders_an_alias(site: Path) -> None:
    config = {
        "providers": {"a": {"type": "echo"}, "b": {"type": "echo", "prefix": "b:"}},
        "aliases": {"both": {"candidates": ["a/x", "b/y"], "strategy": "reverse"}},
    }

    async with llmx.Client(config) as client:
        reply = await client.complete(model="both", prompt="hi")

    assert (reply.provider, reply.model, reply.text) == ("b", "y", "b:hi")


async def test_event_hooks_of_an_enabled_plugin_see_one_request(site: Path) -> None:
    config = {**ECHO_CONFIG, "plugins": {"enable": ["events"]}}

    async with llmx.Client(config) as client:
        await client.complete(model="e/hi", prompt="hello")
        with pytest.raises(llmx.ConfigError):
            await client.complete(model="no-such-alias", prompt="hello")

    events = sys.modules["llmx_fixture_events"].EVENTS
    kinds = [kind for kind, _ in events]
    assert kinds == [
        "request_start",
        "attempt_end",
        "request_end",
        "request_start",
        "request_error",
    ]
    first = {e.request_id for _, e in events[:3]}
    assert len(first) == 1
    assert first != {""}
    start, attempt, end = (e for _, e in events[:3])
    assert start.request.model == "e/hi"
    assert (attempt.provider, attempt.model, attempt.attempt, attempt.error) == ("e", "hi", 1, None)
    assert end.response.text == "hello"
    assert events[3][1].request_id == events[4][1].request_id != start.request_id
    assert isinstance(events[4][1].error, llmx.ConfigError)


# -- framework authors: their own hook specs ------------------------------------------------


class GuardrailSpecs:
    """A framework's own hook specs (as a framework would ship in a module)."""

    @hookspec(firstresult=True)
    def myfw_check_prompt(self, prompt: str) -> str | None:  # type: ignore[empty-body]
        """Return a reason to refuse ``prompt``, or None; the first non-None result wins."""


class NoSecrets:
    """An in-process plugin implementing the framework's hook."""

    @hookimpl
    def myfw_check_prompt(self, prompt: str) -> str | None:
        """Refuse prompts that look like they contain a key."""
        return "contains a key" if "sk-" in prompt else None


def test_add_hookspecs_lets_a_framework_call_its_own_hooks(site: Path) -> None:
    registry = llmx.Registry()
    registry.add_hookspecs(GuardrailSpecs)
    registry.register(NoSecrets(), name="nosecrets")

    assert registry.hook.myfw_check_prompt(prompt="my key is sk-123") == "contains a key"
    assert registry.hook.myfw_check_prompt(prompt="hello") is None
    assert info(registry, "nosecrets").status == "loaded"
    assert registry.load("echo").status == "loaded"  # installed plugins load alongside


def test_a_framework_hook_without_its_spec_is_rejected(site: Path) -> None:
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginLoadError, match="myfw_check_prompt"):
        registry.register(NoSecrets(), name="nosecrets")


def test_an_in_process_plugin_cannot_take_an_installed_plugins_name(site: Path) -> None:
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginConflictError, match="'echo'"):
        registry.register(NoSecrets(), name="echo")

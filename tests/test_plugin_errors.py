"""Which entry point a component name autoloads, and what an unknown name's error says,
against really installed distributions (``tests/fixtures/dists/``).

Every kind autoloads the same way: ``type``, ``backend``, ``policy`` and ``strategy =
NAME`` import the plugin whose entry point is named ``NAME``, without ``[plugins]
enable``; one distribution (``llmx-fixture-kinds``) declares one entry point per kind.
An unknown name's error lists what the installed plugins really provide (not only what
happens to be loaded), suggests the close name, and never changes the registry in use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import llmx
from tests._support import fixture_modules_imported

KINDS_ENTRY_POINTS = {
    "fscache": "cache",
    "jitter": "retry",
    "shuffle": "routing",
    "slots": "limiter",
    "shelf": "store",
}
TWO: dict[str, Any] = {
    "providers": {"a": {"type": "echo"}, "b": {"type": "echo", "prefix": "b:"}},
}


@pytest.fixture
def site(clean_site: Path, use_site: Callable[[Path], Path]) -> Path:
    """Every fixture distribution but the ``echo`` twin, on ``sys.path``."""
    return use_site(clean_site)


def used() -> list[str]:
    """What the ``llmx-fixture-kinds`` components recorded."""
    return list(sys.modules["llmx_fixture_kinds"].USED)


def statuses(registry: llmx.Registry) -> dict[str, str]:
    """``{plugin name: status}``."""
    return {p.name: p.status for p in registry.plugins()}


# -- one distribution, several entry points, every kind autoloads by name ----------------


def test_one_distribution_declares_several_entry_points_and_none_is_imported(
    site: Path,
) -> None:
    plugins = {p.name: p for p in llmx.Registry().plugins()}

    for name in KINDS_ENTRY_POINTS:
        assert (plugins[name].distribution, plugins[name].status) == (
            "llmx-fixture-kinds",
            "available",
        )
    assert fixture_modules_imported() == []


@pytest.mark.parametrize(
    ("section", "module", "marker"),
    [
        ({"cache": {"backend": "fscache"}}, "cache", "cache.set"),
        ({"retry": {"policy": "jitter"}}, "retry", "retry.built"),
        ({"routing": {"strategy": "shuffle"}}, "routing", "routing.order"),
        (
            {"aliases": {"both": {"candidates": ["a/x", "b/y"], "strategy": "shuffle"}}},
            "routing",
            "routing.order",
        ),
        ({"limiter": {"backend": "slots"}}, "limiter", "limiter.acquire"),
        ({"breaker_store": {"backend": "shelf"}}, "store", "store.get"),
    ],
    ids=["cache", "retry", "routing", "alias-strategy", "limiter", "breaker_store"],
)
async def test_every_kind_autoloads_the_entry_point_named_in_the_config_without_enable(
    site: Path, section: dict[str, Any], module: str, marker: str
) -> None:
    config: dict[str, Any] = {
        "providers": {
            "a": {"type": "echo", "limits": {"rpm": 600}},
            "b": {"type": "echo", "prefix": "b:"},
        },
        "aliases": {"both": {"candidates": ["a/x", "b/y"]}},
        **section,
    }
    assert "plugins" not in config

    async with llmx.Client(config) as client:
        reply = await client.complete(model="both", prompt="hi")

    assert marker in used()
    assert fixture_modules_imported() == [
        "llmx_fixture_echo",
        "llmx_fixture_kinds",
        f"llmx_fixture_kinds.{module}",
    ]
    if module == "routing":
        assert reply.provider == "b"  # last candidate first
    loaded = [n for n, s in statuses(client.registry).items() if s == "loaded"]
    assert sorted(loaded) == sorted(
        ["builtins", "echo", next(k for k, v in KINDS_ENTRY_POINTS.items() if v == module)]
    )


# -- an unknown name: what is really available ----------------------------------------


def test_an_unknown_provider_type_lists_the_installed_ones_not_none(site: Path) -> None:
    """The bug: "available provider types: none" while ``echo`` is installed (only the
    loaded plugins were listed, and nothing is loaded before the first lookup)."""
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        registry.get("provider", "ecko")

    message = str(exc_info.value)
    assert "available: none" not in message
    assert "did you mean 'echo'?" in message
    assert "'echo' (llmx-fixture-echo)" in message
    # What the other installed plugins provide is not known: they are not imported to
    # find out (an installed plugin the config does not enable runs no code).
    assert "not imported to see what they provide" in message
    # Nothing was imported: the registry in use is unchanged.
    assert {statuses(registry)[n] for n in ("echo", "nocontract", "events", "broken")} == {
        "available"
    }
    assert registry.names("provider") == []


def test_the_client_error_names_the_installed_types_and_the_key(site: Path) -> None:
    with pytest.raises(llmx.ConfigError) as exc_info:
        llmx.Client({"providers": {"x": {"type": "ecko"}}})

    message = str(exc_info.value)
    assert "unknown provider type 'ecko' (did you mean 'echo'?)" in message
    assert "'echo' (llmx-fixture-echo)" in message
    assert "@ $.providers.x.type" in message
    assert message.count("did you mean") == 1


def test_a_component_registered_under_another_entry_point_name_is_not_found_by_importing(
    site: Path,
) -> None:
    """``reverse`` comes from the plugin ``echo``: naming it loads nothing (its entry point
    has another name), and finding out which installed plugin offers it would mean
    importing them all, which an unknown name must never do: the error says where to
    look (``llmx plugins --load``), and enabling ``echo`` gives the strategy."""
    registry = llmx.Registry()

    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        registry.get("routing_strategy", "reverse")

    assert "`llmx plugins --load` shows it" in str(exc_info.value)
    assert fixture_modules_imported() == []
    assert statuses(registry)["echo"] == "available"
    enabled = llmx.Registry(enable=["echo"])
    assert enabled.get("routing_strategy", "reverse").plugin == "echo"


def test_without_autoload_the_installed_plugins_are_named_but_not_imported(
    site: Path,
) -> None:
    registry = llmx.Registry(autoload=False)

    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        registry.get("cache", "fscach")

    message = str(exc_info.value)
    assert "installed but not enabled (autoload is off" in message
    assert "fscache" in message
    assert "(did you mean 'fscache'?)" in message
    assert fixture_modules_imported() == []


@pytest.mark.parametrize(
    ("kind", "name", "close", "plural"),
    [
        ("cache", "fscahce", "fscache", "cache backends"),
        ("retry_policy", "jiter", "jitter", "retry policies"),
        ("routing_strategy", "shufle", "shuffle", "routing strategies"),
        ("limiter", "slot", "slots", "rate limiters"),
        ("breaker_store", "shelve", "shelf", "breaker stores"),
    ],
)
def test_every_kind_suggests_the_installed_name_and_never_a_provider_package(
    site: Path, kind: str, name: str, close: str, plural: str
) -> None:
    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        llmx.Registry().get(kind, name)

    message = str(exc_info.value)
    assert f"did you mean {close!r}?" in message
    assert f"{plural} available:" in message
    assert f"{close!r} (llmx-fixture-kinds)" in message
    assert "llmx-provider-" not in message
    assert "policys" not in message
    assert "strategys" not in message
    assert f"entry point named {name!r} in the 'llmx' group" in message

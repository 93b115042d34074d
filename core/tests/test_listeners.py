"""Listeners (``llmx_register_listeners``, ``[plugins.NAME]`` settings) and the
``llmx_request_cancelled`` event (contract 1.2)."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx.plugin import RequestCancelled, RequestEnd, hookimpl
from llmx.testing import ScriptedProvider, scripted_plugin


@attrs.frozen
class CountSettings:
    label: str = "requests"
    step: int = 1


class Counting:
    """A listener built from CountSettings: counts ended and cancelled requests."""

    def __init__(self, settings: CountSettings) -> None:
        self.settings = settings
        self.counts: dict[str, int] = {}
        self.cancelled: list[RequestCancelled] = []

    @hookimpl
    def llmx_request_end(self, event: RequestEnd) -> None:
        key = self.settings.label
        self.counts[key] = self.counts.get(key, 0) + self.settings.step

    @hookimpl
    def llmx_request_cancelled(self, event: RequestCancelled) -> None:
        self.cancelled.append(event)


class CountingPlugin:
    """A plugin registering the listener ``counting``."""

    llmx_contract = "1.2"

    def __init__(self, factory: Any = Counting, settings: type | None = CountSettings) -> None:
        self.factory = factory
        self.settings = settings
        self.built = 0

    def build(self, *args: Any) -> Any:
        self.built += 1
        return self.factory(*args)

    @hookimpl
    def llmx_register_listeners(self, register: Any) -> None:
        register("counting", self.build, settings=self.settings)


def registry_with(plugin: object, script: Any = ()) -> llmx.Registry:
    registry = llmx.Registry(autoload=False)
    registry.register(plugin, name="counting-plugin")
    registry.register(scripted_plugin(script), name="scripted")
    return registry


CONFIG: dict[str, Any] = {"providers": {"scripted": {"type": "scripted"}}}


async def test_a_listener_is_built_from_its_table_and_receives_events() -> None:
    plugin = CountingPlugin()
    registry = registry_with(plugin, ["a", "b"])
    config = {**CONFIG, "plugins": {"counting": {"label": "answers", "step": 2}}}
    async with llmx.Client(config, registry=registry) as client:
        await client.complete(model="scripted/m", prompt="Hi")
        await client.complete(model="scripted/m", prompt="Hi")
    listener = registry.listeners["counting"]
    assert isinstance(listener, Counting)
    assert listener.settings == CountSettings("answers", 2)
    assert listener.counts == {"answers": 4}
    # a second client on the same registry and settings shares the listener
    async with llmx.Client(config, registry=registry) as client:
        await client.complete(model="scripted/m", prompt="Hi")
    assert plugin.built == 1
    assert listener.counts == {"answers": 6}


def test_no_table_gives_the_defaults() -> None:
    registry = registry_with(CountingPlugin())
    llmx.Client(CONFIG, registry=registry)
    listener = registry.listeners["counting"]
    assert isinstance(listener, Counting)
    assert listener.settings == CountSettings()


def test_other_settings_on_a_shared_registry_are_refused() -> None:
    registry = registry_with(CountingPlugin())
    llmx.Client(CONFIG, registry=registry)
    config = {**CONFIG, "plugins": {"counting": {"step": 3}}}
    with pytest.raises(llmx.ConfigError, match="already started by this registry"):
        llmx.Client(config, registry=registry)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"stp": 3}, "extra fields found (stp) @ $.plugins.counting; did you mean 'step'?"),
        ({"step": "x"}, "@ $.plugins.counting.step"),
    ],
)
def test_bad_settings_name_their_key(table: dict[str, Any], expected: str) -> None:
    config = {**CONFIG, "plugins": {"counting": table}}
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client(config, registry=registry_with(CountingPlugin()))
    assert expected in str(info.value)


def test_a_table_no_listener_reads_is_an_error() -> None:
    config = {**CONFIG, "plugins": {"countnig": {"step": 3}}}
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client(config, registry=registry_with(CountingPlugin()))
    assert "@ $.plugins.countnig" in str(info.value)
    assert "did you mean 'counting'" in str(info.value)


def test_plugins_tables_are_kept_apart_from_its_keys() -> None:
    config = llmx.Config.from_dict(
        {"plugins": {"enable": ["x"], "x": {"port": 1}, "settings": {"y": {"a": 2}}}}
    )
    assert config.plugins.enable == ("x",)
    assert config.plugins.settings == {"x": {"port": 1}, "y": {"a": 2}}
    assert config.describe()["plugins"]["x"] == {"port": 1}
    with pytest.raises(llmx.ConfigError, match=r"@ \$\.plugins\.settings\.x"):
        llmx.Config.from_dict({"plugins": {"settings": {"x": 1}}})


def test_a_listener_with_registration_hooks_is_refused() -> None:
    class Sneaky(Counting):
        @hookimpl
        def llmx_register_caches(self, register: Any) -> None:
            pass

    registry = registry_with(CountingPlugin(Sneaky))
    with pytest.raises(llmx.PluginLoadError, match="event hooks only"):
        llmx.Client(CONFIG, registry=registry)


class Slow(ScriptedProvider):
    """Answers after a long time, so that the request can be cancelled."""

    async def complete(self, request: llmx.Request) -> llmx.Response:
        await asyncio.sleep(30)
        return await super().complete(request)


async def test_cancelled_request_and_closed_stream_are_events() -> None:
    registry = llmx.Registry(autoload=False)
    plugin = CountingPlugin()
    registry.register(plugin, name="counting-plugin")
    registry.register(scripted_plugin(Slow(["x"])), name="scripted")
    async with llmx.Client(CONFIG, registry=registry) as client:
        task = asyncio.create_task(client.complete(model="scripted/m", prompt="Hi"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        listener = registry.listeners["counting"]
        assert isinstance(listener, Counting)
        assert [e.reason for e in listener.cancelled] == ["cancelled"]

        async with client.stream(model="scripted/m", prompt="one two three four") as stream:
            async for _ in stream:
                break  # the caller stops reading: the stream closes early
    assert [e.reason for e in listener.cancelled] == ["cancelled", "closed"]
    assert listener.counts == {}
    assert listener.cancelled[0].request_id != listener.cancelled[1].request_id


_NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True).filter(
    lambda n: n not in {f.name for f in attrs.fields(llmx.Config.from_dict({}).plugins.__class__)}
)
_VALUES = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.floats(allow_nan=False))


@given(
    tables=st.dictionaries(_NAMES, st.dictionaries(_NAMES, _VALUES, max_size=3), max_size=4),
    enable=st.lists(_NAMES, max_size=3),
)
def test_plugin_tables_round_trip(tables: dict[str, dict[str, Any]], enable: list[str]) -> None:
    """Whatever the tables are called, they land in ``settings`` unchanged and the
    section's own keys keep their meaning."""
    config = llmx.Config.from_dict({"plugins": {"enable": enable, "strict": True, **tables}})
    assert config.plugins.settings == tables
    assert config.plugins.enable == tuple(enable)
    assert config.plugins.strict is True


def test_an_environment_variable_sets_a_listener_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMX_PLUGINS__COUNTING__STEP", "5")
    registry = registry_with(CountingPlugin())
    llmx.Client(llmx.load_config(CONFIG), registry=registry)
    listener = registry.listeners["counting"]
    assert isinstance(listener, Counting)
    assert listener.settings.step == 5
    monkeypatch.setenv("LLMX_PLUGINS__COUNTING__STEP", "many")
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client(llmx.load_config(CONFIG), registry=registry_with(CountingPlugin()))
    assert "LLMX_PLUGINS__COUNTING__STEP" in str(info.value)


def test_a_first_party_listener_not_installed_names_its_distribution() -> None:
    registry = llmx.Registry(entry_points=[])
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client({"plugins": {"prometheus": {"port": 9464}}}, registry=registry)
    assert "pip install llmx-prometheus" in str(info.value)
    assert "@ $.plugins.prometheus" in str(info.value)

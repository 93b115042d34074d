"""The registry with in-process plugins (installed distributions: tests/test_discovery.py)."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator

import attrs
import importlib_metadata
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmx
from llmx._registry import Registration, parse_contract
from llmx.plugin import Register, hookimpl, hookspec


def entry_point(name: str, module: str) -> importlib_metadata.EntryPoint:
    """An entry point of group llmx (no distribution: as if from a bare path)."""
    return importlib_metadata.EntryPoint(name=name, value=module, group="llmx")


@pytest.fixture
def modules() -> Iterator[dict[str, types.ModuleType]]:
    """Register throwaway plugin modules in sys.modules, removed afterwards."""
    made: dict[str, types.ModuleType] = {}
    yield made
    for name in made:
        sys.modules.pop(name, None)


def make_module(made: dict[str, types.ModuleType], name: str, source: str) -> None:
    module = types.ModuleType(name)
    exec(source, module.__dict__)
    sys.modules[name] = module
    made[name] = module


GOOD = """
import llmx.plugin
llmx_contract = "1.0"
class P:
    def __init__(self, ctx): self.ctx = ctx
    async def complete(self, request):
        return llmx.Response("ok", request.model, self.ctx.instance)
@llmx.plugin.hookimpl
def llmx_register_providers(register):
    register("good", P)
"""


def test_parse_contract() -> None:
    assert parse_contract("1.0") == (1, 0)
    assert parse_contract("12.3") == (12, 3)
    for bad in ("1", "1.x", "v1.0", 1.0, None, "1.0.0"):
        assert parse_contract(bad) is None


def test_discovery_imports_nothing(modules: dict[str, types.ModuleType]) -> None:
    reg = llmx.Registry(entry_points=[entry_point("good", "tests_never_imported_module")])
    assert [p.name for p in reg.plugins()] == ["good"]
    assert reg.plugins()[0].status == "available"
    assert "tests_never_imported_module" not in sys.modules


def test_lazy_load_by_component_name(modules: dict[str, types.ModuleType]) -> None:
    make_module(modules, "t_good", GOOD)
    reg = llmx.Registry(
        entry_points=[entry_point("good", "t_good"), entry_point("other", "t_missing")]
    )
    assert reg.get("provider", "good").plugin == "good"
    statuses = {p.name: p.status for p in reg.plugins()}
    assert statuses == {"good": "loaded", "other": "available"}


def test_missing_module_is_load_error_not_not_installed(
    modules: dict[str, types.ModuleType],
) -> None:
    reg = llmx.Registry(entry_points=[entry_point("gone", "t_module_that_does_not_exist")])
    with pytest.raises(llmx.PluginLoadError, match="failed to load: ModuleNotFoundError") as info:
        reg.get("provider", "gone")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    with pytest.raises(llmx.PluginNotInstalledError):
        reg.load("never-installed")


def test_registration_hook_crash_is_contained(modules: dict[str, types.ModuleType]) -> None:
    make_module(
        modules,
        "t_crash",
        "import llmx.plugin\nllmx_contract='1.0'\n@llmx.plugin.hookimpl\ndef llmx_register_providers(register):\n"
        "    register('half', object)\n    raise ValueError('bad registration')\n",
    )
    make_module(modules, "t_good", GOOD)
    reg = llmx.Registry(
        entry_points=[entry_point("crash", "t_crash"), entry_point("good", "t_good")]
    )
    with pytest.raises(llmx.PluginLoadError, match="failed while registering: ValueError"):
        reg.load("crash")
    # Nothing of the crashed plugin was kept, and the others still work.
    assert "half" not in reg.names("provider")
    assert reg.get("provider", "good").name == "good"
    assert not reg.plugin_manager.is_registered(modules["t_crash"])


def test_register_validates_arguments() -> None:
    class Bad:
        llmx_contract = "1.0"

        @hookimpl
        def llmx_register_providers(self, register: Register) -> None:
            register("x", "not callable")

    reg = llmx.Registry(entry_points=[])
    with pytest.raises(llmx.PluginLoadError, match="not callable"):
        reg.register(Bad(), name="bad")

    class BadSettings:
        llmx_contract = "1.0"

        @hookimpl
        def llmx_register_providers(self, register: Register) -> None:
            register("x", object, settings=dict)

    with pytest.raises(llmx.PluginLoadError, match="attrs class"):
        reg.register(BadSettings(), name="bad2")


def test_component_conflict_names_both() -> None:
    def plugin(dist: str) -> object:
        class P:
            llmx_contract = "1.0"

            @hookimpl
            def llmx_register_providers(self, register: Register) -> None:
                register("same", object)

        return P()

    reg = llmx.Registry(entry_points=[])
    reg.register(plugin("one"), name="one", distribution="dist-one")
    with pytest.raises(llmx.PluginConflictError) as refused:
        reg.register(plugin("two"), name="two", distribution="dist-two")
    with pytest.raises(llmx.PluginConflictError) as info:
        reg.get("provider", "same")
    assert "dist-one" in str(info.value)
    assert "dist-two" in str(info.value)
    assert str(refused.value) == str(info.value)
    statuses = {p.name: p.status for p in reg.plugins()}
    assert statuses == {"one": "loaded", "two": "conflict"}  # never both loaded


def test_misspelled_hook_is_caught() -> None:
    class Typo:
        llmx_contract = "1.0"

        @hookimpl
        def llmx_register_provider(self, register: Register) -> None:  # missing "s"
            register("x", object)

    reg = llmx.Registry(entry_points=[])
    with pytest.raises(llmx.PluginLoadError, match="llmx_register_provider"):
        reg.register(Typo(), name="typo")


@pytest.mark.parametrize(
    ("declared", "advice"),
    [
        ("0.5", "upgrade the plugin"),
        ("1.9", "upgrade llmx"),
        ("2.0", "upgrade llmx"),
        ("one", "unreadable"),
    ],
)
def test_contract_versions(declared: str, advice: str) -> None:
    class P:
        llmx_contract = declared

    reg = llmx.Registry(entry_points=[])
    with pytest.raises(llmx.PluginIncompatibleError, match=advice):
        reg.register(P(), name="p", distribution="llmx-provider-p")


def test_same_module_under_two_entry_points(modules: dict[str, types.ModuleType]) -> None:
    make_module(
        modules,
        "t_two",
        "import llmx.plugin\nllmx_contract='1.0'\n@llmx.plugin.hookimpl\ndef llmx_register_providers(register):\n"
        "    register('one', object)\n    register('two', object)\n",
    )
    reg = llmx.Registry(entry_points=[entry_point("one", "t_two"), entry_point("two", "t_two")])
    assert reg.get("provider", "one").plugin == "one"
    assert reg.get("provider", "two").plugin == "one"  # registered once, by the first name
    assert {p.name: p.status for p in reg.plugins()} == {"one": "loaded", "two": "available"}
    reg.load("two")
    assert reg.plugins()[1].contributes == [("provider", "one"), ("provider", "two")]


def test_autoload_off_requires_enable(
    modules: dict[str, types.ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_module(modules, "t_good", GOOD)
    monkeypatch.setenv("LLMX_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = llmx.Registry(entry_points=[entry_point("good", "t_good")])
    with pytest.raises(llmx.PluginLoadError, match=r"add it to \[plugins\] enable"):
        reg.get("provider", "good")
    reg2 = llmx.Registry(entry_points=[entry_point("good", "t_good")], enable=["good"])
    assert reg2.get("provider", "good").name == "good"


def test_disable(modules: dict[str, types.ModuleType]) -> None:
    make_module(modules, "t_good", GOOD)
    reg = llmx.Registry(entry_points=[entry_point("good", "t_good")], disable=["good"])
    assert reg.plugins()[0].status == "disabled"
    with pytest.raises(llmx.PluginLoadError, match="disabled"):
        reg.load("good")


def test_strict_enable_of_broken_plugin_raises(modules: dict[str, types.ModuleType]) -> None:
    eps = [entry_point("gone", "t_missing_module_x")]
    llmx.Registry(entry_points=eps, enable=["gone"]).assemble()  # reported, not raised
    with pytest.raises(llmx.PluginLoadError):
        llmx.Registry(entry_points=eps, enable=["gone"], strict=True).assemble()


def test_framework_hookspecs() -> None:
    class Specs:
        @hookspec(firstresult=True)
        def myframework_transform(self, text: str) -> str | None:
            """Transform a prompt."""

    class Impl:
        @hookimpl
        def myframework_transform(self, text: str) -> str:
            return text.upper()

    reg = llmx.Registry(entry_points=[])
    reg.add_hookspecs(Specs)
    reg.register(Impl(), name="upper")
    assert reg.hook.myframework_transform(text="hi") == "HI"


def test_event_flags_follow_registrations() -> None:
    reg = llmx.Registry(entry_points=[])
    assert reg.events.any is False
    assert reg.events.start is None

    @attrs.define(eq=False)  # hashable, as pluggy needs its plugins to be
    class Listener:
        seen: list[object] = attrs.field(factory=list)

        @hookimpl
        def llmx_request_end(self, event: object) -> None:
            self.seen.append(event)

    reg.register(Listener(), name="listener")
    assert reg.events.any is True
    assert reg.events.end is not None
    assert reg.events.start is None


def test_event_hooks_called_in_pluggy_order_with_or_without_the_event() -> None:
    calls: list[str] = []

    class First:
        @hookimpl
        def llmx_request_end(self, event: object) -> None:
            calls.append(f"first:{event}")

    class Second:
        @hookimpl
        def llmx_request_end(self) -> None:  # a subset of the spec's arguments
            calls.append("second")

    class Wrapper:
        @hookimpl(wrapper=True)
        def llmx_request_end(self, event: object) -> object:
            calls.append("wrapper-before")
            result = yield
            calls.append("wrapper-after")
            return result

    reg = llmx.Registry(entry_points=[])
    reg.register(First(), name="first")
    reg.register(Second(), name="second")
    reg.events.end(event="e")
    assert calls == ["second", "first:e"]  # last registered first, as pluggy calls them
    calls.clear()
    reg.register(Wrapper(), name="wrapper")  # wrappers go through pluggy itself
    reg.events.end(event="e")
    assert calls == ["wrapper-before", "second", "first:e", "wrapper-after"]


def test_a_plugin_that_declares_no_contract_loads(modules: dict[str, types.ModuleType]) -> None:
    make_module(modules, "t_plain", GOOD.replace('llmx_contract = "1.0"\n', ""))
    reg = llmx.Registry(entry_points=[entry_point("good", "t_plain")])

    assert reg.get("provider", "good").plugin == "good"
    assert reg.plugins()[0].status == "loaded"


def test_an_unhashable_plugin_is_refused_with_the_fix() -> None:
    @attrs.define  # eq=True: attrs sets __hash__ to None
    class Unhashable:
        @hookimpl
        def llmx_register_providers(self, register: Register) -> None:
            register("x", object)

    reg = llmx.Registry(entry_points=[])
    with pytest.raises(llmx.PluginLoadError, match=r"cannot be hashed.*eq=False") as info:
        reg.register(Unhashable(), name="unhashable", distribution="llmx-unhashable")
    assert (info.value.plugin, info.value.distribution) == ("unhashable", "llmx-unhashable")
    assert "unhashable" in {p.name for p in reg.plugins() if p.status == "failed"}


def test_registration_hooks_run_through_pluggy_once_per_plugin() -> None:
    calls: list[tuple[str, list[str]]] = []

    def before(hook_name: str, impls: list[pluggy.HookImpl], kwargs: object) -> None:
        calls.append((hook_name, [impl.plugin_name for impl in impls]))

    def plugin(provides: str) -> object:
        class P:
            @hookimpl
            def llmx_register_providers(self, register: Register) -> None:
                register(provides, object)

        return P()

    reg = llmx.Registry(entry_points=[])
    reg.plugin_manager.add_hookcall_monitoring(before, lambda *args: None)
    reg.register(plugin("p1"), name="one")
    reg.register(plugin("p2"), name="two")

    # Each plugin's own implementation, seen by pluggy's monitoring; never the other's.
    providers = [c for c in calls if c[0] == "llmx_register_providers"]
    assert providers == [("llmx_register_providers", ["one"]), ("llmx_register_providers", ["two"])]
    assert reg.names("provider") == ["p1", "p2"]


# -- building components: Registration.build -------------------------------------------


@attrs.frozen
class Knobs:
    level: int = 1


class Limiter:
    """A complete llmx.RateLimiter; remembers what it was built with."""

    def __init__(self, *args: object) -> None:
        self.args = args

    async def acquire(self, grant: str, buckets: object) -> float:
        return 0.0

    async def release(self, grant: str, buckets: object) -> None:
        return None


def registration(factory: object, settings: type | None = None) -> Registration:
    class P:
        @hookimpl
        def llmx_register_limiters(self, register: Register) -> None:
            register("lim", factory, settings=settings)

    reg = llmx.Registry(entry_points=[])
    reg.register(P(), name="limits", distribution="llmx-limits")
    return reg.get("limiter", "lim")


def test_build_calls_the_factory_without_arguments_when_no_settings_class_was_registered() -> None:
    assert registration(Limiter).build().args == ()
    assert registration(Limiter, Knobs).build(Knobs(3)).args == (Knobs(3),)


def test_build_names_the_plugin_when_its_factory_raises() -> None:
    def factory() -> Limiter:
        raise OSError("no socket")

    with pytest.raises(llmx.PluginError, match=r"'lim' .*failed to start: OSError") as info:
        registration(factory).build()
    assert (info.value.plugin, info.value.distribution) == ("limits", "llmx-limits")
    assert isinstance(info.value.__cause__, OSError)


def test_build_refuses_a_component_missing_what_its_protocol_requires() -> None:
    class Half:
        async def acquire(self, grant: str, buckets: object) -> float:
            return 0.0

    with pytest.raises(llmx.PluginError, match=r"Half without release.*RateLimiter") as info:
        registration(Half).build()
    assert (info.value.plugin, info.value.distribution) == ("limits", "llmx-limits")


class OldStrategy:
    """Written before strategies received ``view``."""

    def order(self, candidates: object, request: object) -> object:
        return candidates


class Strategy:
    def order(self, candidates: object, request: object, view: object) -> object:
        return candidates


class Routes:
    @hookimpl
    def llmx_register_routing_strategies(self, register: Register) -> None:
        register("old", OldStrategy)
        register("new", Strategy)


class LooseLimiter(Limiter):
    async def release(self, *args: object, **kwargs: object) -> None:
        return None


def test_build_refuses_a_method_that_cannot_take_what_the_core_passes() -> None:
    reg = llmx.Registry(entry_points=[])
    reg.register(Routes(), name="routes", distribution="llmx-routes")

    with pytest.raises(llmx.PluginError, match=r"without order\(candidates, request, view\)"):
        reg.get("routing_strategy", "old").build()
    assert isinstance(reg.get("routing_strategy", "new").build(), Strategy)
    assert isinstance(registration(LooseLimiter).build(), LooseLimiter)  # *args takes anything


# -- unknown names: the install hint fits the kind ----------------------------------------

BUILTINS_ONLY = [entry_point("builtins", "llmx._builtins")]


@pytest.mark.parametrize(
    ("kind", "name", "hint"),
    [
        ("provider", "anthropic", "pip install llmx-provider-anthropic"),
        ("provider", "azure", "pip install llmx-provider-openai"),  # not llmx-provider-azure
        ("cache", "redis", "pip install llmx-redis"),
        ("limiter", "redis", "pip install llmx-redis"),
        ("breaker_store", "redis", "pip install llmx-redis"),
    ],
)
def test_a_first_party_component_names_the_distribution_that_provides_it(
    kind: str, name: str, hint: str
) -> None:
    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        llmx.Registry(entry_points=BUILTINS_ONLY).get(kind, name)

    message = str(exc_info.value)
    assert hint in message
    assert message.count("pip install") == 1


@pytest.mark.parametrize(
    ("kind", "name", "plural", "close"),
    [
        ("cache", "memcached", "cache backends", None),
        ("cache", "sqlit", "cache backends", "sqlite"),
        ("retry_policy", "tenacity", "retry policies", None),
        ("retry_policy", "stamna", "retry policies", "stamina"),
        ("routing_strategy", "fastest", "routing strategies", None),
        ("routing_strategy", "round-robin", "routing strategies", "round_robin"),
        ("limiter", "lokal", "rate limiters", "local"),
        ("breaker_store", "memory2", "breaker stores", "memory"),
    ],
)
def test_another_kinds_unknown_name_never_suggests_a_provider_package(
    kind: str, name: str, plural: str, close: str | None
) -> None:
    """The bug: ``pip install llmx-provider-<name>`` was suggested for every kind, and
    the plural was "policys"/"strategys"."""
    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        llmx.Registry(entry_points=BUILTINS_ONLY).get(kind, name)

    message = str(exc_info.value)
    assert "llmx-provider-" not in message
    assert f"pip install llmx-{name}" not in message  # no made-up distribution name
    assert f"{plural} available: " in message
    assert "policys" not in message
    assert "strategys" not in message
    assert f"an entry point named {name!r} in the 'llmx' group" in message
    if close is None:
        assert "did you mean" not in message
    else:
        assert f"(did you mean {close!r}?)" in message


def test_an_unknown_provider_type_follows_the_provider_naming_convention() -> None:
    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        llmx.Registry(entry_points=BUILTINS_ONLY).get("provider", "mistral")

    message = str(exc_info.value)
    assert "provider types available: none" in message
    assert "llmx-provider-TYPE" in message
    assert "did you mean" not in message


def test_an_unknown_plugin_name_suggests_the_installed_one(
    modules: dict[str, types.ModuleType],
) -> None:
    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        llmx.Registry(entry_points=[*BUILTINS_ONLY, entry_point("good", "t_good")]).load("god")

    assert "(did you mean 'good'?)" in str(exc_info.value)
    assert "pip install" in str(exc_info.value)
    assert "llmx-provider-god" not in str(exc_info.value)


def test_loaded_plugins_list_the_hooks_they_implement(
    modules: dict[str, types.ModuleType],
) -> None:
    make_module(
        modules,
        "t_hooks",
        GOOD + "@llmx.plugin.hookimpl\ndef llmx_request_end(event):\n    pass\n",
    )
    reg = llmx.Registry(
        entry_points=[entry_point("good", "t_hooks"), entry_point("alias", "t_hooks")]
    )
    assert reg.plugins()[1].hooks == []  # not loaded: unknown

    reg.load("good")
    reg.load("alias")

    infos = {p.name: p for p in reg.plugins()}
    assert infos["good"].hooks == ["llmx_register_providers", "llmx_request_end"]
    assert infos["alias"].hooks == infos["good"].hooks  # the same module, two entry points


# -- component names have owners ---------------------------------------------------------


def thief(*names: tuple[str, str]) -> str:
    """The source of a plugin module registering ``(kind hook suffix, name)`` pairs."""
    lines = ["import llmx.plugin", "llmx_contract = '1.0'"]
    for hook, name in names:
        lines += [
            "@llmx.plugin.hookimpl",
            f"def llmx_register_{hook}(register):",
            f"    register({name!r}, object)",
        ]
    return "\n".join(lines) + "\n"


def test_a_plugin_registering_a_first_party_name_is_refused_whole(
    modules: dict[str, types.ModuleType],
) -> None:
    """The bug: a plugin registering ``openai`` silently became the ``openai`` type (and
    got its API keys) when llmx-provider-openai was not loaded."""
    make_module(modules, "t_thief", thief(("providers", "openai"), ("caches", "loot")))
    reg = llmx.Registry(entry_points=[*BUILTINS_ONLY, entry_point("thief", "t_thief")])

    with pytest.raises(llmx.PluginConflictError) as refused:
        reg.load("thief")

    message = str(refused.value)
    assert "provider type 'openai' is registered by plugin 'thief'" in message
    assert "llmx-provider-openai (not installed)" in message
    assert "add 'openai' to [plugins] replace" in message
    assert {p.name: p.status for p in reg.plugins()}["thief"] == "conflict"
    with pytest.raises(llmx.PluginConflictError, match="plugin 'thief'"):
        reg.get("provider", "openai")
    assert "loot" not in reg.names("cache")  # nothing of it is registered
    assert reg.hook.llmx_register_caches.get_hookimpls()[0].plugin_name == "builtins"


def test_a_plugin_registering_a_builtin_name_is_refused(
    modules: dict[str, types.ModuleType],
) -> None:
    make_module(modules, "t_thief", thief(("caches", "memory")))
    reg = llmx.Registry(
        entry_points=[*BUILTINS_ONLY, entry_point("thief", "t_thief")], enable=["thief"]
    )

    with pytest.raises(llmx.PluginConflictError) as conflict:
        reg.get("cache", "memory")

    assert "the name belongs to llmx's plugin 'builtins'" in str(conflict.value)
    assert "(a built-in name)" in str(conflict.value)


def test_a_name_belongs_to_the_entry_point_of_that_name_even_unloaded(
    modules: dict[str, types.ModuleType],
) -> None:
    """The owner is known from the entry points: it is never imported to find out."""
    make_module(modules, "t_thief", thief(("routing_strategies", "fancy")))
    eps = [entry_point("thief", "t_thief"), entry_point("fancy", "t_never_imported_x")]
    reg = llmx.Registry(entry_points=eps, enable=["thief"])

    with pytest.raises(llmx.PluginConflictError) as conflict:
        reg.get("routing_strategy", "fancy")

    assert "the name belongs to plugin 'fancy'" in str(conflict.value)
    assert "its entry point is named 'fancy'" in str(conflict.value)
    assert {p.name: p.status for p in reg.plugins()} == {"thief": "conflict", "fancy": "available"}
    assert "t_never_imported_x" not in sys.modules


@pytest.mark.parametrize(
    ("hook", "kind", "name"), [("providers", "provider", "openai"), ("caches", "cache", "memory")]
)
def test_replace_is_the_explicit_opt_in(
    modules: dict[str, types.ModuleType], hook: str, kind: str, name: str
) -> None:
    make_module(modules, "t_thief", thief((hook, name)))
    eps = [*BUILTINS_ONLY, entry_point("thief", "t_thief")]
    reg = llmx.Registry(entry_points=eps, enable=["thief"], replace=[name])

    assert reg.get(kind, name).plugin == "thief"
    assert {p.name: p.status for p in reg.plugins()}["thief"] == "loaded"


def test_replace_lets_one_plugin_only_take_a_name(modules: dict[str, types.ModuleType]) -> None:
    make_module(modules, "t_thief", thief(("caches", "memory")))
    make_module(modules, "t_thief2", thief(("caches", "memory")))
    eps = [*BUILTINS_ONLY, entry_point("thief", "t_thief"), entry_point("thief2", "t_thief2")]
    reg = llmx.Registry(entry_points=eps, enable=["thief", "thief2"], replace=["memory"])

    with pytest.raises(llmx.PluginConflictError) as conflict:
        reg.get("cache", "memory")

    assert "plugin 'thief'" in str(conflict.value)
    assert "plugin 'thief2'" in str(conflict.value)
    assert {p.name: p.status for p in reg.plugins()}["thief2"] == "conflict"


def test_an_in_process_plugin_registered_before_the_builtins_is_the_culprit() -> None:
    class Mine:
        @hookimpl
        def llmx_register_caches(self, register: Register) -> None:
            register("memory", object)

    reg = llmx.Registry(entry_points=BUILTINS_ONLY)
    reg.register(Mine(), name="mine")
    with pytest.raises(llmx.PluginConflictError, match="registered by plugin 'mine'"):
        reg.get("cache", "memory")
    assert {p.name: p.status for p in reg.plugins()} == {"builtins": "loaded", "mine": "conflict"}


@settings(max_examples=50, deadline=None)
@given(order=st.permutations(["assemble", "a", "b", "c"]), replace=st.booleans())
def test_whatever_the_order_a_name_is_its_owners_or_an_error(
    order: list[str], replace: bool
) -> None:
    """``a`` and ``b`` register the builtins' ``memory`` (and a name of their own), ``c``
    the name of an un-imported entry point: in any loading order, ``c`` never loads, two
    plugins never both hold ``memory``, and ``memory`` is the builtins' (or, with
    ``replace``, the one replacing plugin's), else an error naming both."""

    def plugin(*names: str) -> object:
        class P:
            @hookimpl
            def llmx_register_caches(self, register: Register) -> None:
                for name in names:
                    register(name, object)

        return P()

    plugins = {"a": plugin("memory", "a-own"), "b": plugin("memory", "b-own"), "c": plugin("owned")}
    eps = [*BUILTINS_ONLY, entry_point("owned", "t_not_imported_y")]
    reg = llmx.Registry(entry_points=eps, replace=["memory"] if replace else ())
    for step in order:
        with contextlib.suppress(llmx.PluginConflictError):
            if step == "assemble":
                reg.assemble()
            else:
                reg.register(plugins[step], name=step, distribution=f"dist-{step}")

    status = {p.name: p.status for p in reg.plugins()}
    assert status["c"] == "conflict"
    assert status["owned"] == "available"
    holders = [n for n in ("a", "b") if status[n] == "loaded"]
    assert len(holders) <= 1
    conflict = reg._conflicts.get(("cache", "memory"))
    if conflict is not None:
        with pytest.raises(llmx.PluginConflictError) as raised:
            reg.get("cache", "memory")
        assert str(raised.value).count("plugin '") >= 2  # names both
    else:
        memory = reg.get("cache", "memory").plugin
        assert memory == (holders[0] if replace and holders else "builtins")
    assert "t_not_imported_y" not in sys.modules


def test_an_unknown_name_never_advises_enabling_a_plugin_that_would_take_it(
    modules: dict[str, types.ModuleType],
) -> None:
    """``openai`` not installed, a plugin registering ``openai`` installed: the error says
    to install llmx-provider-openai, not to enable the plugin (which would be refused)."""
    make_module(modules, "t_thief", thief(("providers", "openai")))
    reg = llmx.Registry(entry_points=[*BUILTINS_ONLY, entry_point("thief", "t_thief")])

    with pytest.raises(llmx.PluginNotInstalledError) as exc_info:
        reg.get("provider", "openai")

    assert "pip install llmx-provider-openai" in str(exc_info.value)
    assert "thief" not in str(exc_info.value)
    assert {p.name: p.status for p in reg.plugins()}["thief"] == "available"


def test_two_plugins_of_the_owner_registering_one_name_conflict_without_blame() -> None:
    """Both from llmx-redis (the first-party owner of the cache ``redis``): the second is
    refused as registering it twice, neither is called a taker of another's name."""

    def plugin() -> object:
        class P:
            @hookimpl
            def llmx_register_caches(self, register: Register) -> None:
                register("redis", object)

        return P()

    reg = llmx.Registry(entry_points=BUILTINS_ONLY)
    reg.register(plugin(), name="r1", distribution="llmx-redis")
    with pytest.raises(llmx.PluginConflictError) as exc_info:
        reg.register(plugin(), name="r2", distribution="llmx_redis")

    assert "registered twice: by plugin 'r1' (llmx-redis None)" in str(exc_info.value)
    assert "belongs to" not in str(exc_info.value)
    assert {p.name: p.status for p in reg.plugins()} == {
        "builtins": "available",
        "r1": "loaded",
        "r2": "conflict",
    }

"""The plugin registry: discovers ``llmx`` entry points, loads plugins on demand, and
records which distribution contributed each component.

Installed is not loaded. Discovery reads entry-point metadata only, so every
installed plugin can be listed without importing any. A plugin is imported when the
config enables it (``[plugins] enable``) or uses a component named after it (a
provider ``type = "openai"`` loads the plugin whose entry point is named ``openai``).
An installed distribution therefore never runs code in an app that did not ask for it,
and start-up time does not grow with the number of installed plugins.

Every kind autoloads the same way: ``type``, ``backend``, ``policy`` and ``strategy =
NAME`` load the plugin whose entry point is named ``NAME`` (no ``[plugins] enable``
needed); a component whose plugin's entry point has another name needs that plugin in
``enable``. One distribution may declare several entry points (``openai`` and ``azure``).

Only when a name is unknown (an error path) are the other installed plugins imported,
into a scratch registry, to say which names really exist and which plugin provides
each; the registry in use is left as it was.

Component names have owners (the builtins, a first-party distribution, the installed
entry point of that name): a plugin registering a name it does not own is refused
whole, unless ``[plugins] replace`` lists the name (:class:`Registry`). An import that
runs longer than ``[plugins] slow_import_after`` seconds is reported by name while it
runs; it is not cut short (a thread cannot stop an import), ``[plugins] disable`` is
the fix.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pluggy

from llmx import hookspecs
from llmx._components import PROTOCOLS, missing_members, partial_abilities
from llmx._errors import (
    ConfigError,
    PluginConflictError,
    PluginError,
    PluginIncompatibleError,
    PluginLoadError,
    PluginNotInstalledError,
)

if TYPE_CHECKING:
    from types import ModuleType

    from llmx._config import Config
    from llmx.hookspecs import Register

log = logging.getLogger("llmx.registry")
import_log = logging.getLogger("llmx.registry.imports")
"""Where a slow plugin import is reported (kept apart so ``llmx plugins`` can show it
while it puts the registry's other warnings in its table)."""

SLOW_IMPORT_AFTER = 3.0
"""Seconds a plugin import may take before it is reported by name (the default of
``[plugins] slow_import_after``)."""

ENTRY_POINT_GROUP = "llmx"
"""The entry-point group plugins register in."""

BUILTINS = "builtins"
"""The name of the core's own plugin (memory defaults, routing strategies, ...)."""

_KIND_HOOKS: dict[str, str] = {
    "provider": "llmx_register_providers",
    "cache": "llmx_register_caches",
    "retry_policy": "llmx_register_retry_policies",
    "routing_strategy": "llmx_register_routing_strategies",
    "command": "llmx_register_commands",
    "limiter": "llmx_register_limiters",
    "breaker_store": "llmx_register_breaker_stores",
    "listener": "llmx_register_listeners",
}
_KIND_WORDS = {
    "provider": "provider type",
    "cache": "cache backend",
    "retry_policy": "retry policy",
    "routing_strategy": "routing strategy",
    "command": "command",
    "limiter": "rate limiter",
    "breaker_store": "breaker store",
    "listener": "listener",
}
_KIND_PLURALS = {
    "provider": "provider types",
    "cache": "cache backends",
    "retry_policy": "retry policies",
    "routing_strategy": "routing strategies",
    "command": "commands",
    "limiter": "rate limiters",
    "breaker_store": "breaker stores",
    "listener": "listeners",
}
# The first-party distributions and what they provide, so that an install hint names a
# distribution that exists; for any other name the hint names none (it cannot know it).
_FIRST_PARTY: dict[tuple[str, str], str] = {
    ("provider", "openai"): "llmx-provider-openai",
    ("provider", "azure"): "llmx-provider-openai",
    ("provider", "anthropic"): "llmx-provider-anthropic",
    ("provider", "gemini"): "llmx-provider-gemini",
    ("provider", "llamacpp"): "llmx-provider-llamacpp",
    ("cache", "redis"): "llmx-redis",
    ("limiter", "redis"): "llmx-redis",
    ("breaker_store", "redis"): "llmx-redis",
    ("listener", "prometheus"): "llmx-prometheus",
}
_EVENT_HOOKS = (
    "llmx_request_start",
    "llmx_attempt_start",
    "llmx_attempt_end",
    "llmx_request_end",
    "llmx_request_error",
    "llmx_breaker_transition",
    "llmx_request_cancelled",
)


_E = TypeVar("_E", bound=PluginError)
_T = TypeVar("_T")


@attrs.frozen
class Source:
    """Where something came from: a plugin, its distribution and version."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        """``plugin 'name' (distribution version)``, for messages."""
        if self.distribution is None:
            return f"plugin {self.plugin!r}"
        return f"plugin {self.plugin!r} ({self.distribution} {self.version})"

    def error(self, cls: type[_E], msg: str) -> _E:
        """A ``cls`` error carrying this plugin, distribution and version."""
        return cls(msg, plugin=self.plugin, distribution=self.distribution, version=self.version)


@attrs.frozen
class Registration:
    """One registered component and the plugin it came from."""

    kind: str
    name: str
    factory: Any
    settings: type | None
    plugin: str
    distribution: str | None
    version: str | None

    @property
    def source(self) -> Source:
        """The plugin that registered it, for messages and errors."""
        return Source(self.plugin, self.distribution, self.version)

    @property
    def origin(self) -> str:
        """``plugin 'name' (distribution version)``, for messages."""
        return str(self.source)

    def build(self, settings: Any = None) -> Any:
        """Build the component: ``factory(settings)``, or ``factory()`` when the plugin
        registered no settings class; then :meth:`check` it.

        A factory that raises is reported as a :class:`PluginError` naming the plugin
        (config and plugin errors pass through as they are).
        """
        try:
            component = self.factory() if self.settings is None else self.factory(settings)
        except (ConfigError, PluginError):
            raise
        except Exception as err:
            msg = (
                f"{_KIND_WORDS[self.kind]} {self.name!r} (from {self.origin}) failed to "
                f"start: {type(err).__name__}: {err}"
            )
            raise self.source.error(PluginError, msg) from err
        return self.check(component)

    def check(self, component: _T) -> _T:
        """``component``, if it has every member its kind's protocol requires
        (:data:`llmx._components.PROTOCOLS`); else a :class:`PluginError` naming what
        is missing and the plugin to blame, before anything calls it."""
        protocol = PROTOCOLS.get(self.kind)
        missing = [] if protocol is None else missing_members(component, protocol)
        fix = (
            f"upgrade or report the plugin (pip install -U {self.distribution or self.plugin}), "
            f"or configure another {_KIND_WORDS[self.kind]}"
        )
        if missing:
            assert protocol is not None
            msg = (
                f"{_KIND_WORDS[self.kind]} {self.name!r} from {self.origin} is a "
                f"{type(component).__name__} without {', '.join(missing)}, which the "
                f"{protocol.__name__} protocol requires; {fix}"
            )
            raise self.source.error(PluginError, msg)
        for optional, present, gaps in partial_abilities(component, self.kind):
            # Half an optional ability would be skipped silently, or fail inside llmx.
            msg = (
                f"{_KIND_WORDS[self.kind]} {self.name!r} from {self.origin} is a "
                f"{type(component).__name__} with {', '.join(present)} but without "
                f"{', '.join(gaps)}, which the optional {optional.__name__} protocol "
                f"requires together; {fix}"
            )
            raise self.source.error(PluginError, msg)
        return component


@attrs.define
class PluginInfo:
    """What the registry knows about one plugin.

    ``status`` is ``available`` (installed, not imported), ``loaded``, ``failed``
    (crashed on import or registration; see ``error``), ``incompatible`` (contract
    version), ``conflict`` (its entry-point name is claimed twice) or ``disabled``.
    Once loaded, ``contributes`` lists the components it registered as ``(kind, name)``
    and ``hooks`` the names of the hooks it implements (both empty before).
    """

    name: str
    distribution: str | None
    version: str | None
    value: str
    status: str = "available"
    error: PluginError | None = None
    contributes: list[tuple[str, str]] = attrs.field(factory=list)
    hooks: list[str] = attrs.field(factory=list)
    _entry_point: Any = attrs.field(default=None, repr=False, alias="entry_point")

    @property
    def source(self) -> Source:
        """This plugin, for messages and errors."""
        return Source(self.name, self.distribution, self.version)


def parse_contract(declared: object) -> tuple[int, int] | None:
    """``"1.0"`` -> ``(1, 0)``; anything unreadable -> None."""
    if not isinstance(declared, str):
        return None
    parts = declared.strip().split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


_parsed = parse_contract(hookspecs.CONTRACT_VERSION)
assert _parsed is not None
CONTRACT: tuple[int, int] = _parsed


def check_contract(plugin: object, source: Source) -> None:
    """Refuse ``plugin`` if it declares a contract version this llmx does not speak.

    The declaration (``llmx_contract = "1.1"``) is optional until llmx 1.0: what keeps
    a plugin and llmx compatible is the plugin's ``Requires-Dist: llmx~=0.1.0``. A
    plugin that declares one is refused when it is unreadable, newer than this llmx's
    ("upgrade llmx"), or of an older major version ("upgrade the plugin").
    """
    declared = getattr(plugin, "llmx_contract", None)
    if declared is None:
        return
    version = parse_contract(declared)
    ours = hookspecs.CONTRACT_VERSION
    if version is None:
        msg = (
            f"{source} declares an unreadable contract version {declared!r}; "
            f"expected 'MAJOR.MINOR' such as {ours!r}"
        )
    elif version > CONTRACT:
        msg = (
            f"{source} needs plugin contract {declared}, but this llmx speaks {ours}; "
            "upgrade llmx (pip install -U llmx)"
        )
    elif version[0] < CONTRACT[0]:
        msg = (
            f"{source} was written for plugin contract {declared}, which this llmx "
            f"({ours}) no longer supports; upgrade the plugin "
            f"(pip install -U {source.distribution or source.plugin})"
        )
    else:
        return
    raise source.error(PluginIncompatibleError, msg)


class Registry:
    """Assembles plugins from what is installed and what the config enables.

    Use :meth:`from_config` in applications. ``enable``: plugins loaded up front;
    ``disable``: plugins never loaded; ``autoload=False`` (or the environment variable
    ``LLMX_DISABLE_PLUGIN_AUTOLOAD=1``) loads only ``enable`` (plus the builtins);
    ``strict=True`` makes a broken plugin an error instead of a logged warning;
    ``replace``: component names a plugin may take over from their owner (see below);
    ``slow_import_after``: seconds a plugin import may take before it is reported by
    name, and again each time the wait doubles (None: never);
    ``entry_points`` replaces discovery (for tests and embedding).

    **Component names have owners.** A name belongs to the builtins when they register
    it, to its first-party distribution (``openai`` to llmx-provider-openai), or else
    to the installed distribution with an entry point of that name (known from its
    metadata, without importing it); a name nobody owns belongs to the first plugin
    that registers it. A plugin registering a name it does not own is refused as a
    whole (status ``conflict``, nothing of it registered) and the name becomes an
    error naming both plugins, so it never receives the config (and the API keys)
    meant for the owner's component; ``replace`` lists the names a plugin may take
    over instead (the owner's registration of such a name is then ignored).
    """

    def __init__(
        self,
        *,
        enable: Iterable[str] = (),
        disable: Iterable[str] = (),
        autoload: bool = True,
        strict: bool = False,
        replace: Iterable[str] = (),
        slow_import_after: float | None = SLOW_IMPORT_AFTER,
        entry_points: Iterable[Any] | None = None,
    ) -> None:
        self.enable = tuple(enable)
        self.disable = frozenset(disable)
        self.replace = frozenset(replace)
        self.slow_import_after = slow_import_after
        env_off = os.environ.get("LLMX_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower()
        self.autoload = autoload and env_off in ("", "0", "false", "no")
        self.strict = strict
        self._pm = pluggy.PluginManager("llmx")
        self._pm.add_hookspecs(hookspecs)
        self._given_entry_points = None if entry_points is None else list(entry_points)
        self._plugins: dict[str, PluginInfo] | None = None
        self._components: dict[str, dict[str, Registration]] = {k: {} for k in _KIND_HOOKS}
        self._conflicts: dict[tuple[str, str], PluginConflictError] = {}
        self._loaded_objects: dict[int, str] = {}
        self._lock = threading.RLock()
        self._events: _EventHooks | None = None
        self._assembled = False
        self.listeners: dict[str, object] = {}
        """The listeners this registry started (:func:`start_listeners`), by name."""
        self._listener_settings: dict[str, Any] = {}
        self._claims = _Claims(self._discover, self.replace, self._components, self._conflicts)

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Registry:
        """A registry honouring ``config.plugins``."""
        p = config.plugins
        kwargs.setdefault("replace", p.replace)
        kwargs.setdefault("slow_import_after", p.slow_import_after)
        return cls(
            enable=p.enable, disable=p.disable, autoload=p.autoload, strict=p.strict, **kwargs
        )

    # -- discovery -----------------------------------------------------------------------

    def _discover(self) -> dict[str, PluginInfo]:
        if self._plugins is not None:
            return self._plugins
        with self._lock:
            if self._plugins is not None:  # another thread discovered meanwhile
                return self._plugins  # type: ignore[unreachable]
            if self._given_entry_points is not None:
                eps = self._given_entry_points
            else:
                import importlib_metadata

                eps = list(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP))
            plugins: dict[str, PluginInfo] = {}
            for ep in eps:
                dist = getattr(ep, "dist", None)
                dist_name = dist.name if dist is not None else None
                version = dist.version if dist is not None else None
                info = PluginInfo(ep.name, dist_name, version, ep.value, entry_point=ep)
                if ep.name in self.disable:
                    info.status = "disabled"
                previous = plugins.get(ep.name)
                if previous is not None and previous.distribution != dist_name:
                    msg = (
                        f"plugin name {ep.name!r} is claimed by two distributions: "
                        f"{previous.distribution} {previous.version} and {dist_name} {version}; "
                        "uninstall one of them"
                    )
                    previous.status = "conflict"
                    previous.error = info.source.error(PluginConflictError, msg)
                    continue
                if previous is not None:
                    continue  # the same distribution seen twice on sys.path
                plugins[ep.name] = info
            self._plugins = plugins
            return plugins

    def plugins(self) -> list[PluginInfo]:
        """Every discovered plugin (and in-process ones), sorted by name; imports nothing."""
        return sorted(self._discover().values(), key=lambda p: p.name)

    def assemble(self) -> Registry:
        """Load the builtins and the enabled plugins (once); returns self."""
        if self._assembled:
            return self
        with self._lock:
            if self._assembled:  # another thread assembled meanwhile
                return self  # type: ignore[unreachable]
            self._assembled = True
            plugins = self._discover()
            names = [BUILTINS, *self.enable] if BUILTINS not in self.disable else list(self.enable)
            for name in dict.fromkeys(names):
                if name not in plugins:
                    if name == BUILTINS:
                        continue
                    err = _not_installed(name, self._discover())
                    if self.strict:
                        raise err
                    log.warning("%s", err)
                    continue
                self._load_quietly(name)
        return self

    def load_all(self) -> list[PluginInfo]:
        """Try to load every allowed plugin (for diagnostics such as ``llmx plugins
        --load``): this imports, so runs, every installed plugin autoload allows."""
        self.assemble()
        for info in self.plugins():
            if info.status == "available" and (self.autoload or info.name in self.enable):
                self._load_quietly(info.name)
        return self.plugins()

    def load_used(self, config: Config) -> list[PluginInfo]:
        """Load the builtins, the enabled plugins and those the config's component names
        autoload (what ``llmx.Client(config)`` loads), quietly; import no other plugin.

        For diagnostics such as ``llmx plugins``: unlike :meth:`get`, an unknown name is
        skipped, not explained (explaining imports every installed plugin).
        """
        self.assemble()
        plugins = self._discover()
        for name in names_in_config(config):
            info = plugins.get(name)
            if (
                info is not None
                and info.status == "available"
                and (self.autoload or name in self.enable)
            ):
                self._load_quietly(name)
        return self.plugins()

    def _load_quietly(self, name: str) -> None:
        try:
            self.load(name)
        except PluginError as err:
            if self.strict:
                raise
            log.warning("%s", err)

    # -- loading -------------------------------------------------------------------------

    def load(self, name: str) -> PluginInfo:
        """Import and register the plugin ``name`` (once). Raises a :class:`PluginError`."""
        with self._lock:
            plugins = self._discover()
            info = plugins.get(name)
            if info is None:
                raise _not_installed(name, self._discover())
            if info.status == "loaded":
                return info
            if info.error is not None:
                raise info.error
            if info.status == "disabled":
                msg = f"plugin {name!r} is disabled by [plugins] disable; remove it from that list to use it"
                raise info.source.error(PluginLoadError, msg)
            try:
                with _ImportWatch(info.source, self.slow_import_after):
                    obj = info._entry_point.load()
            except Exception as err:
                info.status = "failed"
                msg = (
                    f"{info.source} failed to load: "
                    f"{type(err).__name__}: {err}; reinstall or upgrade {info.distribution or name}, "
                    f"or add {name!r} to [plugins] disable"
                )
                info.error = info.source.error(PluginLoadError, msg)
                info.error.__cause__ = err
                raise info.error from err
            try:
                check_contract(obj, info.source)
                self._register_object(obj, info)
            except PluginError as err:
                info.status = _status_of(err)
                info.error = err
                raise
            info.status = "loaded"
            return info

    def _register_object(self, obj: object, info: PluginInfo) -> None:
        existing = self._loaded_objects.get(id(obj))
        if existing is not None:
            # Several entry points (e.g. ``openai`` and ``azure``) may name one module.
            first = self._discover()[existing]
            info.contributes, info.hooks = first.contributes, first.hooks
            return
        source = info.source
        try:
            hash(obj)
        except TypeError as err:
            msg = (
                f"{source} is a {type(obj).__name__} that cannot be hashed, and pluggy keeps "
                "plugins in sets; give it a __hash__ (with attrs: @attrs.define(eq=False))"
            )
            raise source.error(PluginLoadError, msg) from err
        try:
            self._pm.register(obj, name=info.name)
        except ValueError as err:
            msg = f"{source} could not be registered: {err}"
            raise source.error(PluginLoadError, msg) from err
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as err:
            self._pm.unregister(obj)
            msg = (
                f"{source} implements an unknown hook: {err}; "
                "check the hook name's spelling against llmx.hookspecs"
            )
            raise source.error(PluginLoadError, msg) from err
        staged: list[Registration] = []
        try:
            for kind, hook_name in _KIND_HOOKS.items():
                # This plugin's implementation only, called through pluggy.
                hook = getattr(self._pm.hook, hook_name)
                others = [i.plugin for i in hook.get_hookimpls() if i.plugin is not obj]
                call = self._pm.subset_hook_caller(hook_name, remove_plugins=others)
                call(register=_registrar(kind, source, staged))
        except PluginError:
            self._pm.unregister(obj)
            raise
        except Exception as err:
            self._pm.unregister(obj)
            msg = f"{source} failed while registering: {type(err).__name__}: {err}"
            raise source.error(PluginLoadError, msg) from err
        refused = self._claims.claim(staged, info)
        if refused:
            # All or nothing: a plugin taking a name it does not own registers nothing,
            # and the name is an error naming both (never silently the wrong component).
            self._pm.unregister(obj)
            for key, conflict in refused:
                self._conflicts.setdefault(key, conflict)
            reason = refused[0][1]
            if len(refused) == 1:
                raise reason
            names = ", ".join(f"{_KIND_WORDS[k]} {n!r}" for (k, n), _ in refused[1:])
            raise source.error(PluginConflictError, f"{reason} (and likewise: {names})")
        info.hooks = sorted(caller.name for caller in self._pm.get_hookcallers(obj) or ())
        self._loaded_objects[id(obj)] = info.name
        self._events = None

    def register(
        self, plugin: object, *, name: str | None = None, distribution: str | None = None
    ) -> PluginInfo:
        """Register an in-process plugin object (an app's or a test's own hooks).

        It is treated like an installed plugin, minus discovery (its contract version
        is checked if it declares ``llmx_contract``).
        """
        with self._lock:
            plugin_name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
            plugins = self._discover()
            if plugin_name in plugins:
                msg = f"a plugin named {plugin_name!r} is already known; pass another name="
                raise PluginConflictError(msg, plugin=plugin_name)
            info = PluginInfo(plugin_name, distribution, None, repr(plugin))
            plugins[plugin_name] = info
            try:
                check_contract(plugin, info.source)
                self._register_object(plugin, info)
            except PluginError as err:
                info.status = _status_of(err)
                info.error = err
                raise
            info.status = "loaded"
            return info

    # -- lookups -------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Registration:
        """The component ``name`` of ``kind``, loading the plugin named after it if needed."""
        self.assemble()
        conflict = self._conflicts.get((kind, name))
        if conflict is not None:
            raise conflict
        reg = self._components[kind].get(name)
        if reg is not None:
            return reg
        plugins = self._discover()
        info = plugins.get(name)
        if (
            info is not None
            and info.status == "available"
            and (self.autoload or name in self.enable)
        ):
            self.load(name)
            return self.get(kind, name)
        if info is not None and info.error is not None:
            raise info.error
        raise self._unknown(kind, name, info)

    def _unknown(self, kind: str, name: str, info: PluginInfo | None) -> PluginError:
        word = _KIND_WORDS[kind]
        if info is not None and info.status == "available":
            msg = (
                f"unknown {word} {name!r}: plugin {name!r} ({info.distribution} {info.version}) is "
                f"installed but not enabled, and autoload is off; add it to [plugins] enable"
            )
            return info.source.error(PluginLoadError, msg)
        if info is not None and info.status == "disabled":
            msg = (
                f"unknown {word} {name!r}: plugin {name!r} ({info.distribution} {info.version}) is "
                "installed but disabled by [plugins] disable; remove it from that list to use it"
            )
            return info.source.error(PluginLoadError, msg)
        names = list(self._components[kind])
        available = _by_distribution([(r.name, r.source) for r in self._components[kind].values()])
        # The installed plugins not loaded are offered by name (a plugin is often named
        # after what it provides), never imported to see what they register: an installed
        # plugin the config does not enable runs no code.
        idle = {p.name: p for p in self.plugins() if p.status == "available"}
        plural = _KIND_PLURALS[kind]
        loaded = f"{plural} available: {available or 'none'}"
        if not available and idle:  # "none" would read as if nothing were installed
            loaded = f"no {plural} loaded"
        close = _close(name, [*names, *idle])
        if close is not None and close in idle and close not in names:
            dist = idle[close].distribution or f"plugin {close!r}"
            msg = (
                f"unknown {word} {name!r} (did you mean {close!r}?); {close!r} ({dist}) is "
                "an installed plugin, not loaded"
            )
        else:
            msg = f"unknown {word} {name!r}{_did_you_mean(name, names)}"
        msg += f"; {loaded}"
        if idle and not self.autoload:
            msg += (
                "; installed but not enabled (autoload is off, so not imported to see what "
                f"they provide): {', '.join(idle)}"
            )
        elif idle:
            msg += (
                f"; {len(idle)} installed plugin(s) not loaded are not imported to see what "
                "they provide (`llmx plugins --load` shows it)"
            )
        msg += f". {_install_hint(kind, name, names)}, or check the spelling"
        return PluginNotInstalledError(msg, plugin=name)

    def idle(self) -> list[str]:
        """The installed plugins that are neither loaded nor disabled, by name: what an
        error may suggest for an unknown component name. They are never imported to see
        what they register (an installed plugin the config does not enable runs no code);
        ``llmx plugins --load`` shows that on request."""
        return [p.name for p in self.plugins() if p.status == "available"]

    def names(self, kind: str) -> list[str]:
        """The names of the loaded components of ``kind``."""
        self.assemble()
        return sorted(self._components[kind])

    def registrations(self, kind: str) -> list[Registration]:
        """The loaded components of ``kind``."""
        self.assemble()
        return [self._components[kind][n] for n in sorted(self._components[kind])]

    # -- hooks -----------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The plugin manager's hook relay (``registry.hook.my_hook(...)``)."""
        return self._pm.hook

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The underlying pluggy plugin manager (one per registry)."""
        return self._pm

    def add_hookspecs(self, module_or_class: ModuleType | type) -> None:
        """Add a framework's own hook specifications to the contract."""
        with self._lock:
            self._pm.add_hookspecs(module_or_class)
            self._events = None

    @property
    def events(self) -> _EventHooks:
        """The event hook callers, each None when no plugin implements it (hot path)."""
        events = self._events
        if events is None:
            events = self._events = _EventHooks.build(self._pm)
        return events


def _status_of(err: PluginError) -> str:
    """A plugin's status after ``err`` stopped it from loading."""
    if isinstance(err, PluginIncompatibleError):
        return "incompatible"
    if isinstance(err, PluginConflictError):
        return "conflict"
    return "failed"


def _dist_key(name: str) -> str:
    """A distribution name normalised for comparison (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _conflict_fix(plugin: str, name: str) -> str:
    """How to resolve plugin ``plugin`` registering the name ``name`` it does not own."""
    return (
        f"Add {plugin!r} to [plugins] disable (or remove it from enable, or uninstall it); "
        f"or, to let it replace {name!r}, add {name!r} to [plugins] replace"
    )


@attrs.frozen
class _Owner:
    """The owner of a component name, for :meth:`_Claims.claim`."""

    source: Source
    value: str | None  # its entry point's value, when the owner is an entry point
    why: str
    builtin: bool = False

    @property
    def describe(self) -> str:
        """``plugin 'echo' (llmx-fixture-echo 1.0.0)``, or a first-party distribution."""
        if self.builtin:
            return f"llmx's {self.source}"
        if self.source.version is None and self.source.distribution is not None:
            return f"{self.source.distribution} (not installed)"
        return str(self.source)

    def owns(self, info: PluginInfo) -> bool:
        """Whether ``info`` is (a plugin of) the owner."""
        mine, theirs = info.distribution, self.source.distribution
        if mine is not None and theirs is not None:
            return _dist_key(mine) == _dist_key(theirs)
        if self.value is not None and info.value == self.value:
            return True  # one module under several entry points
        return info.name == self.source.plugin and mine == theirs


@attrs.define
class _Claims:
    """Which plugin holds each component name (the registry's tables and conflicts,
    shared), by the ownership rules of :class:`Registry`."""

    discover: Callable[[], dict[str, PluginInfo]]
    replace: frozenset[str]
    components: dict[str, dict[str, Registration]]
    conflicts: dict[tuple[str, str], PluginConflictError]
    builtin_names: dict[tuple[str, str], Registration] = attrs.field(factory=dict)

    def claim(
        self, staged: list[Registration], info: PluginInfo
    ) -> list[tuple[tuple[str, str], PluginConflictError]]:
        """Commit ``info``'s registrations to the tables, by the ownership rules of the
        class docstring; return the names it may not take (then nothing is committed)."""
        refused: list[tuple[tuple[str, str], PluginConflictError]] = []
        plan: list[tuple[Registration, Registration | None]] = []  # (reg, superseded by)
        late: list[tuple[Registration, Registration, PluginConflictError]] = []
        for reg in staged:
            key = (reg.kind, reg.name)
            word = f"{_KIND_WORDS[reg.kind]} {reg.name!r}"
            held = self.components[reg.kind].get(reg.name)
            if held is not None and held.plugin == reg.plugin:
                continue  # the same plugin registering a name twice: the first one stays
            if info.name == BUILTINS:  # llmx's own names are the builtins'
                owner: _Owner | None = _Owner(info.source, None, "a built-in name", builtin=True)
                mine = True
            else:
                owner = self.owner(reg.kind, reg.name)
                mine = owner is None or owner.owns(info)
            replacing = reg.name in self.replace
            if not mine and not replacing:
                assert owner is not None
                msg = (
                    f"{word} is registered by {info.source}, but the name belongs to "
                    f"{owner.describe} ({owner.why}); {info.source} is not loaded. "
                    f"{_conflict_fix(info.name, reg.name)}"
                )
                refused.append((key, info.source.error(PluginConflictError, msg)))
            elif held is None:
                plan.append((reg, None))
            elif not mine:  # replacing: only the owner's registration may be replaced
                assert owner is not None
                if self._owned(owner, held):
                    log.info(
                        "%s replaces the %s of %s ([plugins] replace)",
                        info.source,
                        word,
                        held.origin,
                    )
                    plan.append((reg, None))
                else:
                    msg = (
                        f"{word} is registered by {held.origin} and by {info.source}, and "
                        f"[plugins] replace lets one plugin only take it over from "
                        f"{owner.describe}; {info.source} is not loaded. Add one of them to "
                        "[plugins] disable"
                    )
                    refused.append((key, info.source.error(PluginConflictError, msg)))
            elif reg.name in self.replace and owner is not None:
                log.debug(
                    "%s of %s is replaced by %s ([plugins] replace)", word, info.source, held.origin
                )
                plan.append((reg, held))
            elif owner is not None and not self._owned(owner, held):
                # The owner arrives after a plugin that took its name (an in-process
                # plugin registered before the builtins): that plugin is the culprit.
                msg = (
                    f"{word} is registered by {held.origin}, but the name belongs to "
                    f"{owner.describe} ({owner.why}). {_conflict_fix(held.plugin, reg.name)}"
                )
                late.append((reg, held, held.source.error(PluginConflictError, msg)))
            else:
                msg = (
                    f"{word} is registered twice: by {held.origin} and by {info.source}; "
                    f"{info.source} is not loaded. Add one of them to [plugins] disable"
                )
                refused.append((key, info.source.error(PluginConflictError, msg)))
        if refused:
            return refused
        for reg, superseded_by in plan:
            if superseded_by is None:
                self.components[reg.kind][reg.name] = reg
            info.contributes.append((reg.kind, reg.name))
            if info.name == BUILTINS:
                self.builtin_names[(reg.kind, reg.name)] = reg
        for reg, held, err in late:
            self.conflicts[(reg.kind, reg.name)] = err
            held_info = self.discover().get(held.plugin)
            if held_info is not None:
                held_info.status, held_info.error = "conflict", err
            info.contributes.append((reg.kind, reg.name))
            if info.name == BUILTINS:
                self.builtin_names[(reg.kind, reg.name)] = reg
        return []

    def _owned(self, owner: _Owner, reg: Registration) -> bool:
        """Whether ``reg`` came from (a plugin of) ``owner``."""
        info = self.discover().get(reg.plugin)
        return info is not None and owner.owns(info)

    def owner(self, kind: str, name: str) -> _Owner | None:
        """Who owns the component name ``name`` of ``kind``: the builtins, a first-party
        distribution, or an installed entry point of that name; None: nobody."""
        builtin = self.builtin_names.get((kind, name))
        if builtin is not None:
            return _Owner(builtin.source, None, "a built-in name", builtin=True)
        plugins = self.discover()
        first_party = _FIRST_PARTY.get((kind, name))
        if first_party is not None:
            installed = next(
                (
                    p
                    for p in plugins.values()
                    if p.distribution and _dist_key(p.distribution) == first_party
                ),
                None,
            )
            source = installed.source if installed is not None else Source(name, first_party)
            return _Owner(source, None, f"a name of the first-party {first_party}")
        claimant = plugins.get(name)
        if claimant is not None and claimant._entry_point is not None:
            why = f"its entry point is named {name!r}, so a component {name!r} autoloads it"
            return _Owner(claimant.source, claimant.value, why)
        return None


class _ImportWatch:
    """Reports a plugin import still running after ``after`` seconds, by name, and again
    each time the wait doubles, then how long it took; the import itself is not bounded
    (a thread cannot stop an import: ``[plugins] disable`` does)."""

    def __init__(self, source: Source, after: float | None) -> None:
        self.source = source
        self.after = after
        self._done = threading.Event()
        self._started = 0.0
        self._warned = False

    def __enter__(self) -> _ImportWatch:
        self._started = time.monotonic()
        if self.after is not None and self.after > 0:
            watcher = threading.Thread(
                target=self._watch, name=f"llmx-import-watch-{self.source.plugin}", daemon=True
            )
            watcher.start()
        return self

    def _watch(self) -> None:
        assert self.after is not None
        wait = self.after
        while not self._done.wait(self._started + wait - time.monotonic()):
            self._warned = True
            import_log.warning(
                "%s is still importing after %.1f s; if it hangs, stop llmx (Ctrl-C) and add "
                "%r to [plugins] disable",
                self.source,
                time.monotonic() - self._started,
                self.source.plugin,
            )
            wait *= 2

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._warned:
            import_log.warning(
                "%s finished importing after %.1f s",
                self.source,
                time.monotonic() - self._started,
            )


def _registrar(kind: str, source: Source, staged: list[Registration]) -> Register:
    """The ``register`` callback one plugin's ``kind`` hook receives: it validates each
    registration and stages it (committed once the plugin's hooks all succeeded)."""
    word = _KIND_WORDS[kind]

    def register(name: str, factory: Any, *, settings: type | None = None) -> None:
        if not isinstance(name, str) or not name:
            msg = f"{source} registered a {word} without a name"
            raise source.error(PluginLoadError, msg)
        if not callable(factory):
            msg = f"{source} registered {word} {name!r} with a factory that is not callable"
            raise source.error(PluginLoadError, msg)
        if settings is not None and not attrs.has(settings):
            msg = f"{source} registered {word} {name!r} with settings that are not an attrs class"
            raise source.error(PluginLoadError, msg)
        staged.append(
            Registration(
                kind, name, factory, settings, source.plugin, source.distribution, source.version
            )
        )

    return register


@attrs.frozen
class _EventHooks:
    start: Any
    attempt_start: Any
    attempt: Any
    end: Any
    error: Any
    breaker: Any
    cancelled: Any
    any: bool

    @classmethod
    def build(cls, pm: pluggy.PluginManager) -> _EventHooks:
        callers = []
        for name in _EVENT_HOOKS:
            hook = getattr(pm.hook, name)
            impls = hook.get_hookimpls()
            callers.append(_direct_caller(impls) or hook if impls else None)
        start, attempt_start, attempt, end, error, breaker, cancelled = callers
        return cls(
            start,
            attempt_start,
            attempt,
            end,
            error,
            breaker,
            cancelled,
            any=any(c is not None for c in callers),
        )


def _direct_caller(impls: list[Any]) -> Callable[..., None] | None:
    """Call plain event-hook implementations directly, in pluggy's order (last
    registered first), skipping pluggy's per-call bookkeeping on the hot path; None
    (use pluggy) when any implementation is a wrapper or takes other arguments."""
    functions = []
    for impl in reversed(impls):
        if impl.hookwrapper or impl.wrapper or impl.argnames not in (("event",), ()):
            return None
        functions.append((impl.function, bool(impl.argnames)))
    if len(functions) == 1:
        ((function, takes_event),) = functions
        if takes_event:
            return lambda *, event: function(event)

    def call(*, event: object) -> None:
        for function, takes_event in functions:
            if takes_event:
                function(event)
            else:
                function()

    return call


def start_listeners(registry: Registry, tables: Mapping[str, Mapping[str, Any]]) -> None:
    """Have ``registry`` build each registered listener (``llmx_register_listeners``)
    once, from its ``[plugins.NAME]`` table in ``tables`` (absent: its defaults), and
    register the object it returns so that its event hooks are called; it is then in
    ``registry.listeners``.

    A registry shared by several clients builds each listener once; a second config
    giving it other settings is a :class:`~llmx.ConfigError` (give each its own
    registry). A table no listener reads, or settings that do not fit, are config
    errors too (:func:`llmx._validate.validate` reports them first).
    """
    from llmx._config import structure_settings

    with registry._lock:
        for reg in registry.registrations("listener"):
            path = f"$.plugins.{reg.name}"
            settings = structure_settings(reg.settings, tables.get(reg.name, {}), path)
            if reg.name in registry.listeners:
                if registry._listener_settings[reg.name] != settings:
                    msg = (
                        f"listener {reg.name!r} (from {reg.origin}) was already started "
                        f"by this registry with other settings than {path}; give each "
                        "client its own llmx.Registry, or the same settings"
                    )
                    raise ConfigError(msg)
                continue
            listener = reg.build(settings)
            if listener is None:
                msg = f"listener {reg.name!r} from {reg.origin}: its factory returned None"
                raise reg.source.error(PluginError, msg)
            try:
                registry._pm.register(listener, name=f"{reg.plugin}:listener:{reg.name}")
                registry._pm.check_pending()
            except (ValueError, pluggy.PluginValidationError) as err:
                if registry._pm.is_registered(listener):
                    registry._pm.unregister(listener)
                msg = (
                    f"listener {reg.name!r} from {reg.origin} could not be registered: "
                    f"{err}; its hooks must be event hooks (llmx.hookspecs)"
                )
                raise reg.source.error(PluginLoadError, msg) from err
            hooks = {c.name for c in registry._pm.get_hookcallers(listener) or ()}
            if not hooks <= set(_EVENT_HOOKS):
                registry._pm.unregister(listener)
                others = ", ".join(sorted(hooks - set(_EVENT_HOOKS)))
                msg = (
                    f"listener {reg.name!r} from {reg.origin} implements {others}; a "
                    "listener may implement event hooks only (register components "
                    "from the plugin's module)"
                )
                raise reg.source.error(PluginLoadError, msg)
            registry.listeners[reg.name] = listener
            registry._listener_settings[reg.name] = settings
            registry._events = None


def names_in_config(config: Config) -> list[str]:
    """The component names ``config`` asks for (provider types, strategies, policies,
    backends; the defaults included), in config order: the plugins of the same names
    are those ``llmx.Client(config)`` autoloads."""
    names: list[str] = [p.type for p in config.providers.values()]
    refs = [ref for a in config.aliases.values() for ref in a.candidates]
    if config.default_model is not None and "/" in config.default_model:
        refs.append(config.default_model)
    names += [r.partition("/")[0] for r in refs if r.partition("/")[0] not in config.providers]
    names += [a.strategy for a in config.aliases.values() if a.strategy is not None]
    base = config.routing.options.get("base")
    names += [n for n in (config.routing.name, base) if isinstance(n, str)]
    for section in (config.retry, config.cache, config.limiter, config.breaker_store):
        if section.name is not None:
            names.append(section.name)
    names += list(config.plugins.settings)  # [plugins.NAME]: the listener NAME
    return list(dict.fromkeys(names))


def registration_hook(kind: str) -> str:
    """The name of the hook that registers components of ``kind``
    (``provider`` -> ``llmx_register_providers``)."""
    return _KIND_HOOKS[kind]


def _not_installed(name: str, installed: Iterable[str]) -> PluginNotInstalledError:
    """The error for a plugin ``name`` that no installed distribution provides."""
    known = sorted(installed)
    dists = {d for (_, n), d in _FIRST_PARTY.items() if n == name}
    if len(dists) == 1:
        install = f"pip install {dists.pop()}"
    else:
        install = (
            "pip install the distribution that declares an entry point named "
            f"{name!r} in the {ENTRY_POINT_GROUP!r} group (provider plugins are "
            "published as llmx-provider-TYPE)"
        )
    msg = (
        f"no installed plugin is named {name!r}{_did_you_mean(name, known)} "
        f"(installed: {', '.join(known) or 'none'}); to add it, {install}"
    )
    return PluginNotInstalledError(msg, plugin=name)


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'openai'?)`` for the choice closest to ``name``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(name, sorted(set(choices)), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _close(name: str, choices: Iterable[str]) -> str | None:
    """The choice :func:`_did_you_mean` suggests, if any."""
    import difflib

    close = difflib.get_close_matches(name, sorted(set(choices)), n=1)
    return close[0] if close else None


def _by_distribution(*groups: Iterable[tuple[str, Source]]) -> str:
    """``'hedged', 'priority' (llmx); 'azure', 'openai' (llmx-provider-openai)``: component
    names grouped by the distribution (else the plugin) that provides them."""
    found: dict[str, set[str]] = {}
    for name, source in (item for group in groups for item in group):
        where = source.distribution or f"plugin {source.plugin!r}"
        found.setdefault(where, set()).add(repr(name))
    return "; ".join(
        f"{', '.join(sorted(names))} ({where})" for where, names in sorted(found.items())
    )


def _install_hint(kind: str, name: str, installed: Iterable[str]) -> str:
    """How to get the component ``name`` of ``kind``: the distribution when it is a known
    first-party one, else how such distributions are found, never a made-up name (an
    example distribution is named only when what it provides is not ``installed``)."""
    known = _FIRST_PARTY.get((kind, name))
    if known is not None:
        return f"It is provided by {known}: pip install {known}"
    word = _KIND_WORDS[kind]
    hint = (
        f"To add it, install the distribution that provides it (a {word} {name!r} autoloads "
        f"from an entry point named {name!r} in the {ENTRY_POINT_GROUP!r} group"
    )
    if kind == "provider":
        return f"{hint}; provider plugins are published as llmx-provider-TYPE)"
    for (k, example), dist in sorted(_FIRST_PARTY.items()):
        if k == kind and example not in installed:
            return f"{hint}; e.g. pip install {dist} provides the {example!r} {word})"
    return f"{hint})"

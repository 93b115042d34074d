"""Whole-config validation: everything in a :class:`~llmx.Config` that only the installed
plugins can judge, checked in one place before the first request.

:func:`~llmx.load_config` already checked every fixed key and value (cattrs, at load
time). :func:`validate` adds what needs the registry: that each name of a plugin, a
provider type, a routing strategy, a retry policy, a cache backend, a rate limiter or a
breaker store names an installed one; that each alias candidate's instance is
configured or an installed provider type; and that each component's own keys pass the
settings class its plugin registered. ``llmx.Client()`` and ``llmx config check`` both
call it. Every problem is reported at once, each with its path and, for a misspelling,
the close valid names (``unknown routing strategy 'lowest_cots' ... @ $.routing.strategy;
did you mean 'lowest_cost'?``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from llmx._config import ProviderConfig, did_you_mean, problems_message, settings_errors
from llmx._errors import ConfigError, PluginError, PluginNotInstalledError
from llmx._registry import BUILTINS
from llmx._settings import CachePolicy

if TYPE_CHECKING:
    from llmx._config import ComponentConfig, Config
    from llmx._registry import Registration, Registry

_PROVIDER_KEYS = tuple(f.name for f in attrs.fields(ProviderConfig) if f.name != "options")
"""The keys every provider instance has, besides its type's own."""


class _Problems:
    """The problems found so far, and the first plugin error behind one (the cause)."""

    def __init__(self, config: Config, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        self.lines: list[str] = []
        self.cause: BaseException | None = None

    def add(self, line: str, cause: BaseException | None = None) -> None:
        self.lines.append(line)
        if self.cause is None:
            self.cause = cause

    def raise_if_any(self) -> None:
        if not self.lines:
            return
        msg = problems_message(self.lines, self.config.source, self.config.env)
        raise ConfigError(msg) from self.cause

    def candidates(self, kind: str) -> list[str]:
        """Names that may be meant for a component of ``kind``: the loaded ones and the
        installed plugins not loaded (a plugin is often named after what it provides;
        they are not imported to see what they register)."""
        registry = self.registry
        return sorted({*registry.names(kind), *registry.idle()})

    def lookup(self, kind: str, name: str, path: str) -> Registration | None:
        """The component ``name`` of ``kind``, or None after noting why there is none
        (the registry's message names what is available and the close names)."""
        try:
            return self.registry.get(kind, name)
        except PluginError as err:
            self.add(f"{err} @ {path}", err)
            return None

    def settings(
        self, reg: Registration, options: Mapping[str, Any], path: str, known: Iterable[str]
    ) -> Any:
        """The component's settings structured from ``options`` (None after a problem)."""
        settings, lines = settings_errors(reg.settings, options, path, known)
        self.lines.extend(lines)
        return settings


def validate(config: Config, registry: Registry) -> None:
    """Check ``config`` against the plugins ``registry`` can load; raise one
    :class:`~llmx.ConfigError` naming every problem, each with its path.

    Loads the plugins the config names (as the first request would), but builds no
    component and does no I/O. A broken plugin that ``[plugins] strict`` makes an error
    is raised as the plugin's own :class:`~llmx.PluginError`.
    """
    problems = _Problems(config, registry)
    _check_plugins(problems)
    problems.raise_if_any()  # an unknown name in enable would fail assembling in strict mode
    registry.assemble()
    _check_listeners(problems)
    _check_providers(problems)
    _check_aliases(problems)
    _check_routing(problems)
    _check_retry(problems)
    _check_cache(problems)
    uses_limits = any(p.limits is not None and p.limits.active for p in config.providers.values())
    _check_component(problems, "limiter", "limiter", "local", used=uses_limits)
    uses_store = bool(config.providers or config.aliases)
    _check_component(problems, "breaker_store", "breaker_store", "memory", used=uses_store)
    problems.raise_if_any()


def _check_plugins(problems: _Problems) -> None:
    plugins = problems.config.plugins
    known = {p.name for p in problems.registry.plugins()} | {BUILTINS}
    for field, names in (("enable", plugins.enable), ("disable", plugins.disable)):
        for i, name in enumerate(names):
            if name not in known:
                installed = ", ".join(sorted(known))
                problems.add(
                    f"no installed plugin is named {name!r} (installed: {installed}); install "
                    f"it or remove it from [plugins] {field} "
                    f"@ $.plugins.{field}[{i}]{did_you_mean([name], known)}"
                )


def _check_listeners(problems: _Problems) -> None:
    """Each ``[plugins.NAME]`` table names a listener (loading the plugin ``NAME`` as a
    component name does) and fits its settings class; listeners without a table must
    accept their defaults."""
    tables = problems.config.plugins.settings
    for name, table in tables.items():
        reg = problems.lookup("listener", name, f"$.plugins.{name}")
        if reg is not None:
            problems.settings(reg, table, f"$.plugins.{name}", ())
    for reg in problems.registry.registrations("listener"):
        if reg.name not in tables:
            problems.settings(reg, {}, f"$.plugins.{reg.name}", ())


def _check_providers(problems: _Problems) -> None:
    for name, p in problems.config.providers.items():
        path = f"$.providers.{name}"
        reg = problems.lookup("provider", p.type, f"{path}.type")
        if reg is not None:
            problems.settings(reg, p.options, path, _PROVIDER_KEYS)


def _check_instance(problems: _Problems, ref: str, path: str) -> None:
    """``ref``'s instance is configured, or an installed provider type (implicit)."""
    config, registry = problems.config, problems.registry
    instance = ref.partition("/")[0]
    if instance in config.providers:
        return
    try:
        registry.get("provider", instance)
    except PluginNotInstalledError as err:
        configured = ", ".join(sorted(config.providers)) or "none"
        types = ", ".join(problems.candidates("provider")) or "none"
        hint = did_you_mean([instance], [*config.providers, *problems.candidates("provider")])
        problems.add(
            f"unknown provider instance {instance!r} in {ref!r}: it is neither a configured "
            f"instance (configured: {configured}) nor an installed provider type "
            f"(known: {types}); add [providers.{instance}] or correct the name @ {path}{hint}",
            err,
        )
    except PluginError as err:
        problems.add(f"provider instance {instance!r} in {ref!r}: {err} @ {path}", err)


def _check_aliases(problems: _Problems) -> None:
    config = problems.config
    for name, alias in config.aliases.items():
        path = f"$.aliases.{name}"
        if alias.strategy is not None:
            _check_strategy(problems, alias.strategy, f"{path}.strategy")
        for ref in alias.candidates:
            _check_instance(problems, ref, path)
    model = config.default_model
    if model is not None and model not in config.aliases:
        if "/" in model:
            _check_instance(problems, model, "$.default_model")
        else:
            hint = did_you_mean([model], config.aliases)
            problems.add(
                f"default_model {model!r} is neither an alias nor of the form "
                f"'instance/model' @ $.default_model{hint}"
            )


def _check_routing(problems: _Problems) -> None:
    section = problems.config.routing
    name = section.name or "priority"
    reg = problems.lookup("routing_strategy", name, "$.routing.strategy")
    if reg is None:
        return
    settings = problems.settings(reg, section.options, "$.routing", ["strategy"])
    # A strategy that orders by another one (``hedged``) names it in ``base``.
    base = getattr(settings, "base", None)
    if isinstance(base, str):
        if base == name:
            problems.add(f"strategy {name!r} cannot use itself as its base @ $.routing.base")
        else:
            _check_strategy(problems, base, "$.routing.base")


def _check_strategy(problems: _Problems, name: str, path: str) -> None:
    """A strategy named outside ``[routing] strategy``: it exists, and (as its settings
    come from ``[routing]`` only when it is that strategy) its defaults suffice."""
    reg = problems.lookup("routing_strategy", name, path)
    if reg is not None and name != (problems.config.routing.name or "priority"):
        problems.settings(reg, {}, path, ())


def _check_retry(problems: _Problems) -> None:
    """``[retry]``, and each instance's ``retry`` overrides merged over it (checked even
    when no instance is configured)."""
    config = problems.config
    section = config.retry
    reg = problems.lookup("retry_policy", section.name or "stamina", "$.retry.policy")
    if reg is None:
        return
    before = len(problems.lines)
    problems.settings(reg, section.options, "$.retry", ["policy"])
    if len(problems.lines) > before:
        return  # the instances' merged settings would repeat the same problems
    for name, p in config.providers.items():
        if p.retry:
            merged = {**section.options, **p.retry}
            problems.settings(reg, merged, f"$.providers.{name}.retry", [])


def _check_cache(problems: _Problems) -> None:
    config = problems.config
    section = config.cache
    layered = any(p.cache is not None for p in config.providers.values()) or any(
        a.cache is not None for a in config.aliases.values()
    )
    if not (section.configured or layered):
        return  # no cache stage is built
    reg = problems.lookup("cache", section.name or "memory", "$.cache.backend")
    if reg is not None:
        known = ["backend", "namespace", *(f.name for f in attrs.fields(CachePolicy))]
        problems.settings(reg, section.options, "$.cache", known)


def _check_component(
    problems: _Problems, kind: str, section_name: str, default: str, *, used: bool
) -> None:
    """A ``[limiter]``/``[breaker_store]``-like section: checked when it names a component
    or sets keys, or when the client will build it."""
    section: ComponentConfig = getattr(problems.config, section_name)
    if not (used or section.name is not None or section.options):
        return
    reg = problems.lookup(kind, section.name or default, f"$.{section_name}.backend")
    if reg is not None:
        problems.settings(reg, section.options, f"$.{section_name}", ["backend"])

"""Model sources: models a plugin fetches onto this machine (``llmx models pull``) and
answers with when nothing is configured (``llmx chat`` with no model and no provider).

The core names no such plugin. A plugin offers its models by registering a
:class:`ModelSource` through the ``llmx_register_model_sources`` hook; the CLI asks the
sources of every plugin the registry may load, and only on those two paths, so no other
command imports a plugin for this. ``llmx-provider-llamacpp`` is the one in this
repository.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from llmx._errors import LlmxError, PluginLoadError

if TYPE_CHECKING:
    from llmx._registry import Registry

log = logging.getLogger("llmx.registry")

HOOK = "llmx_register_model_sources"
"""The hook through which plugins register model sources."""

INSTALL_HINT = (
    "install a plugin that runs models on this machine, such as llmx-provider-llamacpp "
    "(contrib/llmx-provider-llamacpp in the llmx repository; scripts/bootstrap installs it)"
)
"""What to do when no installed plugin offers local models (a message, not a behaviour:
nothing in the core depends on that distribution)."""


@attrs.frozen
class DefaultModel:
    """The model a :class:`ModelSource` offers when nothing is configured.

    ``model`` is a model reference (``"llamacpp/smollm2"``); ``ready`` says whether it
    can answer now (its files are on this machine); otherwise ``setup`` says what to run
    to make it ready (``"llmx models pull smollm2 (into ~/.local/share/llmx/models)"``).
    ``max_tokens`` is the answer length ``llmx chat`` uses with it unless told otherwise
    (None: no limit).
    """

    model: str
    ready: bool
    setup: str = ""
    max_tokens: int | None = None


class ModelSource(Protocol):
    """Models a plugin can fetch onto this machine and answer with without configuration.

    Registered with ``register(name, factory)`` in ``llmx_register_model_sources``;
    ``factory()`` builds it when the CLI needs it. Its methods may do I/O (``pull``
    downloads); the hook that registers it does none.
    """

    def models(self) -> Sequence[str]:
        """The names :meth:`pull` accepts, the default one first."""
        ...

    def pull(
        self,
        name: str,
        *,
        directory: Path | None,
        source: str | None,
        force: bool,
        log: Callable[[str], None],
    ) -> Path:
        """Fetch the model ``name`` and return its path (``llmx models pull NAME``).

        ``directory`` overrides where models go (``--dir``), ``source`` names one way of
        fetching it among those the source offers (``--source``; None: every way, in
        the source's order), ``force`` fetches it again even if present, and ``log``
        receives progress lines. Failures raise an :class:`llmx.LlmxError` whose message
        says what failed and how to fix it.
        """
        ...

    def default_model(self) -> DefaultModel | None:
        """The model ``llmx chat`` may answer with when nothing is configured, or None."""
        ...


@attrs.frozen
class RegisteredSource:
    """One registered model source and the plugin it came from."""

    name: str
    source: ModelSource
    plugin: str
    distribution: str | None
    version: str | None


def model_sources(registry: Registry) -> list[RegisteredSource]:
    """The model sources of every plugin ``registry`` may load, in registration order.

    Loads those plugins first (``Registry.load_all``). Each plugin's hook is called on
    its own (pluggy's ``subset_hook_caller``) with a ``register`` callback built for it,
    so every source knows its distribution; a plugin whose hook or factory fails is
    logged and skipped, never taking the others down.
    """
    infos = {p.name: p for p in registry.load_all()}
    pm = registry.plugin_manager
    hook = getattr(pm.hook, HOOK, None)
    if hook is None:
        return []
    found: list[RegisteredSource] = []
    everyone = pm.get_plugins()
    for impl in hook.get_hookimpls():
        info = infos.get(impl.plugin_name)
        dist = info.distribution if info is not None else None
        version = info.version if info is not None else None
        staged: list[tuple[str, Callable[[], Any]]] = []
        only_this = pm.subset_hook_caller(
            HOOK, remove_plugins=[p for p in everyone if p is not impl.plugin]
        )
        try:
            only_this(register=_register_into(staged))
            built = [(name, factory()) for name, factory in staged]
        except Exception as err:
            where = f"plugin {impl.plugin_name!r}" + (f" ({dist} {version})" if dist else "")
            msg = f"{where} failed while registering model sources: {type(err).__name__}: {err}"
            failure = PluginLoadError(
                msg,
                plugin=impl.plugin_name,
                distribution=dist,
                version=version,
            )
            log.warning("%s", failure)
            continue
        found.extend(
            RegisteredSource(name, source, impl.plugin_name, dist, version)
            for name, source in built
        )
    return found


def _register_into(staged: list[tuple[str, Callable[[], Any]]]) -> Callable[..., None]:
    """The ``register(name, factory)`` callback of one plugin's hook call."""

    def register(name: str, factory: object, *, settings: type | None = None) -> None:
        if not isinstance(name, str) or not name:
            msg = "a model source was registered without a name"
            raise TypeError(msg)
        if not callable(factory):
            msg = f"model source {name!r} was registered with a factory that is not callable"
            raise TypeError(msg)
        if settings is not None:
            msg = f"model source {name!r} was registered with settings; model sources take none"
            raise TypeError(msg)
        staged.append((name, factory))

    return register


def install_hint(registry: Registry) -> str:
    """What to do when no plugin offers models: :data:`INSTALL_HINT`, plus enabling it when
    ``registry`` loads only the plugins ``[plugins] enable`` names."""
    if registry.autoload:
        return INSTALL_HINT
    return f"{INSTALL_HINT}; plugin autoload is off, so add it to [plugins] enable too"


def default_models(registry: Registry) -> list[DefaultModel]:
    """What each model source offers when nothing is configured (ready ones first)."""
    offers = [s.source.default_model() for s in model_sources(registry)]
    return sorted((o for o in offers if o is not None), key=lambda o: not o.ready)


def pull(
    registry: Registry,
    name: str | None,
    *,
    directory: Path | None = None,
    source: str | None = None,
    force: bool = False,
    log: Callable[[str], None] = lambda _line: None,
) -> Path:
    """Fetch ``name`` (None: the first source's default model) with the source that
    offers it; an :class:`llmx.LlmxError` says which plugin to install, or which names
    the installed ones know."""
    sources = model_sources(registry)
    if not sources:
        msg = f"no installed plugin fetches models: {install_hint(registry)}"
        raise LlmxError(msg)
    if name is None:
        for candidate in sources:
            names = candidate.source.models()
            if names:
                return candidate.source.pull(
                    names[0], directory=directory, source=source, force=force, log=log
                )
        msg = "the installed model sources offer no model to fetch"
        raise LlmxError(msg)
    for candidate in sources:
        if name.lower() in (n.lower() for n in candidate.source.models()):
            return candidate.source.pull(
                name, directory=directory, source=source, force=force, log=log
            )
    known = "; ".join(
        f"{', '.join(s.source.models()) or 'none'} (from {s.distribution or s.plugin})"
        for s in sources
    )
    msg = f"no installed plugin knows how to fetch a model called {name!r}; known: {known}"
    raise LlmxError(msg)

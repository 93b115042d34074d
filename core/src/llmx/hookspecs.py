"""The llmx plugin contract: the hook specifications plugins implement.

A plugin is a module (or object) with functions decorated by :data:`llmx.plugin.hookimpl`,
registered through an entry point in the ``llmx`` group whose name is the plugin's
name::

    [project.entry-points.llmx]
    mycloud = "llmx_mycloud"

Until llmx 1.0, the distribution's ``Requires-Dist: llmx~=0.1.0`` is what keeps a plugin
and llmx compatible. A plugin may also declare the contract version it was written
for, as a module attribute (``llmx_contract = "1.1"``); a declared version newer than
:data:`CONTRACT_VERSION` is refused with "upgrade llmx".

Two kinds of hooks:

* **Registration hooks** (``llmx_register_*``: providers, caches, rate limiters,
  breaker stores, retry policies, routing strategies, commands) are called once per plugin when the
  registry loads it. Each receives a ``register(name, factory, *, settings=None)``
  callback that the registry builds for that plugin, so it always knows which
  distribution contributed what. They register components; they do no I/O. A
  component's factory is called as ``factory(settings)`` with an instance of the
  registered settings class, or as ``factory()`` when none was registered (providers:
  ``factory(ctx)``). What it builds is checked against its protocol in
  :mod:`llmx._components` before use: a missing member is a :class:`~llmx.PluginError`
  naming the plugin.
* **Event hooks** (``llmx_request_start``, ``llmx_attempt_start``, ``llmx_attempt_end``,
  ``llmx_request_end``, ``llmx_request_error``, ``llmx_request_cancelled``,
  ``llmx_breaker_transition``) are called on the hot path for every request. They must be
  quick and must not raise; they receive one frozen event object. A plugin implements
  them as module functions, or on a *listener* object it registers with
  ``llmx_register_listeners`` (built per client from its ``[plugins.NAME]`` settings).

The contract evolves by adding: a new argument to a spec breaks no implementation
(pluggy passes each implementation only the arguments it names), and anything removed
goes through a deprecation first (pluggy's ``warn_on_impl_args`` with
:func:`llmx.deprecation.hook_argument`). :data:`CONTRACT_VERSION` is bumped in its minor
part for additions and in its major part for removals; docs/versioning.md has what each
version added and which llmx releases accept which.

Framework authors add hook specs of their own with :meth:`llmx.Registry.add_hookspecs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from llmx._events import (
        AttemptEnd,
        AttemptStart,
        BreakerTransition,
        RequestCancelled,
        RequestEnd,
        RequestError,
        RequestStart,
    )

CONTRACT_VERSION = "1.2"
"""The contract version this llmx speaks, as ``"MAJOR.MINOR"``."""

ADDED_IN: dict[str, str] = {
    "llmx_register_providers": "1.0",
    "llmx_register_caches": "1.0",
    "llmx_register_retry_policies": "1.0",
    "llmx_register_routing_strategies": "1.0",
    "llmx_register_commands": "1.0",
    "llmx_request_start": "1.0",
    "llmx_attempt_end": "1.0",
    "llmx_request_end": "1.0",
    "llmx_request_error": "1.0",
    "llmx_breaker_transition": "1.0",
    "llmx_register_limiters": "1.1",
    "llmx_register_breaker_stores": "1.1",
    "llmx_register_model_sources": "1.1",
    "llmx_attempt_start": "1.2",
    "llmx_register_listeners": "1.2",
    "llmx_request_cancelled": "1.2",
}
"""The contract version each hook spec appeared in (hook name -> ``"MAJOR.MINOR"``), for
the hook reference and for plugins that check what their llmx offers. A new hook spec
gets its entry here (a test checks that every spec has one, none newer than
:data:`CONTRACT_VERSION`)."""

hookspec = pluggy.HookspecMarker("llmx")
"""Marker for hook specifications (for framework authors adding their own)."""

hookimpl = pluggy.HookimplMarker("llmx")
"""Marker for hook implementations: decorate a plugin's hook functions with it."""


class Register(Protocol):
    """The callback a registration hook receives: ``register(name, factory, settings=...)``."""

    def __call__(self, name: str, factory: Any, *, settings: type | None = None) -> None:
        """Register ``factory`` under ``name``, with an optional attrs settings class."""
        ...


@hookspec
def llmx_register_providers(register: Register) -> None:
    """Register provider types.

    Call ``register(type_name, factory, settings=SettingsClass)`` once per provider
    type. ``factory(ctx: ProviderContext) -> Provider`` builds one provider instance;
    ``settings`` is an optional attrs class validating the instance's type-specific
    keys in ``[providers.NAME]`` (keys it does not declare are config errors).

    Called once per plugin when the registry loads it; the return value is ignored.
    """


@hookspec
def llmx_register_caches(register: Register) -> None:
    """Register cache backends.

    Call ``register(name, factory, settings=SettingsClass)``; ``factory(settings)``
    returns a :class:`~llmx.plugin.Cache`. ``[cache] backend = NAME`` chooses one (the core
    registers ``memory`` and ``sqlite``); the section's keys other than the cache
    policy's (``mode``, ``ttl``, ``cache_nonzero_temperature``, ``namespace``) are
    structured into ``settings``. Called once per plugin at load; result ignored.
    """


@hookspec
def llmx_register_limiters(register: Register) -> None:
    """Register rate-limiter backends: where client-side rate-limit buckets live.

    Call ``register(name, factory, settings=SettingsClass)``; ``factory(settings)``
    returns a :class:`~llmx.plugin.RateLimiter`. ``[limiter] backend = NAME`` chooses one (the
    core's default: ``local``); the section's other keys are structured into
    ``settings``. Called once per plugin at load; the return value is ignored.

    Added in contract 1.1.
    """


@hookspec
def llmx_register_breaker_stores(register: Register) -> None:
    """Register breaker stores: where circuit-breaker state and Retry-After cooldowns
    live, so that processes can share them.

    Call ``register(name, factory, settings=SettingsClass)``; ``factory(settings)``
    returns a :class:`~llmx.plugin.BreakerStore`. ``[breaker_store] backend = NAME`` chooses
    one (the core's default: ``memory``, private to each client). Called once per
    plugin at load; the return value is ignored.

    Added in contract 1.1.
    """


@hookspec
def llmx_register_retry_policies(register: Register) -> None:
    """Register retry policies.

    Call ``register(name, factory, settings=SettingsClass)``; ``factory(settings)``
    returns a :class:`~llmx.plugin.RetryPolicy`. Called once per plugin at load; result ignored.
    """


@hookspec
def llmx_register_routing_strategies(register: Register) -> None:
    """Register routing strategies.

    Call ``register(name, factory, settings=SettingsClass)``; ``factory(settings)``
    returns a :class:`~llmx.plugin.RoutingStrategy`. Called once per plugin at load; result
    ignored.
    """


@hookspec
def llmx_register_commands(register: Register) -> None:
    """Register CLI sub-commands.

    Call ``register(name, command)`` with a :class:`click.Command`; it appears as
    ``llmx NAME``. Only enabled plugins contribute commands, so ``llmx --help`` stays
    fast however many plugins are installed. Called once per plugin at load.
    """


@hookspec
def llmx_register_model_sources(register: Register) -> None:
    """Register model sources: models a plugin can fetch onto this machine and answer
    with when nothing is configured.

    Call ``register(name, factory)``; ``factory()`` returns a
    :class:`~llmx.plugin.ModelSource`. ``llmx models pull NAME`` fetches ``NAME`` with
    the source that lists it, and ``llmx chat`` with no model chosen and no provider
    configured answers with the first source whose
    :meth:`~llmx.plugin.ModelSource.default_model` is ready (or says what to run to make
    one ready). The core knows no such plugin by name.

    Called only by those two commands, once per plugin, after they load every plugin the
    registry may load (not when the registry loads a plugin); the return value is
    ignored. The hook registers; the source's methods do the I/O.

    Added in contract 1.1.
    """


@hookspec
def llmx_register_listeners(register: Register) -> None:
    """Register listeners: objects whose methods implement event hooks, built from the
    plugin's own config table ``[plugins.NAME]``.

    Call ``register(name, factory, settings=SettingsClass)``. When a client is created,
    ``factory(settings)`` (``factory()`` without a settings class) is called once per
    registry with ``[plugins.NAME]`` structured into ``settings`` (an absent table gives
    the class's defaults; unknown keys are config errors with their path), and the
    object it returns is registered as a plugin: its ``@hookimpl`` methods receive the
    events (``llmx_request_start`` ...). Only event hooks may be implemented on it. A
    ``[plugins.NAME]`` table loads the plugin whose entry point is ``NAME``, as a
    component name does. The factory may start what the listener needs (a metrics
    endpoint); the hooks stay quick.

    Called once per plugin at load; the return value is ignored.

    Added in contract 1.2.
    """


@hookspec
def llmx_request_start(event: RequestStart) -> None:
    """A request entered the pipeline (before resolving, caching or routing).

    Called for every request, in the caller's task; every implementation runs and
    results are ignored. Must be quick and must not raise.
    """


@hookspec
def llmx_attempt_start(event: AttemptStart) -> None:
    """An attempt against one provider instance is about to be sent (admitted: cooldown,
    breaker, rate limits and concurrency slot passed; its clock started).

    Called once per attempt, retries, fallbacks and hedges included, in the task that
    makes the attempt, just before the provider is called; every implementation runs
    and results are ignored. ``event.kind`` says why the attempt was made (``first``,
    ``retry``, ``fallback``, ``hedge``); the attempt's :func:`llmx_attempt_end` carries the
    same ``request_id`` and ``attempt``. The hook may add HTTP headers to
    ``event.headers`` (trace-context propagation): they go with this attempt's request.
    Must be quick and must not raise.

    Added in contract 1.2.
    """


@hookspec
def llmx_attempt_end(event: AttemptEnd) -> None:
    """An attempt against one provider instance finished (success or failure).

    Called once per attempt, including retries and fallbacks; results are ignored.
    """


@hookspec
def llmx_request_end(event: RequestEnd) -> None:
    """A request succeeded; ``event.response`` is what the caller gets. Results ignored."""


@hookspec
def llmx_request_error(event: RequestError) -> None:
    """A request failed; ``event.error`` is what the caller gets. Results ignored."""


@hookspec
def llmx_request_cancelled(event: RequestCancelled) -> None:
    """A request ended without an answer or an error: its task was cancelled, or the
    caller closed its stream before the end. No ``llmx_request_end`` or
    ``llmx_request_error`` follows. Results ignored.

    Added in contract 1.2.
    """


@hookspec
def llmx_breaker_transition(event: BreakerTransition) -> None:
    """A provider instance's circuit breaker changed state (closed/open/half_open).

    Called when it happens, in the task whose attempt caused it; results are ignored.
    """

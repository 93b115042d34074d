"""Deprecations: how llmx (and a plugin, for its own names) retires a name without
breaking the code that uses it.

A deprecated name keeps working and warns with :class:`LlmxDeprecationWarning`, whose
message names what is deprecated, the release that removes it and what to use
instead::

    llmx.Thing is deprecated since llmx 0.2.0 and will be removed in llmx 0.3.0;
    use llmx.types.Thing instead

The warning points at the line that used the name (not at llmx), is a
:class:`DeprecationWarning` (so Python shows it in ``__main__``, pytest in tests, and
``-W error::DeprecationWarning`` turns it into an error), and can be singled out::

    import warnings
    from llmx.deprecation import LlmxDeprecationWarning

    warnings.simplefilter("error", LlmxDeprecationWarning)

The helpers, one per kind of name (each records a :class:`Deprecation`, listed by
:func:`deprecations`):

* a module attribute that moved or was renamed: :func:`moved_attributes` builds the
  module's ``__getattr__``;
* a function or method: the :func:`deprecated` decorator;
* a keyword argument that was renamed: the :func:`renamed_parameters` decorator;
* an argument of a hook spec: :func:`hook_argument` makes the warning for pluggy's
  ``hookspec(warn_on_impl_args=...)``;
* anything else: :func:`warn_deprecated` where the old form is detected.

The policy (how long a deprecated name lives, what a version number promises) is in
docs/versioning.md. Importing this module is cheap and does not import llmx's engine.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "Deprecation",
    "LlmxDeprecationWarning",
    "deprecated",
    "deprecations",
    "hook_argument",
    "moved_attributes",
    "renamed_parameters",
    "warn_deprecated",
]

P = ParamSpec("P")
R = TypeVar("R")

_RECORDED: list[Deprecation] = []


class LlmxDeprecationWarning(DeprecationWarning):
    """Warned when code uses a deprecated name of llmx or of a plugin that uses these
    helpers: the name still works, and will be removed in the release the message names.
    """


class Deprecation:
    """One deprecated name: what it is, since when, when it goes, what replaces it.

    ``name`` is how the user wrote it (``"llmx.Thing"``, ``"Client.complete(timeout_s=)"``);
    ``removed_in`` the version of ``package`` that removes it; ``instead`` the
    replacement, or None when there is none (then say why in ``reason``). A plain
    slotted class rather than attrs: a package's ``__init__`` may build these at import
    time, which must stay cheap.
    """

    __slots__ = ("instead", "name", "package", "reason", "removed_in", "since")

    def __init__(
        self,
        name: str,
        *,
        removed_in: str,
        instead: str | None = None,
        since: str | None = None,
        package: str = "llmx",
        reason: str | None = None,
    ) -> None:
        if not removed_in:
            msg = f"the deprecation of {name} needs removed_in, the version that removes it"
            raise ValueError(msg)
        self.name = name
        self.removed_in = removed_in
        self.instead = instead
        self.since = since
        self.package = package
        self.reason = reason

    def message(self) -> str:
        """The warning's text: what, since, removed in, instead."""
        since = f" since {self.package} {self.since}" if self.since else ""
        text = (
            f"{self.name} is deprecated{since} and will be removed in "
            f"{self.package} {self.removed_in}"
        )
        if self.instead:
            text += f"; use {self.instead} instead"
        if self.reason:
            text += f" ({self.reason})"
        return text

    def warn(self, stacklevel: int = 2) -> None:
        """Warn :class:`LlmxDeprecationWarning` at the caller's caller (``stacklevel=2``
        is the code that called the function calling ``warn``)."""
        warnings.warn(self.message(), LlmxDeprecationWarning, stacklevel=stacklevel + 1)

    def __repr__(self) -> str:
        return f"Deprecation({self.message()!r})"


def _record(deprecation: Deprecation) -> Deprecation:
    _RECORDED.append(deprecation)
    return deprecation


def deprecations() -> tuple[Deprecation, ...]:
    """Every deprecation recorded so far by the helpers of this module (those of modules
    not yet imported are not known). llmx's tests check that none of its own outlives
    the version it promised to remove it in."""
    return tuple(_RECORDED)


def warn_deprecated(
    name: str,
    *,
    removed_in: str,
    instead: str | None = None,
    since: str | None = None,
    package: str = "llmx",
    reason: str | None = None,
    stacklevel: int = 2,
) -> None:
    """Warn that ``name`` is deprecated, where the old form is detected by hand (a
    config form, a value of an argument). ``stacklevel=2`` points at the caller of the
    function that calls this."""
    Deprecation(
        name, removed_in=removed_in, instead=instead, since=since, package=package, reason=reason
    ).warn(stacklevel + 1)


def deprecated(
    *,
    removed_in: str,
    instead: str | None = None,
    since: str | None = None,
    package: str = "llmx",
    name: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function or method that is deprecated: each call warns, then runs it.

    ::

        @deprecated(removed_in="0.3.0", instead="Client.complete(..., timeout=)")
        def complete_with_timeout(...): ...

    ``name`` defaults to the function's qualified name. The docstring gains a line saying
    so.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        shown = name or f"{func.__module__}.{func.__qualname__}"
        deprecation = _record(
            Deprecation(
                shown + "()", removed_in=removed_in, instead=instead, since=since, package=package
            )
        )

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            deprecation.warn()
            return func(*args, **kwargs)

        wrapper.__doc__ = f"{func.__doc__ or ''}\n\nDeprecated: {deprecation.message()}.".lstrip()
        return wrapper

    return decorate


def renamed_parameters(
    renames: Mapping[str, str],
    *,
    removed_in: str,
    since: str | None = None,
    package: str = "llmx",
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function whose keyword arguments were renamed (``{"old": "new"}``): a
    call with the old name warns and is passed on under the new one; a call with both is
    a TypeError naming both.

    ::

        @renamed_parameters({"timeout_s": "timeout"}, removed_in="0.3.0")
        def complete(*, timeout: float | None = None): ...
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        where = func.__qualname__
        table = {
            old: _record(
                Deprecation(
                    f"the argument {old}= of {where}()",
                    removed_in=removed_in,
                    instead=f"{new}=",
                    since=since,
                    package=package,
                )
            )
            for old, new in renames.items()
        }

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for old, deprecation in table.items():
                if old in kwargs:
                    new = renames[old]
                    if new in kwargs:
                        msg = (
                            f"{where}() got both {old}= and {new}=; {old}= is the deprecated "
                            f"name of {new}=: pass only {new}="
                        )
                        raise TypeError(msg)
                    deprecation.warn()
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper

    return decorate


def moved_attributes(
    module: str,
    moved: Mapping[str, str],
    *,
    removed_in: str,
    since: str | None = None,
    package: str = "llmx",
    fallback: Callable[[str], Any] | None = None,
) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for attributes that moved or were renamed.

    ``moved`` maps each old name to its new home, ``"package.module:name"``. Asking
    ``module`` for an old name warns and returns the object from its new home; any other
    name goes to ``fallback`` (such as the ``__getattr__`` of
    :func:`llmx.plugin.lazy_exports`), else is an AttributeError::

        __getattr__ = moved_attributes(
            __name__, {"OldName": "mypkg.types:NewName"}, removed_in="0.3.0",
            fallback=lazy_exports(__name__, _EXPORTS, globals())[0],
        )

    The old names cost nothing until used: the lookup runs only for names the module
    does not have.
    """
    table: dict[str, tuple[str, str, Deprecation]] = {}
    for old, target in moved.items():
        home, sep, new = target.partition(":")
        if not sep or not home or not new:
            msg = f"moved_attributes: {old!r} -> {target!r}: write the new home as 'module:name'"
            raise ValueError(msg)
        deprecation = _record(
            Deprecation(
                f"{module}.{old}",
                removed_in=removed_in,
                instead=f"{home}.{new}",
                since=since,
                package=package,
            )
        )
        table[old] = (home, new, deprecation)

    def __getattr__(name: str) -> Any:
        entry = table.get(name)
        if entry is None:
            if fallback is not None:
                return fallback(name)
            msg = f"module {module!r} has no attribute {name!r}"
            raise AttributeError(msg)
        home, new, deprecation = entry
        deprecation.warn()
        return getattr(importlib.import_module(home), new)

    return __getattr__


def hook_argument(
    hook: str,
    argument: str,
    *,
    removed_in: str,
    instead: str | None = None,
    since: str | None = None,
    package: str = "llmx",
) -> LlmxDeprecationWarning:
    """The warning for a hook argument that goes away, for pluggy's
    ``hookspec(warn_on_impl_args={argument: hook_argument(...)})``: pluggy warns it when
    a plugin's implementation still takes the argument (the spec keeps passing it until
    ``removed_in``).

    ::

        @hookspec(warn_on_impl_args={"config": hook_argument(
            "llmx_request_start", "config", removed_in="0.3.0", instead="event.config")})
        def llmx_request_start(event, config): ...
    """
    deprecation = _record(
        Deprecation(
            f"the argument {argument!r} of the hook {hook}",
            removed_in=removed_in,
            instead=instead,
            since=since,
            package=package,
        )
    )
    return LlmxDeprecationWarning(deprecation.message())

"""Lazy module attributes: a package's public names imported from their private modules
on first use (PEP 562), so importing the package costs next to nothing."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    module: str,
    exports: Mapping[str, str],
    namespace: dict[str, Any],
    *,
    hint: Callable[[str], str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the module ``module`` whose public names are
    ``exports`` (name -> the module that defines it). A name is imported on first use
    and then kept in ``namespace`` (the module's ``globals()``), so later lookups are
    plain attribute reads; ``hint(name)`` may add advice to the AttributeError of an
    unknown name. Use it as::

        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

    ``__dir__`` lists the exports only: a plugin module takes just ``__getattr__``
    (``lazy_exports(...)[0]``), since pluggy finds its hook implementations with
    ``dir(module)``.
    """
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            msg = f"module {module!r} has no attribute {name!r}"
            if hint is not None:
                msg += hint(name)
            raise AttributeError(msg)
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__

"""The public namespaces: ``llmx`` for applications, ``llmx.plugin`` for plugin authors,
``llmx.types`` for names needed only in annotations.

Both are small, lazy and documented: every exported name resolves, carries its own
docstring (a class's or function's ``__doc__``, or the string literal after a module-level
assignment for aliases and constants), and importing either pulls in no heavy dependency.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import subprocess
import sys
from functools import cache
from types import ModuleType

import pytest

import llmx
import llmx.deprecation
import llmx.plugin
import llmx.types

NAMESPACES = [llmx, llmx.plugin, llmx.types, llmx.deprecation]


def test_the_app_namespace_stays_small() -> None:
    assert len(llmx.__all__) <= 60, sorted(llmx.__all__)


def test_the_namespaces_do_not_overlap() -> None:
    for a, b in itertools.combinations(NAMESPACES, 2):
        assert set(a.__all__).isdisjoint(b.__all__), (a.__name__, b.__name__)


def test_a_moved_name_says_where_it_lives() -> None:
    with pytest.raises(AttributeError, match=r"from llmx\.types import Role"):
        llmx.Role  # noqa: B018
    with pytest.raises(AttributeError, match=r"from llmx\.plugin import hookimpl"):
        llmx.hookimpl  # noqa: B018


@cache
def _attribute_docstrings(module_name: str) -> frozenset[str]:
    """Names assigned at module level and followed by a string literal (their docstring)."""
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    documented = set()
    body = tree.body
    for node, following in itertools.pairwise(body):
        if not (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
            and following.value.value.strip()
        ):
            continue
        if isinstance(node, ast.Assign):
            documented.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            documented.add(node.target.id)
    return frozenset(documented)


def _defining_module(namespace: ModuleType, name: str) -> str:
    exports: dict[str, str] = namespace._EXPORTS  # type: ignore[attr-defined]
    return exports.get(name, namespace.__name__)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [(ns, name) for ns in NAMESPACES for name in ns.__all__],
    ids=lambda v: v.__name__ if isinstance(v, ModuleType) else str(v),
)
def test_every_exported_name_resolves_and_is_documented(namespace: ModuleType, name: str) -> None:
    value = getattr(namespace, name)
    assert value is not None
    if inspect.isclass(value):
        doc = vars(value).get("__doc__")
        assert isinstance(doc, str), f"{name} has no docstring of its own"
        assert doc.strip(), f"{name} has an empty docstring"
    elif inspect.isfunction(value):
        assert value.__doc__, f"{name} has no docstring"
        assert value.__doc__.strip(), f"{name} has an empty docstring"
    else:  # an alias, a constant or a marker: documented where it is assigned
        assert name in _attribute_docstrings(_defining_module(namespace, name)), (
            f"{name} has no docstring after its assignment in {_defining_module(namespace, name)}"
        )


def test_a_plugin_name_asked_of_llmx_points_to_llmx_plugin() -> None:
    with pytest.raises(AttributeError, match=r"from llmx\.plugin import Provider"):
        llmx.Provider  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match=r"has no attribute 'no_such_name'$"):
        llmx.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        llmx.plugin.Client  # type: ignore[attr-defined]  # noqa: B018


def test_dir_lists_the_exports() -> None:
    assert dir(llmx) == sorted(llmx.__all__)
    assert dir(llmx.plugin) == sorted(llmx.plugin.__all__)


@pytest.mark.parametrize("module", ["aiohttp", "cattrs", "click", "importlib_metadata", "pluggy"])
def test_import_llmx_plugin_is_light(module: str) -> None:
    code = f"import llmx.plugin, sys; print({module!r} in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"

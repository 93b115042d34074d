"""The core package's shape, read from its source with ``ast`` (nothing is imported).

* No import cycles: every ``import`` and ``from ... import`` statement counts, wherever
  it is — at the top, inside a function, under ``TYPE_CHECKING`` — because a cycle that
  only exists for the type checker still means a name lives in the wrong module.
* No class outside ``llmx.testing`` has more than :data:`MAX_METHODS` methods.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs

import llmx

SRC = Path(llmx.__file__).resolve().parent
"""core/src/llmx (the editable install points at the source tree)."""

MAX_METHODS = 20

TOO_BIG_FOR_NOW: set[str] = set()
"""Classes known to have more than MAX_METHODS methods; this list only shrinks."""


@attrs.frozen
class Edge:
    """``source`` imports ``target`` at ``line``."""

    source: str
    target: str
    line: int


def modules_of(root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the package at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """``name`` or its longest prefix that is one of ``modules`` (None: not ours)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> Iterator[Edge]:
    """The modules of ``modules`` that ``module`` imports, anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # ``from llmx import hookspecs`` imports a module; ``from llmx import Client``
            # imports the package.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names
            ]
        known = {_known(target, modules) for target in targets}
        for target in sorted(k for k in known if k is not None and k != module):
            yield Edge(module, target, node.lineno)


def import_graph(root: Path) -> dict[str, list[Edge]]:
    """Every module of the package at ``root`` and the imports it makes of the package."""
    modules = modules_of(root)
    return {name: list(imports_of(name, path, modules)) for name, path in modules.items()}


def cycles(graph: Mapping[str, list[Edge]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative), each sorted; an empty list means the graph has no cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            edge = next(edges, None)
            if edge is not None:
                target = edge.target
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(component: list[str], graph: Mapping[str, list[Edge]]) -> str:
    """The imports that tie ``component`` together, one per line with its file and line."""
    members = set(component)
    lines = [
        f"  {e.source} -> {e.target} ({graph_path(e.source)}:{e.line})"
        for name in component
        for e in graph[name]
        if e.target in members
    ]
    return "\n".join(lines)


def graph_path(module: str) -> str:
    """Where ``module``'s source is, relative to core/src, for messages."""
    return str(modules_of(SRC)[module].relative_to(SRC.parent))


def test_the_core_has_no_import_cycle() -> None:
    graph = import_graph(SRC)
    found = cycles(graph)
    report = "\n".join(describe(c, graph) for c in found)
    assert found == [], f"import cycles in llmx (move the shared name to a lower module):\n{report}"


def test_the_import_graph_counts_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n",
        "a.py": "def f():\n    from . import b\n",
        "b.py": "import pkg.sub.c\n",
        "sub/__init__.py": "",
        "sub/c.py": "from ..d import D\n",
        "d.py": "from pkg import Name\nimport os\n",
        "e.py": "from pkg.sub import c\n",
    }
    for name, text in sources.items():
        (pkg / name).write_text(text)

    graph = import_graph(pkg)

    targets = {name: sorted(e.target for e in edges) for name, edges in graph.items()}
    assert targets == {
        "pkg": ["pkg.a"],  # under TYPE_CHECKING
        "pkg.a": ["pkg.b"],  # relative, inside a function
        "pkg.b": ["pkg.sub.c"],  # absolute, dotted
        "pkg.sub": [],
        "pkg.sub.c": ["pkg.d"],  # relative, two levels up
        "pkg.d": ["pkg"],  # a name from the package itself (os is not ours)
        "pkg.e": ["pkg.sub.c"],  # a module from a package
    }
    assert cycles(graph) == [["pkg", "pkg.a", "pkg.b", "pkg.d", "pkg.sub.c"]]


def _is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``@typing.overload`` signature: a type, not a method of its own."""
    return any(
        (isinstance(d, ast.Name) and d.id == "overload")
        or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in node.decorator_list
    )


def method_counts(root: Path) -> dict[str, int]:
    """``{module.Class: number of functions defined in its body}`` outside ``.testing``
    (``@overload`` signatures are not counted: the method they type is)."""
    counts = {}
    for module, path in modules_of(root).items():
        if module.startswith(f"{root.name}.testing"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                functions = (ast.FunctionDef, ast.AsyncFunctionDef)
                counts[f"{module}.{node.name}"] = sum(
                    isinstance(b, functions) and not _is_overload(b) for b in node.body
                )
    return counts


def test_no_class_has_more_than_twenty_methods() -> None:
    counts = method_counts(SRC)

    too_big = {name: n for name, n in counts.items() if n > MAX_METHODS}
    assert set(too_big) <= TOO_BIG_FOR_NOW, (
        f"classes with more than {MAX_METHODS} methods: {too_big}; split them by concern"
    )
    fixed = {name for name in TOO_BIG_FOR_NOW if counts.get(name, 0) <= MAX_METHODS}
    assert not fixed, f"remove {sorted(fixed)} from TOO_BIG_FOR_NOW: they are small enough now"


def test_registering_the_builtins_imports_no_backend_library() -> None:
    """The SQLite cache's settings live next to it; sqlite3 loads only when one is built."""
    import subprocess
    import sys

    code = "import sys, llmx._builtins; print('sqlite3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

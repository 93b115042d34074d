"""The generated pages of the documentation site: never hand-kept, written at build time.

``mkdocs build`` runs this file through mkdocs-gen-files (``mkdocs.yml``), which puts the
pages it writes into the site without writing them into ``docs/``:

* ``reference/api/*.md`` — the API reference of the public namespaces (``llmx``,
  ``llmx.types``, ``llmx.structured``, ``llmx.requestlog``, ``llmx.plugin``, ``llmx.deprecation``, ``llmx.testing``): one
  mkdocstrings entry per name of each namespace's ``__all__``, read at build time;
* ``reference/config.md`` — every config key from the typed config classes of
  ``llmx._config`` (type, default, environment override, example), and the keys of every
  installed plugin's components (provider types, cache backends, ...) from the settings
  classes they register;
* ``reference/hooks.md`` — every hook spec of ``llmx.hookspecs``, with the contract
  version it appeared in (``llmx.hookspecs.ADDED_IN``);
* ``reference/cli.md`` — every command and option of the ``llmx`` click parser.

``tests/test_docs_site.py`` imports this module to check that every public name, config
key and hook has a description (:func:`missing_descriptions`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import json
import re
import textwrap
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

NAMESPACES = (
    "llmx",
    "llmx.types",
    "llmx.structured",
    "llmx.requestlog",
    "llmx.plugin",
    "llmx.deprecation",
    "llmx.testing",
)
"""The public namespaces whose ``__all__`` the API reference covers."""

_KINDS = {
    # config section -> the component kind its name chooses (llmx._registry)
    "cache": "cache",
    "retry": "retry_policy",
    "routing": "routing_strategy",
    "limiter": "limiter",
    "breaker_store": "breaker_store",
}


# -- descriptions --------------------------------------------------------------------------------


@functools.cache
def _attribute_docstrings(cls: type) -> dict[str, str]:
    """The attribute docstrings of ``cls`` and its bases: the string literal right after a
    field (``deadline: float | None = None`` then ``\"\"\"...\"\"\"``), as griffe and Sphinx
    read them."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                out[node.target.id] = inspect.cleandoc(after.value.value)
    return out


_SENTENCE = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z`(])")


def _sentences(text: str) -> list[str]:
    """The sentences of a docstring's prose (a paragraph ends a sentence)."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    return [s for p in paragraphs for s in _SENTENCE.split(p) if s]


def _clauses(sentence: str) -> list[str]:
    """The parts of a sentence between semicolons outside parentheses."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(sentence):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ";" and depth == 0:
            out.append(sentence[start:i].strip())
            start = i + 1
    out.append(sentence[start:].strip())
    return [c for c in out if c]


def field_description(cls: type, name: str) -> str:
    """What the class says about its field ``name``: the field's attribute docstring, else
    the sentences of the class docstrings (its own, then its bases') that name it as
    ````name````. Empty when neither does: :func:`missing_descriptions` reports that."""
    own = _attribute_docstrings(cls).get(name)
    if own:
        return " ".join(own.split())
    for klass in cls.__mro__:
        doc = klass.__dict__.get("__doc__") or ""
        named = re.compile(rf"``{re.escape(name)}(\s*=[^`]*)?``")
        hits = [s for s in _sentences(inspect.cleandoc(doc)) if named.search(s)]
        # Of a sentence that lists several keys ("``a``: ...; ``b``: ..."), the clauses
        # that name this one.
        clauses = [c for s in hits for c in _clauses(s) if named.search(c)]
        leading = [c for c in clauses if named.match(c)]
        clauses = leading or clauses
        if clauses:
            text = "; ".join(c.rstrip(".") for c in clauses)
            return text[0].upper() + text[1:] + "." if text[0].isalpha() else text + "."
        if hits:
            return " ".join(hits)
    return ""


def _first_paragraph(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


# -- types, defaults, examples -------------------------------------------------------------------


def _resolved(cls: type) -> type:
    """``cls`` with its string annotations resolved (the config classes name some types
    only under TYPE_CHECKING; the converter resolves them when it is built)."""
    from llmx._config import _converter

    _converter()
    try:
        attrs.resolve_types(cls)
    except NameError:  # a name the module holds only under TYPE_CHECKING
        module = __import__(cls.__module__, fromlist=["_"])
        hints = {}
        for name in ("llmx._settings", "llmx._types", "llmx._secret", "llmx._config"):
            mod = __import__(name, fromlist=["_"])
            hints.update({k: v for k, v in vars(mod).items() if isinstance(v, type)})
        attrs.resolve_types(cls, globalns=vars(module), localns=hints)
    return cls


def _strip_none(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, _union_type()) and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return (rest[0] if len(rest) == 1 else typing.Union[rest]), True  # noqa: UP007
    return tp, False


def _union_type() -> Any:
    import types

    return types.UnionType


def type_words(tp: Any) -> str:
    """A config value's type in TOML words: ``integer``, ``list of strings``, ..."""
    from llmx._secret import Secret

    tp, _optional = _strip_none(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    words: str
    if tp is str:
        words = "string"
    elif tp is bool:
        words = "boolean"
    elif tp is int:
        words = "integer"
    elif tp is float:
        words = "number"
    elif tp is Secret:
        words = 'secret (a string, `{ env = "NAME" }` or `{ file = "PATH" }`)'
    elif origin is typing.Literal:
        words = "one of " + ", ".join(f"`{json.dumps(a)}`" for a in args)
    elif origin in (typing.Union, _union_type()):
        words = " or ".join(type_words(a) for a in args)
    elif origin is tuple:
        words = f"list of {_plural(type_words(args[0]))}"
    elif origin in (dict, Mapping, typing.Mapping, __import__("collections.abc").abc.Mapping):
        value = args[1] if len(args) == 2 else Any
        words = "table" if value is Any else f"table of {_plural(type_words(value))}"
    elif attrs.has(tp):
        words = "table"
    elif tp is Any:
        words = "any value"
    else:
        words = getattr(tp, "__name__", str(tp))
    return words


def _plural(words: str) -> str:
    if words == "table":
        return "tables"
    if words.startswith(("secret", "one of", "table")):
        return f"values ({words})"
    return words + "s" if not words.endswith("s") else words


def _default(field: attrs.Attribute[Any]) -> Any:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory() if not default.takes_self else attrs.NOTHING  # type: ignore[attr-defined]
    return default


def toml_value(value: Any) -> str:
    """``value`` written as TOML (inline)."""
    from llmx._secret import Secret

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Secret):
        if value.env:
            return f'{{ env = "{value.env}" }}'
        return json.dumps(value.get()) if value.file is None else f'{{ file = "{value.file}" }}'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{ }"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if attrs.has(type(value)):
        given = {
            f.name: getattr(value, f.name)
            for f in attrs.fields(type(value))
            if getattr(value, f.name) not in (None, {}, ())
        }
        return toml_value(given)
    return json.dumps(str(value))


def default_words(field: attrs.Attribute[Any]) -> str:
    """The default of a key as shown in the reference."""
    default = _default(field)
    if default is attrs.NOTHING:
        return "required"
    if default is None:
        return "not set"
    if default in ({}, ()) or (attrs.has(type(default)) and toml_value(default) == "{ }"):
        return "empty"
    return f"`{toml_value(default)}`"


_SAMPLES: dict[str, str] = {
    "string": '"..."',
    "boolean": "true",
    "integer": "10",
    "number": "30.0",
    "list of strings": '["a", "b"]',
    "list of tables": "[{ }]",
    "table": "{ }",
}


def example_value(field: attrs.Attribute[Any]) -> str:
    """A TOML value for the key: its default when it has one, else a sample of its type."""
    default = _default(field)
    if default not in (attrs.NOTHING, None, {}, ()):
        return toml_value(default)
    words = type_words(field.type)
    if words.startswith("secret"):
        return '{ env = "API_KEY" }'
    if words.startswith("one of"):
        return words.split("`")[1]
    if words == "table of strings":
        return '{ NAME = "..." }'
    if words.startswith("table"):
        return "{ }"
    return _SAMPLES.get(words.split(" or ")[0], _SAMPLES.get(words, '"..."'))


# -- the configuration reference -----------------------------------------------------------------


@attrs.frozen
class Key:
    """One documented config key."""

    path: str
    """Where it is written, TOML-style: ``providers.NAME.timeout``."""
    type: str
    default: str
    env: str
    example: str
    description: str
    owner: str
    """The class that declares it (``llmx._config.ProviderConfig``), for messages."""


@attrs.frozen
class Section:
    """One table of the config (``[providers.NAME]``) and its keys."""

    title: str
    table: str
    """The TOML table (``providers.NAME``), or ``""`` for the top level."""
    intro: str
    keys: tuple[Key, ...]


def _env_name(path: str) -> str:
    from llmx._config import ENV_PREFIX

    return ENV_PREFIX + "__".join(path.split(".")).upper()


def _complete(cls: type) -> type | None:
    """The complete settings class of a partial config class (whose keys left out inherit,
    then take that class's defaults): ``BreakerConfig`` -> ``BreakerSettings``."""
    from llmx._config import BreakerConfig, RetryBudgetConfig
    from llmx._settings import BreakerSettings, RetryBudgetSettings

    return {BreakerConfig: BreakerSettings, RetryBudgetConfig: RetryBudgetSettings}.get(cls)


def _key(cls: type, field: attrs.Attribute[Any], table: str, *, name: str | None = None) -> Key:
    key = name or field.name
    path = f"{table}.{key}" if table else key
    complete = _complete(cls)
    description = field_description(cls, field.name)
    if complete is not None:
        full = {f.name: f for f in attrs.fields(_resolved(complete))}[field.name]
        field = field.evolve(default=full.default)
        description = description or field_description(complete, field.name)
    example = _example_in(description, key, field) or example_value(field)
    env = _env_name(path)
    return Key(
        path=path,
        type=type_words(field.type),
        default=default_words(field),
        env=f"`{env}={_shell_value(example)}`",
        example=f"`{key} = {example}`",
        description=description,
        owner=f"{cls.__module__}.{cls.__qualname__}",
    )


def _example_in(description: str, key: str, field: attrs.Attribute[Any]) -> str | None:
    """An example the description itself gives: a code span ````key = VALUE````, or for a
    list of tables one that is written as such (````[{ ... }]````)."""
    written = re.search(rf"``{re.escape(key)}\s*=\s*([^`]+?)``", description)
    if written:
        return written[1].strip()
    if type_words(field.type) == "list of tables":
        table = re.search(r"``(\[\{[^`]*\}\])``", description)
        if table:
            return table[1]
    return None


def _shell_value(example: str) -> str:
    """The value of an ``LLMX_*`` variable for a TOML example value, quoted for a shell: a
    string is given as its text (a value that does not parse as TOML is read as text)."""
    import shlex

    if example.startswith('"'):
        try:
            return shlex.quote(json.loads(example))
        except ValueError:
            pass
    return shlex.quote(example)


def _nested(tp: Any) -> tuple[str, type] | None:
    """``("", cls)`` for an attrs-class value, ``(".NAME", cls)`` for a table of them
    (a secret is a value, not a table of keys)."""
    from llmx._secret import Secret

    tp, _ = _strip_none(tp)
    if tp is Secret or typing.get_args(tp)[1:] == (Secret,):
        return None
    if attrs.has(tp):
        return "", tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is not None and len(args) == 2 and attrs.has(args[1]):
        return ".NAME", args[1]
    return None


def _class_sections(
    cls: type, table: str, title: str, skip: frozenset[str] = frozenset()
) -> Iterator[Section]:
    """The section of ``cls`` at ``table``, then the sections of its nested tables."""
    _resolved(cls)
    fields = [f for f in attrs.fields(cls) if f.name not in skip]
    keys = tuple(_key(cls, f, table) for f in fields)
    yield Section(title, table, _first_paragraph(cls), keys)
    for f in fields:
        nested = _nested(f.type)
        if nested is None:
            continue
        suffix, inner = nested
        sub = f"{table}.{f.name}{suffix}"
        yield from _class_sections(inner, sub, f"[{sub}]")


def _component_section(section: str, field: attrs.Attribute[Any]) -> Iterator[Section]:
    from llmx._config import _COMPONENT_KEYS, ComponentConfig
    from llmx._settings import STORE_KEYS, CachePolicy, StoreSettings

    name_key = _COMPONENT_KEYS[section]
    default = _default(field)
    component = attrs.fields(ComponentConfig).name
    keys = [
        attrs.evolve(
            _key(ComponentConfig, component.evolve(default=default.name), section),
            path=f"{section}.{name_key}",
            env=f"`{_env_name(f'{section}.{name_key}')}={default.name or 'NAME'}`",
            example=f"`{name_key} = {toml_value(default.name or 'NAME')}`",
            description=(
                f"Which {_KINDS[section].replace('_', ' ')} to use: the name an installed "
                "plugin registered (see the list below)."
            ),
            type="string",
        )
    ]
    if section == "cache":
        _resolved(CachePolicy)
        keys += [_key(CachePolicy, f, section) for f in attrs.fields(CachePolicy)]
        cache_cls = field.type if attrs.has(field.type) else ComponentConfig
        keys.append(_key(cache_cls, attrs.fields(cache_cls).namespace, section))
    if section in ("cache", "limiter"):
        _resolved(StoreSettings)
        store = dict(STORE_KEYS)
        if section == "limiter":
            store["expected_processes"] = "expected_processes"
        fields = {f.name: f for f in attrs.fields(StoreSettings)}
        for key, name in store.items():
            keys.append(_key(StoreSettings, fields[name], section, name=key))
    intro = (
        f"Chooses the {_KINDS[section].replace('_', ' ')} with `{name_key}`; the section's "
        "other keys are that component's settings (below)."
    )
    yield Section(f"[{section}]", section, intro, tuple(keys))


def _registry() -> Any:
    import llmx
    from llmx._registry import Registry

    registry = Registry.from_config(llmx.load_config({}))
    registry.load_all()
    return registry


def _component_settings(kind: str, table: str, title: str) -> Iterator[Section]:
    for reg in sorted(_registry().registrations(kind), key=lambda r: r.name):
        where = f"from {reg.distribution or reg.plugin}"
        if reg.settings is None or not attrs.has(reg.settings):
            yield Section(title.format(name=reg.name), table, f"No settings ({where}).", ())
            continue
        intro = f"{_first_paragraph(reg.settings)} ({where})"
        for section in _class_sections(reg.settings, table, title.format(name=reg.name)):
            yield attrs.evolve(section, intro=intro) if section.table == table else section


def config_sections(root: type | None = None) -> list[Section]:
    """Every section of the config with its keys, from the typed classes: the top level,
    each section of :class:`llmx.Config` (``root``; a new one appears here by itself), then
    the settings of every installed plugin's components."""
    from llmx._config import _COMPONENT_KEYS, ComponentConfig, Config

    root = root or Config
    _resolved(root)
    # What the config file may set: not where it was read from, nor what set it.
    fields = {f.name: f for f in attrs.fields(root) if f.name not in ("source", "env")}
    top = [
        _key(root, f, "")
        for f in fields.values()
        if _nested(f.type) is None and not (attrs.has(f.type) and f.name in _COMPONENT_KEYS)
    ]
    out = [Section("Top-level keys", "", "Keys outside any table.", tuple(top))]
    for name, f in fields.items():
        if name in _COMPONENT_KEYS and issubclass(_strip_none(f.type)[0], ComponentConfig):
            out += _component_section(name, f)
            continue
        nested = _nested(f.type)
        if nested is None:
            continue
        suffix, cls = nested
        table = f"{name}{suffix}"
        skip = frozenset({"options"}) if name == "providers" else frozenset()
        out += _class_sections(cls, table, f"[{table}]", skip)
    out += _component_settings(
        "provider", "providers.NAME", '[providers.NAME] with type = "{name}"'
    )
    for section, kind in _KINDS.items():
        key = _COMPONENT_KEYS[section]
        out += _component_settings(kind, section, f'[{section}] {key} = "{{name}}"')
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rst_to_md(text: str) -> str:
    """Docstring markup (````x````, ``:class:`~a.B```) as Markdown code spans."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def config_page() -> str:
    """``reference/config.md``."""
    from llmx._config import ENV_SPECIAL

    lines = [
        "# Configuration reference",
        "",
        "Generated from the typed config classes (`llmx._config`) and the settings classes",
        "that the installed plugins register, when this site was built: every key, its type,",
        "default, environment override and an example. [Configuration](../configuration.md)",
        "explains how the files and variables combine. `NAME` stands for a name you choose",
        "(an instance, an alias, a model).",
        "",
        "An environment variable `LLMX_<KEY>` or `LLMX_<SECTION>__<KEY>` (`__` nests; names",
        "are lower-cased) overrides the key it names; its value is read as a TOML value where",
        "it parses, as text otherwise.",
        "",
    ]
    for section in config_sections():
        lines += [f"## {section.title}", "", _rst_to_md(section.intro), ""]
        if not section.keys:
            continue
        lines += [
            "| key | type | default | environment | example | description |",
            "|---|---|---|---|---|---|",
        ]
        for k in section.keys:
            lines.append(
                "| "
                + " | ".join(
                    _cell(c)
                    for c in (
                        f"`{k.path}`",
                        k.type,
                        k.default,
                        k.env,
                        k.example,
                        _rst_to_md(k.description),
                    )
                )
                + " |"
            )
        lines.append("")
    lines += [
        "## Other environment variables",
        "",
        "Read directly, not config overrides: "
        + ", ".join(f"`{n}`" for n in sorted(ENV_SPECIAL))
        + ". Any other `LLMX_*` variable is ignored with a warning.",
        "",
    ]
    return "\n".join(lines)


# -- the hook reference --------------------------------------------------------------------------


def hookspecs() -> list[tuple[str, Any]]:
    """``(name, function)`` of every hook spec in :mod:`llmx.hookspecs`, in source order."""
    import llmx.hookspecs as specs

    found = [
        (name, fn)
        for name, fn in vars(specs).items()
        if callable(fn) and hasattr(fn, "llmx_spec") and name.startswith("llmx_")
    ]
    return sorted(found, key=lambda item: item[1].__code__.co_firstlineno)


def hooks_page() -> str:
    """``reference/hooks.md``."""
    import llmx.hookspecs as specs

    lines = [
        "# Hook reference",
        "",
        "Generated from `llmx.hookspecs` when this site was built. This llmx speaks contract",
        f"**{specs.CONTRACT_VERSION}**; each hook says the contract version it appeared in",
        "(`llmx.hookspecs.ADDED_IN`). A plugin that uses a newer hook declares",
        '`llmx_contract = "X.Y"` (see [Writing plugins](../plugins.md#contract-versioning)).',
        "",
        "| hook | kind | since contract | summary |",
        "|---|---|---|---|",
    ]
    for name, fn in hookspecs():
        kind = "registration" if name.startswith("llmx_register_") else "event"
        lines.append(
            f"| [`{name}`](#{name}) | {kind} | {specs.ADDED_IN.get(name, '?')} | "
            f"{_cell(_rst_to_md(_first_paragraph(fn)))} |"
        )
    lines.append("")
    for name, fn in hookspecs():
        lines += [
            f"## {name}",
            "",
            "```python",
            f"@hookimpl\ndef {name}{inspect.signature(fn)}: ...".replace("'", ""),
            "```",
            "",
            f"*Since contract {specs.ADDED_IN.get(name, '?')}.*",
            "",
            _rst_to_md(inspect.getdoc(fn) or ""),
            "",
        ]
    return "\n".join(lines)


# -- the CLI reference ---------------------------------------------------------------------------


def _commands(group: Any, ctx: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    import click

    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = f"{prefix} {name}"
        sub = click.Context(command, info_name=name, parent=ctx)
        yield path, command, sub
        if isinstance(command, click.Group):
            yield from _commands(command, sub, path)


def cli_commands() -> list[tuple[str, Any, Any]]:
    """``(path, command, context)`` for ``llmx`` and every sub-command, depth first."""
    import click

    from llmx._cli import cli

    root = click.Context(cli, info_name="llmx")
    return [("llmx", cli, root), *_commands(cli, root, "llmx")]


def cli_page() -> str:
    """``reference/cli.md``."""
    import click

    lines = [
        "# CLI reference",
        "",
        "Generated from the `llmx` command's click parser when this site was built. Plugins",
        "enabled in `[plugins] enable` can add commands of their own (`llmx --help` lists",
        "them); see [the CLI page](../cli.md) for examples.",
        "",
    ]
    for path, command, ctx in cli_commands():
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += [
            f"## {path}",
            "",
            "```text",
            f"Usage: {path} {usage}".rstrip(),
            "```",
            "",
            _rst_to_md(inspect.cleandoc(command.help or "")).replace("\b\n", ""),
            "",
        ]
        rows = []
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if isinstance(param, click.Argument):
                rows.append((f"`{param.human_readable_name}`", "argument", param_help(param)))
            elif record is not None:
                rows.append((f"`{record[0]}`", "option", record[1]))
        if rows:
            lines += ["| name | kind | help |", "|---|---|---|"]
            lines += [f"| {_cell(a)} | {b} | {_cell(c)} |" for a, b, c in rows]
            lines.append("")
    return "\n".join(lines)


def param_help(param: Any) -> str:
    """The help of a click argument (click keeps none: the command's docstring has it)."""
    required = "required" if param.required else "optional"
    many = ", any number" if param.nargs == -1 else ""
    return f"{required}{many}"


# -- the API reference ---------------------------------------------------------------------------


def public_names(namespace: str) -> list[str]:
    """``namespace.__all__``, as the running code has it."""
    import importlib

    return list(importlib.import_module(namespace).__all__)


def api_page(namespace: str) -> str:
    """``reference/api/NAMESPACE.md``: the namespace's docstring, then each public name."""
    lines = [
        f"# `{namespace}`",
        "",
        f"::: {namespace}",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "      show_root_toc_entry: false",
        "",
    ]
    for name in public_names(namespace):
        lines += [f"::: {namespace}.{name}", ""]
    return "\n".join(lines)


# -- what is missing -----------------------------------------------------------------------------


def missing_descriptions() -> list[str]:
    """Every public name, config key, hook and CLI command or option without a
    description, one line each (empty: all documented)."""
    import griffe

    missing: list[str] = []
    loader = griffe.GriffeLoader(allow_inspection=False)
    for namespace in NAMESPACES:
        top = namespace.split(".")[0]
        package = loader.load(top)
        loader.resolve_aliases(implicit=False, external=False)
        module = package if namespace == top else package[namespace[len(top) + 1 :]]
        for name in public_names(namespace):
            try:
                obj = module[name]
                doc = obj.docstring
            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                doc = None
            if doc is None or not doc.value.strip():
                missing.append(f"public name {namespace}.{name} has no docstring")
    missing.extend(
        f"config key {key.path} ({section.title}) has no description: give "
        f"{key.owner}'s field an attribute docstring or name it as "
        f"``{key.path.rsplit('.', 1)[-1]}`` in the class docstring"
        for section in config_sections()
        for key in section.keys
        if not key.description
    )
    import llmx.hookspecs as specs

    for name, fn in hookspecs():
        if not (inspect.getdoc(fn) or "").strip():
            missing.append(f"hook {name} has no docstring")
        if name not in specs.ADDED_IN:
            missing.append(f"hook {name} has no contract version in llmx.hookspecs.ADDED_IN")
    import click

    for path, command, ctx in cli_commands():
        if not (command.help or command.short_help or "").strip():
            missing.append(f"command `{path}` has no help")
        missing.extend(
            f"option {param.opts} of `{path}` has no help"
            for param in command.get_params(ctx)
            if isinstance(param, click.Option) and not param.help and not param.hidden
        )
    return missing


# -- mkdocs-gen-files ----------------------------------------------------------------------------


def pages() -> dict[str, str]:
    """Every generated page: path in the site -> Markdown."""
    out = {
        "reference/config.md": config_page(),
        "reference/hooks.md": hooks_page(),
        "reference/cli.md": cli_page(),
    }
    for namespace in NAMESPACES:
        out[f"reference/api/{namespace}.md"] = api_page(namespace)
    return out


def _generate() -> None:
    import mkdocs_gen_files

    for path, text in pages().items():
        with mkdocs_gen_files.open(path, "w") as f:
            f.write(text)


if __name__ in ("<run_path>", "__main__") or __name__.startswith("mkdocs_gen_files"):
    _generate()

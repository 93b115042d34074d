"""Every code block of the documentation is run or checked: ``docs/*.md``,
``docs/plugins/*.md``, ``docs/features/*.md``, ``docs/providers/*.md`` and ``README.md``
(the site's generated reference pages are checked by the strict build, ``scripts/docs``).

The convention: an HTML comment on the line before a fenced block says what the block
is; a few languages have a default. Nothing is left unchecked: a block this test does
not know how to check fails it.

===============================  =========================================================
marker (line before the fence)   what the test does with the block
===============================  =========================================================
``<!-- file: PATH -->``          writes it to ``PATH`` in the page's working directory. A
                                 directory there with a ``pyproject.toml`` is an example
                                 distribution: every example of every page is built into a
                                 wheel and installed (``pip install --no-deps --target``,
                                 once per session), so ``run`` blocks and configs reach it
                                 through its entry points, as an application would. A file
                                 named ``llmx.toml`` is also validated as a config; other
                                 TOML files are parsed, python files compiled.
``<!-- run -->``                 python: run in a fresh interpreter with the examples
                                 installed, in the page's working directory; it must exit
                                 0 (the block's ``assert`` statements are the checks).
(none) on ``toml``               an llmx config: loaded and validated with the installed
                                 plugins (``llmx.load_config`` and what ``llmx.Client()``
                                 checks), with the examples installed.
``<!-- config-error: TEXT -->``  toml: must be refused by that validation with a message
                                 containing ``TEXT``.
``<!-- parse -->``               toml: parsed only (a fragment of a ``pyproject.toml``).
(none) on ``sh``/``console``     each line is an ``llmx ...`` command (``$ `` and
                                 ``# comments`` allowed), run as ``python -m llmx ...`` in
                                 the page's working directory; it must exit 0.
``<!-- output -->``              every non-blank line must appear (spaces normalised) in
                                 the output of the page's previous ``run``/``sh`` block or
                                 the error of its previous ``config-error`` block.
``<!-- compile -->``             python: a fragment that needs context: compiled, and its
                                 import statements executed (so a renamed name fails); the
                                 page's python ``file:`` blocks are importable by name.
``<!-- not-run: REASON -->``     not run; the reason is required. Use it only for blocks
                                 that truly cannot run.
===============================  =========================================================

Blocks of a page run in order; pages are independent. The examples' modules are
imported in this process only while a page's configs are validated, and forgotten after.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests._support import REPO, build_wheels, run, subprocess_env

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 only
    import tomli as tomllib

DOCS = REPO / "docs"
PAGES = (
    DOCS / "plugins.md",
    *sorted((DOCS / "plugins").glob("*.md")),
    *sorted((DOCS / "features").glob("*.md")),
    *sorted(p for p in DOCS.glob("*.md") if p.name != "plugins.md"),
    *sorted((DOCS / "providers").glob("*.md")),
    REPO / "README.md",
)
"""The pages whose code blocks are checked."""

_FENCE = re.compile(r"^(?P<fence>```+)\s*(?P<lang>[\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(?P<kind>[\w-]+)\s*(?::\s*(?P<arg>.*?))?\s*-->$")
_SHELLS = {"sh", "shell", "console", "bash"}
_KINDS = {"file", "run", "config-error", "parse", "output", "compile", "not-run"}
_TIMEOUT = 60


class DocError(Exception):
    """A code block that breaks the convention (see the module docstring)."""


@attrs.frozen
class Block:
    """One fenced code block: where it is, its language, what to do with it, its text."""

    page: str
    line: int
    lang: str
    kind: str
    arg: str
    text: str

    @property
    def where(self) -> str:
        """``docs/plugins/cache.md:42``, for messages."""
        return f"{self.page}:{self.line}"


def parse_blocks(text: str, page: str) -> list[Block]:
    """The code blocks of one page, each classified by its marker (or its language).

    Raises :class:`DocError` for a block the test would not know how to check.
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    marker: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        fence = _FENCE.match(line)
        if fence is None:
            found = _MARKER.match(line)
            if found is not None and found["kind"] in _KINDS:
                marker = (found["kind"], found["arg"] or "")
            elif line:
                marker = None  # a marker applies to the block right after it
            i += 1
            continue
        start, lang = i + 1, fence["lang"].lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence["fence"]:
            body.append(lines[i])
            i += 1
        if i == len(lines):
            msg = f"{page}:{start}: code block never closed"
            raise DocError(msg)
        i += 1
        blocks.append(_classify(page, start, lang, marker, "\n".join(body) + "\n"))
        marker = None
    return blocks


def _classify(page: str, line: int, lang: str, marker: tuple[str, str] | None, text: str) -> Block:
    where = f"{page}:{line}"
    if marker is None:
        if lang == "toml":
            return Block(page, line, lang, "config", "", text)
        if lang in _SHELLS:
            return Block(page, line, lang, "cli", "", text)
        msg = (
            f"{where}: a {lang or 'plain'} block without a marker; put <!-- run -->, "
            "<!-- file: PATH -->, <!-- compile -->, <!-- output --> or <!-- not-run: REASON --> "
            "on the line before it (see tests/test_docs.py)"
        )
        raise DocError(msg)
    kind, arg = marker
    needs = {"run": {"python"}, "compile": {"python"}, "parse": {"toml"}, "config-error": {"toml"}}
    if kind in needs and lang not in needs[kind]:
        msg = (
            f"{where}: <!-- {kind} --> is for {'/'.join(sorted(needs[kind]))} blocks, not {lang!r}"
        )
        raise DocError(msg)
    if kind in ("file", "not-run", "config-error") and not arg:
        msg = f"{where}: <!-- {kind}: ... --> needs its argument"
        raise DocError(msg)
    if kind == "file" and (arg.startswith("/") or ".." in Path(arg).parts):
        msg = f"{where}: file paths are relative to the page's working directory: {arg!r}"
        raise DocError(msg)
    return Block(page, line, lang, kind, arg, text)


def page_name(path: Path) -> str:
    """``docs/plugins/cache.md``."""
    return path.relative_to(REPO).as_posix()


def page_blocks(path: Path) -> list[Block]:
    """The classified blocks of the page at ``path``."""
    return parse_blocks(path.read_text(encoding="utf-8"), page_name(path))


# -- the examples, installed once ---------------------------------------------------------------


@attrs.frozen
class Examples:
    """The pages' working directories, and the site directory the examples are installed in."""

    root: Path
    site: Path
    modules: tuple[str, ...]

    def workdir(self, page: str) -> Path:
        """The working directory of ``page`` (its ``file:`` blocks are written there)."""
        return self.root / page.replace("/", "__")


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Examples:
    """Every page's files written, and every example distribution built and installed."""
    root = tmp_path_factory.mktemp("docs")
    projects: list[Path] = []
    for path in PAGES:
        page = page_name(path)
        workdir = root / page.replace("/", "__")
        workdir.mkdir()
        seen: set[str] = set()
        try:
            blocks = page_blocks(path)
        except DocError:
            continue  # that page's own test reports it; the other pages still run
        for block in blocks:
            if block.kind != "file":
                continue
            if block.arg in seen:
                pytest.fail(f"{block.where}: {block.arg} is written twice on one page")
            seen.add(block.arg)
            target = workdir / block.arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        projects += sorted(p.parent for p in workdir.glob("*/pyproject.toml"))
    site = tmp_path_factory.mktemp("docs-site")
    modules: list[str] = []
    if projects:
        wheels = tmp_path_factory.mktemp("docs-wheels")
        build_wheels(projects, wheels)
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        run([*pip, "--target", site, *sorted(wheels.glob("*.whl"))])
        modules = [
            p.name for p in site.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")
        ]
        modules = [m for m in modules if m not in ("bin", "__pycache__")]
    return Examples(root, site, tuple(sorted(modules)))


def _forget(modules: tuple[str, ...]) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in modules]:
        del sys.modules[name]


@pytest.fixture
def page_env(
    examples: Examples, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[Examples, dict[str, str]]]:
    """The examples on ``sys.path`` for this test, and the environment for subprocesses."""
    monkeypatch.syspath_prepend(str(examples.site))
    _forget(examples.modules)
    yield examples, subprocess_env(examples.site, tmp_path)
    _forget(examples.modules)


# -- checking blocks ------------------------------------------------------------------------------


def check_config(block: Block, data: dict[str, object]) -> None:
    """Load and validate ``data`` as ``llmx.Client()`` would (no client, no I/O)."""
    import llmx
    from llmx._validate import validate

    config = llmx.load_config(data)
    validate(config, llmx.Registry.from_config(config))


def _config_data(block: Block) -> dict[str, object]:
    try:
        return tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as err:
        pytest.fail(f"{block.where}: not valid TOML: {err}")


def run_python(block: Block, workdir: Path, env: dict[str, str], scripts: Path) -> str:
    """Run a python block in a fresh interpreter; its output (it must exit 0)."""
    script = scripts / f"{block.page.replace('/', '__')}-L{block.line}.py"
    script.write_text(block.text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{block.where}: the python block failed (exit {proc.returncode})\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout + proc.stderr


def run_cli(block: Block, workdir: Path, env: dict[str, str]) -> str:
    """Run each ``llmx ...`` line of a shell block; their output (each must exit 0)."""
    out = []
    for raw in block.text.splitlines():
        line = raw.strip().removeprefix("$ ")
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] != "llmx":
            pytest.fail(
                f"{block.where}: {line!r} is not an llmx command; only `llmx ...` lines run "
                "(mark the block <!-- not-run: REASON --> if it cannot)"
            )
        proc = subprocess.run(
            [sys.executable, "-m", "llmx", *words[1:]],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"{block.where}: `{line}` failed (exit {proc.returncode})\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        out.append(proc.stdout + proc.stderr)
    return "\n".join(out)


def _compiles(block: Block) -> ast.Module:
    try:
        return ast.parse(block.text, filename=block.where)
    except SyntaxError as err:
        pytest.fail(f"{block.where}: does not compile: {err}")


def check_compiles(block: Block, workdir: Path, files: list[Block]) -> None:
    """Compile a fragment and execute its import statements; the page's own python files
    (``file:`` blocks, e.g. ``tests/fake_acme.py``) are importable by their module name."""
    tree = _compiles(block)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    code = compile(ast.Module(body=imports, type_ignores=[]), block.where, "exec")
    dirs = [str((workdir / f.arg).parent) for f in files if f.lang == "python"]
    before = set(sys.modules)
    sys.path[:0] = dirs
    try:
        exec(code, {"__name__": "docs_fragment"})
    except Exception as err:
        pytest.fail(f"{block.where}: its imports fail: {type(err).__name__}: {err}")
    finally:
        del sys.path[: len(dirs)]
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(str(workdir)):
                del sys.modules[name]


def _normalised(text: str) -> str:
    return " ".join(text.split())


def check_output(block: Block, previous: str | None) -> None:
    """Every non-blank line of ``block`` appears in ``previous`` (spaces normalised)."""
    if previous is None:
        pytest.fail(
            f"{block.where}: an output block with no run, sh or config-error block before it"
        )
    have = _normalised(previous)
    for line in block.text.splitlines():
        if line.strip() and _normalised(line) not in have:
            pytest.fail(f"{block.where}: {line.strip()!r} is not in the output:\n{previous}")


def check_page(path: Path, examples: Examples, env: dict[str, str], scripts: Path) -> list[str]:
    """Check every block of the page at ``path`` in order; the reasons of skipped blocks."""
    blocks = page_blocks(path)
    workdir = examples.workdir(page_name(path))
    previous: str | None = None
    skipped: list[str] = []
    for block in blocks:
        if block.kind == "file":
            if Path(block.arg).name == "llmx.toml":
                check_config(block, _config_data(block))
            elif block.lang == "toml":
                _config_data(block)
            elif block.lang == "python":
                _compiles(block)  # and, in a distribution's src/, installed and used
        elif block.kind == "config":
            check_config(block, _config_data(block))
        elif block.kind == "config-error":
            import llmx

            with pytest.raises(llmx.ConfigError) as caught:
                check_config(block, _config_data(block))
            previous = str(caught.value)
            assert block.arg in previous, f"{block.where}: the error does not say {block.arg!r}"
        elif block.kind == "parse":
            _config_data(block)
        elif block.kind == "run":
            previous = run_python(block, workdir, env, scripts)
        elif block.kind == "cli":
            previous = run_cli(block, workdir, env)
        elif block.kind == "output":
            check_output(block, previous)
        elif block.kind == "compile":
            check_compiles(block, workdir, [b for b in blocks if b.kind == "file"])
        else:
            skipped.append(f"{block.where}: {block.arg}")
    return skipped


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_every_code_block_of_the_page_runs(
    path: Path,
    page_env: tuple[Examples, dict[str, str]],
    tmp_path: Path,
) -> None:
    examples, env = page_env
    skipped = check_page(path, examples, env, tmp_path)
    # Not-run blocks are listed, never hidden: each needs its reason in the page.
    for reason in skipped:
        print(f"not run: {reason}")


def test_every_page_is_linked_from_the_entry_page() -> None:
    """The plugin pages from docs/plugins.md; the feature pages (and any other page
    under docs/) from README.md."""
    entry = (DOCS / "plugins.md").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [
        p.relative_to(DOCS).as_posix()
        for p in PAGES[1:]
        if p.parent.name in ("plugins", "features")
        and not (
            f"plugins/{p.name}" in entry
            if p.parent.name == "plugins"
            else f"docs/{p.relative_to(DOCS).as_posix()}" in readme
        )
    ]
    assert not missing, (
        f"docs/plugins.md (plugin pages) or README.md (features) does not link {missing}"
    )


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (lower case, punctuation dropped)."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_the_links_of_the_page_lead_somewhere(path: Path) -> None:
    broken = []
    for found in _LINK.finditer(path.read_text(encoding="utf-8")):
        target = found["target"]
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if dest.is_relative_to(DOCS / "reference"):
            continue  # generated when the site is built; the strict build checks these
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{page_name(path)}: links leading nowhere: {broken}"


def test_the_pages_have_examples_that_are_installed(examples: Examples) -> None:
    dists = sorted(p.name.split("-")[0] for p in examples.site.glob("*.dist-info"))
    assert len(dists) >= 8, dists


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("```python\nprint(1)\n```\n", "a python block without a marker"),
        ("```\nsome output\n```\n", "a plain block without a marker"),
        ("<!-- run -->\n```toml\na = 1\n```\n", "<!-- run --> is for python blocks"),
        ("<!-- not-run -->\n```python\nx\n```\n", "needs its argument"),
        ("<!-- file: ../x.py -->\n```python\nx\n```\n", "relative to the page's working"),
        ("```python\nx\n", "never closed"),
        # A marker applies only to the block right after it.
        ("<!-- run -->\nSome prose.\n\n```python\nx\n```\n", "a python block without a marker"),
    ],
)
def test_a_block_the_test_cannot_check_fails_it(text: str, complaint: str) -> None:
    with pytest.raises(DocError, match=re.escape(complaint)):
        parse_blocks(text, "page.md")


def test_markers_classify_blocks() -> None:
    text = (
        "<!-- file: p/pyproject.toml -->\n```toml\n[project]\n```\n"
        "```toml\n[cache]\n```\n"
        "```sh\nllmx plugins\n```\n"
        "<!-- output -->\n```\nok\n```\n"
        "<!-- not-run: needs a GPU -->\n\n```python\nx\n```\n"
    )
    kinds = [(b.kind, b.arg) for b in parse_blocks(text, "page.md")]
    assert kinds == [
        ("file", "p/pyproject.toml"),
        ("config", ""),
        ("cli", ""),
        ("output", ""),
        ("not-run", "needs a GPU"),
    ]


def test_output_and_config_error_checks_can_fail(page_env: tuple[Examples, dict[str, str]]) -> None:
    output = Block("page.md", 1, "", "output", "", "config OK\n")
    with pytest.raises(pytest.fail.Exception, match="is not in the output"):
        check_output(output, "something else")
    wrong = Block("page.md", 1, "toml", "config", "", "[cache]\nbackend = 'nope'\n")
    import llmx

    with pytest.raises(llmx.ConfigError, match="unknown cache backend 'nope'"):
        check_config(wrong, _config_data(wrong))

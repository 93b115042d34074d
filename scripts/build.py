"""Builds every distribution of the workspace as a release and checks it (scripts/build).

1. The sdist and the wheel of core/, each plugins/* and each contrib/* distribution
   (`python -m build`: the wheel is built from the sdist, so a file missing from the
   sdist breaks the wheel), into dist/, with SOURCE_DATE_EPOCH set.
2. Reproducibility: everything is built a second time, straight from the source tree,
   into a scratch directory; both builds must be byte-identical.
3. `twine check --strict` (metadata, and the README rendered as PyPI renders it).
4. Each wheel and sdist is inspected (see `inspect_wheel` / `inspect_sdist`): py.typed in
   typed packages, no tests/fixtures/caches/bytecode inside, a licence file, classifiers,
   project URLs, requires-python, a Markdown README without relative links, a semantic
   version, a plugin's `llmx` requirement that admits this llmx and stops at its next
   minor series, and the core's extras naming each first-party plugin.
5. The wheels are installed into one fresh virtual environment, without the workspace:
   the third-party dependencies from the hashed lock (requirements/dev.lock, so pip's
   cache serves them), the workspace's own only from dist/ (`--no-index`), as
   `llmx[all]`; then, from an empty directory, `import` of every package and
   `llmx plugins --json` must list every plugin. llmx-provider-llamacpp is installed with
   `--no-deps`: llama-cpp-python has no wheels and builds from source for minutes.

Usage: scripts/build [--skip-install] [--skip-repro] [--jobs N]
The build backend is the locked hatchling of .venv (`--no-isolation`), so the build
needs no network and gives the same bytes on every machine with the lock.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import email.parser
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CORE = "llmx"
# Not published, so not built: the template is a directory to copy (its own test installs
# a renamed copy), and the workspace root is tool configuration.
NOT_PUBLISHED = {"contrib/_template"}
# Installed with --no-deps in the fresh environment: built from source for minutes.
HEAVY_DEPENDENCIES = {"llama-cpp-python"}
# What a release's metadata must carry.
PROJECT_URLS = ("Homepage", "Documentation", "Source", "Changelog", "Issues")
# Never inside a wheel: test code, test data, caches, bytecode.
FORBIDDEN_PARTS = {
    "tests",
    "test",
    "fixtures",
    "conftest.py",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".venv",
}
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".orig", ".rej", ".swp")
# In an sdist, tests are welcome (downstream packagers run them); caches are not.
SDIST_FORBIDDEN_PARTS = FORBIDDEN_PARTS - {"tests", "test", "fixtures", "conftest.py"}
RELATIVE_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s]+)\)")


class BuildError(Exception):
    """A step of the release build failed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Distribution:
    """One workspace distribution: its directory and what its pyproject.toml says."""

    path: Path
    name: str
    version: str
    typed: bool

    @property
    def rel(self) -> str:
        """The directory relative to the workspace root (``plugins/llmx-redis``)."""
        return self.path.relative_to(ROOT).as_posix()

    @property
    def stem(self) -> str:
        """The file-name prefix of its wheel and sdist (``llmx_redis-0.1.0``)."""
        return f"{canonicalize_name(self.name).replace('-', '_')}-{self.version}"


@dataclass
class Report:
    """What a check found: problems fail the build."""

    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        """Record ``problem`` unless ``ok``."""
        if not ok:
            self.problems.append(problem)


def distributions(root: Path = ROOT) -> list[Distribution]:
    """Every published distribution of the workspace: core, then plugins/*, contrib/*."""
    dirs = [root / "core"]
    for group in ("plugins", "contrib"):
        dirs += sorted(p.parent for p in (root / group).glob("*/pyproject.toml"))
    found = []
    for d in dirs:
        if d.relative_to(root).as_posix() in NOT_PUBLISHED:
            continue
        project = tomllib.loads((d / "pyproject.toml").read_text())["project"]
        typed = "Typing :: Typed" in project.get("classifiers", [])
        found.append(Distribution(d, project["name"], project["version"], typed))
    return found


def source_date_epoch() -> str:
    """SOURCE_DATE_EPOCH from the environment, else the last commit's time, else 1980."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = ""
    return out or "315532800"


def run(cmd: Sequence[str | Path], *, what: str, **kwargs: object) -> str:
    """Run ``cmd``; on failure raise BuildError with ``what`` and its output."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if proc.returncode != 0:
        msg = f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        raise BuildError(msg)
    return str(proc.stdout)


def build_all(
    dists: Sequence[Distribution], outdir: Path, *, from_tree: bool, jobs: int, env: dict[str, str]
) -> None:
    """Build each distribution's sdist and wheel into ``outdir``, ``jobs`` at a time.

    ``from_tree`` builds the wheel from the source tree (``--sdist --wheel``) instead of
    from the freshly built sdist (the default of ``python -m build``)."""
    flags = ["--sdist", "--wheel"] if from_tree else []

    def one(d: Distribution) -> None:
        run(
            [sys.executable, "-m", "build", "--no-isolation", *flags, "--outdir", outdir, d.path],
            what=f"building {d.name} ({d.rel})",
            env=env,
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(one, d) for d in dists]:
            future.result()


def artifacts(outdir: Path, d: Distribution) -> tuple[Path, Path]:
    """The wheel and the sdist of ``d`` in ``outdir`` (each must exist)."""
    wheel = outdir / f"{d.stem}-py3-none-any.whl"
    sdist = outdir / f"{d.stem}.tar.gz"
    for p in (wheel, sdist):
        if not p.is_file():
            msg = f"{d.name}: {p.name} was not built (in {outdir}: {sorted(os.listdir(outdir))})"
            raise BuildError(msg)
    return wheel, sdist


def compare_builds(first: Path, second: Path) -> list[str]:
    """The differences between two build directories: names, then bytes."""
    a = {p.name: p for p in first.iterdir()}
    b = {p.name: p for p in second.iterdir()}
    problems = []
    if a.keys() != b.keys():
        problems.append(f"the builds made different files: {sorted(a)} vs {sorted(b)}")
    problems += [
        f"{name}: two builds differ; {archive_diff(a[name], b[name])}"
        for name in sorted(a.keys() & b.keys())
        if a[name].read_bytes() != b[name].read_bytes()
    ]
    return problems


def archive_diff(a: Path, b: Path) -> str:
    """Which members of two archives differ (for the message of a non-reproducible build)."""

    def members(p: Path) -> dict[str, tuple[bytes, str]]:
        if p.suffix == ".whl":
            with zipfile.ZipFile(p) as z:
                return {
                    i.filename: (z.read(i), f"{i.date_time} {i.external_attr:o}")
                    for i in z.infolist()
                }
        with tarfile.open(p) as t:
            out = {}
            for m in t.getmembers():
                f = t.extractfile(m)
                out[m.name] = (f.read() if f else b"", f"{m.mtime} {m.mode:o} {m.uname}")
            return out

    ma, mb = members(a), members(b)
    changed = sorted(n for n in ma.keys() & mb.keys() if ma[n] != mb[n])
    only = sorted(ma.keys() ^ mb.keys())
    return f"members differing: {changed[:5] or 'none (archive headers)'}; only in one: {only[:5]}"


def read_metadata(text: str) -> Message:
    """A METADATA / PKG-INFO file as an email message."""
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


def inspect_wheel(wheel: Path, d: Distribution, core_version: str) -> list[str]:
    """What is wrong with the wheel of ``d``: contents, then metadata."""
    r = Report()
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        dist_info = f"{d.stem}.dist-info"
        meta_text = z.read(f"{dist_info}/METADATA").decode()
        entry_points = (
            z.read(f"{dist_info}/entry_points.txt").decode()
            if f"{dist_info}/entry_points.txt" in names
            else ""
        )
    for name in names:
        parts = name.split("/")
        bad = FORBIDDEN_PARTS.intersection(parts)
        r.check(not bad and not name.endswith(FORBIDDEN_SUFFIXES), f"{name} must not be shipped")
    packages = sorted(
        {n.split("/")[0] for n in names if n.endswith("/__init__.py") and n.count("/") == 1}
    )
    r.check(bool(packages), "no package inside")
    for package in packages:
        has = f"{package}/py.typed" in names
        if d.typed:
            r.check(has, f"{package}/py.typed is missing, but the classifiers say Typing :: Typed")
        else:
            r.check(
                not has, f"{package}/py.typed is shipped without the Typing :: Typed classifier"
            )
    licences = [n for n in names if n.startswith(f"{dist_info}/licenses/")]
    r.check(bool(licences), "no licence file in .dist-info/licenses/ (license-files)")
    r.problems += check_metadata(read_metadata(meta_text), d, core_version)
    if d.name != CORE:
        r.check(
            "[llmx]" in entry_points, "no entry point in the `llmx` group: llmx will not see it"
        )
    return [f"{wheel.name}: {p}" for p in r.problems]


def check_metadata(meta: Message, d: Distribution, core_version: str) -> list[str]:
    """What a release's core metadata lacks (the same checks for wheel and sdist)."""
    r = Report()
    for key in ("Name", "Version", "Summary", "Requires-Python", "License-Expression"):
        r.check(bool(meta.get(key)), f"{key} is missing from the metadata")
    r.check(bool(meta.get("Author") or meta.get("Author-email")), "no author in the metadata")
    r.check(bool(meta.get_all("License-File")), "License-File is missing from the metadata")
    classifiers = meta.get_all("Classifier") or []
    r.check(
        any(c.startswith("Development Status ::") for c in classifiers),
        "classifiers lack a Development Status",
    )
    r.check(
        any(c.startswith("Programming Language :: Python") for c in classifiers),
        "classifiers lack the Programming Language",
    )
    urls = {u.split(",", 1)[0].strip() for u in meta.get_all("Project-URL") or []}
    missing = [u for u in PROJECT_URLS if u not in urls]
    r.check(not missing, f"project URLs missing: {missing} ([project.urls])")
    r.check(
        (meta.get("Description-Content-Type") or "").startswith("text/markdown"),
        "the README is not declared as Markdown (readme = 'README.md')",
    )
    body = meta.get_payload()
    description = body if isinstance(body, str) else ""
    r.check(len(description.strip()) > 80, "the long description (README) is empty")
    r.check(bool(render_markdown(description)), "the README does not render as PyPI renders it")
    relative = RELATIVE_LINK.findall(description)
    r.check(
        not relative,
        f"the README links {relative} relatively: they lead nowhere on PyPI; use absolute URLs",
    )
    r.problems += check_version(meta.get("Version") or "", d.name)
    requires = [Requirement(x) for x in meta.get_all("Requires-Dist") or []]
    if d.name != CORE:
        r.problems += check_llmx_requirement(requires, core_version)
    else:
        r.problems += check_core_extras(requires, meta.get_all("Provides-Extra") or [])
    return r.problems


def render_markdown(text: str) -> str | None:
    """The README as PyPI renders it (readme-renderer's GitHub-flavoured Markdown, then
    its HTML cleaner), or None when it does not render. twine check skips this step for
    Markdown ("rendering cannot fail")."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Markdown renderers are not available" is a failure
        from readme_renderer.markdown import render

        return render(text, variant="GFM")


def check_version(version: str, name: str) -> list[str]:
    """A release version is MAJOR.MINOR.PATCH (pre-releases allowed), without a local part."""
    try:
        v = Version(version)
    except ValueError:
        return [f"{name}: version {version!r} is not a PEP 440 version"]
    if len(v.release) != 3 or v.local or v.epoch or v.post is not None or v.dev is not None:
        return [f"{name}: version {version} is not semantic (MAJOR.MINOR.PATCH)"]
    return []


def check_llmx_requirement(requires: Iterable[Requirement], core_version: str) -> list[str]:
    """A plugin requires llmx in the series it was written for: the workspace's llmx is
    admitted, and so is every patch release of it, but not the next breaking series (the
    next minor before 1.0, the next major after)."""
    llmx = [r for r in requires if canonicalize_name(r.name) == CORE and not r.marker]
    if len(llmx) != 1:
        return ["the distribution must require `llmx` once, unconditionally"]
    spec = llmx[0].specifier
    v = Version(core_version)
    major, minor, _ = v.release
    breaking = Version(f"0.{minor + 1}.0") if major == 0 else Version(f"{major + 1}.0.0")
    problems = []
    if not spec.contains(v):
        problems.append(f"its requirement llmx{spec} does not admit this llmx {v}")
    if spec.contains(breaking):
        problems.append(
            f"its requirement llmx{spec} admits llmx {breaking}, the next breaking series: "
            f"use llmx~={major}.{minor}.0"
        )
    return problems


def check_core_extras(requires: Iterable[Requirement], extras: Sequence[str]) -> list[str]:
    """The core's extras for the common sets exist and name first-party plugins."""
    problems = [
        f"extra [{extra}] is missing"
        for extra in ("openai", "anthropic", "gemini", "redis", "all")
        if extra not in extras
    ]
    env = default_environment()
    by_extra: dict[str, set[str]] = {}
    for req in requires:
        for extra in extras:
            only_with_extra = (
                req.marker is not None
                and req.marker.evaluate({**env, "extra": extra})
                and not req.marker.evaluate({**env, "extra": ""})
            )
            if only_with_extra:
                by_extra.setdefault(extra, set()).add(canonicalize_name(req.name))
    for extra, plugin in (
        ("openai", "llmx-provider-openai"),
        ("anthropic", "llmx-provider-anthropic"),
        ("gemini", "llmx-provider-gemini"),
        ("redis", "llmx-redis"),
        ("otel", "llmx-otel"),
        ("prometheus", "llmx-prometheus"),
    ):
        if plugin not in by_extra.get(extra, set()):
            problems.append(f"extra [{extra}] does not install {plugin}")
    return problems


def inspect_sdist(sdist: Path, d: Distribution, core_version: str) -> list[str]:
    """What is wrong with the sdist of ``d``."""
    r = Report()
    with tarfile.open(sdist) as t:
        names = t.getnames()
        top = f"{d.stem}/"
        pkg_info = t.extractfile(f"{d.stem}/PKG-INFO")
        meta = read_metadata(pkg_info.read().decode()) if pkg_info else None
    for name in names:
        parts = name.split("/")
        bad = SDIST_FORBIDDEN_PARTS.intersection(parts)
        r.check(not bad and not name.endswith(FORBIDDEN_SUFFIXES), f"{name} must not be shipped")
        r.check(name.startswith(top) or name == d.stem, f"{name} is outside {top}")
    for required in ("pyproject.toml", "README.md", "LICENSE", "PKG-INFO"):
        r.check(f"{top}{required}" in names, f"{required} is missing")
    if meta is None:
        r.problems.append("PKG-INFO is unreadable")
    else:
        r.problems += check_metadata(meta, d, core_version)
    return [f"{sdist.name}: {p}" for p in r.problems]


# -- the fresh environment ----------------------------------------------------------------


def runtime_closure(roots: Iterable[Requirement], workspace: set[str]) -> set[str]:
    """The names of every third-party distribution ``roots`` need, transitively, on this
    Python (read from the installed metadata of .venv, which holds the locked versions)."""
    env = default_environment()
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in workspace or name in HEAVY_DEPENDENCIES:
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            msg = f"{name} is needed but not installed in .venv: run scripts/bootstrap"
            raise BuildError(msg) from None
        for text in dist.requires or []:
            sub = Requirement(text)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({**env, "extra": e}) for e in extras):
                todo.append(sub)
    return seen


def locked_subset(lock: Path, names: set[str]) -> str:
    """The entries of the hashed lock for ``names`` (each with its hashes and marker)."""
    blocks: list[list[str]] = []
    for line in lock.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if blocks:
                blocks[-1].append(line)
        else:
            blocks.append([line])
    chosen = []
    found = set()
    for block in blocks:
        name = canonicalize_name(re.split(r"[=<>!~;\[ ]", block[0], maxsplit=1)[0])
        if name in names:
            found.add(name)
            chosen.append("\n".join(block))
    missing = names - found
    if missing:
        msg = f"{sorted(missing)} are not in {lock.name}: refresh it with scripts/lock"
        raise BuildError(msg)
    return "\n".join(chosen) + "\n"


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The Requires-Dist of a wheel, extras included."""
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = read_metadata(z.read(meta_name).decode())
    return [Requirement(x) for x in meta.get_all("Requires-Dist") or []]


def clean_env(home: Path | None = None) -> dict[str, str]:
    """The environment for the fresh venv: no workspace on the path, no ``LLMX_*``
    variable; with ``home``, also no user configuration (for llmx's own commands; pip
    keeps the real home, so its cache serves the locked wheels)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LLMX_") and k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if home is not None:
        env["HOME"] = str(home)
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        env["XDG_DATA_HOME"] = str(home / ".local/share")
    return env


def install_and_run(
    dists: Sequence[Distribution], outdir: Path, scratch: Path, *, latest: bool = False
) -> list[str]:
    """Install the wheels into a fresh venv without the workspace; import, `llmx plugins`.

    The third-party dependencies come from the hashed lock, or with ``latest`` as the
    newest releases their ranges allow."""
    venv = scratch / "venv"
    home = scratch / "home"
    work = scratch / "empty"
    home.mkdir()
    work.mkdir()
    env = clean_env()
    isolated = clean_env(home)
    base = getattr(sys, "_base_executable", sys.executable)
    # Without pip of its own (ensurepip costs ~10 s): .venv's pip installs into it.
    run([base, "-m", "venv", "--without-pip", venv], what="creating the fresh venv", env=env)
    py = venv / "bin" / "python"
    pip_cmd = [sys.executable, "-m", "pip", "--python", py]
    workspace = {canonicalize_name(d.name) for d in dists}
    core = next(d for d in dists if d.name == CORE)
    roots = [r for d in dists for r in wheel_requirements(artifacts(outdir, d)[0])]
    roots = [r for r in roots if not r.marker or r.marker.evaluate({"extra": ""})]
    names = runtime_closure(roots, workspace)
    pip = [*pip_cmd, "install", "--quiet"]
    if latest:
        # scripts/test --latest: the newest releases the ranges allow, as a user gets them.
        roots_spec = [str(r) for r in roots if canonicalize_name(r.name) not in workspace]
        run(
            [
                *pip,
                *(
                    r
                    for r in roots_spec
                    if canonicalize_name(Requirement(r).name) not in HEAVY_DEPENDENCIES
                ),
            ],
            what="installing the newest runtime dependencies",
            env=env,
            cwd=work,
        )
    else:
        locked = scratch / "runtime.lock"
        locked.write_text(locked_subset(ROOT / "requirements" / "dev.lock", names))
        run(
            [*pip, "--require-hashes", "--no-deps", "-r", locked],
            what="installing the locked runtime dependencies",
            env=env,
            cwd=work,
        )
    run(
        [*pip, "--no-index", "--find-links", outdir, f"llmx[all]=={core.version}"],
        what="installing llmx[all] from dist/ only",
        env=env,
        cwd=work,
    )
    heavy = [d for d in dists if d.name != CORE and not installed_by_all(d)]
    if heavy:
        run(
            [*pip, "--no-index", "--no-deps", *(artifacts(outdir, d)[0] for d in heavy)],
            what="installing the other plugins (--no-deps)",
            env=env,
            cwd=work,
        )
    problems = []
    check = subprocess.run(
        [*pip_cmd, "check"], capture_output=True, text=True, env=env, cwd=work, check=False
    )
    for line in check.stdout.splitlines():
        if "which is not installed" in line and any(h in line for h in HEAVY_DEPENDENCIES):
            continue  # installed with --no-deps on purpose (above)
        if line.startswith("No broken requirements"):
            continue
        problems.append(f"pip check in the fresh venv: {line}")
    packages = [package_of(d) for d in dists]
    probe = (
        "import importlib, json, sys\n"
        f"mods = [importlib.import_module(m) for m in {packages!r}]\n"
        "outside = [m.__name__ for m in mods if not m.__file__.startswith(sys.prefix)]\n"
        "print(json.dumps({'outside': outside, 'sys_path': sys.path}))\n"
    )
    out = run(
        [py, "-c", probe], what="importing every package in the fresh venv", env=isolated, cwd=work
    )
    found = json.loads(out)
    if found["outside"]:
        problems.append(f"imported from outside the fresh venv: {found['outside']}")
    if any(str(ROOT) in p for p in found["sys_path"]):
        problems.append(f"the workspace is on sys.path of the fresh venv: {found['sys_path']}")
    run(
        [venv / "bin" / "llmx", "plugins"],
        what="`llmx plugins` in the fresh venv",
        env=isolated,
        cwd=work,
    )
    listing = run(
        [venv / "bin" / "llmx", "plugins", "--json"],
        what="`llmx plugins --json` in the fresh venv",
        env=isolated,
        cwd=work,
    )
    plugins = json.loads(listing)
    rows = plugins if isinstance(plugins, list) else plugins.get("plugins", [])
    listed = {canonicalize_name(str(p.get("distribution", ""))): p for p in rows}
    for d in dists:
        row = listed.get(canonicalize_name(d.name))
        if row is None:
            problems.append(f"`llmx plugins` in the fresh venv does not list {d.name}")
        elif str(row.get("version")) != d.version:
            problems.append(f"`llmx plugins` shows {d.name} {row.get('version')}, not {d.version}")
        elif row.get("error"):
            problems.append(f"`llmx plugins` reports {d.name}: {row.get('error')}")
    return problems


def installed_by_all(d: Distribution) -> bool:
    """Whether ``llmx[all]`` installs ``d`` (the first-party plugins under plugins/)."""
    return d.rel.startswith("plugins/")


def package_of(d: Distribution) -> str:
    """The import package a distribution ships (its one `packages` entry)."""
    pyproject = tomllib.loads((d.path / "pyproject.toml").read_text())
    (package,) = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return Path(package).name


def main(argv: Sequence[str] | None = None) -> int:
    """Build, compare, check, inspect, install; print a summary; 0 when all is well."""
    parser = argparse.ArgumentParser(prog="scripts/build", description=__doc__.split("\n")[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist")
    parser.add_argument("--jobs", type=int, default=max(2, min(4, os.cpu_count() or 2)))
    parser.add_argument("--skip-repro", action="store_true", help="build once only")
    parser.add_argument(
        "--latest",
        action="store_true",
        help="the fresh venv gets the newest dependencies, not the locked ones",
    )
    parser.add_argument(
        "--skip-install", action="store_true", help="no fresh venv (no import, no llmx plugins)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    dists = distributions()
    core_version = next(d.version for d in dists if d.name == CORE)
    env = {**os.environ, "SOURCE_DATE_EPOCH": source_date_epoch(), "PYTHONHASHSEED": "0"}
    outdir: Path = args.outdir.resolve()

    def step(message: str) -> None:
        print(f"build: {message} ({time.monotonic() - started:.1f}s)", file=sys.stderr)

    try:
        if outdir.exists():
            shutil.rmtree(outdir)
        outdir.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="llmx-build-") as tmp:
            scratch = Path(tmp)
            step(
                f"building {len(dists)} distributions, SOURCE_DATE_EPOCH={env['SOURCE_DATE_EPOCH']}"
            )
            build_all(dists, outdir, from_tree=False, jobs=args.jobs, env=env)
            problems: list[str] = []
            if not args.skip_repro:
                again = scratch / "again"
                again.mkdir()
                step("building again from the source tree (reproducibility)")
                build_all(dists, again, from_tree=True, jobs=args.jobs, env=env)
                problems += compare_builds(outdir, again)
            step("twine check --strict")
            files = sorted(outdir.iterdir())
            run(
                [sys.executable, "-m", "twine", "check", "--strict", *files],
                what="twine check --strict",
            )
            for d in dists:
                wheel, sdist = artifacts(outdir, d)
                problems += inspect_wheel(wheel, d, core_version)
                problems += inspect_sdist(sdist, d, core_version)
            if not problems and not args.skip_install:
                step("installing the wheels into a fresh venv")
                problems += install_and_run(dists, outdir, scratch, latest=args.latest)
    except BuildError as err:
        print(f"build: {err}", file=sys.stderr)
        return 1
    if problems:
        print("build: the release is not ready:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    for f in sorted(outdir.iterdir()):
        print(f"{f.stat().st_size / 1024:8.1f} KiB  {f.name}")
    installed = "" if args.skip_install else ", installed into a fresh venv"
    step(f"OK: {len(dists)} distributions built into {outdir}, checked{installed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The test suite on every supported Python: one nox session per version.

``.venv/bin/nox`` runs them all, ``.venv/bin/nox -s tests-3.12`` one; extra arguments go
to pytest (``nox -s tests-3.13 -- -k redis``). Each session runs the README's test
command, ``scripts/test``, with ``PYTHON`` set to that interpreter, so ``scripts/bootstrap``
builds that version's own venv (``.venv-3.12``) from the hashed lock, exactly as for the
main one; nox's own virtualenvs are not used. A version the machine lacks is skipped,
naming it and where it was looked for (``PATH``, then pyenv's versions).

The sessions leave out the local model (``SKIP_LOCAL_MODEL=1``: building llama-cpp-python
takes about 6 minutes per interpreter); ``scripts/test`` on the main interpreter runs it.
``SKIP_LOCAL_MODEL=0 nox -s tests-3.12`` includes it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import nox

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
"""The supported Pythons: the pyprojects' classifiers and the CI matrix say the same
(tests/test_supported_pythons.py checks it)."""

nox.options.default_venv_backend = "none"
nox.options.error_on_missing_interpreters = False


def _reports(python: str, version: str) -> bool:
    """Whether ``python`` runs and is Python ``version``."""
    try:
        proc = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == version


def _patch(path: Path) -> tuple[int, ...]:
    """``3.12.1`` from a pyenv version directory, for picking the newest."""
    return tuple(int(p) if p.isdigit() else -1 for p in path.name.split("."))


def find_python(version: str) -> str | None:
    """An interpreter of Python ``version``: ``pythonX.Y`` on ``PATH`` (every entry, as a
    pyenv shim may be there without that version behind it), else the newest pyenv
    ``versions/X.Y.*``; None when neither has it."""
    name = f"python{version}"
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / name
        if (
            candidate.is_file()
            and os.access(candidate, os.X_OK)
            and _reports(str(candidate), version)
        ):
            return str(candidate)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for found in sorted((root / "versions").glob(f"{version}.*"), key=_patch, reverse=True):
        candidate = found / "bin" / name
        if candidate.is_file() and _reports(str(candidate), version):
            return str(candidate)
    return None


def _tests(version: str) -> Callable[[nox.Session], None]:
    def tests(session: nox.Session) -> None:
        python = find_python(version)
        if python is None:
            session.skip(
                f"Python {version} not found (no working {f'python{version}'} on PATH nor"
                f" in pyenv's versions/{version}.*): e.g. `pyenv install {version}`"
            )
        env = {
            "PYTHON": python,
            "SKIP_LOCAL_MODEL": os.environ.get("SKIP_LOCAL_MODEL", "1"),
            # Lint, types, docs, builds and the security gate do not depend on the
            # interpreter: .ci/run's main run has done them (ONLY_PYTEST=0 runs them too).
            "ONLY_PYTEST": os.environ.get("ONLY_PYTEST", "1"),
        }
        session.run("scripts/test", *session.posargs, env=env, external=True)

    tests.__doc__ = f"scripts/test on Python {version} (its own venv, .venv-{version})."
    return tests


for _version in SUPPORTED:
    nox.session(name=f"tests-{_version}", venv_backend="none")(_tests(_version))

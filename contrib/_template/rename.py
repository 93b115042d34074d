"""Make this copy of llmx's provider template your own provider: ``python rename.py NAME``.

NAME is your provider type (``acme``): the entry point's name and what users write in
``type = "acme"``. In every file below this directory it replaces

* ``llmx-provider-template`` with ``llmx-provider-NAME`` (the distribution),
* ``llmx_provider_template`` with ``llmx_provider_NAME`` (the package),
* ``Template`` / ``TEMPLATE`` / ``template`` with ``Acme`` / ``ACME`` / ``acme`` (the
  classes, the ``ACME_API_KEY`` variable, the provider type and the prose),

in file names too (``src/llmx_provider_acme/``, ``tests/test_acme_provider.py``), then
deletes itself. Run it once, in a fresh copy; then rewrite the imaginary API.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SKIP = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "dist", "build"}


def replacements(name: str) -> list[tuple[str, str]]:
    """What to replace with what, in order (the longest names first)."""
    title = "".join(word.capitalize() for word in name.split("_"))
    return [
        ("llmx-provider-template", "llmx-provider-" + name.replace("_", "-")),
        ("llmx_provider_template", "llmx_provider_" + name),
        ("Template", title),
        ("TEMPLATE", name.upper()),
        ("template", name),
    ]


def main(argv: list[str]) -> int:
    """Rename the copy in this directory; 0 on success, 2 on a bad NAME."""
    if len(argv) != 1 or not re.fullmatch(r"[a-z][a-z0-9_]*", argv[0]):
        print("usage: python rename.py NAME  (NAME: lower case, e.g. acme or my_api)")
        return 2
    name = argv[0]
    pairs = replacements(name)
    this = Path(__file__).resolve()
    for path in sorted(ROOT.rglob("*")):
        if path == this or not path.is_file() or SKIP & set(path.relative_to(ROOT).parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not a text file
        new = text
        for old, replacement in pairs:
            new = new.replace(old, replacement)
        if new != text:
            path.write_text(new, encoding="utf-8")
    # Deepest first, so a directory is renamed after what is in it.
    for path in sorted(ROOT.rglob("*template*"), key=lambda p: len(p.parts), reverse=True):
        if path != this and not SKIP & set(path.relative_to(ROOT).parts):
            path.rename(path.with_name(path.name.replace("template", name)))
    this.unlink()
    print(f"renamed to llmx-provider-{name.replace('_', '-')} (type {name!r}); rename.py removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

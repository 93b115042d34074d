"""The public API against its committed snapshot (tests/api-snapshot.txt): a change to a
public name or signature fails here until CHANGELOG.md describes it under
``## [Unreleased]`` and ``scripts/api-snapshot`` has recorded it.

The namespaces recorded: llmx, llmx.types, llmx.structured, llmx.plugin, llmx.hookspecs,
llmx.http, llmx.testing and llmx.deprecation (scripts/api_snapshot.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests._support import REPO, load_script

SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


@pytest.fixture(scope="module")
def snap() -> ModuleType:
    """scripts/api_snapshot.py."""
    return load_script("api_snapshot")


def _fresh_api() -> dict[str, str]:
    """The public API as a fresh interpreter sees it: in this process, a test that ran
    earlier may have resolved some attrs classes' string annotations (``attrs.
    resolve_types``, cattrs), and their signatures would render differently."""
    code = (
        "import json, runpy, sys; "
        "m = runpy.run_path(sys.argv[1]); print(json.dumps(m['current_api']()))"
    )
    script = str(REPO / "scripts" / "api_snapshot.py")
    proc = subprocess.run(
        [sys.executable, "-c", code, script], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    api: dict[str, str] = json.loads(proc.stdout)
    return api


def test_the_public_api_matches_its_snapshot(snap: ModuleType) -> None:
    snapshot = snap.parse(snap.SNAPSHOT.read_text())
    api = _fresh_api()
    missing, described = snap.problems(snapshot, api, snap.CHANGELOG.read_text())
    assert not missing, (
        "the public API changed without an entry under '## [Unreleased]' in CHANGELOG.md:\n"
        f"{snap.describe_diff(snapshot, api, missing)}\n"
        "describe each change there (name it in backticks), then run scripts/api-snapshot"
    )
    assert not described, (
        "the public API changed (CHANGELOG.md describes it); record it in the snapshot: "
        f"run scripts/api-snapshot\n{snap.describe_diff(snapshot, api, described)}"
    )


CHANGELOG = """# Changelog

## [Unreleased]

### Added
- `llmx.plugin.Widget`, a thing.

## [0.1.0] - 2026-12-01

### Added
- `Gadget`.
"""


def test_a_change_needs_an_entry_under_unreleased(snap: ModuleType) -> None:
    old = {"llmx.Client.complete": "async def(self)", "llmx.Gadget": "class()"}
    # a new name described under [Unreleased]: described, not missing
    new = {**old, "llmx.plugin.Widget": "class()"}
    assert snap.problems(old, new, CHANGELOG) == ([], ["llmx.plugin.Widget"])
    # a changed signature nobody wrote down: missing
    changed = {**old, "llmx.Client.complete": "async def(self, x)"}
    assert snap.problems(old, changed, CHANGELOG) == (["llmx.Client.complete"], [])
    # mentioned only in a released section: still missing
    removed = {"llmx.Client.complete": "async def(self)"}
    assert snap.problems(old, removed, CHANGELOG) == (["llmx.Gadget"], [])
    # by a dotted suffix, inside a longer code span
    entry = CHANGELOG.replace("a thing.", "a thing; `client.complete(x=...)` takes x.")
    assert snap.problems(old, changed, entry) == ([], ["llmx.Client.complete"])
    # a word that merely contains the name is not a mention
    assert not snap.mentioned("llmx.Client.complete", "- `completed` and `incomplete`")


def test_the_refresh_refuses_an_undescribed_change(
    snap: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    snapshot = tmp_path / "api-snapshot.txt"
    changelog = tmp_path / "CHANGELOG.md"
    snapshot.write_text(snap.render({"llmx.Gadget": "class()"}))
    changelog.write_text(CHANGELOG)
    monkeypatch.setattr(snap, "SNAPSHOT", snapshot)
    monkeypatch.setattr(snap, "CHANGELOG", changelog)
    monkeypatch.setattr(snap, "ROOT", tmp_path)
    monkeypatch.setattr(
        snap, "current_api", lambda: {"llmx.Gadget": "class(x)", "llmx.New": "def()"}
    )
    assert snap.main() == 1
    err = capsys.readouterr().err
    assert "+ llmx.New  def()" in err
    assert "+ llmx.Gadget  class(x)" in err  # `Gadget` is only under [0.1.0]
    assert snap.parse(snapshot.read_text()) == {"llmx.Gadget": "class()"}  # untouched
    changelog.write_text(CHANGELOG.replace("a thing.", "a thing; `New` and `Gadget(x)`."))
    assert snap.main() == 0
    assert snap.parse(snapshot.read_text()) == {"llmx.Gadget": "class(x)", "llmx.New": "def()"}


def test_the_changelog_keeps_a_changelog() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.*)$", text, re.M)
    assert headings, "CHANGELOG.md has no release headings"
    assert headings[0] == "[Unreleased]", "the first section must be '## [Unreleased]'"
    for heading in headings[1:]:
        assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), (
            f"release heading {heading!r}: write '## [X.Y.Z] - YYYY-MM-DD'"
        )
    for section in re.findall(r"^### (.*)$", text, re.M):
        assert section in SECTIONS, f"'### {section}': the sections are {sorted(SECTIONS)}"

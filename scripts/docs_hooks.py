"""mkdocs hooks of the documentation site (``mkdocs.yml``: ``hooks``).

The pages in ``docs/`` are also read on GitHub, where a link such as
``../contrib/_template/README.md`` leads to a file of the repository outside ``docs/``.
mkdocs only knows ``docs/``, so such a link would be broken in the site (and fail the
strict build). These hooks put every repository file that the pages link to, and the files
those link to in turn, into the site under ``_repo/`` (as pages for Markdown, as files
otherwise), and rewrite the links to lead there. A link to a file that does not exist
stays as it is, and the strict build reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PREFIX = "_repo"

_LINK = re.compile(r"(?P<open>\]\()(?P<target>[^)\s#]+)(?P<rest>(?:#[^)\s]*)?\))")
_FENCE = re.compile(r"^(```+|~~~+)")


def _repo_path(src_uri: str) -> str:
    """The repository path of a site page (``plugins.md`` -> ``docs/plugins.md``)."""
    if src_uri.startswith(PREFIX + "/"):
        return src_uri[len(PREFIX) + 1 :]
    return f"docs/{src_uri}"


def _site_path(repo_path: str) -> str:
    """Where a repository file is in the site."""
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/") :]
    return f"{PREFIX}/{repo_path}"


def _outside_links(markdown: str, repo_path: str) -> list[tuple[str, str]]:
    """``(target as written, repository path)`` of each relative link of the page that
    crosses the border of ``docs/`` to an existing repository file (code blocks skipped):
    from a page of ``docs/`` to a file outside it, or from a ``_repo/`` copy to any file."""
    out = []
    inside = not repo_path.startswith("docs/")
    base = posixpath.dirname(repo_path)
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if fenced:
            continue
        for m in _LINK.finditer(line):
            target = m["target"]
            if "://" in target or target.startswith(("mailto:", "/")):
                continue
            resolved = posixpath.normpath(posixpath.join(base, target))
            if resolved.startswith("..") or (resolved.startswith("docs/") and not inside):
                continue
            if (REPO / resolved).is_file():
                out.append((target, resolved))
    return out


def on_files(files: Files, config: Any) -> Files:
    """Add the repository files the pages link to (transitively) under ``_repo/``."""
    todo = [
        (f.src_uri, Path(f.abs_src_path).read_text(encoding="utf-8"))
        for f in files.documentation_pages()
        if f.abs_src_path is not None
    ]
    seen: set[str] = set()
    while todo:
        src_uri, text = todo.pop()
        for _, resolved in _outside_links(text, _repo_path(src_uri)):
            if resolved in seen or resolved.startswith("docs/"):
                continue
            seen.add(resolved)
            content = (REPO / resolved).read_bytes()
            files.append(File.generated(config, _site_path(resolved), content=content))
            if resolved.endswith(".md"):
                todo.append((_site_path(resolved), content.decode("utf-8")))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Rewrite each link to a repository file outside ``docs/`` to its ``_repo/`` copy."""
    src = page.file.src_uri
    links = dict(_outside_links(markdown, _repo_path(src)))
    if not links:
        return markdown

    def rewrite(m: re.Match[str]) -> str:
        resolved = links.get(m["target"])
        if resolved is None:
            return m.group(0)
        new = posixpath.relpath(_site_path(resolved), posixpath.dirname(src) or ".")
        return f"{m['open']}{new}{m['rest']}"

    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line.strip()):
            fenced = not fenced
        out.append(line if fenced else _LINK.sub(rewrite, line))
    return "".join(out)


_ROLE = re.compile(r":(?:class|func|meth|data|mod|attr|exc|obj|const):<code>(~?)([^<]+)</code>")


def _role(m: re.Match[str]) -> str:
    name = m[2].rsplit(".", 1)[-1] if m[1] else m[2]
    return f"<code>{name}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """The docstrings are written for Sphinx as much as for this site: a role such as
    ``:class:`~llmx.Client``` is shown as the code ``Client`` (``~`` keeps the last part,
    as Sphinx does), not as the role's markup."""
    return _ROLE.sub(_role, html)

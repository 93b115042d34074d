"""The documentation site's generated references (``scripts/docs_reference.py``): every
public name, config key, hook and CLI command or option has a description, the hook
contract versions are recorded, and the getting-started page shows the README's two
commands. ``scripts/docs`` (a stage of ``scripts/test``) builds the site strictly."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType

import attrs
import pytest

from tests._support import REPO


def _reference() -> ModuleType:
    path = REPO / "scripts" / "docs_reference.py"
    spec = importlib.util.spec_from_file_location("docs_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_reference"] = module
    spec.loader.exec_module(module)
    return module


ref = _reference()


def test_every_public_name_config_key_hook_and_command_has_a_description() -> None:
    missing = ref.missing_descriptions()
    assert not missing, "\n".join(missing)


def test_a_config_key_without_a_description_is_reported() -> None:
    @attrs.frozen
    class Section:
        """``[example]``: ``documented`` is explained here."""

        documented: int = 1
        undocumented: str = "x"
        with_docstring: bool = True
        """Explained by its own docstring."""

    keys = {
        k.path: k.description for s in ref._class_sections(Section, "example", "x") for k in s.keys
    }
    assert keys["example.documented"] == "`[example]`: `documented` is explained here.".replace(
        "`", "``"
    )
    assert keys["example.with_docstring"] == "Explained by its own docstring."
    assert keys["example.undocumented"] == ""


def test_the_config_reference_covers_every_section_and_key() -> None:
    from llmx._config import ENV_SECTIONS

    sections = ref.config_sections()
    paths = {k.path for s in sections for k in s.keys}
    for section in ENV_SECTIONS:
        assert any(p == section or p.startswith(f"{section}.") for p in paths), section
    # The keys of a provider instance, a component's own settings, the env override.
    assert "providers.NAME.timeout" in paths
    assert "cache.store_timeout" in paths
    assert "limiter.expected_processes" in paths
    key = next(k for s in sections for k in s.keys if k.path == "providers.NAME.timeout")
    assert (key.type, key.default) == ("number", "`600.0`")
    assert key.env.startswith("`LLMX_PROVIDERS__NAME__TIMEOUT=")
    page = ref.config_page()
    assert '[providers.NAME] with type = "openai"' in page  # an installed plugin's keys
    assert '[cache] backend = "redis"' in page


def test_every_hook_has_its_contract_version() -> None:
    import llmx.hookspecs as specs

    names = [name for name, _ in ref.hookspecs()]
    assert set(names) == set(specs.ADDED_IN), "hookspecs.ADDED_IN and the hook specs differ"

    def version(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    for name, added in specs.ADDED_IN.items():
        assert version(added) <= version(specs.CONTRACT_VERSION), name
        doc = getattr(specs, name).__doc__ or ""
        said = re.search(r"Added in contract (\d+\.\d+)", doc)
        assert said is None or said[1] == added, f"{name}: its docstring says {said[1]}"
    page = ref.hooks_page()
    assert "| [`llmx_register_limiters`](#llmx_register_limiters) | registration | 1.1 |" in page


def test_the_cli_reference_has_every_command() -> None:
    page = ref.cli_page()
    for command in ("llmx chat", "llmx batch", "llmx config check", "llmx models pull"):
        assert f"## {command}\n" in page
    assert "`-c, --concurrency INTEGER RANGE`" in page


@pytest.mark.parametrize("namespace", ref.NAMESPACES)
def test_the_api_reference_lists_every_public_name(namespace: str) -> None:
    page = ref.api_page(namespace)
    for name in ref.public_names(namespace):
        assert f"::: {namespace}.{name}\n" in page


def test_the_getting_started_page_shows_the_readme_s_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    page = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
    for command in ('scripts/llmx chat "What is the capital of France?"', "scripts/test"):
        assert f"```sh\n{command}\n```" in readme, command
        assert f"```sh\n{command}\n```" in page, command


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [p for v in node.values() for p in _nav_pages(v)]
    if isinstance(node, list):
        return [p for v in node for p in _nav_pages(v)]
    return []


def test_every_page_is_in_the_nav() -> None:
    import yaml

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = set(_nav_pages(config["nav"]))
    pages = sorted(p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md"))
    assert pages
    missing = [p for p in pages if p not in nav]
    assert not missing, f"mkdocs.yml's nav lacks {missing}: add one line each"
    generated = set(ref.pages())
    unknown = sorted(p for p in nav if p not in pages and p not in generated)
    assert not unknown, f"mkdocs.yml's nav names pages that do not exist: {unknown}"


@attrs.frozen
class _Telemetry:
    """``[telemetry]``: where traces go."""

    endpoint: str = "http://127.0.0.1:4318"
    """The collector's URL."""
    sample: float = 1.0


def _extended_config() -> type:
    from llmx._config import Config

    @attrs.frozen
    class Extended(Config):
        telemetry: _Telemetry = _Telemetry()

    return Extended


def test_a_new_config_section_appears_in_the_reference_by_itself() -> None:
    sections = {s.title: s for s in ref.config_sections(_extended_config())}
    keys = {k.path: k for k in sections["[telemetry]"].keys}
    endpoint = keys["telemetry.endpoint"]
    assert endpoint.description == "The collector's URL."
    assert endpoint.default == '`"http://127.0.0.1:4318"`'
    assert endpoint.env == "`LLMX_TELEMETRY__ENDPOINT=http://127.0.0.1:4318`"
    assert keys["telemetry.sample"].description == ""  # what missing_descriptions reports

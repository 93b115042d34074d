"""Model sources: the hook through which a plugin offers models for ``llmx models pull``
and for ``llmx chat`` on a machine where nothing is configured. The core names no such
plugin; these tests use in-process plugins whose sources write real files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import llmx
from llmx._model_sources import default_models, model_sources, pull
from llmx.plugin import DefaultModel, Register, hookimpl


class FileSource:
    """Fetches models by writing a small file; its default is ready once that file exists."""

    def __init__(self, prefix: str, names: list[str], directory: Path) -> None:
        self.prefix = prefix
        self.names = names
        self.directory = directory

    def models(self) -> list[str]:
        return self.names

    def pull(
        self,
        name: str,
        *,
        directory: Path | None,
        source: str | None,
        force: bool,
        log: Callable[[str], None],
    ) -> Path:
        where = directory or self.directory
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"{name}.bin"
        path.write_text(f"{self.prefix} {name} source={source} force={force}")
        log(f"wrote {path}")
        return path

    def default_model(self) -> DefaultModel:
        first = self.names[0]
        return DefaultModel(
            f"{self.prefix}/{first}",
            ready=(self.directory / f"{first}.bin").is_file(),
            setup=f"llmx models pull {first}",
            max_tokens=64,
        )


class SourcePlugin:
    llmx_contract = "1.0"

    def __init__(self, name: str, source: FileSource) -> None:
        self.name = name
        self.source = source

    @hookimpl
    def llmx_register_model_sources(self, register: Register) -> None:
        register(self.name, lambda: self.source)


class BrokenSourcePlugin:
    llmx_contract = "1.0"

    @hookimpl
    def llmx_register_model_sources(self, register: Register) -> None:
        register("broken", lambda: 1 / 0)


def registry_with(*plugins: object) -> llmx.Registry:
    registry = llmx.Registry(entry_points=[])
    for i, plugin in enumerate(plugins):
        registry.register(plugin, name=f"p{i}")
    return registry


def test_pull_goes_to_the_source_that_lists_the_name(tmp_path: Path) -> None:
    first = FileSource("one", ["alpha", "beta"], tmp_path / "one")
    second = FileSource("two", ["gamma"], tmp_path / "two")
    registry = registry_with(SourcePlugin("one", first), SourcePlugin("two", second))
    lines: list[str] = []

    path = pull(registry, "GAMMA", source="here", force=True, log=lines.append)

    assert path == tmp_path / "two" / "GAMMA.bin"
    assert path.read_text() == "two GAMMA source=here force=True"
    assert lines == [f"wrote {path}"]
    assert pull(registry, None) == tmp_path / "one" / "alpha.bin"  # the first default
    assert pull(registry, "beta", directory=tmp_path / "d") == tmp_path / "d" / "beta.bin"
    with pytest.raises(llmx.LlmxError, match=r"'delta'; known: alpha, beta \(from p0\); gamma"):
        pull(registry, "delta")


def test_without_a_source_pull_names_the_distribution_to_install() -> None:
    with pytest.raises(llmx.LlmxError, match="no installed plugin fetches models") as info:
        pull(registry_with(), "smollm2")
    assert "llmx-provider-llamacpp" in str(info.value)


def test_ready_defaults_come_first(tmp_path: Path) -> None:
    first = FileSource("one", ["alpha"], tmp_path / "one")
    second = FileSource("two", ["gamma"], tmp_path / "two")
    registry = registry_with(SourcePlugin("one", first), SourcePlugin("two", second))
    assert [d.ready for d in default_models(registry)] == [False, False]

    pull(registry, "gamma")

    offers = default_models(registry)
    assert offers[0] == DefaultModel(
        "two/gamma", ready=True, setup="llmx models pull gamma", max_tokens=64
    )
    assert offers[1].model == "one/alpha"
    assert not offers[1].ready


def test_a_broken_source_is_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = FileSource("good", ["alpha"], tmp_path)
    registry = registry_with(BrokenSourcePlugin(), SourcePlugin("good", good))

    sources = model_sources(registry)

    assert [(s.name, s.plugin) for s in sources] == [("good", "p1")]
    assert "plugin 'p0' failed while registering model sources: ZeroDivisionError" in caplog.text


def test_model_sources_take_no_settings(caplog: pytest.LogCaptureFixture) -> None:
    class WithSettings:
        llmx_contract = "1.0"

        @hookimpl
        def llmx_register_model_sources(self, register: Register) -> None:
            register("x", object, settings=dict)

    assert model_sources(registry_with(WithSettings())) == []
    assert "model sources take none" in caplog.text


def test_cli_models_pull_without_a_source_says_what_to_install(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / ".config"), LLMX_DISABLE_PLUGIN_AUTOLOAD="1")
    result = subprocess.run(
        [sys.executable, "-m", "llmx", "models", "pull", "smollm2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("llmx: error: no installed plugin fetches models")
    assert "llmx-provider-llamacpp" in result.stderr
    assert "[plugins] enable" in result.stderr

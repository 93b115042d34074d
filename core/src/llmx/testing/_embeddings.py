"""What the fake servers answer embeddings requests with: deterministic vectors in
which texts sharing words are close (a hashed bag of words), so tests can check
order, similarity and reassembly without a model."""

from __future__ import annotations

import hashlib
import math
import re
import struct

__all__ = ["fake_embedding"]

_WORD = re.compile(r"\w+")


def fake_embedding(text: str, dimensions: int) -> list[float]:
    """A unit vector of ``dimensions`` float32 numbers for ``text``: each lower-cased
    word adds ±1 at a dimension its hash picks, so texts sharing words have a high
    cosine similarity and unrelated texts a low one; the same text always gives the
    same vector. Every number is exactly representable as float32, so a vector sent as
    JSON numbers and as base64 float32 bytes decode to the same array."""
    values = [0.0] * dimensions
    words = _WORD.findall(text.lower()) or [text]
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        values[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in values]

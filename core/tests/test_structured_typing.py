"""mypy infers the type of ``response.parsed`` for the caller: ``response_model=X``
makes ``complete`` return ``ParsedResponse[X]`` and ``stream`` a ``StructuredStream[X]``
(both clients), and a call without it keeps its plain ``Response`` / ``Stream``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SNIPPET = """
from __future__ import annotations

import dataclasses
from typing import TypedDict

import llmx


@dataclasses.dataclass
class Pet:
    name: str


class Score(TypedDict):
    points: int


async def main(client: llmx.Client, sync: llmx.SyncClient) -> None:
    reveal_type((await client.complete(model="a/b", prompt="x", response_model=Pet)).parsed)
    reveal_type((await client.complete(model="a/b", prompt="x", response_model=list[Pet])).parsed)
    reveal_type((await client.complete(model="a/b", prompt="x", response_model=Score)).parsed)
    reveal_type(await client.complete(model="a/b", prompt="x"))
    async with client.stream(model="a/b", prompt="x", response_model=Pet) as stream:
        reveal_type(await stream.parsed())
    reveal_type(client.stream(model="a/b", prompt="x"))
    reveal_type(sync.complete(model="a/b", prompt="x", response_model=Pet).parsed)
    reveal_type(sync.stream(model="a/b", prompt="x", response_model=Pet).parsed())
"""

EXPECTED = [
    "snippet.Pet",
    "list[snippet.Pet]",
    "TypedDict(snippet.Score, {'points': int})",
    "llmx._types.Response",
    "snippet.Pet",
    "llmx._stream.Stream",
    "snippet.Pet",
    "snippet.Pet",
]


def test_mypy_infers_the_parsed_type(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir=/dev/null", "snippet.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    revealed = [
        line.split('Revealed type is "', 1)[1].rstrip('"')
        for line in result.stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert result.returncode == 0, result.stdout
    assert revealed == EXPECTED, result.stdout

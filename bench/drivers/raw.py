"""The floor: plain aiohttp, as an app would call an LLM API without any library.

One ``ClientSession``; POST the JSON body, read, ``json.loads``, pick the text. Streams
iterate the body's lines and ``json.loads`` each ``data:`` line. The connector has no
connection limit (as llmx's default), so the concurrency sweep compares like with like.
``format`` selects the wire format (openai, anthropic, gemini) to match an llmx config.
``read = "chunks"`` reads a stream as llmx does instead: whatever the socket has
(``resp.content.iter_any()``), split into lines incrementally, so the stream floor
does not pay aiohttp's line-by-line reader when llmx does not either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from bench.drivers._harness import main
from bench.wire import MODEL, PROMPT

if TYPE_CHECKING:
    import aiohttp

_MESSAGES = [{"role": "user", "content": PROMPT}]


class RawAdapter:
    """aiohttp straight to the fake server."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.base = spec["base_url"]
        self.format = spec.get("options", {}).get("format", "openai")
        self.chunked = spec.get("options", {}).get("read", "lines") == "chunks"
        self.session: aiohttp.ClientSession | None = None
        if self.format == "openai":
            self.url = f"{self.base}/v1/chat/completions"
            self.stream_url = self.url
            self.headers = {"Authorization": "Bearer x"}
            self.body: dict[str, Any] = {"model": MODEL, "messages": _MESSAGES}
            self.stream_body = {**self.body, "stream": True}
        elif self.format == "anthropic":
            self.url = self.stream_url = f"{self.base}/v1/messages"
            self.headers = {"x-api-key": "x", "anthropic-version": "2023-06-01"}
            self.body = {"model": MODEL, "max_tokens": 1024, "messages": _MESSAGES}
            self.stream_body = {**self.body, "stream": True}
        elif self.format == "gemini":
            root = f"{self.base}/v1beta/models/{MODEL}"
            self.url = f"{root}:generateContent"
            self.stream_url = f"{root}:streamGenerateContent?alt=sse"
            self.headers = {"x-goog-api-key": "x"}
            self.body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
            self.stream_body = self.body
        else:
            msg = f"unknown format {self.format!r}"
            raise ValueError(msg)

    async def open(self) -> None:
        import aiohttp  # imported here so that the harness times the import

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def complete(self) -> str:
        assert self.session is not None
        async with self.session.post(self.url, json=self.body, headers=self.headers) as resp:
            resp.raise_for_status()
            data = await resp.read()
        obj = json.loads(data)
        if self.format == "openai":
            return obj["choices"][0]["message"]["content"]  # type: ignore[no-any-return]
        if self.format == "anthropic":
            return "".join(b["text"] for b in obj["content"] if b["type"] == "text")
        return "".join(p["text"] for p in obj["candidates"][0]["content"]["parts"])

    async def stream(self, first: Callable[[], None]) -> str:
        assert self.session is not None
        parts: list[str] = []
        loads = json.loads
        fmt = self.format
        async with self.session.post(
            self.stream_url, json=self.stream_body, headers=self.headers
        ) as resp:
            resp.raise_for_status()
            lines = _lines(resp) if self.chunked else resp.content
            async for line in lines:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                obj = loads(data)
                text = None
                if fmt == "openai":
                    choices = obj["choices"]
                    if choices:
                        text = choices[0]["delta"].get("content")
                elif fmt == "anthropic":
                    if obj["type"] == "content_block_delta":
                        text = obj["delta"].get("text")
                else:
                    text = "".join(
                        p.get("text", "") for p in obj["candidates"][0]["content"]["parts"]
                    )
                if text:
                    if not parts:
                        first()
                    parts.append(text)
        return "".join(parts)


async def _lines(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body's lines from reads of whatever arrived (as llmx's SSE parser reads)."""
    rest = b""
    async for block in resp.content.iter_any():
        if rest:
            block = rest + block
        *complete, rest = block.split(b"\n")
        for line in complete:
            yield line
    if rest:
        yield rest


if __name__ == "__main__":
    main(RawAdapter, "aiohttp")

"""Peer: the official ``openai`` SDK (``AsyncOpenAI``), run with the peers venv's Python.

``options.transport``: ``"default"`` (the SDK's own httpx client) or ``"aiohttp"``
(``openai.DefaultAioHttpClient``, from ``openai[aiohttp]``; skipped if the installed
SDK lacks it). Everything else is the SDK's defaults, as an app would use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.drivers._harness import SkipError, main
from bench.wire import MODEL, PROMPT

_MESSAGES = [{"role": "user", "content": PROMPT}]


class OpenAIAdapter:
    """openai.AsyncOpenAI against the fake server."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import openai

        self.transport = spec.get("options", {}).get("transport", "default")
        if self.transport == "aiohttp" and not hasattr(openai, "DefaultAioHttpClient"):
            msg = f"openai {openai.__version__} has no DefaultAioHttpClient (openai[aiohttp])"
            raise SkipError(msg)
        self.base_url = f"{spec['base_url']}/v1"
        self.client: Any = None

    async def open(self) -> None:
        import openai

        kwargs: dict[str, Any] = {}
        if self.transport == "aiohttp":
            kwargs["http_client"] = openai.DefaultAioHttpClient()
        self.client = openai.AsyncOpenAI(base_url=self.base_url, api_key="x", **kwargs)

    async def close(self) -> None:
        await self.client.close()

    async def complete(self) -> str:
        reply = await self.client.chat.completions.create(model=MODEL, messages=_MESSAGES)
        return reply.choices[0].message.content  # type: ignore[no-any-return]

    async def stream(self, first: Callable[[], None]) -> str:
        parts: list[str] = []
        stream = await self.client.chat.completions.create(
            model=MODEL, messages=_MESSAGES, stream=True
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices:
                    text = chunk.choices[0].delta.content
                    if text:
                        if not parts:
                            first()
                        parts.append(text)
        return "".join(parts)


if __name__ == "__main__":
    main(OpenAIAdapter, "openai")

"""Peer: LiteLLM, ``litellm.acompletion`` or a ``litellm.Router``, with the peers venv.

``options.api``: ``"acompletion"`` or ``"router"``. The runner sets
``LITELLM_LOCAL_MODEL_COST_MAP=True`` so LiteLLM does not fetch its price list from the
network; everything else is LiteLLM's defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.drivers._harness import main
from bench.wire import MODEL, PROMPT

_MESSAGES = [{"role": "user", "content": PROMPT}]


class LiteLLMAdapter:
    """litellm.acompletion (or Router.acompletion) against the fake server."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import litellm

        litellm.suppress_debug_info = True
        self.api = spec.get("options", {}).get("api", "acompletion")
        self.params = {
            "model": f"openai/{MODEL}",
            "api_base": f"{spec['base_url']}/v1",
            "api_key": "x",
        }
        if self.api == "router":
            self.router = litellm.Router(
                model_list=[{"model_name": "bench", "litellm_params": self.params}]
            )
            self.call: Callable[..., Any] = self.router.acompletion
            self.kwargs: dict[str, Any] = {"model": "bench"}
        else:
            self.call = litellm.acompletion
            self.kwargs = dict(self.params)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def complete(self) -> str:
        reply = await self.call(messages=_MESSAGES, **self.kwargs)
        return reply.choices[0].message.content  # type: ignore[no-any-return]

    async def stream(self, first: Callable[[], None]) -> str:
        parts: list[str] = []
        stream = await self.call(messages=_MESSAGES, stream=True, **self.kwargs)
        async for chunk in stream:
            if chunk.choices:
                text = chunk.choices[0].delta.content
                if text:
                    if not parts:
                        first()
                    parts.append(text)
        return "".join(parts)


if __name__ == "__main__":
    main(LiteLLMAdapter, "litellm")

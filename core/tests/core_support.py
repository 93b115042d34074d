"""Helpers for the core's tests: an in-process provider plugin with a script."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

import llmx


@attrs.frozen
class EchoSettings:
    """Type-specific settings of the test provider."""

    prefix: str = ""


class EchoProvider:
    """Answers with ``prefix + last user text``, or raises/returns what the script says."""

    def __init__(self, ctx: llmx.ProviderContext, plugin: TestPlugin) -> None:
        self.ctx = ctx
        self.plugin = plugin

    def _answer(self, request: llmx.Request) -> llmx.Response:
        self.plugin.requests.append((self.ctx.instance, request))
        if self.plugin.script:
            item = self.plugin.script.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        prefix = self.ctx.settings.prefix if self.ctx.settings else ""
        text = prefix + request.messages[-1].text
        return llmx.Response(
            text=text,
            model=request.model,
            provider=self.ctx.instance,
            finish_reason="stop",
            usage=llmx.Usage(len(request.messages[-1].text), len(text)),
        )

    async def complete(self, request: llmx.Request) -> llmx.Response:
        return self._answer(request)

    def model_info(self, model: str) -> llmx.ModelInfo | None:
        return self.plugin.models.get(model)


class StreamingEchoProvider(EchoProvider):
    """The echo provider, streaming its answer word by word."""

    async def stream(self, request: llmx.Request) -> AsyncIterator[llmx.StreamChunk]:
        response = self._answer(request)
        for i, word in enumerate(response.text.split(" ")):
            self.plugin.chunks_sent += 1
            yield llmx.TextDelta(word if i == 0 else " " + word)
        yield llmx.StreamEnd("stop", response.usage, response.model)


class TestPlugin:
    """An in-process plugin registering provider types ``echo`` and ``secho`` (streaming)."""

    __test__ = False
    llmx_contract = "1.0"

    def __init__(self, models: Mapping[str, llmx.ModelInfo] | None = None) -> None:
        self.script: list[Any] = []
        self.requests: list[tuple[str, llmx.Request]] = []
        self.models = dict(models or {})
        self.chunks_sent = 0

    @llmx.hookimpl
    def llmx_register_providers(self, register: llmx.Register) -> None:
        register("echo", lambda ctx: EchoProvider(ctx, self), settings=EchoSettings)
        register("secho", lambda ctx: StreamingEchoProvider(ctx, self), settings=EchoSettings)


def make_client(registry: llmx.Registry, config: Mapping[str, Any] | None = None) -> llmx.Client:
    """A client over the test plugin with instances ``a`` (echo) and ``s`` (streaming)."""
    base: dict[str, Any] = {"providers": {"a": {"type": "echo"}, "s": {"type": "secho"}}}
    if config:
        for key, value in config.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
    return llmx.Client(base, registry=registry)

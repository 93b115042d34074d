"""Helpers for the core's tests: an in-process provider plugin with a script."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

import llmx
import llmx.types
from llmx.plugin import ProviderContext, Register, hookimpl


@attrs.frozen
class EchoSettings:
    """Type-specific settings of the test provider."""

    prefix: str = ""


class EchoProvider:
    """Answers with ``prefix + last user text``, or raises/returns what the script says."""

    def __init__(self, ctx: ProviderContext, plugin: TestPlugin) -> None:
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

    async def stream(self, request: llmx.Request) -> AsyncIterator[llmx.types.StreamChunk]:
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

    @hookimpl
    def llmx_register_providers(self, register: Register) -> None:
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


class Sleep:
    """A script item: wait ``seconds``, then answer (or run ``then``)."""

    def __init__(self, seconds: float, then: Any = None) -> None:
        self.seconds = seconds
        self.then = then


class FailAfter:
    """A stream script item: yield ``n`` chunks, then raise ``error`` (or, with
    ``stall``, go silent for that many seconds and carry on)."""

    def __init__(self, n: int, error: BaseException | None = None, *, stall: float = 0.0) -> None:
        self.n = n
        self.error = error
        self.stall = stall


class FlexProvider:
    """A provider whose every instance plays its own script (see :class:`FlexPlugin`)."""

    def __init__(self, ctx: ProviderContext, plugin: FlexPlugin) -> None:
        self.ctx = ctx
        self.plugin = plugin

    async def _next(self, request: llmx.Request) -> Any:
        name = self.ctx.instance
        self.plugin.calls.append((name, request.model, asyncio.get_running_loop().time()))
        script = self.plugin.scripts.get(name)
        item = script.pop(0) if script else self.plugin.defaults.get(name)
        while isinstance(item, Sleep):
            await asyncio.sleep(item.seconds)
            item = item.then
        if callable(item) and not isinstance(item, BaseException):
            item = item()
        if isinstance(item, BaseException):
            raise item
        return item

    def _response(self, request: llmx.Request, item: Any) -> llmx.Response:
        if isinstance(item, llmx.Response):
            return item
        text = item if isinstance(item, str) else f"{self.ctx.instance}:{request.messages[-1].text}"
        return llmx.Response(
            text, request.model, self.ctx.instance, finish_reason="stop", usage=llmx.Usage(10, 5)
        )

    async def complete(self, request: llmx.Request) -> llmx.Response:
        return self._response(request, await self._next(request))

    async def stream(self, request: llmx.Request) -> AsyncIterator[llmx.types.StreamChunk]:
        item = await self._next(request)
        fail = item if isinstance(item, FailAfter) else None
        response = self._response(request, None if fail else item)
        for i, word in enumerate(response.text.split(" ")):
            if fail is not None and i == fail.n:
                if fail.stall:
                    await asyncio.sleep(fail.stall)
                if fail.error is not None:
                    raise fail.error
            yield llmx.TextDelta(word if i == 0 else " " + word)
        if fail is not None and fail.error is not None:
            raise fail.error
        yield llmx.StreamEnd("stop", response.usage, response.model)

    def model_info(self, model: str) -> llmx.ModelInfo | None:
        return self.plugin.models.get((self.ctx.instance, model)) or self.plugin.models.get(model)


class FlexPlugin:
    """Registers provider type ``flex``: per-instance scripts of answers, errors, sleeps.

    ``scripts[instance]`` is consumed item by item; when empty, ``defaults[instance]``
    (an item, or a callable returning one) answers; with neither, the answer is
    ``"<instance>:<last user text>"``. Items: a str or Response (the answer), an
    exception (raised), ``Sleep(seconds, then)``, ``FailAfter(n, error)`` (streams).
    ``calls`` records (instance, model, loop time) of every call.
    """

    llmx_contract = "1.0"

    def __init__(self) -> None:
        self.scripts: dict[str, list[Any]] = {}
        self.defaults: dict[str, Any] = {}
        self.calls: list[tuple[str, str, float]] = []
        self.models: dict[Any, llmx.ModelInfo] = {}

    def calls_to(self, instance: str) -> int:
        """How many calls ``instance`` received."""
        return sum(1 for c in self.calls if c[0] == instance)

    @hookimpl
    def llmx_register_providers(self, register: Register) -> None:
        register("flex", lambda ctx: FlexProvider(ctx, self))


def flex_client(
    plugin: FlexPlugin, config: Mapping[str, Any], registry: llmx.Registry | None = None
) -> llmx.Client:
    """A client over ``plugin`` with ``config`` (providers typically ``type = "flex"``)."""
    if registry is None:
        import importlib_metadata

        builtins = importlib_metadata.EntryPoint(
            name="builtins", value="llmx._builtins", group="llmx"
        )
        registry = llmx.Registry(entry_points=[builtins])
    registry.register(plugin, name="flex")
    return llmx.Client(dict(config), registry=registry)


def server_error(instance: str, status: int = 503) -> llmx.ServerError:
    """A retryable server error from ``instance``."""
    return llmx.ServerError("unavailable", provider=instance, status=status)

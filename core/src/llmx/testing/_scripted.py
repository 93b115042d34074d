"""A scripted in-memory provider, the plugin that registers it, and a client using it.

For unit tests of code built on llmx (routing, fallbacks, caching, apps) that need
deterministic answers without any network::

    provider = ScriptedProvider(["first answer", llmx.RateLimitError("slow down", provider="x")])
    async with scripted_client(provider) as client:
        reply = await client.complete(model="scripted/any-model", prompt="Hi")
    assert provider.requests[0].messages[-1].text == "Hi"
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from llmx._types import (
    ModelInfo,
    ReasoningDelta,
    Request,
    Response,
    StreamChunk,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from llmx.hookspecs import CONTRACT_VERSION, hookimpl
from llmx.testing._replies import approx_tokens

if TYPE_CHECKING:
    from llmx._client import Client
    from llmx._components import ProviderContext
    from llmx.hookspecs import Register

__all__ = ["ScriptItem", "ScriptedPlugin", "ScriptedProvider", "scripted_client", "scripted_plugin"]

ScriptItem = Response | str | BaseException
"""One scripted answer: a whole Response, a text answer, or an exception to raise."""


def _last_user_text(request: Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text
    return ""


class ScriptedProvider:
    """A provider answering from a script, for deterministic unit tests.

    Each call pops the next item of ``script``: a :class:`~llmx.Response` is returned
    as is, a ``str`` becomes a text answer (finish reason ``stop``, usage counted with
    :func:`~llmx.testing.approx_tokens`), an exception instance is raised. When the
    script runs out, the answer echoes the text of the last user message. Every
    request received is appended to :attr:`requests`. ``models`` gives the
    :class:`~llmx.ModelInfo` that :meth:`model_info` reports.
    """

    def __init__(
        self,
        script: Iterable[ScriptItem] = (),
        *,
        models: Mapping[str, ModelInfo] | None = None,
        name: str = "scripted",
    ) -> None:
        self.name = name
        """The provider instance name put into answers."""
        self.requests: list[Request] = []
        """Every request received, in order."""
        self.models: dict[str, ModelInfo] = dict(models or {})
        """The model infos :meth:`model_info` reports."""
        self._script: deque[ScriptItem] = deque(script)

    @property
    def remaining(self) -> int:
        """How many scripted items are left."""
        return len(self._script)

    def enqueue(self, *items: ScriptItem) -> None:
        """Append items to the script."""
        self._script.extend(items)

    def _next(self, request: Request) -> Response:
        self.requests.append(request)
        item: ScriptItem
        try:
            item = self._script.popleft()
        except IndexError:
            item = _last_user_text(request)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Response):
            return item  # values are immutable: the engine builds its own completed copy
        prompt = "\n".join(m.text for m in request.messages)
        return Response(
            text=item,
            model=request.model,
            provider=self.name,
            finish_reason="stop",
            usage=Usage(approx_tokens(prompt), approx_tokens(item)),
        )

    async def complete(self, request: Request) -> Response:
        """The next scripted answer (or raise the next scripted exception)."""
        return self._next(request)

    async def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """The next scripted answer as chunks: a few text deltas, tool calls, the end."""
        response = self._next(request)
        for index, part in enumerate(response.reasoning):
            yield ReasoningDelta(
                part.text,
                index,
                signature=part.signature,
                data=part.data,
                id=part.id,
                protocol=part.protocol,
            )
        text = response.text
        if text:
            size = max(1, -(-len(text) // 3))
            for i in range(0, len(text), size):
                yield TextDelta(text[i : i + size])
        for index, call in enumerate(response.tool_calls):
            yield ToolCallDelta(index, call.id, call.name, call.arguments)
        yield StreamEnd(response.finish_reason, response.usage, response.model, response.id)

    def model_info(self, model: str) -> ModelInfo | None:
        """The :class:`~llmx.ModelInfo` given for ``model`` in ``models``, else None."""
        return self.models.get(model)


class ScriptedPlugin:
    """An llmx plugin object registering a :class:`ScriptedProvider` as provider type ``name``.

    Every instance of that provider type answers from the same :attr:`provider`.
    """

    llmx_contract = CONTRACT_VERSION

    def __init__(self, provider: ScriptedProvider, *, name: str = "scripted") -> None:
        self.provider = provider
        """The scripted provider every instance of the type shares."""
        self.name = name
        """The provider type name."""

    def __call__(self, ctx: ProviderContext) -> ScriptedProvider:
        """The provider factory: returns the shared scripted provider."""
        return self.provider

    def model_info(self, model: str) -> ModelInfo | None:
        """Static model facts, as the core asks the factory before the provider exists."""
        return self.provider.model_info(model)

    @hookimpl
    def llmx_register_providers(self, register: Register) -> None:
        """Register the scripted provider type."""
        register(self.name, self)


def _provider_of(
    script: Iterable[ScriptItem] | ScriptedProvider, models: Mapping[str, ModelInfo] | None
) -> ScriptedProvider:
    if isinstance(script, ScriptedProvider):
        if models:
            script.models.update(models)
        return script
    return ScriptedProvider(script, models=models)


def scripted_plugin(
    script: Iterable[ScriptItem] | ScriptedProvider = (),
    *,
    models: Mapping[str, ModelInfo] | None = None,
    name: str = "scripted",
) -> ScriptedPlugin:
    """A plugin registering provider type ``name`` answering from ``script``.

    ``script`` is a list of :data:`ScriptItem` or a ready :class:`ScriptedProvider`
    (keep a reference to it to inspect ``.requests``). Register it in a registry::

        registry = llmx.Registry()
        registry.register(scripted_plugin(["Hello"]), name="scripted")
    """
    return ScriptedPlugin(_provider_of(script, models), name=name)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def scripted_client(
    script: Iterable[ScriptItem] | ScriptedProvider = (),
    *,
    config: Mapping[str, Any] | None = None,
    models: Mapping[str, ModelInfo] | None = None,
    name: str = "scripted",
) -> Client:
    """An :class:`llmx.Client` whose provider instance ``name`` answers from ``script``.

    The config has ``providers.<name> = {type = "<name>"}``, merged with ``config``
    (which may add aliases, more instances of the type, ``default_model``, ...). Use
    model references such as ``"scripted/any-model"``.
    """
    from llmx._client import Client
    from llmx._config import load_config
    from llmx._registry import Registry

    plugin = scripted_plugin(script, models=models, name=name)
    data = _merge({"providers": {name: {"type": name}}}, config or {})
    cfg = load_config(data)
    registry = Registry.from_config(cfg)
    registry.register(plugin, name=f"llmx-testing-{name}")
    return Client(cfg, registry=registry)

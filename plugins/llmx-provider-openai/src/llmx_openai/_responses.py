"""The ``openai-responses`` provider: OpenAI's Responses API (``POST /v1/responses``).

The same llmx types in and out as the ``openai`` (Chat Completions) provider, over the
other protocol OpenAI offers, which the Open Responses specification and several
gateways share: input items and ``instructions`` instead of messages, ``response.*``
stream events, reasoning items, and server-side conversation state (``store`` and
``previous_response_id``) as an explicit opt-in. The wire format is in
:mod:`llmx_openai._responses_wire`; the endpoint, key and headers and the model list
are the ``openai`` provider's (:func:`~llmx_openai._provider.openai_endpoint`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from llmx import (
    Capability,
    ModelInfo,
    ReasoningDelta,
    Request,
    Response,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    UnsupportedFeatureError,
)
from llmx.http import dumps, json_object
from llmx.types import LogprobsDelta, RefusalDelta, StreamChunk
from llmx_openai._models import lookup, reasoning_efforts
from llmx_openai._provider import list_openai_models, openai_endpoint
from llmx_openai._responses_wire import (
    PROTOCOL,
    build_body,
    error_event,
    error_from_failed,
    finish_of,
    parse_response,
    parse_usage,
    reasoning_part,
    wants_reasoning,
)
from llmx_openai._settings import ResponsesSettings
from llmx_openai._wire import parse_token_logprobs

if TYPE_CHECKING:
    from yarl import URL

    from llmx.http import Endpoint
    from llmx.plugin import ProviderContext

__all__ = ["OpenAIResponsesProvider", "is_reasoning_model"]

_NONE: tuple[StreamChunk, ...] = ()

_COUNT_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "truncation",
        "previous_response_id",
        "conversation",
    }
)
"""What ``POST /responses/input_tokens`` takes of a Responses body (``TokenCountsBody``):
what the prompt is made of, not how to sample or what to store."""


def _is_azure(url: URL) -> bool:
    """Whether ``url`` is on Azure OpenAI's v1 API (no ``/responses/input_tokens``)."""
    host = url.host or ""
    return host.endswith(".openai.azure.com") or "/openai/v1/" in url.path + "/"


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` is one of OpenAI's reasoning models (o-series, gpt-5 family),
    which return reasoning items (and take ``reasoning.encrypted_content``)."""
    return bool(reasoning_efforts(model)) and not model.startswith("gpt-5-chat")


def _efforts(request: Request) -> tuple[str, ...] | None:
    """The reasoning efforts of a known model (None: unknown, or reasoning not asked)."""
    if request.reasoning is None or lookup(request.model) is None:
        return None
    return reasoning_efforts(request.model)


class _Decoder:
    """One stream's state: ``response.*`` events in, llmx chunks out.

    Text deltas become :class:`~llmx.TextDelta` (followed by a
    :class:`~llmx.types.LogprobsDelta` of their tokens when the request asked for
    logprobs; a refusal's :class:`~llmx.types.RefusalDelta`, with the finish reason
    ``content_filter``); each ``function_call`` output item becomes one tool call
    (index in the order the calls arrive): its id and name when the item is added, its
    argument deltas after; arguments that only arrive whole (``.done`` or the finished
    item, as some gateways send them) are sent then. ``response.completed`` and
    ``response.incomplete`` end the stream; ``response.failed`` and ``error`` raise the
    typed error naming the provider. Each ``reasoning`` item is one reasoning part
    (:class:`~llmx.ReasoningDelta` by item): its summary text as it streams, its
    encrypted content and id when the item is done.
    """

    __slots__ = (
        "answer_model",
        "calls",
        "count",
        "finish",
        "finished",
        "http",
        "id",
        "logprobs",
        "model",
        "reasoning",
        "refused",
        "summarized",
        "usage",
    )

    final_event = "response.completed"

    def __init__(self, http: Endpoint, model: str, logprobs: bool = False) -> None:
        self.http = http
        self.model = model
        self.logprobs = logprobs  # the request asked for them: read each text delta's
        self.finished = False
        self.finish: Any = None
        self.usage: Any = None
        self.id: Any = None
        self.answer_model: Any = None
        self.refused = False
        self.calls: dict[Any, list[Any]] = {}  # output_index, item id -> [index, args sent]
        self.count = 0  # tool calls seen
        self.reasoning: dict[Any, int] = {}  # output_index, item id -> reasoning index
        self.summarized: set[int] = set()  # reasoning indexes whose summary streamed

    def feed(self, data: str) -> Sequence[StreamChunk]:
        event = json.loads(data)
        kind = event["type"]
        if kind == "response.output_text.delta":
            delta = event["delta"]
            if self.logprobs and event.get("logprobs"):
                tokens = parse_token_logprobs(event["logprobs"], self.http.name, self.model)
                return (TextDelta(delta), LogprobsDelta(tokens))
            return (TextDelta(delta),) if delta else _NONE
        if kind == "response.function_call_arguments.delta":
            return self._arguments(event, event["delta"], whole=False)
        if kind == "response.reasoning_summary_text.delta":
            delta = event["delta"]
            index = self._reasoning_index(event, event.get("item_id"))
            self.summarized.add(index)
            return (ReasoningDelta(delta, index, protocol=PROTOCOL),) if delta else _NONE
        if kind == "response.reasoning_summary_part.added":
            if event.get("summary_index"):  # blank lines between summary parts
                index = self._reasoning_index(event, event.get("item_id"))
                return (ReasoningDelta("\n\n", index, protocol=PROTOCOL),)
            return _NONE
        if kind == "response.output_item.added":
            return self._item(event, event["item"], added=True)
        if kind == "response.function_call_arguments.done":
            return self._arguments(event, event.get("arguments"), whole=True)
        if kind == "response.output_item.done":
            return self._item(event, event["item"], added=False)
        if kind == "response.refusal.delta":
            self.refused = True
            delta = event["delta"]
            return (RefusalDelta(delta),) if delta else _NONE
        if kind in ("response.completed", "response.incomplete"):
            self._answer(event["response"])
            self.finished = True
            return _NONE
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._answer(event["response"])
            return _NONE
        if kind == "response.failed":
            raise error_from_failed(event["response"], self.http.name, self.model)
        if kind == "error":
            raise error_event(event, self.http.name, self.model)
        return _NONE  # content parts, text .done, reasoning summaries, built-in tools...

    def _answer(self, obj: Any) -> None:
        if type(obj) is not dict:
            msg = f"the event's response is {type(obj).__name__}, not an object"
            raise TypeError(msg)
        if obj.get("id"):
            self.id = obj["id"]
        if obj.get("model"):
            self.answer_model = obj["model"]
        if obj.get("usage"):
            self.usage = parse_usage(obj["usage"], self.http.name, self.model)
        if obj.get("status") in ("completed", "incomplete"):
            self.finish = finish_of(obj, tool_calls=self.count > 0, refused=self.refused)

    def _key(self, event: dict[str, Any]) -> Any:
        index = event.get("output_index")
        return index if type(index) is int else event.get("item_id")

    def _reasoning_index(self, event: dict[str, Any], item_id: Any) -> int:
        key = self._key(event)
        index = self.reasoning.get(key)
        if index is None and item_id is not None:
            index = self.reasoning.get(item_id)
        if index is None:
            index = len(set(self.reasoning.values()))
            self.reasoning[key] = index
            if item_id is not None:
                self.reasoning[item_id] = index
        return index

    def _item(self, event: dict[str, Any], item: Any, *, added: bool) -> Sequence[StreamChunk]:
        if type(item) is not dict:
            return _NONE
        if item.get("type") == "reasoning":
            index = self._reasoning_index(event, item.get("id"))
            if added:
                return _NONE
            # Done: the opaque state (and the whole summary, if no delta sent it).
            part = reasoning_part(item)
            text = "" if index in self.summarized else part.text
            return (ReasoningDelta(text, index, data=part.data, id=part.id, protocol=PROTOCOL),)
        if item.get("type") != "function_call":
            return _NONE
        key = self._key(event)
        state = self.calls.get(key)
        if state is None:
            call_id, name = item.get("call_id"), item.get("name")
            if not isinstance(name, str) or not name:
                msg = f"a function_call item without a name: {item!r:.200}"
                raise ValueError(msg)
            index = self.count
            self.count += 1
            state = self.calls[key] = [index, 0]
            if isinstance(item.get("id"), str):
                self.calls.setdefault(item["id"], state)
            head = ToolCallDelta(index, call_id if isinstance(call_id, str) else None, name)
            rest = () if added else self._arguments(event, item.get("arguments"), whole=True)
            return (head, *rest)
        return () if added else self._arguments(event, item.get("arguments"), whole=True)

    def _arguments(self, event: dict[str, Any], text: Any, *, whole: bool) -> Sequence[StreamChunk]:
        state = self.calls.get(self._key(event))
        if state is None:
            state = self.calls.get(event.get("item_id"))
        if state is None:
            if whole:  # the finished item (output_item.done) will bring the call
                return _NONE
            msg = "function call arguments for an item that was never added"
            raise ValueError(msg)
        if not isinstance(text, str) or not text:
            return _NONE
        if whole:
            if state[1]:  # the deltas sent them already
                return _NONE
            text = text or "{}"
        state[1] += len(text)
        return (ToolCallDelta(state[0], None, None, text),)

    def end(self) -> StreamEnd | None:
        if not self.finished:
            return None
        model = self.answer_model
        return StreamEnd(
            self.finish,
            self.usage,
            model if isinstance(model, str) and model else self.model,
            self.id if isinstance(self.id, str) else None,
        )


class OpenAIResponsesProvider:
    """OpenAI's Responses API (provider type ``openai-responses``).

    Configured like the ``openai`` type (``base_url``, default ``$OPENAI_BASE_URL`` else
    ``https://api.openai.com/v1``; ``api_key`` else ``$OPENAI_API_KEY``; ``organization``,
    ``project``), plus ``store`` and ``encrypted_reasoning``
    (:class:`~llmx_openai.ResponsesSettings`). ``stop`` and ``seed`` do not exist in
    this API and are refused before sending.
    """

    __slots__ = ("_count_url", "_http", "_models_url", "_reasoning", "_store", "_url")

    _count_url: URL | None

    def __init__(self, ctx: ProviderContext) -> None:
        settings = (
            ctx.settings if isinstance(ctx.settings, ResponsesSettings) else ResponsesSettings()
        )
        http, _ = openai_endpoint(
            ctx,
            api_key_env=settings.api_key_env,
            organization=settings.organization,
            project=settings.project,
        )
        self._setup(http, settings.store, settings.encrypted_reasoning, settings.count_tokens)

    def _setup(
        self, http: Endpoint, store: bool, reasoning: str, count: bool | None = None
    ) -> None:
        self._http = http
        self._url = http.url("/responses")
        if count is None:
            count = not _is_azure(self._url)
        self._count_url = http.url("/responses/input_tokens") if count else None
        self._models_url = http.url("/models")
        self._store = store
        self._reasoning = reasoning

    def __repr__(self) -> str:
        return f"{type(self).__name__}(instance={self._http.name!r}, host={self._http.host!r})"

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Limits, capabilities and prices of an OpenAI model (None if unknown); the
        Responses API takes no audio input, so no model has ``audio`` here."""
        info = lookup(model)
        if info is None or Capability.AUDIO not in info.capabilities:
            return info
        return attrs.evolve(info, capabilities=info.capabilities - {Capability.AUDIO.value})

    def _url_for(self, model: str) -> URL:
        """The Responses URL for ``model`` (one URL for OpenAI)."""
        return self._url

    def _include_reasoning(self, request: Request) -> bool:
        mode = self._reasoning
        if mode == "auto":
            return not self._store and (
                is_reasoning_model(request.model) or wants_reasoning(request)
            )
        return mode == "always"

    def _body_dict(self, request: Request, stream: bool) -> dict[str, Any]:
        return build_body(
            request,
            provider=self._http.name,
            stream=stream,
            store=self._store,
            include_reasoning=self._include_reasoning(request),
            efforts=_efforts(request),
        )

    def _body(self, request: Request, stream: bool) -> bytes:
        return dumps(self._body_dict(request, stream))

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        model = request.model
        data = await self._http.post(self._url_for(model), self._body(request, False), model)
        return parse_response(data, request, self._http.name)

    def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd."""
        model = request.model
        http = self._http

        def whole(data: bytes) -> list[StreamChunk]:
            # A server that ignored "stream": a whole answer (or an error) as JSON.
            response = parse_response(data, request, http.name)
            out: list[StreamChunk] = [
                ReasoningDelta(r.text, i, data=r.data, id=r.id, protocol=r.protocol)
                for i, r in enumerate(response.reasoning)
            ]
            if response.refusal is not None and response.text == response.refusal:
                out.append(RefusalDelta(response.refusal))
            elif response.text:
                out.append(TextDelta(response.text))
            if response.logprobs:
                out.append(LogprobsDelta(response.logprobs))
            for index, call in enumerate(response.tool_calls):
                out.append(ToolCallDelta(index, call.id, call.name, call.arguments))
            out.append(
                StreamEnd(response.finish_reason, response.usage, response.model, response.id)
            )
            return out

        return http.stream(
            self._url_for(model),
            self._body(request, True),
            model,
            _Decoder(http, model, request.logprobs or request.top_logprobs is not None),
            framing="sse-data",
            whole=whole,
        )

    async def count_tokens(self, request: Request) -> int:
        """The input tokens of ``request``, from ``POST /responses/input_tokens``: the
        body is the Responses body's prompt fields (``TokenCountsBody``), so the count
        includes the instructions, tools, images and documents as an answer would."""
        model = request.model
        http = self._http
        if self._count_url is None:
            msg = (
                f"{http.name}: this instance does not count tokens (Azure OpenAI and some "
                "gateways do not serve POST /responses/input_tokens; count_tokens = true "
                f"in [providers.{http.name}] says it does)"
            )
            raise UnsupportedFeatureError(
                msg, provider=http.name, model=model, feature="count_tokens"
            )
        body = self._body_dict(request, False)
        counted = {key: value for key, value in body.items() if key in _COUNT_FIELDS}
        data = await http.post(self._count_url, dumps(counted), model)
        obj = json_object(data, provider=http.name, model=model)
        tokens = obj.get("input_tokens")
        if type(tokens) is not int or tokens < 0:
            raise http.malformed(what="token count", data=data, model=model)
        return tokens

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models ``GET /models`` lists, with the static facts known about each."""
        return await list_openai_models(self._http, self._models_url)

"""The ``openai`` provider: Chat Completions over the client's pooled aiohttp session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from yarl import URL

from llmx import (
    EmbeddingResponse,
    MalformedResponseError,
    ModelInfo,
    ReasoningDelta,
    Request,
    Response,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
)
from llmx.http import Endpoint, api_key, base_url, dumps
from llmx.plugin import EmbeddingRequest
from llmx.types import ChoiceDelta, LogprobsDelta, RefusalDelta, StreamChunk
from llmx_openai._batch import OpenAIBatchMixin
from llmx_openai._embed import (
    EMBEDDING_LIMITS,
    build_embedding_body,
    embedding_lookup,
    parse_embeddings,
)
from llmx_openai._models import lookup, reasoning_efforts
from llmx_openai._settings import OpenAISettings
from llmx_openai._wire import (
    EVENT_TYPES,
    PROTOCOL,
    arguments_text,
    build_body,
    map_finish_reason,
    parse_completion,
    parse_logprobs,
    parse_usage,
    reasoning_text,
)

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = [
    "DEFAULT_BASE_URL",
    "OpenAIChatProvider",
    "OpenAIProvider",
    "list_openai_models",
    "openai_endpoint",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""Where requests go unless ``base_url`` or ``$OPENAI_BASE_URL`` says otherwise."""

_DONE = "[DONE]"
_NONE: tuple[StreamChunk, ...] = ()


def _is_openai(url: URL) -> bool:
    host = url.host or ""
    return host == "api.openai.com" or host.endswith(".api.openai.com")


def _efforts(request: Request) -> tuple[str, ...] | None:
    """The reasoning efforts of a known model (None: unknown, or reasoning not asked)."""
    if request.reasoning is None or lookup(request.model) is None:
        return None
    return reasoning_efforts(request.model)


def openai_endpoint(
    ctx: ProviderContext, *, api_key_env: str, organization: str | None, project: str | None
) -> tuple[Endpoint, bool]:
    """The Endpoint of an OpenAI(-compatible) instance, and whether it is api.openai.com.

    ``base_url`` defaults to ``$OPENAI_BASE_URL``, else :data:`DEFAULT_BASE_URL`; the key
    (``api_key``, else ``$api_key_env``) is required by api.openai.com only and sent as
    ``Authorization: Bearer``; ``organization`` and ``project`` as OpenAI's headers.
    Shared by the ``openai`` and ``openai-responses`` provider types.
    """
    base = base_url(ctx, env="OPENAI_BASE_URL", default=DEFAULT_BASE_URL, example="https://host/v1")
    official = _is_openai(URL(base))
    key = api_key(ctx, env=api_key_env, required=official)
    headers = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if organization:
        headers["OpenAI-Organization"] = organization
    if project:
        headers["OpenAI-Project"] = project
    return Endpoint(ctx, base_url=base, headers=headers, secret=key), official


async def list_openai_models(http: Endpoint, url: URL) -> Sequence[ModelInfo]:
    """The models ``GET /models`` lists (OpenAI's format), with the static facts known
    about each (shared by the ``openai`` and ``openai-responses`` provider types)."""
    page = await http.get(url)
    try:
        ids = sorted({e["id"] for e in page["data"] if isinstance(e["id"], str)})
    except (KeyError, TypeError) as err:
        raise http.malformed(what="model list", data=json.dumps(page), model=None) from err
    return [lookup(model_id) or ModelInfo(model_id) for model_id in ids]


class _Decoder:
    """One stream's state: ``chat.completion.chunk`` events in, llmx chunks out."""

    __slots__ = (
        "answer_model",
        "finish",
        "finished",
        "http",
        "id",
        "logprobs",
        "model",
        "others",
        "refused",
        "seen",
        "usage",
    )

    final_event = "a finish reason or [DONE]"

    def __init__(
        self, http: Endpoint, model: str, logprobs: bool = False, many: bool = False
    ) -> None:
        self.http = http
        # n > 1: the other answers' decoders, by choice index (None: one answer)
        self.others: dict[int, _Decoder] | None = {} if many else None
        self.logprobs = logprobs  # the request asked for them: look for them per chunk
        self.refused = False
        self.model = model
        self.finished = False
        self.finish: Any = None
        self.usage: Any = None
        self.id: Any = None
        self.answer_model: Any = None
        self.seen: dict[int, list[bool]] = {}  # tool index -> [id sent, name sent]

    def feed(self, data: str, choice: Any = None) -> Sequence[StreamChunk]:
        """The chunks of one event (``choice``: one choice of an event, from :meth:`_many`)."""
        if choice is None:
            if data == _DONE:
                self.finished = True
                return _NONE
            obj = json.loads(data)
            error = obj.get("error")
            if error:
                raise self.http.payload_error(error, self.model, types=EVENT_TYPES)
            if not self.id:  # Azure's first chunk has an empty id and model
                self.id = obj.get("id")
                self.answer_model = obj.get("model")
            if obj.get("usage"):
                self.usage = parse_usage(obj["usage"], self.http.name, self.model)
            choices = obj.get("choices")
            if not choices:
                return _NONE
            if self.others is not None:
                return self._many(choices)
            choice = choices[0]
        reason = choice.get("finish_reason")
        if reason:
            self.finish = map_finish_reason(reason)
        delta = choice.get("delta")
        if not delta:
            return _NONE
        text = delta.get("content")
        calls = delta.get("tool_calls")
        if calls:
            out: list[StreamChunk] = [TextDelta(text)] if text and type(text) is str else []
            out += self._tool_deltas(calls)
            return out
        if text and type(text) is str:
            if self.logprobs:
                return self._with_logprobs(TextDelta(text), choice)
            return (TextDelta(text),)
        refusal = delta.get("refusal")
        if refusal and type(refusal) is str:
            self.refused = True
            if self.logprobs:
                return self._with_logprobs(RefusalDelta(refusal), choice)
            return (RefusalDelta(refusal),)
        thought = reasoning_text(delta)  # compatible servers' reasoning, in its own chunks
        if thought:
            return (ReasoningDelta(thought, 0, protocol=PROTOCOL),)
        return _NONE

    def _many(self, choices: Any) -> Sequence[StreamChunk]:
        """The chunks of an event of a stream with ``n > 1``: its choices, by ``index``
        (interleaved, usually one per event); answer 0's plain, the others' wrapped in
        ChoiceDelta, each ended by a ChoiceDelta(StreamEnd) with its finish reason."""
        others = self.others
        assert others is not None
        out: list[StreamChunk] = []
        for choice in choices:
            index = choice.get("index") if type(choice) is dict else None
            if type(index) is not int or index < 0:
                msg = f"a chat.completion.chunk choice without an index: {choice!r:.200}"
                raise MalformedResponseError(
                    msg, provider=self.http.name, model=self.model, status=200
                )
            if index == 0:
                out += self.feed("", choice)
                continue
            other = others.get(index)
            if other is None:
                other = others[index] = _Decoder(self.http, self.model, self.logprobs)
            ended = other.finish is not None
            out += [ChoiceDelta(index, c) for c in other.feed("", choice)]
            if not ended and other.finish is not None:
                reason = "content_filter" if other.refused else other.finish
                out.append(ChoiceDelta(index, StreamEnd(reason)))
        return out

    def _with_logprobs(self, chunk: StreamChunk, choice: Any) -> Sequence[StreamChunk]:
        """A delta and the logprobs of its tokens (a request with ``logprobs``)."""
        logprobs = parse_logprobs(choice.get("logprobs"), self.http.name, self.model)
        if not logprobs:
            return (chunk,)
        return (chunk, LogprobsDelta(logprobs))

    def _tool_deltas(self, calls: Any) -> list[ToolCallDelta]:
        """Tool-call deltas; id and name go out once per index, even if a server repeats them."""
        out = []
        try:
            for position, call in enumerate(calls):
                index = call.get("index")
                if type(index) is not int:
                    index = position
                fn = call.get("function") or {}
                args = arguments_text(fn.get("arguments"))
                state = self.seen.get(index)
                if state is None:
                    state = self.seen[index] = [False, False]
                call_id = None
                if not state[0]:
                    call_id = call.get("id") or None
                    state[0] = call_id is not None
                name = None
                if not state[1]:
                    name = fn.get("name") or None
                    state[1] = name is not None
                if call_id or name or args:
                    out.append(ToolCallDelta(index, call_id, name, args))
        except (AttributeError, TypeError) as err:
            msg = f"unexpected tool_calls delta from the OpenAI API: {calls!r:.200}"
            raise MalformedResponseError(
                msg, provider=self.http.name, model=self.model, status=200
            ) from err
        return out

    def end(self) -> StreamEnd | None:
        if not self.finished and self.finish is None:
            return None
        model = self.answer_model
        return StreamEnd(
            "content_filter" if self.refused else self.finish,
            self.usage,
            model if isinstance(model, str) and model else self.model,
            self.id if isinstance(self.id, str) else None,
        )


class OpenAIChatProvider:
    """OpenAI Chat Completions, for api.openai.com and OpenAI-compatible servers.

    Built by the core from ``[providers.NAME]`` with ``type = "openai"``: it borrows the
    instance's pooled session (never closing it), and computes its URLs and headers once.
    ``base_url`` defaults to ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``. The
    API key is ``api_key`` from the config, else the variable named by ``api_key_env``
    (``OPENAI_API_KEY``); api.openai.com requires one, other servers may go without (no
    ``Authorization`` header is sent then).
    """

    __slots__ = (
        "_chat_url",
        "_embed_url",
        "_embedding_encoding",
        "_http",
        "_max_tokens_field",
        "_models_url",
        "_stream_usage",
    )

    embedding_limits = EMBEDDING_LIMITS
    """What one embeddings request takes: 2,048 inputs, 300,000 tokens (see :meth:`embed`)."""

    def __init__(self, ctx: ProviderContext) -> None:
        settings = ctx.settings if isinstance(ctx.settings, OpenAISettings) else OpenAISettings()
        http, official = openai_endpoint(
            ctx,
            api_key_env=settings.api_key_env,
            organization=settings.organization,
            project=settings.project,
        )
        field = settings.max_tokens_field
        if field == "auto":
            field = "max_completion_tokens" if official else "max_tokens"
        encoding = settings.embedding_encoding
        self._setup(
            http,
            field,
            settings.stream_usage,
            ("base64" if official else "float") if encoding == "auto" else encoding,
        )

    def _setup(
        self, http: Endpoint, max_tokens_field: str, stream_usage: bool, embedding_encoding: str
    ) -> None:
        self._http = http
        self._chat_url = http.url("/chat/completions")
        self._embed_url = http.url("/embeddings")
        self._models_url = http.url("/models")
        self._max_tokens_field = max_tokens_field
        self._stream_usage = stream_usage
        self._embedding_encoding = embedding_encoding

    def __repr__(self) -> str:
        return f"{type(self).__name__}(instance={self._http.name!r}, host={self._http.host!r})"

    # -- static facts --------------------------------------------------------------------

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Limits, capabilities and prices of an OpenAI model (None if unknown)."""
        return lookup(model) or embedding_lookup(model)

    # -- requests ------------------------------------------------------------------------

    def _chat_url_for(self, model: str) -> URL:
        """The chat completions URL for ``model`` (one URL for OpenAI; Azure's varies)."""
        return self._chat_url

    def _body(self, request: Request, stream: bool) -> bytes:
        return dumps(
            build_body(
                request,
                provider=self._http.name,
                max_tokens_field=self._max_tokens_field,
                stream=stream,
                stream_usage=self._stream_usage,
                efforts=_efforts(request),
            )
        )

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        model = request.model
        data = await self._http.post(self._chat_url_for(model), self._body(request, False), model)
        return parse_completion(data, request, self._http.name)

    def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd."""
        model = request.model
        http = self._http
        wants_logprobs = request.logprobs or request.top_logprobs is not None
        decoder = _Decoder(http, model, wants_logprobs, request.n is not None)

        def whole(data: bytes) -> list[StreamChunk]:
            # A server that ignored "stream": a whole answer (or an error) as JSON.
            response = parse_completion(data, request, http.name)
            out: list[StreamChunk] = [
                ReasoningDelta(r.text, i, protocol=r.protocol)
                for i, r in enumerate(response.reasoning)
            ]
            if response.refusal is not None:
                out.append(RefusalDelta(response.refusal))
            elif response.text:
                out.append(TextDelta(response.text))
            if response.logprobs:
                out.append(LogprobsDelta(response.logprobs))
            for index, call in enumerate(response.tool_calls):
                out.append(ToolCallDelta(index, call.id, call.name, call.arguments))
            for choice in response.choices[1:]:  # n > 1: the other answers
                number = choice.index
                if choice.refusal is not None:
                    out.append(ChoiceDelta(number, RefusalDelta(choice.refusal)))
                elif choice.text:
                    out.append(ChoiceDelta(number, TextDelta(choice.text)))
                if choice.logprobs:
                    out.append(ChoiceDelta(number, LogprobsDelta(choice.logprobs)))
                for index, call in enumerate(choice.tool_calls):
                    delta = ToolCallDelta(index, call.id, call.name, call.arguments)
                    out.append(ChoiceDelta(number, delta))
                out.append(ChoiceDelta(number, StreamEnd(choice.finish_reason)))
            out.append(
                StreamEnd(response.finish_reason, response.usage, response.model, response.id)
            )
            return out

        return http.stream(
            self._chat_url_for(model),
            self._body(request, True),
            model,
            decoder,
            framing="sse-data",
            whole=whole,
        )

    # -- embeddings ----------------------------------------------------------------------

    def _embed_url_for(self, model: str) -> URL:
        """The embeddings URL for ``model`` (one URL for OpenAI; Azure's varies)."""
        return self._embed_url

    def _embed_body(self, request: EmbeddingRequest) -> bytes:
        return dumps(build_embedding_body(request, encoding=self._embedding_encoding))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """``POST /embeddings``: one vector per input, in input order (at most
        :attr:`embedding_limits` per call: the core splits larger requests)."""
        model = request.model
        http = self._http
        data = await http.post(self._embed_url_for(model), self._embed_body(request), model)
        return parse_embeddings(data, request, http.name, host=http.host)

    # -- models --------------------------------------------------------------------------

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models ``GET /models`` lists, with the static facts known about each."""
        return await list_openai_models(self._http, self._models_url)


class OpenAIProvider(OpenAIBatchMixin, OpenAIChatProvider):
    """OpenAI Chat Completions (see :class:`OpenAIChatProvider`) and OpenAI's Batch API
    for ``llmx batch --provider-batch`` (:mod:`llmx_openai._batch`).

    The batch API is OpenAI's: an OpenAI-compatible server without ``/files`` and
    ``/batches`` answers the upload with its own error (typically 404).
    """

    __slots__ = ()

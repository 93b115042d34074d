"""A small provider for the (imaginary) Acme API, whose streams are newline-delimited
JSON, and six deliberately broken variants of it: the kit's self-test
(``core/tests/test_testing_selftest.py``) runs the conformance suite against each and
checks that it fails exactly the tests that catch the bug.

The Acme API: ``POST {base_url}/chat`` with ``{"model", "messages", "tools",
"tool_choice", "format", "max_tokens", "temperature", "stop", "stream"}`` answers
``{"id", "model", "text", "tool_calls": [{"name", "arguments"}], "finish", "usage":
{"input", "output"}}``, or with ``"stream": true`` NDJSON lines: ``{"type": "text",
"text"}``, ``{"type": "tool_call", "index", "name"}``, ``{"type": "tool_args", "index",
"arguments"}``, then ``{"type": "end", "id", "model", "finish", "usage"}``, or ``{"type":
"error", "error": {"message", "code"}}``. Tool calls have no ids (results go back by
name); ``GET {base_url}/models`` lists ``{"models": [{"id"}]}``. Errors are HTTP 4xx/5xx
``{"error": {"message", "type", "code"}}``; a refused prompt is 400 ``content_filter``.
``POST {base_url}/embed`` with ``{"model", "input": [...], "dimensions"?}`` (at most 8
inputs) answers ``{"model", "vectors": [[...]], "usage": {"input"}}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from array import array
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import aiohttp

import llmx
import llmx.types
from llmx.plugin import (
    EmbeddingLimits,
    EmbeddingRequest,
    ProviderContext,
    Register,
    error_class_for_status,
    hookimpl,
    parse_retry_after,
)

MODELS = {
    "acme-large": llmx.ModelInfo(
        "acme-large",
        32_000,
        4_000,
        ["streaming", "tools", "json_mode", "system_prompt"],
        input_price=1.0,
        output_price=2.0,
    ),
    "acme-vision": llmx.ModelInfo(
        "acme-vision",
        32_000,
        4_000,
        ["streaming", "vision", "system_prompt"],
        input_price=2.0,
        output_price=4.0,
    ),
    "acme-embed": llmx.ModelInfo(
        "acme-embed", 8_000, None, ["embeddings"], input_price=0.1, output_price=0.0
    ),
}
_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
LINE_LIMIT = 1 << 20
"""The longest NDJSON line read (bytes)."""


class AcmeProvider:
    """The Acme API, correctly: the conformance suite passes."""

    leaked: ClassVar[list[aiohttp.ClientResponse]] = []
    embedding_limits = EmbeddingLimits(max_inputs=8)

    def __init__(self, ctx: ProviderContext) -> None:
        self._name = ctx.instance
        self._session = ctx.session
        self._base = (ctx.config.base_url or "https://api.acme.invalid/v1").rstrip("/")
        key = ctx.config.api_key
        self._headers = {} if key is None else {"Authorization": f"Bearer {key.get()}"}

    @staticmethod
    def model_info(model: str) -> llmx.ModelInfo | None:
        """Static facts about Acme's models."""
        return MODELS.get(model)

    # -- the variants' hooks (the correct behaviour) ----------------------------------------

    def error_class(self, status: int, message: str, code: str | None) -> type[llmx.ProviderError]:
        """The llmx error for an HTTP error answer."""
        if code == "content_filter":
            return llmx.ContentFilterError
        if status == 400 and "context length" in message:
            return llmx.ContextWindowExceededError
        return error_class_for_status(status)

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying, as the answer said."""
        return parse_retry_after(headers)

    def stream_error(self, error: Any) -> llmx.ProviderError | None:
        """The error a stream's ``error`` line raises (None: end the stream quietly)."""
        message = error.get("message") if isinstance(error, dict) else None
        return llmx.ServerError(str(message or "stream failed"), provider=self._name)

    def order(self, deltas: list[llmx.TextDelta]) -> list[llmx.TextDelta]:
        """The order in which buffered text deltas are yielded."""
        return deltas

    def abandon(self, resp: aiohttp.ClientResponse) -> None:
        """A stream left early (or cancelled): drop its connection."""
        resp.close()

    # -- requests -------------------------------------------------------------------------

    def _fail(self, model: str, feature: str, what: str) -> llmx.UnsupportedFeatureError:
        msg = f"the Acme API has no {what}"
        return llmx.UnsupportedFeatureError(msg, provider=self._name, model=model, feature=feature)

    def _body(self, request: llmx.Request, stream: bool) -> dict[str, Any]:
        model = request.model
        if request.n is not None:
            raise self._fail(model, "n", "several answers per request")
        if request.logprobs or request.top_logprobs is not None:
            raise self._fail(model, "logprobs", "token logprobs")
        if request.response_format.type == "json_schema":
            raise self._fail(model, "json_schema", "structured output")
        messages: list[dict[str, Any]] = []
        names: dict[str, str] = {}  # tool results go back by name: the API has no call ids
        for m in request.messages:
            out: dict[str, Any] = {"role": m.role, "content": m.text}
            for part in m.content:
                if isinstance(part, llmx.Image):
                    if part.data is None:
                        raise self._fail(model, "image_urls", "images by URL")
                    image = {"data": base64.b64encode(part.data).decode(), "type": part.media_type}
                    out.setdefault("images", []).append(image)
                elif isinstance(part, llmx.ToolCall):
                    names[part.id] = part.name
                    call = {"name": part.name, "arguments": part.arguments}
                    out.setdefault("tool_calls", []).append(call)
                elif isinstance(part, llmx.ToolResult):
                    out.update(
                        name=names.get(part.tool_call_id, ""),
                        content=part.content,
                        is_error=part.is_error,
                    )
            messages.append(out)
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
                for t in request.tools
            ]
        choice = request.tool_choice
        if choice is not None:
            body["tool_choice"] = choice.name if choice.mode == "tool" else choice.mode
        if request.response_format.type == "json":
            body["format"] = "json"
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    async def _post(self, request: llmx.Request, stream: bool) -> aiohttp.ClientResponse:
        try:
            resp = await self._session.post(
                f"{self._base}/chat", json=self._body(request, stream), headers=self._headers
            )
            if resp.status >= 400:
                async with resp:
                    raw = await resp.content.read(64_000)
                raise self._http_error(resp, raw, request.model)
        except asyncio.TimeoutError as err:
            raise llmx.ProviderTimeoutError(
                "no answer in time", provider=self._name, model=request.model
            ) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, request.model) from err
        return resp

    def _connection_error(self, err: BaseException, model: str) -> llmx.ProviderConnectionError:
        msg = f"{type(err).__name__}: {err}"
        return llmx.ProviderConnectionError(msg, provider=self._name, model=model)

    def _http_error(
        self, resp: aiohttp.ClientResponse, raw: bytes, model: str
    ) -> llmx.ProviderError:
        try:
            error = json.loads(raw)["error"]
            message, code = str(error.get("message") or ""), error.get("code")
        except (ValueError, KeyError, TypeError, AttributeError):
            message, code = raw.decode(errors="replace")[:300], None
        cls = self.error_class(resp.status, message, code)
        message = message or f"HTTP {resp.status}"
        if cls is llmx.ContentFilterError:
            return llmx.ContentFilterError(
                message, provider=self._name, model=model, status=resp.status
            )
        return cls(
            message,
            provider=self._name,
            model=model,
            status=resp.status,
            retry_after=self.retry_after(resp.headers),
        )

    def _malformed(self, what: Any, model: str) -> llmx.MalformedResponseError:
        return llmx.MalformedResponseError(
            f"not an Acme answer: {what!r:.200}", provider=self._name, model=model
        )

    # -- complete and stream ----------------------------------------------------------------

    async def complete(self, request: llmx.Request) -> llmx.Response:
        """Send ``request`` and return the whole answer."""
        resp = await self._post(request, False)
        try:
            async with resp:
                raw = await resp.read()
        except asyncio.TimeoutError as err:
            raise llmx.ProviderTimeoutError(
                "no answer in time", provider=self._name, model=request.model
            ) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, request.model) from err
        try:
            data = json.loads(raw)
            calls = tuple(
                llmx.ToolCall(f"call_{i}", c["name"], c["arguments"])
                for i, c in enumerate(data["tool_calls"])
            )
            return llmx.Response(
                data["text"],
                data["model"],
                self._name,
                id=data["id"],
                tool_calls=calls,
                finish_reason=_FINISH.get(data["finish"], "stop"),
                usage=_usage(data["usage"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise self._malformed(raw, request.model) from err

    async def stream(self, request: llmx.Request) -> AsyncIterator[llmx.types.StreamChunk]:
        """Send ``request`` and yield its deltas as the NDJSON lines arrive, then a StreamEnd."""
        model = request.model
        resp = await self._post(request, True)
        try:
            buffered: list[llmx.TextDelta] = []
            while True:
                try:
                    line = await resp.content.readline()
                except asyncio.TimeoutError as err:
                    raise llmx.ProviderTimeoutError(
                        "no answer in time", provider=self._name, model=model
                    ) from err
                except (aiohttp.ClientError, ValueError) as err:
                    raise self._connection_error(err, model) from err
                if not line:
                    msg = "the stream ended before its end line"
                    raise llmx.ProviderConnectionError(msg, provider=self._name, model=model)
                if len(line) > LINE_LIMIT:
                    raise self._malformed(line[:100], model)
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                    kind = event["type"]
                except (ValueError, KeyError, TypeError) as err:
                    raise self._malformed(line, model) from err
                # Text deltas go out in pairs (in order(): as they came, unless broken).
                if kind == "text":
                    buffered.append(llmx.TextDelta(event["text"]))
                    if len(buffered) < 2:
                        continue
                for delta in self.order(buffered):
                    yield delta
                buffered = []
                if kind == "tool_call":
                    yield llmx.ToolCallDelta(
                        event["index"], f"call_{event['index']}", event["name"]
                    )
                elif kind == "tool_args":
                    yield llmx.ToolCallDelta(event["index"], arguments=event["arguments"])
                elif kind == "error":
                    error = self.stream_error(event.get("error"))
                    if error is not None:
                        raise error
                    yield llmx.StreamEnd("stop")
                    break
                elif kind == "end":
                    yield llmx.StreamEnd(
                        _FINISH.get(event["finish"], "stop"),
                        _usage(event["usage"]),
                        event["model"],
                        event["id"],
                    )
                    break
        except (GeneratorExit, asyncio.CancelledError):
            self.abandon(resp)
            raise
        except BaseException:
            resp.close()
            raise
        resp.release()

    # -- embeddings -------------------------------------------------------------------------

    def vectors(self, vectors: list[Any]) -> list[Any]:
        """The vectors of an answer, in the order they are returned."""
        return vectors

    async def embed(self, request: EmbeddingRequest) -> llmx.EmbeddingResponse:
        """``POST /embed``: one vector per input, in input order."""
        model = request.model
        body: dict[str, Any] = {"model": model, "input": list(request.input)}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        try:
            async with self._session.post(
                f"{self._base}/embed", json=body, headers=self._headers
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise self._http_error(resp, raw, model)
        except asyncio.TimeoutError as err:
            raise llmx.ProviderTimeoutError(
                "no answer in time", provider=self._name, model=model
            ) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model) from err
        try:
            data = json.loads(raw)
            vectors = tuple(array("f", v) for v in self.vectors(data["vectors"]))
            usage = llmx.Usage(int(data["usage"]["input"]), 0)
        except (ValueError, KeyError, TypeError) as err:
            raise self._malformed(raw, model) from err
        return llmx.EmbeddingResponse(vectors, data.get("model") or model, self._name, usage)

    async def list_models(self) -> list[llmx.ModelInfo]:
        """The models the API lists."""
        try:
            async with self._session.get(f"{self._base}/models", headers=self._headers) as resp:
                data = await resp.json()
        except aiohttp.ClientError as err:
            raise self._connection_error(err, "") from err
        return [MODELS.get(m["id"]) or llmx.ModelInfo(m["id"]) for m in data["models"]]


def _usage(usage: Any) -> llmx.Usage:
    return llmx.Usage(int(usage["input"]), int(usage["output"]))


class WrongErrorType(AcmeProvider):
    """Broken: a 429 becomes a ServerError."""

    def error_class(self, status: int, message: str, code: str | None) -> type[llmx.ProviderError]:
        """429 mapped like a 5xx."""
        return llmx.ServerError if status == 429 else super().error_class(status, message, code)


class LostRetryAfter(AcmeProvider):
    """Broken: ``Retry-After`` is never read."""

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Always None."""
        return None


class SwallowedStreamError(AcmeProvider):
    """Broken: an error line ends the stream as if it had finished."""

    def stream_error(self, error: Any) -> llmx.ProviderError | None:
        """Nothing raised."""
        return None


class LeakyStream(AcmeProvider):
    """Broken: a stream left early keeps its response (and connection) open."""

    def abandon(self, resp: aiohttp.ClientResponse) -> None:
        """Kept, never closed."""
        self.leaked.append(resp)


class ReorderedChunks(AcmeProvider):
    """Broken: text deltas are yielded pairwise swapped."""

    def order(self, deltas: list[llmx.TextDelta]) -> list[llmx.TextDelta]:
        """Each pair reversed."""
        return deltas[::-1]


class ReorderedVectors(AcmeProvider):
    """Broken: the vectors of a batch come back in reverse order."""

    def vectors(self, vectors: list[Any]) -> list[Any]:
        """Reversed."""
        return vectors[::-1]


VARIANTS: dict[str, type[AcmeProvider]] = {
    "acme": AcmeProvider,
    "acme_wrong_error": WrongErrorType,
    "acme_lost_retry_after": LostRetryAfter,
    "acme_swallowed_error": SwallowedStreamError,
    "acme_leaky": LeakyStream,
    "acme_reordered": ReorderedChunks,
    "acme_reordered_vectors": ReorderedVectors,
}
"""Provider type → class; each type is also an entry point naming this module."""


@hookimpl
def llmx_register_providers(register: Register) -> None:
    """Register Acme and its broken variants."""
    for name, cls in VARIANTS.items():
        register(name, cls)

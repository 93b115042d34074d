"""The ``gemini`` provider: ``generateContent`` over the client's pooled aiohttp session."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from llmx import (
    ConfigError,
    MalformedResponseError,
    ModelInfo,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    Request,
    Response,
    StreamChunk,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
)
from llmx.plugin import SSEParser
from llmx_gemini._models import lookup
from llmx_gemini._settings import GeminiSettings
from llmx_gemini._wire import (
    Chunk,
    build_body,
    dumps,
    error_from_body,
    map_finish_reason,
    parse_response,
    snippet,
)

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["DEFAULT_BASE_URL", "GeminiProvider"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
"""Where requests go unless ``base_url`` or ``$GEMINI_BASE_URL`` says otherwise."""


class GeminiProvider:
    """Google's Gemini API: ``models/{model}:generateContent`` and
    ``:streamGenerateContent?alt=sse``.

    Built by the core from ``[providers.NAME]`` with ``type = "gemini"``: it borrows the
    instance's pooled session (never closing it). ``base_url`` defaults to
    ``$GEMINI_BASE_URL``, else ``https://generativelanguage.googleapis.com/v1beta``; the
    API key is ``api_key``, else ``$GEMINI_API_KEY`` (``api_key_env``), else
    ``$GOOGLE_API_KEY``, sent as ``x-goog-api-key`` (never in the URL, where it would
    end up in logs).
    """

    __slots__ = (
        "_base",
        "_headers",
        "_host",
        "_name",
        "_safety",
        "_secret",
        "_session",
        "_stream_headers",
        "_timeout",
    )

    def __init__(self, ctx: ProviderContext) -> None:
        settings = ctx.settings if isinstance(ctx.settings, GeminiSettings) else GeminiSettings()
        cfg = ctx.config
        name = ctx.instance
        raw_base = (cfg.base_url or os.environ.get("GEMINI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        base = URL(raw_base)
        if not base.is_absolute() or base.scheme not in ("http", "https"):
            msg = (
                f"base_url {raw_base!r} of provider instance {name!r} is not an http(s) URL; "
                f"set base_url = '{DEFAULT_BASE_URL}' in [providers.{name}]"
            )
            raise ConfigError(msg)
        key = (
            cfg.api_key.get()
            if cfg.api_key is not None
            else os.environ.get(settings.api_key_env) or os.environ.get("GOOGLE_API_KEY")
        )
        if not key:
            msg = (
                f"no API key for provider instance {name!r} (type 'gemini'): set "
                f'{settings.api_key_env} in the environment, or api_key = {{ env = "..." }} '
                f"in [providers.{name}]"
            )
            raise ConfigError(msg)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "x-goog-api-key": key,
        }
        for header, secret in cfg.headers.items():
            headers[header] = secret.get()
        self._name = name
        self._session = ctx.session
        self._secret = key
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}
        self._base = raw_base
        self._host = f"{base.host}:{base.port}" if base.port else str(base.host)
        self._safety = dict(settings.safety_settings)
        self._timeout = cfg.timeout

    def __repr__(self) -> str:
        return f"GeminiProvider(instance={self._name!r}, host={self._host!r})"

    # -- static facts --------------------------------------------------------------------

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Limits, capabilities and prices of a Gemini model (None if unknown)."""
        return lookup(model)

    # -- errors --------------------------------------------------------------------------

    def _timeout_error(self, model: str | None) -> ProviderTimeoutError:
        msg = (
            f"no answer from {self._host} within the timeout ({self._timeout:g} s; raise "
            f"timeout in [providers.{self._name}] if the model needs longer)"
        )
        return ProviderTimeoutError(msg, provider=self._name, model=model)

    def _connection_error(
        self, err: BaseException, model: str | None, doing: str
    ) -> ProviderConnectionError:
        detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        msg = f"connection to {self._host} failed while {doing} ({detail})"
        return ProviderConnectionError(msg, provider=self._name, model=model)

    def _http_error(
        self, resp: aiohttp.ClientResponse, body: bytes, model: str | None
    ) -> ProviderError:
        return error_from_body(
            resp.status, resp.headers, body, provider=self._name, model=model, secret=self._secret
        )

    def _url(self, model: str, method: str) -> URL:
        name = quote(model.removeprefix("models/"), safe="-._~@")
        return URL(f"{self._base}/models/{name}:{method}", encoded=False)

    # -- complete ------------------------------------------------------------------------

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        body = dumps(build_body(request, provider=self._name, safety_settings=self._safety))
        model = request.model
        try:
            async with self._session.post(
                self._url(model, "generateContent"), data=body, headers=self._headers
            ) as resp:
                data = await resp.read()
                if resp.status >= 300:
                    raise self._http_error(resp, data, model)
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model, "waiting for the answer") from err
        return parse_response(data, request, self._name)

    # -- stream --------------------------------------------------------------------------

    async def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd.

        Gemini streams partial ``GenerateContentResponse`` objects with no end marker:
        a stream that ends before a ``finishReason`` is an incomplete answer
        (:class:`llmx.ProviderConnectionError`).
        """
        body = dumps(build_body(request, provider=self._name, safety_settings=self._safety))
        model = request.model
        url = self._url(model, "streamGenerateContent").with_query(alt="sse")
        try:
            resp = await self._session.post(url, data=body, headers=self._stream_headers)
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model, "sending the request") from err
        finish: Any = None
        usage = None
        answer_id: Any = None
        answer_model: Any = None
        calls = 0
        read_all = False
        try:
            if resp.status >= 300:
                error = self._http_error(resp, await resp.read(), model)
                read_all = True
                raise error
            # events(): each event is parsed when taken, so the first chunk of a large
            # read is not held back by the rest (bench: stream time to first chunk).
            events = SSEParser().events
            async for raw in resp.content.iter_any():
                for event in events(raw):
                    try:
                        obj = json.loads(event.data)
                    except ValueError as err:
                        msg = f"unexpected stream event from the Gemini API: {snippet(event.data.encode())!r}"
                        raise MalformedResponseError(
                            msg, provider=self._name, model=model, status=200
                        ) from err
                    chunk = Chunk(obj, self._name, model, calls)
                    for text in chunk.texts:
                        if text:
                            yield TextDelta(text)
                    for call in chunk.calls:
                        yield ToolCallDelta(calls, call.id, call.name, call.arguments)
                        calls += 1
                    if chunk.finish is not None:
                        finish = chunk.finish
                    if chunk.usage is not None:
                        usage = chunk.usage
                    answer_id = answer_id or chunk.id
                    answer_model = answer_model or chunk.model
            read_all = True
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model, "reading the stream") from err
        finally:
            if read_all:
                resp.release()
            else:
                resp.close()  # drop the connection rather than drain an abandoned stream
        if finish is None:
            msg = (
                f"stream ended early: {self._host} closed it before a finishReason arrived "
                "(the answer is incomplete)"
            )
            raise ProviderConnectionError(msg, provider=self._name, model=model)
        yield StreamEnd(
            map_finish_reason(finish, calls > 0),
            usage,
            answer_model if isinstance(answer_model, str) and answer_model else model,
            answer_id if isinstance(answer_id, str) else None,
        )

    # -- models --------------------------------------------------------------------------

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models ``GET /models`` lists (every page) that can ``generateContent``."""
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        out: list[ModelInfo] = []
        token: str | None = None
        for _ in range(100):  # a bound on pages, against a server that never ends
            params = {"pageSize": "1000"}
            if token:
                params["pageToken"] = token
            try:
                async with self._session.get(
                    URL(f"{self._base}/models"), headers=headers, params=params
                ) as resp:
                    data = await resp.read()
                    if resp.status >= 300:
                        raise self._http_error(resp, data, None)
            except asyncio.TimeoutError as err:
                raise self._timeout_error(None) from err
            except aiohttp.ClientError as err:
                raise self._connection_error(err, None, "listing models") from err
            try:
                page = json.loads(data)
                for entry in page.get("models") or ():
                    if "generateContent" not in (entry.get("supportedGenerationMethods") or ()):
                        continue
                    model_id = str(entry["name"]).removeprefix("models/")
                    info = lookup(model_id) or ModelInfo(
                        model_id,
                        context_window=entry.get("inputTokenLimit"),
                        max_output_tokens=entry.get("outputTokenLimit"),
                    )
                    out.append(info)
                token = page.get("nextPageToken")
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                msg = f"unexpected model list from the Gemini API: {snippet(data)!r}"
                raise MalformedResponseError(msg, provider=self._name, status=resp.status) from err
            if not token:
                break
        return out

"""The ``openai`` provider: Chat Completions over the client's pooled aiohttp session."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

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
from llmx_openai._models import lookup
from llmx_openai._settings import OpenAISettings
from llmx_openai._wire import (
    arguments_text,
    build_body,
    dumps,
    error_from_body,
    error_from_event,
    map_finish_reason,
    parse_completion,
    parse_usage,
    snippet,
)

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["DEFAULT_BASE_URL", "OpenAIProvider"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""Where requests go unless ``base_url`` or ``$OPENAI_BASE_URL`` says otherwise."""

_DONE = "[DONE]"


def _is_openai(url: URL) -> bool:
    host = url.host or ""
    return host == "api.openai.com" or host.endswith(".api.openai.com")


class OpenAIProvider:
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
        "_headers",
        "_host",
        "_max_tokens_field",
        "_models_url",
        "_name",
        "_secret",
        "_session",
        "_stream_headers",
        "_stream_usage",
        "_timeout",
    )

    def __init__(self, ctx: ProviderContext) -> None:
        settings = ctx.settings if isinstance(ctx.settings, OpenAISettings) else OpenAISettings()
        cfg = ctx.config
        name = ctx.instance
        raw_base = (cfg.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        base = URL(raw_base)
        if not base.is_absolute() or base.scheme not in ("http", "https"):
            msg = (
                f"base_url {raw_base!r} of provider instance {name!r} is not an http(s) URL; "
                f"set base_url = 'https://host/v1' in [providers.{name}]"
            )
            raise ConfigError(msg)
        key = cfg.api_key.get() if cfg.api_key is not None else os.environ.get(settings.api_key_env)
        if not key and _is_openai(base):
            msg = (
                f"no API key for provider instance {name!r} (type 'openai'): set "
                f'{settings.api_key_env} in the environment, or api_key = {{ env = "..." }} '
                f"in [providers.{name}]"
            )
            raise ConfigError(msg)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if settings.organization:
            headers["OpenAI-Organization"] = settings.organization
        if settings.project:
            headers["OpenAI-Project"] = settings.project
        for header, secret in cfg.headers.items():
            headers[header] = secret.get()
        field = settings.max_tokens_field
        if field == "auto":
            field = "max_completion_tokens" if _is_openai(base) else "max_tokens"
        self._name = name
        self._session = ctx.session
        self._secret = key or None
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}
        self._chat_url = URL(f"{raw_base}/chat/completions")
        self._models_url = URL(f"{raw_base}/models")
        self._host = f"{base.host}:{base.port}" if base.port else str(base.host)
        self._max_tokens_field = field
        self._stream_usage = settings.stream_usage
        self._timeout = cfg.timeout

    def __repr__(self) -> str:
        return f"OpenAIProvider(instance={self._name!r}, host={self._host!r})"

    # -- static facts --------------------------------------------------------------------

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Limits, capabilities and prices of an OpenAI model (None if unknown)."""
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
        if isinstance(err, aiohttp.ClientResponseError):
            detail = f"{type(err).__name__}: {err.status} {err.message}"
        else:
            detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        msg = f"connection to {self._host} failed while {doing} ({detail})"
        return ProviderConnectionError(msg, provider=self._name, model=model)

    def _chat_url_for(self, model: str) -> URL:
        """The chat completions URL for ``model`` (one URL for OpenAI; Azure's varies)."""
        return self._chat_url

    def _http_error(
        self, resp: aiohttp.ClientResponse, body: bytes, model: str | None
    ) -> ProviderError:
        return error_from_body(
            resp.status, resp.headers, body, provider=self._name, model=model, secret=self._secret
        )

    # -- complete ------------------------------------------------------------------------

    def _body(self, request: Request, stream: bool) -> bytes:
        return dumps(
            build_body(
                request,
                provider=self._name,
                max_tokens_field=self._max_tokens_field,
                stream=stream,
                stream_usage=self._stream_usage,
            )
        )

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        body = self._body(request, False)
        model = request.model
        try:
            async with self._session.post(
                self._chat_url_for(model), data=body, headers=self._headers
            ) as resp:
                data = await resp.read()
                if resp.status >= 300:
                    raise self._http_error(resp, data, model)
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model, "waiting for the answer") from err
        return parse_completion(data, request, self._name)

    # -- stream --------------------------------------------------------------------------

    async def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd."""
        body = self._body(request, True)
        model = request.model
        name = self._name
        try:
            resp = await self._session.post(
                self._chat_url_for(model), data=body, headers=self._stream_headers
            )
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model, "sending the request") from err
        done = False
        finish = None
        usage = None
        answer_id: Any = None
        answer_model: Any = None
        try:
            if resp.status >= 300:
                error = self._http_error(resp, await resp.read(), model)
                done = True  # the body was read: the connection can be reused
                raise error
            if resp.headers.get("Content-Type", "").startswith("application/json"):
                # A server that ignored "stream": a whole answer (or an error) as JSON.
                response = parse_completion(await resp.read(), request, name)
                done = True
                if response.text:
                    yield TextDelta(response.text)
                for index, call in enumerate(response.tool_calls):
                    yield ToolCallDelta(index, call.id, call.name, call.arguments)
                yield StreamEnd(response.finish_reason, response.usage, response.model, response.id)
                return
            # events(): each event is parsed when taken, so the first chunk of a large
            # read is not held back by the rest (bench: stream time to first chunk).
            events = SSEParser().events
            loads = json.loads
            seen: dict[int, list[bool]] = {}
            async for raw in resp.content.iter_any():
                if done:
                    continue  # read to the end so the connection can be reused
                for event in events(raw):
                    data = event.data
                    if data == _DONE:
                        done = True
                        break
                    try:
                        obj = loads(data)
                        error = obj.get("error")
                        if error:
                            raise error_from_event(error, name, model, self._secret)
                        if not answer_id:  # Azure's first chunk has an empty id and model
                            answer_id = obj.get("id")
                            answer_model = obj.get("model")
                        if obj.get("usage"):
                            usage = parse_usage(obj["usage"], name, model)
                        choices = obj.get("choices")
                        if not choices:
                            continue
                        choice = choices[0]
                        delta = choice.get("delta")
                        reason = choice.get("finish_reason")
                        text = delta.get("content") if delta else None
                        calls = delta.get("tool_calls") if delta else None
                    except (ValueError, AttributeError, TypeError, IndexError) as err:
                        msg = f"unexpected stream event from the OpenAI API: {snippet(data.encode())!r}"
                        raise MalformedResponseError(
                            msg, provider=name, model=model, status=200
                        ) from err
                    if text and type(text) is str:
                        yield TextDelta(text)
                    if calls:
                        for chunk in self._tool_deltas(calls, seen, model):
                            yield chunk
                    if reason:
                        finish = map_finish_reason(reason)
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            if not done:
                raise self._connection_error(err, model, "reading the stream") from err
        finally:
            if done:
                resp.release()
            else:
                resp.close()  # drop the connection rather than drain an abandoned stream
        if not done and finish is None:
            msg = (
                f"stream ended early: {self._host} closed it before a finish reason or "
                "[DONE] arrived (the answer is incomplete)"
            )
            raise ProviderConnectionError(msg, provider=name, model=model)
        yield StreamEnd(
            finish,
            usage,
            answer_model if isinstance(answer_model, str) and answer_model else model,
            answer_id if isinstance(answer_id, str) else None,
        )

    def _tool_deltas(
        self, calls: Any, seen: dict[int, list[bool]], model: str
    ) -> list[ToolCallDelta]:
        """Tool-call deltas; id and name go out once per index, even if a server repeats them."""
        out = []
        try:
            for position, call in enumerate(calls):
                index = call.get("index")
                if type(index) is not int:
                    index = position
                fn = call.get("function") or {}
                args = arguments_text(fn.get("arguments"))
                state = seen.get(index)
                if state is None:
                    state = seen[index] = [False, False]
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
            raise MalformedResponseError(msg, provider=self._name, model=model, status=200) from err
        return out

    # -- models --------------------------------------------------------------------------

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models ``GET /models`` lists, with the static facts known about each."""
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        try:
            async with self._session.get(self._models_url, headers=headers) as resp:
                data = await resp.read()
                if resp.status >= 300:
                    raise self._http_error(resp, data, None)
        except asyncio.TimeoutError as err:
            raise self._timeout_error(None) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, None, "listing models") from err
        try:
            entries = json.loads(data)["data"]
            ids = sorted({e["id"] for e in entries if isinstance(e["id"], str)})
        except (ValueError, KeyError, TypeError) as err:
            msg = f"unexpected model list from the OpenAI API: {snippet(data)!r}"
            raise MalformedResponseError(msg, provider=self._name, status=resp.status) from err
        return [lookup(model_id) or ModelInfo(model_id) for model_id in ids]

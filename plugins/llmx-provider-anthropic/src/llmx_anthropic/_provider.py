"""The ``anthropic`` provider: the Messages API over the client's pooled aiohttp session."""

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
    Usage,
)
from llmx.plugin import SSEParser
from llmx_anthropic._models import FIXED_SAMPLING, base_id, lookup
from llmx_anthropic._settings import AnthropicSettings
from llmx_anthropic._wire import (
    build_body,
    compact_json,
    dumps,
    error_from_body,
    error_from_event,
    malformed,
    map_stop_reason,
    parse_message,
    parse_usage,
    snippet,
)

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["DEFAULT_BASE_URL", "AnthropicProvider"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
"""Where requests go unless ``base_url`` or ``$ANTHROPIC_BASE_URL`` says otherwise."""


class _StreamState:
    """What a stream has told so far (usage arrives in two events)."""

    __slots__ = ("blocks", "done", "finish", "id", "model", "next_tool", "usage")

    def __init__(self) -> None:
        self.done = False
        self.finish: Any = None
        self.usage: dict[str, Any] = {}
        self.id: Any = None
        self.model: Any = None
        self.blocks: dict[int, list[Any]] = {}  # index -> [tool index, json pieces]
        self.next_tool = 0

    def finished(self) -> bool:
        """Whether ``message_stop`` arrived."""
        return self.done


class AnthropicProvider:
    """Anthropic's Messages API (``POST /v1/messages``), streaming and not.

    Built by the core from ``[providers.NAME]`` with ``type = "anthropic"``: it borrows
    the instance's pooled session (never closing it). ``base_url`` defaults to
    ``$ANTHROPIC_BASE_URL``, else ``https://api.anthropic.com``; the API key is
    ``api_key``, else the variable named by ``api_key_env`` (``ANTHROPIC_API_KEY``),
    sent as ``x-api-key`` with ``anthropic-version``.
    """

    __slots__ = (
        "_default_max_tokens",
        "_headers",
        "_host",
        "_messages_url",
        "_models_url",
        "_name",
        "_secret",
        "_session",
        "_stream_headers",
        "_timeout",
    )

    def __init__(self, ctx: ProviderContext) -> None:
        settings = (
            ctx.settings if isinstance(ctx.settings, AnthropicSettings) else AnthropicSettings()
        )
        cfg = ctx.config
        name = ctx.instance
        raw_base = (
            cfg.base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        base = URL(raw_base)
        if not base.is_absolute() or base.scheme not in ("http", "https"):
            msg = (
                f"base_url {raw_base!r} of provider instance {name!r} is not an http(s) URL; "
                f"set base_url = 'https://api.anthropic.com' in [providers.{name}]"
            )
            raise ConfigError(msg)
        key = cfg.api_key.get() if cfg.api_key is not None else os.environ.get(settings.api_key_env)
        if not key:
            msg = (
                f"no API key for provider instance {name!r} (type 'anthropic'): set "
                f'{settings.api_key_env} in the environment, or api_key = {{ env = "..." }} '
                f"in [providers.{name}]"
            )
            raise ConfigError(msg)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "x-api-key": key,
            "anthropic-version": settings.version,
        }
        if settings.beta:
            headers["anthropic-beta"] = ",".join(settings.beta)
        for header, secret in cfg.headers.items():
            headers[header] = secret.get()
        self._name = name
        self._session = ctx.session
        self._secret = key
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}
        self._messages_url = URL(f"{raw_base}/v1/messages")
        self._models_url = URL(f"{raw_base}/v1/models")
        self._host = f"{base.host}:{base.port}" if base.port else str(base.host)
        self._default_max_tokens = settings.default_max_tokens
        self._timeout = cfg.timeout

    def __repr__(self) -> str:
        return f"AnthropicProvider(instance={self._name!r}, host={self._host!r})"

    # -- static facts --------------------------------------------------------------------

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Limits, capabilities and prices of a Claude model (None if unknown)."""
        return lookup(model)

    def _max_tokens(self, model: str) -> int:
        if self._default_max_tokens is not None:
            return self._default_max_tokens
        info = lookup(model)
        if info is None or not info.max_output_tokens:
            return 4096
        return min(info.max_output_tokens, 8192)

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

    # -- complete ------------------------------------------------------------------------

    def _body(self, request: Request, stream: bool) -> bytes:
        return dumps(
            build_body(
                request,
                provider=self._name,
                max_tokens=self._max_tokens(request.model),
                stream=stream,
                fixed_sampling=base_id(request.model) in FIXED_SAMPLING,
            )
        )

    async def complete(self, request: Request) -> Response:
        """Send ``request`` and return the whole answer."""
        body = self._body(request, False)
        model = request.model
        try:
            async with self._session.post(
                self._messages_url, data=body, headers=self._headers
            ) as resp:
                data = await resp.read()
                if resp.status >= 300:
                    raise self._http_error(resp, data, model)
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model, "waiting for the answer") from err
        return parse_message(data, request, self._name)

    # -- stream --------------------------------------------------------------------------

    async def stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield text and tool-call deltas, then one StreamEnd.

        A tool call's id and name are yielded when its block starts and its input, as
        compact JSON, when the block ends, so a streamed call equals the same call
        answered whole.
        """
        body = self._body(request, True)
        model = request.model
        try:
            resp = await self._session.post(
                self._messages_url, data=body, headers=self._stream_headers
            )
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            raise self._connection_error(err, model, "sending the request") from err
        state = _StreamState()
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
                if state.done:
                    continue  # read to the end so the connection can be reused
                for event in events(raw):
                    for chunk in self._on_event(event.event, event.data, state, model):
                        yield chunk
                    if state.finished():
                        break
            read_all = True
        except asyncio.TimeoutError as err:
            raise self._timeout_error(model) from err
        except aiohttp.ClientError as err:
            if not state.done:
                raise self._connection_error(err, model, "reading the stream") from err
        finally:
            if read_all:
                resp.release()
            else:
                resp.close()  # drop the connection rather than drain an abandoned stream
        if not state.done:
            msg = (
                f"stream ended early: {self._host} closed it before message_stop "
                "(the answer is incomplete)"
            )
            raise ProviderConnectionError(msg, provider=self._name, model=model)
        yield StreamEnd(
            map_stop_reason(state.finish),
            parse_usage(state.usage, self._name, model) if state.usage else Usage(),
            state.model if isinstance(state.model, str) and state.model else model,
            state.id if isinstance(state.id, str) else None,
        )

    def _on_event(self, name: str, data: str, state: _StreamState, model: str) -> list[StreamChunk]:
        """The chunks one named event yields (updating ``state``)."""
        if name == "ping":
            return []
        try:
            obj = json.loads(data)
        except ValueError as err:
            msg = f"stream event {name!r} is not JSON: {snippet(data.encode())!r}"
            raise malformed(msg, self._name, model) from err
        if name == "error":
            raise error_from_event(
                obj.get("error") if isinstance(obj, dict) else None, self._name, model, self._secret
            )
        try:
            return self._dispatch(name, obj, state)
        except (AttributeError, TypeError, KeyError, ValueError) as err:
            msg = f"unexpected {name!r} event from the Anthropic API: {snippet(data.encode())!r}"
            raise MalformedResponseError(msg, provider=self._name, model=model, status=200) from err

    def _dispatch(self, name: str, obj: Any, state: _StreamState) -> list[StreamChunk]:
        if name == "content_block_delta":
            delta = obj["delta"]
            kind = delta.get("type")
            if kind == "text_delta":
                text = delta["text"]
                return [TextDelta(text)] if text else []
            if kind == "input_json_delta":
                block = state.blocks.get(obj["index"])
                if block is not None:
                    block[1].append(delta["partial_json"])
            return []
        if name == "content_block_start":
            block = obj["content_block"]
            if block.get("type") == "tool_use":
                tool_index = state.next_tool
                state.next_tool += 1
                state.blocks[obj["index"]] = [tool_index, []]
                return [ToolCallDelta(tool_index, block["id"], block["name"])]
            if block.get("type") == "text" and block.get("text"):
                return [TextDelta(block["text"])]
            return []
        if name == "content_block_stop":
            block = state.blocks.pop(obj["index"], None)
            if block is None:
                return []
            return [ToolCallDelta(block[0], arguments=compact_json("".join(block[1])))]
        if name == "message_start":
            message = obj["message"]
            state.id = message.get("id")
            state.model = message.get("model")
            state.usage.update(message.get("usage") or {})
            return []
        if name == "message_delta":
            state.finish = obj["delta"].get("stop_reason")
            usage = obj.get("usage") or {}
            state.usage.update({k: v for k, v in usage.items() if v is not None})
            return []
        if name == "message_stop":
            state.done = True
        return []  # unknown events are ignored, as Anthropic's versioning policy asks

    # -- models --------------------------------------------------------------------------

    async def list_models(self) -> Sequence[ModelInfo]:
        """The models ``GET /v1/models`` lists (every page), with the facts known about each."""
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        out: list[ModelInfo] = []
        after: str | None = None
        for _ in range(100):  # a bound on pages, against a server that never ends
            params = {"limit": "1000"}
            if after is not None:
                params["after_id"] = after
            try:
                async with self._session.get(
                    self._models_url, headers=headers, params=params
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
                entries = page["data"]
                for entry in entries:
                    model_id = entry["id"]
                    info = lookup(model_id)
                    if info is None:
                        info = ModelInfo(
                            model_id,
                            context_window=entry.get("max_input_tokens"),
                            max_output_tokens=entry.get("max_tokens"),
                        )
                    out.append(info)
                more, after = page.get("has_more") is True, page.get("last_id")
            except (ValueError, KeyError, TypeError) as err:
                msg = f"unexpected model list from the Anthropic API: {snippet(data)!r}"
                raise MalformedResponseError(msg, provider=self._name, status=resp.status) from err
            if not more or not after:
                break
        return out

"""HTTP helpers for provider plugins: what every HTTP provider would otherwise write again.

A provider for an HTTP API needs the same plumbing whatever its wire format: a base URL
and key from its settings, headers, posting JSON, turning transport failures and
timeouts into llmx errors, turning an error status and body into the right typed error
(with ``Retry-After``), and reading a stream of server-sent events or newline-delimited
JSON while releasing the connection when the stream was read to its end and closing it
when it was not. This module is that plumbing, so a provider is left with its wire
format::

    from llmx.http import Endpoint, api_key, base_url

    class AcmeProvider:
        def __init__(self, ctx):
            key = api_key(ctx, env="ACME_API_KEY")
            self._http = Endpoint(
                ctx,
                base_url=base_url(ctx, env="ACME_BASE_URL", default="https://api.acme.ai/v1"),
                headers={"Authorization": f"Bearer {key}"},
                secret=key,
            )
            self._url = self._http.url("/chat")

        async def complete(self, request):
            data = await self._http.post(self._url, encode(request), request.model)
            return decode(data, request)

        def stream(self, request):
            return self._http.stream(self._url, encode(request, stream=True),
                                     request.model, AcmeDecoder(request))

The parts:

* :func:`base_url` and :func:`api_key` read an instance's settings with llmx's error
  messages (the key path and the fix); :class:`Endpoint` holds the URL, the headers
  (with the instance's configured ``headers``), the pooled session and the secret, and
  sends: :meth:`Endpoint.post`, :meth:`Endpoint.get`, :meth:`Endpoint.stream`.
* :meth:`Endpoint.transport` is a context manager that maps aiohttp's errors and
  timeouts to :class:`~llmx.ProviderConnectionError` / :class:`~llmx.ProviderTimeoutError`
  (for requests the helpers do not cover).
* :func:`error_from_response` turns a non-2xx answer into the typed error: the class
  from the status (:func:`~llmx.plugin.error_class_for_status`), refined by the body
  (context-window errors in every known wording, content filters), the provider's
  message with the secret scrubbed out, ``Retry-After`` / ``retry-after-ms`` and
  ``x-should-retry``. :func:`error_from_payload` does the same for an error object
  inside a 200 answer or a stream. A provider whose error bodies have another shape
  passes its own ``describe`` (body → :class:`ErrorInfo`).
* :class:`StreamDecoder` is what a provider writes for a stream: ``feed`` turns one
  event (SSE) or one JSON value (NDJSON) into chunks; :meth:`Endpoint.stream` does the
  reading, the framing, the "stream ended early" check and the connection handling.
  :class:`NDJSONParser` is the NDJSON framing on its own (the SSE one is
  :class:`~llmx.plugin.SSEParser`).
* :func:`collect_pages` fetches a paged list, stopping when the cursor does not advance
  and listing each id once.

Every request the pooled session sends carries llmx's ``User-Agent``
(:data:`USER_AGENT`) unless the instance's ``headers`` set another.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import json
import os
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

import aiohttp
import attrs
from yarl import URL

from llmx._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContentFilterError,
    ContextWindowExceededError,
    MalformedResponseError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    UnsupportedFeatureError,
    error_class_for_status,
    parse_retry_after,
)
from llmx._events import attempt_headers
from llmx._scrub import remember, scrub
from llmx._sse import SSEEvent, SSEParser
from llmx._types import Text
from llmx._version import USER_AGENT

if TYPE_CHECKING:
    from types import TracebackType

    from llmx._components import ProviderContext
    from llmx._types import Image, Message, Request, StreamChunk, StreamEnd

__all__ = [
    "ERROR_BODY_CAP",
    "ERROR_TYPES",
    "USER_AGENT",
    "Endpoint",
    "ErrorInfo",
    "NDJSONParser",
    "StreamDecoder",
    "api_key",
    "base_url",
    "refuse_choices",
    "collect_pages",
    "describe_error",
    "dumps",
    "error_from_payload",
    "error_from_response",
    "inline_image",
    "is_context_window_error",
    "json_object",
    "snippet",
    "split_system",
    "token_count",
    "unexpected",
]

T = TypeVar("T")

Framing = Literal["sse", "sse-data", "ndjson"]

_ONE_WRITE = 2**20
"""The largest body posted as bytes (aiohttp's threshold for its large-body warning)."""


# -- settings --------------------------------------------------------------------------


def base_url(
    ctx: ProviderContext, *, default: str | None, env: str | None = None, example: str = ""
) -> str:
    """The instance's base URL without a trailing slash: ``base_url``, else ``$env``, else
    ``default``.

    Raises :class:`~llmx.ConfigError` naming ``[providers.NAME]`` when there is none or
    it is not an absolute http(s) URL; ``example`` (default: ``default``) is the value
    the message suggests.
    """
    name = ctx.instance
    raw = ctx.config.base_url or (os.environ.get(env) if env else None) or default or ""
    raw = raw.rstrip("/")
    hint = example or default or "https://HOST/v1"
    if not raw:
        where = f" or {env} in the environment" if env else ""
        msg = (
            f"no base URL for provider instance {name!r} (type {ctx.config.type!r}): set "
            f"base_url = '{hint}' in [providers.{name}]{where}"
        )
        raise ConfigError(msg)
    url = URL(raw)
    remember(url.password)
    if not url.is_absolute() or url.scheme not in ("http", "https"):
        msg = (
            f"base_url {raw!r} of provider instance {name!r} is not an http(s) URL; "
            f"set base_url = '{hint}' in [providers.{name}]"
        )
        raise ConfigError(msg)
    return raw


@overload
def api_key(
    ctx: ProviderContext, *, env: str | Sequence[str], required: Literal[True] = True
) -> str: ...
@overload
def api_key(ctx: ProviderContext, *, env: str | Sequence[str], required: bool) -> str | None: ...
def api_key(ctx: ProviderContext, *, env: str | Sequence[str], required: bool = True) -> str | None:
    """The instance's API key: ``api_key`` from the config, else the first of the
    environment variables ``env`` that is set.

    With ``required`` (the default), a missing key is a :class:`~llmx.ConfigError` that
    names the variable and the config key to set; else None is returned.
    """
    names = (env,) if isinstance(env, str) else tuple(env)
    cfg = ctx.config
    if cfg.api_key is not None:
        key: str | None = cfg.api_key.get()
    else:
        key = next((v for v in map(os.environ.get, names) if v), None)
    remember(key)
    if not key and required:
        name = ctx.instance
        msg = (
            f"no API key for provider instance {name!r} (type {cfg.type!r}): set "
            f'{" or ".join(names)} in the environment, or api_key = {{ env = "..." }} '
            f"in [providers.{name}]"
        )
        raise ConfigError(msg)
    return key or None


# -- bodies ----------------------------------------------------------------------------

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


_dumps_ascii = json.JSONEncoder(separators=(",", ":")).encode


def dumps(body: Any) -> bytes:
    """A request body as compact UTF-8 JSON bytes (a lone surrogate, half of an emoji,
    is sent as its ``\\ud83d`` escape, which every JSON parser reads back)."""
    try:
        return _dumps(body).encode()
    except UnicodeEncodeError:
        return _dumps_ascii(body).encode()


def json_object(data: bytes, *, provider: str, model: str | None) -> dict[str, Any]:
    """A 2xx body that must be a JSON object, parsed (else the "unexpected response"
    error quoting it)."""
    try:
        obj = json.loads(data)
    except ValueError as err:
        what = f"the body is not JSON: {snippet(data)!r}"
        raise unexpected(what, provider=provider, model=model) from err
    if type(obj) is not dict:
        what = f"expected a JSON object, got {type(obj).__name__}"
        raise unexpected(what, provider=provider, model=model)
    return obj


def split_system(request: Request, *, api: str, provider: str) -> tuple[str | None, list[Message]]:
    """``(system prompt, the other messages)`` for APIs that take the system prompt apart
    from the turns: the system messages' text joined by blank lines (None without any).
    A system message holding anything but text is refused before anything is sent
    (:class:`~llmx.UnsupportedFeatureError` naming ``api``)."""
    systems: list[str] = []
    turns: list[Message] = []
    for message in request.messages:
        if message.role != "system":
            turns.append(message)
        elif any(type(p) is not Text for p in message.content):
            msg = f"{api}'s system prompt takes text only"
            raise UnsupportedFeatureError(
                msg, provider=provider, model=request.model, feature="system_parts"
            )
        elif message.text:
            systems.append(message.text)
    return "\n\n".join(systems) or None, turns


def refuse_choices(
    request: Request, *, api: str, provider: str, n: bool = False, logprobs: bool = False
) -> None:
    """Refuse, before anything is sent, ``Request.n > 1`` and ``logprobs`` on an API that
    has neither (:class:`~llmx.UnsupportedFeatureError` naming ``api``, the instance and
    the model; ``feature`` is ``"n"`` or ``"logprobs"``). ``n=True``: the API takes
    ``n``; ``logprobs=True``: it takes logprobs; only the other is refused. Cheap when
    neither is asked (three attribute reads): call it on every request."""
    if request.n is not None and not n:
        msg = (
            f"{provider}/{request.model}: {api} gives one answer per request; n={request.n} "
            "is OpenAI Chat Completions' (send the request n times instead)"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=request.model, feature="n")
    if not logprobs and (request.logprobs or request.top_logprobs is not None):
        msg = (
            f"{provider}/{request.model}: {api} returns no token logprobs; "
            "logprobs=/top_logprobs= are OpenAI's and Gemini's"
        )
        raise UnsupportedFeatureError(
            msg, provider=provider, model=request.model, feature="logprobs"
        )


def inline_image(
    image: Image, accepted: Collection[str], *, api: str, provider: str, model: str
) -> tuple[str, str]:
    """``(media type, base64 data)`` of an image given as bytes or as a ``data:`` URL, for
    APIs that take images inline; a media type outside ``accepted`` is refused before
    anything is sent (:class:`~llmx.UnsupportedFeatureError` naming what ``api`` takes)."""
    if image.data is not None:
        media_type, data = image.media_type, base64.b64encode(image.data).decode()
    else:
        head, _, data = (image.url or "").partition(";base64,")
        media_type = head[len("data:") :]
    if media_type is None or media_type not in accepted:
        msg = (
            f"{api} accepts images of type {', '.join(sorted(accepted))}, not "
            f"{media_type!r}; convert the image first"
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=model, feature="image_type")
    return media_type, data


def unexpected(
    what: str, *, provider: str, model: str | None, status: int | None = 200
) -> MalformedResponseError:
    """The error for an answer that is not in the documented format: ``what`` says how
    (``"no 'choices' in the answer"``)."""
    msg = f"unexpected response: {what}"
    return MalformedResponseError(msg, provider=provider, model=model, status=status)


def token_count(
    usage: Mapping[str, Any], field: str, *, provider: str, model: str | None, where: str = "usage"
) -> int:
    """``usage[field]`` as a token count: 0 when absent, an error when not an integer.

    ``where`` names the object in the message (``"usageMetadata"``).
    """
    value = usage.get(field)
    if value is None:
        return 0
    if type(value) is not int:
        what = f"{where}.{field} is {type(value).__name__}, not an integer"
        raise unexpected(what, provider=provider, model=model)
    return value


# -- errors ----------------------------------------------------------------------------


@attrs.frozen
class ErrorInfo:
    """What an error body says, as a provider's ``describe`` function reads it.

    ``message`` the provider's own words; ``code`` its machine-readable error code and
    ``kind`` its error type or category (the error's ``code`` is the first of the two
    that is set); ``retryable`` / ``retry_after`` override what the status and headers
    say; ``error_class`` overrides the class the status gives (e.g. a 400 that is really
    a rejected key).
    """

    message: str | None = None
    code: str | None = None
    kind: str | None = None
    retryable: bool | None = None
    retry_after: float | None = None
    error_class: type[ProviderError] | None = None


_NO_INFO = ErrorInfo()

_CONTEXT = re.compile(
    r"context[ _-]?(?:length|window|size|limit)"  # OpenAI, vLLM, Mistral, llama.cpp, Ollama
    r"|prompt is too long"  # Anthropic
    r"|exceeds? the maximum (?:number of )?tokens"  # Gemini
    r"|input token count"  # Gemini
    r"|too many (?:input )?tokens"
    r"|maximum (?:model|input|sequence) length"  # vLLM, TGI
    r"|input is too long"  # Bedrock
    r"|max_new_tokens` must be <="  # TGI
    r"|reduce the length of the (?:messages|prompt|input)",
    re.I,
)
_CONTEXT_CODES = frozenset(
    {
        "context_length_exceeded",  # OpenAI, Azure
        "exceed_context_size_error",  # llama.cpp (its "type")
        "context_window_exceeded",
    }
)
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})

ERROR_TYPES: Mapping[str, type[ProviderError]] = {
    "invalid_request_error": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": ModelNotFoundError,
    "rate_limit_error": RateLimitError,
    "rate_limit_exceeded": RateLimitError,
    "api_error": ServerError,
    "server_error": ServerError,
    "overloaded_error": ServerError,
    "timeout_error": ProviderTimeoutError,
}
"""The error class of an in-band error by its ``type``, as OpenAI, Anthropic and the
servers imitating them name them (the default ``types`` of :func:`error_from_payload`)."""
_TAGS = re.compile(rb"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)
_SPACE = re.compile(r"\s+")


def is_context_window_error(message: str, *codes: str | None) -> bool:
    """Whether an error says the prompt does not fit the model's context window.

    ``codes`` are the error's code and type, if any. Knows the codes and wordings of
    OpenAI and Azure, Anthropic, Gemini, llama.cpp's server, vLLM, TGI, Mistral, Ollama
    and Bedrock.
    """
    return any(c in _CONTEXT_CODES for c in codes) or _CONTEXT.search(message) is not None


def snippet(body: bytes, limit: int = 200) -> str:
    """A short, tag-stripped, whitespace-collapsed excerpt of a body, for messages."""
    text = _TAGS.sub(b" ", body[:4096]).decode("utf-8", "replace")
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _status_code(value: Any) -> int | None:
    """An HTTP error status some servers put in an error's ``code``."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if type(value) is int and 400 <= value < 600:
        return value
    return None


def describe_error(body: Any) -> ErrorInfo:
    """Read the error shapes most HTTP APIs use (the default ``describe``).

    ``{"error": {"message", "type", "code"}}`` (OpenAI, Anthropic, Azure, vLLM,
    llama.cpp), ``{"error": {"message", "status"}}`` (Google), ``{"error": "text"}``,
    ``{"message": ...}``, ``{"detail": "text" | [{"msg": ...}]}`` (FastAPI) and a list
    holding one of those. A numeric ``code`` (an HTTP status repeated) is not kept.
    """
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return _NO_INFO
    err = body.get("error", body)
    if isinstance(err, str):
        return ErrorInfo(err or None)
    if not isinstance(err, dict):
        return _NO_INFO
    message = _text(err.get("message"))
    if message is None:
        detail = body.get("detail")
        if isinstance(detail, str):
            message = detail or None
        elif isinstance(detail, list):  # FastAPI validation errors
            msgs = [d.get("msg") for d in detail if isinstance(d, dict)]
            message = "; ".join(m for m in msgs if isinstance(m, str) and m) or None
    code = err.get("code")
    return ErrorInfo(
        message,
        code if isinstance(code, str) and code and not code.isdigit() else None,
        _text(err.get("type")) or _text(err.get("status")),
    )


def _scrub(message: str, secret: str | None) -> str:
    remember(secret)  # one scrubber for every secret, longest first
    return scrub(message)


def _build(
    cls: type[ProviderError],
    info: ErrorInfo,
    message: str,
    *,
    provider: str,
    model: str | None,
    status: int | None,
    retryable: bool | None,
    retry_after: float | None,
) -> ProviderError:
    code, kind = info.code, info.kind
    if info.error_class is not None:
        cls = info.error_class
    elif cls is BadRequestError:
        if is_context_window_error(message, code, kind):
            cls = ContextWindowExceededError
        elif code in _FILTER_CODES or kind in _FILTER_CODES:
            cls = ContentFilterError
    if info.retryable is not None:
        retryable = info.retryable
    elif "insufficient_quota" in (code, kind):
        retryable = False  # an exhausted quota does not come back by waiting
    return cls(
        message,
        provider=provider,
        model=model,
        status=status,
        retryable=retryable,
        retry_after=retry_after if retry_after is not None else info.retry_after,
        code=code or kind,
    )


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    model: str | None,
    secret: str | None = None,
    describe: Callable[[Any], ErrorInfo] = describe_error,
) -> ProviderError:
    """The typed llmx error for a non-2xx answer.

    The class comes from the status, refined by what ``describe`` reads from the JSON
    body (:class:`~llmx.ContextWindowExceededError` for every known wording of "the
    prompt is too long", :class:`~llmx.ContentFilterError`); the message is the
    provider's own (else an excerpt of the body) with ``secret`` replaced by ``***``;
    ``retry_after`` comes from ``retry-after-ms`` / ``Retry-After`` (else from the
    body); ``x-should-retry: true|false`` overrides whether it is retryable.
    """
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    info = describe(parsed) if parsed is not None else _NO_INFO
    message = info.message or snippet(body) or f"HTTP {status} with an empty body"
    should_retry = headers.get("x-should-retry")
    return _build(
        error_class_for_status(status),
        info,
        _scrub(message, secret),
        provider=provider,
        model=model,
        status=status,
        retryable=True if should_retry == "true" else False if should_retry == "false" else None,
        retry_after=parse_retry_after(headers),
    )


def error_from_payload(
    error: Any,
    *,
    provider: str,
    model: str | None,
    secret: str | None = None,
    describe: Callable[[Any], ErrorInfo] = describe_error,
    status: int | None = None,
    types: Mapping[str, type[ProviderError]] = ERROR_TYPES,
    default: type[ProviderError] = ServerError,
) -> ProviderError:
    """The typed llmx error for an error object inside a 200 answer or a stream.

    ``error`` is the value of the payload's ``"error"`` key. The class comes from
    ``status`` (else an HTTP status the error's ``code`` holds, as vLLM, llama.cpp and
    Google send), else from ``types`` (default :data:`ERROR_TYPES`) keyed by the error's
    type or code, else ``default``; then it is refined as in :func:`error_from_response`.
    """
    info = describe({"error": error})
    if status is None and isinstance(error, dict):
        status = _status_code(error.get("code"))
    if status is not None:
        cls = error_class_for_status(status)
    else:
        cls = types.get(info.kind or info.code or "") or default
    message = _scrub(info.message or "the stream reported an error", secret)
    return _build(
        cls,
        info,
        message,
        provider=provider,
        model=model,
        status=status,
        retryable=None,
        retry_after=None,
    )


# -- streams ---------------------------------------------------------------------------


class StreamDecoder(Protocol):
    """Turns a provider's stream, one event at a time, into llmx stream chunks.

    :meth:`Endpoint.stream` calls :meth:`feed` with each
    :class:`~llmx.plugin.SSEEvent` (``framing="sse"``), each event's data string
    (``framing="sse-data"``) or each parsed JSON value (``framing="ndjson"``), yields the chunks it returns in order, and once the body
    has ended (or ``finished`` became true) yields :meth:`end`'s
    :class:`~llmx.StreamEnd`. ``feed`` may raise a :class:`~llmx.ProviderError` (an
    error event); a ``ValueError``, ``KeyError``, ``TypeError``, ``AttributeError`` or
    ``IndexError`` it raises becomes a :class:`~llmx.MalformedResponseError` quoting
    the event.
    """

    finished: bool
    """True once the stream's final event arrived (the rest of the body is drained
    unread, so the connection can be reused)."""

    final_event: str
    """What the final event is called, for the "stream ended early" message (e.g.
    ``"message_stop"``)."""

    def feed(self, item: Any) -> Sequence[StreamChunk]:
        """The chunks one event (or JSON line) gives, in order; often none."""
        ...

    def end(self) -> StreamEnd | None:
        """The stream's end (finish reason, usage, model, id), or None if what arrived
        is not a whole answer (then the stream "ended early")."""
        ...


class NDJSONParser:
    """Incremental newline-delimited JSON parser: bytes in, JSON values out.

    Lines end with ``\\n`` (a ``\\r`` before it is ignored); a chunk boundary may fall
    anywhere, including inside a multi-byte UTF-8 character; blank lines are skipped;
    a line that is not JSON raises ``ValueError``. :meth:`close` parses a last line that
    has no newline.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        """The JSON values of the complete lines ``data`` finishes."""
        buffer = self._buffer + data if self._buffer else data
        end = buffer.rfind(b"\n")
        if end < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 1 :]
        loads = json.loads
        return [loads(line) for line in buffer[:end].split(b"\n") if line.strip()]

    @property
    def buffered(self) -> int:
        """Bytes of the unterminated line held so far."""
        return len(self._buffer)

    def close(self) -> list[Any]:
        """The value of an unterminated last line (if any); the parser is then empty."""
        rest, self._buffer = self._buffer, b""
        return [json.loads(rest)] if rest.strip() else []


class _Transport:
    """The context manager :meth:`Endpoint.transport` returns (a class: it is on every
    request, and a class is cheaper than a generator-based context manager)."""

    __slots__ = ("_doing", "_endpoint", "_model")

    def __init__(self, endpoint: Endpoint, model: str | None, doing: str) -> None:
        self._endpoint = endpoint
        self._model = model
        self._doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None or err is None:
            return
        mapped = self._endpoint.transport_error(err, self._model, self._doing)
        if mapped is not None:
            raise mapped from err


class Endpoint:
    """One provider instance's HTTP endpoint: base URL, headers, the pooled session.

    ``headers`` are the provider's own (auth, API version); the instance's configured
    ``headers`` are added on top, and ``Content-Type``/``Accept`` default to JSON.
    ``secret`` (the key or token) is scrubbed from every error message and never shown
    in the repr. ``describe`` reads the provider's error bodies (default
    :func:`describe_error`); ``errors`` replaces :func:`error_from_response` altogether.
    Build it once, in the provider's ``__init__``: it computes its headers once.
    """

    __slots__ = (
        "_describe",
        "_errors",
        "_secret",
        "get_headers",
        "headers",
        "host",
        "max_body",
        "max_event",
        "name",
        "session",
        "stream_headers",
        "timeout",
        "url_base",
    )

    def __init__(
        self,
        ctx: ProviderContext,
        *,
        base_url: str,
        headers: Mapping[str, str] = {},  # read, never changed
        secret: str | None = None,
        describe: Callable[[Any], ErrorInfo] = describe_error,
        errors: Callable[[int, Mapping[str, str], bytes, str | None], ProviderError] | None = None,
        stream_accept: str = "text/event-stream",
    ) -> None:
        url = URL(base_url)
        cfg = ctx.config
        merged = {"Content-Type": "application/json", "Accept": "application/json"}
        merged.update(headers)
        for header, value in cfg.headers.items():
            merged[header] = value.get()
        remember(secret)
        if (
            url.scheme == "http"
            and not _is_loopback(url.host)
            and (secret or cfg.headers)
            and not cfg.allow_insecure_http
        ):
            msg = (
                f"base_url {_shown(url)!r} of provider instance {ctx.instance!r} is plain http "
                "to another machine: its credentials would travel unencrypted. Use https, or "
                f"set allow_insecure_http = true in [providers.{ctx.instance}] if this network "
                "is trusted"
            )
            raise ConfigError(msg)
        self.max_body = cfg.max_response_bytes
        """The largest answer or stream read (bytes; ``max_response_bytes``)."""
        self.max_event = cfg.max_event_bytes
        """The largest server-sent event or NDJSON line read (bytes; ``max_event_bytes``)."""
        self.name = ctx.instance
        """The provider instance's name (``[providers.NAME]``), as errors carry it."""
        self.session = ctx.session
        """The pooled session (borrowed: never close it)."""
        self.url_base = base_url.rstrip("/")
        """The base URL, without a trailing slash."""
        self.host = f"{url.host}:{url.port}" if url.explicit_port else str(url.host)
        """``host`` or ``host:port``, as messages show it."""
        self.timeout = ctx.config.timeout
        """The instance's ``timeout`` (seconds), as messages show it."""
        self.headers = merged
        """The headers of a JSON request."""
        self.stream_headers = {**merged, "Accept": stream_accept}
        """The headers of a streaming request."""
        self.get_headers = {k: v for k, v in merged.items() if k != "Content-Type"}
        """The headers of a GET."""
        self._secret = secret
        self._describe = describe
        self._errors = errors

    def __repr__(self) -> str:
        return f"Endpoint(instance={self.name!r}, host={self.host!r})"

    def url(self, path: str, **query: str) -> URL:
        """``base_url + path`` (``path`` starts with ``/``), with an optional query."""
        url = URL(self.url_base + path)
        return url.with_query(query) if query else url

    # -- errors --------------------------------------------------------------------------

    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str | None
    ) -> ProviderError:
        """The typed error for a non-2xx answer (see :func:`error_from_response`)."""
        if self._errors is not None:
            return self._errors(status, headers, body, model)
        return error_from_response(
            status,
            headers,
            body,
            provider=self.name,
            model=model,
            secret=self._secret,
            describe=self._describe,
        )

    def payload_error(
        self,
        error: Any,
        model: str | None,
        *,
        status: int | None = None,
        types: Mapping[str, type[ProviderError]] = ERROR_TYPES,
        default: type[ProviderError] = ServerError,
    ) -> ProviderError:
        """The typed error for an error object inside a 200 answer or a stream (see
        :func:`error_from_payload`)."""
        return error_from_payload(
            error,
            provider=self.name,
            model=model,
            secret=self._secret,
            describe=self._describe,
            status=status,
            types=types,
            default=default,
        )

    def scrub(self, message: str) -> str:
        """``message`` with the endpoint's secret replaced by ``***``."""
        return _scrub(message, self._secret)

    def transport_error(
        self, err: BaseException, model: str | None, doing: str
    ) -> ProviderError | None:
        """The llmx error for a transport failure (None if ``err`` is not one)."""
        if isinstance(err, (asyncio.TimeoutError, aiohttp.ClientError)):
            return self._transport_error(err, model, doing)
        return None

    def _transport_error(
        self, err: asyncio.TimeoutError | aiohttp.ClientError, model: str | None, doing: str
    ) -> ProviderError:
        if isinstance(err, asyncio.TimeoutError):
            msg = (
                f"no answer from {self.host} within the timeout ({self.timeout:g} s; raise "
                f"timeout in [providers.{self.name}] if the model needs longer)"
            )
            return ProviderTimeoutError(msg, provider=self.name, model=model)
        if isinstance(err, aiohttp.ClientResponseError):
            detail = f"{type(err).__name__}: {err.status} {err.message}"
        else:
            detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        msg = f"connection to {self.host} failed while {doing} ({self.scrub(detail)})"
        return ProviderConnectionError(msg, provider=self.name, model=model)

    def transport(self, model: str | None, doing: str) -> _Transport:
        """A context manager turning aiohttp errors and timeouts inside it into
        :class:`~llmx.ProviderConnectionError` / :class:`~llmx.ProviderTimeoutError`;
        ``doing`` says when (``"listing models"``)."""
        return _Transport(self, model, doing)

    # -- requests ------------------------------------------------------------------------

    async def post(self, url: URL, body: bytes, model: str | None) -> bytes:
        """POST a JSON ``body`` and return the 2xx answer's bytes (else raise its error).

        Redirects are not followed (see :meth:`redirected`); an answer larger than
        ``max_response_bytes`` is refused as soon as it is known to be. Headers that an
        ``llmx_attempt_start`` hook added for the attempt go along (the endpoint's own
        win over one of the same name).
        """
        extra = attempt_headers.get()
        try:
            async with self.session.post(
                url,
                # aiohttp writes bytes in one go and warns past 1 MiB (a batch create, a
                # request with large images): a larger body is streamed from a buffer.
                data=body if len(body) <= _ONE_WRITE else io.BytesIO(body),
                headers=self.headers if extra is None else {**extra, **self.headers},
                allow_redirects=False,
            ) as resp:
                if resp.status >= 300:
                    raise await self._error_of(resp, model)
                length = resp.content_length
                if length is not None and length <= self.max_body:
                    return await resp.read()
                return await self._read_capped(resp, model)
        except (asyncio.TimeoutError, aiohttp.ClientError) as err:
            raise self._transport_error(err, model, "waiting for the answer") from err

    async def get(
        self, url: URL, *, params: Mapping[str, str] | None = None, doing: str = "listing models"
    ) -> Any:
        """GET ``url`` and return the 2xx answer's parsed JSON (else raise its error); a
        body that is not JSON is a :class:`~llmx.MalformedResponseError`."""
        try:
            async with self.session.get(
                url, headers=self.get_headers, params=params, allow_redirects=False
            ) as resp:
                if resp.status >= 300:
                    raise await self._error_of(resp, None)
                data = await self._read_capped(resp, None)
                status = resp.status
        except (asyncio.TimeoutError, aiohttp.ClientError) as err:
            raise self._transport_error(err, None, doing) from err
        try:
            return json.loads(data)
        except ValueError as err:
            msg = f"{self.host} answered with something that is not JSON while {doing}: {snippet(data)!r}"
            raise MalformedResponseError(msg, provider=self.name, status=status) from err

    async def post_form(
        self, url: URL, form: aiohttp.FormData, model: str | None, *, doing: str
    ) -> bytes:
        """POST a multipart ``form`` (a file upload) and return the 2xx answer's bytes
        (else raise its error); ``doing`` says what for, in transport errors."""
        headers = self.get_headers  # aiohttp sets the multipart Content-Type
        try:
            async with self.session.post(
                url, data=form, headers=headers, allow_redirects=False
            ) as resp:
                if resp.status >= 300:
                    raise await self._error_of(resp, model)
                return await self._read_capped(resp, model)
        except (asyncio.TimeoutError, aiohttp.ClientError) as err:
            raise self._transport_error(err, model, doing) from err

    async def get_lines(self, url: URL, *, doing: str) -> AsyncIterator[bytes]:
        """GET ``url`` and yield the lines of its body (JSONL, such as a batch's results,
        of any total size), without their line ends; a line longer than
        ``max_event_bytes`` is refused (:meth:`too_large`)."""
        cap = self.max_event
        try:
            async with self.session.get(
                url, headers=self.get_headers, allow_redirects=False
            ) as resp:
                if resp.status >= 300:
                    raise await self._error_of(resp, None)
                buffer = bytearray()
                async for part in resp.content.iter_any():
                    buffer += part
                    start = 0
                    while (end := buffer.find(b"\n", start)) >= 0:
                        line = bytes(buffer[start:end]).rstrip(b"\r")
                        start = end + 1
                        if line.strip():
                            yield line
                    del buffer[:start]
                    if len(buffer) > cap:
                        resp.close()
                        raise self.too_large(what="line", size=len(buffer), cap=cap, model=None)
                if buffer.strip():
                    yield bytes(buffer).rstrip(b"\r")
        except (asyncio.TimeoutError, aiohttp.ClientError) as err:
            raise self._transport_error(err, None, doing) from err

    async def _read_capped(self, resp: aiohttp.ClientResponse, model: str | None) -> bytes:
        """The body, read until ``max_response_bytes`` at most (then the connection is
        closed and the error raised: the rest is never read)."""
        cap = self.max_body
        length = resp.content_length
        if length is not None and length > cap:
            resp.close()
            raise self.too_large(what="answer", size=length, cap=cap, model=model)
        body = bytearray()  # grown in place, not a list of parts joined at the cap
        async for part in resp.content.iter_any():
            body += part
            if len(body) > cap:
                resp.close()
                raise self.too_large(what="answer", size=len(body), cap=cap, model=model)
        return bytes(body)

    async def _error_of(self, resp: aiohttp.ClientResponse, model: str | None) -> ProviderError:
        """The typed error of a non-2xx answer, from at most the first 64 KiB of its body
        (a longer body's connection is closed, not drained)."""
        if 300 <= resp.status < 400:
            resp.close()
            return self.redirected(resp, model)
        length = resp.content_length
        if length is not None and length <= ERROR_BODY_CAP:
            body = await resp.read()
        else:
            buffer = bytearray()
            while len(buffer) < ERROR_BODY_CAP:
                part = await resp.content.read(ERROR_BODY_CAP - len(buffer))
                if not part:
                    break
                buffer += part
            body = bytes(buffer)
            if not resp.content.at_eof():
                resp.close()
        return self.error(resp.status, resp.headers, body, model)

    def redirected(self, resp: aiohttp.ClientResponse, model: str | None) -> ProviderError:
        """The error for a redirect: llmx never follows one with credentials, so an API
        call that is redirected fails, naming where it was sent (a non-retried
        :class:`~llmx.MalformedResponseError`, code ``redirect``)."""
        location = resp.headers.get("Location", "")
        target = _shown(resp.url.join(URL(location))) if location else "nowhere"
        msg = (
            f"{self.host} redirected the request to {target} (HTTP {resp.status}); llmx does "
            "not follow redirects of API calls, which would carry the credentials there: "
            f"set base_url in [providers.{self.name}] to where the API answers"
        )
        return MalformedResponseError(
            msg,
            provider=self.name,
            model=model,
            status=resp.status,
            retryable=False,
            code="redirect",
        )

    def too_large(self, *, what: str, size: int, cap: int, model: str | None) -> ProviderError:
        """The error for a read that crossed a cap (not retried: the same request would
        get the same answer)."""
        key = "max_response_bytes" if what in ("answer", "stream") else "max_event_bytes"
        msg = (
            f"the {what} from {self.host} is larger than {cap:,} bytes ({size:,} so far), the "
            f"cap {key} of [providers.{self.name}]; raise it there if such answers are expected"
        )
        return MalformedResponseError(
            msg, provider=self.name, model=model, retryable=False, code="too_large"
        )

    def malformed(
        self, *, what: str, data: str | bytes, model: str | None
    ) -> MalformedResponseError:
        """A :class:`~llmx.MalformedResponseError` saying ``what`` was unexpected, quoting
        an excerpt of ``data``."""
        raw = data.encode() if isinstance(data, str) else data
        msg = f"unexpected {what} from {self.host}: {snippet(raw)!r}"
        return MalformedResponseError(msg, provider=self.name, model=model, status=200)

    async def stream(
        self,
        url: URL,
        body: bytes,
        model: str,
        decoder: StreamDecoder,
        *,
        framing: Framing = "sse",
        whole: Callable[[bytes], Iterable[StreamChunk]] | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """POST ``body`` and yield the chunks ``decoder`` makes of the streamed answer,
        then its :class:`~llmx.StreamEnd`.

        ``framing`` is ``"sse"`` (server-sent events; ``feed`` gets each
        :class:`~llmx.plugin.SSEEvent`), ``"sse-data"`` (server-sent events whose data
        says what they are, as OpenAI's, Anthropic's and Google's JSON events do;
        ``feed`` gets each event's data string, which is faster) or ``"ndjson"`` (one
        JSON value a line; ``feed`` gets the parsed value). An error status raises the typed error; a body
        that ends before the decoder's final event (``end()`` returns None) raises
        :class:`~llmx.ProviderConnectionError` ("stream ended early"). ``whole``, if
        given, handles a server that ignored the stream flag and answered with one JSON
        body: it gets that body and returns the chunks. A stream read to its end
        releases its connection for reuse; one left early (the caller stopped, an error,
        a cancellation) closes it, rather than draining an abandoned answer.
        """
        name = self.name
        extra = attempt_headers.get()
        headers = self.stream_headers if extra is None else {**extra, **self.stream_headers}
        try:
            resp = await self.session.post(url, data=body, headers=headers, allow_redirects=False)
        except (asyncio.TimeoutError, aiohttp.ClientError) as err:
            raise self._transport_error(err, model, "sending the request") from err
        read_all = False
        ends: StreamEnd | None = None
        try:
            if resp.status >= 300:
                error = await self._error_of(resp, model)
                read_all = not resp.closed  # a body read whole: the connection is reusable
                raise error
            if whole is not None and resp.content_type == "application/json":
                data = await self._read_capped(resp, model)
                read_all = True
                for chunk in whole(data):
                    yield chunk
                return
            feed = decoder.feed
            parser: SSEParser | NDJSONParser
            if framing == "sse-data":
                parser = SSEParser()
                split: Callable[[bytes], Iterable[Any]] = parser.data
            elif framing == "sse":
                # events(): each event is parsed when taken, so the first chunk of a large
                # read is not held back by the rest (bench: stream time to first chunk).
                parser = SSEParser()
                split = parser.events
            else:
                parser = NDJSONParser()
                split = parser.feed
            max_body, max_event = self.max_body, self.max_event
            size = 0
            async for raw in resp.content.iter_any():
                if decoder.finished:
                    continue  # read to the end so the connection can be reused
                size += len(raw)
                if size > max_body:
                    raise self.too_large(what="stream", size=size, cap=max_body, model=model)
                item: Any = raw
                try:
                    for item in split(raw):
                        for chunk in feed(item):
                            yield chunk
                        if decoder.finished:
                            break  # type: ignore[unreachable]  # feed() sets it
                except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
                    raise self.malformed(
                        what="stream event", data=_quote(item), model=model
                    ) from err
                if parser.buffered > max_event:  # an event or line that never ends
                    what = "line" if framing == "ndjson" else "event"
                    raise self.too_large(
                        what=what, size=parser.buffered, cap=max_event, model=model
                    )
            read_all = True
            ends = decoder.end()
        except (asyncio.TimeoutError, aiohttp.ClientError) as err:
            if not decoder.finished:
                raise self._transport_error(err, model, "reading the stream") from err
            ends = decoder.end()
        finally:
            if read_all:
                resp.release()
            else:
                resp.close()  # drop the connection rather than drain an abandoned stream
        if ends is None:
            msg = (
                f"stream ended early: {self.host} closed it before {decoder.final_event} "
                "arrived (the answer is incomplete)"
            )
            raise ProviderConnectionError(msg, provider=name, model=model)
        yield ends


ERROR_BODY_CAP = 64 * 1024
"""How much of an error body is read (enough for any real error message)."""


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown(url: URL) -> str:
    """``url`` as messages show it: no user, password, query or fragment."""
    port = f":{url.port}" if url.explicit_port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def _quote(item: Any) -> str | bytes:
    """What a malformed-event message quotes of ``item``."""
    if isinstance(item, SSEEvent):
        return item.data
    if isinstance(item, (bytes, str)):
        return item
    return json.dumps(item, default=str)


# -- paging ----------------------------------------------------------------------------


async def collect_pages(
    fetch: Callable[[str | None], Awaitable[tuple[Iterable[T], str | None]]],
    *,
    key: Callable[[T], Hashable],
    max_pages: int = 100,
) -> list[T]:
    """Every item of a paged list, each ``key`` once, in the order first seen.

    ``fetch(cursor)`` returns one page's items and the next cursor (None or ``""`` on
    the last page); the first call gets None. Paging stops at the last page, when a
    cursor comes back that was already used (a server repeating its page), or after
    ``max_pages``.
    """
    out: list[T] = []
    seen: set[Hashable] = set()
    used: set[str] = set()
    cursor: str | None = None
    for _ in range(max_pages):
        items, cursor = await fetch(cursor)
        for item in items:
            k = key(item)
            if k not in seen:
                seen.add(k)
                out.append(item)
        if not cursor or cursor in used:
            break
        used.add(cursor)
    return out

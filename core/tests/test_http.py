"""llmx.http, the provider helpers: settings, error classification, framing, paging, and
the Endpoint against a real HTTP server on 127.0.0.1 (status codes, headers, SSE and
NDJSON bodies, dropped connections)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

import llmx
import llmx.types
from llmx.http import (
    USER_AGENT,
    Endpoint,
    ErrorInfo,
    NDJSONParser,
    api_key,
    base_url,
    collect_pages,
    error_from_payload,
    error_from_response,
    is_context_window_error,
)
from llmx.plugin import ProviderContext, SSEEvent

# -- error classification ----------------------------------------------------------------

# What real servers answer when the prompt does not fit (status, body).
CONTEXT_ERRORS = {
    "openai": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, "
                "your messages resulted in 130000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    ),
    "anthropic": (
        400,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "prompt is too long: 208310 tokens > 200000 maximum",
            },
        },
    ),
    "anthropic-limit": (
        400,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "input length and `max_tokens` exceed context limit: "
                "197000 + 8192 > 200000, decrease input length or `max_tokens` and try again",
            },
        },
    ),
    "gemini": (
        400,
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200000) exceeds the maximum number of "
                "tokens allowed (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        },
    ),
    "llama.cpp": (
        400,
        {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 5000,
                "n_ctx": 4096,
            }
        },
    ),
    "vllm": (
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you "
            "requested 5000 tokens (4000 in the messages, 1000 in the completion). Please "
            "reduce the length of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
    ),
    "vllm-new": (
        400,
        {
            "error": {
                "message": "'max_tokens' is too large: 5000. This model's maximum context "
                "length is 4096 tokens and your request has 100 input tokens",
                "type": "BadRequestError",
                "code": 400,
            }
        },
    ),
    "tgi": (
        422,
        {
            "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be "
            "<= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`",
            "error_type": "validation",
        },
    ),
    "mistral": (
        400,
        {
            "object": "error",
            "message": "Prompt contains 40000 tokens and 0 draft tokens, too large for model "
            "with 32768 maximum context length",
            "type": "invalid_request_error",
            "code": None,
        },
    ),
}


@pytest.mark.parametrize("server", sorted(CONTEXT_ERRORS))
def test_context_window_errors_are_recognised_in_every_known_wording(server: str) -> None:
    status, body = CONTEXT_ERRORS[server]
    error = error_from_response(status, {}, json.dumps(body).encode(), provider="p", model="m")
    assert type(error) is llmx.ContextWindowExceededError, (server, error)
    assert error.status == status


def test_llama_cpp_context_error_in_a_stream_event_is_a_context_window_error() -> None:
    _, body = CONTEXT_ERRORS["llama.cpp"]
    error = error_from_payload(body["error"], provider="p", model="m")
    assert type(error) is llmx.ContextWindowExceededError
    assert error.status == 400
    assert error.code == "exceed_context_size_error"


@pytest.mark.parametrize(
    "message",
    [
        "Rate limit reached for tokens per min: too many tokens",  # a 429, not a 400
        "Invalid value for 'temperature'",
        "model not found",
    ],
)
def test_other_errors_are_not_context_window_errors(message: str) -> None:
    body = json.dumps({"error": {"message": message}}).encode()
    error = error_from_response(429, {}, body, provider="p", model="m")
    assert type(error) is llmx.RateLimitError
    if "tokens" not in message:
        assert not is_context_window_error(message)
        bad = error_from_response(400, {}, body, provider="p", model="m")
        assert type(bad) is llmx.BadRequestError


def test_status_headers_and_body_details_become_the_typed_error() -> None:
    body = b'{"error": {"message": "slow down", "type": "requests", "code": "rate_limit"}}'
    error = error_from_response(429, {"retry-after-ms": "1500"}, body, provider="acme", model="m")
    assert type(error) is llmx.RateLimitError
    assert error.retry_after == 1.5
    assert error.retryable is True
    assert error.code == "rate_limit"
    assert error.message == "slow down"
    # x-should-retry overrides the status's retryability
    error = error_from_response(500, {"x-should-retry": "false"}, b"", provider="a", model=None)
    assert type(error) is llmx.ServerError
    assert error.retryable is False
    assert error.message == "HTTP 500 with an empty body"
    # an exhausted quota does not come back by waiting
    quota = b'{"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}'
    error = error_from_response(429, {"retry-after": "3"}, quota, provider="a", model=None)
    assert error.retryable is False
    assert error.retry_after == 3.0
    # a content filter
    body = b'{"error": {"message": "no", "code": "content_filter"}}'
    assert type(error_from_response(400, {}, body, provider="a", model=None)) is (
        llmx.ContentFilterError
    )


def test_a_non_json_error_body_is_quoted_without_tags_and_the_secret_is_scrubbed() -> None:
    body = b"<html><body><h1>502 Bad Gateway</h1> key sk-SECRET rejected</body></html>"
    error = error_from_response(502, {}, body, provider="a", model="m", secret="sk-SECRET")
    assert type(error) is llmx.ServerError
    assert "502 Bad Gateway" in error.message
    assert "sk-SECRET" not in str(error)
    assert "<h1>" not in error.message


def test_a_provider_describe_can_override_class_and_wait() -> None:
    def describe(body: Any) -> ErrorInfo:
        return ErrorInfo(
            body["e"], "KEY_BAD", retry_after=7.0, error_class=llmx.AuthenticationError
        )

    error = error_from_response(400, {}, b'{"e": "bad key"}', provider="a", model=None,
                                describe=describe)  # fmt: skip
    assert type(error) is llmx.AuthenticationError
    assert error.retry_after == 7.0
    assert error.code == "KEY_BAD"


def test_payload_errors_take_the_class_from_status_types_or_default() -> None:
    assert type(error_from_payload({"message": "x", "code": 503}, provider="a", model=None)) is (
        llmx.ServerError
    )
    assert type(error_from_payload({"message": "x", "code": "429"}, provider="a", model=None)) is (
        llmx.RateLimitError
    )
    types = {"overloaded": llmx.RateLimitError}
    error = error_from_payload({"message": "x", "type": "overloaded"}, provider="a", model=None,
                               types=types)  # fmt: skip
    assert type(error) is llmx.RateLimitError
    error = error_from_payload("just text", provider="a", model=None,
                               default=llmx.MalformedResponseError)  # fmt: skip
    assert type(error) is llmx.MalformedResponseError
    assert error.message == "just text"


@given(st.binary(max_size=300), st.integers(min_value=100, max_value=599))
def test_error_from_response_never_raises(body: bytes, status: int) -> None:
    error = error_from_response(status, {}, body, provider="p", model=None, secret="k")
    assert isinstance(error, llmx.ProviderError)
    assert error.status == status


# -- NDJSON framing ----------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.lists(_json_values, max_size=6), st.data(), st.booleans(), st.booleans())
def test_ndjson_gives_the_same_values_for_any_chunking(
    values: list[Any], data: st.DataObject, crlf: bool, blank_lines: bool
) -> None:
    end = b"\r\n" if crlf else b"\n"
    body = b"".join(
        json.dumps(v, ensure_ascii=False).encode() + end + (end if blank_lines else b"")
        for v in values
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    parser = NDJSONParser()
    out: list[Any] = []
    start = 0
    for cut in [*cuts, len(body)]:
        out += parser.feed(body[start:cut])
        start = cut
    out += parser.close()
    assert out == values


def test_ndjson_close_parses_an_unterminated_last_line_and_rejects_garbage() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert parser.feed(b": 2}") == []
    assert parser.close() == [{"b": 2}]
    with pytest.raises(json.JSONDecodeError):
        NDJSONParser().feed(b"not json\n")


# -- paging ------------------------------------------------------------------------------


async def test_paging_stops_when_the_cursor_does_not_advance_and_lists_each_id_once() -> None:
    calls: list[str | None] = []

    async def fetch(cursor: str | None) -> tuple[list[str], str | None]:
        calls.append(cursor)
        return ["a", "b"], "page-2"  # a server that repeats its page forever

    assert await collect_pages(fetch, key=str) == ["a", "b"]
    assert calls == [None, "page-2"]


async def test_paging_follows_cursors_to_the_last_page_within_the_bound() -> None:
    pages = {None: (["a", "b"], "2"), "2": (["b", "c"], "3"), "3": (["d"], None)}

    async def fetch(cursor: str | None) -> tuple[list[str], str | None]:
        return pages[cursor]

    assert await collect_pages(fetch, key=str) == ["a", "b", "c", "d"]

    async def endless(cursor: str | None) -> tuple[list[str], str | None]:
        n = int(cursor or 0)
        return [str(n)], str(n + 1)

    assert len(await collect_pages(endless, key=str, max_pages=5)) == 5


# -- settings ----------------------------------------------------------------------------


def _ctx(session: Any = None, **config: Any) -> ProviderContext:
    from llmx._config import ProviderConfig

    return ProviderContext("acme", ProviderConfig(type="acme", **config), None, session)


def test_base_url_and_api_key_read_config_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACME_KEY", raising=False)
    monkeypatch.delenv("ACME_KEY_2", raising=False)
    monkeypatch.setenv("ACME_URL", "http://from-env:1/v1/")
    assert base_url(_ctx(), env="ACME_URL", default="https://x") == "http://from-env:1/v1"
    ctx = _ctx(base_url="https://cfg/v2/")
    assert base_url(ctx, env="ACME_URL", default="https://x") == "https://cfg/v2"
    with pytest.raises(llmx.ConfigError, match=r"not an http\(s\) URL.*\[providers\.acme\]"):
        base_url(_ctx(base_url="ftp://x"), default=None)
    monkeypatch.delenv("ACME_URL")
    with pytest.raises(llmx.ConfigError, match=r"no base URL .* or ACME_URL in the environment"):
        base_url(_ctx(), env="ACME_URL", default=None, example="https://acme.ai")
    with pytest.raises(llmx.ConfigError, match=r"set ACME_KEY or ACME_KEY_2 in the environment"):
        api_key(_ctx(), env=("ACME_KEY", "ACME_KEY_2"))
    assert api_key(_ctx(), env="ACME_KEY", required=False) is None
    monkeypatch.setenv("ACME_KEY_2", "k2")
    assert api_key(_ctx(), env=("ACME_KEY", "ACME_KEY_2")) == "k2"
    assert api_key(_ctx(api_key=llmx.Secret(value="k1")), env="ACME_KEY_2") == "k1"


# -- the Endpoint against a real server --------------------------------------------------


class _Server:
    """A scripted HTTP server on 127.0.0.1: each request pops the next handler."""

    def __init__(self) -> None:
        self.handlers: list[Any] = []
        self.requests: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests.append(request)
            self.bodies.append(await request.read())
            response: web.StreamResponse = await self.handlers.pop(0)(request)
            return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"

        def on_connection(*_: Any) -> None:
            self.connections += 1

        self.runner.server.connection_made = _counting(  # type: ignore[union-attr,method-assign]
            self.runner.server, on_connection
        )

    async def close(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _counting(server: Any, callback: Any) -> Any:
    original = server.connection_made

    def connection_made(*args: Any) -> Any:
        callback()
        return original(*args)

    return connection_made


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    srv = _Server()
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT}, timeout=aiohttp.ClientTimeout(total=5)
    ) as s:
        yield s


def _endpoint(server: _Server, session: aiohttp.ClientSession, **config: Any) -> Endpoint:
    ctx = _ctx(session, **config)
    return Endpoint(
        ctx, base_url=server.url, headers={"Authorization": "Bearer sk-SECRET"}, secret="sk-SECRET"
    )


def _json(obj: Any, status: int = 200, **headers: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(obj, status=status, headers=headers)

    return handler


def _stream(*pieces: bytes, content_type: str = "text/event-stream", cut: bool = False) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0)
        if cut:
            assert request.transport is not None
            request.transport.close()  # drop the connection mid-answer
            return response
        await response.write_eof()
        return response

    return handler


class _TextDecoder:
    """A decoder for a toy protocol: ``{"t": text}`` pieces, then ``{"done": reason}``."""

    final_event = "the done event"

    def __init__(self, http: Endpoint) -> None:
        self.http = http
        self.finished = False
        self.reason: str | None = None

    def feed(self, item: Any) -> Sequence[llmx.types.StreamChunk]:
        obj = json.loads(item.data) if isinstance(item, SSEEvent) else item
        if "error" in obj:
            raise self.http.payload_error(obj["error"], "m")
        if "done" in obj:
            self.finished = True
            self.reason = obj["done"]
            return ()
        return (llmx.TextDelta(obj["t"]),)

    def end(self) -> llmx.StreamEnd | None:
        if not self.finished:
            return None
        return llmx.StreamEnd("stop" if self.reason == "stop" else "other", None, "m", None)


async def _collect(it: AsyncIterator[llmx.types.StreamChunk]) -> list[llmx.types.StreamChunk]:
    return [chunk async for chunk in it]


async def test_post_returns_the_body_and_sends_json_headers_and_the_user_agent(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session, headers={"X-Extra": llmx.Secret(value="1")})
    server.handlers.append(_json({"ok": True}))
    assert json.loads(await http.post(http.url("/chat"), b'{"q": 1}', "m")) == {"ok": True}
    request = server.requests[0]
    assert request.path == "/v1/chat"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer sk-SECRET"
    assert request.headers["X-Extra"] == "1"
    assert request.headers["User-Agent"] == USER_AGENT
    assert server.bodies[0] == b'{"q": 1}'
    assert "sk-SECRET" not in repr(http)


async def test_post_raises_the_typed_error_of_an_error_status(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    server.handlers.append(_json({"error": {"message": "bad key sk-SECRET"}}, status=401))
    with pytest.raises(llmx.AuthenticationError) as info:
        await http.post(http.url("/chat"), b"{}", "m")
    assert info.value.provider == "acme"
    assert "sk-SECRET" not in str(info.value)
    server.handlers.append(
        _json({"error": {"message": "wait"}}, status=429, **{"Retry-After": "2"})
    )
    with pytest.raises(llmx.RateLimitError) as rate:
        await http.post(http.url("/chat"), b"{}", "m")
    assert rate.value.retry_after == 2.0


async def test_transport_failures_and_timeouts_become_llmx_errors(
    session: aiohttp.ClientSession,
) -> None:
    # a port nobody listens on
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    ctx = _ctx(session)
    http = Endpoint(ctx, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(llmx.ProviderConnectionError, match=f"127.0.0.1:{port}.*waiting for"):
        await http.post(http.url("/x"), b"{}", "m")
    with pytest.raises(llmx.ProviderConnectionError, match="listing models"):
        await http.get(http.url("/models"))
    with (
        pytest.raises(llmx.ProviderTimeoutError, match="within the timeout"),
        http.transport("m", "waiting"),
    ):
        raise asyncio.TimeoutError
    with pytest.raises(KeyError, match="x"), http.transport("m", "waiting"):
        raise KeyError("x")  # anything else passes through untouched


async def test_get_parses_json_and_names_a_body_that_is_not(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    server.handlers.append(_json({"data": [1]}))
    assert await http.get(http.url("/models"), params={"limit": "5"}) == {"data": [1]}
    assert server.requests[0].query["limit"] == "5"
    assert "Content-Type" not in server.requests[0].headers

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>hi</html>", content_type="text/html")

    server.handlers.append(html)
    with pytest.raises(llmx.MalformedResponseError, match="not JSON") as info:
        await http.get(http.url("/models"))
    assert info.value.provider == "acme"


@pytest.mark.parametrize("framing", ["sse", "ndjson"])
async def test_a_stream_is_decoded_and_its_connection_reused(
    framing: str, server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    objs = [{"t": "Hel"}, {"t": "lo"}, {"done": "stop"}]
    if framing == "sse":
        body = [f"data: {json.dumps(o)}\n\n".encode() for o in objs]
        ctype = "text/event-stream"
    else:
        body = [json.dumps(o).encode() + b"\n" for o in objs]
        ctype = "application/x-ndjson"
    for _ in range(2):
        server.handlers.append(_stream(*body, b"trailing bytes are drained", content_type=ctype))
        chunks = await _collect(
            http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http), framing=framing)  # type: ignore[arg-type]
        )
        assert chunks == [
            llmx.TextDelta("Hel"),
            llmx.TextDelta("lo"),
            llmx.StreamEnd("stop", None, "m", None),
        ]
    assert server.requests[0].headers["Accept"] == "text/event-stream"
    assert server.connections == 1  # read to its end: the connection was released


async def test_a_stream_that_ends_before_its_final_event_ended_early(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    server.handlers.append(_stream(b'data: {"t": "Hel"}\n\n'))
    stream = http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http))
    assert await stream.__anext__() == llmx.TextDelta("Hel")
    with pytest.raises(llmx.ProviderConnectionError, match=r"ended early.*the done event"):
        await stream.__anext__()


async def test_a_dropped_stream_is_a_connection_error(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    server.handlers.append(_stream(b'data: {"t": "Hel"}\n\n', cut=True))
    with pytest.raises(llmx.ProviderConnectionError):
        await _collect(http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http)))


async def test_an_error_event_and_a_malformed_event_are_typed_errors(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    _, llama = CONTEXT_ERRORS["llama.cpp"]
    server.handlers.append(_stream(f"data: {json.dumps(llama)}\n\n".encode()))
    with pytest.raises(llmx.ContextWindowExceededError):
        await _collect(http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http)))
    server.handlers.append(_stream(b"data: {not json\n\n"))
    with pytest.raises(llmx.MalformedResponseError, match=r"stream event.*\{not json") as info:
        await _collect(http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http)))
    assert info.value.provider == "acme"
    server.handlers.append(_stream(b"not json\n", content_type="application/x-ndjson"))
    with pytest.raises(llmx.MalformedResponseError, match="not json"):
        await _collect(
            http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http), framing="ndjson")
        )


async def test_an_error_status_on_a_stream_raises_and_keeps_the_connection(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    server.handlers.append(_json({"error": {"message": "overloaded"}}, status=503))
    server.handlers.append(_stream(b'data: {"done": "stop"}\n\n'))
    with pytest.raises(llmx.ServerError, match="overloaded"):
        await _collect(http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http)))
    assert await _collect(http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http)))
    assert server.connections == 1


async def test_a_stream_left_early_closes_its_connection(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"t": "a"}\n\n')
        await release.wait()
        return response

    server.handlers.append(slow)
    server.handlers.append(_stream(b'data: {"done": "stop"}\n\n'))
    stream = http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http))
    assert await stream.__anext__() == llmx.TextDelta("a")
    await stream.aclose()  # type: ignore[attr-defined]
    release.set()
    await _collect(http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http)))
    assert server.connections == 2  # the abandoned answer's connection was not reused


async def test_whole_handles_a_server_that_ignored_the_stream_flag(
    server: _Server, session: aiohttp.ClientSession
) -> None:
    http = _endpoint(server, session)
    server.handlers.append(_json({"text": "all at once"}))

    def whole(data: bytes) -> list[llmx.types.StreamChunk]:
        return [llmx.TextDelta(json.loads(data)["text"]), llmx.StreamEnd("stop", None, "m", None)]

    chunks = await _collect(
        http.stream(http.url("/s"), b"{}", "m", _TextDecoder(http), whole=whole)
    )
    assert chunks[0] == llmx.TextDelta("all at once")


# -- wire helpers ------------------------------------------------------------------------


def test_json_object_parses_or_names_what_is_wrong() -> None:
    from llmx.http import json_object

    assert json_object(b'{"a": 1}', provider="p", model="m") == {"a": 1}
    with pytest.raises(llmx.MalformedResponseError, match="not JSON: 'oops'") as info:
        json_object(b"oops", provider="p", model="m")
    assert (info.value.provider, info.value.status) == ("p", 200)
    with pytest.raises(llmx.MalformedResponseError, match="expected a JSON object, got list"):
        json_object(b"[1]", provider="p", model="m")


def test_inline_image_from_bytes_or_data_url_and_refused_types() -> None:
    from llmx.http import inline_image

    png = llmx.Image(data=b"\x89PNG", media_type="image/png")
    assert inline_image(png, {"image/png"}, api="Acme", provider="p", model="m") == (
        "image/png",
        "iVBORw==",
    )
    url = llmx.Image(url="data:image/png;base64,iVBORw==")
    assert inline_image(url, {"image/png"}, api="Acme", provider="p", model="m") == (
        "image/png",
        "iVBORw==",
    )
    with pytest.raises(llmx.UnsupportedFeatureError, match="Acme accepts images of type image/png"):
        inline_image(
            llmx.Image(data=b"x", media_type="image/tiff"),
            {"image/png"},
            api="Acme",
            provider="p",
            model="m",
        )


def test_split_system_joins_system_text_and_refuses_other_parts() -> None:
    from llmx.http import split_system

    request = llmx.Request(
        model="m",
        messages=[
            llmx.Message("system", "Be brief."),
            llmx.Message("user", "Hi"),
            llmx.Message("system", ""),
            llmx.Message("system", "Be kind."),
        ],
    )
    system, turns = split_system(request, api="Acme", provider="p")
    assert system == "Be brief.\n\nBe kind."
    assert [m.text for m in turns] == ["Hi"]
    assert split_system(llmx.Request(model="m", messages="Hi"), api="A", provider="p")[0] is None
    image = llmx.Message("system", [llmx.Image(data=b"x", media_type="image/png")])
    with pytest.raises(llmx.UnsupportedFeatureError, match="Acme's system prompt takes text only"):
        split_system(llmx.Request(model="m", messages=[image]), api="Acme", provider="p")


def test_in_band_error_types_default_to_the_common_names() -> None:
    for kind, cls in [
        ("authentication_error", llmx.AuthenticationError),
        ("not_found_error", llmx.ModelNotFoundError),
        ("overloaded_error", llmx.ServerError),
        ("invalid_request_error", llmx.BadRequestError),
        ("something_new", llmx.ServerError),
    ]:
        error = error_from_payload({"type": kind, "message": "x"}, provider="p", model=None)
        assert type(error) is cls, kind


def test_dumps_sends_a_lone_surrogate_as_its_escape() -> None:
    from llmx.http import dumps

    assert dumps({"t": "é"}) == '{"t":"é"}'.encode()
    body = dumps({"t": "half \ud83d emoji"})
    assert body == b'{"t":"half \\ud83d emoji"}'
    assert json.loads(body) == {"t": "half \ud83d emoji"}

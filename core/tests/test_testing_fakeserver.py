"""The fake-server base: what a subclass must implement (abstract, or loud when needed),
what the base applies itself (auth, rendering, NDJSON and SSE framing, chaos in either
framing), and the conformance knobs' checks. Raw aiohttp requests; no provider involved."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import pytest

from llmx.testing import (
    Blocked,
    Event,
    FakeServer,
    FakeServerError,
    Fault,
    Handler,
    MidStreamError,
    RecordedRequest,
    Reply,
    RequestView,
    ViewPart,
    merge_turns,
)
from llmx.testing.conformance import Feature, ProviderConformance
from llmx_openai.testing import FakeOpenAIServer

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


class MinimalServer(FakeServer):
    """Only what is required: the routes, ``describe`` and ``reply_body``."""

    def route(self, method: str, path: str) -> Handler | None:
        return self.answer_model_request if (method, path) == ("POST", "/chat") else None

    def describe(self, recorded: RecordedRequest) -> RequestView:
        prompt = recorded.json.get("prompt", "") if isinstance(recorded.json, dict) else ""
        return RequestView("m", None, merge_turns([("user", [ViewPart("text", text=prompt)])]))

    def reply_body(self, reply: Reply, recorded: RecordedRequest) -> Any:
        return {"text": reply.text, "finish": reply.derived_finish_reason}


class NDJSONServer(MinimalServer):
    """A streaming NDJSON API: one JSON line per delta, then an end line."""

    framing = "ndjson"

    def stream_events(self, reply: Reply, recorded: RecordedRequest) -> list[Any]:
        return [*({"t": p} for p in reply.text_pieces()), {"end": reply.derived_finish_reason}]

    def mid_stream_error_event(self, reply: MidStreamError, recorded: RecordedRequest) -> Any:
        return {"error": "boom"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, server: FakeServer, body: Any, headers: Any = None
) -> tuple[int, str, bytes]:
    async with http.post(f"{server.url}/chat", json=body, headers=headers or AUTH) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def lines(raw: bytes) -> list[Any]:
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.splitlines()]


# -- what a subclass must implement --------------------------------------------------------


def test_a_fake_without_a_required_method_cannot_be_built() -> None:
    class Incomplete(FakeServer):
        pass

    with pytest.raises(TypeError) as info:
        Incomplete()  # type: ignore[abstract]
    for name in ("route", "describe", "reply_body"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("reply", "stream", "method"),
    [
        (Reply("x"), True, "stream_events()"),
        (MidStreamError(), True, "mid_stream_error_event()"),
        (Blocked(), False, "render_blocked()"),
    ],
)
async def test_a_method_the_request_needs_fails_loudly_naming_itself(
    http: aiohttp.ClientSession, reply: Any, stream: bool, method: str
) -> None:
    """Not a silent generic answer: the server answers 500 and raises on exit."""
    server = MinimalServer() if method != "mid_stream_error_event()" else _no_error_event()
    async with server:
        server.enqueue(reply)
        status, _, _ = await post(http, server, {"prompt": "p", "stream": stream})
        assert status == 500
        (error,) = server.errors
        with pytest.raises(FakeServerError, match="failed while answering") as info:
            server.raise_errors()
    assert info.value.__cause__ is error
    assert isinstance(error, NotImplementedError)
    assert method in str(error)
    assert not server.errors, "reported once"


def _no_error_event() -> FakeServer:
    class StreamsWithoutErrorEvent(NDJSONServer):
        mid_stream_error_event = FakeServer.mid_stream_error_event

    return StreamsWithoutErrorEvent()


def test_errors_are_raised_when_the_server_stops() -> None:
    """Also in thread mode; the message names the knob for APIs without refusals."""
    server = MinimalServer()

    def refuse() -> None:
        with server.in_thread():
            server.enqueue(Blocked())
            request = urllib.request.Request(
                f"{server.url}/chat", data=b'{"prompt": "p"}', headers=AUTH, method="POST"
            )
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=5)

    with pytest.raises(FakeServerError) as info:
        refuse()
    assert "refusals = False" in str(info.value.__cause__)


def test_the_conformance_suite_fails_with_the_fakes_error() -> None:
    """The issue's trap: a fake without a mid-stream error event no longer passes quietly."""

    class WithoutErrorEvent(FakeOpenAIServer):
        mid_stream_error_event = FakeServer.mid_stream_error_event  # type: ignore[assignment]

    class OpenAIWithoutErrorEvent(ProviderConformance):
        provider_type = "openai"
        model = "gpt-4o-mini"
        server_class = WithoutErrorEvent

    with pytest.raises(FakeServerError) as info:
        OpenAIWithoutErrorEvent().test_mid_stream_error_event()
    assert "mid_stream_error_event()" in str(info.value.__cause__)


# -- what the base applies -----------------------------------------------------------------


async def test_auth_is_checked_by_the_base(http: aiohttp.ClientSession) -> None:
    async with MinimalServer() as server:
        assert (await post(http, server, {"prompt": "p"}))[0] == 200
        for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"X": "y"}):
            status, _, raw = await post(http, server, {"prompt": "p"}, headers)
            assert status == 401
            assert json.loads(raw)["error"]["message"] == "HTTP 401"
        assert len(server.model_requests) == 1

    class HeaderKey(MinimalServer):
        auth_header = "x-api-key"
        auth_scheme = None

    async with HeaderKey() as server:
        assert (await post(http, server, {"prompt": "p"}, {"X-Api-Key": KEY}))[0] == 200
        assert (await post(http, server, {"prompt": "p"}, AUTH))[0] == 401
    async with HeaderKey(api_key=None) as server:
        assert (await post(http, server, {"prompt": "p"}, {"X": "y"}))[0] == 200


async def test_ndjson_stream_framing(http: aiohttp.ClientSession) -> None:
    async with NDJSONServer() as server:
        server.enqueue(
            Reply("héllo", chunk_size=2),
            Reply("ab", chunk_size=1, line_ending="\r\n"),
            Reply("abcdef", chunk_size=1, end_after=2),
        )
        status, content_type, raw = await post(http, server, {"prompt": "p", "stream": True})
        assert (status, content_type) == (200, "application/x-ndjson")
        assert lines(raw) == [{"t": "hé"}, {"t": "ll"}, {"t": "o"}, {"end": "stop"}]
        assert "hé".encode() in raw  # UTF-8, not \\u escapes
        _, _, raw = await post(http, server, {"prompt": "p", "stream": True})
        assert raw == b'{"t":"a"}\r\n{"t":"b"}\r\n{"end":"stop"}\r\n'
        _, _, raw = await post(http, server, {"prompt": "p", "stream": True})
        assert lines(raw) == [{"t": "a"}, {"t": "b"}]
        status, content_type, raw = await post(http, server, {"prompt": "p"})
        assert (status, content_type, json.loads(raw)) == (
            200,
            "application/json",
            {"text": "p", "finish": "stop"},
        )


async def test_ndjson_mid_stream_error(http: aiohttp.ClientSession) -> None:
    async with NDJSONServer() as server:
        server.enqueue(MidStreamError(after_events=2, text="abcdef"), MidStreamError(status=503))
        _, _, raw = await post(http, server, {"prompt": "p", "stream": True})
        assert lines(raw) == [{"t": "ab"}, {"t": "cd"}, {"error": "boom"}]
        status, _, raw = await post(http, server, {"prompt": "p"})
        assert status == 503
        assert "error" in json.loads(raw)


async def test_chaos_in_ndjson_framing(http: aiohttp.ClientSession) -> None:
    async with NDJSONServer() as server:
        text = "abcdefgh"
        server.enqueue(*(Reply(text, chunk_size=1) for _ in range(3)))
        server.schedule([Fault.truncate(), Fault.malformed(), Fault.drop()])
        _, _, raw = await post(http, server, {"prompt": "p", "stream": True})
        assert lines(raw) == [{"t": c} for c in "abcd"]  # whole lines, no end line
        _, _, raw = await post(http, server, {"prompt": "p", "stream": True})
        assert raw == b'{"t":"a"}\n{"incomplete": \n'
        async with http.post(f"{server.url}/chat", json={"stream": True}, headers=AUTH) as resp:
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
        assert server.malformed_reply(stream=True).content_type == "application/x-ndjson"


async def test_frames_named_sse_events_and_bytes() -> None:
    sse, ndjson = MinimalServer(), NDJSONServer()
    assert sse.frame(Event({"a": 1}, name="delta")) == b'event: delta\ndata: {"a":1}\n\n'
    assert sse.frame({"a": 1}, "\r\n") == b'data: {"a":1}\r\n\r\n'
    assert sse.frame(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"
    assert ndjson.frame(Event([1])) == b"[1]\n"
    with pytest.raises(ValueError, match="no event names"):
        ndjson.frame(Event({}, name="delta"))


# -- the conformance knobs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "supports", "match"),
    [
        ({"nope": "m"}, Feature.ALL, "not a per-model feature"),
        ({Feature.STREAMING: "m"}, Feature.ALL, "not a per-model feature"),
        ({Feature.IMAGES: "m"}, Feature.ALL - {Feature.IMAGES}, "not in supports"),
        ({}, Feature.ALL | {"telepathy"}, "unknown features"),
    ],
)
def test_conformance_settings_are_checked_when_defined(
    models: dict[str, str], supports: frozenset[str], match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        type("Acme", (ProviderConformance,), {"models": models, "supports": supports})


def test_per_feature_models() -> None:
    class Acme(ProviderConformance):
        provider_type = "acme"
        model = "acme-large"
        models: ClassVar[dict[str, str]] = {
            Feature.IMAGES: "acme-vision",
            Feature.TOOLS: "acme-tools",
        }

    acme = Acme()
    assert acme.model_for(Feature.IMAGES) == "acme-vision"
    assert acme.ref_for(Feature.IMAGES, Feature.IMAGE_URLS) == "conf/acme-vision"
    assert acme.model_for(Feature.JSON_MODE) == acme.model_for() == "acme-large"
    with pytest.raises(pytest.skip.Exception, match="no one model has images, tools"):
        acme.model_for(Feature.IMAGES, Feature.TOOLS)
    with pytest.raises(pytest.skip.Exception, match=r"no refusal signal \(refusals = False\)"):
        type("NoRefusals", (Acme,), {"refusals": False})().has("refusals")


async def test_an_aiohttp_http_exception_is_an_answer_not_an_error(
    http: aiohttp.ClientSession,
) -> None:
    from aiohttp import web

    class Conflict(MinimalServer):
        def route(self, method: str, path: str) -> Handler | None:
            async def conflict(request: web.BaseRequest, recorded: RecordedRequest) -> Any:
                raise web.HTTPConflict

            return conflict

    async with Conflict() as server:
        assert (await post(http, server, {"prompt": "p"}))[0] == 409
    assert not server.errors

"""Error mapping: HTTP statuses and bodies to llmx's error classes, transport failures,
malformed answers, and keeping the API key out of every message.

Error bodies reproduce OpenAI's documented format ``{"error": {"message", "type",
"param", "code"}}`` (API reference, "Error codes": 400 invalid request and
``context_length_exceeded``, 401 ``invalid_api_key``, 403, 404 ``model_not_found``,
429 ``rate_limit_exceeded``/``insufficient_quota`` with ``retry-after``/``retry-after-ms``
as openai-python honours them, 500/503 ``server_error``), plus the shapes
OpenAI-compatible servers use: FastAPI's ``{"detail": ...}``, Ollama's
``{"error": "text"}``, and HTML pages from proxies.
"""

from __future__ import annotations

import pickle
import socket
from collections.abc import Callable

import pytest

import llmx
from llmx.testing import ErrorReply, RawReply, Reply, Stall
from llmx_openai.testing import FakeOpenAIServer

MODEL = "fake/gpt-4o-mini"


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, llmx.BadRequestError, False),
        (401, llmx.AuthenticationError, False),
        (403, llmx.PermissionDeniedError, False),
        (404, llmx.ModelNotFoundError, False),
        (409, llmx.ConflictError, True),
        (422, llmx.BadRequestError, False),
        (429, llmx.RateLimitError, True),
        (500, llmx.ServerError, True),
        (502, llmx.ServerError, True),
        (503, llmx.ServerError, True),
        (504, llmx.ProviderTimeoutError, True),
        (529, llmx.ServerError, True),
    ],
)
async def test_status_mapping(
    client: llmx.Client,
    server: FakeOpenAIServer,
    status: int,
    cls: type[llmx.ProviderError],
    retryable: bool,
) -> None:
    server.enqueue(ErrorReply(status, message=f"failure {status}", code=f"code_{status}"))
    with pytest.raises(llmx.ProviderError) as info:
        await client.complete(model=MODEL, prompt="x")
    error = info.value
    assert type(error) is cls
    assert error.status == status
    assert error.retryable is retryable
    assert error.provider == "fake"
    assert error.model == "gpt-4o-mini"
    assert error.message == f"failure {status}"
    assert error.code == f"code_{status}"
    assert error.retry_after is None
    assert str(error) == f"fake/gpt-4o-mini (HTTP {status}): failure {status}"


async def test_context_length_by_code_and_by_message(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(
        ErrorReply(
            400,
            message="This model's maximum context length is 128000 tokens.",
            code="context_length_exceeded",
        ),
        ErrorReply(
            400,
            message="This model's maximum context length is 8192 tokens. However, you requested 9000.",
        ),
        ErrorReply(400, message="Invalid 'temperature': decimal above maximum value."),
    )
    for expected in (
        llmx.ContextWindowExceededError,
        llmx.ContextWindowExceededError,
        llmx.BadRequestError,
    ):
        with pytest.raises(llmx.BadRequestError) as info:
            await client.complete(model=MODEL, prompt="x")
        assert type(info.value) is expected
        assert not info.value.retryable


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ],
)
async def test_rate_limit_retry_after(
    client: llmx.Client, server: FakeOpenAIServer, headers: dict[str, str], seconds: float
) -> None:
    server.enqueue(ErrorReply(429, headers=headers))
    with pytest.raises(llmx.RateLimitError) as info:
        await client.complete(model=MODEL, prompt="x")
    assert info.value.retry_after == pytest.approx(seconds)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.retryable


async def test_insufficient_quota_is_not_retryable(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(
        ErrorReply(
            429,
            message="You exceeded your current quota.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    )
    with pytest.raises(llmx.RateLimitError) as info:
        await client.complete(model=MODEL, prompt="x")
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (422, {"detail": "Input should be a valid string"}, "Input should be a valid string"),
        (
            422,
            {"detail": [{"loc": ["body", "model"], "msg": "Field required", "type": "missing"}]},
            "Field required",
        ),
        (
            404,
            {"error": "model 'llama9' not found, try pulling it first"},
            "model 'llama9' not found, try pulling it first",
        ),
        (
            400,
            {"object": "error", "message": "bad things", "type": "BadRequestError", "code": 400},
            "bad things",
        ),
        (503, "", "HTTP 503 with an empty body"),
        (500, "Internal Server Error", "Internal Server Error"),
    ],
)
async def test_other_error_shapes(
    client: llmx.Client, server: FakeOpenAIServer, status: int, body: object, message: str
) -> None:
    server.enqueue(ErrorReply(status, body=body))
    with pytest.raises(llmx.ProviderError) as info:
        await client.complete(model=MODEL, prompt="x")
    assert info.value.message == message
    assert info.value.status == status


async def test_html_error_page(client: llmx.Client, server: FakeOpenAIServer) -> None:
    page = (
        "<html>\n<head><title>502 Bad Gateway</title><style>body { color: red }</style></head>\n"
        "<body>\n<center><h1>502   Bad Gateway</h1></center>\n<hr><center>nginx</center>\n"
        + "<!-- padding -->\n" * 200
        + "</body>\n</html>"
    )
    server.enqueue(ErrorReply(502, body=page))
    with pytest.raises(llmx.ServerError) as info:
        await client.complete(model=MODEL, prompt="x")
    message = info.value.message
    assert message.startswith("502 Bad Gateway 502 Bad Gateway nginx")
    assert "<" not in message
    assert "color" not in message
    assert len(message) <= 200


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"id": "x", "choices": []}', "no 'choices'"),
        (b'{"choices": [{"index": 0}]}', "message is missing"),
        (b'{"choices": [{"message": {"content": 5}}]}', "content is int"),
        (
            b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "12"}}',
            "prompt_tokens is str",
        ),
        (
            b'{"choices": [{"message": {"content": null, "tool_calls": [{"id": "c"}]}}]}',
            "no function name",
        ),
    ],
)
async def test_malformed_answers(
    client: llmx.Client, server: FakeOpenAIServer, body: bytes, match: str
) -> None:
    server.enqueue(RawReply(200, body))
    with pytest.raises(llmx.MalformedResponseError, match=match) as info:
        await client.complete(model=MODEL, prompt="x")
    assert info.value.provider == "fake"
    assert info.value.retryable


async def test_error_object_inside_a_200_answer(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(
        RawReply(200, b'{"error": {"message": "upstream failed", "type": "server_error"}}')
    )
    with pytest.raises(llmx.ServerError, match="upstream failed"):
        await client.complete(model=MODEL, prompt="x")


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = {
        "providers": {
            "down": {
                "type": "openai",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "retry": {"attempts": 1},
            }
        }
    }
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.ProviderConnectionError, match=f"127.0.0.1:{port}") as info:
            await client.complete(model="down/m", prompt="x")
        with pytest.raises(llmx.ProviderConnectionError):
            await client.stream(model="down/m", prompt="x").collect()
    assert info.value.retryable
    assert info.value.__cause__ is not None


async def test_body_cut_off(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("a fairly long answer, cut in the middle", drop_after=40))
    with pytest.raises(llmx.ProviderConnectionError):
        await client.complete(model=MODEL, prompt="x")


async def test_timeout(make_client: Callable[..., llmx.Client], server: FakeOpenAIServer) -> None:
    client = make_client(timeout=0.2)
    server.enqueue(Stall(5.0), Stall(5.0))
    with pytest.raises(llmx.ProviderTimeoutError, match="timeout") as info:
        await client.complete(model=MODEL, prompt="x")
    assert info.value.retryable
    with pytest.raises(llmx.ProviderTimeoutError):
        await client.stream(model=MODEL, prompt="x").collect()


async def test_errors_survive_pickling(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(ErrorReply(429, headers={"retry-after": "3"}))
    with pytest.raises(llmx.RateLimitError) as info:
        await client.complete(model=MODEL, prompt="x")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (type(copy), copy.retry_after, copy.status, copy.provider) == (
        llmx.RateLimitError,
        3.0,
        429,
        "fake",
    )


async def test_api_key_never_shows() -> None:
    """Not in errors (even when a server echoes it), the config, or the provider's repr."""
    secret = "sk-llmx-very-secret-0123456789abcdef"
    async with FakeOpenAIServer(api_key="another-key") as server:
        config = {
            "providers": {
                "fake": {"type": "openai", "base_url": server.base_url, "api_key": secret}
            }
        }
        async with llmx.Client(config) as client:
            with pytest.raises(llmx.AuthenticationError) as wrong_key:
                await client.complete(model=MODEL, prompt="x")
            server.api_key = None
            server.enqueue(ErrorReply(400, message=f"Invalid key {secret} for this org"))
            with pytest.raises(llmx.BadRequestError) as echoed:
                await client.complete(model=MODEL, prompt="x")
            deployment = client._pool.get("fake")
            shown = [
                repr(client.config),
                str(client.config),
                repr(client.config.describe()),
                repr(deployment.provider),
                repr(deployment.config),
            ]
        for error in (wrong_key.value, echoed.value):
            shown += [str(error), repr(error), repr(error.args), error.message]
    assert "Bearer" not in "".join(shown)
    for text in shown:
        assert secret not in text
    assert "Invalid key *** for this org" in echoed.value.message
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"  # it was sent, though

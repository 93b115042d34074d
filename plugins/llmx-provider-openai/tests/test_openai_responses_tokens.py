"""``client.count_tokens`` on the ``openai-responses`` type: ``POST /responses/input_tokens``.

The count body is the Responses body's prompt fields, validated against OpenAI's
``TokenCountsBody`` (``POST /responses/input_tokens`` in its OpenAPI document); the fake
refuses any other key, as OpenAI does. Azure OpenAI's v1 API does not serve the
endpoint, so an instance there (or one with ``count_tokens = false``) estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

import llmx
from llmx.testing import ErrorReply
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer

MODEL = "fake/gpt-4o-mini"
WEATHER = llmx.Tool(
    "get_weather",
    "The current weather in a city, with a long description to count.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def counted(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    """The bodies sent to /v1/responses/input_tokens, each validated against the spec."""
    out = []
    for recorded in server.requests:
        if recorded.path == "/v1/responses/input_tokens":
            vendor_validator("openai", "official").check(
                "/responses/input_tokens", "post", recorded.json
            )
            out.append(recorded.json)
    return out


async def test_the_count_is_exact_and_equals_the_answers_input_tokens(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(type="openai-responses")
    request = llmx.Request(
        MODEL,
        [llmx.Message.system("Answer in one word."), llmx.Message.user("Capital of Peru?")],
        tools=[WEATHER],
        max_tokens=64,
        temperature=0.5,
    )
    usage = await client.count_tokens(request)
    assert not usage.estimated
    assert usage.input_tokens > 0
    [body] = counted(server)
    # The prompt's fields only: no sampling, storage, streaming or include.
    assert set(body) == {"model", "input", "instructions", "tools"}
    assert body["model"] == "gpt-4o-mini"
    assert body["instructions"] == "Answer in one word."
    reply = await client.complete(request.with_model(MODEL))
    assert reply.usage is not None
    assert reply.usage.input_tokens == usage.input_tokens


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_counted_request_plans_with_its_count(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer, streamed: bool
) -> None:
    """The counted object is remembered: a tight tpm limit admits it by its real count."""
    client = make_client(type="openai-responses")
    request = llmx.Request(MODEL, "Count me exactly. " * 20)
    usage = await client.count_tokens(request)
    if streamed:
        reply = await client.stream(request).collect()
    else:
        reply = await client.complete(request)
    assert reply.usage is not None
    assert reply.usage.input_tokens == usage.input_tokens
    assert len(counted(server)) == 1


async def test_count_tokens_false_estimates_without_sending(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(type="openai-responses", count_tokens=False)
    usage = await client.count_tokens(model=MODEL, prompt="How long is this?")
    assert usage.estimated
    assert server.request_count == 0


async def test_errors_of_the_count_are_typed(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(type="openai-responses")
    server.enqueue(ErrorReply(429))
    with pytest.raises(llmx.RateLimitError):
        await client.count_tokens(model=MODEL, prompt="x")


async def test_the_fake_refuses_what_the_endpoint_does_not_take(
    server: FakeOpenAIServer, http: aiohttp.ClientSession
) -> None:
    """A whole Responses body (``store``, ``max_output_tokens``) is refused, as by OpenAI."""
    async with http.post(
        f"{server.base_url}/responses/input_tokens",
        json={"model": "gpt-4o-mini", "input": "hi", "store": False},
        headers={"Authorization": "Bearer test-key"},
    ) as answer:
        assert answer.status == 400
        error = (await answer.json())["error"]
    assert error["code"] == "unknown_parameter"
    assert error["param"] == "store"


@pytest.mark.parametrize("count", [None, True])
async def test_azure_v1_estimates_unless_told_to_count(count: bool | None) -> None:
    """Azure's v1 API answers the endpoint with 404: estimated by default; an instance
    told to count gets the typed error."""
    async with FakeAzureOpenAIServer(api_key="az-key") as azure:
        options: dict[str, Any] = {} if count is None else {"count_tokens": count}
        config = {
            "providers": {
                "az": {
                    "type": "openai-responses",
                    "base_url": f"{azure.base_url}/openai/v1",
                    "api_key": "az-key",
                    "retry": {"attempts": 1},
                    **options,
                }
            }
        }
        async with llmx.Client(config) as client:
            if count is None:
                usage = await client.count_tokens(model="az/gpt-4o", prompt="Hi there")
                assert usage.estimated
                assert azure.request_count == 0
            else:
                with pytest.raises(llmx.ProviderError) as caught:
                    await client.count_tokens(model="az/gpt-4o", prompt="Hi there")
                assert caught.value.status == 404

"""Prompt caching on OpenAI: caching is automatic, so ``cache=`` breakpoints change
nothing on the wire while ``prompt_cache_key`` is sent (validated against OpenAI's
document; Azure's GA API version has no such field, so it is dropped there); the
cached tokens of ``prompt_tokens_details`` arrive whole and streamed and are priced
at the cached-input price, checked against hand-computed numbers (OpenAI's
``prompt_tokens`` already include the cached ones)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import llmx
from llmx.testing import Reply
from llmx.testing.openapi import vendor_validator
from llmx_openai._models import MODELS
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer


def _sent(server: FakeOpenAIServer, index: int = -1) -> dict[str, Any]:
    body = server.model_requests[index].json
    vendor_validator("openai", "official").check("/chat/completions", "post", body)
    assert isinstance(body, dict)
    return body


async def test_prompt_cache_key_is_sent_and_breakpoints_change_nothing(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    plain = [llmx.Message.system("Be brief."), llmx.Message.user("Hi")]
    marked = [llmx.Message.system("Be brief.", cache=True), llmx.Message.user("Hi", cache=True)]
    await client.complete(model="fake/gpt-4o", messages=plain)
    await client.complete(model="fake/gpt-4o", messages=marked, prompt_cache_key="doc-42")
    before, after = _sent(server, 0), _sent(server, 1)
    assert after.pop("prompt_cache_key") == "doc-42"
    assert after == before


async def test_azure_drops_the_prompt_cache_key(
    make_client: Callable[..., llmx.Client],
) -> None:
    async with FakeAzureOpenAIServer(api_key="test-key") as azure:
        config = {
            "providers": {
                "az": {
                    "type": "azure",
                    "base_url": azure.base_url,
                    "api_key": "test-key",
                    "retry": {"attempts": 1},
                }
            }
        }
        async with llmx.Client(config) as client:
            await client.complete(model="az/gpt-4o", prompt="Hi", prompt_cache_key="doc-42")
        body = azure.model_requests[-1].json
    vendor_validator("openai", "azure").check(
        "/deployments/{deployment-id}/chat/completions", "post", body
    )
    assert "prompt_cache_key" not in body


@pytest.mark.parametrize("streamed", [False, True])
async def test_cached_tokens_are_counted_and_priced(
    client: llmx.Client, server: FakeOpenAIServer, streamed: bool
) -> None:
    server.enqueue(Reply("ok", usage=(2000, 100), cached_tokens=1500))
    if streamed:
        answer = await client.stream(model="fake/gpt-4o", prompt="x").collect()
    else:
        answer = await client.complete(model="fake/gpt-4o", prompt="x")
    assert answer.usage == llmx.Usage(2000, 100, cache_read_tokens=1500)
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million tokens;
    # prompt_tokens (2000) include the 1500 cached ones.
    expected = (500 * 2.50 + 1500 * 1.25 + 100 * 10.00) / 1_000_000
    assert expected == pytest.approx(0.004125)
    assert answer.cost == pytest.approx(expected)


async def test_gpt_5_4_above_272k_prompt_tokens_is_priced_at_its_tier(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(Reply("ok", usage=(300_000, 1000), cached_tokens=100_000))
    answer = await client.complete(model="fake/gpt-5.4", prompt="x")
    # gpt-5.4 above 272K input tokens: $5 input, $0.50 cached input, $22.50 output
    expected = (200_000 * 5.0 + 100_000 * 0.50 + 1000 * 22.5) / 1_000_000
    assert answer.cost == pytest.approx(expected)
    assert MODELS["gpt-5.4"].input_price == 2.5  # below the tier: the base price


async def test_config_gives_facts_about_a_model_openai_does_not_list(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(
        model_info={
            "my-finetune": {
                "context_window": 64_000,
                "input_price": 4.0,
                "output_price": 16.0,
                "cache_read_price": 1.0,
            }
        }
    )
    server.enqueue(Reply("ok", usage=(1000, 100), cached_tokens=600))
    answer = await client.complete(model="fake/my-finetune", prompt="x")
    info = client.model_info("fake/my-finetune")
    assert info is not None
    assert info.source == "config"
    assert info.context_window == 64_000
    assert answer.cost == pytest.approx((400 * 4.0 + 600 * 1.0 + 100 * 16.0) / 1_000_000)

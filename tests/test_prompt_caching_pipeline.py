"""Prompt caching through the whole pipeline: an alias falls back from Anthropic
(overloaded) to OpenAI with breakpoints and a prompt-cache key on the request, whole
and streamed; each vendor gets its own wire form (both bodies validated against the
vendors' documents), the answer's usage and cost are OpenAI's, and the stats count the
cost. Real providers, real HTTP, the fakes."""

from __future__ import annotations

import pytest
from llmx_anthropic.testing import FakeAnthropicServer

import llmx
from llmx.testing import ErrorReply, Reply
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeOpenAIServer


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_cached_request_falls_back_from_anthropic_to_openai(streamed: bool) -> None:
    async with (
        FakeAnthropicServer(api_key="k") as claude,
        FakeOpenAIServer(api_key="k") as openai,
    ):
        claude.enqueue(ErrorReply(529))
        openai.enqueue(Reply("from openai", usage=(3000, 20), cached_tokens=2048))
        config = {
            "providers": {
                "claude": {"type": "anthropic", "base_url": claude.base_url, "api_key": "k"},
                "oa": {"type": "openai", "base_url": openai.base_url, "api_key": "k"},
            },
            "retry": {"attempts": 1},
            "aliases": {"smart": ["claude/claude-sonnet-4-5", "oa/gpt-4o"]},
        }
        messages = [
            llmx.Message.system("The manual. " * 300, cache=True),
            llmx.Message.user("Question?"),
        ]
        async with llmx.Client(config) as client:
            if streamed:
                answer = await client.stream(
                    model="smart", messages=messages, prompt_cache_key="manual-v1"
                ).collect()
            else:
                answer = await client.complete(
                    model="smart", messages=messages, prompt_cache_key="manual-v1"
                )
            stats = client.stats()

        sent_to_claude = claude.model_requests[0].json
        vendor_validator("anthropic", "official").check("/v1/messages", "post", sent_to_claude)
        assert sent_to_claude["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert "prompt_cache_key" not in sent_to_claude
        sent_to_openai = openai.model_requests[0].json
        vendor_validator("openai", "official").check("/chat/completions", "post", sent_to_openai)
        assert sent_to_openai["prompt_cache_key"] == "manual-v1"
        assert "cache_control" not in str(sent_to_openai)

    assert answer.provider == "oa"
    assert [a.provider for a in answer.attempts] == ["claude", "oa"]
    assert answer.usage == llmx.Usage(3000, 20, cache_read_tokens=2048)
    # gpt-4o: 952 uncached at $2.50, 2048 cached at $1.25, 20 out at $10 per M
    expected = (952 * 2.50 + 2048 * 1.25 + 20 * 10.0) / 1_000_000
    assert answer.cost == pytest.approx(expected)
    (oa,) = stats.for_instance("oa")
    assert oa.cost == pytest.approx(expected)

"""Embeddings across the first-party providers, each behind its vendor's fake: one alias
falls back from a provider without embeddings (Anthropic: refused before sending) and an
unavailable one (OpenAI answering 503) to Gemini; the vectors come from one model only;
the answer is then served from the cache without a request; stats count each instance's
embeddings and their cost."""

from __future__ import annotations

from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import ErrorReply, fake_embedding
from llmx_openai.testing import FakeOpenAIServer

KEY = "test-key"


async def test_fallback_from_vendor_to_vendor_then_the_cache() -> None:
    async with (
        FakeAnthropicServer(api_key=KEY) as anthropic,
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeGeminiServer(api_key=KEY) as gemini,
    ):
        openai.enqueue(ErrorReply(503), ErrorReply(503))
        config = {
            "providers": {
                "claude": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": KEY},
                "oa": {
                    "type": "openai",
                    "base_url": openai.base_url,
                    "api_key": KEY,
                    "retry": {"attempts": 2, "wait_initial": 0.01},
                },
                "gem": {"type": "gemini", "base_url": gemini.base_url, "api_key": KEY},
            },
            "aliases": {
                "embedder": {
                    "candidates": [
                        "claude/claude-sonnet-4-6",
                        "oa/text-embedding-3-small",
                        "gem/gemini-embedding-001",
                    ]
                }
            },
            "cache": {"backend": "memory"},
        }
        texts = [f"document {i}" for i in range(150)]
        async with llmx.Client(config) as client:
            response = await client.embed(model="embedder", input=texts, dimensions=32)
            again = await client.embed(model="embedder", input=texts, dimensions=32)
            stats = client.stats()

    assert response.provider == "gem"
    assert [list(v) for v in response.vectors] == [fake_embedding(t, 32) for t in texts]
    assert [(a.provider, a.error_type) for a in response.attempts] == [
        ("oa", "ServerError"),
        ("oa", "ServerError"),
        ("gem", None),
    ]
    assert not anthropic.requests, "Anthropic has no embeddings API: nothing was sent"
    assert len(openai.model_requests) == 2
    assert len(gemini.model_requests) == 2  # 150 inputs: two batchEmbedContents calls
    assert again.cached
    assert again.vectors == response.vectors
    assert len(gemini.model_requests) == 2, "the cached answer made no request"
    (gem,) = stats.for_instance("gem")
    (oa,) = stats.for_instance("oa")
    assert (gem.embeds, gem.successes, gem.input_tokens) == (1, 1, response.usage.input_tokens)
    assert gem.cost == response.cost
    assert response.cost is not None
    assert response.cost > 0
    assert (oa.embeds, oa.errors) == (0, {"ServerError": 2})
    assert stats.cache is not None
    assert stats.cache.hits == 1

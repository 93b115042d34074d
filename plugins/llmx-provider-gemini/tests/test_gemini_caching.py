"""Prompt caching on Gemini: implicit caching needs nothing on the wire (``cache=``
breakpoints and ``prompt_cache_key`` change nothing), an explicit cache is named with
``extra={"cachedContent": ...}`` (validated against the discovery document); the
``cachedContentTokenCount`` arrives whole and streamed and is priced at the cached
price, long prompts at the above-200K tier, thoughts as output, checked against
hand-computed numbers."""

from __future__ import annotations

from typing import Any

import pytest
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import Reply
from llmx.testing.openapi import vendor_validator


def _sent(server: FakeGeminiServer, index: int = -1) -> dict[str, Any]:
    recorded = server.model_requests[index]
    method = recorded.path.rsplit(":", 1)[1]
    vendor_validator("gemini", "official").check(
        f"generativelanguage.models.{method}", "post", recorded.json
    )
    assert isinstance(recorded.json, dict)
    return recorded.json


async def test_breakpoints_and_key_change_nothing_and_cached_content_is_sent(
    client: llmx.Client, server: FakeGeminiServer
) -> None:
    ref = "fake/gemini-2.5-pro"
    await client.complete(model=ref, system="Be brief.", prompt="Hi")
    marked = [llmx.Message.system("Be brief.", cache=True), llmx.Message.user("Hi", cache=True)]
    await client.complete(model=ref, messages=marked, prompt_cache_key="doc-42")
    assert _sent(server, 0) == _sent(server, 1)
    await client.complete(model=ref, prompt="Hi", extra={"cachedContent": "cachedContents/abc123"})
    assert _sent(server)["cachedContent"] == "cachedContents/abc123"


@pytest.mark.parametrize("streamed", [False, True])
async def test_cached_tokens_are_counted_and_priced(
    client: llmx.Client, server: FakeGeminiServer, streamed: bool
) -> None:
    server.enqueue(Reply("ok", usage=(2000, 100), cached_tokens=1500, reasoning_tokens=40))
    ref = "fake/gemini-2.5-pro"
    if streamed:
        answer = await client.stream(model=ref, prompt="x").collect()
    else:
        answer = await client.complete(model=ref, prompt="x")
    assert answer.usage == llmx.Usage(2000, 100, cache_read_tokens=1500, reasoning_tokens=40)
    # gemini-2.5-pro: $1.25 input, $0.125 cached, $10 output (thoughts included) per
    # million tokens; promptTokenCount (2000) includes the 1500 cached ones.
    expected = (500 * 1.25 + 1500 * 0.125 + 100 * 10.0) / 1_000_000
    assert expected == pytest.approx(0.0018125)
    assert answer.cost == pytest.approx(expected)


async def test_a_prompt_above_200k_tokens_is_priced_at_the_tier(
    client: llmx.Client, server: FakeGeminiServer
) -> None:
    server.enqueue(Reply("ok", usage=(250_000, 100)))
    answer = await client.complete(model="fake/gemini-2.5-pro", prompt="x")
    # above 200K prompt tokens: $2.50 input, $15 output
    assert answer.cost == pytest.approx((250_000 * 2.5 + 100 * 15.0) / 1_000_000)

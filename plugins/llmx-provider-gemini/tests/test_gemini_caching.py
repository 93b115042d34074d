"""Prompt caching on Gemini: implicit caching needs nothing on the wire (``cache=``
breakpoints and ``prompt_cache_key`` change nothing), an explicit cache (created with
Google's ``cachedContents`` API, against the fake) is named with ``extra={"cachedContent":
...}`` end to end: whole and streamed, its tokens counted and priced as cache reads, in
the response-cache key, refused before sending with a system prompt or tools, an expired
one a typed error (every body validated against the discovery document); the
``cachedContentTokenCount`` arrives whole and streamed and is priced at the cached
price, long prompts at the above-200K tier, thoughts as output, checked against
hand-computed numbers."""

from __future__ import annotations

from typing import Any

import aiohttp
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


# -- explicit caches (cachedContents), through llmx's extra ---------------------------------

MANUAL = "The whole product manual, chapter after chapter. " * 120  # > 1024 fake tokens


async def create_cache(
    server: FakeGeminiServer, http: aiohttp.ClientSession, model: str, ttl: str = "300s"
) -> dict[str, Any]:
    """``POST cachedContents`` as Google's SDK sends it (the fake validates the body)."""
    body = {
        "model": f"models/{model}",
        "systemInstruction": {"parts": [{"text": "Answer from the manual."}]},
        "contents": [{"role": "user", "parts": [{"text": MANUAL}]}],
        "ttl": ttl,
    }
    vendor_validator("gemini", "official").check(
        "generativelanguage.cachedContents.create", "post", body
    )
    async with http.post(
        f"{server.base_url}/cachedContents", json=body, headers={"x-goog-api-key": "test-key"}
    ) as answer:
        assert answer.status == 200, await answer.text()
        created: dict[str, Any] = await answer.json()
    vendor_validator("gemini", "official").check_schema("CachedContent", created)
    return created


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_explicit_cache_is_used_counted_and_priced(
    client: llmx.Client,
    server: FakeGeminiServer,
    http: aiohttp.ClientSession,
    streamed: bool,
) -> None:
    cache = await create_cache(server, http, "gemini-2.5-pro")
    tokens = cache["usageMetadata"]["totalTokenCount"]
    assert tokens >= 1024
    ask: dict[str, Any] = {
        "model": "fake/gemini-2.5-pro",
        "prompt": "What does chapter 2 cover?",
        "extra": {"cachedContent": cache["name"]},
    }
    if streamed:
        answer = await client.stream(**ask).collect()
    else:
        answer = await client.complete(**ask)
    sent = _sent(server)
    assert sent["cachedContent"] == cache["name"]
    assert "systemInstruction" not in sent
    assert answer.usage.cache_read_tokens == tokens
    assert answer.usage.input_tokens > tokens  # the whole prompt, the cached part included
    uncached = answer.usage.input_tokens - tokens
    # gemini-2.5-pro: $1.25 input, $0.125 cached, $10 output per million tokens
    expected = (uncached * 1.25 + tokens * 0.125 + answer.usage.output_tokens * 10.0) / 1e6
    assert answer.cost == pytest.approx(expected)


async def test_the_cache_name_is_part_of_the_response_cache_key(
    server: FakeGeminiServer, http: aiohttp.ClientSession, make_config: Any
) -> None:
    first = await create_cache(server, http, "gemini-2.5-flash")
    second = await create_cache(server, http, "gemini-2.5-flash")
    config = {**make_config(), "cache": {"backend": "memory"}}
    async with llmx.Client(config) as client:
        answers = [
            await client.complete(
                model="fake/gemini-2.5-flash",
                prompt="Summarise.",
                temperature=0,
                extra={"cachedContent": name},
            )
            for name in (first["name"], second["name"], first["name"])
        ]
    assert [a.cached for a in answers] == [False, False, True]
    assert len(server.model_requests) == 2


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({"system": "Be brief."}, "a system prompt"),
        ({"tools": [llmx.Tool("f", "F.", {"type": "object", "properties": {}})]}, "tools"),
    ],
)
async def test_what_belongs_in_the_cache_is_refused_before_sending(
    client: llmx.Client, server: FakeGeminiServer, options: dict[str, Any], what: str
) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError) as caught:
        await client.complete(
            model="fake/gemini-2.5-flash",
            prompt="x",
            extra={"cachedContent": "cachedContents/any"},
            **options,
        )
    assert caught.value.feature == "cached_content"
    assert f"cannot also send {what}" in str(caught.value)
    assert server.model_requests == []


async def test_an_expired_or_deleted_cache_is_a_typed_error(
    client: llmx.Client, server: FakeGeminiServer, http: aiohttp.ClientSession
) -> None:
    gone = await create_cache(server, http, "gemini-2.5-flash", ttl="0.001s")
    deleted = await create_cache(server, http, "gemini-2.5-flash")
    async with http.delete(
        f"{server.base_url}/{deleted['name']}", headers={"x-goog-api-key": "test-key"}
    ) as answer:
        assert answer.status == 200
    for name in (gone["name"], deleted["name"]):
        with pytest.raises(llmx.PermissionDeniedError, match="CachedContent not found"):
            await client.complete(
                model="fake/gemini-2.5-flash", prompt="x", extra={"cachedContent": name}
            )
    other = await create_cache(server, http, "gemini-2.5-pro")
    with pytest.raises(llmx.BadRequestError, match="has to be the same"):
        await client.complete(
            model="fake/gemini-2.5-flash", prompt="x", extra={"cachedContent": other["name"]}
        )


async def test_the_fake_refuses_a_cache_below_the_minimum(
    server: FakeGeminiServer, http: aiohttp.ClientSession
) -> None:
    body = {
        "model": "models/gemini-2.5-flash",
        "contents": [{"role": "user", "parts": [{"text": "too short"}]}],
    }
    async with http.post(
        f"{server.base_url}/cachedContents", json=body, headers={"x-goog-api-key": "test-key"}
    ) as answer:
        assert answer.status == 400
        assert "Cached content is too small" in (await answer.json())["error"]["message"]

"""Typed structured output (``response_model=``) through the whole pipeline, against the
three vendors' fakes: fallback openai -> anthropic -> gemini with the schema re-rendered
in each vendor's strict form (every body validated against the vendor's published
schema, and the fakes refuse what their vendor refuses), a re-ask that lands on another
vendor, the response cache (the key includes the schema; a hit is parsed again, never
re-asked), ``validation_retries`` in ``client.stats()``, and the blocking client."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any, Literal, TypedDict

import pytest
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini.testing import FakeGeminiServer

import llmx
import llmx.structured
from llmx.testing import ErrorReply, FakeServer, Reply
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeOpenAIServer


@dataclasses.dataclass
class Step:
    """One step of a recipe."""

    text: str
    minutes: int | None = None


@dataclasses.dataclass
class Recipe:
    title: str
    level: Literal["easy", "hard"]
    steps: list[Step]
    serves: int = 2


class Score(TypedDict):
    player: str
    points: int


GOOD = '{"title": "Tea", "level": "easy", "steps": [{"text": "boil", "minutes": 3}]}'
EXPECTED = Recipe("Tea", "easy", [Step("boil", 3)])
# What a strict vendor answers: every property present, null where there is nothing.
GOOD_STRICT = (
    '{"title": "Tea", "level": "easy", "serves": null, "steps": [{"text": "boil", "minutes": 3}]}'
)
BAD = '{"title": "Tea", "level": "medium", "steps": [{"text": "boil"}]}'


def check_bodies(openai: FakeServer, anthropic: FakeServer, gemini: FakeServer) -> None:
    for recorded in openai.model_requests:
        vendor_validator("openai", "official").check("/chat/completions", "post", recorded.json)
    for recorded in anthropic.model_requests:
        vendor_validator("anthropic", "official").check("/v1/messages", "post", recorded.json)
    for recorded in gemini.model_requests:
        method = recorded.path.rsplit(":", 1)[1]
        vendor_validator("gemini", "official").check(
            f"generativelanguage.models.{method}", "post", recorded.json
        )


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FakeServer, FakeServer, FakeServer]]:
    async with (
        FakeOpenAIServer(api_key="k") as openai,
        FakeAnthropicServer(api_key="k") as anthropic,
        FakeGeminiServer(api_key="k") as gemini,
    ):
        yield openai, anthropic, gemini
    check_bodies(openai, anthropic, gemini)


def config(servers: tuple[FakeServer, FakeServer, FakeServer], **extra: Any) -> dict[str, Any]:
    openai, anthropic, gemini = servers
    providers = {
        name: {"type": name, "base_url": server.base_url, "api_key": "k", "retry": {"attempts": 1}}
        for name, server in (("openai", openai), ("anthropic", anthropic), ("gemini", gemini))
    }
    aliases = {
        "chef": {
            "candidates": [
                "openai/gpt-4o-mini",
                "anthropic/claude-sonnet-4-6",
                "gemini/gemini-2.5-flash",
            ]
        }
    }
    return {"providers": providers, "aliases": aliases, **extra}


async def test_fallback_rerenders_the_schema_for_each_vendor(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, anthropic, gemini = servers
    openai.enqueue(ErrorReply(500))
    anthropic.enqueue(ErrorReply(529))
    gemini.enqueue(Reply(GOOD))
    async with llmx.Client(config(servers)) as client:
        reply = await client.complete(model="chef", prompt="tea?", response_model=Recipe)
    assert reply.parsed == EXPECTED
    assert reply.provider == "gemini"
    assert [a.provider for a in reply.attempts] == ["openai", "anthropic", "gemini"]
    # OpenAI: strict, every property required, the defaulted ones as a null union.
    fmt = openai.model_requests[0].json["response_format"]
    assert fmt["json_schema"]["strict"] is True
    strict = fmt["json_schema"]["schema"]
    assert strict["required"] == ["title", "level", "steps", "serves"]
    assert strict["properties"]["serves"]["type"] == ["integer", "null"]
    assert strict["additionalProperties"] is False
    # Anthropic: its native structured output, defaults left out of required.
    schema = anthropic.model_requests[0].json["output_config"]["format"]["schema"]
    assert schema["required"] == ["title", "level", "steps"]
    assert schema["properties"]["steps"]["items"]["additionalProperties"] is False
    # Gemini: the OpenAPI subset, with nullable instead of a null union.
    generation = gemini.model_requests[0].json["generationConfig"]
    assert generation["responseMimeType"] == "application/json"
    step = generation["responseSchema"]["properties"]["steps"]["items"]
    assert step["properties"]["minutes"] == {"type": "INTEGER", "nullable": True}
    assert "responseJsonSchema" not in generation


async def test_a_strict_answer_with_nulls_gets_the_defaults(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, _, _ = servers
    openai.enqueue(Reply(GOOD_STRICT))
    async with llmx.Client(config(servers)) as client:
        reply = await client.complete(model="chef", prompt="tea?", response_model=Recipe)
    assert reply.parsed == EXPECTED  # serves: null -> the default, 2


async def test_reask_may_land_on_another_vendor(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, anthropic, _ = servers
    openai.enqueue(Reply(BAD), ErrorReply(500))
    anthropic.enqueue(Reply(GOOD))
    async with llmx.Client(config(servers)) as client:
        reply = await client.complete(model="chef", prompt="tea?", response_model=Recipe)
        stats = {(m.instance, m.model): m for m in client.stats().models}
    assert reply.parsed == EXPECTED
    assert reply.validation_retries == 1
    assert reply.provider == "anthropic"
    assert stats["openai", "gpt-4o-mini"].validation_retries == 1
    assert stats["anthropic", "claude-sonnet-4-6"].validation_retries == 0
    body = anthropic.model_requests[0].json
    assert body["messages"][-2] == {"role": "assistant", "content": BAD}
    assert "$.level" in body["messages"][-1]["content"]


async def test_the_cache_parses_again_and_never_reasks(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, _, _ = servers
    openai.enqueue(Reply(BAD), Reply(GOOD))
    async with llmx.Client(config(servers, cache={"backend": "memory"})) as client:
        first = await client.complete(model="chef", prompt="tea?", response_model=Recipe)
        again = await client.complete(model="chef", prompt="tea?", response_model=Recipe)
        # Another schema is another key: asked for real.
        openai.enqueue(Reply('{"player": "ann", "points": 3}'))
        score = await client.complete(model="chef", prompt="tea?", response_model=Score)
        stats = client.stats()
    assert first.parsed == again.parsed == EXPECTED
    assert again.cached is True
    assert (
        again.validation_retries == 1
    )  # the cached bad answer, parsed again, re-asked from the cache
    assert len(openai.model_requests) == 3
    assert score.parsed == {"player": "ann", "points": 3}
    assert stats.cache is not None
    assert stats.cache.hits == 2


async def test_a_non_object_model_is_wrapped(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, _, _ = servers
    openai.enqueue(Reply('{"value": [{"player": "a", "points": 1}]}'))
    async with llmx.Client(config(servers)) as client:
        reply = await client.complete(model="chef", prompt="scores", response_model=list[Score])
    assert reply.parsed == [{"player": "a", "points": 1}]
    schema = openai.model_requests[0].json["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["value"]
    assert schema["properties"]["value"]["type"] == "array"


async def test_open_objects_are_refused_before_sending_where_strict_forbids_them(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, anthropic, gemini = servers
    gemini.enqueue(Reply('{"value": {"a": 1}}'))
    async with llmx.Client(config(servers)) as client:
        reply = await client.complete(model="chef", prompt="x", response_model=dict[str, int])
    assert reply.parsed == {"a": 1}
    assert openai.model_requests == []
    assert anthropic.model_requests == []
    refused = [(a.provider, a.error_type) for a in reply.attempts]
    assert refused == [
        ("openai", "UnsupportedFeatureError"),
        ("anthropic", "UnsupportedFeatureError"),
        ("gemini", None),
    ]
    generation = gemini.model_requests[0].json["generationConfig"]
    assert generation["responseJsonSchema"]["properties"]["value"]["additionalProperties"] == {
        "type": "integer"
    }


async def test_response_format_and_response_model_together_are_refused(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    async with llmx.Client(config(servers)) as client:
        with pytest.raises(TypeError, match="response_model"):
            await client.complete(
                model="chef", prompt="x", response_model=Recipe, response_format="json"
            )


def test_sync_client_structured() -> None:
    with FakeOpenAIServer(api_key="k").in_thread() as server:
        server.enqueue(Reply(BAD), Reply(GOOD), Reply(GOOD, chunk_size=5))
        cfg = {"providers": {"o": {"type": "openai", "base_url": server.base_url, "api_key": "k"}}}
        with llmx.SyncClient(cfg) as client:
            reply = client.complete(model="o/gpt-4o-mini", prompt="x", response_model=Recipe)
            assert reply.parsed == EXPECTED
            assert reply.validation_retries == 1
            stream = client.stream(model="o/gpt-4o-mini", prompt="x", response_model=Recipe)
            text = "".join(c.text for c in stream if isinstance(c, llmx.TextDelta))
            assert text == GOOD
            assert stream.parsed() == EXPECTED


async def test_a_pydantic_model_through_the_vendors(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    import pydantic

    class Pick(pydantic.BaseModel):
        choice: Literal["tea", "coffee"]
        sugar: int = 0

    openai, anthropic, gemini = servers
    openai.enqueue(ErrorReply(503), ErrorReply(503))  # the re-ask starts from the top too
    anthropic.enqueue(Reply('{"choice": "milk"}'), ErrorReply(500))
    gemini.enqueue(Reply('{"choice": "tea", "sugar": 1}'))
    async with llmx.Client(config(servers)) as client:
        reply = await client.complete(model="chef", prompt="drink?", response_model=Pick)
    assert reply.parsed == Pick(choice="tea", sugar=1)
    assert reply.validation_retries == 1
    strict = openai.model_requests[0].json["response_format"]["json_schema"]["schema"]
    assert strict["required"] == ["choice", "sugar"]
    asked_again = gemini.model_requests[0].json["contents"][-1]["parts"][0]["text"]
    assert "$.choice: Input should be 'tea' or 'coffee'" in asked_again


async def test_retries_happen_below_the_reask(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, _, _ = servers
    openai.enqueue(ErrorReply(500), Reply(GOOD))  # one retryable failure, then the answer
    cfg = config(servers)
    cfg["providers"]["openai"]["retry"] = {"attempts": 2, "wait_initial": 0.0, "wait_jitter": 0.0}
    async with llmx.Client(cfg) as client:
        reply = await client.complete(model="chef", prompt="tea?", response_model=Recipe)
        (stats,) = [m for m in client.stats().models if m.instance == "openai"]
    assert reply.parsed == EXPECTED
    assert reply.validation_retries == 0
    assert [a.error_type for a in reply.attempts] == ["ServerError", None]
    assert stats.retries == 1
    assert stats.validation_retries == 0


async def test_a_stream_that_fails_validation_is_reasked_whole(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    _, _, gemini = servers
    gemini.enqueue(Reply(BAD, chunk_size=6), Reply(GOOD))
    async with llmx.Client(config(servers)) as client:
        stream = client.stream(
            model="gemini/gemini-2.5-flash", prompt="tea?", response_model=Recipe
        )
        async with stream:
            streamed = "".join([piece async for piece in stream.text()])
            assert streamed == BAD  # what was shown is never spliced with the re-ask
            assert await stream.parsed() == EXPECTED
        response = stream.response
        (stats,) = client.stats().models
    assert isinstance(response, llmx.structured.ParsedResponse)
    assert response.validation_retries == 1
    assert response.text == GOOD
    assert [r.path.rsplit(":", 1)[1] for r in gemini.model_requests] == [
        "streamGenerateContent",
        "generateContent",
    ]
    assert stats.validation_retries == 1


async def test_a_stream_that_never_validates_raises(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, _, _ = servers
    openai.enqueue(Reply(BAD))
    async with llmx.Client(config(servers)) as client:
        stream = client.stream(
            model="openai/gpt-4o-mini",
            prompt="tea?",
            response_model=Recipe,
            max_validation_retries=0,
        )
        async with stream:
            with pytest.raises(llmx.structured.StructuredOutputError) as info:
                await stream.parsed()
    assert info.value.text == BAD
    assert info.value.errors == ('$.level: "medium" is not one of "easy", "hard"',)
    assert info.value.response is not None
    assert info.value.response.provider == "openai"


async def test_parsed_after_closing_a_stream_early_says_so(
    servers: tuple[FakeServer, FakeServer, FakeServer],
) -> None:
    openai, _, _ = servers
    openai.enqueue(Reply(GOOD, chunk_size=4))
    async with llmx.Client(config(servers)) as client:
        stream = client.stream(model="openai/gpt-4o-mini", prompt="tea?", response_model=Recipe)
        async with stream:
            async for _ in stream:
                break
        with pytest.raises(RuntimeError, match="closed before its end"):
            await stream.parsed()

"""What only Anthropic's wire format needs, beyond the conformance kit: headers, the
required ``max_tokens``, system and alternation rules, features the API cannot express,
``x-should-retry``, pagination and unknown stream events.

Documented behaviour reproduced (Anthropic API reference): ``x-api-key`` and
``anthropic-version`` headers, ``anthropic-beta`` flags; ``max_tokens`` required;
"Consecutive user or assistant turns in your request will be combined into a single
turn"; tool results first in their user turn; image sources ``base64`` (JPEG, PNG, GIF,
WebP) and ``url``; models after Opus 4.6 refuse sampling parameters; Models API
pagination (``has_more``, ``last_id``, ``after_id``); new stream event types may appear
and are to be ignored ("Versioning"); SDKs obey ``x-should-retry``.
"""

from __future__ import annotations

from typing import Any

import pytest
from llmx_anthropic._models import lookup
from llmx_anthropic.testing import FakeAnthropicServer

import llmx
from llmx.testing import ErrorReply, RawReply, Reply

MODEL = "fake/claude-sonnet-4-6"


async def test_headers_and_default_max_tokens(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    await client.complete(model=MODEL, prompt="Hi")
    sent = server.model_requests[-1]
    assert sent.headers["x-api-key"] == "test-key"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in sent.headers
    assert sent.json == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_settings(server: FakeAnthropicServer, make_config: Any) -> None:
    config = make_config(
        version="2024-01-01", beta=["files-api-2025-04-14", "x"], default_max_tokens=300
    )
    async with llmx.Client(config) as client:
        await client.complete(model="fake/some-future-model", prompt="Hi")
        await client.complete(model=MODEL, prompt="Hi", max_tokens=5)
    first, second = server.model_requests
    assert first.headers["anthropic-version"] == "2024-01-01"
    assert first.headers["anthropic-beta"] == "files-api-2025-04-14,x"
    assert first.json["max_tokens"] == 300
    assert second.json["max_tokens"] == 5


async def test_unknown_model_gets_a_modest_max_tokens(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    await client.complete(model="fake/claude-next", prompt="Hi")
    assert server.model_requests[-1].json["max_tokens"] == 4096


async def test_system_and_alternation(client: llmx.Client, server: FakeAnthropicServer) -> None:
    messages = [
        llmx.Message.system("Be brief."),
        llmx.Message.user("Weather?"),
        llmx.Message.assistant(
            "", tool_calls=[llmx.ToolCall("toolu_1", "weather", '{"c": "Oslo"}')]
        ),
        llmx.Message.tool("toolu_1", "sunny"),
        llmx.Message.user("And tomorrow?"),
        llmx.Message.assistant(""),  # empty: dropped
        llmx.Message.system("Use metric units."),
    ]
    await client.complete(model=MODEL, messages=messages)
    body = server.model_requests[-1].json
    assert body["system"] == "Be brief.\n\nUse metric units."
    assert body["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"c": "Oslo"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("params", "feature"),
    [
        ({"seed": 1}, "seed"),
        ({"response_format": "json"}, "json_mode"),
        (
            {
                "messages": [
                    llmx.Message.user("x", llmx.Image(data=b"BM..", media_type="image/bmp"))
                ]
            },
            "image_type",
        ),
    ],
)
async def test_refused_before_sending(
    client: llmx.Client, server: FakeAnthropicServer, params: dict[str, Any], feature: str
) -> None:
    if "messages" not in params:
        params["prompt"] = "x"
    with pytest.raises(llmx.UnsupportedFeatureError) as info:
        await client.complete(model=MODEL, **params)
    assert info.value.feature in (feature, "json_mode")
    assert server.model_requests == []


async def test_models_without_sampling_parameters(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError, match="temperature") as info:
        await client.complete(model="fake/claude-opus-4-7", prompt="x", temperature=0.2)
    assert info.value.feature == "temperature"
    with pytest.raises(llmx.UnsupportedFeatureError, match="top_p"):
        await client.complete(model="fake/claude-opus-4-8", prompt="x", top_p=0.5)
    assert server.model_requests == []
    await client.complete(model="fake/claude-opus-4-7", prompt="x", temperature=1.0, top_p=0.99)
    await client.complete(model=MODEL, prompt="x", temperature=0.2)
    assert server.model_requests[-1].json["temperature"] == 0.2


async def test_image_sources(client: llmx.Client, server: FakeAnthropicServer) -> None:
    message = llmx.Message.user(
        "Compare",
        llmx.Image(data=b"GIF89a", media_type="image/gif"),
        llmx.Image(url="data:image/webp;base64,UklGRg=="),
        llmx.Image(url="https://example.com/cat.png"),
    )
    await client.complete(model=MODEL, messages=[message])
    content = server.model_requests[-1].json["messages"][0]["content"]
    assert [b["source"] for b in content[1:]] == [
        {"type": "base64", "media_type": "image/gif", "data": "R0lGODlh"},
        {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
        {"type": "url", "url": "https://example.com/cat.png"},
    ]


async def test_structured_output_and_tool_strictness(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    server.enqueue(Reply('{"n": 1}'))
    tool = llmx.Tool("f", "", {"type": "object", "properties": {}}, strict=True)
    await client.complete(
        model=MODEL,
        prompt="n?",
        tools=[tool],
        response_format=llmx.ResponseFormat("json_schema", schema),
    )
    body = server.model_requests[-1].json
    closed = {**schema, "additionalProperties": False}  # Anthropic takes closed objects only
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": closed}}
    assert body["tools"] == [
        {"name": "f", "input_schema": {"type": "object", "properties": {}}, "strict": True}
    ]


@pytest.mark.parametrize(("header", "retryable"), [("false", False), ("true", True), (None, True)])
async def test_x_should_retry(
    client: llmx.Client, server: FakeAnthropicServer, header: str | None, retryable: bool
) -> None:
    server.enqueue(ErrorReply(529, headers={"x-should-retry": header} if header else {}))
    with pytest.raises(llmx.ServerError) as info:
        await client.complete(model=MODEL, prompt="x")
    assert info.value.retryable is retryable
    assert info.value.code == "overloaded_error"


async def test_context_window_messages(client: llmx.Client, server: FakeAnthropicServer) -> None:
    server.enqueue(
        ErrorReply(
            400,
            message="input length and `max_tokens` exceed context limit: 197032 + 21333 > 200000, decrease input length or `max_tokens` and try again",
        )
    )
    with pytest.raises(llmx.ContextWindowExceededError):
        await client.complete(model=MODEL, prompt="x")


async def test_unknown_stream_events_are_ignored(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    events = [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
        b'event: brand_new_event\ndata: {"type":"brand_new_event","x":1}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}\n\n',
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ok"}}\n\n',
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"pause_turn","stop_sequence":null},"usage":{"output_tokens":7}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    server.enqueue(RawReply(200, b"".join(events), content_type="text/event-stream"))
    response = await client.stream(model=MODEL, prompt="x").collect()
    assert response.text == "ok"
    assert response.finish_reason == "pause"  # pause_turn (issue 15, item 7)
    assert response.usage == llmx.Usage(5, 7)
    assert response.id == "msg_1"


async def test_list_models_follows_pagination(
    server: FakeAnthropicServer, make_config: Any
) -> None:
    server.models = [(f"claude-model-{i}", f"Model {i}") for i in range(1500)]
    server.models.insert(0, ("claude-sonnet-4-6", "Claude Sonnet 4.6"))
    async with llmx.Client(make_config()) as client:
        models = await client.list_models("fake")
    assert len(models) == 1501
    assert models[0] == lookup("claude-sonnet-4-6")
    assert [r.query.get("after_id") for r in server.requests] == [None, "claude-model-998"]


async def test_missing_key_is_a_config_error(server: FakeAnthropicServer) -> None:
    config = {"providers": {"fake": {"type": "anthropic", "base_url": server.base_url}}}
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.ConfigError, match="ANTHROPIC_API_KEY"):
            await client.complete(model=MODEL, prompt="x")
    assert server.request_count == 0


def test_snapshots_resolve_to_their_alias() -> None:
    info = lookup("claude-sonnet-4-5-20250929")
    assert info is not None
    assert info.id == "claude-sonnet-4-5-20250929"
    assert (info.input_price, info.output_price, info.cache_read_price) == (3.0, 15.0, 0.3)
    assert lookup("claude-opus-4-20250514") is not None
    assert lookup("gpt-4o") is None


def test_registered_through_the_entry_point() -> None:
    registration = llmx.Registry().get("provider", "anthropic")
    assert registration.distribution == "llmx-provider-anthropic"
    import llmx_anthropic

    assert registration.factory is llmx_anthropic.AnthropicProvider
    assert registration.settings is llmx_anthropic.AnthropicSettings


async def test_structured_output_constraints_go_into_the_description(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    """Anthropic's structured outputs take no numeric/length bounds, maxItems or a
    minItems above 1: they are said in the description (llmx still checks them)."""
    schema = {
        "type": "object",
        "properties": {
            "pair": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "minItems": 2,
                "maxItems": 2,
                "description": "two numbers",
            }
        },
        "required": ["pair"],
    }
    server.enqueue(Reply('{"pair": [1, 2]}'))
    fmt = llmx.ResponseFormat("json_schema", schema)
    await client.complete(model=MODEL, prompt="two?", response_format=fmt)
    sent = server.model_requests[-1].json["output_config"]["format"]["schema"]
    assert sent["properties"]["pair"] == {
        "type": "array",
        "items": {"type": "integer", "description": "{minimum: 0}"},
        "description": "two numbers\n\n{maxItems: 2, minItems: 2}",
    }


async def test_recursive_structured_output_is_refused_before_sending(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node"}},
    }
    fmt = llmx.ResponseFormat("json_schema", schema)
    with pytest.raises(llmx.UnsupportedFeatureError, match="recursive"):
        await client.complete(model=MODEL, prompt="tree?", response_format=fmt)
    assert server.model_requests == []

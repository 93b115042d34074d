"""Tools, images and structured output: the request shapes OpenAI documents, and a full
tool call -> tool result -> answer round trip.

Shapes from OpenAI's API reference: ``tools: [{"type": "function", "function": {name,
description, parameters, strict}}]``, ``tool_choice`` (``"auto"``/``"none"``/
``"required"``/``{"type": "function", "function": {"name"}}``), assistant messages with
``tool_calls`` and ``content: null``, ``tool`` messages with ``tool_call_id``, user
content parts ``{"type": "image_url", "image_url": {"url", "detail"}}`` (URL or base64
data URL), ``response_format`` ``{"type": "json_object"}`` and ``{"type":
"json_schema", "json_schema": {name, schema, strict}}``.
"""

from __future__ import annotations

import base64
import json

import pytest

import llmx
from llmx.testing import Reply
from llmx_openai.testing import FakeOpenAIServer

MODEL = "fake/gpt-4o-mini"

WEATHER = llmx.Tool(
    "get_weather",
    "The current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)


async def test_tools_request_shape(client: llmx.Client, server: FakeOpenAIServer) -> None:
    await client.complete(model=MODEL, prompt="Weather?", tools=[WEATHER, llmx.Tool("now")])
    assert server.requests[-1].json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The current weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert "tool_choice" not in server.requests[-1].json


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
async def test_tool_choice(
    client: llmx.Client, server: FakeOpenAIServer, choice: str, wire: object
) -> None:
    await client.complete(model=MODEL, prompt="x", tools=[WEATHER], tool_choice=choice)
    assert server.requests[-1].json["tool_choice"] == wire


async def test_tool_round_trip(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(
        Reply(tool_calls=[("call_w1", "get_weather", '{"city":"Paris"}')], usage=(50, 10)),
        Reply("It is sunny in Paris."),
    )
    question = llmx.Message.user("What's the weather in Paris?")
    first = await client.complete(model=MODEL, messages=[question], tools=[WEATHER])
    assert first.finish_reason == "tool_calls"
    assert first.text == ""
    (call,) = first.tool_calls
    assert call == llmx.ToolCall("call_w1", "get_weather", '{"city":"Paris"}')
    assert call.args() == {"city": "Paris"}

    conversation = [
        question,
        llmx.Message.assistant(tool_calls=first.tool_calls),
        llmx.Message.tool(call.id, json.dumps({"sky": "sunny", "celsius": 24})),
    ]
    second = await client.complete(model=MODEL, messages=conversation, tools=[WEATHER])
    assert second.text == "It is sunny in Paris."
    assert second.finish_reason == "stop"
    assert server.requests[-1].json["messages"] == [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w1", "content": '{"sky": "sunny", "celsius": 24}'},
    ]


async def test_assistant_text_with_tool_calls_and_several_results(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    calls = (llmx.ToolCall("c1", "a", "{}"), llmx.ToolCall("c2", "b", '{"x":1}'))
    messages = [
        llmx.Message.user("go"),
        llmx.Message.assistant("Calling both.", tool_calls=calls),
        llmx.Message("tool", (llmx.ToolResult("c1", "one"), llmx.ToolResult("c2", "two"))),
    ]
    await client.complete(model=MODEL, messages=messages)
    sent = server.requests[-1].json["messages"]
    assert sent[1]["content"] == "Calling both."
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["c1", "c2"]
    assert sent[2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]


async def test_streamed_tool_call(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(
        Reply(
            "Let me check.",
            tool_calls=[("call_s", "get_weather", '{"city": "Oslo"}')],
            chunk_size=3,
        )
    )
    async with client.stream(model=MODEL, prompt="Weather in Oslo?", tools=[WEATHER]) as stream:
        response = await stream.collect()
    assert response.text == "Let me check."
    assert response.tool_calls == (llmx.ToolCall("call_s", "get_weather", '{"city": "Oslo"}'),)
    assert response.finish_reason == "tool_calls"


async def test_images_by_url_and_bytes(client: llmx.Client, server: FakeOpenAIServer) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(32))
    message = llmx.Message.user(
        "What is in these?",
        llmx.Image(url="https://example.com/cat.jpg", detail="low"),
        llmx.Image(data=png, media_type="image/png"),
    )
    await client.complete(model=MODEL, messages=[message])
    assert server.requests[-1].json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                },
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{base64.b64encode(png).decode()}"},
                },
            ],
        }
    ]


async def test_json_mode(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(Reply('{"answer": 42}'))
    reply = await client.complete(model=MODEL, prompt="Answer in JSON", response_format="json")
    assert server.requests[-1].json["response_format"] == {"type": "json_object"}
    assert reply.json() == {"answer": 42}


async def test_json_schema(client: llmx.Client, server: FakeOpenAIServer) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    server.enqueue(Reply('{"n": 3}'), Reply('{"n": 4}'))
    reply = await client.complete(
        model=MODEL,
        prompt="n?",
        response_format=llmx.ResponseFormat("json_schema", schema, name="count", strict=True),
    )
    assert server.requests[-1].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "count", "schema": schema, "strict": True},
    }
    assert reply.json() == {"n": 3}
    await client.complete(
        model=MODEL, prompt="n?", response_format=schema
    )  # a bare schema: a default name
    assert server.requests[-1].json["response_format"]["json_schema"]["name"] == "response"

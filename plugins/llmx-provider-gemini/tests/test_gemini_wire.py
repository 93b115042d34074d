"""What only Gemini's wire format needs, beyond the conformance kit: the key header,
``functionResponse`` names, JSON Schema to ``Schema``, blocked prompts, ``RetryInfo``,
tool calls without ids, thought parts and model listing.

Documented behaviour reproduced (Gemini API reference and its discovery document):
``x-goog-api-key``; ``FunctionResponse.name`` required; ``Schema`` is an OpenAPI subset
with upper-case ``Type`` values (``responseJsonSchema`` / ``parametersJsonSchema`` take
full JSON Schema); an OBJECT schema needs properties; ``promptFeedback.blockReason``;
``google.rpc.RetryInfo.retryDelay`` on ``RESOURCE_EXHAUSTED``; an invalid key is
``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``; ``Part.thought`` marks thinking;
``models.list`` pages with ``nextPageToken`` and lists non-generative models too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from llmx_gemini._wire import NotExpressible, to_gemini_schema
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx.testing import Blocked, ErrorReply, RawReply

MODEL = "fake/gemini-2.5-flash"


async def test_key_header_and_url(client: llmx.Client, server: FakeGeminiServer) -> None:
    await client.complete(model=MODEL, prompt="Hi")
    sent = server.model_requests[-1]
    assert sent.headers["x-goog-api-key"] == "test-key"
    assert sent.query == {}
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.json == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    await client.stream(model=MODEL, prompt="Hi").collect()
    assert server.model_requests[-1].query == {"alt": "sse"}


async def test_google_api_key_fallback(
    server: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    config = {"providers": {"g": {"type": "gemini", "base_url": server.base_url}}}
    async with llmx.Client(config) as client:
        assert (await client.complete(model="g/gemini-2.5-pro", prompt="ok")).text == "ok"
    async with llmx.Client(
        {"providers": {"g": {"type": "gemini", "base_url": server.base_url, "api_key_env": "NOPE"}}}
    ) as client:
        monkeypatch.delenv("GOOGLE_API_KEY")
        with pytest.raises(llmx.ConfigError, match="NOPE"):
            await client.complete(model="g/gemini-2.5-pro", prompt="ok")


async def test_function_responses_are_named_after_their_call(
    client: llmx.Client, server: FakeGeminiServer
) -> None:
    conversation = [
        llmx.Message.user("Weather?"),
        llmx.Message.assistant(
            tool_calls=[llmx.ToolCall("gemini-call-0", "weather", '{"c":"Oslo"}')]
        ),
        llmx.Message.tool("gemini-call-0", "sunny"),
        llmx.Message("tool", [llmx.ToolResult("other", '{"t": 3}', name="temperature")]),
    ]
    await client.complete(model=MODEL, messages=conversation)
    contents = server.model_requests[-1].json["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "weather", "args": {"c": "Oslo"}}}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"output": "sunny"}}},
            {"functionResponse": {"name": "temperature", "response": {"t": 3}, "id": "other"}},
        ],
    }
    with pytest.raises(llmx.BadRequestError, match="needs the function's name"):
        await client.complete(model=MODEL, messages=[llmx.Message.tool("nobody", "x")])


async def test_calls_without_ids_get_synthetic_ones(
    client: llmx.Client, server: FakeGeminiServer
) -> None:
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking about it", "thought": True},
                        {"functionCall": {"name": "a", "args": {}}},
                        {"functionCall": {"name": "b", "args": {"x": 1}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 3,
            "candidatesTokenCount": 2,
            "thoughtsTokenCount": 5,
        },
    }
    server.enqueue(RawReply(200, json.dumps(answer)))
    response = await client.complete(model=MODEL, prompt="go")
    assert response.text == ""
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("gemini-call-0", "a", "{}"),
        ("gemini-call-1", "b", '{"x":1}'),
    ]
    assert response.usage == llmx.Usage(3, 7, reasoning_tokens=5)


def test_json_schema_to_gemini_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "who", "minLength": 1},
            "tags": {
                "type": "array",
                "items": {"type": "string", "enum": ["a", "b"]},
                "maxItems": 3,
            },
            "age": {"type": ["integer", "null"], "minimum": 0},
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING", "description": "who", "minLength": "1"},
            "tags": {
                "type": "ARRAY",
                "maxItems": "3",
                "items": {"type": "STRING", "enum": ["a", "b"]},
            },
            "age": {"type": "INTEGER", "nullable": True, "minimum": 0},
        },
        "propertyOrdering": ["name", "tags", "age"],
        "required": ["name"],
    }
    # A $ref to a $defs entry is inlined, X | None is X with nullable (structured output).
    assert to_gemini_schema(
        {
            "$defs": {"item": {"type": "string"}},
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                "maybe": {"anyOf": [{"$ref": "#/$defs/item"}, {"type": "null"}]},
            },
        }
    ) == {
        "type": "OBJECT",
        "properties": {
            "items": {"type": "ARRAY", "items": {"type": "STRING"}},
            "maybe": {"type": "STRING", "nullable": True},
        },
        "propertyOrdering": ["items", "maybe"],
    }
    for bad in (
        {"$ref": "#/$defs/x"},
        {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"anyOf": [{"type": "string"}]},
        {"type": "integer", "enum": [1, 2]},
    ):
        with pytest.raises(NotExpressible):
            to_gemini_schema(bad)


async def test_inexpressible_schemas_go_as_json_schema(
    client: llmx.Client, server: FakeGeminiServer
) -> None:
    schema: dict[str, Any] = {  # a recursive $ref: Schema cannot inline it
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node"}},
    }
    tools = [llmx.Tool("no_params"), llmx.Tool("refs", "uses $ref", schema)]
    await client.complete(
        model=MODEL,
        prompt="x",
        tools=tools,
        response_format=llmx.ResponseFormat("json_schema", schema),
    )
    body = server.model_requests[-1].json
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "no_params", "description": ""},
                {"name": "refs", "description": "uses $ref", "parametersJsonSchema": schema},
            ]
        }
    ]
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


async def test_options_and_safety_settings(server: FakeGeminiServer, make_config: Any) -> None:
    config = make_config(safety_settings={"HARM_CATEGORY_HARASSMENT": "BLOCK_ONLY_HIGH"})
    async with llmx.Client(config) as client:
        await client.complete(
            model=MODEL,
            system="Be brief.",
            prompt="x",
            temperature=0.3,
            top_p=0.9,
            max_tokens=20,
            stop=["END"],
            seed=4,
            response_format="json",
            tools=[llmx.Tool("f", "", {"type": "object", "properties": {"a": {"type": "string"}}})],
            tool_choice="f",
        )
    body = server.model_requests[-1].json
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}
    ]
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 20,
        "stopSequences": ["END"],
        "seed": 4,
        "responseMimeType": "application/json",
    }
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}
    }


@pytest.mark.parametrize("streamed", [False, True])
async def test_blocked_prompt_is_a_content_filter_error(
    client: llmx.Client, server: FakeGeminiServer, streamed: bool
) -> None:
    server.enqueue(Blocked("PROHIBITED_CONTENT"))
    ask = client.stream(model=MODEL, prompt="x").collect if streamed else None
    with pytest.raises(llmx.ContentFilterError, match="PROHIBITED_CONTENT") as info:
        await (ask() if ask else client.complete(model=MODEL, prompt="x"))
    assert info.value.code == "PROHIBITED_CONTENT"


async def test_rate_limit_retry_info(client: llmx.Client, server: FakeGeminiServer) -> None:
    server.enqueue(server.error_for("rate_limit", retry_after=37))
    with pytest.raises(llmx.RateLimitError) as limited:
        await client.complete(model=MODEL, prompt="x")
    assert limited.value.retry_after == 37.0
    assert limited.value.code == "RESOURCE_EXHAUSTED"


async def test_invalid_key(client: llmx.Client, server: FakeGeminiServer) -> None:
    server.enqueue(server.error_for("authentication"))
    with pytest.raises(llmx.AuthenticationError) as denied:
        await client.complete(model=MODEL, prompt="x")
    assert denied.value.status == 400
    assert denied.value.code == "API_KEY_INVALID"


async def test_html_error_page(client: llmx.Client, server: FakeGeminiServer) -> None:
    server.enqueue(server.error_for("bad_gateway"))
    with pytest.raises(llmx.ServerError, match=r"502\. That") as info:
        await client.complete(model=MODEL, prompt="x")
    assert "<" not in info.value.message


async def test_unknown_model(client: llmx.Client, server: FakeGeminiServer) -> None:
    server.enqueue(ErrorReply(404, message="models/nope is not found for API version v1beta"))
    with pytest.raises(llmx.ModelNotFoundError) as info:
        await client.complete(model="fake/nope", prompt="x")
    assert info.value.code == "NOT_FOUND"


async def test_list_models_pages_and_skips_non_generative(
    server: FakeGeminiServer, make_config: Any
) -> None:
    server.models = [(f"gemini-test-{i}", 1000, 100) for i in range(1200)]
    async with llmx.Client(make_config()) as client:
        models = await client.list_models("fake")
    assert len(models) == 1200
    assert models[0] == llmx.ModelInfo("gemini-test-0", context_window=1000, max_output_tokens=100)
    assert [r.query.get("pageToken") for r in server.requests] == [None, "1000"]


def test_registered_through_the_entry_point() -> None:
    registration = llmx.Registry().get("provider", "gemini")
    assert registration.distribution == "llmx-provider-gemini"
    import llmx_gemini

    assert registration.factory is llmx_gemini.GeminiProvider

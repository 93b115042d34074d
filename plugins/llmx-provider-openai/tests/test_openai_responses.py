"""The ``openai-responses`` provider: OpenAI's Responses API (``POST /v1/responses``).

Request shapes from OpenAI's API reference and its OpenAPI document (``CreateResponse``):
``instructions``, ``input`` items (messages with ``input_text``/``input_image``,
``function_call`` and ``function_call_output`` items, ``reasoning`` items),
``max_output_tokens``, function tools with ``strict``, ``tool_choice``, ``text.format``,
``store``, ``include``. Every body a test sends is validated against that document; the
fake's answers (the ``response`` object and every stream event) against its schemas.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmx
import llmx.types
from llmx.testing import MidStreamError, RawReply, Reply
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeOpenAIServer
from llmx_openai.testing._responses import (
    describe_responses_body,
    response_events,
    response_object,
)

MODEL = "fake/gpt-4o-mini"
KEY = "test-key"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = llmx.Tool(
    "get_weather",
    "The current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def spec() -> Any:
    return vendor_validator("openai", "official")


def sent(server: FakeOpenAIServer) -> dict[str, Any]:
    """The last body sent to /v1/responses, validated against ``POST /responses``."""
    recorded = server.model_requests[-1]
    assert recorded.path == "/v1/responses"
    spec().check("/responses", "post", recorded.json)
    body: dict[str, Any] = recorded.json
    return body


@pytest.fixture
async def responses(
    make_client: Callable[..., llmx.Client],
) -> AsyncIterator[Callable[..., llmx.Client]]:
    """Clients whose instance ``fake`` has type ``openai-responses``."""

    def make(**options: Any) -> llmx.Client:
        return make_client(type="openai-responses", **options)

    return make


async def ask(client: llmx.Client, streamed: bool, **options: Any) -> llmx.Response:
    """One request for MODEL, streamed (collected) or not."""
    if streamed:
        return await client.stream(model=MODEL, prompt="x", **options).collect()
    return await client.complete(model=MODEL, prompt="x", **options)


@pytest.fixture
def rclient(responses: Callable[..., llmx.Client]) -> llmx.Client:
    return responses()


# -- requests -------------------------------------------------------------------------------


async def test_system_messages_become_instructions_and_turns_input_items(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    call = llmx.ToolCall("call_1", "get_weather", '{"city":"Paris"}')
    messages = [
        llmx.Message.system("Be brief."),
        llmx.Message.system("Answer in French."),
        llmx.Message.user("Weather in Paris?"),
        llmx.Message.assistant("Let me look.", tool_calls=[call]),
        llmx.Message.tool("call_1", '{"temp": 21}'),
        llmx.Message.user("Thanks", llmx.Image(data=PNG, media_type="image/png", detail="low")),
        llmx.Message.assistant("De rien."),
        llmx.Message.user(llmx.Image(url="https://example.com/a.png")),
    ]
    await rclient.complete(model=MODEL, messages=messages, tools=[WEATHER], max_tokens=64)
    body = sent(server)
    assert body["instructions"] == "Be brief.\n\nAnswer in French."
    assert body["input"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me look."},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Thanks"},
                {
                    "type": "input_image",
                    "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
                    "detail": "low",
                },
            ],
        },
        {"role": "assistant", "content": "De rien."},
        {
            "role": "user",
            "content": [
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"}
            ],
        },
    ]
    assert body["max_output_tokens"] == 64
    assert body["store"] is False
    assert "include" not in body  # gpt-4o-mini is no reasoning model


async def test_tools_tool_choice_and_options(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    strict = llmx.Tool("now", parameters={"type": "object", "properties": {}}, strict=True)
    await rclient.complete(
        model=MODEL,
        prompt="x",
        tools=[WEATHER, strict],
        tool_choice="get_weather",
        temperature=0.3,
        top_p=0.9,
    )
    body = sent(server)
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": WEATHER.parameters,
            "strict": False,
        },
        {
            "type": "function",
            "name": "now",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    for mode in ("auto", "none", "required"):
        await rclient.complete(model=MODEL, prompt="x", tools=[WEATHER], tool_choice=mode)
        assert sent(server)["tool_choice"] == mode


async def test_structured_output_goes_to_text_format(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    server.enqueue(Reply('{"n": 3}'))
    reply = await rclient.complete(
        model=MODEL, prompt="x", response_format=llmx.ResponseFormat("json_schema", schema, "count")
    )
    assert reply.json() == {"n": 3}
    assert sent(server)["text"] == {
        "format": {"type": "json_schema", "name": "count", "schema": schema, "strict": True}
    }
    await rclient.complete(model=MODEL, prompt="x", response_format="json")
    assert sent(server)["text"] == {"format": {"type": "json_object"}}


async def test_prompt_cache_key_is_sent_and_breakpoints_need_nothing(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    """OpenAI caches prompt prefixes by itself: ``cache=`` marks change nothing on the
    wire, ``prompt_cache_key`` is sent; cache reads come back in the usage and cost."""
    server.enqueue(Reply("ok", usage=(2000, 10), cached_tokens=1500))
    messages = [
        llmx.Message.system("Be terse. " * 50, cache=True),
        llmx.Message.user(llmx.Text("A document. " * 80, cache=True), "Summarise."),
    ]
    reply = await rclient.complete(model=MODEL, messages=messages, prompt_cache_key="doc-1")
    body = sent(server)
    assert body["prompt_cache_key"] == "doc-1"
    assert body["instructions"] == "Be terse. " * 50
    assert body["input"][0]["content"][0] == {"type": "input_text", "text": "A document. " * 80}
    assert reply.usage.cache_read_tokens == 1500
    info = rclient.model_info(MODEL)
    assert info is not None
    assert reply.cost == pytest.approx(info.cost(reply.usage))


@pytest.mark.parametrize(
    ("options", "feature"),
    [
        ({"stop": ["END"]}, "stop"),
        ({"seed": 7}, "seed"),
        ({"max_tokens": 15}, "max_tokens"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_what_the_api_lacks_is_refused_before_sending(
    rclient: llmx.Client,
    server: FakeOpenAIServer,
    options: dict[str, Any],
    feature: str,
    streamed: bool,
) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError) as info:
        await ask(rclient, streamed, **options)
    assert info.value.feature == feature
    assert info.value.provider == "fake"
    assert info.value.model == "gpt-4o-mini"
    assert "Responses API" in str(info.value)
    assert server.model_requests == []


async def test_store_and_previous_response_id_are_opt_in(
    responses: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    stateless = responses()
    first = await stateless.complete(model=MODEL, prompt="My name is Ada.")
    assert sent(server)["store"] is False
    stateful = responses(store=True)
    first = await stateful.complete(model=MODEL, prompt="My name is Ada.")
    assert sent(server)["store"] is True
    assert first.id is not None
    assert first.id.startswith("resp_")
    await stateful.complete(
        model=MODEL, prompt="What is my name?", extra={"previous_response_id": first.id}
    )
    body = sent(server)
    assert body["previous_response_id"] == first.id
    assert body["input"] == [{"role": "user", "content": "What is my name?"}]


@pytest.mark.parametrize(
    ("model", "options", "included"),
    [
        ("o4-mini", {}, True),
        ("gpt-5-mini", {}, True),
        ("gpt-4o-mini", {}, False),
        ("o4-mini", {"store": True}, False),
        ("o4-mini", {"encrypted_reasoning": "never"}, False),
        ("gpt-4o-mini", {"encrypted_reasoning": "always"}, True),
        ("my-reasoner", {"reasoning": "low"}, True),
        ("my-reasoner", {"reasoning": "none"}, False),
    ],
)
async def test_encrypted_reasoning_is_asked_for_reasoning_models_without_store(
    responses: Callable[..., llmx.Client],
    server: FakeOpenAIServer,
    model: str,
    options: dict[str, Any],
    included: bool,
) -> None:
    asked = {"reasoning": options.pop("reasoning")} if "reasoning" in options else {}
    await responses(**options).complete(model=f"fake/{model}", prompt="x", **asked)
    body = sent(server)
    assert ("include" in body) is included
    if included:
        assert body["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_reasoning_parts_go_back_before_the_assistant_turn(
    rclient: llmx.Client, server: FakeOpenAIServer, streamed: bool
) -> None:
    """A stateless tool loop with a reasoning model: the answer's reasoning item (summary,
    encrypted content, id) becomes a Reasoning part, and ``response.message`` sends it
    back as a ``reasoning`` input item before the call it preceded."""
    server.enqueue(
        Reply(
            reasoning="Oslo, so the tool.",
            tool_calls=[("call_9", "get_weather", '{"city":"Oslo"}')],
            reasoning_tokens=12,
            chunk_size=4,
        )
    )
    ask = [llmx.Message.user("Weather in Oslo?")]
    kwargs: dict[str, Any] = {"tools": [WEATHER], "reasoning": "high"}
    if streamed:
        first = await rclient.stream(model="fake/o4-mini", messages=ask, **kwargs).collect()
    else:
        first = await rclient.complete(model="fake/o4-mini", messages=ask, **kwargs)
    body = sent(server)
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    (part,) = first.reasoning
    assert part.text == "Oslo, so the tool."
    assert part.protocol == "openai-responses"
    assert part.id is not None
    assert part.id.startswith("rs_")
    assert part.data is not None
    assert first.usage.reasoning_tokens == 12
    history = [*ask, first.message, llmx.Message.tool("call_9", "sunny")]
    await rclient.complete(model="fake/o4-mini", messages=history, **kwargs)
    body = sent(server)
    assert [i.get("type", "message") for i in body["input"]] == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    assert body["input"][1] == {
        "type": "reasoning",
        "id": part.id,
        "summary": [{"type": "summary_text", "text": "Oslo, so the tool."}],
        "encrypted_content": part.data,
    }


async def test_other_protocols_reasoning_is_dropped_and_forged_state_refused(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    """Chat Completions' or another vendor's reasoning parts are never sent; encrypted
    content the API did not issue is answered with 400 (as OpenAI does)."""
    call = llmx.ToolCall("call_1", "get_weather", "{}")
    other = llmx.Reasoning("chat thought", protocol="openai")
    forged = llmx.Reasoning(data="not-from-openai", id="rs_x", protocol="openai-responses")
    history = [
        llmx.Message.user("q"),
        llmx.Message.assistant(tool_calls=[call], reasoning=[other]),
        llmx.Message.tool("call_1", "r"),
    ]
    await rclient.complete(model="fake/o4-mini", messages=history, tools=[WEATHER])
    assert b"chat thought" not in server.model_requests[-1].body
    history[1] = llmx.Message.assistant(tool_calls=[call], reasoning=[forged])
    with pytest.raises(llmx.BadRequestError, match="could not be verified"):
        await rclient.complete(model="fake/o4-mini", messages=history, tools=[WEATHER])


# -- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("finish", "expected"),
    [("stop", "stop"), ("length", "length"), ("content_filter", "content_filter")],
)
async def test_status_and_incomplete_reason_give_the_finish_reason(
    rclient: llmx.Client, server: FakeOpenAIServer, finish: str, expected: str, streamed: bool
) -> None:
    server.enqueue(Reply("Partial answ", finish_reason=finish, usage=(9, 4), cached_tokens=2))
    reply = await ask(rclient, streamed)
    assert reply.text == "Partial answ"
    assert reply.finish_reason == expected
    assert reply.usage == llmx.Usage(9, 4, cache_read_tokens=2)
    assert reply.id is not None
    assert reply.id.startswith("resp_fake")


def _raw_response(output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    obj = response_object(Reply("unused"), {"model": "gpt-4o-mini"}, 1, output=output)
    obj.update(fields)
    return obj


async def test_a_refusal_part_is_the_text_with_finish_reason_content_filter(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
    }
    obj = _raw_response([message])
    spec().check_schema("Response", obj)
    server.enqueue(RawReply(200, json.dumps(obj)))
    reply = await rclient.complete(model=MODEL, prompt="x")
    assert reply.text == "I can't help with that."
    assert reply.finish_reason == "content_filter"


def _sse(*events: dict[str, Any]) -> RawReply:
    body = "".join(
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': n})}\n\n"
        for n, e in enumerate(events)
    )
    return RawReply(200, body, content_type="text/event-stream; charset=utf-8")


async def test_a_streamed_refusal(rclient: llmx.Client, server: FakeOpenAIServer) -> None:
    ids = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    server.enqueue(
        _sse(
            {"type": "response.refusal.delta", **ids, "delta": "I can't "},
            {"type": "response.refusal.delta", **ids, "delta": "help."},
            {"type": "response.completed", "response": _raw_response([], status="completed")},
        )
    )
    reply = await rclient.stream(model=MODEL, prompt="x").collect()
    assert reply.text == "I can't help."
    assert reply.finish_reason == "content_filter"


async def test_function_calls_whole_and_streamed(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    calls = [
        ("call_a", "get_weather", '{"city": "Paris"}'),
        ("call_b", "get_weather", '{"city": "Rome"}'),
    ]
    server.enqueue(Reply("Checking.", tool_calls=calls, chunk_size=4))
    whole = await rclient.complete(model=MODEL, prompt="x", tools=[WEATHER])
    server.enqueue(Reply("Checking.", tool_calls=calls, chunk_size=4))
    chunks = [c async for c in rclient.stream(model=MODEL, prompt="x", tools=[WEATHER])]
    assert [(c.id, c.name, c.arguments) for c in whole.tool_calls] == calls
    deltas = [c for c in chunks if isinstance(c, llmx.ToolCallDelta)]
    assert [d.index for d in deltas if d.id] == [0, 1]
    assert [d.id for d in deltas if d.id] == ["call_a", "call_b"]
    args = ["".join(d.arguments for d in deltas if d.index == i) for i in (0, 1)]
    assert args == [calls[0][2], calls[1][2]]
    assert len([d for d in deltas if d.index == 0 and d.arguments]) > 1  # arrived in pieces
    assert whole.finish_reason == "tool_calls"
    assert isinstance(chunks[-1], llmx.StreamEnd)
    assert chunks[-1].finish_reason == "tool_calls"


async def test_a_gateway_sending_whole_function_calls_only(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    """No ``output_item.added`` and no argument deltas: the finished item gives the call
    once, whether ``function_call_arguments.done`` comes after it (adding nothing) or
    before it (nothing to attach it to yet)."""
    item = {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Oslo"}',
    }
    server.enqueue(
        _sse(
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {
                "type": "response.function_call_arguments.done",
                "item_id": "fc_1",
                "output_index": 0,
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
            },
            {"type": "response.completed", "response": _raw_response([item])},
        )
    )
    reply = await rclient.stream(model=MODEL, prompt="x", tools=[WEATHER]).collect()
    assert reply.tool_calls == (llmx.ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),)
    assert reply.finish_reason == "tool_calls"
    server.enqueue(
        _sse(
            {
                "type": "response.function_call_arguments.done",
                "item_id": "fc_1",
                "output_index": 0,
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
            },
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": _raw_response([item])},
        )
    )
    again = await rclient.stream(model=MODEL, prompt="x", tools=[WEATHER]).collect()
    assert again.tool_calls == reply.tool_calls


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("rate_limit_exceeded", llmx.RateLimitError),
        ("server_error", llmx.ServerError),
        ("invalid_prompt", llmx.BadRequestError),
    ],
)
async def test_a_failed_response_is_a_typed_error(
    rclient: llmx.Client,
    server: FakeOpenAIServer,
    code: str,
    error: type[llmx.ProviderError],
    streamed: bool,
) -> None:
    failed = _raw_response(
        [], status="failed", error={"code": code, "message": f"it failed: {code}"}
    )
    del failed["usage"]
    spec().check_schema("Response", failed)
    if streamed:
        server.enqueue(
            _sse(
                {"type": "response.created", "response": {**failed, "status": "in_progress"}},
                {"type": "response.failed", "response": failed},
            )
        )
    else:
        server.enqueue(RawReply(200, json.dumps(failed)))
    with pytest.raises(error) as info:
        await ask(rclient, streamed)
    assert info.value.provider == "fake"
    assert f"it failed: {code}" in str(info.value)


async def test_an_error_event_mid_stream_is_a_typed_error(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(MidStreamError(after_events=6))  # created ... two text deltas
    chunks: list[llmx.types.StreamChunk] = []

    async def read() -> None:
        async for chunk in rclient.stream(model=MODEL, prompt="x"):
            chunks.append(chunk)  # noqa: PERF401 - keep what arrived before the error

    with pytest.raises(llmx.ServerError) as info:
        await read()
    assert info.value.provider == "fake"
    assert "The server had an error" in str(info.value)
    assert chunks
    assert all(isinstance(c, llmx.TextDelta) for c in chunks)
    server.enqueue(
        MidStreamError(after_events=2, error={"code": "rate_limit_exceeded", "message": "slow"})
    )
    with pytest.raises(llmx.RateLimitError):
        await rclient.stream(model=MODEL, prompt="x").collect()


async def test_a_stream_without_its_final_event_ended_early(
    rclient: llmx.Client, server: FakeOpenAIServer
) -> None:
    server.enqueue(Reply("never finished", end_after=6))
    with pytest.raises(llmx.ProviderConnectionError, match=r"response\.completed"):
        await rclient.stream(model=MODEL, prompt="x").collect()


async def test_http_errors_are_typed(rclient: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(server.error_for("context_length"), server.error_for("authentication"))
    with pytest.raises(llmx.ContextWindowExceededError):
        await rclient.complete(model=MODEL, prompt="x")
    with pytest.raises(llmx.AuthenticationError):
        await rclient.stream(model=MODEL, prompt="x").collect()


# -- the fake's wire format -------------------------------------------------------------------


def test_the_fake_answers_in_the_documented_shapes() -> None:
    """The ``response`` object and every stream event match OpenAI's schemas (named SSE
    events whose ``type`` is the event name, sequence numbers in order)."""
    validator = spec()
    body = {"model": "o4-mini", "input": "x", "include": ["reasoning.encrypted_content"]}
    reply = Reply(
        "Hello there", tool_calls=[("call_1", "f", '{"a": 1}')], reasoning_tokens=3, chunk_size=4
    )
    validator.check_schema("Response", response_object(reply, body, 1))
    events = response_events(reply, body, 1)
    for n, event in enumerate(events):
        assert event.name == event.data["type"]
        assert event.data["sequence_number"] == n
        validator.check_schema("ResponseStreamEvent", event.data)
    kinds = [e.name for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_item.added") == 3  # reasoning, message, call
    for finish, status in (("length", "incomplete"), ("content_filter", "incomplete")):
        obj = response_object(Reply("x", finish_reason=finish), body, 2)
        validator.check_schema("Response", obj)
        assert obj["status"] == status


# -- property: any conversation maps onto valid input items ---------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
_call = st.builds(
    llmx.ToolCall,
    st.from_regex(r"call_[a-z0-9]{1,6}", fullmatch=True),
    st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True),
    st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), st.integers(), max_size=2).map(
        json.dumps
    ),
)
_turn = st.one_of(
    _text.map(llmx.Message.user),
    st.tuples(_text, _text).map(lambda t: llmx.Message.user(t[0], t[1])),
    st.tuples(st.one_of(st.just(""), _text), st.lists(_call, max_size=2)).map(
        lambda t: llmx.Message.assistant(t[0], tool_calls=t[1])
    ),
    st.tuples(st.from_regex(r"call_[a-z0-9]{1,6}", fullmatch=True), _text).map(
        lambda t: llmx.Message.tool(t[0], t[1])
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(system=st.none() | _text, turns=st.lists(_turn, min_size=1, max_size=6))
def test_any_conversation_gives_valid_input_items_that_read_back(
    system: str | None, turns: list[llmx.Message]
) -> None:
    from llmx_openai._responses_wire import build_body

    messages = ([llmx.Message.system(system)] if system else []) + turns
    request = llmx.Request("gpt-4o-mini", messages)
    body = build_body(request, provider="p", stream=False, store=False, include_reasoning=False)
    spec().check("/responses", "post", body)
    view = describe_responses_body(body)
    assert view.system == system
    expected: list[tuple[str, Any]] = []
    for m in turns:
        for p in m.content:
            if isinstance(p, llmx.Text) and p.text:
                expected.append(("text", p.text))
            elif isinstance(p, llmx.ToolCall):
                expected.append(("tool_call", (p.id, p.name, json.loads(p.arguments))))
            elif isinstance(p, llmx.ToolResult):
                expected.append(("tool_result", (p.tool_call_id, p.content)))
    got: list[tuple[str, Any]] = []
    for turn in view.turns:
        for vp in turn.parts:
            if vp.kind == "text":
                got.append(("text", vp.text))
            elif vp.kind == "tool_call":
                got.append(("tool_call", (vp.id, vp.name, vp.arguments)))
            elif vp.kind == "tool_result":
                got.append(("tool_result", (vp.id, vp.text)))
    # An assistant turn's text parts are joined into one input message.
    assert "".join(str(v) for k, v in got if k != "text") == "".join(
        str(v) for k, v in expected if k != "text"
    )
    assert "".join(v for k, v in got if k == "text") == "".join(
        v for k, v in expected if k == "text"
    )


# -- the pipeline: fallback and cache ------------------------------------------------------------


async def test_fallback_between_the_responses_and_chat_completions_providers(
    server: FakeOpenAIServer,
) -> None:
    """One alias over both protocols: a failing Responses candidate falls back to Chat
    Completions mid-conversation (tool call and result in the history), and the other
    way round; each request goes to its own endpoint in its own format."""
    config = {
        "providers": {
            "resp": {
                "type": "openai-responses",
                "base_url": server.base_url,
                "api_key": KEY,
                "retry": {"attempts": 1},
            },
            "chat": {
                "type": "openai",
                "base_url": server.base_url,
                "api_key": KEY,
                "retry": {"attempts": 1},
            },
        },
        "aliases": {
            "r_then_c": {"candidates": ["resp/gpt-4o-mini", "chat/gpt-4o-mini"]},
            "c_then_r": {"candidates": ["chat/gpt-4o-mini", "resp/gpt-4o-mini"]},
        },
    }
    call = llmx.ToolCall("call_1", "get_weather", '{"city":"Paris"}')
    history = [
        llmx.Message.system("Be brief."),
        llmx.Message.user("Weather in Paris?"),
        llmx.Message.assistant(tool_calls=[call]),
        llmx.Message.tool("call_1", "sunny"),
    ]
    async with llmx.Client(config) as client:
        for alias, first, second in (
            ("r_then_c", "/v1/responses", "/v1/chat/completions"),
            ("c_then_r", "/v1/chat/completions", "/v1/responses"),
        ):
            for streamed in (False, True):
                server.clear()
                before = len(server.model_requests)
                server.enqueue(server.error_for("unavailable"), Reply("It is sunny."))
                if streamed:
                    reply = await client.stream(
                        model=alias, messages=history, tools=[WEATHER]
                    ).collect()
                else:
                    reply = await client.complete(model=alias, messages=history, tools=[WEATHER])
                assert reply.text == "It is sunny."
                assert [a.error_type is None for a in reply.attempts] == [False, True]
                paths = [r.path for r in server.model_requests[before:]]
                assert paths == [first, second]
                for recorded in server.model_requests[before:]:
                    view = server.describe(recorded)
                    assert view.system == "Be brief."
                    assert [p.kind for p in view.parts("tool_result")] == ["tool_result"]
                    assert view.parts("tool_call")[0].id == "call_1"
                    if recorded.path == "/v1/responses":
                        spec().check("/responses", "post", recorded.json)
                    else:
                        spec().check("/chat/completions", "post", recorded.json)


async def test_the_response_cache_keys_on_extra(server: FakeOpenAIServer, tmp_path: Any) -> None:
    """Two requests differing only in ``previous_response_id`` are two cache entries."""
    config = {
        "providers": {
            "fake": {
                "type": "openai-responses",
                "base_url": server.base_url,
                "api_key": KEY,
                "store": True,
            }
        },
        "cache": {"backend": "memory"},
    }
    async with llmx.Client(config) as client:
        server.enqueue(Reply("one"), Reply("two"))
        a = await client.complete(model=MODEL, prompt="x", extra={"previous_response_id": "resp_a"})
        b = await client.complete(model=MODEL, prompt="x", extra={"previous_response_id": "resp_b"})
        again = await client.complete(
            model=MODEL, prompt="x", extra={"previous_response_id": "resp_a"}
        )
    assert (a.text, b.text, again.text) == ("one", "two", "one")
    assert again.cached
    assert len(server.model_requests) == 2

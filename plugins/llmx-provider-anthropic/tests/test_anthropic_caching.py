"""Prompt caching on Anthropic: ``cache=`` breakpoints become ``cache_control`` on the
right blocks (validated against Anthropic's OpenAPI document), a fifth breakpoint or a
one-hour one after a five-minute one is refused before sending, the usage's cache reads
and writes (split by TTL) arrive whole and streamed, and the cost follows genai-prices'
figures, long-context tiers and the config's overrides, checked against hand-computed
numbers. Real provider, real HTTP, the fake server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmx_anthropic._models import MODELS
from llmx_anthropic._wire import build_body, parse_usage
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_anthropic.testing._server import count_breakpoints

import llmx
from llmx.testing import Reply
from llmx.testing.openapi import vendor_validator

MODEL = "claude-sonnet-4-5"
REF = f"fake/{MODEL}"
LONG = "A long, stable document. " * 50


def _sent(server: FakeAnthropicServer, index: int = -1) -> dict[str, Any]:
    body = server.model_requests[index].json
    vendor_validator("anthropic", "official").check("/v1/messages", "post", body)
    assert isinstance(body, dict)
    return body


async def test_breakpoints_become_cache_control_on_their_blocks(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    tool = llmx.Tool("lookup", "Look a word up.", cache=llmx.CacheControl(ttl="1h"))
    messages = [
        llmx.Message.system("You answer from the document.", cache=llmx.CacheControl(ttl="1h")),
        llmx.Message.user(llmx.Text(LONG, cache=True), "What is it about?"),
        llmx.Message.assistant("Stability."),
        llmx.Message.user("Say more.", cache=True),
    ]
    await client.complete(model=REF, messages=messages, tools=[tool])
    body = _sent(server)

    assert body["tools"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["system"] == [
        {
            "type": "text",
            "text": "You answer from the document.",
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    first, _, last = body["messages"]
    assert first["content"] == [
        {"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "What is it about?"},
    ]
    # one text block with a breakpoint stays a block (a plain string has no cache_control)
    assert last["content"] == [
        {"type": "text", "text": "Say more.", "cache_control": {"type": "ephemeral"}}
    ]


async def test_a_message_breakpoint_marks_its_last_block(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    call = llmx.ToolCall("toolu_1", "lookup", '{"word": "x"}')
    messages = [
        llmx.Message.user("Look x up."),
        llmx.Message.assistant(tool_calls=[call]),
        llmx.Message("tool", [llmx.ToolResult("toolu_1", "x is a letter")], cache=True),
    ]
    await client.complete(model=REF, messages=messages, tools=[llmx.Tool("lookup")])
    result = _sent(server)["messages"][-1]["content"][-1]
    assert result["type"] == "tool_result"
    assert result["cache_control"] == {"type": "ephemeral"}


async def test_no_breakpoint_sends_the_same_body_as_before(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    await client.complete(model=REF, system="Be brief.", prompt="Hi")
    body = _sent(server)
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert "cache_control" not in json.dumps(body)


async def test_a_fifth_breakpoint_is_refused_before_sending(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    parts = [llmx.Text(f"part {i}", cache=True) for i in range(5)]
    with pytest.raises(llmx.UnsupportedFeatureError, match="at most 4") as caught:
        await client.complete(model=REF, messages=[llmx.Message.user(*parts)])
    assert caught.value.feature == "prompt_caching"
    assert not server.model_requests
    # four go through
    await client.complete(model=REF, messages=[llmx.Message.user(*parts[:4])])
    assert len(server.model_requests) == 1


async def test_the_fake_refuses_a_fifth_breakpoint_as_anthropic_does(
    server: FakeAnthropicServer, http: aiohttp.ClientSession
) -> None:
    blocks = [
        {"type": "text", "text": f"p{i}", "cache_control": {"type": "ephemeral"}} for i in range(5)
    ]
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": blocks}]}
    headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
    async with http.post(f"{server.url}/v1/messages", json=body, headers=headers) as resp:
        assert resp.status == 400
        assert "A maximum of 4 blocks with cache_control" in (await resp.json())["error"]["message"]


async def test_a_one_hour_breakpoint_after_a_five_minute_one_is_refused(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    messages = [
        llmx.Message.system("sys", cache=True),
        llmx.Message.user("doc", cache=llmx.CacheControl(ttl="1h")),
    ]
    with pytest.raises(llmx.UnsupportedFeatureError, match="longer TTL first"):
        await client.complete(model=REF, messages=messages)
    assert not server.model_requests


@pytest.mark.parametrize("streamed", [False, True])
async def test_cache_reads_and_writes_by_ttl_are_counted_and_priced(
    client: llmx.Client, server: FakeAnthropicServer, streamed: bool
) -> None:
    server.enqueue(
        Reply(
            "ok",
            usage=(2000, 10),
            cached_tokens=1200,
            cache_write_tokens=600,
            cache_write_1h_tokens=200,
        )
    )
    if streamed:
        answer = await client.stream(model=REF, prompt="x").collect()
    else:
        answer = await client.complete(model=REF, prompt="x")

    assert answer.usage == llmx.Usage(
        2000, 10, cache_read_tokens=1200, cache_write_tokens=600, cache_write_1h_tokens=200
    )
    # claude-sonnet-4-5 (genai-prices): $3 input, $0.30 cache read, $3.75 5-minute write,
    # $6 1-hour write, $15 output per million tokens. 2000 prompt tokens = 200 plain +
    # 1200 read + 400 written for 5 minutes + 200 written for an hour.
    expected = (200 * 3 + 1200 * 0.30 + 400 * 3.75 + 200 * 6 + 10 * 15) / 1_000_000
    assert expected == pytest.approx(0.00381)
    assert answer.cost == pytest.approx(expected)


async def test_a_prompt_above_200k_tokens_is_priced_at_the_long_context_tier(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    server.enqueue(Reply("ok", usage=(300_000, 1000), cached_tokens=100_000))
    answer = await client.complete(model=REF, prompt="x")
    # above 200K prompt tokens every token is priced at the tier: $6 input, $0.60 cache
    # read, $22.50 output
    expected = (200_000 * 6 + 100_000 * 0.60 + 1000 * 22.5) / 1_000_000
    assert answer.cost == pytest.approx(expected) == pytest.approx(1.2825)


async def test_config_overrides_a_models_prices(
    server: FakeAnthropicServer, make_config: Callable[..., dict[str, Any]]
) -> None:
    config = make_config(
        model_info={MODEL: {"input_price": 1.0, "cache_write_1h_price": 2.5}},
    )
    server.enqueue(Reply("ok", usage=(1000, 0), cache_write_tokens=500, cache_write_1h_tokens=500))
    async with llmx.Client(config) as client:
        info = client.model_info(REF)
        answer = await client.complete(model=REF, prompt="x")
    assert info is not None
    assert info.input_price == 1.0
    assert info.output_price == MODELS[MODEL].output_price  # the rest is kept
    assert info.source == f"{MODELS[MODEL].source} + config"
    assert answer.cost == pytest.approx((500 * 1.0 + 500 * 2.5) / 1_000_000)


# -- properties --------------------------------------------------------------------------------

_tokens = st.integers(0, 10**9)


@given(_tokens, _tokens, _tokens, _tokens, _tokens, _tokens)
def test_any_usage_is_normalised_with_the_cache_in_the_prompt(
    plain: int, read: int, five: int, hour: int, output: int, thinking: int
) -> None:
    usage = {
        "input_tokens": plain,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": five + hour,
        "cache_creation": {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour},
        "output_tokens": output,
        "output_tokens_details": {"thinking_tokens": thinking},
    }
    assert parse_usage(usage, "p", "m") == llmx.Usage(
        plain + read + five + hour,
        output,
        cache_read_tokens=read,
        cache_write_tokens=five + hour,
        cache_write_1h_tokens=hour,
        reasoning_tokens=thinking,
    )


_marks = st.none() | st.just(True) | st.just(llmx.CacheControl(ttl="1h"))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["user", "assistant"]), st.lists(_marks, min_size=1, max_size=3), _marks
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(_marks, max_size=2),
    _marks,
)
def test_every_breakpoint_reaches_the_wire_or_the_request_is_refused(
    turns: list[tuple[str, list[Any], Any]], tool_marks: list[Any], system_mark: Any
) -> None:
    messages = [llmx.Message.system("sys", cache=system_mark)]
    for role, part_marks, message_mark in turns:
        parts = [llmx.Text(f"t{i}", cache=m) for i, m in enumerate(part_marks)]
        messages.append(llmx.Message(role, parts, cache=message_mark))  # type: ignore[arg-type]
    tools = [llmx.Tool(f"f{i}", cache=m) for i, m in enumerate(tool_marks)]
    request = llmx.Request(MODEL, messages, tools=tools)
    try:
        body = build_body(request, provider="p", max_tokens=10, stream=False, fixed_sampling=False)
    except llmx.UnsupportedFeatureError:
        # refused only for a reason: more than four, or a 1h one after a 5m one
        marks = [m for m in (*tool_marks, system_mark) if m is not None]
        for _, part_marks, message_mark in turns:
            last = part_marks[-1]
            marks += [m for m in part_marks[:-1] if m is not None]
            marks += [message_mark or last] if (message_mark or last) is not None else []
        ttls = ["1h" if isinstance(m, llmx.CacheControl) and m.ttl == "1h" else "5m" for m in marks]
        assert len(ttls) > 4 or ("5m" in ttls and "1h" in ttls[ttls.index("5m") :])
        return
    vendor_validator("anthropic", "official").check("/v1/messages", "post", body)
    sent = count_breakpoints(body)
    assert 0 < sent <= 4 or request.cache_breakpoints() == 0
    # a message mark on a text part that is marked itself lands on the same block
    assert sent <= request.cache_breakpoints()

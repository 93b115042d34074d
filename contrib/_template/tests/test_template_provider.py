"""The Template provider's own tests, beyond the conformance suite: its configuration,
its wire format and its model list, through ``llmx.Client`` against the fake API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from llmx_provider_template.testing import FakeTemplateServer

import llmx
from llmx.testing import Reply

KEY = "tk-test-key"


@pytest.fixture
async def api() -> AsyncIterator[FakeTemplateServer]:
    """A fake Template API on 127.0.0.1 requiring ``KEY``."""
    async with FakeTemplateServer(api_key=KEY) as server:
        yield server


def config(api: FakeTemplateServer, **options: Any) -> dict[str, Any]:
    """A config with one ``template`` instance named ``t`` pointing at the fake API."""
    table = {"type": "template", "base_url": api.base_url, "api_key": KEY, **options}
    return {"providers": {"t": table}}


async def test_complete_through_the_client(api: FakeTemplateServer) -> None:
    api.enqueue(Reply("Bonjour", usage=(12, 3)))

    async with llmx.Client(config(api)) as client:
        reply = await client.complete(
            model="t/tmpl-small", system="Answer in French.", prompt="Hello", max_tokens=20
        )

    assert (reply.text, reply.provider, reply.model, reply.finish_reason) == (
        "Bonjour",
        "t",
        "tmpl-small",
        "stop",
    )
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (12, 3)
    assert reply.cost == pytest.approx((12 * 0.5 + 3 * 1.5) / 1_000_000)
    sent = api.model_requests[0]
    assert sent.json == {
        "model": "tmpl-small",
        "system": "Answer in French.",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 20,
        "stream": False,
    }
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_a_stream_arrives_as_ndjson_deltas(api: FakeTemplateServer) -> None:
    api.enqueue(Reply("one two three", chunk_size=4))

    async with (
        llmx.Client(config(api)) as client,
        client.stream(model="t/tmpl-small", prompt="count") as stream,
    ):
        pieces = [c.text async for c in stream if isinstance(c, llmx.TextDelta)]

    assert pieces == ["one ", "two ", "thre", "e"]
    assert stream.response is not None
    assert stream.response.text == "one two three"
    assert api.model_requests[0].headers["accept"] == "application/x-ndjson"


async def test_the_key_comes_from_the_environment_variable_the_settings_name(
    api: FakeTemplateServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_KEY", KEY)
    cfg = config(api, api_key_env="OTHER_KEY")
    del cfg["providers"]["t"]["api_key"]

    async with llmx.Client(cfg) as client:
        reply = await client.complete(model="t/tmpl-small", prompt="hi")

    assert reply.text == "hi"


async def test_a_missing_key_is_a_config_error_naming_the_variable(
    api: FakeTemplateServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEMPLATE_API_KEY", raising=False)
    cfg = config(api)
    del cfg["providers"]["t"]["api_key"]

    async with llmx.Client(cfg) as client:
        with pytest.raises(llmx.ConfigError, match="TEMPLATE_API_KEY"):
            await client.complete(model="t/tmpl-small", prompt="hi")

    assert api.requests == []


async def test_list_models_follows_every_page(api: FakeTemplateServer) -> None:
    async with llmx.Client(config(api)) as client:
        models = await client.list_models("t")

    assert [m.id for m in models] == ["tmpl-small", "tmpl-large"]
    assert models[0] == llmx.Client(config(api)).model_info("t/tmpl-small")
    assert [r.query.get("cursor") for r in api.requests] == [None, "1"]


def test_model_info_needs_no_network() -> None:
    client = llmx.Client({"providers": {"t": {"type": "template"}}})

    info = client.model_info("t/tmpl-small")
    assert info is not None
    assert info.context_window == 32_000
    assert client.model_info("t/unknown") is None


def test_a_misspelled_setting_is_a_config_error() -> None:
    with pytest.raises(
        llmx.ConfigError, match=r"extra fields found \(api_key_evn\) @ \$\.providers\.t"
    ):
        llmx.Client({"providers": {"t": {"type": "template", "api_key_evn": "X"}}})


def test_discovered_through_its_entry_point() -> None:
    plugins = {p.name: p for p in llmx.Registry().plugins()}

    assert plugins["template"].distribution == "llmx-provider-template"

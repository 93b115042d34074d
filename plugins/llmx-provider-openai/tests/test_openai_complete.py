"""Non-streamed completions: the request the provider sends and the Response it builds.

Wire shapes follow OpenAI's API reference for ``POST /v1/chat/completions`` (request
body fields, ``Authorization: Bearer``, ``OpenAI-Organization``/``OpenAI-Project``
headers) and the ``chat.completion`` object the fake server returns.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import llmx
from llmx.testing import Reply
from llmx_openai.testing import FakeOpenAIServer

MODEL = "fake/gpt-4o-mini"


async def test_complete_returns_the_answer(client: llmx.Client, server: FakeOpenAIServer) -> None:
    """The default fake reply echoes the prompt; id, model and usage come from the body."""
    reply = await client.complete(model=MODEL, prompt="Hello there")
    assert reply.text == "Hello there"
    assert reply.provider == "fake"
    assert reply.model == "gpt-4o-mini"
    assert reply.finish_reason == "stop"
    assert reply.id is not None
    assert reply.id.startswith("chatcmpl-")
    assert reply.usage.input_tokens > 0
    assert reply.usage.output_tokens > 0
    assert reply.raw is None
    assert server.request_count == 1


async def test_minimal_body_has_no_null_fields(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    await client.complete(model=MODEL, prompt="Hi")
    sent = server.requests[-1]
    assert sent.json == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"


async def test_all_options_are_sent(client: llmx.Client, server: FakeOpenAIServer) -> None:
    await client.complete(
        model=MODEL,
        system="Be brief.",
        messages=[llmx.Message.user("Hi"), llmx.Message.assistant("Hello!")],
        prompt="Again",
        max_tokens=50,
        temperature=0.0,
        top_p=0.5,
        stop=["\n\n", "END"],
        seed=7,
        extra={"user": "u-1", "temperature": 0.3},
    )
    assert server.requests[-1].json == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Again"},
        ],
        "max_tokens": 50,  # a non-OpenAI base URL: the widely supported field
        "temperature": 0.3,  # extra is merged last
        "top_p": 0.5,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "user": "u-1",
    }


async def test_max_tokens_field_setting(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(max_tokens_field="max_completion_tokens")
    await client.complete(model=MODEL, prompt="Hi", max_tokens=5)
    assert server.requests[-1].json["max_completion_tokens"] == 5
    assert "max_tokens" not in server.requests[-1].json


async def test_organization_project_and_custom_headers(
    make_client: Callable[..., llmx.Client],
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACE_TOKEN", "trace-123")
    client = make_client(
        organization="org-abc",
        project="proj_xyz",
        headers={"X-Trace": {"env": "TRACE_TOKEN"}, "X-Team": "blue"},
    )
    await client.complete(model=MODEL, prompt="Hi")
    headers = server.requests[-1].headers
    assert headers["openai-organization"] == "org-abc"
    assert headers["openai-project"] == "proj_xyz"
    assert headers["x-trace"] == "trace-123"
    assert headers["x-team"] == "blue"


async def test_multi_part_user_text_and_tool_message_without_result(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    await client.complete(model=MODEL, messages=[llmx.Message("user", ["one", "two"])])
    assert server.requests[-1].json["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        }
    ]
    with pytest.raises(llmx.BadRequestError, match=r"Message\.tool"):
        await client.complete(model=MODEL, messages=[llmx.Message("tool", "no call id")])
    assert server.request_count == 1  # refused before sending


async def test_include_raw_keeps_the_payload(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("raw please", id="chatcmpl-raw"))
    reply = await client.complete(llmx.Request(MODEL, "x", include_raw=True))
    assert reply.raw["id"] == "chatcmpl-raw"
    assert reply.raw["object"] == "chat.completion"


async def test_model_mapping(
    make_client: Callable[..., llmx.Client], server: FakeOpenAIServer
) -> None:
    client = make_client(models={"small": "gpt-4o-mini"})
    reply = await client.complete(model="fake/small", prompt="Hi")
    assert server.requests[-1].json["model"] == "gpt-4o-mini"
    assert reply.model == "gpt-4o-mini"


async def test_local_server_needs_no_key() -> None:
    """OpenAI-compatible local servers (Ollama, vLLM...) run without a key: none is sent."""
    async with FakeOpenAIServer(api_key=None) as server:
        config = {"providers": {"local": {"type": "openai", "base_url": server.base_url}}}
        async with llmx.Client(config) as client:
            assert (await client.complete(model="local/llama3", prompt="Hi")).text == "Hi"
    assert "authorization" not in server.requests[-1].headers


async def test_base_url_and_key_from_the_environment(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    async with llmx.Client({}) as client:  # an implicit instance named after the type
        reply = await client.complete(model="openai/gpt-4o-mini", prompt="from env")
    assert reply.text == "from env"
    assert reply.provider == "openai"


async def test_api_key_env_setting(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_GATEWAY_KEY", "test-key")
    config = {
        "providers": {
            "gw": {"type": "openai", "base_url": server.base_url, "api_key_env": "MY_GATEWAY_KEY"}
        }
    }
    async with llmx.Client(config) as client:
        assert (await client.complete(model="gw/gpt-4o", prompt="ok")).text == "ok"


async def test_missing_key_for_api_openai_com_is_a_config_error() -> None:
    async with llmx.Client({}) as client:
        with pytest.raises(llmx.ConfigError, match=r"set OPENAI_API_KEY .*\[providers\.openai\]"):
            await client.complete(model="openai/gpt-4o-mini", prompt="Hi")


async def test_unset_api_key_variable_is_a_config_error(server: FakeOpenAIServer) -> None:
    config = {
        "providers": {
            "fake": {"type": "openai", "base_url": server.base_url, "api_key": {"env": "NOPE_KEY"}}
        }
    }
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.ConfigError, match="NOPE_KEY"):
            await client.complete(model=MODEL, prompt="Hi")
    assert server.request_count == 0


def test_unknown_setting_is_rejected_with_its_path() -> None:
    with pytest.raises(llmx.ConfigError, match=r"organisation.*\$\.providers\.main"):
        llmx.Client({"providers": {"main": {"type": "openai", "organisation": "typo"}}})


async def test_bad_base_url_is_a_config_error() -> None:
    config = {
        "providers": {"main": {"type": "openai", "base_url": "localhost:8000", "api_key": "k"}}
    }
    async with llmx.Client(config) as client:
        with pytest.raises(llmx.ConfigError, match="not an http"):
            await client.complete(model="main/m", prompt="x")


def test_registered_through_the_entry_point() -> None:
    client = llmx.Client({"providers": {"main": {"type": "openai", "api_key": "k"}}})
    registration = client.registry.get("provider", "openai")
    assert registration.distribution == "llmx-provider-openai"
    assert registration.name == "openai"
    import llmx_openai

    assert registration.factory is llmx_openai.OpenAIProvider
    assert registration.settings is llmx_openai.OpenAISettings

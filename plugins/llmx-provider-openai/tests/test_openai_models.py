"""Models: the static table, ``GET /models`` (OpenAI's ``{"object": "list", "data":
[...]}``), usage mapping including ``prompt_tokens_details.cached_tokens`` and
``completion_tokens_details.reasoning_tokens``, and the cost computed from the table.
"""

from __future__ import annotations

import attrs
import pytest
from aiohttp import web

import llmx
from llmx.testing import Handler, RecordedRequest, Reply
from llmx_openai import OpenAIProvider
from llmx_openai._models import MODELS
from llmx_openai.testing import FakeOpenAIServer

MODEL = "fake/gpt-4o-mini"


def test_model_table_is_consistent() -> None:
    assert {
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
    } <= set(MODELS)
    for model_id, info in MODELS.items():
        assert info.id == model_id
        assert info.context_window is not None
        assert info.max_output_tokens is not None
        assert 0 < info.max_output_tokens <= info.context_window
        assert info.input_price is not None
        assert info.output_price is not None
        assert 0 < info.input_price <= info.output_price
        if info.supports(llmx.Capability.AUDIO):  # the audio models: no prompt caching
            assert info.cache_read_price is None
            assert not info.supports(llmx.Capability.PROMPT_CACHING)
            continue
        assert info.cache_read_price is not None
        assert 0 < info.cache_read_price < info.input_price
        assert info.supports(llmx.Capability.STREAMING)
        assert info.supports(llmx.Capability.TOOLS)


def test_model_info_is_static_and_knows_snapshots() -> None:
    assert OpenAIProvider.model_info("gpt-4o") is MODELS["gpt-4o"]
    snapshot = OpenAIProvider.model_info("gpt-4o-mini-2024-07-18")
    assert snapshot is not None
    assert snapshot.id == "gpt-4o-mini-2024-07-18"
    assert snapshot.input_price == MODELS["gpt-4o-mini"].input_price
    assert OpenAIProvider.model_info("llama3") is None
    assert OpenAIProvider.model_info("gpt-4o-2024") is None
    assert not MODELS["o3-mini"].supports(llmx.Capability.VISION)


async def test_client_model_info_before_any_request(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    info = client.model_info("fake/gpt-4.1")
    assert info is not None
    assert info.context_window == 1_047_576
    assert server.request_count == 0


async def test_usage_mapping_and_cost(client: llmx.Client, server: FakeOpenAIServer) -> None:
    reply = Reply("done", usage=(1000, 200), cached_tokens=600, reasoning_tokens=50)
    server.enqueue(reply, reply)
    whole = await client.complete(model=MODEL, prompt="x")
    streamed = await client.stream(model=MODEL, prompt="x").collect()
    expected_usage = llmx.Usage(1000, 200, cache_read_tokens=600, reasoning_tokens=50)
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    expected_cost = (400 * 0.15 + 600 * 0.075 + 200 * 0.60) / 1_000_000
    for response in (whole, streamed):
        assert response.usage == expected_usage
        assert response.cost == pytest.approx(expected_cost)


async def test_unknown_model_has_no_cost(client: llmx.Client) -> None:
    reply = await client.complete(model="fake/my-finetune", prompt="x")
    assert reply.cost is None
    assert reply.usage.total_tokens > 0


async def test_capabilities_are_checked_before_sending(
    client: llmx.Client, server: FakeOpenAIServer
) -> None:
    image = llmx.Image(url="https://example.com/a.png")
    async with llmx.Client(
        {"providers": {"fake": {"type": "openai", "base_url": server.base_url, "api_key": "k"}}}
    ) as c:
        with pytest.raises(llmx.UnsupportedFeatureError):
            await c.complete(model="fake/o3-mini", messages=[llmx.Message.user("what?", image)])
    assert server.request_count == 0
    await client.complete(model="fake/gpt-4o", messages=[llmx.Message.user("what?", image)])
    assert server.request_count == 1


async def test_list_models(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.models = ["gpt-4o", "my-finetune", "gpt-4o-mini-2024-07-18"]
    models = await client.list_models("fake")
    assert [m.id for m in models] == ["gpt-4o", "gpt-4o-mini-2024-07-18", "my-finetune"]
    assert models[0] == MODELS["gpt-4o"]
    assert models[1].input_price == MODELS["gpt-4o-mini"].input_price
    assert models[2] == llmx.ModelInfo("my-finetune")
    request = server.requests[-1]
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["authorization"] == "Bearer test-key"


async def test_list_models_errors(client: llmx.Client, server: FakeOpenAIServer) -> None:
    server.api_key = "rotated"
    with pytest.raises(llmx.AuthenticationError) as info:
        await client.list_models("fake")
    assert info.value.code == "invalid_api_key"
    assert info.value.model is None


class BrokenModelList(FakeOpenAIServer):
    """A fake whose ``GET /v1/models`` answers a body that is not a model list."""

    def route(self, method: str, path: str) -> Handler | None:
        if path == "/v1/models":
            return self._broken
        return super().route(method, path)

    async def _broken(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        return await self.json_response(request, 200, {"data": 5})


async def test_list_models_malformed() -> None:
    async with BrokenModelList() as server:
        config = {
            "providers": {
                "fake": {"type": "openai", "base_url": server.base_url, "api_key": "test-key"}
            }
        }
        async with llmx.Client(config) as client:
            with pytest.raises(llmx.MalformedResponseError, match="model list"):
                await client.list_models("fake")


def test_a_snapshot_keeps_every_fact_of_its_family() -> None:
    """Every field but the id, prices included (a field-by-field copy once dropped
    ``cache_write_price``)."""
    for model_id, info in MODELS.items():
        snapshot = OpenAIProvider.model_info(f"{model_id}-2025-01-31")
        assert snapshot is not None
        assert snapshot == info.renamed(f"{model_id}-2025-01-31")
        assert attrs.evolve(snapshot, id=model_id) == info

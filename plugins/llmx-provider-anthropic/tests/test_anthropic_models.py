"""The model table: a dated snapshot (or a legacy alias) gets every fact of its model,
prices for cache reads *and* writes included, and the cost of an answer with cache
writes is priced at the write price, through the real provider and the fake server."""

from __future__ import annotations

import attrs
import pytest
from llmx_anthropic import AnthropicProvider
from llmx_anthropic._models import MODELS
from llmx_anthropic.testing import FakeAnthropicServer

import llmx
from llmx.testing import Reply

DATED = "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize(
    ("model", "base"),
    [(DATED, "claude-sonnet-4-5"), ("claude-sonnet-4-20250514", "claude-sonnet-4-0")],
)
def test_a_dated_id_keeps_every_fact_of_its_model(model: str, base: str) -> None:
    info = AnthropicProvider.model_info(model)

    assert info is not None
    assert info.id == model
    assert info.cache_write_price == MODELS[base].cache_write_price == 3.75
    assert attrs.evolve(info, id=base) == MODELS[base]


async def test_cache_writes_of_a_dated_id_are_priced_at_the_write_price(
    client: llmx.Client, server: FakeAnthropicServer
) -> None:
    reply = Reply("done", usage=(1000, 200), cached_tokens=300, cache_write_tokens=500)
    server.enqueue(reply, reply)

    whole = await client.complete(model=f"fake/{DATED}", prompt="x")
    streamed = await client.stream(model=f"fake/{DATED}", prompt="x").collect()

    # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output per
    # million tokens; 1000 prompt tokens = 200 plain + 300 read + 500 written.
    expected = (200 * 3.00 + 300 * 0.30 + 500 * 3.75 + 200 * 15.00) / 1_000_000
    for response in (whole, streamed):
        assert response.usage.cache_write_tokens == 500
        assert response.cost == pytest.approx(expected)
        assert response.cost != pytest.approx((500 * 3.00 + 300 * 0.30 + 200 * 15.00) / 1e6)

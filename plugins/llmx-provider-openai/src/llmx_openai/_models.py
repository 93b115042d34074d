"""Static facts about OpenAI's models: limits, capabilities and prices.

Context windows and output limits are read from OpenAI's model pages
(developers.openai.com/api/docs/models/<id>). Prices (USD per million tokens: input,
output, cached input, long-context tiers such as gpt-5.4's above 272K input tokens,
batch) come from genai-prices, through ``_facts.py``, which
``scripts/update-model-facts`` generates; the figures below (standard tier, 2026-06) are
used only for a model genai-prices lacks (``ModelInfo.source`` says which). Vendors
change prices: these feed cost estimates, they are not an invoice; override them per
instance and model in the config (``[providers.NAME.model_info."MODEL"]``). Not
modelled: flex prices.
"""

from __future__ import annotations

import re

from llmx import Capability, ModelInfo
from llmx_openai._facts import FACTS, SOURCE

__all__ = ["MODELS", "lookup", "reasoning_efforts"]


def reasoning_efforts(model: str) -> tuple[str, ...]:
    """The ``reasoning_effort`` values ``model`` takes, lowest first (() for a model that
    does not reason): the o-series ``low``..``high``, GPT-5 adds ``minimal``, GPT-5.1
    and later ``none`` instead (OpenAI's reasoning guide)."""
    if re.match(r"o\d", model):
        return ("low", "medium", "high")
    match = re.match(r"gpt-5(?:\.(\d+))?", model)
    if match is None:
        return ()
    if match.group(1) and int(match.group(1)) >= 1:
        return ("none", "low", "medium", "high")
    return ("minimal", "low", "medium", "high")


_CHAT = (
    Capability.STREAMING,
    Capability.TOOLS,
    Capability.JSON_MODE,
    Capability.JSON_SCHEMA,
    Capability.SYSTEM_PROMPT,
    Capability.PROMPT_CACHING,
)
_VISION = (*_CHAT, Capability.VISION, Capability.DOCUMENTS)  # PDF input with vision
_AUDIO = (
    Capability.STREAMING,
    Capability.TOOLS,
    Capability.SYSTEM_PROMPT,
    Capability.AUDIO,
)
"""The audio models of Chat Completions (``input_audio``; no JSON schema, no images)."""


_OWN = "llmx_openai table"
"""The source of a model's prices when genai-prices lacks it (this module's own figures)."""


def _m(
    model_id: str,
    context: int,
    output: int,
    price_in: float,
    price_out: float,
    price_cached: float | None,
    *,
    vision: bool = True,
    audio: bool = False,
) -> ModelInfo:
    capabilities = _AUDIO if audio else _VISION if vision else _CHAT
    if reasoning_efforts(model_id):  # o-series and GPT-5 (Capability.REASONING)
        capabilities = (*capabilities, Capability.REASONING)
    info = ModelInfo(
        id=model_id,
        context_window=context,
        max_output_tokens=output,
        capabilities=capabilities,
        input_price=price_in,
        output_price=price_out,
        cache_read_price=price_cached,
    )
    facts = FACTS.get(model_id)
    if facts is None:
        return info.with_facts({}, source=_OWN)
    return info.with_facts(facts, source=SOURCE)


MODELS: dict[str, ModelInfo] = {
    m.id: m
    for m in (
        # GPT-4o family
        _m("gpt-4o", 128_000, 16_384, 2.50, 10.00, 1.25),
        _m("gpt-4o-mini", 128_000, 16_384, 0.15, 0.60, 0.075),
        # GPT-4.1 family (1,047,576-token context)
        _m("gpt-4.1", 1_047_576, 32_768, 2.00, 8.00, 0.50),
        _m("gpt-4.1-mini", 1_047_576, 32_768, 0.40, 1.60, 0.10),
        _m("gpt-4.1-nano", 1_047_576, 32_768, 0.10, 0.40, 0.025),
        # o-series reasoning models
        _m("o3", 200_000, 100_000, 2.00, 8.00, 0.50),
        _m("o3-mini", 200_000, 100_000, 1.10, 4.40, 0.55, vision=False),
        _m("o4-mini", 200_000, 100_000, 1.10, 4.40, 0.275),
        # GPT-5 family (400,000-token context, 128,000 output)
        _m("gpt-5", 400_000, 128_000, 1.25, 10.00, 0.125),
        _m("gpt-5-mini", 400_000, 128_000, 0.25, 2.00, 0.025),
        _m("gpt-5-nano", 400_000, 128_000, 0.05, 0.40, 0.005),
        _m("gpt-5.4", 1_050_000, 128_000, 2.50, 15.00, 0.25),
        _m("gpt-5.4-mini", 400_000, 128_000, 0.75, 4.50, 0.075),
        # audio input (Chat Completions' input_audio; text token prices)
        _m("gpt-audio", 128_000, 16_384, 2.50, 10.00, None, audio=True),
        _m("gpt-4o-audio-preview", 128_000, 16_384, 2.50, 10.00, None, audio=True),
    )
}
"""The known models by id."""

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def lookup(model: str) -> ModelInfo | None:
    """Facts about ``model``; a dated snapshot (``gpt-4o-2024-08-06``) gets its family's."""
    info = MODELS.get(model)
    if info is not None:
        return info
    base = _SNAPSHOT.sub("", model)
    if base != model:
        info = MODELS.get(base)
        if info is not None:
            return info.renamed(model)
    return None

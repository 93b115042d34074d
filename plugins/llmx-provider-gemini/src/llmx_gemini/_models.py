"""Static facts about Gemini models: limits, capabilities and prices.

Input and output limits are those ``models.list`` reports (``inputTokenLimit``,
``outputTokenLimit``). Prices (USD per million tokens: input, output, cached input,
the higher prices above 200K prompt tokens of 2.5 Pro and 3 Pro; thinking tokens are
billed as output) come from genai-prices, through ``_facts.py``, which
``scripts/update-model-facts`` generates; the figures below (the Gemini Developer API
pricing page, paid tier) are used only for a model genai-prices lacks
(``ModelInfo.source`` says which). Vendors change prices: these feed cost estimates,
they are not an invoice. Not modelled: audio input prices, cache storage per hour.
"""

from __future__ import annotations

from llmx import Capability, ModelInfo
from llmx_gemini._facts import FACTS, SOURCE

__all__ = ["MODELS", "lookup"]

_ALL = (
    Capability.STREAMING,
    Capability.TOOLS,
    Capability.VISION,
    Capability.JSON_MODE,
    Capability.JSON_SCHEMA,
    Capability.SYSTEM_PROMPT,
    Capability.PROMPT_CACHING,
    Capability.DOCUMENTS,  # PDFs inline or by fileUri (every Gemini model)
    Capability.AUDIO,
)


_OWN = "llmx_gemini table"
"""The source of a model's prices when genai-prices lacks it (this module's own figures)."""


def _m(
    model_id: str,
    context: int,
    output: int,
    price_in: float,
    price_out: float,
    cached: float | None,
) -> ModelInfo:
    thinks = not model_id.startswith("gemini-2.0")  # 2.5 and 3 think (Capability.REASONING)
    info = ModelInfo(
        id=model_id,
        context_window=context,
        max_output_tokens=output,
        capabilities=(*_ALL, Capability.REASONING) if thinks else _ALL,
        input_price=price_in,
        output_price=price_out,
        cache_read_price=cached,
    )
    facts = FACTS.get(model_id)
    if facts is None:
        return info.with_facts({}, source=_OWN)
    return info.with_facts(facts, source=SOURCE)


MODELS: dict[str, ModelInfo] = {
    m.id: m
    for m in (
        _m("gemini-3-pro-preview", 1_048_576, 65_536, 2.00, 12.00, 0.20),
        _m("gemini-3-flash-preview", 1_048_576, 65_536, 0.50, 3.00, 0.05),
        _m("gemini-2.5-pro", 1_048_576, 65_536, 1.25, 10.00, 0.125),
        _m("gemini-2.5-flash", 1_048_576, 65_536, 0.30, 2.50, 0.03),
        _m("gemini-2.5-flash-lite", 1_048_576, 65_536, 0.10, 0.40, 0.01),
        _m("gemini-2.0-flash", 1_048_576, 8_192, 0.10, 0.40, 0.025),
        _m("gemini-2.0-flash-lite", 1_048_576, 8_192, 0.075, 0.30, None),
    )
}
"""The known models by id."""


def lookup(model: str) -> ModelInfo | None:
    """Facts about ``model`` (``models/`` prefix allowed; ``-001`` style versions resolve)."""
    name = model.removeprefix("models/")
    info = MODELS.get(name)
    if info is not None:
        return info if name == model else info.renamed(model)
    base, _, suffix = name.rpartition("-")
    if suffix.isdigit() and base in MODELS:
        return MODELS[base].renamed(model)
    return None

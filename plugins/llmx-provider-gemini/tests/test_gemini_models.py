"""The model table: ``models/`` names and ``-001`` style versions get every fact of
their model, under the id asked for."""

from __future__ import annotations

import attrs
from llmx_gemini import GeminiProvider
from llmx_gemini._models import MODELS


def test_a_versioned_or_prefixed_id_keeps_every_fact_of_its_model() -> None:
    for model_id, info in MODELS.items():
        for asked in (f"{model_id}-001", f"models/{model_id}", f"models/{model_id}-002"):
            found = GeminiProvider.model_info(asked)
            assert found is not None, asked
            assert found.id == asked
            assert attrs.evolve(found, id=model_id) == info

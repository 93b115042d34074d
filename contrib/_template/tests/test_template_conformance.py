"""llmx's conformance suite against the Template provider and its fake API.

pytest collects :class:`TestConformance` and runs every test of the kit: the provider
as users get it (installed, found through its entry point) talking real HTTP to
:class:`~llmx_provider_template.testing.FakeTemplateServer` on 127.0.0.1.
"""

from __future__ import annotations

from llmx_provider_template.testing import FakeTemplateServer

from llmx.testing.conformance import Feature, ProviderConformance


class TestConformance(ProviderConformance):
    """Every optional feature but images, JSON schemas, token counting (the estimate) and
    prompt caching (refused before sending: the model infos list no ``prompt_caching``);
    no cache or reasoning tokens."""

    provider_type = "template"  # the entry point's name
    model = "tmpl-small"  # a model model_info knows
    server_class = FakeTemplateServer
    supports = Feature.ALL - {
        Feature.IMAGES,
        Feature.IMAGE_URLS,
        Feature.JSON_SCHEMA,
        Feature.TOKEN_COUNTING,
        Feature.PROMPT_CACHING,
        Feature.REASONING,
        Feature.PROVIDER_BATCH,
        Feature.DOCUMENTS,
        Feature.DOCUMENT_URLS,
        Feature.AUDIO,
    }
    usage_details = frozenset()
    hypothesis_examples = 12

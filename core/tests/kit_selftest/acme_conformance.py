"""The conformance suite against the NDJSON Acme provider and its broken variants
(run by ``core/tests/test_testing_selftest.py`` in a subprocess, with the
``llmx_kit_selftest`` distribution installed; not collected by the main test run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from llmx_kit_selftest.testing import FakeAcmeServer

from llmx.testing.conformance import Feature, ProviderConformance


class TestAcme(ProviderConformance):
    """The correct provider: everything passes. No tool-call ids, vision on another model."""

    provider_type = "acme"
    model = "acme-large"
    models: ClassVar[Mapping[str, str]] = {
        Feature.IMAGES: "acme-vision",
        Feature.EMBEDDINGS: "acme-embed",
    }
    server_class = FakeAcmeServer
    supports = (Feature.ALL | {Feature.EMBEDDINGS}) - {
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
    tool_call_ids = False
    hypothesis_examples = 6


class TestAcmeWithoutFacts(TestAcme):
    """The same API as if it had no auth, refusals or context-length errors: not applicable."""

    auth = False
    refusals = False
    context_length_errors = False
    hypothesis_examples = 2


class TestAcmeWrongError(TestAcme):
    provider_type = "acme_wrong_error"
    hypothesis_examples = 2


class TestAcmeLostRetryAfter(TestAcme):
    provider_type = "acme_lost_retry_after"
    hypothesis_examples = 2


class TestAcmeSwallowedError(TestAcme):
    provider_type = "acme_swallowed_error"
    hypothesis_examples = 2


class TestAcmeLeaky(TestAcme):
    provider_type = "acme_leaky"
    hypothesis_examples = 2


class TestAcmeReordered(TestAcme):
    provider_type = "acme_reordered"
    hypothesis_examples = 12


class TestAcmeClaimsCaching(TestAcme):
    """Says it supports prompt caching, but Acme's model facts list no ``prompt_caching``,
    so llmx refuses such requests: the kit's two prompt-caching tests catch the claim."""

    supports = TestAcme.supports | {Feature.PROMPT_CACHING}


class TestAcmeReorderedVectors(TestAcme):
    provider_type = "acme_reordered_vectors"
    hypothesis_examples = 2

"""The conformance kit's tests of request options an API may lack, a mixin of
:class:`~llmx.testing.conformance.ProviderConformance`.

Stop sequences are optional (``Feature.STOP``): a provider that supports them sends them,
streamed or not, and one whose API has none — OpenAI's Responses API, the
first first-party protocol without them — must refuse ``stop=`` with
:class:`llmx.UnsupportedFeatureError` naming the provider, the model and the feature,
before anything is sent, whether the request streams or not. A provider that dropped
them silently would answer past the point the caller wanted it to stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import llmx

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer

__all__ = ["OptionsConformance"]

STOP = "stop"
"""``Feature.STOP`` (repeated here: this module is imported by ``conformance``)."""

STREAMING = "streaming"
"""``Feature.STREAMING``."""


class OptionsConformance:
    """The tests of options an API may lack (see the module docstring)."""

    # Provided by ProviderConformance (declared for the type checker).
    if TYPE_CHECKING:
        supports: ClassVar[frozenset[str]]
        provider_type: ClassVar[str]

        def model_for(self, *features: str) -> str: ...
        def ref_for(self, *features: str) -> str: ...
        def run(self, scenario: Any, **options: Any) -> Any: ...

    @pytest.mark.parametrize("streamed", [False, True])
    def test_stop_is_sent_or_refused_before_sending(self, streamed: bool) -> None:
        """With ``Feature.STOP``, ``stop=`` reaches the API, streamed or not; without it,
        it fails with UnsupportedFeatureError naming the feature, and nothing is sent."""
        if streamed and STREAMING not in self.supports:
            pytest.skip(f"{self.provider_type} does not support streaming")

        async def ask(client: llmx.Client) -> None:
            if streamed:
                await client.stream(model=self.ref_for(STOP), prompt="x", stop=["END"]).collect()
            else:
                await client.complete(model=self.ref_for(STOP), prompt="x", stop=["END"])

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            if STOP in self.supports:
                await ask(client)
                view = server.describe(server.model_requests[-1])
                assert view.stop == ("END",)
                assert view.stream is streamed
                return
            with pytest.raises(llmx.UnsupportedFeatureError) as info:
                await ask(client)
            assert info.value.feature == STOP
            assert info.value.model == self.model_for(STOP)
            assert info.value.provider
            assert not server.model_requests, "the request was sent"

        self.run(scenario)

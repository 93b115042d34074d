"""The conformance kit's tests of documents and audio in user messages
(:attr:`~llmx.testing.conformance.Feature.DOCUMENTS`, ``DOCUMENT_URLS`` and ``AUDIO``),
mixed into :class:`~llmx.testing.conformance.ProviderConformance`.

A provider that supports a feature must put the part on the wire so the fake's
``describe()`` shows it (a :class:`~llmx.testing.ViewPart` of kind ``"document"`` or
``"audio"`` with the same bytes or URL), whole and streamed; one that does not must
refuse it with :class:`~llmx.UnsupportedFeatureError` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import pytest

import llmx

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer
    from llmx.testing._view import RequestView

T = TypeVar("T")

DOCUMENTS = "documents"
"""PDF documents given as bytes (:class:`llmx.Document` with ``data=``)."""
DOCUMENT_URLS = "document_urls"
"""Documents given by URL (:class:`llmx.Document` with ``url=``)."""
AUDIO = "audio"
"""Audio input (:class:`llmx.Audio`, wav)."""

PDF = (
    b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type /Pages /Kids [3 0 R] /Count 1>> endobj\n"
    b"3 0 obj <</Type /Page /Parent 2 0 R>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
)
"""A one-page PDF (its bytes only have to arrive intact)."""

WAV = (
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00"
    b"\x00}\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"
)
"""An empty 16 kHz mono wav file."""

PDF_URL = "https://example.com/report.pdf"


class _Kit(Protocol):
    """What these tests use of :class:`~llmx.testing.conformance.ProviderConformance`."""

    supports: ClassVar[frozenset[str]]
    provider_type: ClassVar[str]

    @property
    def ref(self) -> str: ...

    def ref_for(self, *features: str) -> str: ...

    def needs(self, *features: str) -> None: ...

    def view(self, server: FakeServer) -> RequestView: ...

    def run(
        self, scenario: Callable[[FakeServer, llmx.Client], Awaitable[T]], **options: Any
    ) -> T: ...


async def _send(
    client: llmx.Client, ref: str, message: llmx.Message, streamed: bool
) -> llmx.Response:
    if streamed:
        return await client.stream(model=ref, messages=[message]).collect()
    return await client.complete(model=ref, messages=[message])


class MediaConformance:
    """Documents and audio: on the wire where supported, refused unsent where not."""

    @pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
    def test_documents(self: _Kit, streamed: bool) -> None:
        """A PDF by bytes (and by URL, where supported) arrives with its media type."""
        self.needs(DOCUMENTS, *(["streaming"] if streamed else []))
        urls = DOCUMENT_URLS in self.supports
        features = [DOCUMENTS, DOCUMENT_URLS] if urls else [DOCUMENTS]

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            parts: list[Any] = ["Summarise these.", llmx.Document(data=PDF, title="report.pdf")]
            if urls:
                parts.append(llmx.Document(url=PDF_URL))
            reply = await _send(
                client, self.ref_for(*features), llmx.Message.user(*parts), streamed
            )
            assert reply.text
            docs = self.view(server).parts("document")
            assert len(docs) == len(parts) - 1, docs
            assert docs[0].data == PDF
            assert docs[0].media_type in (None, "application/pdf")
            if urls:
                assert docs[1].url == PDF_URL
            assert "Summarise these." in self.view(server).turns[0].text

        self.run(scenario)

    @pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
    def test_audio(self: _Kit, streamed: bool) -> None:
        """A wav recording arrives as audio with its bytes and format."""
        self.needs(AUDIO, *(["streaming"] if streamed else []))

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            message = llmx.Message.user("Transcribe this.", llmx.Audio(data=WAV, format="wav"))
            reply = await _send(client, self.ref_for(AUDIO), message, streamed)
            assert reply.text
            audio = self.view(server).parts("audio")
            assert len(audio) == 1, audio
            assert audio[0].data == WAV
            assert audio[0].media_type in ("audio/wav", "audio/x-wav")

        self.run(scenario)

    def test_media_refused_before_sending(self: _Kit) -> None:
        """Documents or audio a provider cannot take fail with UnsupportedFeatureError
        (naming the provider, the model and the feature), unsent."""
        cases: list[tuple[str, llmx.Document | llmx.Audio]] = [
            (DOCUMENTS, llmx.Document(data=PDF)),
            (AUDIO, llmx.Audio(data=WAV, format="wav")),
        ]
        if DOCUMENTS in self.supports:
            cases.append((DOCUMENT_URLS, llmx.Document(url=PDF_URL)))
        refused = [(f, part) for f, part in cases if f not in self.supports]
        if not refused:
            pytest.skip(f"{self.provider_type} supports documents, document URLs and audio")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            for feature, part in refused:
                with pytest.raises(llmx.UnsupportedFeatureError) as caught:
                    await client.complete(model=self.ref, messages=[llmx.Message.user("x", part)])
                err = caught.value
                assert err.feature in ("documents", "audio"), (feature, err.feature)
                assert err.provider, (feature, err)
                assert err.model, (feature, err)
                assert not server.model_requests, f"{feature}: the request was sent"

        self.run(scenario)

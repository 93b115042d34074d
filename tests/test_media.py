"""Documents and audio (issue 15, item 7): the value types, each vendor's wire form
(validated against the vendor's published schema), refusals before sending, fallback
from a provider that refuses audio to one that takes it, the response cache and the
token estimate. The conformance kit (``llmx.testing._conf_media``) checks each
provider end to end, whole and streamed."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmx_anthropic._wire import build_body as anthropic_body
from llmx_anthropic.testing import FakeAnthropicServer
from llmx_gemini._wire import build_body as gemini_body
from llmx_gemini.testing import FakeGeminiServer

import llmx
from llmx._cachekey import canonical_body, canonical_body_general
from llmx._convert import from_json, to_json
from llmx._tokens import (
    AUDIO_TOKENS_PER_SECOND,
    DOCUMENT_PAGE_TOKENS,
    URL_DOCUMENT_PAGES,
    estimate_input_tokens,
)
from llmx.testing import Reply
from llmx.testing._conf_media import PDF, WAV
from llmx.testing.openapi import vendor_validator
from llmx_openai._responses_wire import build_body as responses_body
from llmx_openai._wire import build_body as chat_body
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer

B64_PDF = base64.b64encode(PDF).decode()
B64_WAV = base64.b64encode(WAV).decode()
URL = "https://example.com/paper.pdf"


def _ask(*parts: Any, model: str = "m") -> llmx.Request:
    return llmx.Request(model, [llmx.Message.user("Read this.", *parts)])


# -- the value types ---------------------------------------------------------------------


def test_parts_keep_their_bytes_out_of_the_repr() -> None:
    doc = llmx.Document(data=PDF, title="r.pdf")
    audio = llmx.Audio(data=WAV, format="wav")
    assert "PDF" not in repr(doc)
    assert "RIFF" not in repr(audio)
    assert repr(audio) == "Audio(format='wav')"
    assert audio.media_type == "audio/wav"
    assert doc.data_url() == f"data:application/pdf;base64,{B64_PDF}"
    assert llmx.Document(url=URL).data_url() == URL
    assert llmx.Audio(data=B64_WAV).data == WAV  # base64 text is decoded, like Image


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: llmx.Document(), "exactly one of url= or data="),
        (lambda: llmx.Document(url=URL, data=PDF), "exactly one of url= or data="),
        (lambda: llmx.Document(data=PDF, media_type="image/png"), "application/pdf"),
        (lambda: llmx.Audio(data=WAV, format="opus"), "wav, mp3"),
        (lambda: llmx.Audio(data=None), "needs data="),  # type: ignore[arg-type]
    ],
)
def test_invalid_parts_say_what_to_pass(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_from_path(tmp_path: Path) -> None:
    (tmp_path / "paper.pdf").write_bytes(PDF)
    (tmp_path / "notes.txt").write_bytes(b"plain")
    (tmp_path / "voice.MP3").write_bytes(b"ID3")
    (tmp_path / "x.doc").write_bytes(b"?")
    doc = llmx.Document.from_path(str(tmp_path / "paper.pdf"))
    assert (doc.data, doc.media_type, doc.title) == (PDF, "application/pdf", "paper.pdf")
    assert llmx.Document.from_path(str(tmp_path / "notes.txt"), title="N").media_type == (
        "text/plain"
    )
    assert llmx.Audio.from_path(str(tmp_path / "voice.MP3")) == llmx.Audio(b"ID3", "mp3")
    with pytest.raises(ValueError, match=r"\.pdf and \.txt"):
        llmx.Document.from_path(str(tmp_path / "x.doc"))
    with pytest.raises(ValueError, match="audio format"):
        llmx.Audio.from_path(str(tmp_path / "x.doc"))


def test_user_messages_take_them() -> None:
    message = llmx.Message.user("a", llmx.Document(url=URL), llmx.Audio(WAV))
    assert [type(p) for p in message.content] == [llmx.Text, llmx.Document, llmx.Audio]
    assert llmx.Message("user", llmx.Audio(WAV)).content == (llmx.Audio(WAV),)
    assert _ask(llmx.Document(url=URL)).media_kinds() == (True, False)
    assert _ask(llmx.Audio(WAV)).media_kinds() == (False, True)
    assert llmx.Request("m", "hi").media_kinds() == (False, False)


_documents = st.builds(
    llmx.Document,
    url=st.none(),
    data=st.binary(max_size=64),
    media_type=st.sampled_from(["application/pdf", "text/plain"]),
    title=st.none() | st.text(max_size=10),
) | st.builds(llmx.Document, url=st.text(min_size=1, max_size=20))
_audio = st.builds(
    llmx.Audio,
    data=st.binary(max_size=64),
    format=st.sampled_from(sorted(llmx._types.AUDIO_FORMATS)),
)


@given(st.lists(_documents | _audio, min_size=1, max_size=3))
def test_json_round_trip_and_cache_key(parts: list[Any]) -> None:
    message = llmx.Message.user("q", *parts)
    assert from_json(to_json(message), llmx.Message) == message
    request = llmx.Request("m", [message])
    assert canonical_body(request) == canonical_body_general(request)


def test_cache_key_holds_the_bytes() -> None:
    one = canonical_body(_ask(llmx.Document(data=PDF)))
    assert B64_PDF in one
    assert one != canonical_body(_ask(llmx.Document(data=PDF + b" ")))
    assert one != canonical_body(_ask(llmx.Document(data=PDF, title="t")))
    wav = canonical_body(_ask(llmx.Audio(WAV, "wav")))
    assert wav != canonical_body(_ask(llmx.Audio(WAV, "mp3")))
    assert B64_WAV in wav


def test_token_estimate_counts_pages_and_seconds() -> None:
    base = estimate_input_tokens(_ask())
    assert estimate_input_tokens(_ask(llmx.Document(data=PDF))) - base == DOCUMENT_PAGE_TOKENS
    three = PDF.replace(b"/Count 1", b"/Count 3") + b"<</Type /Page>>" * 2
    assert estimate_input_tokens(_ask(llmx.Document(data=three))) - base == 3 * DOCUMENT_PAGE_TOKENS
    url = estimate_input_tokens(_ask(llmx.Document(url=URL))) - base
    assert url == URL_DOCUMENT_PAGES * DOCUMENT_PAGE_TOKENS
    ten_seconds = llmx.Audio(b"\0" * 320_000, "wav")
    assert estimate_input_tokens(_ask(ten_seconds)) - base == 10 * AUDIO_TOKENS_PER_SECOND
    text = llmx.Document(data=b"x" * 400, media_type="text/plain")
    assert estimate_input_tokens(_ask(text)) - base == 100


# -- the wire, against the vendors' schemas ---------------------------------------------


def _chat(request: llmx.Request) -> dict[str, Any]:
    body = chat_body(
        request, provider="o", max_tokens_field="max_completion_tokens", stream=False,
        stream_usage=False,
    )  # fmt: skip
    vendor_validator("openai", "official").check("/chat/completions", "post", body)
    return body


def test_openai_chat_file_and_input_audio() -> None:
    body = _chat(_ask(llmx.Document(data=PDF, title="r.pdf"), llmx.Audio(WAV, "wav")))
    assert body["messages"][0]["content"][1:] == [
        {"type": "file", "file": {"filename": "r.pdf", "file_data": f"data:application/pdf;base64,{B64_PDF}"}},
        {"type": "input_audio", "input_audio": {"data": B64_WAV, "format": "wav"}},
    ]  # fmt: skip
    untitled = _chat(_ask(llmx.Document(data=PDF)))["messages"][0]["content"][1]
    assert untitled["file"]["filename"] == "document.pdf"


@pytest.mark.parametrize(
    ("part", "match"),
    [
        (llmx.Document(url=URL), "a document by URL"),
        (llmx.Document(data=b"t", media_type="text/plain"), "'text/plain' documents"),
        (llmx.Audio(WAV, "flac"), "wav or mp3"),
    ],
)
def test_openai_chat_refuses_what_it_cannot_take(part: Any, match: str) -> None:
    with pytest.raises(llmx.UnsupportedFeatureError, match=match) as caught:
        _chat(_ask(part))
    assert caught.value.provider == "o"
    assert caught.value.model == "m"


def _responses(request: llmx.Request) -> dict[str, Any]:
    body = responses_body(request, provider="r", stream=False, store=False, include_reasoning=False)
    vendor_validator("openai", "official").check("/responses", "post", body)
    return body


def test_openai_responses_input_file() -> None:
    body = _responses(_ask(llmx.Document(data=PDF, title="r.pdf"), llmx.Document(url=URL)))
    assert body["input"][0]["content"][1:] == [
        {"type": "input_file", "filename": "r.pdf", "file_data": f"data:application/pdf;base64,{B64_PDF}"},
        {"type": "input_file", "file_url": URL},
    ]  # fmt: skip
    with pytest.raises(llmx.UnsupportedFeatureError, match="no audio input") as caught:
        _responses(_ask(llmx.Audio(WAV)))
    assert caught.value.feature == "audio"


def _anthropic(request: llmx.Request) -> dict[str, Any]:
    body = anthropic_body(request, provider="a", max_tokens=64, stream=False, fixed_sampling=False)
    vendor_validator("anthropic", "official").check("/v1/messages", "post", body)
    return body


def test_anthropic_document_blocks() -> None:
    parts = (
        llmx.Document(data=PDF, title="Report"),
        llmx.Document(url=URL),
        llmx.Document(data=b"plain words", media_type="text/plain"),
    )
    blocks = _anthropic(_ask(*parts))["messages"][0]["content"][1:]
    assert blocks == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": B64_PDF}, "title": "Report"},
        {"type": "document", "source": {"type": "url", "url": URL}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
    ]  # fmt: skip
    with pytest.raises(llmx.UnsupportedFeatureError, match="no audio input") as caught:
        _anthropic(_ask(llmx.Audio(WAV)))
    assert caught.value.feature == "audio"


def test_gemini_inline_data_and_file_data() -> None:
    request = _ask(llmx.Document(data=PDF), llmx.Document(url=URL), llmx.Audio(WAV, "mp3"))
    body = gemini_body(request, provider="g", safety_settings={})
    vendor_validator("gemini", "official").check(
        "generativelanguage.models.generateContent", "post", body
    )
    assert body["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "application/pdf", "data": B64_PDF}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": URL}},
        {"inlineData": {"mimeType": "audio/mp3", "data": B64_WAV}},
    ]


# -- refused before sending, through the client -------------------------------------------


async def test_azure_refuses_both_before_its_media_api_version() -> None:
    async with FakeAzureOpenAIServer(api_key="k") as server:
        config = {
            "providers": {"az": {"type": "azure", "base_url": server.base_url, "api_key": "k"}}
        }
        async with llmx.Client(config) as client:
            for part, feature in (
                (llmx.Document(data=PDF), "documents"),
                (llmx.Audio(WAV), "audio"),
            ):
                with pytest.raises(llmx.UnsupportedFeatureError, match="2025-01-01-preview") as e:
                    # my-deployment: a name model_info does not know, so the provider refuses
                    await client.complete(
                        model="az/my-deployment", messages=[llmx.Message.user("x", part)]
                    )
                assert e.value.feature == feature
        assert not server.model_requests  # fmt: skip


async def test_model_facts_refuse_audio_on_a_model_without_it() -> None:
    async with FakeOpenAIServer(api_key="k") as server:
        config = {
            "providers": {"o": {"type": "openai", "base_url": server.base_url, "api_key": "k"}}
        }
        async with llmx.Client(config) as client:
            with pytest.raises(llmx.UnsupportedFeatureError, match="'audio' capability") as e:
                await client.complete(
                    model="o/gpt-4o-mini", messages=[llmx.Message.user(llmx.Audio(WAV))]
                )
            assert (e.value.provider, e.value.model, e.value.feature) == (
                "o",
                "gpt-4o-mini",
                "audio",
            )
            with pytest.raises(llmx.UnsupportedFeatureError, match="'documents' capability"):
                await client.complete(
                    model="o/o3-mini", messages=[llmx.Message.user(llmx.Document(data=PDF))]
                )
        assert not server.model_requests  # fmt: skip


# -- fallback ----------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_fallback_from_a_provider_that_refuses_audio(streamed: bool) -> None:
    """Anthropic takes no audio: the alias skips it, unsent, and Gemini answers."""
    async with FakeAnthropicServer() as a, FakeGeminiServer() as g:
        config = {
            "providers": {
                "claude": {"type": "anthropic", "base_url": a.base_url, "api_key": "test-key"},
                "gem": {"type": "gemini", "base_url": g.base_url, "api_key": "test-key"},
            },
            "aliases": {"ears": {"candidates": ["claude/claude-sonnet-4-6", "gem/gemini-2.5-flash"]}},
        }  # fmt: skip
        g.enqueue(Reply("You said hello."))
        message = llmx.Message.user("Transcribe.", llmx.Audio(WAV, "wav"))
        async with llmx.Client(config) as client:
            if streamed:
                reply = await client.stream(model="ears", messages=[message]).collect()
            else:
                reply = await client.complete(model="ears", messages=[message])
        assert reply.text == "You said hello."
        assert reply.provider == "gem"
        assert not a.model_requests
        (audio,) = g.describe(g.model_requests[-1]).parts("audio")
        assert (audio.data, audio.media_type) == (WAV, "audio/wav")
        vendor_validator("gemini", "official").check(
            "generativelanguage.models.generateContent", "post", g.model_requests[-1].json
        )


async def test_documents_hit_the_response_cache() -> None:
    async with FakeAnthropicServer() as a:
        config = {
            "providers": {
                "c": {"type": "anthropic", "base_url": a.base_url, "api_key": "test-key"}
            },
            "cache": {"backend": "memory"},
        }
        a.enqueue(Reply("one"), Reply("two"))
        async with llmx.Client(config) as client:

            async def ask(data: bytes) -> str:
                msg = llmx.Message.user("Sum up.", llmx.Document(data=data))
                return (await client.complete(model="c/claude-sonnet-4-6", messages=[msg])).text

            assert await ask(PDF) == "one"
            assert await ask(PDF) == "one"  # the same bytes: from the cache
            assert await ask(PDF + b"\n") == "two"  # other bytes: another key
        assert len(a.model_requests) == 2


def test_model_facts_per_provider() -> None:
    """Who declares documents and audio (the tables behind check_capabilities)."""
    from llmx_anthropic import AnthropicProvider
    from llmx_gemini import GeminiProvider

    from llmx_openai import OpenAIProvider, OpenAIResponsesProvider

    def caps(provider: Any, model: str) -> tuple[bool, bool]:
        info = provider.model_info(model)
        assert info is not None, model
        return info.supports(llmx.Capability.DOCUMENTS), info.supports(llmx.Capability.AUDIO)

    assert caps(OpenAIProvider, "gpt-4o-mini") == (True, False)
    assert caps(OpenAIProvider, "o3-mini") == (False, False)
    assert caps(OpenAIProvider, "gpt-audio") == (False, True)
    assert caps(OpenAIResponsesProvider, "gpt-audio") == (False, False)  # no audio part there
    assert caps(AnthropicProvider, "claude-sonnet-4-6") == (True, False)
    assert caps(AnthropicProvider, "claude-3-haiku-20240307") == (False, False)
    assert caps(GeminiProvider, "gemini-2.5-flash") == (True, True)

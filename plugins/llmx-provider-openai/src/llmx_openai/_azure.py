"""The ``azure`` provider: Azure OpenAI chat completions, deployment-based URLs.

Azure OpenAI speaks OpenAI's Chat Completions format with three differences handled
here: the URL names a deployment and carries the API version
(``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``), the
body has no ``model`` (the deployment decides), and credentials travel as ``api-key``
or as an Entra ID bearer token. Everything else — bodies, streams, errors — is the
``openai`` provider's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
from yarl import URL

from llmx import ConfigError, ModelInfo, Request, UnsupportedFeatureError
from llmx.http import Endpoint, api_key, base_url, dumps
from llmx.plugin import BatchLimits, EmbeddingRequest, reasoning_off
from llmx_openai._batch import MAX_BYTES, OpenAIBatchMixin
from llmx_openai._embed import build_embedding_body, embedding_lookup
from llmx_openai._models import lookup
from llmx_openai._provider import OpenAIChatProvider, _efforts
from llmx_openai._settings import AzureSettings
from llmx_openai._wire import build_body

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["AzureOpenAIProvider"]


REASONING_API_VERSION = "2024-12-01-preview"
"""The first Azure OpenAI api-version that takes ``reasoning_effort``."""


BATCH_API_VERSION = "2024-07-01-preview"
"""The first Azure OpenAI api-version with the batch API (GA in 2024-10-21)."""

MAX_REQUESTS = 100_000
"""Azure's "max requests per file" of a global batch (its batch documentation's limits;
the file size limit, ``MAX_BYTES``, is OpenAI's 200 MB)."""


class AzureOpenAIProvider(OpenAIBatchMixin, OpenAIChatProvider):
    """Azure OpenAI chat completions (provider type ``azure``), and its batch API.

    The request's model is the deployment name. ``base_url`` is the resource endpoint
    (default ``$AZURE_OPENAI_ENDPOINT``); see :class:`~llmx_openai.AzureSettings` for
    the API version and the two ways to authenticate. ``llmx batch --provider-batch``
    goes through ``{endpoint}/openai/files`` and ``/openai/batches`` (api-version
    2024-07-01-preview or later; the model is a Global Batch deployment).
    """

    batch_endpoint = "/chat/completions"
    """Azure's batch lines and create name the operation without OpenAI's ``/v1``."""

    __slots__ = ("_api_version", "_endpoint")

    def __init__(self, ctx: ProviderContext) -> None:
        settings = ctx.settings if isinstance(ctx.settings, AzureSettings) else AzureSettings()
        name = ctx.instance
        raw = base_url(
            ctx,
            env="AZURE_OPENAI_ENDPOINT",
            default=None,
            example="https://RESOURCE.openai.azure.com",
        ).removesuffix("/openai")
        token = settings.token.get() if settings.token is not None else None
        key = api_key(ctx, env=settings.api_key_env, required=False)
        if token:
            headers = {"Authorization": f"Bearer {token}"}
        elif key:
            headers = {"api-key": key}
        else:
            msg = (
                f"no credentials for provider instance {name!r} (type 'azure'): set "
                f'{settings.api_key_env} in the environment, api_key = {{ env = "..." }}, or '
                f'an Entra ID token as token = {{ env = "..." }} in [providers.{name}]'
            )
            raise ConfigError(msg)
        field = settings.max_tokens_field
        if field == "auto":
            field = (
                "max_completion_tokens" if settings.api_version >= "2024-09-01" else "max_tokens"
            )
        self._endpoint = raw
        self._api_version = settings.api_version
        encoding = settings.embedding_encoding
        self._setup(
            Endpoint(ctx, base_url=raw, headers=headers, secret=token or key),
            field,
            settings.stream_usage,
            "base64" if encoding == "auto" else encoding,
        )
        self._models_url = self._http.url("/openai/models", **{"api-version": self._api_version})

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Facts about a deployment named after its model (``gpt-4o``, ``gpt-4o-2024-08-06``).

        A deployment with another name is unknown (None); name deployments after their
        model, or map names with ``models`` in the config, to get costs and checks.
        """
        return lookup(model) or embedding_lookup(model)

    def _chat_url_for(self, model: str) -> URL:
        """``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``."""
        deployment = quote(model, safe="-._~")
        return URL(
            f"{self._endpoint}/openai/deployments/{deployment}/chat/completions", encoded=True
        ).with_query({"api-version": self._api_version})

    def _embed_url_for(self, model: str) -> URL:
        """``{endpoint}/openai/deployments/{deployment}/embeddings?api-version=...``."""
        deployment = quote(model, safe="-._~")
        return URL(
            f"{self._endpoint}/openai/deployments/{deployment}/embeddings", encoded=True
        ).with_query({"api-version": self._api_version})

    def _embed_body(self, request: EmbeddingRequest) -> bytes:
        with_model = "model" in request.extra  # else the deployment in the URL decides
        return dumps(
            build_embedding_body(request, encoding=self._embedding_encoding, with_model=with_model)
        )

    def _body_dict(self, request: Request, stream: bool) -> dict[str, Any]:
        """The chat completions body, with ``model`` (the deployment; dropped from a
        normal call's body, where the URL names it)."""
        if request.reasoning is not None and self._api_version < REASONING_API_VERSION:
            if not reasoning_off(request.reasoning):
                msg = (
                    f"{self._http.name}/{request.model}: Azure OpenAI takes reasoning_effort "
                    f"from api-version {REASONING_API_VERSION} on; set api_version = "
                    f'"{REASONING_API_VERSION}" (or later) in [providers.{self._http.name}]'
                )
                raise UnsupportedFeatureError(
                    msg, provider=self._http.name, model=request.model, feature="reasoning"
                )
            request = attrs.evolve(request, reasoning=None)  # off: what it does anyway
        if self._api_version < MEDIA_API_VERSION:
            _refuse_media(request, self._http.name, self._api_version)
        body = build_body(
            request,
            provider=self._http.name,
            max_tokens_field=self._max_tokens_field,
            stream=stream,
            stream_usage=self._stream_usage,
            efforts=_efforts(request),
        )
        if "prompt_cache_key" not in request.extra:
            # Not in Azure's GA API version (2024-10-21): a routing hint, dropped; Azure
            # caches long prompt prefixes on its own all the same.
            body.pop("prompt_cache_key", None)
        return body

    def _body(self, request: Request, stream: bool) -> bytes:
        body = self._body_dict(request, stream)
        if "model" not in request.extra:
            del body["model"]  # the deployment in the URL decides
        return dumps(body)

    # -- the batch API (OpenAIBatchMixin, Azure's paths) ---------------------------------

    def batch_limits(self, model: str) -> BatchLimits:
        """100,000 requests or 200 MB per input file (Azure's global batch limits)."""
        return BatchLimits(MAX_REQUESTS, MAX_BYTES, line_overhead=1)

    def _batch_body(self, request: Request) -> dict[str, Any]:
        """The body a normal call sends, naming the deployment as ``model``; refused
        before anything is sent on an api-version without the batch API."""
        if self._api_version < BATCH_API_VERSION:
            name = self._http.name
            msg = (
                f"{name}/{request.model}: Azure OpenAI api-version {self._api_version} has no "
                f'batch API; set api_version = "2024-10-21" (or later) in [providers.{name}]'
            )
            raise UnsupportedFeatureError(
                msg, provider=name, model=request.model, feature="provider_batch"
            )
        return self._body_dict(request, False)

    def _url(self, path: str, **query: str) -> URL:
        """``{endpoint}/openai{path}?api-version=...`` (``/files``, ``/batches/...``)."""
        return URL(f"{self._endpoint}/openai{path}", encoded=True).with_query(
            {"api-version": self._api_version, **query}
        )


# -- documents and audio (issue 15, item 7) -------------------------------------------

MEDIA_API_VERSION = "2025-01-01-preview"
"""The first Azure OpenAI api-version whose Chat Completions take ``file`` and
``input_audio`` content parts (the GA 2024-10-21 takes text and images only)."""


def _refuse_media(request: Request, provider: str, api_version: str) -> None:
    """Refuse documents and audio before sending on an api-version without them."""
    docs, audio = request.media_kinds()
    if docs or audio:
        feature = "documents" if docs else "audio"
        msg = (
            f"{provider}/{request.model}: Azure OpenAI api-version {api_version} takes no "
            f"{'document' if docs else 'audio'} input; set api_version = "
            f'"{MEDIA_API_VERSION}" (or later) in [providers.{provider}]'
        )
        raise UnsupportedFeatureError(msg, provider=provider, model=request.model, feature=feature)

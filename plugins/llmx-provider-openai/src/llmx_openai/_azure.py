"""The ``azure`` provider: Azure OpenAI chat completions, deployment-based URLs.

Azure OpenAI speaks OpenAI's Chat Completions format with three differences handled
here: the URL names a deployment and carries the API version
(``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``), the
body has no ``model`` (the deployment decides), and credentials travel as ``api-key``
or as an Entra ID bearer token. Everything else — bodies, streams, errors — is the
``openai`` provider's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import quote

from yarl import URL

from llmx import ConfigError, ModelInfo, Request
from llmx_openai._models import lookup
from llmx_openai._provider import OpenAIProvider
from llmx_openai._settings import AzureSettings
from llmx_openai._wire import build_body, dumps

if TYPE_CHECKING:
    from llmx.plugin import ProviderContext

__all__ = ["AzureOpenAIProvider"]


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI chat completions (provider type ``azure``).

    The request's model is the deployment name. ``base_url`` is the resource endpoint
    (default ``$AZURE_OPENAI_ENDPOINT``); see :class:`~llmx_openai.AzureSettings` for
    the API version and the two ways to authenticate.
    """

    __slots__ = ("_api_version", "_endpoint")

    def __init__(self, ctx: ProviderContext) -> None:
        settings = ctx.settings if isinstance(ctx.settings, AzureSettings) else AzureSettings()
        cfg = ctx.config
        name = ctx.instance
        raw = (cfg.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT") or "").rstrip("/")
        if not raw:
            msg = (
                f"no endpoint for provider instance {name!r} (type 'azure'): set base_url = "
                f"'https://RESOURCE.openai.azure.com' in [providers.{name}] or "
                "AZURE_OPENAI_ENDPOINT in the environment"
            )
            raise ConfigError(msg)
        raw = raw.removesuffix("/openai")
        base = URL(raw)
        if not base.is_absolute() or base.scheme not in ("http", "https"):
            msg = (
                f"base_url {raw!r} of provider instance {name!r} is not an http(s) URL; set "
                f"base_url = 'https://RESOURCE.openai.azure.com' in [providers.{name}]"
            )
            raise ConfigError(msg)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = settings.token.get() if settings.token is not None else None
        key = cfg.api_key.get() if cfg.api_key is not None else os.environ.get(settings.api_key_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif key:
            headers["api-key"] = key
        else:
            msg = (
                f"no credentials for provider instance {name!r} (type 'azure'): set "
                f'{settings.api_key_env} in the environment, api_key = {{ env = "..." }}, or '
                f'an Entra ID token as token = {{ env = "..." }} in [providers.{name}]'
            )
            raise ConfigError(msg)
        for header, secret in cfg.headers.items():
            headers[header] = secret.get()
        field = settings.max_tokens_field
        if field == "auto":
            field = (
                "max_completion_tokens" if settings.api_version >= "2024-09-01" else "max_tokens"
            )
        self._name = name
        self._session = ctx.session
        self._secret = token or key
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}
        self._endpoint = raw
        self._api_version = settings.api_version
        self._chat_url = URL(f"{raw}/openai/deployments")
        self._models_url = URL(f"{raw}/openai/models").with_query(
            {"api-version": settings.api_version}
        )
        self._host = f"{base.host}:{base.port}" if base.port else str(base.host)
        self._max_tokens_field = field
        self._stream_usage = settings.stream_usage
        self._timeout = cfg.timeout

    def __repr__(self) -> str:
        return f"AzureOpenAIProvider(instance={self._name!r}, host={self._host!r})"

    @staticmethod
    def model_info(model: str) -> ModelInfo | None:
        """Facts about a deployment named after its model (``gpt-4o``, ``gpt-4o-2024-08-06``).

        A deployment with another name is unknown (None); name deployments after their
        model, or map names with ``models`` in the config, to get costs and checks.
        """
        return lookup(model)

    def _chat_url_for(self, model: str) -> URL:
        """``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``."""
        deployment = quote(model, safe="-._~")
        return URL(
            f"{self._endpoint}/openai/deployments/{deployment}/chat/completions", encoded=True
        ).with_query({"api-version": self._api_version})

    def _body(self, request: Request, stream: bool) -> bytes:
        body = build_body(
            request,
            provider=self._name,
            max_tokens_field=self._max_tokens_field,
            stream=stream,
            stream_usage=self._stream_usage,
        )
        if "model" not in request.extra:
            del body["model"]  # the deployment in the URL decides
        return dumps(body)

"""llmx provider for the (imaginary) Template API, a skeleton to copy for your own API.

The API: ``POST {base_url}/generate`` with ``{"model", "prompt"}`` answers
``{"output", "tokens_in", "tokens_out"}``; failures are HTTP 4xx/5xx. Configure it as::

    [providers.tmpl]
    type = "template"
    base_url = "http://127.0.0.1:8080"
    api_key = { env = "TEMPLATE_API_KEY" }
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import attrs

import llmx
from llmx.plugin import (
    ProviderContext,
    Register,
    error_class_for_status,
    hookimpl,
    parse_retry_after,
)

DEFAULT_BASE_URL = "https://api.template.invalid/v1"

MODELS = {
    "tiny": llmx.ModelInfo("tiny", context_window=4096, input_price=0.5, output_price=1.5),
}


@attrs.frozen
class TemplateSettings:
    """The keys of ``[providers.NAME]`` only this type knows (any other key is a config error)."""

    endpoint: str = "/generate"


class TemplateProvider:
    """One configured instance. It borrows the client's pooled session and never closes it."""

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._url = (ctx.config.base_url or DEFAULT_BASE_URL).rstrip("/") + ctx.settings.endpoint

    @staticmethod
    def model_info(model: str) -> llmx.ModelInfo | None:
        """Static facts about ``model`` (limits, capabilities, prices); no I/O."""
        return MODELS.get(model)

    async def complete(self, request: llmx.Request) -> llmx.Response:
        """Send ``request`` and return the whole answer, or raise an ``llmx.ProviderError``."""
        name, model = self._ctx.instance, request.model
        if request.tools or request.has_images():
            msg = "the Template API takes text only (no tools, no images)"
            raise llmx.UnsupportedFeatureError(msg, provider=name, model=model, feature="tools")
        headers = {}
        if self._ctx.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self._ctx.config.api_key.get()}"
        payload = {"model": model, "prompt": _prompt(request)}
        try:
            async with self._ctx.session.post(self._url, json=payload, headers=headers) as resp:
                body = await resp.read()
        except asyncio.TimeoutError as err:
            msg = "no answer in time"
            raise llmx.ProviderTimeoutError(msg, provider=name, model=model) from err
        except aiohttp.ClientError as err:
            msg = f"{type(err).__name__}: {err}"
            raise llmx.ProviderConnectionError(msg, provider=name, model=model) from err
        if resp.status >= 400:
            error = error_class_for_status(resp.status)
            msg = body.decode(errors="replace")[:500] or resp.reason or "error"
            retry_after = parse_retry_after(resp.headers)
            raise error(
                msg, provider=name, model=model, status=resp.status, retry_after=retry_after
            )
        try:
            data = json.loads(body)
            usage = llmx.Usage(input_tokens=data["tokens_in"], output_tokens=data["tokens_out"])
            text = data["output"]
        except (ValueError, KeyError, TypeError) as err:
            msg = f"not a Template API answer: {body[:200]!r}"
            raise llmx.MalformedResponseError(msg, provider=name, model=model) from err
        return llmx.Response(text, model, name, finish_reason="stop", usage=usage)


def _prompt(request: llmx.Request) -> str:
    """The API takes one prompt: a single message as is, a conversation as role-tagged text."""
    if len(request.messages) == 1:
        return request.messages[0].text
    return "\n\n".join(f"{m.role}: {m.text}" for m in request.messages)


@hookimpl
def llmx_register_providers(register: Register) -> None:
    """Register the ``template`` provider type (named like the entry point)."""
    register("template", TemplateProvider, settings=TemplateSettings)

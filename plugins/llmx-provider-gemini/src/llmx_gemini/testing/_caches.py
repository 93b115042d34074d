"""Gemini's explicit context caches (``cachedContents``) in
:class:`~llmx_gemini.testing.FakeGeminiServer`.

Reproduces, from the Gemini API reference (``cachedContents``, "Context caching") and
its discovery document:

* ``POST /v1beta/cachedContents`` with a ``CachedContent`` (``model``, ``contents``,
  ``systemInstruction``, ``tools``, ``toolConfig``, ``ttl`` such as ``"300s"`` or
  ``expireTime``, ``displayName``), validated against the discovery document; answers
  the resource with its ``name`` (``cachedContents/...``), ``usageMetadata
  .totalTokenCount``, ``createTime``, ``updateTime`` and ``expireTime``. Content smaller
  than :attr:`GeminiCacheFake.cache_min_tokens` is refused with 400, as Gemini refuses a
  cache below its model's minimum;
* ``GET /v1beta/cachedContents/{id}``, ``DELETE /v1beta/cachedContents/{id}``;
* a ``generateContent`` request naming ``cachedContent``: 403 ``PERMISSION_DENIED``
  ("CachedContent not found (or permission denied)") for an unknown, deleted or expired
  cache; 400 when the request also sets ``systemInstruction``, ``tools`` or
  ``toolConfig`` (they belong in the cache) or names another model than the cache's;
  otherwise the answer's ``usageMetadata`` counts the cached tokens in
  ``promptTokenCount`` and as ``cachedContentTokenCount``.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from llmx.testing import approx_tokens

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aiohttp import web

    from llmx.testing import FakeServer, Handler, RecordedRequest

    _Server = FakeServer
else:
    _Server = object

__all__ = ["FakeCache", "GeminiCacheFake"]

_PREFIX = "/v1beta/cachedContents"


@attrs.define
class FakeCache:
    """One ``cachedContents`` resource of the fake: its model (``models/...``), token
    count, expiry (Unix time) and the resource as created."""

    name: str
    model: str
    tokens: int
    expires: float
    resource: dict[str, Any]


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text_of(obj: Any) -> str:
    """Every ``text`` in a content, list of contents or tools, joined (what is counted)."""
    if isinstance(obj, dict):
        return "".join(_text_of(v) if k != "text" else str(v) for k, v in obj.items())
    if isinstance(obj, list):
        return "".join(_text_of(v) for v in obj)
    return ""


class GeminiCacheFake(_Server):
    """The ``cachedContents`` half of the Gemini fake (mixed into ``FakeGeminiServer``)."""

    cache_min_tokens = 1024
    """The smallest cache the fake accepts, in its token count (Gemini 2.5 Flash's)."""

    if TYPE_CHECKING:  # the Gemini fake's, which this is mixed into

        async def error(
            self,
            request: web.BaseRequest,
            status: int,
            message: str,
            *,
            status_name: str | None = None,
            details: Sequence[Mapping[str, Any]] = (),
            headers: Mapping[str, str] | None = None,
        ) -> web.StreamResponse: ...

    def init_caches(self) -> None:
        """Set up the cache store (called by the fake's ``__init__``)."""
        self.caches: dict[str, FakeCache] = {}
        """The live caches by name (``cachedContents/...``)."""

    def cache_route(self, method: str, path: str) -> Handler | None:
        """The handler of a ``cachedContents`` URL, or None."""
        if path == _PREFIX and method == "POST":
            return self._create_cache
        if path.startswith(_PREFIX + "/") and method in ("GET", "DELETE"):
            return self._get_cache if method == "GET" else self._delete_cache
        return None

    def live_cache(self, name: Any) -> FakeCache | None:
        """The cache named ``name`` if it exists and has not expired."""
        cache = self.caches.get(name) if isinstance(name, str) else None
        if cache is None or cache.expires <= time.time():
            return None
        return cache

    async def _create_cache(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        from llmx.testing.openapi import vendor_validator

        body = recorded.json
        problems = vendor_validator("gemini", "official").request_errors(
            "generativelanguage.cachedContents.create", "post", body
        )
        if problems:
            return await self.error(request, 400, "Invalid JSON payload received. " + problems[0])
        model = body["model"]
        if not model.startswith("models/"):
            return await self.error(request, 400, f"Invalid model name: {model}")
        tokens = approx_tokens(
            _text_of([body.get("systemInstruction"), body.get("contents"), body.get("tools")])
        )
        if tokens < self.cache_min_tokens:
            return await self.error(
                request,
                400,
                f"Cached content is too small. total_token_count={tokens}, "
                f"min_total_token_count={self.cache_min_tokens}",
            )
        now = time.time()
        ttl = str(body.get("ttl") or "3600s")
        try:
            seconds = float(ttl.removesuffix("s"))
        except ValueError:
            return await self.error(request, 400, f"Invalid value at 'ttl': {ttl!r}")
        name = f"cachedContents/fakecache{self.next_id():08d}"
        resource = {
            "name": name,
            "model": model,
            "createTime": _timestamp(now),
            "updateTime": _timestamp(now),
            "expireTime": _timestamp(now + seconds),
            "usageMetadata": {"totalTokenCount": tokens},
        }
        if body.get("displayName"):
            resource["displayName"] = body["displayName"]
        self.caches[name] = FakeCache(name, model, tokens, now + seconds, resource)
        return await self.json_response(request, 200, resource, headers=self.response_headers())

    async def _get_cache(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        cache = self.live_cache(recorded.path.removeprefix("/v1beta/"))
        if cache is None:
            return await self._not_found(request)
        return await self.json_response(
            request, 200, cache.resource, headers=self.response_headers()
        )

    async def _delete_cache(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        if self.caches.pop(recorded.path.removeprefix("/v1beta/"), None) is None:
            return await self._not_found(request)
        return await self.json_response(request, 200, {}, headers=self.response_headers())

    async def _not_found(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self.error(request, 403, "CachedContent not found (or permission denied)")

    async def check_cached_content(
        self, request: web.BaseRequest, body: dict[str, Any], model: str
    ) -> web.StreamResponse | None:
        """Gemini's answers to a generate request naming a ``cachedContent`` it cannot
        use (None: it can)."""
        if "cachedContent" not in body:
            return None
        cache = self.live_cache(body["cachedContent"])
        if cache is None:
            return await self._not_found(request)
        clash = [k for k in ("systemInstruction", "tools", "toolConfig") if k in body]
        if clash:
            return await self.error(
                request,
                400,
                "CachedContent can not be used with GenerateContent request setting "
                "system_instruction, tools or tool_config.\n\nProposed fix: move those values "
                "to CachedContent from GenerateContent request.",
            )
        if cache.model != f"models/{model}":
            return await self.error(
                request,
                400,
                f"Model used by GenerateContent request (models/{model}) and CachedContent "
                f"({cache.model}) has to be the same.",
            )
        return None

    def cached_tokens_of(self, body: Any) -> int:
        """The tokens of the live cache a generate request names (0: none)."""
        cache = self.live_cache(body.get("cachedContent")) if isinstance(body, dict) else None
        return cache.tokens if cache is not None else 0

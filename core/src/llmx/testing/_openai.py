"""A local fake of OpenAI's Chat Completions API, speaking its exact wire format.

Reproduces, from OpenAI's API reference (platform.openai.com/docs/api-reference/chat)
and the behaviour the official ``openai-python`` SDK relies on:

* ``POST /v1/chat/completions`` answering a ``chat.completion`` object, or with
  ``"stream": true`` a ``text/event-stream`` of ``chat.completion.chunk`` objects as
  ``data: {...}`` events ending with ``data: [DONE]``; the first chunk carries the
  role, tool calls stream by ``index`` (id, type and name in the first delta of each
  call, argument pieces after), the last choice chunk has the ``finish_reason``;
* ``stream_options: {"include_usage": true}``: every chunk has ``"usage": null`` and
  an extra chunk with ``"choices": []`` and the usage precedes ``[DONE]``;
* usage with ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens_details.reasoning_tokens``;
* errors as ``{"error": {"message", "type", "param", "code"}}`` with the real status
  codes, ``x-request-id`` on every response, and a mid-stream failure as a
  ``data: {"error": {...}}`` event (what ``openai-python``'s stream decoder checks);
* ``Authorization: Bearer KEY``: no key gives 401 with ``code: null``, a wrong key
  401 ``invalid_api_key`` (the key masked in the message, as OpenAI does);
* ``GET /v1/models`` (``{"object": "list", "data": [...]}``) and
  ``GET /v1/models/{id}``; unknown URLs give 404 ``Invalid URL (METHOD /path)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmx.testing._replies import ErrorReply, MidStreamError, RawReply, Reply, ReplyItem, Stall
from llmx.testing._server import FakeServer, Handler, RecordedRequest

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["FakeOpenAIServer"]

DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o4-mini")
"""The model ids ``GET /v1/models`` lists unless told otherwise."""

_ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    409: (
        "Another request is modifying this resource; please retry.",
        "invalid_request_error",
        None,
    ),
    422: ("Unprocessable request.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from https://platform.openai.com/account/api-keys."
)


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 12 else "*" * 8


def _prompt_text(body: Any) -> str:
    """All message text of a request body (for computed usage)."""
    parts: list[str] = []
    messages = body.get("messages") if isinstance(body, dict) else None
    for m in messages if isinstance(messages, list) else ():
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
    return "\n".join(parts)


def _last_user_text(body: Any) -> str:
    """The text of the last user message, what the default reply echoes."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for m in reversed(messages if isinstance(messages, list) else []):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    p["text"]
                    for p in content
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
    return ""


class FakeOpenAIServer(FakeServer):
    """A fake OpenAI API on 127.0.0.1 (see the module docstring for what it reproduces).

    ``base_url`` is ``http://127.0.0.1:PORT/v1``. Script answers with
    :meth:`enqueue` (:class:`Reply`, :class:`ErrorReply`, :class:`RawReply`,
    :class:`MidStreamError`, :class:`Stall`); with an empty queue every chat request is
    answered with the text of its last user message. ``models`` are the ids
    ``GET /v1/models`` lists.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        models: Sequence[str] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.models: list[str] = list(models)
        """The model ids ``GET /v1/models`` lists."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what an OpenAI client's ``base_url`` is set to."""
        return f"{self.url}/v1"

    # -- routing and auth ----------------------------------------------------------------

    def route(self, method: str, path: str) -> Handler | None:
        """``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /v1/models/{id}``."""
        if path == "/v1/chat/completions" and method == "POST":
            return self._chat
        if method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            return self._models
        return None

    def _headers(self, extra: Any = None) -> dict[str, str]:
        headers = {
            "x-request-id": f"req_fake{self.next_id():012d}",
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
        }
        if extra:
            headers.update(extra)
        return headers

    async def error(
        self,
        request: web.BaseRequest,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Any = None,
    ) -> web.StreamResponse:
        """Send an OpenAI error body ``{"error": {message, type, param, code}}``."""
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return await self.json_response(request, status, body, headers=self._headers(headers))

    async def check_auth(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse | None:
        """OpenAI's 401 answers for a missing or wrong ``Authorization: Bearer`` key."""
        if self.api_key is None:
            return None
        auth = recorded.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return await self.error(request, 401, _NO_KEY)
        if given != self.api_key:
            message = (
                f"Incorrect API key provided: {_mask(given)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return await self.error(request, 401, message, code="invalid_api_key")
        return None

    async def not_found(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        """OpenAI's 404 for an unknown URL."""
        return await self.error(request, 404, f"Invalid URL ({request.method} {request.path})")

    # -- endpoints -----------------------------------------------------------------------

    async def _models(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        entries = [
            {"id": m, "object": "model", "created": 1686935002, "owned_by": "openai"}
            for m in self.models
        ]
        if request.path == "/v1/models":
            return await self.json_response(
                request, 200, {"object": "list", "data": entries}, headers=self._headers()
            )
        wanted = request.path[len("/v1/models/") :]
        for entry in entries:
            if entry["id"] == wanted:
                return await self.json_response(request, 200, entry, headers=self._headers())
        return await self.error(
            request,
            404,
            f"The model '{wanted}' does not exist",
            param="model",
            code="model_not_found",
        )

    async def _chat(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            return await self.error(
                request,
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                "sent was not valid JSON.)",
            )
        if not isinstance(body.get("model"), str):
            return await self.error(request, 400, "you must provide a model parameter")
        if not isinstance(body.get("messages"), list):
            return await self.error(
                request, 400, "Missing required parameter: 'messages'.", param="messages"
            )
        reply = self.next_reply()
        if reply is None:
            reply = Reply(_last_user_text(body))
        return await self.render(request, body, reply)

    async def render(
        self, request: web.BaseRequest, body: dict[str, Any], reply: ReplyItem
    ) -> web.StreamResponse:
        """Answer a chat request (its parsed ``body``) with ``reply``."""
        stream = body.get("stream") is True
        if isinstance(reply, Stall):
            await self.sleep(reply.seconds)
            return await self.render(request, body, reply.then or Reply(_last_user_text(body)))
        if isinstance(reply, ErrorReply):
            return await self._render_error(request, reply)
        if isinstance(reply, RawReply):
            await self.sleep(reply.delay)
            return await self.write_body(
                request,
                status=reply.status,
                pieces=[reply.body],
                content_type=reply.content_type,
                headers=self._headers(reply.headers),
                stream=reply.content_type.startswith("text/event-stream"),
                split_at=reply.split_at,
                drop_after=reply.drop_after,
            )
        if isinstance(reply, MidStreamError):
            error = dict(reply.error) if reply.error is not None else self._error_object(500)
            if not stream:
                return await self.json_response(
                    request, reply.status, {"error": error}, headers=self._headers()
                )
            events = self.stream_events(Reply(reply.text), body)[: reply.after_events]
            events.append(self._event({"error": error}, "\n"))
            return await self.write_body(
                request,
                status=200,
                pieces=events,
                content_type="text/event-stream; charset=utf-8",
                headers=self._headers(),
                stream=True,
            )
        await self.sleep(reply.delay)
        if not stream:
            payload = self.completion(reply, body)
            return await self.json_response(
                request,
                200,
                payload,
                headers=self._headers(reply.headers),
                split_at=reply.split_at,
                drop_after=reply.drop_after,
            )
        events = self.stream_events(reply, body)
        return await self.write_body(
            request,
            status=200,
            pieces=events,
            content_type="text/event-stream; charset=utf-8",
            headers=self._headers(reply.headers),
            stream=True,
            split_at=reply.split_at,
            drop_after=reply.drop_after,
            chunk_delay=reply.chunk_delay,
        )

    def _error_object(self, status: int) -> dict[str, Any]:
        message, type_, code = _ERROR_DEFAULTS.get(
            status,
            (
                "The server had an error processing your request.",
                "server_error" if status >= 500 else "invalid_request_error",
                None,
            ),
        )
        return {"message": message, "type": type_, "param": None, "code": code}

    async def _render_error(
        self, request: web.BaseRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        await self.sleep(reply.delay)
        headers = self._headers(reply.headers)
        if reply.body is None:
            error = self._error_object(reply.status)
            if reply.message is not None:
                error["message"] = reply.message
            if reply.type is not None:
                error["type"] = reply.type
            if reply.code is not None:
                error["code"] = reply.code
            if reply.param is not None:
                error["param"] = reply.param
            return await self.json_response(
                request, reply.status, {"error": error}, headers=headers
            )
        if isinstance(reply.body, (dict, list)):
            data = json.dumps(reply.body).encode()
            content_type = reply.content_type or "application/json"
        else:
            data = reply.body.encode() if isinstance(reply.body, str) else bytes(reply.body)
            content_type = reply.content_type or "text/html; charset=utf-8"
        return await self.write_body(
            request, status=reply.status, pieces=[data], content_type=content_type, headers=headers
        )

    # -- rendering a Reply ---------------------------------------------------------------

    def _usage(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        prompt, completion = reply.token_usage(_prompt_text(body))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def completion(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        """The ``chat.completion`` object answering ``body`` with ``reply``."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if (reply.text or not reply.tool_calls) else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in reply.tool_calls
            ]
        payload: dict[str, Any] = {
            "id": reply.id or f"chatcmpl-fake{self.next_id():06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.derived_finish_reason,
                }
            ],
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if not reply.omit_usage:
            payload["usage"] = self._usage(reply, body)
        return payload

    @staticmethod
    def _event(obj: Any, le: str) -> bytes:
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        return f"data: {data}{le}{le}".encode()

    def stream_events(self, reply: Reply, body: dict[str, Any]) -> list[bytes]:
        """The SSE events of ``reply`` as a stream answering ``body``."""
        le = reply.line_ending
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base: dict[str, Any] = {
            "id": reply.id or f"chatcmpl-fake{self.next_id():06d}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": reply.model or body["model"],
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return self._event({**base, "choices": [choice]}, le)

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events.extend(chunk({"content": piece}) for piece in reply.text_pieces())
        for index, call in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(chunk({"tool_calls": [head]}))
            for piece in reply.argument_pieces(call.arguments):
                if reply.repeat_tool_call_ids:
                    tc = {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": piece},
                    }
                else:
                    tc = {"index": index, "function": {"arguments": piece}}
                events.append(chunk({"tool_calls": [tc]}))
        events.append(chunk({}, reply.derived_finish_reason))
        if include_usage and not reply.omit_usage:
            events.append(
                self._event({**base, "choices": [], "usage": self._usage(reply, body)}, le)
            )
        if reply.end_after is not None:
            return events[: reply.end_after]
        if not reply.omit_done:
            events.append(f"data: [DONE]{le}{le}".encode())
        return events

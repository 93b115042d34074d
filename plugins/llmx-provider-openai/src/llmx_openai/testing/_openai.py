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
  a refused prompt as HTTP 400 ``content_policy_violation``;
* ``Authorization: Bearer KEY``: no key gives 401 with ``code: null``, a wrong key
  401 ``invalid_api_key`` (the key masked in the message, as OpenAI does);
* ``POST /v1/embeddings`` (see :mod:`llmx_openai.testing._embed`);
* ``GET /v1/models`` (``{"object": "list", "data": [...]}``) and
  ``GET /v1/models/{id}``; unknown URLs give 404 ``Invalid URL (METHOD /path)``;
* ``reasoning_effort``: refused with 400 ``unsupported_parameter`` for a model that does
  not reason (GPT-4o, GPT-4.1); the reasoning itself is never shown (only counted in
  ``completion_tokens_details.reasoning_tokens``).
* ``n`` (that many choices: the reply's ``text``, then its ``choices``; streamed, the
  choices' chunks interleave by ``index``, one of each in turn, each choice with its own
  role chunk and finish-reason chunk, and the usage chunk once at the end), ``logprobs``
  and ``top_logprobs`` (``logprobs.content`` per choice and per stream chunk, one token
  per character), a reply's ``refusal`` as ``message.refusal`` (``delta.refusal`` in
  a stream, ``logprobs.refusal`` for its tokens);
* ``POST /v1/responses``, the Responses API, with the same keys, errors and replies
  (its objects and events: :mod:`llmx_openai.testing._responses`);
* ``POST /v1/responses/input_tokens`` (``TokenCountsBody``: the prompt fields of a
  Responses body, any other key refused with 400 ``unknown_parameter``), answering
  ``{"object": "response.input_tokens", "input_tokens": N}`` with the count a
  Responses answer to the same prompt reports.

:class:`OpenAIQuirks` makes it behave like the OpenAI-compatible servers that deviate
from this (vLLM, Ollama, LiteLLM, FastAPI-based gateways).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from llmx.testing import (
    Blocked,
    ErrorKind,
    ErrorReply,
    FakeServer,
    Handler,
    MidStreamError,
    RecordedRequest,
    Reply,
    ReplyItem,
    RequestView,
    ViewPart,
    approx_tokens,
    merge_turns,
)
from llmx_openai.testing._batch import OpenAIBatchFake
from llmx_openai.testing._responses import (
    describe_responses_body,
    foreign_reasoning,
    mid_stream_error,
    response_events,
    response_object,
)

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["FakeOpenAIServer", "OpenAIQuirks", "strict_schema_problem"]

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

_CLOUDFLARE_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


TOKEN_COUNT_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "truncation",
        "previous_response_id",
        "conversation",
    }
)
"""The keys ``POST /v1/responses/input_tokens`` takes (OpenAI's ``TokenCountsBody``)."""


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 12 else "*" * 8


@attrs.frozen
class OpenAIQuirks:
    """How an OpenAI-compatible server deviates from OpenAI's documented behaviour.

    ``repeat_tool_call_ids``: every streamed tool-call delta repeats the call's id,
    type and name (some vLLM and LiteLLM versions). ``omit_stream_usage``: streams
    never carry usage, even when ``stream_options.include_usage`` asks for it
    (servers that ignore ``stream_options``). ``error_shape``: error bodies as
    FastAPI's ``{"detail": "..."}`` (``"detail"``), Ollama's ``{"error": "..."}``
    (``"string"``), vLLM's ``{"object": "error", "message", "type", "code": STATUS}``
    (``"vllm"``), or OpenAI's own (``"openai"``). ``reasoning_field``: the message and
    delta field carrying a reply's ``reasoning`` text (DeepSeek's and vLLM's
    ``reasoning_content``, OpenRouter's ``reasoning``); OpenAI sends none (None).
    """

    repeat_tool_call_ids: bool = False
    omit_stream_usage: bool = False
    error_shape: Literal["openai", "detail", "string", "vllm"] = "openai"
    reasoning_field: str | None = None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _media_part(part: dict[str, Any]) -> ViewPart:
    """A ``file`` (``file_data`` a data URL) or ``input_audio`` part (issue 15, item 7)."""
    if part["type"] == "input_audio":
        audio = part.get("input_audio") or {}
        fmt = audio.get("format")
        return ViewPart(
            "audio", data=base64.b64decode(audio.get("data", "")), media_type=f"audio/{fmt}"
        )
    file = part.get("file") or {}
    head, _, data = str(file.get("file_data", "")).partition(";base64,")
    return ViewPart(
        "document",
        data=base64.b64decode(data),
        media_type=head[len("data:") :] or None,
        name=file.get("filename"),
    )


def _image_part(url: str) -> ViewPart:
    if url.startswith("data:") and ";base64," in url:
        head, _, data = url.partition(";base64,")
        return ViewPart("image", data=base64.b64decode(data), media_type=head[len("data:") :])
    return ViewPart("image", url=url)


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value) if value else {}
        except ValueError:
            return value
    return value


def strict_schema_problem(fmt: Any) -> str | None:
    """What OpenAI's strict structured outputs refuse in a ``response_format`` (its
    message), or None: every object must set ``additionalProperties: false`` and list
    every property in ``required``; open objects are refused."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or spec.get("strict") is not True:
        return None
    name = spec.get("name")
    schema = spec.get("schema")
    prefix = f"Invalid schema for response_format {name!r}: "
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return prefix + "schema must be a JSON Schema of 'type: \"object\"', got 'type: None'."

    def walk(node: Any, context: tuple[str, ...]) -> str | None:
        if isinstance(node, list):
            for item in node:
                found = walk(item, context)
                if found:
                    return found
            return None
        if not isinstance(node, dict):
            return None
        if node.get("type") == "object" or "properties" in node:
            where = f"In context={context!r}, "
            if node.get("additionalProperties") is not False:
                return where + "'additionalProperties' is required to be supplied and to be false."
            props = node.get("properties") or {}
            missing = [k for k in props if k not in (node.get("required") or ())]
            if missing:
                return (
                    where + "'required' is required to be supplied and to be an array "
                    f"including every key in properties. Missing {missing[0]!r}."
                )
        for key, value in node.items():
            if key in ("properties", "$defs") and isinstance(value, dict):
                for sub, inner in value.items():
                    found = walk(inner, (*context, key, sub))
                    if found:
                        return found
            elif isinstance(value, (dict, list)):
                found = walk(value, (*context, key))
                if found:
                    return found
        return None

    found = walk(schema, ())
    return prefix + found if found else None


def describe_chat_body(body: Any, *, model: str | None = None) -> RequestView:
    """A :class:`RequestView` of a Chat Completions request body (OpenAI and Azure)."""
    if not isinstance(body, dict):
        return RequestView(model, None, ())
    systems: list[str] = []
    turns: list[tuple[str, list[ViewPart]]] = []
    messages = body.get("messages")
    for m in messages if isinstance(messages, list) else ():
        if not isinstance(m, dict):
            continue
        role, content = m.get("role"), m.get("content")
        if role in ("system", "developer"):
            systems.append(_text_of(content))
        elif role == "tool":
            part = ViewPart("tool_result", text=_text_of(content), id=m.get("tool_call_id"))
            turns.append(("user", [part]))
        elif role in ("user", "assistant"):
            parts: list[ViewPart] = []
            if isinstance(content, str):
                if content or role == "user":
                    parts.append(ViewPart("text", text=content))
            elif isinstance(content, list):
                for p in content:
                    if not isinstance(p, dict):
                        continue
                    if p.get("type") == "text":
                        parts.append(ViewPart("text", text=str(p.get("text", ""))))
                    elif p.get("type") == "image_url":
                        image = p.get("image_url")
                        if isinstance(image, dict) and isinstance(image.get("url"), str):
                            parts.append(_image_part(image["url"]))
                    elif p.get("type") in ("file", "input_audio"):
                        parts.append(_media_part(p))
            for call in m.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    parts.append(
                        ViewPart(
                            "tool_call",
                            id=call.get("id"),
                            name=fn.get("name"),
                            arguments=_arguments(fn.get("arguments")),
                        )
                    )
            turns.append((role, parts))
    tools = tuple(
        t["function"]["name"]
        for t in body.get("tools") or ()
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    )
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        fn = choice.get("function")
        choice = fn.get("name") if isinstance(fn, dict) else None
    fmt = body.get("response_format")
    fmt = fmt if isinstance(fmt, dict) else {}
    schema = None
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        schema = fmt["json_schema"].get("schema")
    stop = body.get("stop")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return RequestView(
        model=body.get("model") if isinstance(body.get("model"), str) else model,
        system="\n\n".join(systems) if systems else None,
        turns=merge_turns(turns),
        stream=body.get("stream") is True,
        tools=tools,
        tool_choice=choice if isinstance(choice, str) else None,
        json_mode=fmt.get("type") == "json_object",
        json_schema=schema,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        temperature=body.get("temperature"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        reasoning=body.get("reasoning_effort"),
    )


class FakeOpenAIServer(OpenAIBatchFake, FakeServer):
    """A fake OpenAI API on 127.0.0.1 (see the module docstring for what it reproduces).

    ``base_url`` is ``http://127.0.0.1:PORT/v1``. Script answers with
    :meth:`enqueue` (:class:`Reply`, :class:`ErrorReply`, :class:`RawReply`,
    :class:`MidStreamError`, :class:`Stall`, :class:`Reset`, :class:`Blocked`); with an
    empty queue every chat request is answered with the text of its last user message.
    ``models`` are the ids ``GET /v1/models`` lists; ``quirks`` makes it behave like an
    OpenAI-compatible server that deviates from OpenAI (:class:`OpenAIQuirks`).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        models: Sequence[str] = DEFAULT_MODELS,
        quirks: OpenAIQuirks | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.models: list[str] = list(models)
        """The model ids ``GET /v1/models`` lists."""
        self.quirks = quirks or OpenAIQuirks()
        """How this server deviates from OpenAI's documented behaviour."""
        self.init_openai_batches()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what an OpenAI client's ``base_url`` is set to."""
        return f"{self.url}/v1"

    # -- routing and auth ----------------------------------------------------------------

    def route(self, method: str, path: str) -> Handler | None:
        """``POST /v1/chat/completions``, ``POST /v1/responses``,
        ``POST /v1/responses/input_tokens``, ``POST /v1/embeddings``, ``GET /v1/models``
        and ``GET /v1/models/{id}``."""
        if path == "/v1/chat/completions" and method == "POST":
            return self._chat
        if path == "/v1/responses" and method == "POST":
            return self._responses
        if path == "/v1/responses/input_tokens" and method == "POST":
            return self._input_tokens
        if path == "/v1/embeddings" and method == "POST":
            return self._embeddings
        if method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            return self._models
        return self.batch_route(method, path)

    def response_headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """``x-request-id``, ``openai-version`` and ``openai-processing-ms``, plus ``extra``."""
        headers = {
            "x-request-id": f"req_fake{self.next_id():012d}",
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
        }
        if extra:
            headers.update(extra)
        return headers

    def _headers(self, extra: Any = None) -> dict[str, str]:
        return self.response_headers(extra)

    def error_body(
        self,
        status: int,
        message: str,
        *,
        type: str | None = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> Any:
        """The JSON error body, in OpenAI's shape or the one ``quirks.error_shape`` names."""
        shape = self.quirks.error_shape
        if shape == "detail":
            return {"detail": message}
        if shape == "string":
            return {"error": message}
        if shape == "vllm":
            return {
                "object": "error",
                "message": message,
                "type": "BadRequestError",
                "code": status,
            }
        return {"error": {"message": message, "type": type, "param": param, "code": code}}

    async def error(
        self,
        request: web.BaseRequest,
        status: int,
        message: str,
        *,
        type: str | None = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Any = None,
    ) -> web.StreamResponse:
        """Send an OpenAI error body ``{"error": {message, type, param, code}}``."""
        body = self.error_body(status, message, type=type, code=code, param=param)
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

    async def check_chat_body(
        self, request: web.BaseRequest, body: Any
    ) -> web.StreamResponse | None:
        """OpenAI's 400 answers for a body that is not JSON or lacks model/messages."""
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
        problem = strict_schema_problem(body.get("response_format"))
        if problem is not None:
            return await self.error(request, 400, problem, param="response_format")
        if "reasoning_effort" in body and str(body["model"]).startswith(("gpt-4", "gpt-3")):
            return await self.error(
                request,
                400,
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                param="reasoning_effort",
                code="unsupported_parameter",
            )
        return None

    async def _chat(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        refused = await self.check_chat_body(request, recorded.json)
        if refused is not None:
            return refused
        return await self.answer_model_request(request, recorded)

    async def _embeddings(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        from llmx_openai.testing._embed import answer_embeddings

        return await answer_embeddings(self, request, recorded)

    async def _responses(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            return await self.check_chat_body(request, body)  # type: ignore[return-value]
        if not isinstance(body.get("model"), str):
            return await self.error(
                request, 400, "Missing required parameter: 'model'.", param="model"
            )
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            problem = strict_schema_problem({"type": "json_schema", "json_schema": fmt})
            if problem is not None:
                return await self.error(request, 400, problem, param="text.format.schema")
        foreign = foreign_reasoning(body)
        if foreign is not None:
            return await self.error(
                request,
                400,
                f"The encrypted content for item {foreign} could not be verified.",
                code="invalid_encrypted_content",
            )
        return await self.answer_model_request(request, recorded)

    async def _input_tokens(
        self, request: web.BaseRequest, recorded: RecordedRequest
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            return await self.check_chat_body(request, body)  # type: ignore[return-value]
        unknown = sorted(set(body) - TOKEN_COUNT_FIELDS)
        if unknown:
            return await self.error(
                request,
                400,
                f"Unknown parameter: '{unknown[0]}'.",
                param=unknown[0],
                code="unknown_parameter",
            )
        failure = self.next_failure()
        if failure is not None:
            return await self.answer(request, recorded, failure)
        tokens = approx_tokens(describe_responses_body(body).prompt_text())
        return await self.json_response(
            request,
            200,
            {"object": "response.input_tokens", "input_tokens": tokens},
            headers=self._headers(),
        )

    @staticmethod
    def is_responses(recorded: RecordedRequest | dict[str, Any]) -> bool:
        """Whether ``recorded`` went to the Responses API (``/responses``)."""
        return isinstance(recorded, RecordedRequest) and recorded.path.endswith("/responses")

    async def render(
        self, request: web.BaseRequest, body: dict[str, Any], reply: ReplyItem
    ) -> web.StreamResponse:
        """Answer a chat request (its parsed ``body``) with ``reply``."""
        recorded = RecordedRequest(
            method="POST",
            path=request.path,
            query={},
            headers={},
            body=json.dumps(body).encode(),
            json=body,
        )
        return await self.answer(request, recorded, reply)

    def describe(self, recorded: RecordedRequest) -> RequestView:
        """What a chat (or Responses) request asked for (see :class:`~llmx.testing.RequestView`)."""
        if self.is_responses(recorded):
            return describe_responses_body(recorded.json)
        return describe_chat_body(recorded.json)

    # -- rendering replies ---------------------------------------------------------------

    def reply_body(self, reply: Reply, recorded: RecordedRequest) -> dict[str, Any]:
        """The ``chat.completion`` (or ``response``) object (the base sends it, or streams
        :meth:`stream_events`)."""
        if self.is_responses(recorded):
            return response_object(reply, recorded.json, self.next_id())
        return self.completion(reply, recorded.json)

    def mid_stream_error_event(self, reply: MidStreamError, recorded: RecordedRequest) -> bytes:
        """A ``data: {"error": {...}}`` event, what ``openai-python``'s stream decoder checks
        (the Responses API's: an ``error`` event)."""
        if self.is_responses(recorded):
            return self.frame(mid_stream_error(reply, reply.after_events))
        error = dict(reply.error) if reply.error is not None else self._error_object(500)
        return self._event({"error": error}, "\n")

    async def render_blocked(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: Blocked
    ) -> web.StreamResponse:
        """HTTP 400 ``content_policy_violation``, OpenAI's refusal of a prompt.

        A server with non-OpenAI error bodies (``quirks.error_shape``) cannot name the
        reason in an error, so it answers like a guarded gateway: an empty answer with
        ``finish_reason: "content_filter"``.
        """
        if self.quirks.error_shape != "openai":
            return await self.render_reply(
                request, recorded, Reply("", finish_reason="content_filter")
            )
        message = reply.message or (
            "Your request was rejected as a result of our safety system. Your prompt may "
            "contain text that is not allowed by our safety system."
        )
        return await self.error(request, 400, message, code="content_policy_violation")

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

    async def render_error(
        self, request: web.BaseRequest, recorded: RecordedRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        """``{"error": {message, type, param, code}}`` with OpenAI's usual values."""
        error = self._error_object(reply.status)
        if reply.message is not None:
            error["message"] = reply.message
        if reply.type is not None:
            error["type"] = reply.type
        if reply.code is not None:
            error["code"] = reply.code
        if reply.param is not None:
            error["param"] = reply.param
        body = self.error_body(
            reply.status,
            error["message"],
            type=error["type"],
            code=error["code"],
            param=error["param"],
        )
        return await self.json_response(
            request, reply.status, body, headers=self._headers(reply.headers)
        )

    async def _render_error(
        self, request: web.BaseRequest, reply: ErrorReply
    ) -> web.StreamResponse:
        recorded = RecordedRequest("POST", request.path, {}, {}, b"", None)
        return await self.answer(request, recorded, reply)

    def error_for(self, kind: ErrorKind, *, retry_after: float | None = None) -> ErrorReply:
        """OpenAI's documented answer for a failure of ``kind``.

        Rate limits carry ``retry-after`` (seconds) when ``retry_after`` is given; a
        502 is Cloudflare's HTML page, as api.openai.com's edge sends it.
        """
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        if kind == "authentication":
            return ErrorReply(
                401,
                message="Incorrect API key provided: sk-proj-********wxyz. You can find your API key at https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        if kind == "permission":
            return ErrorReply(
                403,
                message="Project `proj_abc` does not have access to model `gpt-4o`",
                code="model_not_found",
            )
        if kind == "model_not_found":
            return ErrorReply(
                404,
                message="The model `gpt-9` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if kind == "bad_request":
            return ErrorReply(
                400,
                message="Invalid value for 'temperature': must be between 0 and 2.",
                param="temperature",
                code="invalid_value",
            )
        if kind == "context_length":
            return ErrorReply(
                400,
                message="This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.",
                param="messages",
                code="context_length_exceeded",
            )
        if kind == "rate_limit":
            return ErrorReply(429, headers=headers)
        if kind == "bad_gateway":
            return ErrorReply(502, body=_CLOUDFLARE_502, headers=headers)
        status = {"server": 500, "unavailable": 503, "overloaded": 529, "timeout": 504}[kind]
        return ErrorReply(status, headers=headers)

    # -- rendering a Reply ---------------------------------------------------------------

    def _usage(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        prompt, completion = reply.token_usage(describe_chat_body(body).prompt_text())
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
        """The ``chat.completion`` object answering ``body`` with ``reply`` (``n``
        choices, ``logprobs`` and ``refusal`` as the request and the reply say)."""
        n = body.get("n")
        count = n if type(n) is int and n > 1 else 1
        choices = [self._choice(reply, body, i) for i in range(count)]
        payload: dict[str, Any] = {
            "id": reply.id or f"chatcmpl-fake{self.next_id():06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or self._model_of(body),
            "choices": choices,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if not reply.omit_usage:
            payload["usage"] = self._usage(reply, body)
        self.decorate_completion(payload)
        return payload

    @staticmethod
    def _logprobs_of(reply: Reply, body: dict[str, Any], text: str) -> dict[str, Any] | None:
        if body.get("logprobs") is not True:
            return None
        top = body.get("top_logprobs")
        tokens = reply.token_logprobs(text, top if type(top) is int else 0)
        if reply.refusal is not None:
            return {"content": None, "refusal": tokens}
        return {"content": tokens, "refusal": None}

    def _choice(self, reply: Reply, body: dict[str, Any], index: int) -> dict[str, Any]:
        """Choice ``index`` of an answer (0: the reply's text; others: ``reply.choices``)."""
        text = reply.text
        if index and index <= len(reply.choices):
            text = reply.choices[index - 1]
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if (text or not reply.tool_calls) else None,
            "refusal": reply.refusal,
            "annotations": [],
        }
        if reply.refusal is not None:
            message["content"] = None
        field = self.quirks.reasoning_field
        if field is not None and reply.reasoning:
            message[field] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in reply.tool_calls
            ]
        return {
            "index": index,
            "message": message,
            "logprobs": self._logprobs_of(reply, body, reply.refusal or text),
            "finish_reason": reply.derived_finish_reason,
        }

    def _model_of(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        return model if isinstance(model, str) else "gpt-4o-mini"

    def decorate_completion(self, payload: dict[str, Any]) -> None:
        """Add provider-specific fields to a ``chat.completion`` (Azure's filter results)."""

    def decorate_chunk(self, chunk: dict[str, Any]) -> None:
        """Add provider-specific fields to a ``chat.completion.chunk``."""

    def leading_events(self, base: dict[str, Any], le: str) -> list[bytes]:
        """Events a stream starts with before the role chunk (Azure's prompt filter)."""
        return []

    @staticmethod
    def _event(obj: Any, le: str) -> bytes:
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        return f"data: {data}{le}{le}".encode()

    def stream_events(
        self, reply: Reply, recorded: RecordedRequest | dict[str, Any]
    ) -> list[bytes]:
        """The SSE events of ``reply`` as a stream answering ``recorded`` (or its JSON body)."""
        if self.is_responses(recorded):
            assert isinstance(recorded, RecordedRequest)
            return self.frame_events(
                response_events(reply, recorded.json, self.next_id()), reply.line_ending
            )
        body = recorded.json if isinstance(recorded, RecordedRequest) else recorded
        le = reply.line_ending
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        quirks = self.quirks
        base: dict[str, Any] = {
            "id": reply.id or f"chatcmpl-fake{self.next_id():06d}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": reply.model or self._model_of(body),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if include_usage and not quirks.omit_stream_usage:
            base["usage"] = None

        def chunk(
            delta: dict[str, Any], finish: str | None = None, logprobs: Any = None, index: int = 0
        ) -> bytes:
            choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            obj = {**base, "choices": [choice]}
            self.decorate_chunk(obj)
            return self._event(obj, le)

        def answer(index: int) -> list[bytes]:
            """Answer ``index``'s events (0: the reply's text; others: ``reply.choices``)."""
            text = reply.text
            if index and index <= len(reply.choices):
                text = reply.choices[index - 1]
            out = [chunk({"role": "assistant", "content": "", "refusal": None}, index=index)]
            if quirks.reasoning_field is not None:
                out.extend(
                    chunk({"content": None, quirks.reasoning_field: piece}, index=index)
                    for piece in reply.reasoning_pieces()
                )
            if reply.refusal is not None:
                pieces = Reply(reply.refusal, chunk_size=reply.chunk_size).text_pieces()
                out.extend(
                    chunk(
                        {"content": None, "refusal": piece},
                        None,
                        self._logprobs_of(reply, body, piece),
                        index,
                    )
                    for piece in pieces
                )
            else:
                source = Reply(text, chunk_size=reply.chunk_size) if index else reply
                out.extend(
                    chunk({"content": piece}, None, self._logprobs_of(reply, body, piece), index)
                    for piece in source.text_pieces()
                )
            repeat = reply.repeat_tool_call_ids or quirks.repeat_tool_call_ids
            for number, call in enumerate(reply.tool_calls):
                head = {
                    "index": number,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                out.append(chunk({"tool_calls": [head]}, index=index))
                for piece in reply.argument_pieces(call.arguments):
                    if repeat:
                        tc = {
                            "index": number,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": piece},
                        }
                    else:
                        tc = {"index": number, "function": {"arguments": piece}}
                    out.append(chunk({"tool_calls": [tc]}, index=index))
            out.append(chunk({}, reply.derived_finish_reason, index=index))
            return out

        events = self.leading_events(base, le)
        n = body.get("n")
        # n > 1: the answers' events interleaved, one of each in turn, as OpenAI sends them
        answers = [answer(i) for i in range(n if type(n) is int and n > 1 else 1)]
        for step in range(max(len(a) for a in answers)):
            events.extend(a[step] for a in answers if step < len(a))
        if include_usage and not reply.omit_usage and not quirks.omit_stream_usage:
            events.append(
                self._event({**base, "choices": [], "usage": self._usage(reply, body)}, le)
            )
        if reply.end_after is not None:
            return events[: reply.end_after]
        if not reply.omit_done:
            events.append(f"data: [DONE]{le}{le}".encode())
        return events

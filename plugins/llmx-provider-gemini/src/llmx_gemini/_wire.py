"""Gemini ``generateContent`` wire format: request bodies, responses, errors.

Pure functions over llmx's value types and parsed JSON, shared by ``complete`` and
``stream``. Reference: the Gemini API reference (``GenerateContentRequest``,
``GenerateContentResponse``, ``Schema``, errors) and its discovery document.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Mapping
from typing import Any

from llmx import (
    Audio,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    Document,
    Image,
    MalformedResponseError,
    Message,
    ProviderError,
    Reasoning,
    Request,
    Response,
    Text,
    ToolCall,
    ToolResult,
    UnsupportedFeatureError,
    Usage,
)
from llmx.http import (
    ErrorInfo,
    describe_error,
    error_from_payload,
    inline_image,
    json_object,
    refuse_choices,
    split_system,
    token_count,
    unexpected,
)
from llmx.plugin import reasoning_budget, reasoning_effort, reasoning_off
from llmx.types import Choice, FinishReason, TokenLogprob

__all__ = [
    "PROTOCOL",
    "build_body",
    "describe",
    "error_from_object",
    "parse_logprobs",
    "parse_response",
    "to_gemini_schema",
]

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
"""The image media types Gemini accepts."""

PROTOCOL = "gemini"
"""The ``protocol`` of the :class:`llmx.Reasoning` parts this provider makes and sends back."""

SKIP_SIGNATURE = "skip_thought_signature_validator"
"""The stand-in ``thoughtSignature`` Google documents for a function call Gemini did not
make (another vendor's, or written by hand): Gemini 3 refuses a call of the current
turn without a signature."""

_LEVELS = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
}


def uses_levels(model: str) -> bool:
    """Whether ``model`` takes ``thinkingLevel`` (Gemini 3 and later) rather than a budget,
    and requires thought signatures on the function calls of the current turn."""
    name = model.removeprefix("models/")
    return name.startswith("gemini-") and name[7:8].isdigit() and int(name[7:8]) >= 3


SYNTHETIC_ID = "gemini-call-"
"""Prefix of the tool-call ids llmx makes up when the API sends none."""

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
    "MALFORMED_RESPONSE": "error",
    "IMAGE_OTHER": "other",
    "NO_IMAGE": "other",
    "ESCALATION": "other",
    "OTHER": "other",
}
"""Every ``Candidate.finishReason`` of Gemini's discovery document as llmx's (but
``FINISH_REASON_UNSPECIFIED``: no reason yet); tests/test_stop_reasons.py checks that
none is missing. The safety, recitation, blocklist and language flags are
``content_filter``; an invalid tool call or response the model made is ``error``."""

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def map_finish_reason(value: Any, has_calls: bool) -> FinishReason | None:
    """Gemini's ``finishReason`` as llmx's (``STOP`` with function calls is ``tool_calls``)."""
    if value is None or value == "FINISH_REASON_UNSPECIFIED":
        return None
    if value == "STOP" and has_calls:
        return "tool_calls"
    return _FINISH.get(value, "other") if isinstance(value, str) else "other"


# -- JSON Schema -> Gemini Schema ------------------------------------------------------------


class NotExpressible(ValueError):
    """A JSON Schema that Gemini's OpenAPI-subset ``Schema`` cannot express."""


_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
    "null": "NULL",
}
_PASS = ("description", "title", "format", "minimum", "maximum", "pattern")
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_IGNORED = frozenset({"$schema", "$defs", "additionalProperties", "default", "examples"})
_PASS_SET = frozenset(("description", "title"))


def to_gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema as Gemini's ``Schema`` (upper-case types, ``nullable``, ``propertyOrdering``).

    ``$ref`` into ``$defs`` is inlined and ``anyOf [X, {"type": "null"}]`` becomes X
    with ``nullable``. Raises :class:`NotExpressible` for what ``Schema`` lacks (a
    recursive ``$ref``, another ``anyOf``, ``allOf``,
    ``oneOf``, ``const`` on non-strings, open ``additionalProperties``...); the caller
    then sends the JSON Schema as is (``responseJsonSchema`` / ``parametersJsonSchema``).
    """
    defs = schema.get("$defs")
    return _to_schema(schema, defs if isinstance(defs, Mapping) else {}, ())


def _to_schema(
    schema: Mapping[str, Any], defs: Mapping[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref[len("#/$defs/") :]
        if name in seen or name not in defs:
            msg = "recursive $ref"
            raise NotExpressible(msg)
        return _to_schema(defs[name], defs, (*seen, name))  # inlined
    if "anyOf" in schema:
        # ``X | None`` (anyOf [X, {"type": "null"}]) is X with ``nullable``.
        branches = [b for b in schema["anyOf"] if b != {"type": "null"}]
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if len(branches) != 1 or len(branches) == len(schema["anyOf"]) or set(rest) - _PASS_SET:
            msg = "anyOf"
            raise NotExpressible(msg)
        inner = _to_schema(branches[0], defs, seen)
        inner["nullable"] = True
        inner.update(rest)
        return inner
    out: dict[str, Any] = {}
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    nullable = "null" in kinds
    kinds = [k for k in kinds if k != "null"]
    if len(kinds) != 1 or kinds[0] not in _TYPES:
        msg = f"type {kind!r}"
        raise NotExpressible(msg)
    out["type"] = _TYPES[kinds[0]]
    if nullable:
        out["nullable"] = True
    for key, value in schema.items():
        if key in ("type", "properties", "required", "items", "enum", "const") or key in _IGNORED:
            continue
        if key in _PASS:
            out[key] = value
        elif key in _COUNTS:
            out[key] = str(value)
        else:
            raise NotExpressible(str(key))
    extra = schema.get("additionalProperties")
    if extra not in (None, False):
        msg = "additionalProperties"
        raise NotExpressible(msg)
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not all(isinstance(v, str) for v in values):
            msg = "non-string enum"
            raise NotExpressible(msg)
        out["enum"] = list(values)
    if kinds[0] == "object":
        props = schema.get("properties") or {}
        out["properties"] = {k: _to_schema(v, defs, seen) for k, v in props.items()}
        if props:
            out["propertyOrdering"] = list(props)
        if schema.get("required"):
            out["required"] = list(schema["required"])
    if kinds[0] == "array" and "items" in schema:
        out["items"] = _to_schema(schema["items"], defs, seen)
    return out


# -- request -----------------------------------------------------------------------------


def _image_part(image: Image, provider: str, model: str) -> dict[str, Any]:
    if image.url is not None and not image.url.startswith("data:"):
        media_type = image.media_type or mimetypes.guess_type(image.url)[0]
        file: dict[str, Any] = {"fileUri": image.url}
        if media_type:
            file["mimeType"] = media_type
        return {"fileData": file}
    media_type, data = inline_image(
        image, IMAGE_TYPES, api="Gemini", provider=provider, model=model
    )
    return {"inlineData": {"mimeType": media_type, "data": data}}


# -- documents and audio (issue 15, item 7) -------------------------------------------


def _media_part(part: Document | Audio) -> dict[str, Any]:
    """A document or a recording as ``inlineData`` with its media type (the bytes as
    base64), or a document by URL as ``fileData`` with its ``fileUri``."""
    if type(part) is Document and part.url is not None:
        return {"fileData": {"mimeType": part.media_type, "fileUri": part.url}}
    data = part.base64_data() if type(part) is Audio else part.data_url().partition(",")[2]
    return {"inlineData": {"mimeType": part.media_type, "data": data}}


def _args(call: ToolCall, provider: str) -> Any:
    try:
        value = json.loads(call.arguments) if call.arguments else {}
    except ValueError as err:
        msg = f"tool call {call.id!r} has arguments that are not JSON: {call.arguments[:80]!r}"
        raise BadRequestError(msg, provider=provider) from err
    if not isinstance(value, dict):
        msg = f"tool call {call.id!r} has arguments that are not a JSON object"
        raise BadRequestError(msg, provider=provider)
    return value


def _result_object(result: ToolResult) -> dict[str, Any]:
    """A tool result as the object ``functionResponse.response`` must be.

    A JSON object is sent as is; other content as ``{"output": ...}`` (``{"error":
    ...}`` for a failed call), the keys Gemini's documentation names.
    """
    try:
        value = json.loads(result.content)
    except ValueError:
        value = result.content
    if isinstance(value, dict) and not result.is_error:
        return value
    return {
        "error" if result.is_error else "output": value
        if isinstance(value, dict)
        else result.content
    }


def _parts(
    message: Message, names: Mapping[str, str], provider: str, model: str
) -> list[dict[str, Any]]:
    """The parts of one message, Gemini's reasoning state put back where Gemini had it:
    thought parts first, and each signature of a non-thought part on the function call
    it came with (Gemini signs the first call of a step), else on the last text part."""
    out: list[dict[str, Any]] = []
    signatures: list[str] = []
    for part in message.content:
        if type(part) is Reasoning:
            if part.protocol != PROTOCOL or message.role != "assistant":
                continue  # another vendor's state: never sent
            if part.text:
                thought: dict[str, Any] = {"text": part.text, "thought": True}
                if part.signature is not None:
                    thought["thoughtSignature"] = part.signature
                out.append(thought)
            elif part.signature is not None:
                signatures.append(part.signature)
        else:
            wire = _plain_part(part, names, provider, model)
            if wire is not None:
                out.append(wire)
    if signatures:
        _sign(out, signatures)
    return out


def _sign(parts: list[dict[str, Any]], signatures: list[str]) -> None:
    pending = iter(signatures)
    for part in parts:
        if "functionCall" in part and "thoughtSignature" not in part:
            signature = next(pending, None)
            if signature is None:
                return
            part["thoughtSignature"] = signature
    rest = list(pending)
    texts = [p for p in parts if "text" in p and not p.get("thought")]
    if rest and texts and "thoughtSignature" not in texts[-1]:
        texts[-1]["thoughtSignature"] = rest.pop(0)
    parts.extend({"text": "", "thoughtSignature": signature} for signature in rest)


def _plain_part(
    part: Any, names: Mapping[str, str], provider: str, model: str
) -> dict[str, Any] | None:
    """One part of a message as Gemini's (None: nothing to send, e.g. empty text)."""
    if type(part) is Text:
        return {"text": part.text} if part.text else None
    if type(part) is Image:
        return _image_part(part, provider, model)
    if type(part) is Document or type(part) is Audio:
        return _media_part(part)
    if type(part) is ToolCall:
        call: dict[str, Any] = {"name": part.name, "args": _args(part, provider)}
        if not part.id.startswith(SYNTHETIC_ID):
            call["id"] = part.id
        return {"functionCall": call}
    if type(part) is ToolResult:
        name = names.get(part.tool_call_id) or part.name
        if not name:
            msg = (
                f"the tool result for {part.tool_call_id!r} answers no tool call of the "
                "conversation; Gemini needs the function's name: include the assistant "
                "message with the call, or give ToolResult(name=...)"
            )
            raise BadRequestError(msg, provider=provider, model=model)
        response: dict[str, Any] = {"name": name, "response": _result_object(part)}
        if not part.tool_call_id.startswith(SYNTHETIC_ID):
            response["id"] = part.tool_call_id
        return {"functionResponse": response}
    return None


def _contents(request: Request, provider: str) -> tuple[str | None, list[dict[str, Any]]]:
    names = {p.id: p.name for m in request.messages for p in m.content if type(p) is ToolCall}
    system, messages = split_system(request, api="Gemini", provider=provider)
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message, names, provider, request.model)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _sign_current_turn(contents: list[dict[str, Any]]) -> None:
    """Give the first function call of each model step of the current turn (after the
    last user prompt) the documented stand-in signature when it has none of Gemini's."""
    start = 0
    for i, content in enumerate(contents):
        if content["role"] == "user" and any("functionResponse" not in p for p in content["parts"]):
            start = i + 1
    for content in contents[start:]:
        if content["role"] != "model":
            continue
        for part in content["parts"]:
            if "functionCall" in part:
                part.setdefault("thoughtSignature", SKIP_SIGNATURE)
                break


def _thinking_config(request: Request) -> dict[str, Any]:
    """``generationConfig.thinkingConfig`` for ``request.reasoning`` (docs/features/reasoning.md):
    Gemini 3 a ``thinkingLevel`` ("none" is its lowest, ``MINIMAL``: it cannot stop
    thinking), earlier models a ``thinkingBudget`` (0 turns thinking off; 2.5 Pro cannot,
    and gets its minimum, 128); thoughts included unless reasoning is off."""
    value = request.reasoning
    config: dict[str, Any] = {}
    if uses_levels(request.model):
        config["thinkingLevel"] = _LEVELS[reasoning_effort(value) or "medium"]
    else:
        budget = reasoning_budget(value) or 0
        if budget == 0 and "-pro" in request.model:
            budget = 128
        config["thinkingBudget"] = budget
    if not reasoning_off(value):
        config["includeThoughts"] = True
    return config


def _declaration(tool: Any) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
    params = dict(tool.parameters)
    if params.get("properties") or params.get("type") != "object":
        try:
            declaration["parameters"] = to_gemini_schema(params)
        except NotExpressible:
            declaration["parametersJsonSchema"] = params
    return declaration


def build_body(
    request: Request, *, provider: str, safety_settings: Mapping[str, str]
) -> dict[str, Any]:
    """The JSON body of a ``generateContent`` request (None fields omitted, ``extra`` last)."""
    # n > 1 is candidateCount, logprobs responseLogprobs: both taken, whole and streamed.
    refuse_choices(request, api="Gemini", provider=provider, n=True, logprobs=True)
    system, contents = _contents(request, provider)
    if not contents:
        msg = "Gemini needs at least one user or assistant message with content"
        raise BadRequestError(msg, provider=provider, model=request.model)
    if uses_levels(request.model):
        _sign_current_turn(contents)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    choice = request.tool_choice
    if choice is not None:
        config: dict[str, Any] = {
            "mode": {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[choice.mode]
        }
        if choice.mode == "tool":
            config["allowedFunctionNames"] = [choice.name]
        body["toolConfig"] = {"functionCallingConfig": config}
    if safety_settings:
        body["safetySettings"] = [
            {"category": category, "threshold": threshold}
            for category, threshold in safety_settings.items()
        ]
    generation: dict[str, Any] = {}
    if request.temperature is not None:
        generation["temperature"] = request.temperature
    if request.top_p is not None:
        generation["topP"] = request.top_p
    if request.max_tokens is not None:
        generation["maxOutputTokens"] = request.max_tokens
    if request.stop:
        generation["stopSequences"] = list(request.stop)
    if request.seed is not None:
        generation["seed"] = request.seed
    if request.n is not None:
        generation["candidateCount"] = request.n
    if request.logprobs or request.top_logprobs is not None:
        generation["responseLogprobs"] = True
        if request.top_logprobs is not None:
            generation["logprobs"] = request.top_logprobs
    if request.reasoning is not None:
        generation["thinkingConfig"] = _thinking_config(request)
    fmt = request.response_format
    if fmt.type in ("json", "json_schema"):
        generation["responseMimeType"] = "application/json"
    if fmt.type == "json_schema":
        schema = dict(fmt.schema or {})
        try:
            generation["responseSchema"] = to_gemini_schema(schema)
        except NotExpressible:
            generation["responseJsonSchema"] = schema
    if generation:
        body["generationConfig"] = generation
    if request.extra:
        body.update(request.extra)
        if "cachedContent" in body:
            _check_cached_content(body, request, provider)
    return body


_CACHED_FIELDS = (
    ("systemInstruction", "a system prompt"),
    ("tools", "tools"),
    ("toolConfig", "a tool choice"),
)


def _check_cached_content(body: dict[str, Any], request: Request, provider: str) -> None:
    """An explicit cache (``extra={"cachedContent": ...}``) holds the system instruction
    and tools: a request naming one sends neither (Gemini refuses the request with 400).
    Refused before sending, saying where they go."""
    for field, what in _CACHED_FIELDS:
        if field in body:
            msg = (
                f"{provider}/{request.model}: a request naming a Gemini cachedContent cannot "
                f"also send {what}; put it in the cached content when creating the cache "
                "(docs/features/prompt-caching.md)"
            )
            raise UnsupportedFeatureError(
                msg, provider=provider, model=request.model, feature="cached_content"
            )


# -- responses ---------------------------------------------------------------------------


def parse_usage(usage: Any, provider: str, model: str | None) -> Usage | None:
    """``usageMetadata`` as llmx's Usage: output includes thoughts, input the cache."""
    if usage is None:
        return None
    if type(usage) is not dict:
        msg = f"usageMetadata is {type(usage).__name__}, not an object"
        raise unexpected(msg, provider=provider, model=model)
    thoughts = token_count(
        usage, "thoughtsTokenCount", provider=provider, model=model, where="usageMetadata"
    )
    return Usage(
        token_count(
            usage, "promptTokenCount", provider=provider, model=model, where="usageMetadata"
        )
        + token_count(
            usage, "toolUsePromptTokenCount", provider=provider, model=model, where="usageMetadata"
        ),
        token_count(
            usage, "candidatesTokenCount", provider=provider, model=model, where="usageMetadata"
        )
        + thoughts,
        token_count(
            usage, "cachedContentTokenCount", provider=provider, model=model, where="usageMetadata"
        ),
        0,
        thoughts,
    )


def blocked_error(feedback: Mapping[str, Any], provider: str, model: str) -> ContentFilterError:
    """The error for a prompt Gemini blocked (``promptFeedback.blockReason``)."""
    reason = str(feedback.get("blockReason"))
    msg = f"Gemini blocked the prompt (blockReason {reason}); rephrase it or adjust safety_settings"
    return ContentFilterError(msg, provider=provider, model=model, status=200, code=reason)


class Thinking:
    """A chunk's reasoning state: thought texts, a thought part's signature, and the
    signatures of its other parts in order."""

    __slots__ = ("signatures", "thought_signature", "thoughts")

    def __init__(self) -> None:
        self.thoughts: list[str] = []
        self.thought_signature: str | None = None
        self.signatures: list[str] = []


class Chunk:
    """What one ``GenerateContentResponse`` contributes: text, calls, finish, usage."""

    __slots__ = (
        "calls",
        "finish",
        "id",
        "logprobs",
        "model",
        "texts",
        "thinking",
        "usage",
    )

    # ``usage`` is the raw ``usageMetadata`` (parse it with :func:`parse_usage`): a stream
    # repeats it in every chunk and only the last one counts (bench: 50-chunk stream).

    def __init__(self, obj: Any, provider: str, model: str, first_call: int) -> None:
        if type(obj) is not dict:
            msg = f"expected a JSON object, got {type(obj).__name__}"
            raise unexpected(msg, provider=provider, model=model)
        if obj.get("error"):
            raise error_from_object(obj["error"], provider, model)
        feedback = obj.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            raise blocked_error(feedback, provider, model)
        self.texts: list[str] = []
        self.calls: list[ToolCall] = []
        self.thinking: Thinking | None = None  # made when a part has thoughts or a signature
        self.finish: Any = None
        self.logprobs: Any = None  # candidate 0's raw logprobsResult (parse_logprobs)
        self.usage = obj.get("usageMetadata")
        self.id = obj.get("responseId")
        self.model = obj.get("modelVersion")
        candidates = obj.get("candidates")
        if candidates is None:
            return
        if type(candidates) is not list or not candidates or type(candidates[0]) is not dict:
            msg = "candidates is not a list of objects"
            raise unexpected(msg, provider=provider, model=model)
        candidate = candidates[0]
        self.finish = candidate.get("finishReason")
        self.logprobs = candidate.get("logprobsResult")
        content = candidate.get("content") or {}
        parts = content.get("parts") if type(content) is dict else None
        if parts is None:
            return
        if type(parts) is not list:
            msg = "content.parts is not a list"
            raise unexpected(msg, provider=provider, model=model)
        for part in parts:
            if type(part) is not dict:
                msg = "a part is not an object"
                raise unexpected(msg, provider=provider, model=model)
            if len(part) > 1:  # a thought, or a part with a signature (plain text: 1 key)
                signature = part.get("thoughtSignature")
                if part.get("thought") is True:
                    thinking = self.thinking = self.thinking or Thinking()
                    thought = part.get("text")
                    if isinstance(thought, str) and thought:
                        thinking.thoughts.append(thought)
                    if isinstance(signature, str) and signature:
                        thinking.thought_signature = signature
                    continue
                if isinstance(signature, str) and signature:
                    thinking = self.thinking = self.thinking or Thinking()
                    thinking.signatures.append(signature)
            text = part.get("text")
            if isinstance(text, str):
                self.texts.append(text)
            call = part.get("functionCall")
            if isinstance(call, dict):
                name = call.get("name")
                if not isinstance(name, str):
                    msg = "functionCall has no name"
                    raise unexpected(msg, provider=provider, model=model)
                call_id = call.get("id")
                if not isinstance(call_id, str) or not call_id:
                    call_id = f"{SYNTHETIC_ID}{first_call + len(self.calls)}"
                self.calls.append(ToolCall(call_id, name, _dumps(call.get("args") or {})))


def _logprob(entry: Any, top: tuple[TokenLogprob, ...] = ()) -> TokenLogprob:
    token, logprob = entry.get("token"), entry.get("logProbability")
    if type(token) is not str or type(logprob) not in (float, int):
        raise TypeError(entry)
    return TokenLogprob(token, float(logprob), None, top)


def parse_logprobs(result: Any, provider: str, model: str | None) -> tuple[TokenLogprob, ...]:
    """A candidate's ``logprobsResult`` as llmx's tokens: ``chosenCandidates`` in order,
    each with the ``topCandidates`` of its step (Gemini sends no token bytes). An absent
    result (a chunk without text) is no tokens."""
    if result is None:
        return ()
    try:
        chosen = result.get("chosenCandidates") or ()
        steps = result.get("topCandidates") or ()
        out = []
        for i, entry in enumerate(chosen):
            step = steps[i] if i < len(steps) else None
            alternatives = (step.get("candidates") or ()) if step is not None else ()
            out.append(_logprob(entry, tuple(_logprob(a) for a in alternatives)))
        return tuple(out)
    except (AttributeError, TypeError) as err:
        msg = f"unexpected logprobsResult in the answer: {result!r:.200}"
        raise unexpected(msg, provider=provider, model=model) from err


def _reasoning_of(thinking: Thinking) -> tuple[Reasoning, ...]:
    """The thoughts (one part), then one signature-only part per signature, in order."""
    parts = []
    if thinking.thoughts or thinking.thought_signature:
        text = "".join(thinking.thoughts)
        parts.append(Reasoning(text, signature=thinking.thought_signature, protocol=PROTOCOL))
    parts.extend(Reasoning(signature=s, protocol=PROTOCOL) for s in thinking.signatures)
    return tuple(parts)


def parse_response(data: bytes, request: Request, provider: str) -> Response:
    """A ``GenerateContentResponse`` body as a Response (``raw`` kept if asked)."""
    model = request.model
    obj = json_object(data, provider=provider, model=model)
    chunk = Chunk(obj, provider, model, 0)
    if chunk.finish is None and not chunk.texts and not chunk.calls:
        msg = "no candidate in the answer"
        raise unexpected(msg, provider=provider, model=model)
    reasoning = () if chunk.thinking is None else _reasoning_of(chunk.thinking)
    finish = map_finish_reason(chunk.finish, bool(chunk.calls))
    text = "".join(chunk.texts)
    choices: tuple[Choice, ...] = ()
    logprobs = request.logprobs or request.top_logprobs is not None
    if request.n is not None:
        choices = _choices(obj, provider, model, logprobs)
    elif logprobs:
        tokens = parse_logprobs(chunk.logprobs, provider, model)
        choices = (Choice(0, text, tuple(chunk.calls), finish, None, tokens),)
    return Response(
        text=text,
        model=chunk.model if isinstance(chunk.model, str) and chunk.model else model,
        provider=provider,
        tool_calls=tuple(chunk.calls),
        finish_reason=finish,
        usage=parse_usage(chunk.usage, provider, model) or Usage(),
        id=chunk.id if isinstance(chunk.id, str) else None,
        raw=obj if request.include_raw else None,
        reasoning=reasoning,
        choices=choices,
    )


def _choices(obj: dict[str, Any], provider: str, model: str, logprobs: bool) -> tuple[Choice, ...]:
    """Every candidate of an answer to ``candidateCount`` (``Request.n``), by ``index``,
    with its logprobs when asked; candidate 0 is also the Response's own text (issue 15,
    item 7)."""
    candidates = obj.get("candidates")
    if type(candidates) is not list:
        return ()
    out = []
    for position, candidate in enumerate(candidates):
        if type(candidate) is not dict:
            msg = "candidates is not a list of objects"
            raise unexpected(msg, provider=provider, model=model)
        one = Chunk({"candidates": [candidate]}, provider, model, 0)
        index = candidate.get("index", position)
        out.append(
            Choice(
                index if type(index) is int else position,
                "".join(one.texts),
                tuple(one.calls),
                map_finish_reason(one.finish, bool(one.calls)),
                None,
                parse_logprobs(one.logprobs, provider, model) if logprobs else None,
            )
        )
    out.sort(key=lambda c: c.index)
    return tuple(out)


# -- errors ------------------------------------------------------------------------------

_DELAY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")


def _details(error: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """(ErrorInfo reason, RetryInfo delay in seconds) from ``error.details``."""
    reason = delay = None
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo") and isinstance(detail.get("reason"), str):
            reason = detail["reason"]
        elif kind.endswith("google.rpc.RetryInfo"):
            match = _DELAY.match(str(detail.get("retryDelay", "")))
            if match:
                delay = float(match.group(1))
    return reason, delay


def describe(body: Any) -> ErrorInfo:
    """What a Google error body says: ``{"error": {"code", "message", "status", "details"}}``.

    A stream requested without ``alt=sse`` answers with a JSON array holding it. The
    ``google.rpc.ErrorInfo`` reason is the code (``API_KEY_INVALID`` makes the error an
    AuthenticationError although Gemini sends 400) and the ``google.rpc.RetryInfo``
    ``retryDelay`` the wait when no ``Retry-After`` header says it.
    """
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return describe_error(body)
    reason, delay = _details(error)
    message, status = error.get("message"), error.get("status")
    return ErrorInfo(
        message if isinstance(message, str) and message else None,
        reason,
        status if isinstance(status, str) else None,
        retry_after=delay,
        error_class=AuthenticationError if reason == "API_KEY_INVALID" else None,
    )


def error_from_object(
    error: Any, provider: str, model: str | None, secret: str | None = None
) -> ProviderError:
    """The llmx error for an ``{"error": {...}}`` object inside a 200 answer or a stream."""
    if not isinstance(error, dict):
        return MalformedResponseError(
            f"the Gemini API reported an error: {str(error)[:200]}", provider=provider, model=model
        )
    return error_from_payload(
        error,
        provider=provider,
        model=model,
        secret=secret,
        describe=describe,
        default=MalformedResponseError,
    )

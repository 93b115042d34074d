"""Immutable value types: messages, requests, responses, stream chunks and model infos.

Everything here is an ``attrs`` frozen, slotted class so values are cheap, hashable
where their fields are, and safe to share between tasks. Conversion to and from JSON
lives in :mod:`llmx._convert` (cattrs), imported only when needed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, Literal, TypeVar

import attrs

_T = TypeVar("_T")
Role = Literal["system", "user", "assistant", "tool"]
"""Who wrote a message."""

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other", "pause"]
"""Why the model stopped: a provider's own reason is mapped onto one of these
(docs/features/choices-logprobs-and-stop-reasons.md has the table per vendor).

``content_filter`` covers refusals too (the model's own, with its message in
:attr:`Response.refusal`, and the vendor's filters); ``pause`` is a turn the vendor
paused (Anthropic's ``pause_turn``): append :attr:`Response.message` and send again to
let it continue."""


class Capability(str, Enum):
    """What a model can do, as listed in :attr:`ModelInfo.capabilities`."""

    STREAMING = "streaming"
    TOOLS = "tools"
    VISION = "vision"
    JSON_MODE = "json_mode"
    JSON_SCHEMA = "json_schema"
    SYSTEM_PROMPT = "system_prompt"
    PROMPT_CACHING = "prompt_caching"
    EMBEDDINGS = "embeddings"
    REASONING = "reasoning"
    DOCUMENTS = "documents"
    AUDIO = "audio"


# -- prompt caching --------------------------------------------------------------------


@attrs.frozen
class CacheControl:
    """A prompt-cache breakpoint: the vendor may cache the prompt up to and including
    the marked text, message, system prompt or tool list, for ``ttl`` (``"5m"`` or
    ``"1h"``).

    Pass ``cache=True`` (the default TTL) or ``cache=CacheControl(ttl="1h")`` to
    :class:`Text`, :class:`Message` or :class:`Tool`. Anthropic caches only at such
    breakpoints (at most four per request); OpenAI and Gemini cache every long prompt
    prefix on their own, so there a breakpoint changes nothing on the wire. Breakpoints
    never change the answer, so they are not part of llmx's response-cache key
    (docs/features/prompt-caching.md).
    """

    ttl: Literal["5m", "1h"] = "5m"

    def __attrs_post_init__(self) -> None:
        if self.ttl not in ("5m", "1h"):
            msg = f"CacheControl(ttl={self.ttl!r}): the TTL is '5m' or '1h'"
            raise ValueError(msg)


_DEFAULT_CACHE = CacheControl()


def _to_cache(value: bool | CacheControl | None) -> CacheControl | None:
    if value is None or value is False:
        return None
    if value is True:
        return _DEFAULT_CACHE
    if not isinstance(value, CacheControl):  # type: ignore[unreachable, unused-ignore]
        msg = f"cache= takes True, False, None or a CacheControl, not {value!r}"  # type: ignore[unreachable, unused-ignore]
        raise TypeError(msg)
    return value


# -- content parts ---------------------------------------------------------------------


@attrs.frozen
class Text:
    """A piece of plain text in a message; ``cache`` makes it a prompt-cache breakpoint
    (:class:`CacheControl`)."""

    text: str
    cache: CacheControl | None = attrs.field(default=None, converter=_to_cache, kw_only=True)


def _optional_bytes(value: bytes | bytearray | memoryview | str | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return base64.b64decode(value)
    return bytes(value)


@attrs.frozen
class Image:
    """An image, given either by ``url`` or by raw ``data`` bytes with their ``media_type``.

    ``Image(url="https://...")`` or ``Image(data=png_bytes, media_type="image/png")``;
    :meth:`from_path` reads a file. ``detail`` is OpenAI's ``low``/``high``/``auto`` hint.
    """

    url: str | None = None
    data: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    media_type: str | None = None
    detail: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            msg = "Image needs exactly one of url= or data="
            raise ValueError(msg)
        if self.data is not None and not self.media_type:
            msg = "Image(data=...) needs media_type=, e.g. 'image/png'"
            raise ValueError(msg)

    @classmethod
    def from_path(cls, path: str, *, media_type: str | None = None) -> Image:
        """Read an image file; the media type is guessed from the file name if not given."""
        import mimetypes
        from pathlib import Path

        mt = media_type or mimetypes.guess_type(path)[0]
        if not mt or not mt.startswith("image/"):
            msg = (
                f"cannot tell the image type of {path!r}; pass media_type='image/png' (or similar)"
            )
            raise ValueError(msg)
        return cls(data=Path(path).read_bytes(), media_type=mt)

    def data_url(self) -> str:
        """The image as a URL: its own ``url``, or a ``data:`` URL of the bytes."""
        if self.url is not None:
            return self.url
        assert self.data is not None
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


# -- documents and audio (issue 15, item 7) -------------------------------------------

DOCUMENT_TYPES: tuple[str, ...] = ("application/pdf", "text/plain")
"""The media types :class:`Document` accepts (PDF everywhere; plain text where a vendor
takes it, else refused before sending)."""

AUDIO_FORMATS: dict[str, str] = {
    "wav": "audio/wav",
    "mp3": "audio/mp3",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "aiff": "audio/aiff",
}
"""The formats :class:`Audio` accepts, with their media types."""


def _bytes(value: bytes | bytearray | memoryview | str) -> bytes:
    data = _optional_bytes(value)
    if data is None:
        msg = "Audio needs data= (the recording's bytes)"
        raise ValueError(msg)
    return data


@attrs.frozen
class Document:
    """A document (a PDF) in a user message, given by ``url`` or by raw ``data`` bytes.

    ``Document(data=pdf_bytes)`` or ``Document(url="https://.../paper.pdf")``;
    :meth:`from_path` reads a file. ``title`` names it to the model (Anthropic's
    ``title``, OpenAI's ``filename``). The bytes are left out of the repr.
    """

    url: str | None = None
    data: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    media_type: str = "application/pdf"
    title: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            msg = "Document needs exactly one of url= or data="
            raise ValueError(msg)
        if self.media_type not in DOCUMENT_TYPES:
            msg = (
                f"Document(media_type={self.media_type!r}): use one of {', '.join(DOCUMENT_TYPES)}"
            )
            raise ValueError(msg)

    @classmethod
    def from_path(cls, path: str, *, title: str | None = None) -> Document:
        """Read a PDF (``.pdf``) or text (``.txt``) file; ``title`` defaults to the file's
        name."""
        from pathlib import Path

        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in (".pdf", ".txt"):
            msg = f"cannot tell the document type of {path!r}; llmx reads .pdf and .txt files"
            raise ValueError(msg)
        mt = "application/pdf" if suffix == ".pdf" else "text/plain"
        return cls(data=file.read_bytes(), media_type=mt, title=title or file.name)

    def data_url(self) -> str:
        """The document as a URL: its own ``url``, or a ``data:`` URL of the bytes."""
        if self.url is not None:
            return self.url
        assert self.data is not None
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


@attrs.frozen
class Audio:
    """A recording in a user message: raw ``data`` bytes in a ``format``
    (``"wav"``, ``"mp3"``, ``"flac"``, ``"ogg"``, ``"aac"`` or ``"aiff"``).

    ``Audio(data=wav_bytes, format="wav")``; :meth:`from_path` reads a file. The bytes
    are left out of the repr. Vendors take different formats (OpenAI: wav and mp3);
    a format a model does not take is refused before sending.
    """

    data: bytes = attrs.field(converter=_bytes, repr=False)
    format: str = "wav"

    def __attrs_post_init__(self) -> None:
        if self.format not in AUDIO_FORMATS:
            msg = f"Audio(format={self.format!r}): use one of {', '.join(AUDIO_FORMATS)}"
            raise ValueError(msg)

    @property
    def media_type(self) -> str:
        """The media type of :attr:`format`, e.g. ``audio/wav``."""
        return AUDIO_FORMATS[self.format]

    @classmethod
    def from_path(cls, path: str) -> Audio:
        """Read an audio file; the format is its extension (``.wav``, ``.mp3``, ...)."""
        from pathlib import Path

        file = Path(path)
        fmt = file.suffix.lower().lstrip(".")
        fmt = {"aif": "aiff", "oga": "ogg"}.get(fmt, fmt)
        if fmt not in AUDIO_FORMATS:
            msg = f"cannot tell the audio format of {path!r}; pass Audio(data=..., format='wav')"
            raise ValueError(msg)
        return cls(data=file.read_bytes(), format=fmt)

    def base64_data(self) -> str:
        """The bytes as base64 text (what every vendor's JSON carries)."""
        return base64.b64encode(self.data).decode()


@attrs.frozen
class ToolCall:
    """A model's request to call a tool; ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str = "{}"

    def args(self) -> Any:
        """The arguments parsed as JSON (raises ``ValueError`` if the model wrote bad JSON)."""
        return json.loads(self.arguments) if self.arguments else {}


@attrs.frozen
class ToolResult:
    """The result of a tool call, sent back to the model in a ``tool`` message."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False


# -- reasoning (issue 15, item 1) ---------------------------------------------------------


@attrs.frozen
class Reasoning:
    """What a model thought before answering, as one content part of its message.

    ``text`` is the reasoning the vendor shows (Anthropic's thinking, Gemini's thought
    summaries; empty when it shows none). The other fields are the vendor's opaque state,
    which it needs back, unchanged and in order, to continue a conversation (above all a
    tool-use loop): ``signature`` (Anthropic's thinking ``signature``, Gemini's
    ``thoughtSignature``), ``data`` (an encrypted payload: Anthropic's
    ``redacted_thinking``, OpenAI's encrypted reasoning items) and ``id`` (the vendor's
    id of the item, where it has one). ``protocol`` names the wire protocol that
    produced the part (``"anthropic"``, ``"gemini"``, ``"openai"``): a provider sends
    back only the parts of its own protocol and drops the others, so a fallback never
    hands one vendor's state to another (docs/features/reasoning.md).

    :attr:`Response.message` puts these parts where they belong in the assistant
    message a caller appends to the conversation.
    """

    text: str = ""
    signature: str | None = attrs.field(default=None, kw_only=True, repr=False)
    data: str | None = attrs.field(default=None, kw_only=True, repr=False)
    id: str | None = attrs.field(default=None, kw_only=True)
    protocol: str | None = attrs.field(default=None, kw_only=True)

    @property
    def redacted(self) -> bool:
        """Whether this is encrypted reasoning only (``data``, no readable text)."""
        return self.data is not None and not self.text


ReasoningLevel = Literal["none", "minimal", "low", "medium", "high"]
"""The reasoning effort levels a :class:`Request` may ask for."""

REASONING_LEVELS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high")
"""The values of :data:`ReasoningLevel`, lowest first."""


def _to_reasoning(value: str | int | None) -> str | int | None:
    """``Request.reasoning``: an effort level (lower-cased) or a token budget (>= 0)."""
    if value is None:
        return None
    if isinstance(value, str):
        level = value.strip().lower()
        if level in REASONING_LEVELS:
            return level
        msg = f"reasoning={value!r}: use one of {', '.join(REASONING_LEVELS)} or a token budget"
        raise ValueError(msg)
    if type(value) is int and value >= 0:
        return value
    msg = f"reasoning={value!r}: a token budget is an integer >= 0 (0 turns reasoning off)"
    raise ValueError(msg)


Part = Text | Image | ToolCall | ToolResult | Reasoning | Document | Audio
"""Any content part of a message."""


def _to_parts(value: str | Part | Iterable[str | Part]) -> tuple[Part, ...]:
    if isinstance(value, str):
        return (Text(value),)
    if isinstance(value, (Text, Image, ToolCall, ToolResult, Reasoning, Document, Audio)):
        return (value,)
    return tuple(Text(p) if isinstance(p, str) else p for p in value)


@attrs.frozen
class Message:
    """One message of a conversation: a role and its content parts.

    ``content`` accepts a plain string, one part or a sequence of parts and strings.
    ``cache`` makes the end of the message a prompt-cache breakpoint
    (:class:`CacheControl`): on a system message, the system prompt is cached.
    """

    role: Role
    content: tuple[Part, ...] = attrs.field(converter=_to_parts)
    cache: CacheControl | None = attrs.field(default=None, converter=_to_cache, kw_only=True)

    @classmethod
    def system(cls, text: str, *, cache: bool | CacheControl | None = None) -> Message:
        """A system message (``cache=True``: a prompt-cache breakpoint after it)."""
        return cls("system", text, cache=cache)

    @classmethod
    def user(cls, *content: str | Part, cache: bool | CacheControl | None = None) -> Message:
        """A user message from text, images, documents and audio (``cache=True``: a prompt-cache
        breakpoint after it)."""
        return cls("user", content) if cache is None else cls("user", content, cache=cache)

    @classmethod
    def assistant(
        cls,
        text: str = "",
        *,
        tool_calls: Sequence[ToolCall] = (),
        reasoning: Sequence[Reasoning] = (),
    ) -> Message:
        """An assistant message (e.g. a previous answer, or the tool calls it made).

        ``reasoning`` parts come first, as the vendors want them back
        (:attr:`Response.message` builds this from an answer).
        """
        parts: list[Part] = list(reasoning)
        if text:
            parts.append(Text(text))
        parts.extend(tool_calls)
        return cls("assistant", parts)

    @classmethod
    def tool(cls, tool_call_id: str, content: str, *, is_error: bool = False) -> Message:
        """A tool result, answering the tool call ``tool_call_id``."""
        return cls("tool", (ToolResult(tool_call_id, content, is_error=is_error),))

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        return "".join(p.text for p in self.content if isinstance(p, Text))


# -- tools and formats -------------------------------------------------------------------


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return {} if value is None else dict(value)


@attrs.frozen
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object.

    ``cache`` on a tool makes the tool list up to it a prompt-cache breakpoint
    (:class:`CacheControl`; mark the last tool to cache them all).
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}}, converter=_frozen_mapping
    )
    strict: bool | None = None
    cache: CacheControl | None = attrs.field(default=None, converter=_to_cache, kw_only=True)


@attrs.frozen
class ToolChoice:
    """How the model may use tools: ``auto``, ``none``, ``required`` or one named ``tool``."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.mode == "tool") != (self.name is not None):
            msg = "ToolChoice(mode='tool') needs name=, and only that mode takes one"
            raise ValueError(msg)


def _to_tool_choice(value: ToolChoice | str | None) -> ToolChoice | None:
    if value is None or isinstance(value, ToolChoice):
        return value
    if value in ("auto", "none", "required"):
        return ToolChoice(value)  # type: ignore[arg-type]
    return ToolChoice("tool", value)


@attrs.frozen
class ResponseFormat:
    """Text (the default), any JSON object, or JSON matching ``schema``."""

    type: Literal["text", "json", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool = True

    def __attrs_post_init__(self) -> None:
        if (self.type == "json_schema") != (self.schema is not None):
            msg = "ResponseFormat(type='json_schema') needs schema=, and only that type takes one"
            raise ValueError(msg)


_TEXT_FORMAT = ResponseFormat()
"""The default format, shared (values are immutable): one object less per request."""


def _to_response_format(value: ResponseFormat | str | Mapping[str, Any] | None) -> ResponseFormat:
    if value is None:
        return _TEXT_FORMAT
    if isinstance(value, ResponseFormat):
        return value
    if isinstance(value, str):
        return ResponseFormat(value)  # type: ignore[arg-type]
    return ResponseFormat("json_schema", dict(value))


def _to_messages(
    value: str | Message | Iterable[Message | Mapping[str, Any]],
) -> tuple[Message, ...]:
    if isinstance(value, str):
        return (Message("user", value),)
    if isinstance(value, Message):
        return (value,)
    if type(value) is tuple:
        # Already messages (a Request copied for another model): keep the tuple. Saves a
        # rebuild per request (bench: sequential overhead, Request.with_model).
        for m in value:
            if type(m) is not Message:
                break
        else:
            return value
    out = []
    for m in value:
        if isinstance(m, Message):
            out.append(m)
        else:
            out.append(Message(m["role"], m["content"]))
    return tuple(out)


def _to_str_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None or value == ():
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _to_tools(value: Iterable[Tool]) -> tuple[Tool, ...]:
    return value if type(value) is tuple else tuple(value)


def _to_n(value: int | None) -> int | None:
    """``Request.n``: None for one answer (1 is stored as None: the same request)."""
    if value is None or value == 1:
        return None
    if type(value) is int and value > 1:
        return value
    msg = f"n={value!r}: the number of answers is an integer >= 1"
    raise ValueError(msg)


def _to_top_logprobs(value: int | None) -> int | None:
    if value is None:
        return None
    if type(value) is int and 0 <= value <= 20:
        return value
    msg = f"top_logprobs={value!r}: an integer from 0 to 20"
    raise ValueError(msg)


# -- request -------------------------------------------------------------------------


@attrs.frozen
class Request:
    """One call to a model.

    ``model`` is a model reference: ``"instance/model"`` (``"openai/gpt-4o-mini"``) or an
    alias from the config. ``messages`` takes messages, dicts with ``role`` and
    ``content``, or a plain prompt string. ``extra`` holds provider-specific request
    fields, passed through unchanged.
    """

    model: str
    messages: tuple[Message, ...] = attrs.field(converter=_to_messages)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = attrs.field(default=(), converter=_to_str_tuple)
    seed: int | None = None
    tools: tuple[Tool, ...] = attrs.field(default=(), converter=_to_tools)
    tool_choice: ToolChoice | None = attrs.field(default=None, converter=_to_tool_choice)
    response_format: ResponseFormat = attrs.field(
        default=_TEXT_FORMAT, converter=_to_response_format
    )
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    include_raw: bool = attrs.field(default=False, kw_only=True)
    """Keep the provider's raw response payload in :attr:`Response.raw`."""
    prompt_cache_key: str | None = attrs.field(default=None, kw_only=True)
    """A hint that groups requests sharing a long prompt prefix, so the vendor routes
    them to the same prompt cache (OpenAI's ``prompt_cache_key``; ignored by vendors
    without one). It never changes the answer and is not part of llmx's cache key."""
    reasoning: str | int | None = attrs.field(default=None, kw_only=True, converter=_to_reasoning)
    """How much the model should reason: an effort level (``"none"``, ``"minimal"``,
    ``"low"``, ``"medium"``, ``"high"``) or a token budget (0: off); None leaves it to
    the model. Each provider maps it onto its vendor's parameter
    (docs/features/reasoning.md has the table)."""
    # -- n > 1 and logprobs (issue 15, item 7; docs/features/choices-logprobs-and-stop-reasons.md)
    n: int | None = attrs.field(default=None, kw_only=True, converter=_to_n)
    """How many answers to generate (None or 1: one). More than one is OpenAI Chat
    Completions' ``n`` and Gemini's ``candidateCount``, whole and streamed (the other
    answers' stream chunks come as :class:`ChoiceDelta`): they arrive in
    :attr:`Response.choices`; other providers refuse it before sending."""
    logprobs: bool = attrs.field(default=False, kw_only=True)
    """Return the log probability of each output token (:attr:`Response.logprobs`);
    OpenAI Chat Completions only, refused before sending elsewhere."""
    top_logprobs: int | None = attrs.field(default=None, kw_only=True, converter=_to_top_logprobs)
    """Also return the ``top_logprobs`` (0-20) most likely tokens at each position;
    setting it implies ``logprobs``."""

    def with_model(self, model: str) -> Request:
        """The same request for another model (used when resolving refs and aliases)."""
        return Request(
            model,
            self.messages,
            self.max_tokens,
            self.temperature,
            self.top_p,
            self.stop,
            self.seed,
            self.tools,
            self.tool_choice,
            self.response_format,
            self.extra,
            include_raw=self.include_raw,
            prompt_cache_key=self.prompt_cache_key,
            reasoning=self.reasoning,
            n=self.n,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
        )

    @property
    def wants_choices(self) -> bool:
        """Whether the request asks for more than one answer or for logprobs (what only
        some providers offer; the others refuse it before sending)."""
        return self.n is not None or self.logprobs or self.top_logprobs is not None

    def has_images(self) -> bool:
        """Whether any message carries an image."""
        return any(isinstance(p, Image) for m in self.messages for p in m.content)

    def media_kinds(self) -> tuple[bool, bool]:
        """Whether any message carries a :class:`Document`, and whether any carries
        :class:`Audio`."""
        # Messages of one text part are skipped unlooked-at: the check runs on every
        # request to a model lacking documents or audio (check_capabilities: 0.24 ->
        # 0.14 us for four messages; timeit, process time).
        docs = audio = False
        for m in self.messages:
            content = m.content
            if len(content) == 1 and type(content[0]) is Text:
                continue
            for p in content:
                t = type(p)
                if t is Document:
                    docs = True
                elif t is Audio:
                    audio = True
        return docs, audio

    def cache_breakpoints(self) -> int:
        """How many prompt-cache breakpoints (``cache=``) the tools, messages and text
        parts carry."""
        # Plain loops, no generators: 1.0 -> 0.4 us for four messages (the check runs
        # on every request to a model without prompt caching; timeit, process time).
        count = 0
        for t in self.tools:
            if t.cache is not None:
                count += 1
        for m in self.messages:
            if m.cache is not None:
                count += 1
            for p in m.content:
                if type(p) is Text and p.cache is not None:
                    count += 1
        return count


# -- usage and response ----------------------------------------------------------------


@attrs.frozen
class Usage:
    """Token counts of one response.

    ``input_tokens`` counts the whole prompt, including the tokens read from or written
    to the provider's prompt cache (``cache_read_tokens``, ``cache_write_tokens``), as
    OpenAI's ``prompt_tokens`` does; providers that report them separately (Anthropic)
    are normalised to this. ``reasoning_tokens`` are part of ``output_tokens``.

    ``cache_write_1h_tokens`` are the part of ``cache_write_tokens`` written to a
    one-hour cache (Anthropic's ``ttl: "1h"``, priced higher than the default
    five-minute cache).

    ``estimated`` is True when the provider reported no usage (some servers send none
    in a stream) and llmx estimated the counts from the prompt and the answer's text
    (about four characters per token): the cost computed from it is an estimate too,
    never a silent zero.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0
    estimated: bool = attrs.field(default=False, kw_only=True)

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            estimated=self.estimated or other.estimated,
        )


@attrs.frozen
class Attempt:
    """One try of a request against one provider instance, as reported in errors and events."""

    provider: str
    model: str
    duration: float
    error_type: str | None = None
    error: str | None = None

    def __str__(self) -> str:
        outcome = f"{self.error_type}: {self.error}" if self.error_type else "ok"
        return f"{self.provider}/{self.model} after {self.duration * 1000:.0f} ms: {outcome}"


# -- choices, logprobs and refusals (issue 15, item 7) -----------------------------------


@attrs.frozen
class TokenLogprob:
    """One output token and its log probability (OpenAI's ``logprobs.content[]``).

    ``bytes`` are the token's UTF-8 bytes (None when the vendor sends none); ``top``
    the most likely tokens at this position (as many as ``Request.top_logprobs``
    asked; their own ``top`` is empty).
    """

    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    top: tuple[TokenLogprob, ...] = ()


@attrs.frozen
class Choice:
    """One of the answers of a request that asked for several (``Request.n``), or the
    details of a single answer: its ``text``, ``tool_calls``, ``finish_reason``, the
    model's ``refusal`` message (None: no refusal) and the ``logprobs`` of its tokens
    (None: not asked for). ``index`` is its place among the answers."""

    index: int
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason | None = None
    refusal: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None

    @property
    def message(self) -> Message:
        """This answer as the assistant message to append to the conversation."""
        return Message.assistant(self.text, tool_calls=self.tool_calls)


@attrs.frozen
class Response:
    """A model's answer, and where and how it was obtained.

    ``provider`` is the configured instance that answered, ``model`` the provider's
    model name, ``latency`` the seconds from sending to the complete answer, ``cost`` in
    USD when the model's prices are known. ``raw`` is the provider's payload, kept only
    when the request set ``include_raw``. ``cached`` is True when the answer came from
    the response cache (then ``attempts`` is empty, ``cost`` 0 and ``latency`` the
    lookup time; ``usage`` is the original answer's).
    """

    text: str
    model: str
    provider: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage = Usage()
    latency: float = 0.0
    cost: float | None = None
    id: str | None = None
    attempts: tuple[Attempt, ...] = ()
    raw: Any = attrs.field(default=None, eq=False, repr=False)
    cached: bool = attrs.field(default=False, kw_only=True)
    reasoning: tuple[Reasoning, ...] = attrs.field(default=(), kw_only=True)
    """The model's reasoning parts, in the vendor's order (text and opaque state)."""
    choices: tuple[Choice, ...] = attrs.field(default=(), kw_only=True)
    """Every answer, when there is more to tell than the text: the ``n`` answers of a
    request with ``n > 1``, or the one answer's logprobs or refusal. Choice 0 is this
    Response's own text, tool calls and finish reason. Empty for a plain answer (no
    allocation on the common path): :attr:`refusal` and :attr:`logprobs` read choice 0."""

    @property
    def refusal(self) -> str | None:
        """The model's refusal message (OpenAI's ``refusal``, the text of an Anthropic
        ``refusal`` turn; ``""`` when it gave none), None when it did not refuse. A
        refusal also has finish reason ``content_filter`` and its message as ``text``."""
        choices = self.choices
        return choices[0].refusal if choices else None

    @property
    def logprobs(self) -> tuple[TokenLogprob, ...] | None:
        """The log probabilities of the answer's tokens (``Request.logprobs``), or None."""
        choices = self.choices
        return choices[0].logprobs if choices else None

    def json(self) -> Any:
        """The text parsed as JSON (for JSON mode and structured output)."""
        return json.loads(self.text)

    @property
    def reasoning_text(self) -> str:
        """The readable reasoning, concatenated ("" when the model showed none)."""
        return "".join(r.text for r in self.reasoning)

    @property
    def message(self) -> Message:
        """This answer as the assistant message to append to the conversation: its
        reasoning parts (with the vendor's opaque state), text and tool calls."""
        return Message.assistant(self.text, tool_calls=self.tool_calls, reasoning=self.reasoning)


# -- streaming --------------------------------------------------------------------------


@attrs.frozen
class TextDelta:
    """The next piece of the answer's text."""

    text: str


@attrs.frozen
class ToolCallDelta:
    """A piece of a tool call; ``index`` ties pieces of one call together.

    The first piece of a call carries ``id`` and ``name``; ``arguments`` pieces
    concatenate to the call's JSON arguments.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@attrs.frozen
class StreamEnd:
    """The last chunk of a stream: why it finished, and the usage if the provider sent it."""

    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None


@attrs.frozen
class ReasoningDelta:
    """A piece of the model's reasoning, streamed before (or between) the answer's parts.

    ``index`` ties the pieces of one :class:`Reasoning` part together; ``text`` pieces
    concatenate to its text; ``signature``, ``data`` and ``id`` (the vendor's opaque
    state) arrive whole, in one of its pieces; ``protocol`` is set on each piece.
    ``Stream.text()`` never yields reasoning.
    """

    text: str = ""
    index: int = 0
    signature: str | None = attrs.field(default=None, kw_only=True, repr=False)
    data: str | None = attrs.field(default=None, kw_only=True, repr=False)
    id: str | None = attrs.field(default=None, kw_only=True)
    protocol: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class LogprobsDelta:
    """The log probabilities of the tokens of the text deltas just before it (streams of
    a request with ``logprobs``); they concatenate to :attr:`Response.logprobs`."""

    logprobs: tuple[TokenLogprob, ...]


@attrs.frozen
class RefusalDelta:
    """A piece of the model's refusal message (OpenAI's ``delta.refusal``); they
    concatenate to :attr:`Response.refusal` (and to its text, which a refusal replaces).
    ``Stream.text()`` does not yield them."""

    text: str


AnswerChunk = TextDelta | ToolCallDelta | StreamEnd | ReasoningDelta | LogprobsDelta | RefusalDelta
"""A chunk of one answer (what :class:`ChoiceDelta` wraps)."""


@attrs.frozen
class ChoiceDelta:
    """A chunk of answer ``index`` (1 or more) of a stream that asked for several answers
    (``Request.n > 1``; docs/features/choices-logprobs-and-stop-reasons.md).

    Answer 0's chunks are the plain chunks, exactly as in a stream of one answer (so
    ``Stream.text()`` and code written for one answer read answer 0); every other
    answer's come wrapped, with its index: its text, refusal, logprobs and tool-call
    deltas, and last a :class:`StreamEnd` with its finish reason only (the usage, for
    the whole request, is on the stream's own last ``StreamEnd``). Deltas of different
    answers interleave as the vendor sends them; ``stream.response.choices`` has every
    answer, as ``complete()`` returns them."""

    index: int
    delta: AnswerChunk


StreamChunk = AnswerChunk | ChoiceDelta
"""Anything a stream yields."""


# -- model infos --------------------------------------------------------------------------


def _to_capabilities(value: Iterable[str | Capability]) -> frozenset[str]:
    return frozenset(v.value if isinstance(v, Capability) else v for v in value)


@attrs.frozen
class PriceTier:
    """Prices (USD per million tokens) that apply to *all* tokens of a request whose
    prompt (``Usage.input_tokens``) is longer than ``above`` tokens: the long-context
    prices of some models (e.g. above 200K tokens). A price left None is the model's
    base price for that kind of token.
    """

    above: int
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None
    cache_write_1h_price: float | None = None


def _to_tiers(value: Iterable[PriceTier]) -> tuple[PriceTier, ...]:
    return tuple(sorted(value, key=lambda t: t.above))


@attrs.frozen
class ModelInfo:
    """What is known about a model: limits, capabilities and prices (USD per million tokens).

    Prices: ``input_price`` (prompt tokens not read from or written to the prompt
    cache), ``output_price`` (answer tokens, reasoning included), ``cache_read_price``
    (prompt tokens read from the cache; None: the input price), ``cache_write_price``
    (written to the cache, or to its default five-minute one; None: the input price),
    ``cache_write_1h_price`` (written to a one-hour cache; None: the cache write
    price), ``reasoning_price`` (reasoning tokens, where a vendor prices them apart;
    None: the output price), ``price_tiers`` (long-context prices, see
    :class:`PriceTier`), ``batch_input_price``/``batch_output_price`` (the vendor's
    batch API). ``source`` says where the facts come from (``"genai-prices 0.2.5"``,
    ``"config"``, ...), as ``llmx models info`` shows.
    """

    id: str
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: frozenset[str] = attrs.field(default=frozenset(), converter=_to_capabilities)
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None
    cache_write_1h_price: float | None = attrs.field(default=None, kw_only=True)
    reasoning_price: float | None = attrs.field(default=None, kw_only=True)
    price_tiers: tuple[PriceTier, ...] = attrs.field(default=(), converter=_to_tiers, kw_only=True)
    batch_input_price: float | None = attrs.field(default=None, kw_only=True)
    batch_output_price: float | None = attrs.field(default=None, kw_only=True)
    source: str | None = attrs.field(default=None, kw_only=True, eq=False)

    def renamed(self, model_id: str) -> ModelInfo:
        """These facts under another id, every other field kept (prices included): what
        a provider returns for an alias or a dated snapshot of a model it knows
        (``info.renamed("claude-sonnet-4-5-20250929")``)."""
        return attrs.evolve(self, id=model_id)

    def supports(self, capability: str | Capability) -> bool:
        """Whether the model lists ``capability``."""
        value = capability.value if isinstance(capability, Capability) else capability
        return value in self.capabilities

    def with_facts(self, facts: Mapping[str, Any], *, source: str | None = None) -> ModelInfo:
        """These facts with some replaced: ``facts`` maps field names (every field but
        ``id`` and ``source``) to values, ``price_tiers`` as PriceTier objects or their
        keywords; ``source`` (None: kept) says where the new ones come from. An unknown
        field name is a ``ValueError`` naming the known ones."""
        known = _FACT_FIELDS
        unknown = sorted(set(facts) - known)
        if unknown:
            msg = f"unknown model facts {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            raise ValueError(msg)
        changes = dict(facts)
        if "price_tiers" in changes:
            changes["price_tiers"] = tuple(
                t if isinstance(t, PriceTier) else PriceTier(**t) for t in changes["price_tiers"]
            )
        if source is not None:
            changes["source"] = source
        return attrs.evolve(self, **changes)

    def cost(self, usage: Usage) -> float | None:
        """The USD cost of ``usage`` at this model's prices, or None if they are unknown.

        ``usage`` is llmx's normalised one (every provider's counts mapped so that
        ``input_tokens`` includes cache reads and writes and ``output_tokens`` includes
        reasoning): uncached input + cache reads + cache writes (five-minute and
        one-hour) + output + reasoning, each at its price; when the prompt is longer
        than a :class:`PriceTier`'s ``above``, that tier's prices apply to every token.
        """
        input_price, output_price = self.input_price, self.output_price
        if input_price is None or output_price is None:
            return None
        read, written = usage.cache_read_tokens, usage.cache_write_tokens
        tiers = self.price_tiers
        tiered = bool(tiers) and usage.input_tokens > tiers[0].above
        if not tiered and self.reasoning_price is None and not usage.cache_write_1h_tokens:
            # The common case, in the formula's shortest form (0.39 -> 0.25 us a call;
            # it runs once per answer).
            read_price = self.cache_read_price
            write_price = self.cache_write_price
            return (
                max(usage.input_tokens - read - written, 0) * input_price
                + read * (input_price if read_price is None else read_price)
                + written * (input_price if write_price is None else write_price)
                + usage.output_tokens * output_price
            ) / 1_000_000
        read_price, write_price = self.cache_read_price, self.cache_write_price
        write_1h_price = self.cache_write_1h_price
        if tiered:
            for tier in reversed(tiers):
                if usage.input_tokens > tier.above:
                    if tier.input_price is not None:
                        input_price = tier.input_price
                    if tier.output_price is not None:
                        output_price = tier.output_price
                    read_price = _or(tier.cache_read_price, read_price)
                    write_price = _or(tier.cache_write_price, write_price)
                    write_1h_price = _or(tier.cache_write_1h_price, write_1h_price)
                    break
        if read_price is None:
            read_price = input_price
        if write_price is None:
            write_price = input_price
        if write_1h_price is None:
            write_1h_price = write_price
        written_1h = min(usage.cache_write_1h_tokens, written)
        total = (
            max(usage.input_tokens - read - written, 0) * input_price
            + read * read_price
            + (written - written_1h) * write_price
            + written_1h * write_1h_price
            + usage.output_tokens * output_price
        )
        reasoning_price = self.reasoning_price
        if reasoning_price is not None and usage.reasoning_tokens:
            reasoning = min(usage.reasoning_tokens, usage.output_tokens)
            total += reasoning * (reasoning_price - output_price)
        return total / 1_000_000


def _or(value: float | None, default: float | None) -> float | None:
    return default if value is None else value


_FACT_FIELDS = frozenset(f.name for f in attrs.fields(ModelInfo)) - {"id", "source"}
"""The fields :meth:`ModelInfo.with_facts` (and a config's ``model_info`` table) may set."""

"""The listener: llmx's event hooks turned into GenAI spans and metrics."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmx.plugin import hookimpl, scrub
from llmx_otel import _names as n

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from llmx.plugin import (
        AttemptEnd,
        AttemptStart,
        RequestEnd,
        RequestError,
        RequestStart,
    )

__all__ = ["CONTENT_LIMIT", "MAX_OPEN_REQUESTS", "Instrumentation"]

CONTENT_LIMIT = 16_384
"""Characters of captured content kept per attribute (the rest is cut, marked ``…``)."""

MAX_OPEN_REQUESTS = 10_000
"""Requests tracked at once. A cancelled request sends no last event; past this many
open requests the oldest is ended (``llmx.abandoned``) so memory stays bounded."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_PROPAGATE_ENV = "OTEL_INSTRUMENTATION_LLMX_PROPAGATE"
_SCOPE = "llmx_otel"
_log = logging.getLogger("llmx_otel")


def _version() -> str:
    """llmx-otel's version, for the instrumentation scope."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmx-otel")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return ""


def _flag(env: str) -> bool:
    """The boolean environment variable ``env`` (unset: False); ValueError naming it
    when it is set to something else than true/false."""
    value = os.environ.get(env, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    msg = f"{env}={os.environ[env]!r} is not a boolean: set it to true or false (or unset it)"
    raise ValueError(msg)


def check_environment() -> None:
    """Raise ValueError if a setting the ``otel`` plugin reads from the environment is
    malformed (called when the plugin is imported, so llmx reports the plugin as failed
    with that message instead of a request failing later)."""
    _flag(_CAPTURE_ENV)
    _flag(_PROPAGATE_ENV)


class _RequestState:
    """One open request: its span, its attempts' open spans, the winning attempt."""

    __slots__ = ("answered", "attempts", "model", "operation", "span", "stream", "ttfc")

    def __init__(self, span: Span, model: str, operation: str, stream: bool) -> None:
        self.span = span
        self.model = model
        self.operation = operation
        self.stream = stream
        self.attempts: dict[int, Span] = {}
        # the spans of the attempts that answered (span, end time, instance), kept open
        # until the request's end writes the answer's model, id and finish reasons on
        # the one whose answer the caller got (two hedged attempts may both answer)
        self.answered: list[tuple[Span, int, str]] = []
        self.ttfc: float | None = None


class Instrumentation:
    """OpenTelemetry GenAI traces and metrics for every llmx request.

    Register an instance as a plugin (``registry.register(Instrumentation(...),
    name="otel")``); or enable the ``otel`` plugin (``[plugins] enable = ["otel"]``),
    which builds one from the environment and the global providers.

    ``tracer_provider`` / ``meter_provider``: where spans and measurements go (None: the
    global ones, :func:`opentelemetry.trace.set_tracer_provider`; read on each span, so
    a provider set after the client was built is used). ``propagate``: send the W3C
    trace context (``traceparent``, through the global propagator) to providers with
    each attempt's HTTP request (off by default: it tells the vendor your trace ids).
    ``capture_content``: record the request's messages and the answer as
    ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (off by default: prompts may
    hold personal data); captured text goes through ``redact`` (default: every secret
    llmx knows replaced by ``***``) and is cut at :data:`CONTENT_LIMIT` characters.
    """

    llmx_contract = "1.2"

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        propagate: bool = False,
        capture_content: bool = False,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.propagate = propagate
        self.capture_content = capture_content
        self.redact = redact if redact is not None else scrub
        self._tracer_provider = tracer_provider
        version = _version()
        self._tracer = trace.get_tracer(_SCOPE, version, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, version, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            n.METRIC_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS),
        )
        self._tokens = meter.create_histogram(
            n.METRIC_TOKENS,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(n.TOKEN_BUCKETS),
        )
        self._ttfc = meter.create_histogram(
            n.METRIC_TTFC,
            unit="s",
            description="Time to receive the first chunk of a streamed answer",
            explicit_bucket_boundaries_advisory=list(n.TTFC_BUCKETS),
        )
        self._open: dict[str, _RequestState] = {}
        self._types: dict[str, str] = {}  # instance -> gen_ai.provider.name
        # perf_counter() seconds -> epoch nanoseconds (the events' clock -> OTel's)
        self._offset = time.time_ns() - int(time.perf_counter() * 1e9)

    @classmethod
    def from_env(cls) -> Instrumentation:
        """The instance the ``otel`` entry point uses: the global providers;
        ``capture_content`` from ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
        and ``propagate`` from ``OTEL_INSTRUMENTATION_LLMX_PROPAGATE`` (``true``/``1``)."""
        return cls(propagate=_flag(_PROPAGATE_ENV), capture_content=_flag(_CAPTURE_ENV))

    def __repr__(self) -> str:
        return (
            f"Instrumentation(propagate={self.propagate}, capture_content={self.capture_content})"
        )

    def _ns(self, perf: float) -> int:
        return int(perf * 1e9) + self._offset

    # -- the hooks --------------------------------------------------------------------------

    @hookimpl
    def llmx_request_start(self, event: RequestStart) -> None:
        """Open the request's span (a child of the span current in the caller's task)."""
        try:
            self._request_start(event)
        except Exception:  # a hook must not raise: telemetry never breaks a request
            _log.debug("llmx-otel failed on an event", exc_info=True)

    @hookimpl
    def llmx_attempt_start(self, event: AttemptStart) -> None:
        """Open the attempt's span under the request's; propagate its context."""
        try:
            self._attempt_start(event)
        except Exception:
            _log.debug("llmx-otel failed on an event", exc_info=True)

    @hookimpl
    def llmx_attempt_end(self, event: AttemptEnd) -> None:
        """Close a failed or abandoned attempt's span; hold a successful one open."""
        try:
            self._attempt_end(event)
        except Exception:
            _log.debug("llmx-otel failed on an event", exc_info=True)

    @hookimpl
    def llmx_request_end(self, event: RequestEnd) -> None:
        """Close the request's span (and its answering attempt's); record the metrics."""
        try:
            self._request_end(event)
        except Exception:
            _log.debug("llmx-otel failed on an event", exc_info=True)

    @hookimpl
    def llmx_request_error(self, event: RequestError) -> None:
        """Close the request's span with its error; record the duration."""
        try:
            self._request_error(event)
        except Exception:
            _log.debug("llmx-otel failed on an event", exc_info=True)

    # -- requests ---------------------------------------------------------------------------

    def _request_start(self, event: RequestStart) -> None:
        request = event.request
        operation = "embeddings" if not hasattr(request, "messages") else "chat"
        model = request.model
        attributes: dict[str, Any] = {
            n.OPERATION_NAME: operation,
            n.REQUEST_MODEL: model,
            n.REQUEST_ID: event.request_id,
            n.STREAM: event.stream,
        }
        if operation == "chat":
            _request_attributes(request, attributes)
        span = self._tracer.start_span(
            f"{operation} {model}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=self._ns(event.started),
        )
        if self.capture_content and operation == "chat" and span.is_recording():
            span.set_attribute(n.INPUT_MESSAGES, self._content(_input_messages(request)))
        opened = self._open
        opened[event.request_id] = _RequestState(span, model, operation, event.stream)
        if len(opened) > MAX_OPEN_REQUESTS:
            oldest = next(iter(opened))
            self._abandon(oldest, opened.pop(oldest))

    def _abandon(self, request_id: str, state: _RequestState) -> None:
        for span in state.attempts.values():
            span.end()
        for span, end, _ in state.answered:
            span.end(end)
        state.span.set_attribute(n.ABANDONED_REQUEST, True)
        state.span.end()

    def _request_end(self, event: RequestEnd) -> None:
        state = self._open.pop(event.request_id, None)
        if state is None:
            return
        response: Any = event.response
        span = state.span
        cached = bool(getattr(response, "cached", False))
        instance = response.provider
        provider = self._types.get(instance)
        answer = hasattr(response, "finish_reason")  # a chat Response (not embeddings)
        if span.is_recording():  # not sampled out
            self._end_spans(state, response, cached, provider, answer)
        span.end(self._ns(time.perf_counter()))
        metric: dict[str, Any] = {
            n.OPERATION_NAME: state.operation,
            n.REQUEST_MODEL: state.model,
            n.RESPONSE_MODEL: response.model,
            n.CACHE_HIT: cached,
        }
        if provider is not None:
            metric[n.PROVIDER_NAME] = provider
        self._duration.record(event.duration, metric)
        if state.ttfc is not None:
            self._ttfc.record(state.ttfc, metric)
        if not cached:
            usage = response.usage
            tokens = self._tokens
            tokens.record(usage.input_tokens, {**metric, n.TOKEN_TYPE: "input"})
            if answer:
                tokens.record(usage.output_tokens, {**metric, n.TOKEN_TYPE: "output"})

    def _end_spans(
        self, state: _RequestState, response: Any, cached: bool, provider: str | None, answer: bool
    ) -> None:
        """Write the answer on the request span and the answering attempt's; end the
        attempts' spans."""
        instance = response.provider
        attributes: dict[str, Any] = {
            n.RESPONSE_MODEL: response.model,
            n.INSTANCE: instance,
            n.CACHE_HIT: cached,
            n.ATTEMPTS: len(response.attempts),
        }
        if provider is not None:
            attributes[n.PROVIDER_NAME] = provider
        if answer:
            if response.id:
                attributes[n.RESPONSE_ID] = response.id
            if response.finish_reason is not None:
                attributes[n.RESPONSE_FINISH_REASONS] = (response.finish_reason,)
        _usage_attributes(response.usage, attributes)
        if response.cost is not None:
            attributes[n.COST] = response.cost
        if state.ttfc is not None:
            attributes[n.RESPONSE_TIME_TO_FIRST_CHUNK] = state.ttfc
        if answer and self.capture_content:
            attributes[n.OUTPUT_MESSAGES] = self._content(_output_messages(response))
        state.span.set_attributes(attributes)
        winner: str | None = instance  # the answer is that instance's (not the cache's)
        for attempt_span, attempt_end, answered_by in state.answered:
            if answered_by == winner:
                attempt_span.set_attributes(
                    {k: v for k, v in attributes.items() if k not in _REQUEST_ONLY}
                )
                winner = None  # one winner, however many answered
            attempt_span.end(attempt_end)
        for other in state.attempts.values():  # never ended (not expected): close them
            other.end()

    def _request_error(self, event: RequestError) -> None:
        state = self._open.pop(event.request_id, None)
        if state is None:
            return
        err = event.error
        kind = type(err).__name__
        span = state.span
        attributes: dict[str, Any] = {n.ERROR_TYPE: kind}
        attempts = getattr(err, "attempts", None)
        if isinstance(attempts, tuple):
            attributes[n.ATTEMPTS] = len(attempts)
        instance = getattr(err, "provider", None)
        provider = self._types.get(instance) if isinstance(instance, str) else None
        if provider is not None:
            attributes[n.PROVIDER_NAME] = provider
        span.set_attributes(attributes)
        span.set_status(Status(StatusCode.ERROR, self.redact(_message(err))))
        for answered, end, _ in state.answered:  # answered, then failed (a stream broke)
            answered.end(end)
        for other in state.attempts.values():
            other.end()
        span.end(self._ns(time.perf_counter()))
        metric: dict[str, Any] = {
            n.OPERATION_NAME: state.operation,
            n.REQUEST_MODEL: state.model,
            n.ERROR_TYPE: kind,
        }
        if provider is not None:
            metric[n.PROVIDER_NAME] = provider
        self._duration.record(event.duration, metric)

    # -- attempts ---------------------------------------------------------------------------

    def _attempt_start(self, event: AttemptStart) -> None:
        state = self._open.get(event.request_id)
        if state is None:
            return
        provider = self._types.get(event.provider)
        if provider is None:
            kind = event.provider_type
            provider = self._types[event.provider] = n.PROVIDER_NAMES.get(kind, kind)
        if not state.span.is_recording():
            # sampled out: no attempt spans (a sampler would drop them too); the trace
            # context still goes out when asked, marked not sampled
            if self.propagate:
                inject(event.headers, context=trace.set_span_in_context(state.span))
            return
        attributes: dict[str, Any] = {
            n.OPERATION_NAME: state.operation,
            n.PROVIDER_NAME: provider,
            n.REQUEST_MODEL: event.model,
            n.INSTANCE: event.provider,
            n.ATTEMPT: event.attempt,
            n.ATTEMPT_KIND: event.kind,
        }
        if event.kind != "first":
            attributes[_KIND_FLAGS[event.kind]] = True
        parent = trace.set_span_in_context(state.span)
        span = self._tracer.start_span(
            f"{state.operation} {event.model}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=self._ns(event.started),
        )
        state.attempts[event.attempt] = span
        if self.propagate:
            inject(event.headers, context=trace.set_span_in_context(span))

    def _attempt_end(self, event: AttemptEnd) -> None:
        state = self._open.get(event.request_id)
        if state is None:
            return
        err = event.error
        if err is None and event.ttft is not None and state.stream:
            state.ttfc = event.ttft
        span = state.attempts.pop(event.attempt, None)
        if span is None:  # sampled out
            return
        end = self._ns(event.started + event.duration)
        if event.ttft is not None:
            span.set_attribute(n.RESPONSE_TIME_TO_FIRST_CHUNK, event.ttft)
        if err is None:
            if event.usage is not None:
                usage: dict[str, Any] = {}
                _usage_attributes(event.usage, usage)
                span.set_attributes(usage)
            state.answered.append((span, end, event.provider))
            return
        if type(err).__name__ == "CancelledError":  # abandoned: a lost hedge, a cancel
            span.set_attribute(n.ABANDONED, str(err) or "cancelled")
        else:
            span.set_attribute(n.ERROR_TYPE, type(err).__name__)
            span.set_status(Status(StatusCode.ERROR, self.redact(_message(err))))
        span.end(end)

    # -- content ----------------------------------------------------------------------------

    def _content(self, value: object) -> str:
        text = self.redact(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        if len(text) > CONTENT_LIMIT:
            text = text[: CONTENT_LIMIT - 1] + "…"
        return text


_KIND_FLAGS = {"retry": n.RETRY, "fallback": n.FALLBACK, "hedge": n.HEDGE}
_REQUEST_ONLY = frozenset({n.CACHE_HIT, n.ATTEMPTS, n.OUTPUT_MESSAGES, n.COST})


def _message(err: BaseException) -> str:
    message = getattr(err, "message", None)
    return message if isinstance(message, str) else str(err)


def _request_attributes(request: Any, attributes: dict[str, Any]) -> None:
    if request.max_tokens is not None:
        attributes[n.REQUEST_MAX_TOKENS] = request.max_tokens
    if request.temperature is not None:
        attributes[n.REQUEST_TEMPERATURE] = request.temperature
    if request.top_p is not None:
        attributes[n.REQUEST_TOP_P] = request.top_p
    if request.seed is not None:
        attributes[n.REQUEST_SEED] = request.seed
    if request.stop:
        attributes[n.REQUEST_STOP_SEQUENCES] = request.stop
    if request.n is not None and request.n != 1:
        attributes[n.REQUEST_CHOICE_COUNT] = request.n


def _usage_attributes(usage: Any, attributes: dict[str, Any]) -> None:
    attributes[n.USAGE_INPUT_TOKENS] = usage.input_tokens
    attributes[n.USAGE_OUTPUT_TOKENS] = getattr(usage, "output_tokens", 0)
    if getattr(usage, "reasoning_tokens", 0):
        attributes[n.USAGE_REASONING_TOKENS] = usage.reasoning_tokens
    if getattr(usage, "cache_read_tokens", 0):
        attributes[n.USAGE_CACHE_READ_TOKENS] = usage.cache_read_tokens
    if getattr(usage, "cache_write_tokens", 0):
        attributes[n.USAGE_CACHE_WRITE_TOKENS] = usage.cache_write_tokens


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's parts in the conventions' shape; media are named, not included."""
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = type(part).__name__
        if kind == "Text":
            parts.append({"type": "text", "content": part.text})
        elif kind == "ToolCall":
            parts.append(
                {"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
            )
        elif kind == "ToolResult":
            parts.append(
                {"type": "tool_call_response", "id": part.tool_call_id, "response": part.content}
            )
        elif kind == "Reasoning":
            parts.append({"type": "reasoning", "content": part.text})
        else:  # Image, Document, Audio: never their bytes
            parts.append({"type": kind.lower()})
    return parts


def _input_messages(request: Any) -> list[dict[str, Any]]:
    return [{"role": m.role, "parts": _parts(m.content)} for m in request.messages]


def _output_messages(response: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if response.text:
        parts.append({"type": "text", "content": response.text})
    parts.extend(_parts(response.tool_calls))
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if response.finish_reason is not None:
        message["finish_reason"] = response.finish_reason
    return [message]

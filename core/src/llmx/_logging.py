"""llmx's log records: one per request end and one per failed attempt (a retry, a
fallback to the next candidate, a hedge, a Retry-After cooldown) and per breaker
transition, under the ``llmx.*`` loggers, with structured fields passed as ``extra=``.

Nothing is logged and no handler is installed at import: a library emits records to the
standard loggers and the application decides where they go. The ``[logging]`` section
of ``llmx.toml`` (or the CLI) asks llmx to install a handler of its own: :func:`configure`.

The engine calls the ``log_*`` functions only after ``logger.isEnabledFor(level)`` said
yes, so with logging off the request path pays one cached level check per request.

Fields (attributes of each record, keys of each JSON line; see docs/observability.md):
``event`` (``request``, ``retry``, ``fallback``, ``hedge``, ``cooldown``, ``breaker``),
``request_id``, ``instance``, ``model``, ``attempt``, ``outcome``, ``status``, ``error``,
``error_message``, ``latency``, ``wait``, ``next``, ``input_tokens``, ``output_tokens``,
``cost``... Secrets and API keys are never fields; prompt and response text only with
``[logging] content = true`` (``messages``, ``response``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from llmx._errors import ProviderError
from llmx._scrub import scrub

if TYPE_CHECKING:
    from llmx._types import Attempt, Request


class Run(Protocol):
    """What a record reads of a request's :class:`~llmx._engine.run.Run` (a Protocol, so
    this module imports nothing of the engine)."""

    started: float
    attempts: list[Attempt]

    @property
    def request(self) -> Any:
        """The request (a Request, or an EmbeddingRequest)."""

    def ensure_id(self) -> str:
        """The request's id, made now if it has none yet."""


class LoggingConfig(Protocol):
    """The ``[logging]`` keys :func:`configure` reads (``llmx._config.LoggingConfig``)."""

    @property
    def level(self) -> str | None:
        """A level name, any case (None: INFO)."""

    @property
    def format(self) -> str | None:
        """``text`` or ``json`` (None: text)."""

    @property
    def content(self) -> bool | None:
        """Whether prompt and response text go into request records."""

    @property
    def file(self) -> str | None:
        """A file to append to (None: standard error)."""


__all__ = [
    "ATTEMPT",
    "BREAKER",
    "REQUEST",
    "JsonFormatter",
    "TextFormatter",
    "configure",
]

INFO = logging.INFO
REQUEST = logging.getLogger("llmx.request")
"""One record per request end (INFO): ``event="request"``, ``outcome`` ok/cached/error."""
ATTEMPT = logging.getLogger("llmx.attempt")
"""One record per failed attempt that is retried or falls back, per hedge and per
Retry-After cooldown waited out (INFO)."""
BREAKER = logging.getLogger("llmx.breaker")
"""Circuit-breaker transitions (WARNING when a breaker opens, INFO otherwise)."""

_MESSAGE_LIMIT = 300
"""Characters of an error's message kept in ``error_message``."""

_content = False
"""Whether prompt and response text go into request records (``[logging] content``)."""


# -- the records ------------------------------------------------------------------------------


def _error_fields(err: BaseException) -> dict[str, Any]:
    fields: dict[str, Any] = {"error": type(err).__name__}
    if isinstance(err, ProviderError):
        fields["status"] = err.status
        message = err.message
    else:
        message = str(err)
    fields["error_message"] = scrub(message.splitlines()[0] if message else "")[:_MESSAGE_LIMIT]
    return fields


def _what(err: BaseException) -> str:
    """``503 ServerError`` / ``ProviderTimeoutError``: short, for a human line."""
    if isinstance(err, ProviderError) and err.status is not None:
        return f"{err.status} {type(err).__name__}"
    return type(err).__name__


def _messages(request: Request) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.text} for m in request.messages]


def log_request_end(run: Run, response: Any, stream: bool) -> None:
    """The request ``run`` ended with ``response`` (a Response or EmbeddingResponse)."""
    latency = time.perf_counter() - run.started
    usage = response.usage
    cached = bool(getattr(response, "cached", False))
    fields: dict[str, Any] = {
        "event": "request",
        "request_id": run.ensure_id(),
        "outcome": "cached" if cached else "ok",
        "instance": response.provider,
        "model": response.model,
        "attempts": len(run.attempts),
        "latency": round(latency, 6),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost": response.cost,
        "stream": stream,
    }
    if _content:
        from llmx._types import Request

        if type(run.request) is Request:
            fields["messages"] = _messages(run.request)
            fields["response"] = getattr(response, "text", None)
    cost = f", ${response.cost:.6f}" if response.cost is not None else ""
    REQUEST.info(
        "request %s %s: %s/%s in %.3f s, %d attempt(s), %d+%d tokens%s",
        fields["request_id"],
        fields["outcome"],
        response.provider,
        response.model,
        latency,
        len(run.attempts),
        usage.input_tokens,
        usage.output_tokens,
        cost,
        extra=fields,
    )


def log_request_error(run: Run, err: BaseException, stream: bool) -> None:
    """The request ``run`` failed with ``err``."""
    latency = time.perf_counter() - run.started
    last = run.attempts[-1] if run.attempts else None
    instance = last.provider if last else None
    model = last.model if last else run.request.model
    if isinstance(err, ProviderError):
        instance, model = err.provider, err.model or model
    fields: dict[str, Any] = {
        "event": "request",
        "request_id": run.ensure_id(),
        "outcome": "error",
        "instance": instance,
        "model": model,
        "attempts": len(run.attempts),
        "latency": round(latency, 6),
        "stream": stream,
        **_error_fields(err),
    }
    if _content:
        from llmx._types import Request

        if type(run.request) is Request:
            fields["messages"] = _messages(run.request)
    REQUEST.info(
        "request %s failed: %s after %.3f s, %d attempt(s)",
        fields["request_id"],
        _what(err),
        latency,
        len(run.attempts),
        extra=fields,
    )


def log_retry(
    run: Run,
    instance: str,
    model: str,
    err: BaseException,
    next_try: int,
    tries: int,
    wait: float | None,
) -> None:
    """A failed attempt on ``instance``/``model`` is retried (try ``next_try`` of ``tries``)."""
    last = run.attempts[-1] if run.attempts else None
    fields: dict[str, Any] = {
        "event": "retry",
        "request_id": run.ensure_id(),
        "outcome": "retry",
        "instance": instance,
        "model": model,
        "attempt": len(run.attempts),
        "latency": round(last.duration, 6) if last is not None else None,
        "wait": wait,
        "next_try": next_try,
        "tries": tries,
        **_error_fields(err),
    }
    after = f" in {wait:g} s (Retry-After)" if wait is not None else ""
    ATTEMPT.info(
        "retrying %s/%s after %s%s (attempt %d of %d)",
        instance,
        model,
        _what(err),
        after,
        next_try,
        tries,
        extra=fields,
    )


def log_fallback(run: Run, instance: str, model: str, err: BaseException, to: str) -> None:
    """``instance``/``model`` failed with ``err``; the request moves on to ``to``."""
    fields: dict[str, Any] = {
        "event": "fallback",
        "request_id": run.ensure_id(),
        "outcome": "fallback",
        "instance": instance,
        "model": model,
        "attempt": len(run.attempts),
        "next": to,
        **_error_fields(err),
    }
    ATTEMPT.info(
        "falling back to %s after %s/%s failed: %s", to, instance, model, _what(err), extra=fields
    )


def log_hedge(run: Run, instance: str, model: str, to: str, delay: float) -> None:
    """``instance``/``model`` has not answered within ``delay`` s; also sent to ``to``."""
    fields: dict[str, Any] = {
        "event": "hedge",
        "request_id": run.ensure_id(),
        "outcome": "hedge",
        "instance": instance,
        "model": model,
        "attempt": len(run.attempts),
        "wait": round(delay, 6),
        "next": to,
    }
    ATTEMPT.info(
        "hedging: also sending to %s, %s/%s has not answered after %.2f s",
        to,
        instance,
        model,
        delay,
        extra=fields,
    )


def log_cooldown(run: Run, instance: str, model: str, wait: float) -> None:
    """An attempt on ``instance`` waits ``wait`` s: the provider asked to (Retry-After)."""
    fields: dict[str, Any] = {
        "event": "cooldown",
        "request_id": run.ensure_id(),
        "outcome": "cooldown",
        "instance": instance,
        "model": model,
        "wait": round(wait, 6),
    }
    ATTEMPT.info(
        "waiting %.2f s before sending to %s/%s: cooling down after a rate limit",
        wait,
        instance,
        model,
        extra=fields,
    )


def log_breaker(instance: str, old: str, new: str, reason: str) -> None:
    """``instance``'s circuit breaker went from ``old`` to ``new``."""
    level = logging.WARNING if new == "open" else INFO
    if BREAKER.isEnabledFor(level):
        fields = {
            "event": "breaker",
            "instance": instance,
            "outcome": new,
            "old": old,
            "new": new,
            "reason": scrub(reason)[:_MESSAGE_LIMIT],
        }
        BREAKER.log(
            level, "circuit breaker of %s: %s -> %s (%s)", instance, old, new, reason, extra=fields
        )


# -- formatting --------------------------------------------------------------------------------

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
"""Attributes every LogRecord has: the others are structured fields (``extra=``)."""


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record``: what ``extra=`` added to it (llmx's fields,
    and those of any other logger the handler sees)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _iso(created: float) -> str:
    t = time.gmtime(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, then the record's structured fields (and ``exception``, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        data: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            data.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(self.formatException(record.exc_info))
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, default=str, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, str) and value and " " not in value and '"' not in value:
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER MESSAGE key=value ...``: the message, then every structured
    field (strings with spaces JSON-quoted), on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of text."""
        line = f"{_iso(record.created)} {record.levelname} {record.name} {record.getMessage()}"
        fields = " ".join(f"{k}={_value(v)}" for k, v in fields_of(record).items() if v is not None)
        if fields:
            line = f"{line} {fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(self.formatException(record.exc_info))
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return line


class HumanFormatter(logging.Formatter):
    """The CLI's default: ``llmx: retrying ...…`` for a retry, fallback, hedge or
    cooldown, ``llmx: WARNING: ...`` for a warning — one short line, no fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one short line for a person at a terminal."""
        message = record.getMessage()
        if record.name == ATTEMPT.name:
            return f"llmx: {message}…"
        return f"llmx: {record.levelname}: {message}"

    @staticmethod
    def shows(record: logging.LogRecord) -> bool:
        """Whether a person at a terminal sees ``record`` without ``-v``: the
        retry/fallback/hedge/cooldown lines and warnings, not each request's end."""
        return record.levelno >= logging.WARNING or record.name == ATTEMPT.name


# -- installing a handler ------------------------------------------------------------------------


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (as the standard
    library's last-resort handler does), so a replaced or captured stderr is followed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        del value


class _Installed:
    """The handler llmx installed on the ``llmx`` logger, and how."""

    def __init__(
        self,
        handler: logging.Handler,
        settings: LoggingConfig,
        app: bool,
        human: bool,
        stream: IO[str] | None,
    ) -> None:
        self.handler = handler
        self.settings = settings
        self.app = app
        self.human = human
        self.stream = stream


_installed: _Installed | None = None


def configure(
    settings: LoggingConfig,
    *,
    app: bool = False,
    stream: IO[str] | None = None,
    human: bool = False,
) -> None:
    """Install llmx's handler on the ``llmx`` logger as ``settings`` say (level, format,
    content, file), replacing one installed before; records then stop propagating to
    the root logger (so they are not written twice).

    ``app=True``: an application (the CLI) configures logging; a client's ``[logging]``
    section configured later is merged into the application's settings (the more
    verbose level wins; its format, file and content apply) instead of replacing them.
    ``human=True``: the CLI's short lines instead of ``settings.format`` (until a
    ``[logging]`` section sets a format or a file).
    """
    global _installed, _content
    current = _installed
    if not app and current is not None and current.app:
        merged = merge(current.settings, settings)
        human = current.human and settings.format is None and settings.file is None
        if merged == current.settings and human == current.human:
            return
        settings, app, stream = merged, True, current.stream
    logger = logging.getLogger("llmx")
    if current is not None:
        _remove(logger, current.handler)
    handler: logging.Handler
    if settings.file is not None:
        handler = logging.FileHandler(settings.file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    if human:
        handler.setFormatter(HumanFormatter())
        handler.addFilter(HumanFormatter.shows)
    elif settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level_number(settings.level or "INFO"))
    logger.propagate = False
    _content = bool(settings.content)
    _installed = _Installed(handler, settings, app, human, stream)
    _quiet_stamina()


_STAMINA = "stamina"
_quieted = False


def _quiet_stamina() -> None:
    """stamina logs each retry it schedules as a bare ``stamina.retry_scheduled``
    WARNING; llmx's own ``retry`` record says more, so while llmx's handler is installed
    that logger is raised to ERROR — unless the application set its level itself."""
    global _quieted
    stamina_log = logging.getLogger(_STAMINA)
    if stamina_log.level == logging.NOTSET:
        stamina_log.setLevel(logging.ERROR)
        _quieted = True


def _remove(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.removeHandler(handler)
    if isinstance(handler, logging.FileHandler):
        handler.close()


def reset() -> None:
    """Remove the handler llmx installed and restore the ``llmx`` logger's defaults
    (tests; an application that configures logging itself)."""
    global _installed, _content, _quieted
    if _installed is not None:
        logger = logging.getLogger("llmx")
        _remove(logger, _installed.handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        _installed = None
    _content = False
    if _quieted:
        logging.getLogger(_STAMINA).setLevel(logging.NOTSET)
        _quieted = False


_LEVEL_NUMBERS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def level_number(level: str) -> int:
    """``"info"`` -> 20 (``[logging] level`` was checked when the config loaded)."""
    return _LEVEL_NUMBERS[level.upper()]


_KEYS = ("level", "format", "content", "file")


def merge(base: LoggingConfig, over: LoggingConfig) -> LoggingConfig:
    """``base`` with the keys ``over`` sets (None: unset); the more verbose level wins."""
    import attrs

    given = {k: getattr(over, k) for k in _KEYS if getattr(over, k) is not None}
    if (
        "level" in given
        and base.level is not None
        and level_number(given["level"]) > level_number(base.level)
    ):
        given["level"] = base.level
    evolved: LoggingConfig = attrs.evolve(cast("Any", base), **given)
    return evolved

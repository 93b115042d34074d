"""One scrubber for every secret this process knows (a leaf module).

Every :class:`~llmx.Secret` value llmx reads, every key a provider reads from the
environment and every password written inside a configured URL is remembered here;
:func:`scrub` replaces each of them in a text with ``***``. Provider errors are scrubbed
when made and the records of llmx's loggers when made (a chained log record factory), so
a secret an upstream echoes back (in an error body, a header, a model list) never reaches
a log line, an error message or a file written from them.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ScrubFilter", "remember", "scrub"]

_MIN_LENGTH = 4
"""Shorter values are not remembered: they would scrub ordinary words."""

_known: tuple[str, ...] = ()


def remember(value: str | None) -> None:
    """Scrub ``value`` from now on (values shorter than 4 characters are ignored); a
    URL's password is scrubbed on its own too (``redis://:PASSWORD@host``)."""
    global _known
    if value and len(value) >= _MIN_LENGTH and value not in _known:
        # Longest first, so a secret that contains another is replaced whole.
        _known = tuple(sorted((*_known, value), key=len, reverse=True))
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            remember(password)


def scrub(text: str) -> str:
    """``text`` with every remembered secret replaced by ``***``."""
    for value in _known:
        if value in text:
            text = text.replace(value, "***")
    return text


def _scrub_record(record: logging.LogRecord) -> None:
    """Format ``record``'s message (and traceback) now, scrubbed."""
    message = record.getMessage()
    cleaned = scrub(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs secrets from each record's message (for handlers of
    an application that logs llmx's errors through loggers of its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record (always keeps it)."""
        if _known:
            _scrub_record(record)
        return True


_make_record = logging.getLogRecordFactory()


def _llmx_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """The log record factory, chained: records of ``llmx`` loggers (``llmx.*``, the
    plugins' ``llmx.redis``...) are scrubbed when made, whichever handler emits them."""
    record = _make_record(*args, **kwargs)
    if _known and record.name.startswith("llmx"):
        _scrub_record(record)
    return record


logging.setLogRecordFactory(_llmx_record)

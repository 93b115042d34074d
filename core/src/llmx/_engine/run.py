"""One request's scope: its id, its start/end/error events, its deadline, and what its
attempts left behind (the attempt records, the errors, the candidates skipped and why).

Whole answers and streams open the same :class:`Run`; it is the only place request ids
and request-level events are made.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import TYPE_CHECKING

from llmx._events import RequestCancelled, RequestEnd, RequestError, RequestStart
from llmx._logging import INFO, REQUEST, log_request_end, log_request_error

_log_enabled = REQUEST.isEnabledFor

if TYPE_CHECKING:
    from llmx._registry import _EventHooks as EventCallers
    from llmx._types import Attempt, Request, Response

_perf = time.perf_counter
_monotonic = time.monotonic
_ids = itertools.count(1)
_ID_PREFIX = os.urandom(4).hex()


def new_request_id() -> str:
    """A short id unique within this process run (``"3f2a9c1b-17"``)."""
    return f"{_ID_PREFIX}-{next(_ids)}"


class Run:
    """The state of one request across its attempts (both modes).

    Creating it emits ``llmx_request_start`` (when a plugin listens); :meth:`end` and
    :meth:`fail` emit the request's last event. ``deadline`` is a monotonic time or None.
    """

    __slots__ = (
        "attempts",
        "begun",
        "deadline",
        "errors",
        "events",
        "request",
        "request_id",
        "skipped",
        "started",
        "stream",
    )

    def __init__(self, events: EventCallers, request: Request, stream: bool) -> None:
        self.events = events
        self.request = request
        self.stream = stream
        self.started = _perf()
        self.request_id = new_request_id() if events.any else ""
        self.deadline: float | None = None
        self.attempts: list[Attempt] = []
        self.begun = 0  # attempts admitted so far (each one's number; hedges overlap)
        self.errors: list[BaseException] = []
        self.skipped: list[str] = []
        if events.start is not None:
            events.start(event=RequestStart(self.request_id, request, stream, self.started))

    def ensure_id(self) -> str:
        """The request's id, made now if no event hook asked for one at its start (an id
        costs nothing unless something, such as a log record, uses it)."""
        if not self.request_id:
            self.request_id = new_request_id()
        return self.request_id

    def remaining(self) -> float:
        """Seconds left before the deadline (inf without one)."""
        if self.deadline is None:
            return float("inf")
        return self.deadline - _monotonic()

    def end(self, response: Response) -> None:
        """The request succeeded with ``response``."""
        if _log_enabled(INFO):  # logging off: one cached level check (bench icount)
            log_request_end(self, response, self.stream)
        hook = self.events.end
        if hook is not None:
            hook(event=RequestEnd(self.request_id, response, _perf() - self.started))

    def fail(self, err: BaseException) -> None:
        """The request failed with ``err``; a cancellation (or a stream closed early,
        ``GeneratorExit``) is ``llmx_request_cancelled`` instead."""
        if isinstance(err, Exception):
            if _log_enabled(INFO):
                log_request_error(self, err, self.stream)
            hook = self.events.error
            if hook is not None:
                hook(event=RequestError(self.request_id, err, _perf() - self.started))
            return
        hook = self.events.cancelled
        if hook is not None:
            reason = "closed" if isinstance(err, GeneratorExit) else "cancelled"
            hook(event=RequestCancelled(self.request_id, reason, _perf() - self.started))

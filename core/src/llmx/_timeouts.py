"""A cheap watchdog that turns a missed deadline into a typed timeout.

One timer per guarded call at most: the timer fires at the earliest moment a limit
could be missed; if activity (a streamed chunk) moved the limit, it re-arms itself
instead of cancelling. Recording activity is one attribute store, so guarding a
50-chunk stream costs one timer, not fifty.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType

from llmx._errors import ProviderTimeoutError


class Watchdog:
    """Cancels the current task when a limit passes, then raises ProviderTimeoutError.

    Limits (loop-clock times or None): ``deadline`` (the hard end: attempt timeout or
    the request's deadline, whichever is first) and, for streams, ``first_byte_by``
    until the first chunk and ``idle`` seconds between chunks after it. Use as a
    context manager around the guarded code.

    An idle watchdog (``idle`` set) guards a whole stream: enter it around each wait for
    a chunk (entering records the start of the wait) and :meth:`close` it at the end.
    Its timer survives between waits and re-arms itself only when it fires early, so a
    50-chunk stream costs one timer, not fifty; time the caller spends between chunks
    never counts as silence.
    """

    __slots__ = (
        "_handle",
        "_loop",
        "_task",
        "deadline",
        "deadline_reason",
        "fired",
        "first_byte_by",
        "idle",
        "last",
        "model",
        "provider",
        "reason",
        "started",
    )

    def __init__(
        self,
        *,
        provider: str,
        model: str | None,
        deadline: float | None,
        deadline_reason: str,
        first_byte_by: float | None = None,
        idle: float | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self.provider = provider
        self.model = model
        self.deadline = deadline
        self.deadline_reason = deadline_reason
        self.first_byte_by = first_byte_by
        self.idle = idle
        self.last: float | None = None
        self.started = self._loop.time()
        self.fired = False
        self.reason = ""

    def _expiry(self) -> tuple[float | None, str]:
        candidates: list[tuple[float, str]] = []
        if self.deadline is not None:
            candidates.append((self.deadline, self.deadline_reason))
        if self.last is None:
            if self.first_byte_by is not None:
                candidates.append(
                    (self.first_byte_by, "no first chunk in time (first_byte_timeout)")
                )
        elif self.idle is not None:
            candidates.append(
                (self.last + self.idle, f"no chunk for {self.idle:g} s (idle_timeout)")
            )
        if not candidates:
            return None, ""
        return min(candidates)

    def _arm(self) -> None:
        when, _ = self._expiry()
        if when is not None:
            self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self._task is None:
            return  # between waits: re-armed when the next wait starts
        when, reason = self._expiry()
        if when is None:
            return
        if self._loop.time() + 1e-4 < when:
            self._handle = self._loop.call_at(when, self._fire)
            return
        self.fired = True
        self.reason = reason
        if self._task is not None:
            self._task.cancel()

    def touch(self) -> None:
        """Record activity (a chunk arrived): moves the first-byte and idle limits."""
        self.last = self._loop.time()

    def __enter__(self) -> Watchdog:
        self._task = asyncio.current_task()
        if self.idle is not None:
            self.last = self._loop.time()  # silence counts from the start of this wait
        if self._handle is None:
            self._arm()
        return self

    def close(self) -> None:
        """Stop the timer (an idle watchdog, after its stream's last wait)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._task = None
        if self.idle is None or self.fired:
            self.close()
        if not self.fired or exc_type is not asyncio.CancelledError:
            return
        if sys.version_info >= (3, 11) and self._task is not None and self._task.uncancel() > 0:
            return  # someone else cancelled the task too: let that cancellation through
        elapsed = self._loop.time() - self.started
        msg = f"timed out after {elapsed:.2f} s: {self.reason}"
        raise ProviderTimeoutError(msg, provider=self.provider, model=self.model) from exc

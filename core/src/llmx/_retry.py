"""The default retry policy, built on stamina.

A policy only decides *how* to retry (attempts, backoff, time budget); *what* is
retried comes from the error (``ProviderError.retryable``) and the pipeline's checks
(breaker, retry budget, deadline, Retry-After), passed in as the ``on`` hook.

The first attempt never enters stamina: only after a retryable failure does the
pipeline call :meth:`StaminaRetryPolicy.retrying`, replaying that failure as stamina's
first attempt, so stamina computes every wait (and ``stamina.set_testing`` applies)
while a request that succeeds at once pays nothing for retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any

import attrs

RetryHook = Callable[[BaseException], "bool | float"]
"""Called with each failure: False stops retrying, True retries after the policy's
backoff, a float retries after that many seconds (a provider's Retry-After)."""


@attrs.frozen
class StaminaSettings:
    """``[retry]`` settings of the ``stamina`` policy (also per instance: ``retry = {...}``).

    ``attempts`` counts every try of one candidate, the first included; ``timeout`` is
    the time budget for all of them (seconds); waits grow exponentially from
    ``wait_initial`` by ``wait_exp_base`` up to ``wait_max``, plus up to ``wait_jitter``
    seconds of random jitter. A Retry-After longer than ``max_retry_after`` is not
    waited for: the request moves on to the next candidate.
    """

    attempts: int = 3
    timeout: float = 45.0
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_jitter: float = 1.0
    wait_exp_base: float = 2.0
    max_retry_after: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            msg = "attempts must be at least 1 (1 means: never retry)"
            raise ValueError(msg)
        if not (self.timeout > 0 and self.wait_initial >= 0 and self.wait_max >= 0):
            msg = "timeout must be positive and waits not negative"
            raise ValueError(msg)


class StaminaRetryPolicy:
    """Exponential backoff with jitter, capped attempts and a time budget (stamina)."""

    def __init__(self, settings: StaminaSettings | None = None) -> None:
        self.settings = settings or StaminaSettings()

    @property
    def attempts(self) -> int:
        """Tries per candidate, the first included."""
        return self.settings.attempts

    @property
    def max_retry_after(self) -> float:
        """The longest Retry-After worth waiting for on one candidate."""
        return self.settings.max_retry_after

    async def retrying(
        self, on: RetryHook, *, timeout: float
    ) -> AsyncIterator[AbstractContextManager[Any]]:
        """stamina's retry context: yields one context manager per attempt."""
        import stamina

        s = self.settings
        async for attempt in stamina.retry_context(
            on=on,
            attempts=s.attempts,
            timeout=max(0.001, min(s.timeout, timeout)),
            wait_initial=s.wait_initial,
            wait_max=s.wait_max,
            wait_jitter=s.wait_jitter,
            wait_exp_base=s.wait_exp_base,
        ):
            yield attempt


class NoRetryPolicy:
    """Never retries (``[retry] policy = "none"``)."""

    attempts = 1
    max_retry_after = 0.0

    async def retrying(
        self, on: RetryHook, *, timeout: float
    ) -> AsyncIterator[AbstractContextManager[Any]]:  # pragma: no cover - never entered
        """Nothing to retry: yields nothing."""
        del on, timeout
        for _ in ():
            yield _

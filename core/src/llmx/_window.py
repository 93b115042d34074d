"""A sliding window of success/failure counts, shared by the circuit breaker, the retry
budget and the hedging budget."""

from __future__ import annotations

import math


class Window:
    """Success/failure counts over the last ``window`` seconds, in one-second buckets."""

    __slots__ = ("_buckets", "_size")

    def __init__(self, window: float) -> None:
        self._size = max(1, math.ceil(window))
        # each bucket: [second, successes, failures]
        self._buckets = [[-1, 0, 0] for _ in range(self._size)]

    def add(self, now: float, ok: bool) -> None:
        """Count one success (``ok``) or failure at time ``now`` (seconds)."""
        second = int(now)
        bucket = self._buckets[second % self._size]
        if bucket[0] != second:
            bucket[0], bucket[1], bucket[2] = second, 0, 0
        bucket[1 if ok else 2] += 1

    def totals(self, now: float) -> tuple[int, int]:
        """``(successes, failures)`` within the window ending at ``now``."""
        oldest = int(now) - self._size + 1
        ok = bad = 0
        for second, s, f in self._buckets:
            if second >= oldest:
                ok += s
                bad += f
        return ok, bad

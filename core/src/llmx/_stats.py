"""Usage, cost and latency statistics per provider instance and model.

Counts and totals plus log-bucketed histograms (5 % relative precision) for latency
and time to first token: quantiles come from the histogram, never from a running
``(avg + x) / 2``. Recording an attempt is a handful of integer updates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from llmx._cache import CacheStats
    from llmx._state import StoreStats

_MIN = 1e-6  # 1 µs
_GROWTH = 1.05
_INV_LOG_GROWTH = 1.0 / math.log(_GROWTH)
_BUCKETS = int(math.log(1e4 / _MIN) * _INV_LOG_GROWTH) + 2  # up to ~3 hours


class Histogram:
    """A log-bucketed histogram of durations in seconds (1 µs .. ~3 h, ±5 %)."""

    __slots__ = ("_counts", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def record(self, value: float) -> None:
        """Add one observation (seconds)."""
        index = 0 if value <= _MIN else int(math.log(value / _MIN) * _INV_LOG_GROWTH) + 1
        if index >= _BUCKETS:
            index = _BUCKETS - 1
        self._counts[index] += 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def quantile(self, q: float) -> float | None:
        """The value below which a fraction ``q`` of observations fall (None if empty)."""
        if self.count == 0:
            return None
        rank = q * self.count
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank and n:
                if index == 0:
                    return min(self.max, _MIN)
                # the bucket's geometric middle, clamped to what was actually observed
                upper = _MIN * _GROWTH**index
                middle = upper / math.sqrt(_GROWTH)
                return min(max(middle, self.min), self.max)
        return self.max

    def summary(self) -> Quantiles | None:
        """p50/p95/p99, mean, min and max, or None if empty."""
        if self.count == 0:
            return None
        return Quantiles(
            count=self.count,
            mean=self.total / self.count,
            p50=self.quantile(0.50) or 0.0,
            p95=self.quantile(0.95) or 0.0,
            p99=self.quantile(0.99) or 0.0,
            min=self.min,
            max=self.max,
        )


@attrs.frozen
class Quantiles:
    """A latency distribution summary, in seconds."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    min: float
    max: float


@attrs.frozen
class ModelStats:
    """Statistics of one (provider instance, model) pair.

    ``requests`` counts attempts sent (retries and fallbacks included), ``retries``
    those that were retries. ``cost`` is the USD of answered attempts;
    ``abandoned_attempts`` and ``abandoned_cost`` count attempts that may have been
    billed although their answer was never used (timed out after sending, cancelled
    hedges, streams cut short, embedding batches of an attempt that failed and was not
    retried on the same candidate), with the cost estimated from the prompt.
    ``estimated_usage`` counts
    answers whose usage the provider did not report and llmx estimated (their tokens
    and cost are included above; see ``llmx.Usage.estimated``). ``embeds`` counts
    the answered attempts that were embeddings (``Client.embed``; they are among
    ``successes``, and their tokens and cost in the totals above). ``reasoning_tokens``
    are the part of ``output_tokens`` the models spent reasoning.
    ``validation_retries`` counts answers to a ``response_model=`` request that did not
    match its schema and were asked again (each re-ask is also a request above).
    """

    instance: str
    model: str
    requests: int
    successes: int
    failures: int
    errors: Mapping[str, int]
    retries: int
    input_tokens: int
    output_tokens: int
    cost: float
    abandoned_attempts: int
    abandoned_cost: float
    latency: Quantiles | None
    ttft: Quantiles | None
    estimated_usage: int = 0
    embeds: int = 0
    reasoning_tokens: int = 0
    validation_retries: int = 0


@attrs.frozen
class LimiterStats:
    """Counts of one instance's client-side limiter (``Stats.instances[NAME].limiter``).

    ``waited``: requests that queued for capacity (whether they got it or not);
    ``refused``: requests given up with ``RateLimitError`` (past
    ``max_wait``, the deadline, or too large to ever fit); ``backend_errors``: backend
    calls that failed or were late (past ``[limiter] store_timeout`` with a shared
    backend, after which the local stand-in limited the request; an in-process backend's
    failure lets the request go ahead unlimited); ``local_grants``: asks answered by
    the in-process stand-in while a shared backend was degraded or late.
    """

    waited: int = 0
    refused: int = 0
    backend_errors: int = 0
    local_grants: int = 0


@attrs.frozen
class InstanceStats:
    """Live state of one provider instance; ``limiter`` holds the counts of its
    client-side rate limits (None when it has none)."""

    instance: str
    in_flight: int
    breaker: str
    concurrency_limit: float | None
    cooldown_remaining: float
    limiter: LimiterStats | None = None


@attrs.frozen
class Stats:
    """A snapshot of a client's statistics (see :meth:`llmx.Client.stats`).

    ``cache`` counts the response cache's hits, misses and failures (None when no
    cache is configured). ``stores``: how each shared store (``cache``, ``limiter``,
    ``breaker_store``) in use fared: timeouts, degraded periods (none for in-process
    ones).
    """

    models: tuple[ModelStats, ...]
    instances: Mapping[str, InstanceStats]
    cache: CacheStats | None = None
    stores: Mapping[str, StoreStats] = attrs.field(factory=dict)

    def for_instance(self, instance: str) -> tuple[ModelStats, ...]:
        """The per-model statistics of one instance."""
        return tuple(m for m in self.models if m.instance == instance)

    def total_cost(self) -> float:
        """USD over every answered attempt."""
        return sum(m.cost for m in self.models)


class ModelCounters:
    """Mutable counters behind :class:`ModelStats`."""

    __slots__ = (
        "abandoned_attempts",
        "abandoned_cost",
        "cost",
        "embeds",
        "errors",
        "estimated_usage",
        "input_tokens",
        "latency",
        "output_tokens",
        "reasoning_tokens",
        "requests",
        "retries",
        "successes",
        "ttft",
        "validation_retries",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.successes = 0
        self.retries = 0
        self.errors: dict[str, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.reasoning_tokens = 0
        self.cost = 0.0
        self.abandoned_attempts = 0
        self.abandoned_cost = 0.0
        self.estimated_usage = 0
        self.embeds = 0
        self.validation_retries = 0
        self.latency = Histogram()
        self.ttft = Histogram()

    def snapshot(self, instance: str, model: str) -> ModelStats:
        """An immutable copy."""
        failures = sum(self.errors.values())
        return ModelStats(
            instance=instance,
            model=model,
            requests=self.requests,
            successes=self.successes,
            failures=failures,
            errors=dict(self.errors),
            retries=self.retries,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost=self.cost,
            abandoned_attempts=self.abandoned_attempts,
            abandoned_cost=self.abandoned_cost,
            latency=self.latency.summary(),
            ttft=self.ttft.summary(),
            estimated_usage=self.estimated_usage,
            embeds=self.embeds,
            reasoning_tokens=self.reasoning_tokens,
            validation_retries=self.validation_retries,
        )


class StatsRecorder:
    """Collects per-(instance, model) counters for one client."""

    __slots__ = ("_models",)

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], ModelCounters] = {}

    def counters(self, instance: str, model: str) -> ModelCounters:
        """The counters of one pair (created on first use)."""
        key = (instance, model)
        counters = self._models.get(key)
        if counters is None:
            counters = self._models[key] = ModelCounters()
        return counters

    def snapshot(self) -> tuple[ModelStats, ...]:
        """Immutable copies of every pair's counters, sorted."""
        return tuple(c.snapshot(i, m) for (i, m), c in sorted(self._models.items()))

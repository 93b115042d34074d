"""The built-in routing strategies: they order an alias's candidates from live state.

A strategy is any object with ``order(candidates, request, view)``; ``view`` (a
:class:`RoutingView`) answers questions about live state: in-flight counts, latency
estimates, estimated cost. Strategies never do I/O and must be cheap: they run for
every request. The ``hedged`` strategy also tells the pipeline when to send a backup
request (see :class:`HedgedStrategy`).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from llmx._window import Window

if TYPE_CHECKING:
    from llmx._components import Candidate, RoutingView
    from llmx._types import Request


class PriorityStrategy:
    """Try candidates by ascending ``priority``; ties keep the order they were listed in."""

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """Stable sort by priority."""
        if len(candidates) < 2:
            return candidates
        return sorted(candidates, key=lambda c: c.priority)


class RoundRobinStrategy:
    """Rotate the first choice through the candidates, request by request."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """The candidates rotated by one more position each call."""
        n = len(candidates)
        if n < 2:
            return candidates
        k = next(self._counter) % n
        return [*candidates[k:], *candidates[:k]]


@attrs.frozen
class RandomSettings:
    """``seed``: make the choice reproducible (tests)."""

    seed: int | None = None


class WeightedStrategy:
    """Pick the first choice at random in proportion to each candidate's ``weight``;
    the rest follow in weighted-random order too."""

    def __init__(self, settings: RandomSettings | None = None) -> None:
        seed = settings.seed if settings is not None else None
        self._random = random.Random(seed)

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """A weighted shuffle (Efraimidis-Spirakis keys)."""
        if len(candidates) < 2:
            return candidates
        rnd = self._random.random
        keyed = [
            (rnd() ** (1.0 / c.weight) if c.weight > 0 else 0.0, i)
            for i, c in enumerate(candidates)
        ]
        keyed.sort(reverse=True)
        return [candidates[i] for _, i in keyed]


class LowestCostStrategy:
    """Cheapest first, from ``ModelInfo`` prices and the request's estimated tokens;
    candidates with unknown prices go last, by priority."""

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """Sorted by estimated cost."""
        if len(candidates) < 2:
            return candidates

        def key(c: Candidate) -> tuple[int, float, int]:
            cost = view.estimated_cost(c, request)
            return (1, 0.0, c.priority) if cost is None else (0, cost, c.priority)

        return sorted(candidates, key=key)


@attrs.frozen
class LatencySettings:
    """``explore``: the share of requests that try a random candidate first, so the
    estimates of slower candidates stay current. ``seed`` for tests."""

    explore: float = 0.05
    seed: int | None = None


class LowestLatencyStrategy:
    """Fastest first by recent latency (EWMA); candidates without data go first, so
    every candidate gets measured; a small share of requests explores at random."""

    def __init__(self, settings: LatencySettings | None = None) -> None:
        self.settings = settings or LatencySettings()
        self._random = random.Random(self.settings.seed)

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """Sorted by latency estimate, unknown first."""
        if len(candidates) < 2:
            return candidates

        def key(c: Candidate) -> tuple[int, float]:
            latency = view.latency(c.instance, c.model)
            return (0, float(c.priority)) if latency is None else (1, latency)

        ordered = sorted(candidates, key=key)
        if self.settings.explore > 0 and self._random.random() < self.settings.explore:
            pick = self._random.randrange(len(ordered))
            ordered.insert(0, ordered.pop(pick))
        return ordered


class LeastBusyStrategy:
    """Fewest in-flight requests first (ties: by priority)."""

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """Sorted by in-flight count."""
        if len(candidates) < 2:
            return candidates
        return sorted(candidates, key=lambda c: (view.in_flight(c.instance), c.priority))


@attrs.frozen
class HedgeSettings:
    """``[routing]`` settings of the ``hedged`` strategy.

    Candidates are ordered by ``base`` (another strategy's name). When the first
    answer has not arrived after ``delay`` — seconds, or ``"p95"``/``"p99"``/``"p90"``
    of the first candidate's observed latency (``min_delay`` until enough data) — the
    same request goes to the next candidate and the first answer wins; the other is
    cancelled. At most ``budget`` of requests (over ``window`` seconds) are hedged, so
    hedging can never double the bill.
    """

    base: str = "priority"
    delay: float | str = "p95"
    min_delay: float = 0.05
    budget: float = 0.05
    window: float = 60.0

    def __attrs_post_init__(self) -> None:
        if isinstance(self.delay, str) and self.delay not in ("p90", "p95", "p99"):
            msg = "delay must be seconds or one of 'p90', 'p95', 'p99'"
            raise ValueError(msg)
        if not 0 <= self.budget <= 1:
            msg = "budget must be a share between 0 and 1, e.g. 0.05"
            raise ValueError(msg)


class HedgedStrategy:
    """Delayed, budgeted hedged requests (see :class:`HedgeSettings`), for whole answers
    and for streams (hedged until the first chunk).

    The engine recognises it as an :class:`llmx.plugin.HedgingStrategy` and a
    :class:`~llmx._components.LayeredStrategy` (ordered through ``base``).
    """

    def __init__(self, settings: HedgeSettings | None = None) -> None:
        self.settings = settings or HedgeSettings()
        self.base: object = PriorityStrategy()
        self._requests = Window(self.settings.window)
        self._hedges = Window(self.settings.window)

    @property
    def base_name(self) -> str:
        """The name of the strategy to order through (``[routing] base``)."""
        return self.settings.base

    def bind_base(self, base: object) -> None:
        """Use ``base`` (a strategy object) for the ordering."""
        self.base = base

    def order(
        self, candidates: Sequence[Candidate], request: Request, view: RoutingView
    ) -> Sequence[Candidate]:
        """The base strategy's order."""
        self._requests.add(time.monotonic(), True)
        return self.base.order(candidates, request, view)  # type: ignore[attr-defined, no-any-return]

    def hedge_delay(self, first: Candidate, view: RoutingView) -> float:
        """Seconds to wait for the first candidate before hedging."""
        delay = self.settings.delay
        if not isinstance(delay, str):
            return float(delay)
        q = {"p90": 0.90, "p95": 0.95, "p99": 0.99}[delay]
        observed = view.latency_quantile(first.instance, first.model, q)
        return (
            self.settings.min_delay if observed is None else max(observed, self.settings.min_delay)
        )

    def try_hedge(self) -> bool:
        """Spend one hedge from the budget, if the budget allows."""
        now = time.monotonic()
        requests, _ = self._requests.totals(now)
        hedges, _ = self._hedges.totals(now)
        if hedges + 1 > self.settings.budget * max(requests, 1):
            return False
        self._hedges.add(now, True)
        return True

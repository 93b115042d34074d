"""The live state routing strategies consult: in-flight counts, latency, model facts.

``LiveView`` is the :class:`~llmx.plugin.RoutingView` handed to strategies. It owns the
per-(instance, model) statistics and the latency EWMA, which every finished attempt
updates through :class:`~llmx._engine.call.Call`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx._stats import StatsRecorder
from llmx._tokens import estimate_output_tokens, input_tokens
from llmx._types import Usage

if TYPE_CHECKING:
    from llmx._components import Candidate
    from llmx._pool import ProviderPool
    from llmx._types import ModelInfo, Request

_EWMA_WEIGHT = 0.2
_MIN_SAMPLES = 20  # a quantile from fewer samples is noise, not a latency estimate


class LiveView:
    """What strategies may read about instances and models (the ``RoutingView``)."""

    __slots__ = ("_ewma", "_pool", "stats")

    def __init__(self, pool: ProviderPool) -> None:
        self._pool = pool
        self._ewma: dict[tuple[str, str], float] = {}
        self.stats = StatsRecorder()

    def in_flight(self, instance: str) -> int:
        """Requests in flight to ``instance``."""
        return self._pool.get(instance).in_flight

    def latency(self, instance: str, model: str) -> float | None:
        """Recent latency (EWMA, seconds) of ``model`` on ``instance``."""
        return self._ewma.get((instance, model))

    def observe_latency(self, instance: str, model: str, duration: float) -> None:
        """Fold one answered attempt's duration into the EWMA."""
        key = (instance, model)
        previous = self._ewma.get(key)
        self._ewma[key] = (
            duration if previous is None else previous + _EWMA_WEIGHT * (duration - previous)
        )

    def latency_quantile(self, instance: str, model: str, q: float) -> float | None:
        """A latency quantile of ``model`` on ``instance`` (None under 20 samples)."""
        counters = self.stats.counters(instance, model)
        if counters.latency.count < _MIN_SAMPLES:
            return None
        return counters.latency.quantile(q)

    def info(self, candidate: Candidate) -> ModelInfo | None:
        """What is known about ``candidate``'s model (from the provider's model data).

        Called on the request path (a loop is running), so the provider is built if
        needed: an aiohttp session opens no connection until it sends.
        """
        if candidate.info is not None:
            return candidate.info
        inst = self._pool.get(candidate.instance)
        if inst.provider is None:
            inst.open()
        return inst.model_info(candidate.model)

    def estimated_cost(self, candidate: Candidate, request: Request) -> float | None:
        """The request's estimated USD on ``candidate`` (None if prices are unknown)."""
        info = self.info(candidate)
        if info is None:
            return None
        tokens = input_tokens(request, candidate.instance, candidate.model)
        usage = Usage(tokens, estimate_output_tokens(request))
        return info.cost(usage)

"""llmx-prometheus: Prometheus metrics from llmx's event hooks.

Enable it in ``llmx.toml`` (the plugin registers the listener ``prometheus``, whose
settings are the ``[plugins.prometheus]`` table)::

    [plugins]
    enable = ["prometheus"]

    [plugins.prometheus]
    port = 9464          # serve /metrics on 127.0.0.1:9464 (no port: no endpoint)

Or in code, with a registry of its own: ``PrometheusListener(registry=CollectorRegistry())``
registered with ``llmx.Registry().register(listener, name="metrics")``.

Every metric, its type, unit and labels is in ``docs/observability-prometheus.md`` and in
:data:`METRICS`. Labels are low-cardinality only: the model as requested (``model``), the
provider instance and its model (``provider``, ``model``), the outcome and the error
class; never a request id, a prompt or a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import attrs

from llmx.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from llmx.plugin import Register
    from llmx_prometheus._listener import PrometheusListener as PrometheusListener
    from llmx_prometheus._listener import aiohttp_handler as aiohttp_handler
    from llmx_prometheus._listener import exposition as exposition

# What the listener needs (prometheus_client, http.server, ...) is imported when a client
# builds it, not when llmx loads the plugin: `llmx plugins --load` and `llmx --help`
# stay quick (importing prometheus_client takes about 0.4 s on a busy machine).
_EXPORTS = {
    "PrometheusListener": "llmx_prometheus._listener",
    "aiohttp_handler": "llmx_prometheus._listener",
    "exposition": "llmx_prometheus._listener",
}

__all__ = [
    "BREAKER_STATES",
    "DURATION_BUCKETS",
    "METRICS",
    "TTFT_BUCKETS",
    "PrometheusListener",
    "PrometheusSettings",
    "aiohttp_handler",
    "exposition",
    "llmx_register_listeners",
]

# Only __getattr__: pluggy finds the hook implementations with dir(module).
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())[0]

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Histogram buckets (seconds) of the request and attempt durations: LLM answers take
from tens of milliseconds (a cache hit) to minutes (a long reasoning answer)."""

TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Histogram buckets (seconds) of the time to the first streamed chunk."""

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
"""The value of ``llmx_breaker_state`` for each circuit-breaker state."""

# name: (type, unit, labels, help). The one list the metrics are built from and the
# docs are checked against.
METRICS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "llmx_requests": (
        "counter",
        "requests",
        ("model", "outcome"),
        "Requests that ended, by the model as requested (an alias or instance/model) and "
        "outcome (success, error, cancelled).",
    ),
    "llmx_request_errors": (
        "counter",
        "requests",
        ("model", "error"),
        "Requests that failed, by the model as requested and the class of the error the "
        "caller got (RateLimitError, TimeoutError, ...).",
    ),
    "llmx_request_duration_seconds": (
        "histogram",
        "seconds",
        ("model", "outcome"),
        "Time from a request entering llmx to its end (retries and fallbacks included; "
        "a stream: to its last chunk).",
    ),
    "llmx_requests_in_flight": (
        "gauge",
        "requests",
        ("model",),
        "Requests started and not yet ended, by the model as requested.",
    ),
    "llmx_cache_hits": (
        "counter",
        "requests",
        ("model",),
        "Requests answered from llmx's response cache.",
    ),
    "llmx_attempts": (
        "counter",
        "attempts",
        ("provider", "model", "outcome"),
        "Attempts against one provider instance (first tries, retries, fallbacks), by "
        "instance, its model and outcome (success, error, cancelled: abandoned, e.g. a "
        "hedge that lost).",
    ),
    "llmx_attempt_errors": (
        "counter",
        "attempts",
        ("provider", "model", "error"),
        "Failed attempts by instance, model and error class (cancelled ones not included).",
    ),
    "llmx_attempt_duration_seconds": (
        "histogram",
        "seconds",
        ("provider", "model", "outcome"),
        "Duration of one attempt against one provider instance.",
    ),
    "llmx_retries": (
        "counter",
        "attempts",
        ("provider", "model"),
        "Attempts that retried the instance of the request's previous attempt.",
    ),
    "llmx_fallbacks": (
        "counter",
        "attempts",
        ("provider", "model"),
        "Attempts that moved to another instance than the previous attempt's (a "
        "fallback), by the instance moved to.",
    ),
    "llmx_time_to_first_token_seconds": (
        "histogram",
        "seconds",
        ("provider", "model"),
        "Time from the start of a streamed attempt to its first chunk.",
    ),
    "llmx_tokens": (
        "counter",
        "tokens",
        ("provider", "model", "type"),
        "Tokens the providers reported, by type: input (the whole prompt), output, "
        "reasoning (part of output), cached (part of input, read from the provider's "
        "prompt cache).",
    ),
    "llmx_cost_usd": (
        "counter",
        "USD",
        ("provider", "model"),
        "Cost of the answers in USD, for models whose prices are known (cache hits cost nothing).",
    ),
    "llmx_breaker_state": (
        "gauge",
        "state",
        ("provider",),
        "Circuit-breaker state of a provider instance: 0 closed, 1 half_open, 2 open.",
    ),
    "llmx_breaker_transitions": (
        "counter",
        "transitions",
        ("provider", "state"),
        "Circuit-breaker transitions of a provider instance, by the state entered.",
    ),
}
"""Every metric: ``name -> (type, unit, label names, help)``. A counter is exposed as
``NAME_total`` (and ``NAME_created``), a histogram as ``NAME_bucket``, ``NAME_sum`` and
``NAME_count``."""


@attrs.frozen
class PrometheusSettings:
    """``[plugins.prometheus]``.

    ``port``: serve the metrics over HTTP on ``host:port`` (any path answers; scrape
    ``/metrics``); none: no endpoint (read them with :func:`exposition`, or from
    prometheus_client's default registry with your own endpoint). ``host``: the address
    to listen on, ``127.0.0.1`` by default (``0.0.0.0`` for a scraper on another
    machine). ``registry``: ``"default"`` records into prometheus_client's default
    registry (alongside your app's own metrics, exposed by any endpoint of it);
    ``"own"`` into a fresh :class:`~prometheus_client.CollectorRegistry` for this
    listener, which only its endpoint serves.
    """

    port: int | None = attrs.field(default=None)
    host: str = "127.0.0.1"
    registry: Literal["default", "own"] = "default"

    @port.validator
    def _check_port(self, _: object, value: int | None) -> None:
        if value is not None and not 0 <= value <= 65535:
            msg = f"port must be between 0 and 65535 (0: any free port), got {value}"
            raise ValueError(msg)


def _from_settings(settings: PrometheusSettings) -> PrometheusListener:
    from llmx_prometheus._listener import from_settings

    return from_settings(settings)


@hookimpl
def llmx_register_listeners(register: Register) -> None:
    """Register the listener ``prometheus``, configured by ``[plugins.prometheus]``."""
    register("prometheus", _from_settings, settings=PrometheusSettings)

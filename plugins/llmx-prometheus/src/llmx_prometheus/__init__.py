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

import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from llmx.plugin import hookimpl

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from aiohttp import web

    from llmx.plugin import (
        AttemptEnd,
        BreakerTransition,
        Register,
        RequestCancelled,
        RequestEnd,
        RequestError,
        RequestStart,
    )

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

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Histogram buckets (seconds) of the request and attempt durations: LLM answers take
from tens of milliseconds (a cache hit) to minutes (a long reasoning answer)."""

TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Histogram buckets (seconds) of the time to the first streamed chunk."""

log = logging.getLogger("llmx_prometheus")

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
        "instance, its model and outcome (success, error).",
    ),
    "llmx_attempt_errors": (
        "counter",
        "attempts",
        ("provider", "model", "error"),
        "Failed attempts by instance, model and error class.",
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
        "Attempts that moved to another instance than the previous attempt's (a fallback "
        "or a hedge), by the instance moved to.",
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
class _Metrics:
    """The metric objects of one :class:`CollectorRegistry`."""

    requests: Any
    request_errors: Any
    request_duration: Any
    in_flight: Any
    cache_hits: Any
    attempts: Any
    attempt_errors: Any
    attempt_duration: Any
    retries: Any
    fallbacks: Any
    ttft: Any
    tokens: Any
    cost: Any
    breaker_state: Any
    breaker_transitions: Any

    @classmethod
    def create(cls, registry: CollectorRegistry) -> _Metrics:
        made: list[Any] = []
        kinds = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
        for name, (kind, _, labels, doc) in METRICS.items():
            kwargs: dict[str, Any] = {"registry": registry}
            if kind == "histogram":
                kwargs["buckets"] = TTFT_BUCKETS if "first_token" in name else DURATION_BUCKETS
            made.append(kinds[kind](name, doc, labels, **kwargs))
        return cls(*made)


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _metrics_for(registry: CollectorRegistry) -> _Metrics:
    """The llmx metrics of ``registry``, created once (several listeners, one per
    client, share the metrics of the default registry)."""
    with _lock:
        metrics = _by_registry.get(registry)
        if metrics is None:
            metrics = _by_registry[registry] = _Metrics.create(registry)
        return metrics


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


# (host, port) -> (server, thread, registry): a port serves one registry, whichever
# client's listener started it.
_servers: dict[tuple[str, int], tuple[WSGIServer, threading.Thread, CollectorRegistry]] = {}


class PrometheusListener:
    """Records llmx's events into Prometheus metrics (see :data:`METRICS`).

    ``registry``: the :class:`~prometheus_client.CollectorRegistry` to record into
    (prometheus_client's default registry when None). ``port``/``host``: also serve the
    registry over HTTP (:attr:`address` is where, once started; port 0 takes any free
    port). Register it with ``llmx.Registry().register(listener, name=...)``, or let the
    plugin build it from ``[plugins.prometheus]``.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.registry: CollectorRegistry = REGISTRY if registry is None else registry
        self._m = _metrics_for(self.registry)
        # request id -> the model label (as requested), and the instance of its last
        # attempt; both dropped when the request ends.
        self._models: dict[str, str] = {}
        self._last: dict[str, str] = {}
        # label values -> the metrics' children (see the event hooks)
        self._requests: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._gauges: dict[str, Any] = {}
        self._costs: dict[tuple[str, str], Any] = {}
        self._attempts: dict[tuple[str, str, bool], tuple[Any, Any]] = {}
        self._tokens: dict[tuple[str, str, bool], tuple[Any, ...]] = {}
        self._server: tuple[str, int] | None = None
        self.address: tuple[str, int] | None = None
        """``(host, port)`` the metrics are served on, or None."""
        if port is not None:
            self.address = self._serve(host, port)

    def _serve(self, host: str, port: int) -> tuple[str, int] | None:
        from prometheus_client import start_http_server

        with _lock:
            running = _servers.get((host, port)) if port else None
            if running is not None:
                if running[2] is not self.registry:
                    msg = (
                        f"{host}:{port} already serves the metrics of another registry; "
                        "give [plugins.prometheus] another port, or registry = 'default' "
                        "@ $.plugins.prometheus.port"
                    )
                    raise _config_error(msg)
                return (host, port)
            try:
                server, thread = start_http_server(port, addr=host, registry=self.registry)
            except OSError as err:
                # A warning, not an error: another process reading the same llmx.toml
                # (an `llmx chat` beside the app) must not fail because the app holds
                # the port. The metrics are still recorded (exposition()).
                log.warning(
                    "cannot serve Prometheus metrics on %s:%s: %s; the metrics are recorded "
                    "but not served by this process. Choose a free port in "
                    "[plugins.prometheus] port (or none)",
                    host,
                    port,
                    err.strerror or err,
                )
                return None
            bound = (host, int(server.server_port))
            _servers[bound] = (server, thread, self.registry)
            self._server = bound
            return bound

    def close(self) -> None:
        """Stop the HTTP endpoint this listener started (if any). Other listeners
        sharing it (same host and port) lose it too; the metrics stay."""
        with _lock:
            if self._server is None:
                return
            server, thread, _ = _servers.pop(self._server)
            self._server = None
        server.shutdown()
        server.server_close()
        thread.join(5)

    # -- the event hooks: quick, never raising (dict lookups and a few increments) -----
    # The labelled children of each label combination are looked up once and kept in
    # plain dicts: prometheus_client's .labels() takes a lock and builds a key on every
    # call (scripts/measure.py: the hooks of one request took 14.6 us of CPU with
    # .labels() on every call, 5.9 us with these dicts).

    def _request_children(self, model: str, outcome: str) -> tuple[Any, Any]:
        key = (model, outcome)
        children = self._requests.get(key)
        if children is None:
            m = self._m
            children = self._requests[key] = (
                m.requests.labels(model, outcome),
                m.request_duration.labels(model, outcome),
            )
        return children

    def _in_flight(self, model: str) -> Any:
        gauge = self._gauges.get(model)
        if gauge is None:
            gauge = self._gauges[model] = self._m.in_flight.labels(model)
        return gauge

    @hookimpl
    def llmx_request_start(self, event: RequestStart) -> None:
        """A request started: one more in flight."""
        model = event.request.model
        self._models[event.request_id] = model
        self._in_flight(model).inc()

    def _ended(self, request_id: str, outcome: str, duration: float) -> str:
        model = self._models.pop(request_id, "")
        self._last.pop(request_id, None)
        self._in_flight(model).dec()
        count, histogram = self._request_children(model, outcome)
        count.inc()
        histogram.observe(duration)
        return model

    @hookimpl
    def llmx_request_end(self, event: RequestEnd) -> None:
        """A request succeeded: its count, duration, cost and cache hit."""
        model = self._ended(event.request_id, "success", event.duration)
        response = event.response
        if response.cached:
            self._m.cache_hits.labels(model).inc()
        elif response.cost:
            key = (response.provider, response.model)
            cost = self._costs.get(key)
            if cost is None:
                cost = self._costs[key] = self._m.cost.labels(*key)
            cost.inc(response.cost)

    @hookimpl
    def llmx_request_error(self, event: RequestError) -> None:
        """A request failed: its count, duration and error class."""
        model = self._ended(event.request_id, "error", event.duration)
        self._m.request_errors.labels(model, type(event.error).__name__).inc()

    @hookimpl
    def llmx_request_cancelled(self, event: RequestCancelled) -> None:
        """A request was cancelled (or its stream closed early)."""
        self._ended(event.request_id, "cancelled", event.duration)

    @hookimpl
    def llmx_attempt_end(self, event: AttemptEnd) -> None:
        """An attempt ended: its count, duration, error class, TTFT, tokens; and
        whether it retried the previous attempt's instance or moved to another."""
        m = self._m
        provider, model, error = event.provider, event.model, event.error
        key = (provider, model, error is None)
        children = self._attempts.get(key)
        if children is None:
            outcome = "success" if error is None else "error"
            children = self._attempts[key] = (
                m.attempts.labels(provider, model, outcome),
                m.attempt_duration.labels(provider, model, outcome),
            )
        children[0].inc()
        children[1].observe(event.duration)
        if error is not None:
            m.attempt_errors.labels(provider, model, type(error).__name__).inc()
        request_id = event.request_id
        previous = self._last.get(request_id)
        if previous is not None:
            moved = m.retries if previous == provider else m.fallbacks
            moved.labels(provider, model).inc()
        self._last[request_id] = provider
        if event.ttft is not None:
            m.ttft.labels(provider, model).observe(event.ttft)
        usage = event.usage
        if usage is not None:
            tokens = self._tokens.get(key)
            if tokens is None:
                tokens = self._tokens[key] = tuple(
                    m.tokens.labels(provider, model, kind)
                    for kind in ("input", "output", "reasoning", "cached")
                )
            tokens[0].inc(usage.input_tokens)
            tokens[1].inc(usage.output_tokens)
            if usage.reasoning_tokens:
                tokens[2].inc(usage.reasoning_tokens)
            if usage.cache_read_tokens:
                tokens[3].inc(usage.cache_read_tokens)

    @hookimpl
    def llmx_breaker_transition(self, event: BreakerTransition) -> None:
        """A breaker moved: its state gauge and transition count."""
        self._m.breaker_state.labels(event.instance).set(BREAKER_STATES.get(event.new, -1))
        self._m.breaker_transitions.labels(event.instance, event.new).inc()


def _config_error(msg: str) -> Exception:
    from llmx import ConfigError

    return ConfigError(msg)


def _from_settings(settings: PrometheusSettings) -> PrometheusListener:
    registry = REGISTRY if settings.registry == "default" else CollectorRegistry()
    return PrometheusListener(registry=registry, port=settings.port, host=settings.host)


@hookimpl
def llmx_register_listeners(register: Register) -> None:
    """Register the listener ``prometheus``, configured by ``[plugins.prometheus]``."""
    register("prometheus", _from_settings, settings=PrometheusSettings)


def exposition(
    registry: CollectorRegistry | None = None, accept: str | None = None
) -> tuple[bytes, str]:
    """The metrics of ``registry`` (prometheus_client's default registry when None) as
    ``(body, content_type)``: the Prometheus text format, or OpenMetrics when the
    ``Accept`` header ``accept`` asks for it. For an endpoint of your own (a web app, a
    gateway)."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY if registry is None else registry), content_type


def aiohttp_handler(
    registry: CollectorRegistry | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp request handler serving :func:`exposition` of ``registry``:
    ``app.router.add_get("/metrics", aiohttp_handler())``."""
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = exposition(registry, request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    return metrics

"""The listener: llmx's events into prometheus_client metrics, and their exposition."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from llmx.plugin import hookimpl
from llmx_prometheus import BREAKER_STATES, DURATION_BUCKETS, METRICS, TTFT_BUCKETS

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from aiohttp import web

    from llmx.plugin import (
        AttemptEnd,
        BreakerTransition,
        RequestCancelled,
        RequestEnd,
        RequestError,
        RequestStart,
    )
    from llmx_prometheus import PrometheusSettings

log = logging.getLogger("llmx_prometheus")


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
        # request id -> the model label (as requested), and the instance of each of its
        # attempts by number ("" until it ended); both dropped when the request ends.
        self._models: dict[str, str] = {}
        self._tried: dict[str, list[str]] = {}
        # label values -> the metrics' children (see the event hooks)
        self._requests: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._gauges: dict[str, Any] = {}
        self._costs: dict[tuple[str, str], Any] = {}
        self._attempts: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._tokens: dict[tuple[str, str, str], tuple[Any, ...]] = {}
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
        self._tried.pop(request_id, None)
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
        # an abandoned attempt (a hedge that lost, a cancelled request, a stream closed
        # early) ends with a CancelledError: "cancelled", not an error of the provider
        outcome = (
            "success"
            if error is None
            else "cancelled"
            if isinstance(error, asyncio.CancelledError)
            else "error"
        )
        key = (provider, model, outcome)
        children = self._attempts.get(key)
        if children is None:
            children = self._attempts[key] = (
                m.attempts.labels(provider, model, outcome),
                m.attempt_duration.labels(provider, model, outcome),
            )
        children[0].inc()
        children[1].observe(event.duration)
        if outcome == "error":
            m.attempt_errors.labels(provider, model, type(error).__name__).inc()
        # Attempt n retried the instance of attempt n - 1, or moved to another one,
        # whatever order they ended in. A hedge shares its attempt's number (it runs
        # beside it): neither a retry nor a fallback; the one that lost is "cancelled".
        request_id, number = event.request_id, event.attempt
        tried = self._tried.get(request_id)
        if tried is None and request_id in self._models:  # none after the request ended
            tried = self._tried[request_id] = []
        if tried is not None:
            if len(tried) < number:
                tried.extend([""] * (number - len(tried)))
            tried[number - 1] = provider
            if number > 1 and tried[number - 2]:
                moved = m.retries if tried[number - 2] == provider else m.fallbacks
                moved.labels(provider, model).inc()
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


def from_settings(settings: PrometheusSettings) -> PrometheusListener:
    """The listener ``[plugins.prometheus]`` describes."""
    registry = REGISTRY if settings.registry == "default" else CollectorRegistry()
    return PrometheusListener(registry=registry, port=settings.port, host=settings.host)


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

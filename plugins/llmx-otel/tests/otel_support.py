"""Helpers of llmx-otel's tests: the telemetry back-ends the spans and metrics go to
(the ``telemetry`` fixture, made available by conftest.py).

``telemetry`` is parametrized: ``memory`` (the SDK's in-memory span exporter and metric
reader) and ``otlp`` (the SDK's OTLP/HTTP exporters sending protobuf to a real receiver on
127.0.0.1, :class:`OtlpReceiver`, which decodes it with ``opentelemetry-proto``). Both
hand the tests the same records (:class:`SpanRecord`, :class:`Point`), so every scenario
is asserted on what a collector would receive as well as on what the SDK holds.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

try:
    from aiohttp import web
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        InMemoryMetricReader,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError as err:  # pragma: no cover - a broken environment, said loudly
    msg = (
        f"llmx-otel's tests need the OpenTelemetry SDK, OTLP/HTTP exporter and protos ({err}); "
        "run scripts/bootstrap (or pip install opentelemetry-sdk "
        "opentelemetry-exporter-otlp-proto-http opentelemetry-proto)"
    )
    raise ImportError(msg) from err

from llmx_otel import Instrumentation

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


@attrs.frozen
class SpanRecord:
    """One finished span, whichever back-end received it."""

    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    kind: str
    status: str
    description: str
    attributes: dict[str, Any]
    start: int
    end: int


@attrs.frozen
class Point:
    """One histogram data point: its attributes, count, sum and bucket boundaries."""

    attributes: dict[str, Any]
    count: int
    sum: float
    bounds: tuple[float, ...]


def _any_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(_any_value(v) for v in value.array_value.values)
    return getattr(value, which)


def _kv(pairs: Any) -> dict[str, Any]:
    return {p.key: _any_value(p.value) for p in pairs}


def _id(raw: bytes) -> int | None:
    return int.from_bytes(raw, "big") if raw else None


class OtlpReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1 (``/v1/traces``, ``/v1/metrics``), in a thread
    with its own event loop, keeping what it decodes."""

    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []
        self.metrics: dict[str, list[Point]] = {}
        self.units: dict[str, str] = {}
        self.content_types: set[str] = set()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL the exporters send to."""
        return f"http://127.0.0.1:{self.port}"

    async def _body(self, request: web.Request) -> bytes:
        self.content_types.add(request.content_type)
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body

    async def _traces(self, request: web.Request) -> web.Response:
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(await self._body(request))
        for resource in message.resource_spans:
            for scope in resource.scope_spans:
                assert (scope.scope.name, scope.scope.version) == ("llmx_otel", "0.1.0")
                for s in scope.spans:
                    self.spans.append(
                        SpanRecord(
                            s.name,
                            int.from_bytes(s.trace_id, "big"),
                            int.from_bytes(s.span_id, "big"),
                            _id(s.parent_span_id),
                            _KINDS[s.kind],
                            _STATUS[s.status.code],
                            s.status.message,
                            _kv(s.attributes),
                            s.start_time_unix_nano,
                            s.end_time_unix_nano,
                        )
                    )
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    async def _metrics(self, request: web.Request) -> web.Response:
        message = metrics_service_pb2.ExportMetricsServiceRequest()
        message.ParseFromString(await self._body(request))
        for resource in message.resource_metrics:
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    self.units[m.name] = m.unit
                    points = [
                        Point(_kv(p.attributes), p.count, p.sum, tuple(p.explicit_bounds))
                        for p in m.histogram.data_points
                    ]
                    # cumulative temporality: the last export holds the totals
                    self.metrics[m.name] = points
        answer = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def start(self) -> None:
        """Start the thread and the server."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        """Stop the server and the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _memory_spans(exporter: InMemorySpanExporter) -> list[SpanRecord]:
    out = []
    for s in exporter.get_finished_spans():
        parent = s.parent.span_id if s.parent is not None else None
        assert s.context is not None
        out.append(
            SpanRecord(
                s.name,
                s.context.trace_id,
                s.context.span_id,
                parent,
                s.kind.name,
                s.status.status_code.name,
                s.status.description or "",
                dict(s.attributes or {}),
                s.start_time or 0,
                s.end_time or 0,
            )
        )
    return out


def _memory_metrics(reader: InMemoryMetricReader) -> tuple[dict[str, list[Point]], dict[str, str]]:
    points: dict[str, list[Point]] = {}
    units: dict[str, str] = {}
    data = reader.get_metrics_data()
    if data is None:
        return points, units
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for m in scope.metrics:
                units[m.name] = m.unit or ""
                points[m.name] = [
                    Point(dict(p.attributes or {}), p.count, p.sum, tuple(p.explicit_bounds))
                    for p in m.data.data_points  # type: ignore[union-attr]
                ]
    return points, units


@attrs.define
class Telemetry:
    """An :class:`Instrumentation` wired to one back-end, and what reached it."""

    backend: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    _spans: Callable[[], list[SpanRecord]]
    _metrics: Callable[[], tuple[dict[str, list[Point]], dict[str, str]]]

    def instrumentation(self, **options: Any) -> Instrumentation:
        """A listener sending to this back-end."""
        return Instrumentation(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def spans(self) -> list[SpanRecord]:
        """Every span finished so far (flushed to the receiver first)."""
        self.tracer_provider.force_flush()
        return self._spans()

    def metrics(self) -> dict[str, list[Point]]:
        """The histogram points per metric name (flushed first)."""
        self.meter_provider.force_flush()
        return self._metrics()[0]

    def units(self) -> dict[str, str]:
        """The unit per metric name."""
        self.meter_provider.force_flush()
        return self._metrics()[1]


@pytest.fixture(params=["memory", "otlp"])
def telemetry(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    """Spans and metrics to the SDK's in-memory exporter and reader, or over OTLP/HTTP
    (protobuf) to a real receiver on 127.0.0.1."""
    if request.param == "memory":
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        yield Telemetry(
            "memory",
            tracer_provider,
            meter_provider,
            lambda: _memory_spans(exporter),
            lambda: _memory_metrics(reader),
        )
        tracer_provider.shutdown()
        meter_provider.shutdown()
        return
    receiver = OtlpReceiver()
    receiver.start()
    try:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
        )
        metric_reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{receiver.endpoint}/v1/metrics"),
            export_interval_millis=3_600_000,
        )
        meter_provider = MeterProvider(metric_readers=[metric_reader])
        yield Telemetry(
            "otlp",
            tracer_provider,
            meter_provider,
            lambda: list(receiver.spans),
            lambda: (receiver.metrics, receiver.units),
        )
        tracer_provider.shutdown()
        meter_provider.shutdown()
        assert receiver.content_types <= {"application/x-protobuf"}
    finally:
        receiver.stop()

"""llmx through its public API: ``llmx.Client(config)``, ``complete`` and ``stream``.

The spec's ``options`` carry the llmx config (a dict, see ``bench.clients.LLMX_CONFIGS``),
the model reference, and ``event_hooks``: register a plugin implementing every event
hook (each a no-op), so the hot path builds and dispatches the event objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.drivers._harness import SkipError, main
from bench.wire import PROMPT
from llmx.plugin import hookimpl


def _event_hooks_plugin() -> object:
    """A plugin implementing every event hook as a no-op (llmx is imported lazily, so
    that the harness can time ``import llmx`` itself). ``_check_event_hooks`` makes
    sure that no event hook of this llmx is missing from it."""

    class EventHooks:
        llmx_contract = "1.2"  # llmx_attempt_start and llmx_request_cancelled came with 1.2

        @hookimpl
        def llmx_request_start(self, event: Any) -> None:
            del event

        @hookimpl
        def llmx_attempt_start(self, event: Any) -> None:
            del event

        @hookimpl
        def llmx_attempt_end(self, event: Any) -> None:
            del event

        @hookimpl
        def llmx_request_end(self, event: Any) -> None:
            del event

        @hookimpl
        def llmx_request_error(self, event: Any) -> None:
            del event

        @hookimpl
        def llmx_breaker_transition(self, event: Any) -> None:
            del event

        @hookimpl
        def llmx_request_cancelled(self, event: Any) -> None:
            del event

    plugin = EventHooks()
    _check_event_hooks(plugin)
    return plugin


def _otel_plugin() -> object:
    """llmx-otel's listener over the OpenTelemetry SDK: spans through a
    ``BatchSpanProcessor`` to an exporter that drops them (what an app exporting over
    OTLP pays in its request path; the export runs in the SDK's own thread), the GenAI
    metrics aggregated by an in-memory reader."""
    try:
        from llmx_otel import Instrumentation
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError as err:
        msg = (
            f"the otel config needs llmx-otel and opentelemetry-sdk ({err}): run scripts/bootstrap"
        )
        raise SkipError(msg) from err

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            del spans
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return Instrumentation(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _check_event_hooks(plugin: object) -> None:
    """Every hook spec that is not a registration hook is an event hook: the plugin
    must implement each one, or the "whole pipeline on" config would skip some."""
    import llmx.hookspecs

    events = {
        name
        for name in dir(llmx.hookspecs)
        if name.startswith("llmx_")
        and not name.startswith("llmx_register_")
        and callable(getattr(llmx.hookspecs, name))
    }
    missing = sorted(events - set(dir(plugin)))
    if missing:
        msg = f"the bench's event-hook plugin lacks {', '.join(missing)}: add them"
        raise RuntimeError(msg)


class LlmxAdapter:
    """llmx.Client against the fake server."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import llmx

        options = spec["options"]
        self.model: str = options["model"]
        provider_type = options.get("provider_type")
        config = llmx.Config.from_dict(options["config"])
        registry = llmx.Registry.from_config(config)
        if provider_type is not None and provider_type not in {p.name for p in registry.plugins()}:
            msg = f"provider type {provider_type!r} is not installed"
            raise SkipError(msg)
        if options.get("event_hooks"):
            registry.register(_event_hooks_plugin(), name="bench-event-hooks")
        if options.get("otel"):
            registry.register(_otel_plugin(), name="bench-otel")
        try:
            self.client = llmx.Client(config, registry=registry)
        except llmx.ConfigError as err:
            msg = f"this llmx does not accept the config yet: {err}"
            raise SkipError(msg) from err
        self._text_delta = llmx.TextDelta

    async def open(self) -> None:
        await self.client.__aenter__()

    async def close(self) -> None:
        await self.client.aclose()

    async def complete(self) -> str:
        reply = await self.client.complete(model=self.model, prompt=PROMPT)
        return reply.text

    async def stream(self, first: Callable[[], None]) -> str:
        parts: list[str] = []
        async with self.client.stream(model=self.model, prompt=PROMPT) as stream:
            async for piece in stream.text():
                if not parts:
                    first()
                parts.append(piece)
        return "".join(parts)


if __name__ == "__main__":
    main(LlmxAdapter, "llmx")

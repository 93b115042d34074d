"""llmx-otel as an installed plugin: enabled through ``[plugins] enable`` (its entry
point), configured with :func:`llmx_otel.configure`, never loaded when not enabled;
its bound on open requests; streams and embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import llmx_otel
import pytest
from llmx_otel import _instrumentation
from otel_support import Telemetry

import llmx
from llmx.testing import Reply
from llmx_openai.testing import FakeOpenAIServer

KEY = "sk-otel-plugin-test"


@pytest.fixture(autouse=True)
def _fresh_default() -> Iterator[None]:
    """Each test starts and ends without a configured default instance."""
    llmx_otel._default = None
    yield
    llmx_otel._default = None


def config(server: FakeOpenAIServer, **extra: Any) -> dict[str, Any]:
    provider = {"type": "openai", "base_url": server.base_url, "api_key": KEY}
    return {"providers": {"main": provider}, **extra}


async def test_enabled_in_config_through_its_entry_point(telemetry: Telemetry) -> None:
    """``[plugins] enable = ["otel"]`` loads the installed entry point; the providers
    given to ``configure`` receive the spans, ``propagate`` applies."""
    llmx_otel.configure(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        propagate=True,
    )
    async with FakeOpenAIServer(api_key=KEY) as server:
        cfg = config(server, plugins={"enable": ["otel"]})
        async with llmx.Client(cfg) as client:
            info = {p.name: p for p in client.registry.plugins()}["otel"]
            await client.complete(model="main/m", prompt="Hi")
    assert info.distribution == "llmx-otel"
    spans = telemetry.spans()
    assert sorted(s.name for s in spans) == ["chat m", "chat main/m"]
    assert "traceparent" in server.model_requests[0].headers


async def test_not_loaded_unless_enabled(telemetry: Telemetry) -> None:
    """Installed but not enabled: a listener is not autoloaded, so no span is made."""
    llmx_otel.configure(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    async with FakeOpenAIServer(api_key=KEY) as server, llmx.Client(config(server)) as client:
        await client.complete(model="main/m", prompt="Hi")
        assert client.registry.events.attempt_start is None
    assert telemetry.spans() == []


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``otel`` plugin's default instance reads the conventions' content switch and
    llmx's propagation switch; both are off without them."""
    assert (llmx_otel.default().propagate, llmx_otel.default().capture_content) == (False, False)
    llmx_otel._default = None
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_LLMX_PROPAGATE", "1")
    instance = llmx_otel.default()
    assert (instance.propagate, instance.capture_content) == (True, True)
    assert llmx_otel.configure(propagate=False).propagate is False


async def test_cancelled_requests_are_bounded(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancelled request sends no last event: past MAX_OPEN_REQUESTS open requests the
    oldest span is ended, marked ``llmx.abandoned``."""
    monkeypatch.setattr(_instrumentation, "MAX_OPEN_REQUESTS", 1)
    listener = telemetry.instrumentation()
    async with FakeOpenAIServer(api_key=KEY) as server:
        server.enqueue(Reply("never", delay=5.0))
        registry = llmx.Registry()
        registry.register(listener, name="otel-test")
        async with llmx.Client(config(server), registry=registry) as client:
            task = asyncio.ensure_future(client.complete(model="main/m", prompt="slow"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(2):
                await client.complete(model="main/m", prompt="Hi")
    abandoned = [s for s in telemetry.spans() if s.attributes.get("llmx.abandoned")]
    (span,) = abandoned
    assert span.name == "chat main/m"
    assert listener._open == {}


async def test_embeddings(telemetry: Telemetry) -> None:
    """``client.embed`` makes an ``embeddings`` span with its usage, and the duration and
    input-token metrics (no output tokens)."""
    async with FakeOpenAIServer(api_key=KEY) as server:
        registry = llmx.Registry()
        registry.register(telemetry.instrumentation(), name="otel-test")
        async with llmx.Client(config(server), registry=registry) as client:
            await client.embed(model="main/text-embedding-3-small", input=["a", "b"])
    spans = {s.name: s for s in telemetry.spans()}
    request = spans["embeddings main/text-embedding-3-small"]
    assert request.attributes["gen_ai.operation.name"] == "embeddings"
    assert request.attributes["gen_ai.usage.input_tokens"] > 0
    assert "gen_ai.response.finish_reasons" not in request.attributes
    metrics = telemetry.metrics()
    (tokens,) = metrics["gen_ai.client.token.usage"]
    assert tokens.attributes["gen_ai.token.type"] == "input"
    assert tokens.attributes["gen_ai.operation.name"] == "embeddings"


def test_a_malformed_setting_fails_the_plugin_load_naming_it(tmp_path: Any) -> None:
    """``OTEL_INSTRUMENTATION_LLMX_PROPAGATE=maybe``: enabling the plugin reports it as
    failed with a message naming the variable and the fix (in a fresh interpreter, where
    the plugin is imported for the first time)."""
    import os
    import subprocess
    import sys

    script = (
        "import llmx\n"
        "registry = llmx.Registry(enable=['otel'])\n"
        "registry.assemble()\n"
        "info = {p.name: p for p in registry.plugins()}['otel']\n"
        "print(info.status, info.error)\n"
    )
    env = {**os.environ, "OTEL_INSTRUMENTATION_LLMX_PROPAGATE": "maybe"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("failed")
    assert "OTEL_INSTRUMENTATION_LLMX_PROPAGATE='maybe' is not a boolean" in done.stdout
    assert "set it to true or false" in done.stdout


async def test_a_failing_sdk_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    """A tracer that raises (a broken exporter set-up, an SDK bug) costs the spans, never
    the answer: the hooks swallow it and log it at debug on ``llmx_otel``."""
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider, Tracer

    class Broken(NoOpTracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
            tracer = super().get_tracer(*args, **kwargs)

            def start_span(*a: Any, **k: Any) -> Any:
                raise RuntimeError("exporter misconfigured")

            tracer.start_span = start_span  # type: ignore[method-assign]
            return tracer

    listener = llmx_otel.Instrumentation(
        tracer_provider=Broken(), meter_provider=NoOpMeterProvider()
    )
    caplog.set_level("DEBUG", logger="llmx_otel")
    async with FakeOpenAIServer(api_key=KEY) as server:
        registry = llmx.Registry()
        registry.register(listener, name="otel-test")
        async with llmx.Client(config(server), registry=registry) as client:
            reply = await client.complete(model="main/m", prompt="Hi")
    assert reply.text
    assert "exporter misconfigured" in caplog.text


async def test_sampled_out_requests_make_no_spans_but_count() -> None:
    """Under a sampler that drops the request, no span is recorded (nor content built),
    the propagated context says "not sampled", and the metrics still count it."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=ALWAYS_OFF)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    listener = llmx_otel.Instrumentation(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        propagate=True,
        capture_content=True,
    )
    async with FakeOpenAIServer(api_key=KEY) as server:
        registry = llmx.Registry()
        registry.register(listener, name="otel-test")
        async with llmx.Client(config(server), registry=registry) as client:
            await client.complete(model="main/m", prompt="Hi")
    assert exporter.get_finished_spans() == ()
    flags = server.model_requests[0].headers["traceparent"].rsplit("-", 1)[1]
    assert not int(flags, 16) & 1  # not sampled
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "gen_ai.client.operation.duration" in names
    assert listener._open == {}

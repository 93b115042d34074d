"""llmx-prometheus, installed, end to end: real requests through ``llmx.Client`` against
fake OpenAI servers on 127.0.0.1 (success, retry, fallback, failure, stream, breaker,
cancellation, cache hit), the metrics scraped from the plugin's endpoint with a real HTTP
GET and parsed with prometheus_client's text parser; exact counts asserted."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import llmx
import llmx_prometheus
from llmx.testing import ErrorReply, Reply, Stall
from llmx_openai.testing import FakeOpenAIServer
from llmx_prometheus import METRICS, PrometheusListener

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def provider(server: FakeOpenAIServer, **extra: Any) -> dict[str, Any]:
    """A provider instance table for ``server``."""
    return {"type": "openai", "base_url": server.base_url, "api_key": "test-key", **extra}


def config_for(providers: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A config enabling the plugin with its own registry on a free port."""
    return {
        "plugins": {"enable": ["prometheus"], "prometheus": {"port": 0, "registry": "own"}},
        "providers": dict(providers),
        "retry": {"attempts": 1},
        **extra,
    }


def get(address: tuple[str, int], path: str = "/metrics") -> tuple[str, str]:
    """A real HTTP GET: (body, content type)."""
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}{path}", timeout=5) as r:
        return r.read().decode(), r.headers["Content-Type"]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(client: llmx.Client) -> Samples:
    """The metrics of ``client``'s prometheus listener, over HTTP."""
    listener = client.registry.listeners["prometheus"]
    assert isinstance(listener, PrometheusListener)
    assert listener.address is not None
    text, content_type = await asyncio.to_thread(get, listener.address)
    assert content_type.startswith("text/plain; version=0.0.4")
    return parse(text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def of(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples named ``name``: labels -> value."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


@contextlib.asynccontextmanager
async def metrics_client(config: Mapping[str, Any]) -> AsyncIterator[llmx.Client]:
    """A client whose prometheus listener's endpoint is closed afterwards."""
    client = llmx.Client(config)
    try:
        async with client:
            yield client
    finally:
        listener = client.registry.listeners.get("prometheus")
        if isinstance(listener, PrometheusListener):
            listener.close()


async def test_success_counts_tokens_cost_and_latency() -> None:
    async with FakeOpenAIServer() as server:
        server.enqueue(Reply("Hello.", usage=(1000, 200), reasoning_tokens=50, cached_tokens=400))
        prices = {"m": {"input_price": 2.0, "output_price": 10.0}}
        config = config_for({"main": provider(server, model_info=prices)})
        async with metrics_client(config) as client:
            reply = await client.complete(model="main/m", prompt="Hi")
            assert reply.cost is not None
            m = await scrape(client)
    assert of(m, "llmx_requests_total") == {
        frozenset({("model", "main/m"), ("outcome", "success")}): 1.0
    }
    assert of(m, "llmx_attempts_total") == {
        frozenset({("provider", "main"), ("model", "m"), ("outcome", "success")}): 1.0
    }
    tokens = {dict(k)["type"]: v for k, v in of(m, "llmx_tokens_total").items()}
    assert tokens == {"input": 1000.0, "output": 200.0, "reasoning": 50.0, "cached": 400.0}
    assert value(m, "llmx_cost_usd_total", provider="main", model="m") == pytest.approx(reply.cost)
    assert value(m, "llmx_requests_in_flight", model="main/m") == 0.0
    count = value(m, "llmx_request_duration_seconds_count", model="main/m", outcome="success")
    assert count == 1.0
    took = value(m, "llmx_request_duration_seconds_sum", model="main/m", outcome="success")
    assert took is not None
    assert 0 < took < 5
    for none in ("llmx_request_errors_total", "llmx_retries_total", "llmx_fallbacks_total"):
        assert of(m, none) == {}
    # whole answers have no TTFT
    assert of(m, "llmx_time_to_first_token_seconds_count") == {}


async def test_retry_then_success() -> None:
    async with FakeOpenAIServer() as server:
        server.enqueue(ErrorReply(503), Reply("Back."))
        config = config_for(
            {"main": provider(server)},
            retry={"attempts": 3, "wait_initial": 0.01, "wait_jitter": 0},
        )
        async with metrics_client(config) as client:
            await client.complete(model="main/m", prompt="Hi")
            m = await scrape(client)
    assert of(m, "llmx_attempts_total") == {
        frozenset({("provider", "main"), ("model", "m"), ("outcome", "error")}): 1.0,
        frozenset({("provider", "main"), ("model", "m"), ("outcome", "success")}): 1.0,
    }
    assert value(m, "llmx_attempt_errors_total", provider="main", model="m", error="ServerError")
    assert value(m, "llmx_retries_total", provider="main", model="m") == 1.0
    assert of(m, "llmx_fallbacks_total") == {}
    assert value(m, "llmx_requests_total", model="main/m", outcome="success") == 1.0
    assert of(m, "llmx_request_errors_total") == {}


async def test_fallback_to_another_instance() -> None:
    async with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        first.enqueue(ErrorReply(500))
        second.enqueue(Reply("From b."))
        config = config_for(
            {"a": provider(first), "b": provider(second)},
            aliases={"smart": ["a/m", "b/m"]},
        )
        async with metrics_client(config) as client:
            reply = await client.complete(model="smart", prompt="Hi")
            assert reply.provider == "b"
            m = await scrape(client)
    assert value(m, "llmx_attempts_total", provider="a", model="m", outcome="error") == 1.0
    assert value(m, "llmx_attempts_total", provider="b", model="m", outcome="success") == 1.0
    assert of(m, "llmx_fallbacks_total") == {frozenset({("provider", "b"), ("model", "m")}): 1.0}
    assert of(m, "llmx_retries_total") == {}
    assert of(m, "llmx_requests_total") == {
        frozenset({("model", "smart"), ("outcome", "success")}): 1.0
    }


async def test_a_hedge_that_lost_is_a_cancelled_attempt() -> None:
    async with FakeOpenAIServer() as slow, FakeOpenAIServer() as fast:
        slow.enqueue(Reply("Too late.", delay=5))
        fast.enqueue(Reply("First."))
        config = config_for(
            {"a": provider(slow), "b": provider(fast)},
            routing={"strategy": "hedged", "base": "priority", "delay": 0.1, "budget": 1.0},
            aliases={"smart": ["a/m", "b/m"]},
        )
        async with metrics_client(config) as client:
            reply = await client.complete(model="smart", prompt="Hi")
            assert reply.provider == "b"
            m = await scrape(client)
    assert of(m, "llmx_attempts_total") == {
        frozenset({("provider", "a"), ("model", "m"), ("outcome", "cancelled")}): 1.0,
        frozenset({("provider", "b"), ("model", "m"), ("outcome", "success")}): 1.0,
    }
    assert of(m, "llmx_attempt_errors_total") == {}
    # a hedge runs beside its attempt (same number): neither a retry nor a fallback
    assert of(m, "llmx_fallbacks_total") == {}
    assert of(m, "llmx_retries_total") == {}
    assert of(m, "llmx_requests_total") == {
        frozenset({("model", "smart"), ("outcome", "success")}): 1.0
    }


async def test_failure_counts_the_error_class() -> None:
    async with FakeOpenAIServer() as server:
        server.enqueue(ErrorReply(400, "bad"), ErrorReply(429), ErrorReply(429))
        async with metrics_client(config_for({"main": provider(server)})) as client:
            with pytest.raises(llmx.BadRequestError):
                await client.complete(model="main/m", prompt="Hi")
            for _ in range(2):
                with pytest.raises(llmx.RateLimitError):
                    await client.complete(model="main/m", prompt="Hi")
            m = await scrape(client)
    assert of(m, "llmx_request_errors_total") == {
        frozenset({("model", "main/m"), ("error", "BadRequestError")}): 1.0,
        frozenset({("model", "main/m"), ("error", "RateLimitError")}): 2.0,
    }
    assert of(m, "llmx_requests_total") == {
        frozenset({("model", "main/m"), ("outcome", "error")}): 3.0
    }
    assert value(m, "llmx_attempts_total", provider="main", model="m", outcome="error") == 3.0
    assert value(m, "llmx_requests_in_flight", model="main/m") == 0.0
    assert of(m, "llmx_tokens_total") == {}


async def test_stream_records_time_to_first_token() -> None:
    async with FakeOpenAIServer() as server:
        server.enqueue(Reply("One two three.", usage=(7, 3), delay=0.2))
        async with metrics_client(config_for({"main": provider(server)})) as client:
            async with client.stream(model="main/m", prompt="Hi") as stream:
                text = "".join([piece async for piece in stream.text()])
            assert text == "One two three."
            m = await scrape(client)
    assert value(m, "llmx_time_to_first_token_seconds_count", provider="main", model="m") == 1.0
    ttft = value(m, "llmx_time_to_first_token_seconds_sum", provider="main", model="m")
    assert ttft is not None
    assert 0.2 <= ttft < 5
    assert (
        value(m, "llmx_time_to_first_token_seconds_bucket", provider="main", model="m", le="0.1")
        == 0.0
    )
    assert value(m, "llmx_requests_total", model="main/m", outcome="success") == 1.0
    assert value(m, "llmx_tokens_total", provider="main", model="m", type="output") == 3.0


async def test_breaker_opening() -> None:
    async with FakeOpenAIServer() as server:
        server.set_down(True)
        config = config_for(
            {"main": provider(server)}, breaker={"failure_threshold": 2, "cooldown": 60}
        )
        async with metrics_client(config) as client:
            for _ in range(3):
                with pytest.raises(llmx.ProviderError):
                    await client.complete(model="main/m", prompt="Hi")
            m = await scrape(client)
    assert value(m, "llmx_breaker_state", provider="main") == 2.0  # open
    assert of(m, "llmx_breaker_transitions_total") == {
        frozenset({("provider", "main"), ("state", "open")}): 1.0
    }
    # the third request was refused by the open breaker without an attempt
    assert value(m, "llmx_attempts_total", provider="main", model="m", outcome="error") == 2.0
    assert value(m, "llmx_requests_total", model="main/m", outcome="error") == 3.0


async def test_cancelled_request_leaves_nothing_in_flight() -> None:
    async with FakeOpenAIServer() as server:
        server.enqueue(Stall(30))
        async with metrics_client(config_for({"main": provider(server)})) as client:
            task = asyncio.create_task(client.complete(model="main/m", prompt="Hi"))
            for _ in range(500):  # until the request reached the server (at most 5 s)
                if server.request_count:
                    break
                await asyncio.sleep(0.01)
            assert server.request_count == 1
            m = await scrape(client)
            assert value(m, "llmx_requests_in_flight", model="main/m") == 1.0
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            m = await scrape(client)
    assert value(m, "llmx_requests_in_flight", model="main/m") == 0.0
    assert of(m, "llmx_requests_total") == {
        frozenset({("model", "main/m"), ("outcome", "cancelled")}): 1.0
    }
    assert of(m, "llmx_attempts_total") == {
        frozenset({("provider", "main"), ("model", "m"), ("outcome", "cancelled")}): 1.0
    }
    assert of(m, "llmx_attempt_errors_total") == {}


async def test_cache_hit() -> None:
    async with FakeOpenAIServer() as server:
        server.enqueue(Reply("Once.", usage=(5, 2)))
        prices = {"m": {"input_price": 1.0, "output_price": 1.0}}
        config = config_for(
            {"main": provider(server, model_info=prices)}, cache={"backend": "memory"}
        )
        async with metrics_client(config) as client:
            for _ in range(2):
                await client.complete(model="main/m", prompt="Hi", temperature=0)
            m = await scrape(client)
    assert value(m, "llmx_cache_hits_total", model="main/m") == 1.0
    assert value(m, "llmx_requests_total", model="main/m", outcome="success") == 2.0
    assert value(m, "llmx_attempts_total", provider="main", model="m", outcome="success") == 1.0
    assert value(m, "llmx_tokens_total", provider="main", model="m", type="input") == 5.0
    # only the answer the provider gave costs anything
    assert value(m, "llmx_cost_usd_total", provider="main", model="m") == pytest.approx(7e-6)


async def test_embeddings_are_requests_too() -> None:
    async with FakeOpenAIServer() as server:
        config = config_for({"main": provider(server)})
        async with metrics_client(config) as client:
            response = await client.embed(model="main/text-embedding-3-small", input=["a", "b"])
            m = await scrape(client)
    model = "main/text-embedding-3-small"
    assert value(m, "llmx_requests_total", model=model, outcome="success") == 1.0
    attempts = of(m, "llmx_attempts_total")
    assert sum(attempts.values()) == len(response.attempts) == 1
    tokens = value(
        m, "llmx_tokens_total", provider="main", model="text-embedding-3-small", type="input"
    )
    assert tokens == response.usage.input_tokens > 0


async def test_every_documented_metric_is_exposed_with_its_type() -> None:
    registry = CollectorRegistry()
    PrometheusListener(registry=registry)
    text, content_type = llmx_prometheus.exposition(registry)
    types = {f.name: f.type for f in text_string_to_metric_families(text.decode())}
    assert types == {
        name.removesuffix("_total") if kind == "counter" else name: kind
        for name, (kind, *_) in METRICS.items()
    }
    assert content_type.startswith("text/plain")
    _, openmetrics = llmx_prometheus.exposition(registry, "application/openmetrics-text")
    assert openmetrics.startswith("application/openmetrics-text")


async def test_in_code_listener_with_its_own_registry_and_aiohttp_handler() -> None:
    from aiohttp import web

    registry = CollectorRegistry()
    listener = PrometheusListener(registry=registry)
    plugins = llmx.Registry()
    plugins.register(listener, name="metrics")
    app = web.Application()
    app.router.add_get("/metrics", llmx_prometheus.aiohttp_handler(registry))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with FakeOpenAIServer() as server:
            config = {"providers": {"main": provider(server)}}
            async with llmx.Client(config, registry=plugins) as client:
                await client.complete(model="main/m", prompt="Hi")
        text, content_type = await asyncio.to_thread(get, ("127.0.0.1", port))
    finally:
        await runner.cleanup()
    assert content_type.startswith("text/plain; version=0.0.4")
    m = parse(text)
    assert value(m, "llmx_requests_total", model="main/m", outcome="success") == 1.0


async def test_default_registry_and_a_shared_endpoint() -> None:
    """registry = "default" (the default): two clients share the default registry's
    metrics and one endpoint on the same port."""
    from prometheus_client import REGISTRY

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with FakeOpenAIServer() as server:
        config = config_for({"main": provider(server)})
        config["plugins"]["prometheus"] = {"port": port}
        model = f"main/default-{port}"  # a label no other test uses
        before = REGISTRY.get_sample_value(
            "llmx_requests_total", {"model": model, "outcome": "success"}
        )
        assert before is None
        async with metrics_client(config) as one, llmx.Client(config) as two:
            await one.complete(model=model, prompt="Hi")
            await two.complete(model=model, prompt="Hi")
            assert two.registry.listeners["prometheus"].address == ("127.0.0.1", port)
            m = parse((await asyncio.to_thread(get, ("127.0.0.1", port)))[0])
    assert value(m, "llmx_requests_total", model=model, outcome="success") == 2.0
    assert (
        REGISTRY.get_sample_value("llmx_requests_total", {"model": model, "outcome": "success"})
        == 2.0
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"port": "x"}, "@ $.plugins.prometheus.port"),
        ({"port": 70000}, "port must be between 0 and 65535"),
        ({"prot": 9464}, "extra fields found (prot) @ $.plugins.prometheus; did you mean 'port'?"),
        ({"registry": "mine"}, "expected one of 'default', 'own', got 'mine'"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, Any], expected: str) -> None:
    config = {"plugins": {"enable": ["prometheus"], "prometheus": table}}
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Client(config)
    assert expected in str(info.value)


def test_a_port_in_use_is_a_warning_and_the_metrics_still_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another process holding the port (the app, beside an ``llmx chat`` reading the
    same llmx.toml) must not make this one fail: a warning says what to fix."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        config = {"plugins": {"prometheus": {"port": port, "registry": "own"}}}
        with caplog.at_level("WARNING", logger="llmx_prometheus"):
            client = llmx.Client(config)
    listener = client.registry.listeners["prometheus"]
    assert isinstance(listener, PrometheusListener)
    assert listener.address is None
    (record,) = caplog.records
    message = record.getMessage()
    assert f"cannot serve Prometheus metrics on 127.0.0.1:{port}" in message
    assert "[plugins.prometheus] port" in message


def test_two_own_registries_on_one_port_are_refused() -> None:
    config = {"plugins": {"prometheus": {"port": 0, "registry": "own"}}}
    first = llmx.Client(config).registry.listeners["prometheus"]
    assert isinstance(first, PrometheusListener)
    assert first.address is not None
    try:
        taken = {"plugins": {"prometheus": {"port": first.address[1], "registry": "own"}}}
        with pytest.raises(llmx.ConfigError) as info:
            llmx.Client(taken)
        assert "already serves the metrics of another registry" in str(info.value)
        assert "@ $.plugins.prometheus.port" in str(info.value)
    finally:
        first.close()


def test_a_table_alone_loads_the_plugin_and_no_table_means_no_endpoint() -> None:
    client = llmx.Client({"plugins": {"prometheus": {}}})
    listener = client.registry.listeners["prometheus"]
    assert isinstance(listener, PrometheusListener)
    assert listener.address is None
    assert client.registry.listeners is not llmx.Client({}).registry.listeners
    assert "prometheus" not in llmx.Client({}).registry.listeners


def test_the_docs_name_every_metric_with_its_type_unit_and_labels() -> None:
    """The metrics table of the docs' Prometheus section matches :data:`METRICS`."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[3] / "docs"
    pages = [docs / "observability-prometheus.md", docs / "observability.md"]
    text = next(
        p.read_text(encoding="utf-8")
        for p in pages
        if p.exists() and "## Prometheus" in p.read_text(encoding="utf-8")
    )
    section = text.split("## Prometheus", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`llmx_"):
            labels = tuple(c.strip("` ") for c in cells[3].split(","))
            rows[cells[0].strip("`")] = (cells[1], cells[2], labels)
    expected = {
        f"{name}_total" if kind == "counter" else name: (kind, unit, labels)
        for name, (kind, unit, labels, _) in METRICS.items()
    }
    assert rows == expected

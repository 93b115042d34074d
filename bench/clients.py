"""The clients the bench compares, and the llmx configs it runs.

Adding an llmx config (a provider type, or more of the pipeline switched on) is one
entry in :data:`LLMX_CONFIGS`; adding a peer is one entry in :data:`PEERS`. Configs
are functions of the fake server's base URL. A config whose provider type is not
installed is skipped with a note; one that this llmx rejects (a pipeline feature that
has not landed yet) is skipped with llmx's error message, and measured automatically
once it is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.wire import MODEL

ConfigFn = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class LlmxConfig:
    """One way of running llmx against the fake server.

    ``config(base_url)`` is the dict given to ``llmx.Client``; ``model`` the model
    reference the requests name; ``provider_type`` the plugin it needs; ``format`` the
    fake server's wire format (it also picks the raw-aiohttp floor shown beside it);
    ``event_hooks`` registers a plugin implementing every event hook (as no-ops);
    ``pipeline`` marks the config the goals are judged on ("whole pipeline on");
    ``otel`` registers llmx-otel's listener with the OpenTelemetry SDK behind it (spans
    batched to an exporter that drops them, metrics aggregated in memory), so the
    config measures what tracing and metrics cost a request.
    """

    label: str
    provider_type: str
    config: ConfigFn
    model: str
    format: str = "openai"
    event_hooks: bool = False
    pipeline: bool = False
    sweep: bool = False
    memory: bool = False
    otel: bool = False


def _openai(base: str, **extra: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": f"{base}/v1", "api_key": "x", **extra}


def _anthropic(base: str) -> dict[str, Any]:
    return {"type": "anthropic", "base_url": base, "api_key": "x"}


def _gemini(base: str) -> dict[str, Any]:
    return {"type": "gemini", "base_url": base, "api_key": "x"}


_NEVER_BINDING_LIMITS = {"rpm": 100_000_000, "tpm": 10**12, "max_concurrent": 100_000}
"""Client-side rate limits far above what the bench sends: the limiter runs, never waits."""


def _pipeline_config(base: str) -> dict[str, Any]:
    """The whole pipeline on, the cache off ("with the whole pipeline on" in the goals).

    Routing: an alias with two candidate deployments of the fake server, ordered by the
    ``priority`` strategy (so the strategy actually runs). Breaker: on, explicitly.
    Limiter: the ``local`` backend with per-instance limits that never bind. Retry: the
    ``stamina`` policy with a retry budget. Stats are always on; the driver adds a plugin
    implementing every event hook. Extend this as the pipeline grows; a key llmx does not
    accept makes the config "skipped" with llmx's error message, never a crash.
    """

    def instance(priority: int) -> dict[str, Any]:
        return _openai(
            base, priority=priority, max_concurrent=4096, limits=dict(_NEVER_BINDING_LIMITS)
        )

    return {
        "providers": {"bench": instance(0), "bench-b": instance(1)},
        "aliases": {
            "bench-smart": {
                "candidates": [f"bench/{MODEL}", f"bench-b/{MODEL}"],
                "strategy": "priority",
            }
        },
        "routing": {"strategy": "priority"},
        "retry": {"policy": "stamina", "attempts": 3},
        "retry_budget": {"ratio": 0.2},
        "breaker": {"enabled": True},
        "limiter": {"backend": "local"},
    }


LLMX_CONFIGS: dict[str, LlmxConfig] = {
    "llmx": LlmxConfig(
        label="llmx (openai, minimal)",
        provider_type="openai",
        config=lambda base: {"providers": {"bench": _openai(base)}},
        model=f"bench/{MODEL}",
        sweep=True,
        memory=True,
    ),
    "llmx-pipeline": LlmxConfig(
        label="llmx (openai, pipeline on)",
        provider_type="openai",
        config=_pipeline_config,
        model="bench-smart",
        event_hooks=True,
        pipeline=True,
        memory=True,
    ),
    "llmx-otel": LlmxConfig(
        label="llmx (openai, minimal, OpenTelemetry on)",
        provider_type="openai",
        config=lambda base: {"providers": {"bench": _openai(base)}},
        model=f"bench/{MODEL}",
        otel=True,
    ),
    "llmx-prometheus": LlmxConfig(
        label="llmx (openai, minimal + prometheus)",
        provider_type="openai",
        # the minimal config with the llmx-prometheus listener recording every event
        # (its own registry, no endpoint): what the metrics cost per request
        config=lambda base: {
            "providers": {"bench": _openai(base)},
            "plugins": {"enable": ["prometheus"], "prometheus": {"registry": "own"}},
        },
        model=f"bench/{MODEL}",
    ),
    "llmx-anthropic": LlmxConfig(
        label="llmx (anthropic)",
        provider_type="anthropic",
        config=lambda base: {"providers": {"bench": _anthropic(base)}},
        model=f"bench/{MODEL}",
        format="anthropic",
    ),
    "llmx-gemini": LlmxConfig(
        label="llmx (gemini)",
        provider_type="gemini",
        config=lambda base: {"providers": {"bench": _gemini(base)}},
        model=f"bench/{MODEL}",
        format="gemini",
    ),
}
"""The llmx configurations, by key (see :class:`LlmxConfig`)."""


@dataclass(frozen=True)
class Peer:
    """Another client library, run with the peers venv's Python."""

    label: str
    driver: str
    import_name: str
    options: dict[str, Any] = field(default_factory=dict)


PEERS: dict[str, Peer] = {
    "openai-aiohttp": Peer(
        "openai SDK (aiohttp transport)", "openai_sdk", "openai", {"transport": "aiohttp"}
    ),
    "openai": Peer("openai SDK (default)", "openai_sdk", "openai", {"transport": "default"}),
    "litellm": Peer("LiteLLM acompletion", "litellm_client", "litellm", {"api": "acompletion"}),
    "litellm-router": Peer("LiteLLM Router", "litellm_client", "litellm", {"api": "router"}),
}
"""The peer clients, by key; installed into ``bench/.venv-peers`` on demand."""

PEER_REQUIREMENTS = ("openai[aiohttp]", "litellm!=1.107.0")
"""What the peers venv gets (LiteLLM 1.107.0 was a compromised release: never that)."""

PEER_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
"""Environment for the peer drivers: LiteLLM must not fetch its price list online."""


@dataclass(frozen=True)
class Client:
    """A resolved client for the runner: which driver, which Python, which options."""

    key: str
    label: str
    family: str  # "raw", "llmx" or "peer"
    driver: str  # module under bench.drivers
    python: str  # "dev" or "peers"
    import_name: str
    options: dict[str, Any]
    sweep: bool = False
    memory: bool = False
    pipeline: bool = False
    modes: tuple[str, ...] = ("seq", "tput", "stream")


def raw_client(fmt: str = "openai") -> Client:
    """The raw-aiohttp floor for wire format ``fmt``."""
    key = "raw" if fmt == "openai" else f"raw-{fmt}"
    label = "raw aiohttp" if fmt == "openai" else f"raw aiohttp ({fmt})"
    main = fmt == "openai"
    return Client(key, label, "raw", "raw", "dev", "aiohttp", {"format": fmt}, main, main)


def chunked_floor_key(fmt: str = "openai") -> str:
    """The key of the chunked-read stream floor of wire format ``fmt``."""
    return "raw-chunked" if fmt == "openai" else f"raw-{fmt}-chunked"


def raw_chunked_client(fmt: str = "openai") -> Client:
    """The stream floor that reads as llmx does: whatever the socket has
    (``iter_any()``), split into lines incrementally. Streams only: its requests are
    the line floor's."""
    label = "raw aiohttp, chunked reads" + ("" if fmt == "openai" else f" ({fmt})")
    options = {"format": fmt, "read": "chunks"}
    return Client(
        chunked_floor_key(fmt), label, "raw", "raw", "dev", "aiohttp", options, modes=("stream",)
    )


def llmx_client(key: str, base_url: str) -> Client:
    """The llmx config ``key`` as a runnable client."""
    c = LLMX_CONFIGS[key]
    options = {
        "config": c.config(base_url),
        "model": c.model,
        "provider_type": c.provider_type,
        "event_hooks": c.event_hooks,
        "otel": c.otel,
        "format": c.format,
    }
    return Client(
        key, c.label, "llmx", "llmx_client", "dev", "llmx", options, c.sweep, c.memory, c.pipeline
    )


def peer_client(key: str) -> Client:
    """The peer ``key`` as a runnable client."""
    p = PEERS[key]
    return Client(key, p.label, "peer", p.driver, "peers", p.import_name, dict(p.options))


CACHE_BACKENDS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "memory": lambda scratch, redis_url: {},
    "sqlite": lambda scratch, redis_url: {"path": f"{scratch}/bench-cache.sqlite3"},
    "redis": lambda scratch, redis_url: {"url": redis_url},
}
"""Cache backends to time once llmx registers them: name -> options(scratch_dir, redis_url).

The options are the bench's best guess at each backend's settings; adjust them here
when the backends land. A registered backend not listed here is timed with no options.
"""

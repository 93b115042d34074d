"""Health checks: probe every configured instance concurrently, with a timeout.

Health checks are the core's job, built on what every provider already declares: the
probe lists models if the provider can (:class:`~llmx.ModelListingProvider`), else
completes one token of the instance's ``health_model``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Literal

import attrs

from llmx._errors import LlmxError
from llmx._scrub import scrub
from llmx._types import Request

if TYPE_CHECKING:
    from llmx._pool import Instance, ProviderPool


@attrs.frozen
class HealthStatus:
    """The outcome of probing one provider instance.

    ``status`` is ``ok``, ``error`` (the probe failed; see ``error``), ``timeout`` or
    ``unknown`` (no probe is possible: the provider cannot list models and no
    ``health_model`` is configured). ``latency`` is the probe's duration in seconds.
    """

    instance: str
    status: Literal["ok", "error", "timeout", "unknown"]
    probe: str
    latency: float | None = None
    error: str | None = None
    breaker: str = "closed"

    @property
    def ok(self) -> bool:
        """Whether the probe succeeded."""
        return self.status == "ok"


async def _probe(inst: Instance, timeout: float) -> HealthStatus:
    name = inst.name
    breaker = inst.breaker.state
    try:
        provider = inst.open()
    except LlmxError as err:
        return HealthStatus(name, "error", "start", error=scrub(str(err)), breaker=breaker)
    if inst.can_list:
        probe, call = "list_models", provider.list_models  # type: ignore[attr-defined]
    elif inst.config.health_model:
        request = Request(inst.config.health_model, "ping", max_tokens=1)
        probe = f"complete({inst.config.health_model})"

        async def call() -> object:
            return await provider.complete(request)

    else:
        return HealthStatus(
            name,
            "unknown",
            "none",
            error="no probe: set health_model for this instance",
            breaker=breaker,
        )
    started = time.perf_counter()
    try:
        await asyncio.wait_for(call(), timeout)
    except (asyncio.TimeoutError, TimeoutError):
        return HealthStatus(
            name,
            "timeout",
            probe,
            time.perf_counter() - started,
            f"no answer in {timeout:g} s",
            breaker,
        )
    except LlmxError as err:
        return HealthStatus(
            name, "error", probe, time.perf_counter() - started, scrub(str(err)), breaker
        )
    except Exception as err:  # a provider bug must not hide the other instances' health
        return HealthStatus(
            name,
            "error",
            probe,
            time.perf_counter() - started,
            scrub(f"{type(err).__name__}: {err}"),
            breaker,
        )
    return HealthStatus(name, "ok", probe, time.perf_counter() - started, None, breaker)


async def check_health(pool: ProviderPool, names: list[str], timeout: float) -> list[HealthStatus]:
    """Probe the instances ``names`` concurrently; one status each, in that order."""
    insts = [pool.get(n) for n in names]
    return list(await asyncio.gather(*(_probe(d, timeout) for d in insts)))

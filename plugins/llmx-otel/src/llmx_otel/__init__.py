"""llmx-otel: OpenTelemetry GenAI traces and metrics for every llmx request.

A plugin that only listens, built on llmx's event hooks: a span per request
(``chat MODEL``) with a child span per attempt (retries, fallbacks and hedges each
their own), following the OpenTelemetry GenAI semantic conventions, and the GenAI
client metrics ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and
``gen_ai.client.operation.time_to_first_chunk``.

Enable it in ``llmx.toml`` (it then uses the global tracer and meter providers)::

    [plugins]
    enable = ["otel"]

and, to choose its providers or settings in code, :func:`configure` it::

    llmx_otel.configure(tracer_provider=tp, meter_provider=mp, propagate=True)

An :class:`Instrumentation` may also be registered on a registry of its own, under a
name other than ``otel`` (the entry point's)::

    registry = llmx.Registry()
    registry.register(llmx_otel.Instrumentation(tracer_provider=tp), name="otel-app")
    llmx.Client(config, registry=registry)

See docs/observability-otel.md for the attributes and settings.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from llmx.plugin import hookimpl
from llmx_otel._instrumentation import (
    CONTENT_LIMIT,
    MAX_OPEN_REQUESTS,
    Instrumentation,
    check_environment,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from llmx.plugin import AttemptEnd, AttemptStart, RequestEnd, RequestError, RequestStart

__all__ = ["CONTENT_LIMIT", "MAX_OPEN_REQUESTS", "Instrumentation", "configure", "default"]

llmx_contract = "1.2"  # llmx_attempt_start came with contract 1.2

_default: Instrumentation | None = None
_lock = threading.Lock()

check_environment()  # a malformed setting fails the plugin's load, naming the variable


def default() -> Instrumentation:
    """The instance behind the ``otel`` entry point, built on first use with
    :meth:`Instrumentation.from_env` (the global providers)."""
    global _default
    instance = _default
    if instance is None:
        with _lock:
            instance = _default
            if instance is None:
                instance = _default = Instrumentation.from_env()
    return instance


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    propagate: bool | None = None,
    capture_content: bool | None = None,
    redact: Callable[[str], str] | None = None,
) -> Instrumentation:
    """Replace the ``otel`` plugin's instance with one built from these arguments (see
    :class:`Instrumentation`; ``propagate`` / ``capture_content`` left None are read from
    the environment as :meth:`Instrumentation.from_env` does). Requests already under
    way finish on the old one. Returns the new instance."""
    global _default
    base = Instrumentation.from_env()
    instance = Instrumentation(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        propagate=base.propagate if propagate is None else propagate,
        capture_content=base.capture_content if capture_content is None else capture_content,
        redact=redact,
    )
    with _lock:
        _default = instance
    return instance


# The entry point (``otel = "llmx_otel"``) registers this module: its hooks hand each
# event to the default instance.


@hookimpl
def llmx_request_start(event: RequestStart) -> None:
    """See :meth:`Instrumentation.llmx_request_start`."""
    default().llmx_request_start(event)


@hookimpl
def llmx_attempt_start(event: AttemptStart) -> None:
    """See :meth:`Instrumentation.llmx_attempt_start`."""
    default().llmx_attempt_start(event)


@hookimpl
def llmx_attempt_end(event: AttemptEnd) -> None:
    """See :meth:`Instrumentation.llmx_attempt_end`."""
    default().llmx_attempt_end(event)


@hookimpl
def llmx_request_end(event: RequestEnd) -> None:
    """See :meth:`Instrumentation.llmx_request_end`."""
    default().llmx_request_end(event)


@hookimpl
def llmx_request_error(event: RequestError) -> None:
    """See :meth:`Instrumentation.llmx_request_error`."""
    default().llmx_request_error(event)

"""llmx-otel's test fixtures (defined in otel_support, a module of a name of its own)."""

from __future__ import annotations

from otel_support import telemetry

__all__ = ["telemetry"]

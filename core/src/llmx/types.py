"""Names an application needs only to annotate: the literal and union aliases of llmx's
values, and the result type of :meth:`llmx.Client.health`.

::

    from llmx.types import FinishReason, Part, Role

    def last_role(messages: list[llmx.Message]) -> Role: ...

The classes an application builds, receives and catches live in :mod:`llmx` itself;
this namespace keeps that one small. Like ``import llmx``, importing it is cheap: each
name is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Role": "llmx._types",
    "Part": "llmx._types",
    "StreamChunk": "llmx._types",
    "FinishReason": "llmx._types",
    "CacheMode": "llmx._settings",
    "HealthStatus": "llmx._health",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from llmx._health import HealthStatus as HealthStatus
    from llmx._settings import CacheMode as CacheMode
    from llmx._types import FinishReason as FinishReason
    from llmx._types import Part as Part
    from llmx._types import Role as Role
    from llmx._types import StreamChunk as StreamChunk

"""Typed structured output: the names an application annotates with.

``await client.complete(..., response_model=Recipe)`` returns a
:class:`ParsedResponse` ``[Recipe]`` whose ``parsed`` is the instance;
``client.stream(..., response_model=Recipe)`` a :class:`StructuredStream` ``[Recipe]``
(``await stream.parsed()``), :class:`llmx.SyncClient` a :class:`SyncStructuredStream`.
:func:`json_schema` shows the schema llmx derives and sends. The error when an answer
never validates is :class:`StructuredOutputError` (an :class:`llmx.LlmxError`). Like ``import llmx``, importing
this module is cheap: each name is imported on first use. See
``docs/features/structured-output.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "StructuredOutputError": "llmx._errors",
    "ParsedResponse": "llmx._structured",
    "StructuredStream": "llmx._structured",
    "SyncStructuredStream": "llmx._sync",
    "json_schema": "llmx._structured",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from llmx._errors import StructuredOutputError as StructuredOutputError
    from llmx._structured import ParsedResponse as ParsedResponse
    from llmx._structured import StructuredStream as StructuredStream
    from llmx._structured import json_schema as json_schema
    from llmx._sync import SyncStructuredStream as SyncStructuredStream

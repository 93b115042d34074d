"""The request log: every request's model, instance, messages, reply, usage, cost,
latency, error and conversation id in a SQLite database, which ``llmx logs`` lists and
searches and ``llmx stats`` summarises.

A library client logs only when its config asks (``[log] enabled = true`` or
``[log] path = "..."``); the ``llmx`` CLI logs by default. :func:`conversation` groups
the requests made inside it under one conversation id (``llmx chat -c`` continues the
latest one). :class:`RequestLog` is the writer a client uses (``client.request_log``:
``flush()`` waits until every finished request is written). Like ``import llmx``,
importing this module is cheap: each name is imported on first use. See
``docs/observability-requestlog.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "LogConfig": "llmx._config",
    "RequestLog": "llmx._requestlog",
    "SCHEMA_VERSION": "llmx._requestlog",
    "connect": "llmx._requestlog",
    "conversation": "llmx._requestlog",
    "current_conversation": "llmx._requestlog",
    "default_log_path": "llmx._config",
    "new_conversation_id": "llmx._requestlog",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from llmx._config import LogConfig as LogConfig
    from llmx._config import default_log_path as default_log_path
    from llmx._requestlog import SCHEMA_VERSION as SCHEMA_VERSION
    from llmx._requestlog import RequestLog as RequestLog
    from llmx._requestlog import connect as connect
    from llmx._requestlog import conversation as conversation
    from llmx._requestlog import current_conversation as current_conversation
    from llmx._requestlog import new_conversation_id as new_conversation_id

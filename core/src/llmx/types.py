"""Names an application needs only to annotate: the literal and union aliases of llmx's
values, the result type of :meth:`llmx.Client.health`, and the values of the rarer
answers: the answers of a request with ``n > 1`` (:class:`Choice`, in
``Response.choices``), its logprobs and a refusal's stream chunks
(:class:`TokenLogprob`, :class:`LogprobsDelta`, :class:`RefusalDelta`), and the
stream chunks of the other answers of a stream with ``n > 1`` (:class:`ChoiceDelta`,
wrapping an :data:`AnswerChunk`).

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
    # what a request with n > 1, logprobs or a refusal answers and streams
    "Choice": "llmx._types",
    "TokenLogprob": "llmx._types",
    "LogprobsDelta": "llmx._types",
    "RefusalDelta": "llmx._types",
    "ChoiceDelta": "llmx._types",
    "AnswerChunk": "llmx._types",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from llmx._health import HealthStatus as HealthStatus
    from llmx._settings import CacheMode as CacheMode
    from llmx._types import AnswerChunk as AnswerChunk
    from llmx._types import Choice as Choice
    from llmx._types import ChoiceDelta as ChoiceDelta
    from llmx._types import FinishReason as FinishReason
    from llmx._types import LogprobsDelta as LogprobsDelta
    from llmx._types import Part as Part
    from llmx._types import RefusalDelta as RefusalDelta
    from llmx._types import Role as Role
    from llmx._types import StreamChunk as StreamChunk
    from llmx._types import TokenLogprob as TokenLogprob

"""``Request.reasoning`` for providers: one effort <-> budget table, and what to send back.

A request asks for reasoning as an effort level (``"none"``, ``"minimal"``, ``"low"``,
``"medium"``, ``"high"``) or as a token budget (0: off). Vendors take one or the other
(OpenAI an effort, Anthropic a budget, Gemini 2.5 a budget and Gemini 3 a level), so a
provider converts with :func:`reasoning_budget` and :func:`reasoning_effort`, which
read the one table, :data:`REASONING_BUDGETS` (docs/features/reasoning.md shows it).

:func:`own_reasoning` is the fallback rule: a provider sends back only the
:class:`~llmx.Reasoning` parts its own protocol produced, never another vendor's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import attrs

from llmx._types import Capability, Reasoning

if TYPE_CHECKING:
    from llmx._types import Message, ModelInfo, Request

__all__ = [
    "REASONING_BUDGETS",
    "own_reasoning",
    "reasoning_budget",
    "reasoning_effort",
    "reasoning_off",
    "reasoning_off_unsaid",
]

REASONING_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
}
"""The token budget of each effort level (for vendors that take a budget), and the
boundaries of the reverse mapping: a budget maps to the lowest level whose budget is at
least as large (``0`` -> ``none``, ``1..512`` -> ``minimal``, ``513..2048`` -> ``low``,
``2049..8192`` -> ``medium``, more -> ``high``)."""


def reasoning_off(value: str | int | None) -> bool:
    """Whether ``Request.reasoning`` turns reasoning off (``"none"`` or a budget of 0)."""
    return value == "none" or value == 0


def reasoning_off_unsaid(request: Request, lookup: Callable[[str], ModelInfo | None]) -> Request:
    """``request`` without its ``reasoning`` when that turns reasoning off for a model
    ``lookup`` knows not to think: there is nothing to turn off, so a provider sends no
    thinking setting (vendors refuse one on such a model). Any other request is returned
    as it is, including one for a model ``lookup`` does not know.

    ::

        request = reasoning_off_unsaid(request, my_model_facts.get)
    """
    if reasoning_off(request.reasoning):
        info = lookup(request.model)
        if info is not None and not info.supports(Capability.REASONING):
            return attrs.evolve(request, reasoning=None)
    return request


def reasoning_budget(value: str | int | None) -> int | None:
    """``Request.reasoning`` as a token budget (None: not set)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return REASONING_BUDGETS[value]


def reasoning_effort(value: str | int | None) -> str | None:
    """``Request.reasoning`` as an effort level (None: not set)."""
    if value is None or isinstance(value, str):
        return value
    for level, budget in REASONING_BUDGETS.items():
        if value <= budget:
            return level
    return "high"


def own_reasoning(message: Message, protocol: str) -> Iterator[Reasoning]:
    """The reasoning parts of ``message`` that ``protocol`` produced (the others are
    another vendor's state, which a provider never sends: they are dropped)."""
    for part in message.content:
        if type(part) is Reasoning and part.protocol == protocol:
            yield part

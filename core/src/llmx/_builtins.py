"""The core's own plugin: default components, registered through the same hooks and
entry-point group as any third party's (so each can be disabled or replaced)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmx.hookspecs import hookimpl

if TYPE_CHECKING:
    from llmx._components import Candidate
    from llmx._registry import Register
    from llmx._types import Request

llmx_contract = "1.0"


class PriorityStrategy:
    """Try candidates by ascending ``priority`` (then in the order they were listed)."""

    def __init__(self, settings: object = None) -> None:
        del settings

    def order(self, candidates: Sequence[Candidate], request: Request) -> Sequence[Candidate]:
        """Candidates sorted by priority; the sort is stable, so ties keep their order."""
        del request
        if len(candidates) < 2:
            return candidates
        return sorted(candidates, key=lambda c: c.priority)


@hookimpl
def llmx_register_routing_strategies(register: Register) -> None:
    """Register the built-in routing strategies."""
    register("priority", PriorityStrategy)

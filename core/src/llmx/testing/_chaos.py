"""Fault injection for the fake servers: by schedule, by probability, or "down".

Every fake server (:class:`~llmx.testing.FakeServer` and its subclasses) applies
faults to the requests that ask for a model answer::

    server.chaos(Faults(p_error=0.3, statuses=(500, 503), seed=1))   # random, reproducible
    server.schedule([Fault.error(429, retry_after=2), None, Fault.reset()])  # next requests
    server.set_down(True)                                            # every connection reset

A scheduled fault wins over the random ones; ``None`` in a schedule lets one request
through untouched. What was injected is counted: ``server.injected["error"]``,
``server.injected["reset"]``... and listed in ``server.injections`` (request number and
fault), so tests assert on exactly what the client went through.

The faults, by :data:`FaultKind`:

``error``
    HTTP ``status`` in the provider's own error format, with ``Retry-After:
    retry_after`` when given (429 with and without it, 500/502/503/529, ...).
``stall``
    ``seconds`` of silence before the response headers (a timeout test).
``reset``
    the connection is closed before any answer (the client sees a reset).
``stall_mid_stream``
    the headers and the first part of the body go out, then ``seconds`` of silence,
    then the rest.
``drop``
    the connection is aborted halfway through the body.
``truncate``
    the body ends cleanly halfway: a stream without its final events, a JSON body
    cut short (with a matching ``Content-Length``).
``malformed``
    the body is not the documented format: a JSON body that does not parse, or a stream
    whose second event is not JSON.
``slow``
    the body drips in small pieces, ``seconds`` apart.

A fault that replaces the answer (``error``, ``reset``) leaves the scripted replies
queued for the next request; the others apply to the answer the request gets.
"""

from __future__ import annotations

import random
from typing import Literal

import attrs

__all__ = ["Fault", "FaultKind", "Faults", "Injection"]

FaultKind = Literal[
    "error", "stall", "reset", "stall_mid_stream", "drop", "truncate", "malformed", "slow"
]
"""The kinds of fault a fake server injects (see the module docstring)."""


@attrs.frozen
class Fault:
    """One fault to inject into one request; build it with the class methods."""

    kind: FaultKind
    status: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def error(cls, status: int = 503, *, retry_after: float | None = None) -> Fault:
        """HTTP ``status`` in the provider's error format, ``Retry-After`` if given."""
        if not 400 <= status < 600:
            msg = f"an error fault needs a 4xx or 5xx status, not {status}"
            raise ValueError(msg)
        return cls("error", status=status, retry_after=retry_after)

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        """``seconds`` of silence before the response headers."""
        return cls("stall", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection without answering."""
        return cls("reset")

    @classmethod
    def stall_mid_stream(cls, seconds: float) -> Fault:
        """Send the start of the body, stay silent ``seconds``, then send the rest."""
        return cls("stall_mid_stream", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Abort the connection halfway through the body."""
        return cls("drop")

    @classmethod
    def truncate(cls) -> Fault:
        """End the body cleanly halfway (a stream without its last events)."""
        return cls("truncate")

    @classmethod
    def malformed(cls) -> Fault:
        """Answer with a body that is not the documented format."""
        return cls("malformed")

    @classmethod
    def slow(cls, delay: float = 0.02) -> Fault:
        """Send the body in small pieces, ``delay`` seconds apart."""
        return cls("slow", seconds=delay)


def _probability(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        msg = f"{attribute.name} must be between 0 and 1, not {value}"
        raise ValueError(msg)


@attrs.frozen
class Faults:
    """Random faults: each model request draws at most one, with these probabilities.

    ``p_error`` injects an HTTP error with a status drawn from ``statuses``; errors
    with status 429, 503 or 529 carry ``Retry-After: retry_after`` (when it is not
    None) with probability ``p_retry_after``. ``p_stall`` stalls ``stall_seconds``
    before the headers, ``p_stall_mid_stream`` as long in the middle of the body;
    ``p_reset``, ``p_drop``, ``p_truncate``, ``p_malformed`` and ``p_slow`` (pieces
    ``drip_delay`` seconds apart) inject those faults. The probabilities must add up
    to at most 1. The same ``seed`` injects the same faults into the same sequence of
    requests.
    """

    p_error: float = attrs.field(default=0.0, validator=_probability)
    statuses: tuple[int, ...] = attrs.field(default=(500, 502, 503, 529), converter=tuple)
    retry_after: float | None = None
    p_retry_after: float = attrs.field(default=1.0, validator=_probability)
    p_stall: float = attrs.field(default=0.0, validator=_probability)
    stall_seconds: float = 1.0
    p_stall_mid_stream: float = attrs.field(default=0.0, validator=_probability)
    p_reset: float = attrs.field(default=0.0, validator=_probability)
    p_drop: float = attrs.field(default=0.0, validator=_probability)
    p_truncate: float = attrs.field(default=0.0, validator=_probability)
    p_malformed: float = attrs.field(default=0.0, validator=_probability)
    p_slow: float = attrs.field(default=0.0, validator=_probability)
    drip_delay: float = 0.02
    seed: int | None = 0

    def __attrs_post_init__(self) -> None:
        total = sum(p for p, _ in self._table())
        if total > 1.0 + 1e-9:
            msg = f"the fault probabilities add up to {total:g}; they must add up to at most 1"
            raise ValueError(msg)
        if self.p_error and not self.statuses:
            msg = "p_error needs at least one status in statuses"
            raise ValueError(msg)
        for status in self.statuses:
            if not 400 <= status < 600:
                msg = f"statuses must be 4xx or 5xx, not {status}"
                raise ValueError(msg)

    def _table(self) -> list[tuple[float, FaultKind]]:
        return [
            (self.p_error, "error"),
            (self.p_stall, "stall"),
            (self.p_stall_mid_stream, "stall_mid_stream"),
            (self.p_reset, "reset"),
            (self.p_drop, "drop"),
            (self.p_truncate, "truncate"),
            (self.p_malformed, "malformed"),
            (self.p_slow, "slow"),
        ]

    def draw(self, rng: random.Random) -> Fault | None:
        """The fault for the next request (None: no fault), drawn from ``rng``.

        Always consumes the same number of draws per call, so a seed gives the same
        sequence of faults whatever was drawn before.
        """
        pick, status_pick, retry_pick = rng.random(), rng.random(), rng.random()
        edge = 0.0
        chosen: FaultKind | None = None
        for p, kind in self._table():
            edge += p
            if pick < edge:
                chosen = kind
                break
        if chosen is None:
            return None
        kind = chosen
        if kind == "error":
            status = self.statuses[
                min(int(status_pick * len(self.statuses)), len(self.statuses) - 1)
            ]
            retry_after = None
            if status in (429, 503, 529) and self.retry_after is not None:
                retry_after = self.retry_after if retry_pick < self.p_retry_after else None
            return Fault.error(status, retry_after=retry_after)
        if kind in ("stall", "stall_mid_stream"):
            return Fault(kind, seconds=self.stall_seconds)
        if kind == "slow":
            return Fault.slow(self.drip_delay)
        return Fault(kind)


@attrs.frozen
class Injection:
    """A fault that was injected: into the ``request``-th model request (from 1)."""

    request: int
    fault: Fault

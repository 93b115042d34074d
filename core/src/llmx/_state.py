"""State stores: where circuit-breaker state and Retry-After cooldowns live.

The default, ``memory``, keeps them in the client (nothing is shared, so the core
does not even consult it on the hot path: ``shared = False``). A shared store
(``[breaker_store] backend = "redis"`` from ``llmx-redis``) lets every process see
the transitions and cooldowns of the others; see :class:`~llmx.plugin.BreakerStore`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from llmx._components import SharedBreakerState

if TYPE_CHECKING:
    from llmx._components import BreakerStore


class MemoryBreakerStore:
    """Breaker state kept in this client only (``[breaker_store] backend = "memory"``)."""

    shared = False
    """Nothing outside this client writes it: the core skips it on the hot path."""

    def __init__(self) -> None:
        self._states: dict[str, SharedBreakerState] = {}

    def get(self, instance: str) -> SharedBreakerState | None:
        """The state last published for ``instance``."""
        return self._states.get(instance)

    def publish(self, instance: str, state: SharedBreakerState) -> None:
        """Merge ``state`` in."""
        current = self._states.get(instance)
        self._states[instance] = state if current is None else current.merge(state)


class SharedCooldown:
    """An instance's Retry-After cooldown, merged with the one in a shared store.

    ``until`` is monotonic (what the pipeline compares with); the store holds wall
    clock times, converted on the way in and out.
    """

    __slots__ = ("_key", "_local", "_store")

    def __init__(self, store: BreakerStore, key: str) -> None:
        self._store = store
        self._key = key
        self._local = 0.0

    def get(self) -> float:
        """The monotonic time before which the instance should not be sent to."""
        local = self._local
        try:
            shared = self._store.get(self._key)
        except Exception:
            return local
        if shared is None or not shared.blocked_until:
            return local
        mono = time.monotonic()
        remote = mono + (shared.blocked_until - time.time())
        return remote if remote > local else local

    def set(self, until: float) -> None:
        """Extend the cooldown to ``until`` (monotonic) here and in the store."""
        grows = until > self._local
        self._local = until
        if not grows:
            return
        wall = time.time() + (until - time.monotonic())
        try:
            self._store.publish(self._key, SharedBreakerState(blocked_until=wall))
        except Exception:  # a store must not fail the request
            import logging

            logging.getLogger("llmx.breaker").warning(
                "breaker store failed to publish the cooldown of %r", self._key
            )

"""Settings value classes that the config structures at load time: response-cache
policies, client-side rate limits, circuit-breaker, retry-budget and adaptive-concurrency
settings.

A leaf module (attrs only), so the config can type its sections with them while the
components that use them (``_cache``, ``_ratelimit``, ``_resilience``) import the
config's machinery without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

CacheMode = Literal["read_write", "read_only", "refresh", "off"]
"""``read_write``: answer from the cache, store misses. ``read_only``: answer from the
cache, store nothing. ``refresh``: always ask the provider, store the answer. ``off``."""

_MODES = ("read_write", "read_only", "refresh", "off")


def _check_mode(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and value not in _MODES:
        msg = f"cache mode must be one of {', '.join(_MODES)}, not {value!r}"
        raise ValueError(msg)


def _check_ttl(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and not value > 0:
        msg = "ttl must be a positive number of seconds (inf: never expires)"
        raise ValueError(msg)


@attrs.frozen
class CachePolicy:
    """How the response cache treats requests; a field left None inherits.

    Layers, most specific first: the call (``client.complete(..., cache=...)``), the
    alias (``[aliases.NAME] cache = {...}``), the provider instance
    (``[providers.NAME] cache = {...}``), then ``[cache]``. ``mode`` defaults to
    ``read_write`` when ``[cache]`` is configured and ``off`` otherwise; ``ttl`` (seconds,
    ``inf`` for never) to one day. Requests with ``temperature > 0`` are not cached
    unless ``cache_nonzero_temperature`` is true.
    """

    mode: CacheMode | None = attrs.field(default=None, validator=_check_mode)
    """``read_write`` (answer from the cache, store misses), ``read_only`` (answer from the
    cache, store nothing), ``refresh`` (always ask the provider, store the answer) or
    ``off``; default ``read_write`` when ``[cache]`` is configured, else ``off``."""
    ttl: float | None = attrs.field(default=None, validator=_check_ttl)
    """How long an entry may answer, in seconds (``inf``: never expires); default one day."""
    cache_nonzero_temperature: bool | None = None
    """Whether requests with ``temperature > 0`` are cached too (default false)."""

    @classmethod
    def of(cls, value: object) -> CachePolicy | None:
        """A policy from a call's ``cache=`` argument (a mode name, a policy or None)."""
        if value is None or isinstance(value, CachePolicy):
            return value
        if isinstance(value, str):
            return cls(mode=value)  # type: ignore[arg-type]
        msg = f"cache= takes a mode ({', '.join(_MODES)}) or an llmx.CachePolicy, not {type(value).__name__}"
        raise TypeError(msg)

    def over(self, base: CachePolicy) -> CachePolicy:
        """This policy, with the fields it leaves None taken from ``base``."""
        return CachePolicy(
            mode=self.mode if self.mode is not None else base.mode,
            ttl=self.ttl if self.ttl is not None else base.ttl,
            cache_nonzero_temperature=(
                self.cache_nonzero_temperature
                if self.cache_nonzero_temperature is not None
                else base.cache_nonzero_temperature
            ),
        )


def non_negative(_: Any, attribute: Any, value: Any) -> None:
    """attrs validator: None, or a number that is 0 or more."""
    if value is not None and not value >= 0:
        msg = f"{attribute.name} must be 0 or more"
        raise ValueError(msg)


def positive(_: Any, attribute: Any, value: Any) -> None:
    """attrs validator: None, or a number above 0."""
    if value is not None and not value > 0:
        msg = f"{attribute.name} must be a positive number"
        raise ValueError(msg)


def at_least_one(_: Any, attribute: Any, value: Any) -> None:
    """attrs validator: None, or a count of at least 1."""
    if value is not None and value < 1:
        msg = f"{attribute.name} must be at least 1"
        raise ValueError(msg)


@attrs.frozen
class ModelLimitSettings:
    """``limits.models."MODEL" = {...}``: the limits of one model on the instance."""

    rpm: float | None = attrs.field(default=None, validator=positive)
    """Requests per minute to this model."""
    tpm: float | None = attrs.field(default=None, validator=positive)
    """Tokens (input plus output) per minute to this model."""
    max_concurrent: int | None = attrs.field(default=None, validator=at_least_one)
    """Requests to this model in flight at once."""


@attrs.frozen
class LimitSettings:
    """``[providers.NAME] limits = {...}``: the client-side limits of one instance.

    ``rpm`` and ``tpm``: requests and tokens (input plus output) per minute;
    ``max_concurrent``: requests in flight at once (shared between processes with a
    shared limiter, unlike the instance's connection cap ``max_concurrent``).
    ``period`` (seconds): the sliding window the per-minute quotas are enforced over,
    at ``quota * period / 60`` per window. ``max_wait`` (seconds): how long a request
    may queue for capacity before it moves on to the next candidate (or fails with
    :class:`~llmx.RateLimitError`). ``models``: limits of single models (by the
    provider's model name, or a name the instance's ``models`` maps to it), which
    apply on top of the instance's own.
    """

    rpm: float | None = attrs.field(default=None, validator=positive)
    tpm: float | None = attrs.field(default=None, validator=positive)
    max_concurrent: int | None = attrs.field(default=None, validator=at_least_one)
    period: float = attrs.field(default=60.0, validator=positive)
    max_wait: float = 30.0
    models: Mapping[str, ModelLimitSettings] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.max_wait >= 0:
            msg = "max_wait must be a number of seconds, 0 or more"
            raise ValueError(msg)
        scopes: list[tuple[str, LimitSettings | ModelLimitSettings]] = [("", self)]
        scopes.extend((f"models.{m}.", v) for m, v in self.models.items())
        for where, limits in scopes:
            if limits.rpm is not None and limits.rpm * self.period / 60 < 1:
                msg = (
                    f"{where}rpm {limits.rpm:g} allows less than one request per period of "
                    f"{self.period:g} s; raise period to at least {60 / limits.rpm:g}"
                )
                raise ValueError(msg)

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        scopes: list[LimitSettings | ModelLimitSettings] = [self, *self.models.values()]
        return any(x is not None for s in scopes for x in (s.rpm, s.tpm, s.max_concurrent))


@attrs.frozen
class BreakerSettings:
    """``[breaker]`` (or ``breaker = {...}`` in a provider instance).

    The breaker opens after ``failure_threshold`` consecutive failures, or when at
    least ``min_requests`` attempts in the last ``window`` seconds failed at a rate of
    ``failure_rate`` or more. After ``cooldown`` seconds it lets exactly one probe
    through (half-open); the probe's success closes it, its failure re-opens it.
    ``enabled = false`` turns it off.
    """

    enabled: bool = True
    failure_threshold: int = 5
    failure_rate: float = 0.5
    min_requests: int = 20
    window: float = 30.0
    cooldown: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_requests < 1:
            msg = "failure_threshold and min_requests must be at least 1"
            raise ValueError(msg)
        if not 0 < self.failure_rate <= 1:
            msg = "failure_rate must be in (0, 1]"
            raise ValueError(msg)
        if not (self.window > 0 and self.cooldown >= 0):
            msg = "window must be positive and cooldown not negative"
            raise ValueError(msg)


@attrs.frozen
class RetryBudgetSettings:
    """Caps retries per instance: at most ``ratio`` of the requests of the last
    ``window`` seconds, plus ``min_retries`` so a quiet instance can still retry.
    Defaults: ``ratio`` 0.2, ``min_retries`` 10, ``window`` 10 seconds."""

    ratio: float = 0.2
    min_retries: int = 10
    window: float = 10.0


@attrs.frozen
class AdaptiveSettings:
    """``adaptive_concurrency = { ... }``: the AIMD in-flight limit of one instance."""

    enabled: bool = False
    initial: int = 32
    min: int = 1
    max: int = 1024
    decrease_factor: float = 0.5


@attrs.frozen
class StoreSettings:
    """How llmx calls a shared store (a cache or limiter outside the process, such as
    ``llmx-redis``): keys ``store_timeout``, ``store_failures`` and
    ``store_probe_interval`` of ``[cache]`` and ``[limiter]``, and ``expected_processes``
    of ``[limiter]``. (A shared breaker store is never waited on: requests read its
    local snapshot, and its writes go in the background.)

    ``timeout`` (seconds, default 0.05): the deadline of each call. A healthy Redis on
    the same host or network answers in well under a millisecond (p99 a few ms under
    load); 50 ms is an order of magnitude above that, so a healthy store is never cut
    off, and small beside an LLM call (hundreds of ms and more), so a request never pays
    more than that for a store that stalls. ``failures`` consecutive failed or late
    calls mark the store degraded: llmx then uses local state (cache misses and skipped
    writes, the in-process limiter, the in-process breakers) without calling it, and
    every ``probe_interval`` seconds lets one call through to see whether it answers
    again. ``expected_processes``: while the shared limiter is degraded, each process
    enforces ``1 / expected_processes`` of every shared limit locally (default 1: the
    full limit, so one process loses nothing; set it to the number of processes that
    share the limit to stay under the quota while the store is away).
    """

    timeout: float = attrs.field(default=0.05, validator=positive)
    """``store_timeout``: the deadline of each call to the store, in seconds."""
    failures: int = attrs.field(default=3, validator=at_least_one)
    """``store_failures``: consecutive failed or late calls after which the store is
    treated as degraded (llmx uses local state until it answers again)."""
    probe_interval: float = attrs.field(default=1.0, validator=positive)
    """``store_probe_interval``: seconds between the calls that check whether a degraded
    store answers again."""
    expected_processes: int = attrs.field(default=1, validator=at_least_one)
    """``[limiter] expected_processes``: while the shared limiter is degraded, each process
    enforces ``1 / expected_processes`` of every shared limit locally."""


STORE_KEYS = {
    "store_timeout": "timeout",
    "store_failures": "failures",
    "store_probe_interval": "probe_interval",
}
"""Keys of a store section (``[cache]``, ``[limiter]``) that the core takes for
:class:`StoreSettings` (the rest are the backend's own settings)."""

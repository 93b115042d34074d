"""Configuration: ``llmx.toml``, ``[tool.llmx]`` in pyproject.toml, a path or a dict,
plus ``LLMX_*`` environment overrides, structured with cattrs into frozen classes.

Every section with fixed keys is a typed class, checked when the config is loaded;
sections an instance can override (``breaker``, cache policies) are partial classes
merged with ``.over()``. What only the installed plugins can judge (component names,
their settings, alias candidates) is checked by :func:`llmx._validate.validate`.

Every error is a :class:`~llmx.ConfigError` whose message names the key path, e.g.
``extra fields found (api_kye) @ $.providers.main; did you mean 'api_key'?``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import attrs

from llmx._errors import ConfigError
from llmx._scrub import remember
from llmx._secret import Secret
from llmx._settings import at_least_one, non_negative, positive

if TYPE_CHECKING:
    # Resolved when the converter is built (``_converter``); a leaf module, but kept
    # lazy so ``llmx.Config`` costs nothing until a config is structured.
    from llmx._settings import (
        AdaptiveSettings,
        BreakerSettings,
        CachePolicy,
        LimitSettings,
        RetryBudgetSettings,
        StoreSettings,
    )
    from llmx._types import PriceTier

ENV_PREFIX = "LLMX_"
"""The environment namespace llmx reserves. ``LLMX_<KEY>`` overrides a top-level key of
the config and ``LLMX_<SECTION>__<KEY>`` (``__`` nests) a key inside it, for the keys in
:data:`ENV_SECTIONS` only; the variables in :data:`ENV_SPECIAL` are read directly. Any
other ``LLMX_*`` variable is ignored with a warning (once per process): plugins name
their own variables with their own prefix (``REDIS_URL``, not ``LLMX_REDIS_URL``)."""

ENV_SPECIAL = frozenset(
    {
        "LLMX_CONFIG",  # the config file
        "LLMX_DISABLE_PLUGIN_AUTOLOAD",
        "LLMX_DEBUG",  # the CLI's --debug
        "LLMX_HOME",
        "LLMX_MODELS_DIR",  # where local models live (llmx models pull)
        "LLMX_MODEL",  # llmx chat's default model
    }
)
"""``LLMX_*`` variables with a meaning of their own, not config overrides."""

_env_log = logging.getLogger("llmx.config")
_env_warned: set[str] = set()


@attrs.frozen
class PluginsConfig:
    """``[plugins]``: which installed plugins may load.

    ``enable`` names plugins to load up front (and, with ``autoload = false`` or
    ``LLMX_DISABLE_PLUGIN_AUTOLOAD=1``, the only ones that may load). ``disable``
    names plugins that never load. ``strict`` turns a broken plugin into an error
    instead of a reported warning. ``replace`` names components (``"openai"``) that an
    enabled plugin may take over from their owner (the builtins, a first-party
    distribution, or the entry point of that name); without it that is a conflict.
    ``slow_import_after``: seconds a plugin import may run before it is reported by
    name (0: never). ``settings``: the ``[plugins.NAME]`` tables, each the settings of
    the listener ``NAME`` a plugin registers (checked against its settings class when
    the plugins are known).
    """

    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    autoload: bool = True
    """Whether a plugin that ``enable`` does not name may load when the config uses one of
    its components (false, or ``LLMX_DISABLE_PLUGIN_AUTOLOAD=1``: only ``enable``)."""
    strict: bool = False
    replace: tuple[str, ...] = ()
    slow_import_after: float = attrs.field(default=3.0, validator=non_negative)
    settings: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


def default_log_path() -> Path:
    """Where the request log lives by default: ``$XDG_DATA_HOME/llmx/logs.db`` (an
    absolute ``XDG_DATA_HOME`` only, as the XDG spec says), else
    ``~/.local/share/llmx/logs.db``."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local/share"
    return root / "llmx" / "logs.db"


@attrs.frozen
class LogConfig:
    """``[log]``: the request log (``llmx logs``, ``llmx stats``).

    ``enabled``: True logs every request of a client; False never (the ``llmx`` CLI
    included); None (the default) logs when ``path`` is set, and the CLI logs by
    default. ``path``: the SQLite file (``~`` expanded; default:
    :func:`default_log_path`). ``content``: store messages, prompts and replies (False
    keeps model, instance, usage, cost, latency and error class only).
    """

    enabled: bool | None = None
    path: str | None = None
    content: bool = True

    def active(self) -> bool:
        """Whether a library client logs with this config."""
        return self.enabled is True or (self.enabled is None and self.path is not None)

    def resolved_path(self) -> Path:
        """The database file: ``path`` (``~`` expanded) or :func:`default_log_path`."""
        return Path(self.path).expanduser() if self.path else default_log_path()


def _given(obj: Any) -> dict[str, Any]:
    """The fields of a partial config class that are set (not None)."""
    return {
        f.name: getattr(obj, f.name)
        for f in attrs.fields(type(obj))
        if getattr(obj, f.name) is not None
    }


@attrs.frozen
class BreakerConfig:
    """``[breaker]``, or ``breaker = {...}`` in a provider instance: circuit-breaker
    settings (each key as in :class:`~llmx._settings.BreakerSettings`).

    A partial: a key left out (None) inherits, an instance's from ``[breaker]``
    (:meth:`over`), then the defaults (:meth:`settings`). Values are checked when the
    config is loaded, by the same rules the breaker applies.
    """

    enabled: bool | None = None
    failure_threshold: int | None = None
    failure_rate: float | None = None
    min_requests: int | None = None
    window: float | None = None
    cooldown: float | None = None

    def __attrs_post_init__(self) -> None:
        if _given(self):
            self.settings()  # BreakerSettings' own checks, now rather than at first use

    def over(self, base: BreakerConfig) -> BreakerConfig:
        """These settings, with the keys they leave out taken from ``base``."""
        return attrs.evolve(base, **_given(self))

    def settings(self) -> BreakerSettings:
        """The complete breaker settings: the keys given here, defaults for the rest."""
        from llmx._settings import BreakerSettings

        return BreakerSettings(**_given(self))


@attrs.frozen
class RetryBudgetConfig:
    """``[retry_budget]``: the per-instance cap on retries (each key as in
    :class:`~llmx._settings.RetryBudgetSettings`; a key left out takes its default)."""

    ratio: float | None = attrs.field(default=None, validator=non_negative)
    min_retries: int | None = attrs.field(default=None, validator=non_negative)
    window: float | None = attrs.field(default=None, validator=positive)

    def settings(self) -> RetryBudgetSettings:
        """The complete retry-budget settings."""
        from llmx._settings import RetryBudgetSettings

        return RetryBudgetSettings(**_given(self))


@attrs.frozen
class AdaptiveConfig:
    """``adaptive_concurrency = true`` or ``= { ... }`` in a provider instance: the AIMD
    limit on in-flight requests (see :class:`~llmx._settings.AdaptiveSettings`).

    ``max`` defaults to the instance's ``max_concurrent`` (else 1024), ``initial`` to
    ``min(32, max)``; ``min`` to 1. ``decrease_factor`` (default 0.5) multiplies the
    limit on an overload answer.
    """

    initial: int | None = attrs.field(default=None, validator=at_least_one)
    min: int | None = attrs.field(default=None, validator=at_least_one)
    max: int | None = attrs.field(default=None, validator=at_least_one)
    decrease_factor: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            msg = f"min ({self.min}) must not exceed max ({self.max})"
            raise ValueError(msg)
        if self.decrease_factor is not None and not 0 < self.decrease_factor < 1:
            msg = "decrease_factor must be between 0 and 1 (exclusive), e.g. 0.5"
            raise ValueError(msg)

    def settings(self, max_concurrent: int | None = None) -> AdaptiveSettings:
        """The complete settings of an instance whose connection cap is ``max_concurrent``."""
        from llmx._settings import AdaptiveSettings

        top = self.max if self.max is not None else (max_concurrent or AdaptiveSettings().max)
        low = self.min if self.min is not None else 1
        return AdaptiveSettings(
            enabled=True,
            initial=self.initial if self.initial is not None else min(32, top),
            min=min(low, top),
            max=top,
            decrease_factor=(self.decrease_factor if self.decrease_factor is not None else 0.5),
        )


def _adaptive(value: bool | AdaptiveConfig | None) -> AdaptiveConfig | None:
    """``adaptive_concurrency``: true means the defaults, false or None none."""
    if value is True:
        return AdaptiveConfig()
    if value is False:
        return None
    return value


@attrs.frozen
class ModelFacts:
    """``[providers.NAME.model_info."MODEL"]``: facts about one model of an instance that
    replace what its provider knows (or give facts about a model it does not know):
    limits, capabilities and prices in USD per million tokens, as in
    :class:`~llmx.ModelInfo`. A key left out keeps the provider's fact.

    ``price_tiers`` is a list of tables (``[{ above = 200000, input_price = 6.0 }]``).
    """

    context_window: int | None = None
    """Input plus output tokens the model accepts in one request."""
    max_output_tokens: int | None = None
    """The most tokens the model writes in one answer."""
    capabilities: tuple[str, ...] | None = None
    """What the model can do (``"tools"``, ``"vision"``, ``"reasoning"``, ...: the names of
    :data:`~llmx.Capability`); replaces the provider's list."""
    input_price: float | None = None
    """USD per million input tokens."""
    output_price: float | None = None
    """USD per million output tokens."""
    cache_read_price: float | None = None
    """USD per million input tokens read from the provider's prompt cache."""
    cache_write_price: float | None = None
    """USD per million input tokens written to the provider's prompt cache (5-minute
    lifetime, where the provider distinguishes)."""
    cache_write_1h_price: float | None = None
    """USD per million input tokens written to the prompt cache with a one-hour lifetime."""
    reasoning_price: float | None = None
    """USD per million reasoning tokens, where they are priced apart from the output."""
    price_tiers: tuple[PriceTier, ...] | None = None
    batch_input_price: float | None = None
    """USD per million input tokens sent through the provider's batch API."""
    batch_output_price: float | None = None
    """USD per million output tokens answered through the provider's batch API."""

    def __attrs_post_init__(self) -> None:
        for f in attrs.fields(ModelFacts):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not value >= 0:  # "not >=" rejects NaN
                msg = f"{f.name} must be a number >= 0"
                raise ValueError(msg)

    def given(self) -> dict[str, Any]:
        """The facts that are set (not None), by field name."""
        return {
            f.name: v for f in attrs.fields(ModelFacts) if (v := getattr(self, f.name)) is not None
        }


@attrs.frozen
class ProviderConfig:
    """``[providers.NAME]``: one provider instance.

    ``type`` names the provider plugin; ``models`` maps the model names callers use
    to the provider's own; ``model_info`` overrides the facts (limits, capabilities,
    prices) the provider has about a model (see :class:`ModelFacts`), by the model's
    name as callers write it. Timeouts (seconds): ``timeout`` bounds one attempt,
    ``connect_timeout`` the connection set-up, ``first_byte_timeout`` the wait for the
    first streamed chunk (time to first token), ``idle_timeout`` the silence between
    chunks. ``max_concurrent`` caps in-flight requests to this instance;
    ``adaptive_concurrency`` (true, or a table: see :class:`AdaptiveConfig`) makes that
    cap an AIMD limit that shrinks on 429/503/529 and grows on success. ``retry`` and
    ``breaker`` override the global ``[retry]`` and ``[breaker]`` settings for this
    instance (``retry`` keys belong to the retry policy and are checked by
    :func:`llmx._validate.validate`); ``health_model`` is the model a health check asks
    when the provider cannot list models. ``limits`` are the client-side rate limits
    (see :class:`~llmx._ratelimit.LimitSettings`; None: none) and ``cache`` this instance's
    response-cache policy (see :class:`~llmx.CachePolicy`; None: inherit).

    Read caps (enforced by providers built on :mod:`llmx.http`): ``max_response_bytes``
    bounds a whole answer or stream (default 64 MiB: an answer carrying generated images
    as base64, the largest real answers, stays well under it), ``max_event_bytes`` one
    server-sent event or NDJSON line (default 16 MiB: one base64 image chunk); an error
    body is read up to 64 KiB. ``allow_insecure_http`` lets a credential go to a plain
    ``http://`` base URL on another host than this one (refused by default). Keys not
    listed here belong to the provider type and are validated by its plugin's settings
    class (kept raw in ``options``).
    """

    type: str
    api_key: Secret | None = None
    """The credential: ``{ env = "NAME" }``, ``{ file = "path" }`` or a literal string
    (never printed; without it, provider types read their own variable, e.g.
    ``OPENAI_API_KEY``)."""
    base_url: str | None = None
    """The API's base URL (default: the provider type's; for OpenAI-compatible servers,
    e.g. ``http://127.0.0.1:11434/v1``)."""
    priority: int = 0
    """Order among an alias's candidates for the ``priority`` strategy (lower first)."""
    weight: float = 1.0
    """Share of the traffic among an alias's candidates for the ``weighted`` strategy."""
    models: Mapping[str, str] = attrs.field(factory=dict)
    model_info: Mapping[str, ModelFacts] = attrs.field(factory=dict)
    timeout: float = 600.0
    connect_timeout: float = 10.0
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None
    max_concurrent: int | None = None
    adaptive_concurrency: AdaptiveConfig | None = attrs.field(default=None, converter=_adaptive)
    verify_tls: bool = True
    """Whether the server's TLS certificate is checked (turn off only for a local test
    server with a self-signed certificate)."""
    headers: Mapping[str, Secret] = attrs.field(factory=dict)
    """Extra HTTP headers sent with every request; values are secrets (a string, or
    ``{ env = "NAME" }``), never printed."""
    retry: Mapping[str, Any] = attrs.field(factory=dict)
    breaker: BreakerConfig = BreakerConfig()
    health_model: str | None = None
    limits: LimitSettings | None = None
    cache: CachePolicy | None = None
    max_response_bytes: int = 64 * 2**20
    max_event_bytes: int = 16 * 2**20
    allow_insecure_http: bool = False
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_response_bytes < 1024 or self.max_event_bytes < 1024:
            msg = "max_response_bytes and max_event_bytes must be at least 1024"
            raise ValueError(msg)
        timeouts = (self.timeout, self.connect_timeout, self.first_byte_timeout, self.idle_timeout)
        if not all(t is None or t > 0 for t in timeouts):  # "t > 0" also rejects NaN
            msg = "timeouts must be positive numbers of seconds"
            raise ValueError(msg)
        if self.max_concurrent is not None and self.max_concurrent < 1:
            msg = "max_concurrent must be at least 1"
            raise ValueError(msg)

    def map_model(self, model: str) -> str:
        """The provider's model name for ``model`` (itself unless ``models`` renames it)."""
        return self.models.get(model, model)


@attrs.frozen
class AliasConfig:
    """``[aliases]``: a model name that stands for candidates across providers.

    ``strategy`` orders the candidates (default: the ``[routing]`` strategy).
    ``fallback``: ``fail_fast`` (default) stops at an error the request itself caused
    (a bad request, which every candidate would refuse) and falls back on anything
    else; ``try_all`` tries every candidate whatever the error. ``deadline`` bounds the
    whole request, retries and fallbacks included (seconds). ``cache`` is the
    response-cache policy of requests to this alias (see :class:`~llmx.CachePolicy`;
    None: inherit).
    """

    candidates: tuple[str, ...]
    """The ``instance/model`` references the alias stands for (``[aliases] NAME = [...]``
    is the short form)."""
    strategy: str | None = None
    fallback: Literal["fail_fast", "try_all"] = "fail_fast"
    deadline: float | None = None
    cache: CachePolicy | None = None

    def __attrs_post_init__(self) -> None:
        if not self.candidates:
            msg = "an alias needs at least one candidate 'instance/model'"
            raise ValueError(msg)
        for c in self.candidates:
            if "/" not in c:
                msg = f"candidate {c!r} is not of the form 'instance/model'"
                raise ValueError(msg)
        if self.deadline is not None and not self.deadline > 0:
            msg = "deadline must be a positive number of seconds"
            raise ValueError(msg)


@attrs.frozen
class ComponentConfig:
    """A ``[retry]``, ``[routing]``, ``[limiter]`` or ``[breaker_store]`` section (and the
    base of ``[cache]``): which component (``name``, written ``policy``, ``strategy`` or
    ``backend``), and its settings (``options``, checked against the settings class of
    the plugin that provides it by :func:`llmx._validate.validate`)."""

    name: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=lambda o: repr(_redact(o)))
    store: StoreSettings | None = None
    """For a store section (``[cache]``, ``[limiter]``, ``[breaker_store]``): how the
    core calls a shared backend (``store_timeout``, ``store_failures``,
    ``store_probe_interval``, ``[limiter] expected_processes``; None: the defaults)."""


@attrs.frozen
class CacheConfig(ComponentConfig):
    """``[cache]``: the backend (``backend``, its own settings in ``options``), the
    default :class:`~llmx.CachePolicy` of every request (``mode``, ``ttl``,
    ``cache_nonzero_temperature``; None: none given) and the key ``namespace``."""

    policy: CachePolicy | None = None
    namespace: str | None = None
    """Put in every cache key, to keep apps that share a backend apart (e.g. two apps on
    one Redis that must not answer each other's requests)."""

    @property
    def configured(self) -> bool:
        """Whether the section sets anything (an empty ``[cache]`` configures nothing)."""
        return bool(
            self.name is not None
            or self.options
            or self.policy is not None
            or self.namespace is not None
        )


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The ``[logging] level`` names (any case)."""


def _log_level(_: Any, attribute: Any, value: str | None) -> None:
    if value is not None and value.upper() not in LOG_LEVELS:
        import difflib

        close = difflib.get_close_matches(value.upper(), LOG_LEVELS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"level must be one of {', '.join(LOG_LEVELS)} (any case), not {value!r}{hint}"
        raise ValueError(msg)


@attrs.frozen
class LoggingConfig:
    """``[logging]``: have llmx install a log handler of its own on the ``llmx`` logger
    (without this section llmx only emits records to the standard loggers, and the
    application decides where they go).

    ``level``: ``DEBUG``, ``INFO`` (default), ``WARNING``... (any case); ``format``:
    ``text`` (default: time, level, logger, message, ``key=value`` fields) or ``json``
    (one object per line); ``content``: put prompt and response text into request
    records (default false: never); ``file``: append to this file instead of standard
    error. The section takes effect when it sets any key (see docs/observability.md).
    """

    level: str | None = attrs.field(default=None, validator=_log_level)
    format: Literal["text", "json"] | None = None
    content: bool | None = None
    file: str | None = None

    @property
    def configured(self) -> bool:
        """Whether the section sets anything (an empty ``[logging]`` installs nothing)."""
        return any(getattr(self, f.name) is not None for f in attrs.fields(LoggingConfig))


@attrs.frozen
class Config:
    """The whole configuration. Build it with :func:`load_config` or :meth:`from_dict`."""

    providers: Mapping[str, ProviderConfig] = attrs.field(factory=dict)
    aliases: Mapping[str, AliasConfig] = attrs.field(factory=dict)
    default_model: str | None = None
    """The model reference (``instance/model`` or an alias) used when a call names none."""
    deadline: float | None = None
    """Default bound on one whole request, retries and fallbacks included (seconds)."""
    plugins: PluginsConfig = PluginsConfig()
    cache: CacheConfig = CacheConfig()
    retry: ComponentConfig = ComponentConfig(name="stamina")
    routing: ComponentConfig = ComponentConfig(name="priority")
    limiter: ComponentConfig = ComponentConfig(name="local")
    """``[limiter]``: where rate-limit buckets live (``local``, or ``redis`` to share them)."""
    breaker_store: ComponentConfig = ComponentConfig(name="memory")
    """``[breaker_store]``: where breaker state and cooldowns live (``memory``, ``redis``)."""
    breaker: BreakerConfig = BreakerConfig()
    """``[breaker]``: circuit-breaker settings for every instance (see BreakerConfig)."""
    retry_budget: RetryBudgetConfig = RetryBudgetConfig()
    """``[retry_budget]``: the per-instance cap on retries (see RetryBudgetConfig)."""
    log: LogConfig = LogConfig()
    """``[log]``: the request log (``enabled``, ``path``, ``content``; see
    :class:`llmx.requestlog.LogConfig`)."""
    logging: LoggingConfig = LoggingConfig()
    """``[logging]``: a log handler llmx installs itself (see LoggingConfig)."""

    def __attrs_post_init__(self) -> None:
        if self.deadline is not None and not self.deadline > 0:
            msg = "deadline must be a positive number of seconds"
            raise ValueError(msg)

    source: str | None = attrs.field(default=None, eq=False)
    """Where the config was read from (a file path, or None)."""

    env: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)
    """The keys set by ``LLMX_*`` environment variables: key path (``$.deadline``) ->
    variable name, so that an error about such a key names the variable."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Config:
        """Validate a mapping (as read from TOML) into a Config, or raise ConfigError."""
        return _structure(data, source)

    def describe(self) -> dict[str, Any]:
        """The resolved config as JSON-ready data, every secret redacted."""
        return _describe(self)


ENV_SECTIONS: tuple[str, ...] = tuple(
    f.name for f in attrs.fields(Config) if f.name not in ("source", "env")
)
"""The top-level config keys ``LLMX_*`` variables may override (``LLMX_DEFAULT_MODEL``,
``LLMX_PROVIDERS__MAIN__BASE_URL``, ``LLMX_CACHE__BACKEND``, ...)."""


# Which key of each component section names the component.
_COMPONENT_KEYS = {
    "cache": "backend",
    "retry": "policy",
    "routing": "strategy",
    "limiter": "backend",
    "breaker_store": "backend",
}


@functools.cache
def _converter() -> Any:
    import cattrs

    from llmx._settings import (
        AdaptiveSettings,
        BreakerSettings,
        CachePolicy,
        LimitSettings,
        RetryBudgetSettings,
        StoreSettings,
    )

    # The annotations naming these classes are strings (see the TYPE_CHECKING import).
    from llmx._types import PriceTier

    late = {
        "PriceTier": PriceTier,
        "CachePolicy": CachePolicy,
        "LimitSettings": LimitSettings,
        "AdaptiveSettings": AdaptiveSettings,
        "BreakerSettings": BreakerSettings,
        "RetryBudgetSettings": RetryBudgetSettings,
        "StoreSettings": StoreSettings,
    }
    for cls in (ModelFacts, ProviderConfig, AliasConfig, ComponentConfig, CacheConfig, Config):
        attrs.resolve_types(cls, globalns=globals(), localns=late)

    conv = cattrs.Converter(forbid_extra_keys=True)

    def structure_secret(value: Any, _: Any) -> Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value=value)
        if isinstance(value, Mapping):
            extra = set(value) - {"env", "file"}
            if extra:
                msg = f"extra fields found ({', '.join(sorted(extra))}); a secret is {{ env = 'NAME' }} or {{ file = 'path' }}"
                raise ValueError(msg)
            env, file = value.get("env"), value.get("file")
            for v in (env, file):
                if v is not None and not isinstance(v, str):
                    msg = "secret env/file must be strings"
                    raise TypeError(msg)
            return Secret(env=env, file=file)
        msg = f"a secret is {{ env = 'NAME' }}, {{ file = 'path' }} or a string, not {type(value).__name__}"
        raise TypeError(msg)

    conv.register_structure_hook(Secret, structure_secret)

    def structure_strict(kind: type, name: str) -> Any:
        def hook(value: Any, _: Any) -> Any:
            if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                msg = f"expected {name}, got {type(value).__name__} {value!r}"
                raise TypeError(msg)
            return value

        return hook

    # Config values come from TOML, which types them: never coerce silently ("3" is not 3).
    conv.register_structure_hook(str, structure_strict(str, "a string"))
    conv.register_structure_hook(int, structure_strict(int, "an integer"))
    conv.register_structure_hook(float, structure_strict(float, "a number"))
    conv.register_structure_hook(bool, structure_strict(bool, "true or false"))

    def structure_str_tuple(value: Any, _: Any) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            msg = f"expected a list of strings, got {type(value).__name__} {value!r}"
            raise TypeError(msg)
        for v in value:
            if not isinstance(v, str):
                msg = f"expected a list of strings, found {type(v).__name__} {v!r}"
                raise TypeError(msg)
        return tuple(value)

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], structure_str_tuple)

    def structure_mapping_of(kind: Any) -> Any:
        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                msg = f"expected a table, got {type(value).__name__} {value!r}"
                raise TypeError(msg)
            return {k: conv.structure(v, kind) for k, v in value.items()}

        return hook

    conv.register_structure_hook_func(lambda t: t == Mapping[str, str], structure_mapping_of(str))
    conv.register_structure_hook_func(
        lambda t: t == Mapping[str, Secret], structure_mapping_of(Secret)
    )

    def structure_float_or_str(value: Any, _: Any) -> float | str:
        if isinstance(value, str):
            return value
        return structure_strict(float, "a number or a string")(value, float)  # type: ignore[no-any-return]

    conv.register_structure_hook_func(lambda t: t == (float | str), structure_float_or_str)

    def structure_table(value: Any, _: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            msg = f"expected a table, got {type(value).__name__} {value!r}"
            raise TypeError(msg)
        return dict(value)

    conv.register_structure_hook_func(lambda t: t == Mapping[str, Any], structure_table)

    def structure_literal(value: Any, type_: Any) -> Any:
        choices = typing.get_args(type_)
        if isinstance(value, bool) or value not in choices:
            names = ", ".join(repr(c) for c in choices)
            msg = f"expected one of {names}, got {value!r}"
            hint = did_you_mean([value], map(str, choices)) if isinstance(value, str) else ""
            raise _UnknownName(msg, hint)
        return value

    literal: Any = Literal
    conv.register_structure_hook_func(lambda t: typing.get_origin(t) is literal, structure_literal)

    def structure_table_of(cls: type) -> Any:
        # A partial settings table: anything but a table is an error (not a crash).
        base = conv.get_structure_hook(cls)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                msg = f"expected a table, got {type(value).__name__} {value!r}"
                raise TypeError(msg)
            return base(value, cls)

        return hook

    for table in (BreakerConfig, RetryBudgetConfig, CachePolicy, LimitSettings):
        conv.register_structure_hook(table, structure_table_of(table))

    def structure_adaptive(value: Any, _: Any) -> AdaptiveConfig | None:
        if value is None or isinstance(value, bool):
            return _adaptive(value)
        if not isinstance(value, Mapping):
            msg = f"expected true, false or a table, got {type(value).__name__} {value!r}"
            raise TypeError(msg)
        return conv.structure(value, AdaptiveConfig)

    conv.register_structure_hook_func(lambda t: t == (AdaptiveConfig | None), structure_adaptive)
    # Where the config came from is recorded by the loader, never read from the config
    # (built last: it takes the hooks registered above for the fields' types).
    conv.register_structure_hook(
        Config,
        cattrs.gen.make_dict_structure_fn(
            Config,
            conv,
            _cattrs_forbid_extra_keys=True,
            source=cattrs.gen.override(omit=True),
            env=cattrs.gen.override(omit=True),
        ),
    )
    return conv


def _field_names(cls: type) -> set[str]:
    return {f.name for f in attrs.fields(cls)}


def _split_provider(value: Any) -> Any:
    """Split a provider table into common keys and the type's own ``options``."""
    if not isinstance(value, Mapping):
        return value
    common = _field_names(ProviderConfig) - {"options"}
    out = {k: v for k, v in value.items() if k in common}
    out["options"] = {k: v for k, v in value.items() if k not in common}
    return out


def _split_component(section: str, value: Any) -> Any:
    """Split a component section into its ``name`` and its component's ``options`` (for
    ``[cache]`` also the default ``policy`` and the ``namespace``)."""
    if not isinstance(value, Mapping):
        return value
    key = _COMPONENT_KEYS[section]
    own = {key}
    out: dict[str, Any] = {}
    if section == "cache":
        from llmx._settings import CachePolicy

        policy_keys = _field_names(CachePolicy)
        policy = {k: v for k, v in value.items() if k in policy_keys}
        if policy:
            out["policy"] = policy
        if "namespace" in value:
            out["namespace"] = value["namespace"]
        own |= policy_keys | {"namespace"}
    # The breaker store is not among them: its reads come from a local snapshot and its
    # writes go in the background, so no request ever waits on it (llmx-redis bounds
    # its own calls with socket_timeout).
    if section in ("cache", "limiter"):
        from llmx._settings import STORE_KEYS

        keys = dict(STORE_KEYS)
        if section == "limiter":
            keys["expected_processes"] = "expected_processes"
        store = {field: value[key] for key, field in keys.items() if key in value}
        if store:
            out["store"] = store
        own |= set(keys)
    out["options"] = {k: v for k, v in value.items() if k not in own}
    if key in value:
        out["name"] = value[key]
    return out


def _split_plugins(value: Mapping[str, Any]) -> dict[str, Any]:
    """``[plugins]``: its own keys, and its sub-tables (``[plugins.NAME]``, a listener's
    settings) gathered under ``settings``."""
    own = _field_names(PluginsConfig)
    out = {k: v for k, v in value.items() if k in own or not isinstance(v, Mapping)}
    tables = {k: v for k, v in value.items() if k not in own and isinstance(v, Mapping)}
    if tables:
        given = out.get("settings")
        out["settings"] = {**given, **tables} if isinstance(given, Mapping) else tables
    return out


def _alias_input(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return {"candidates": value}
    return value


def _structure(
    data: Mapping[str, Any], source: str | None, env: Mapping[str, str] | None = None
) -> Config:
    import cattrs

    if not isinstance(data, Mapping):  # type: ignore[unreachable, unused-ignore]
        msg = f"config must be a table/mapping, got {type(data).__name__}"  # type: ignore[unreachable, unused-ignore]
        raise ConfigError(msg)
    conv = _converter()
    prepared: dict[str, Any] = dict(data)
    if isinstance(prepared.get("providers"), Mapping):
        prepared["providers"] = {k: _split_provider(v) for k, v in prepared["providers"].items()}
    if isinstance(prepared.get("aliases"), Mapping):
        prepared["aliases"] = {k: _alias_input(v) for k, v in prepared["aliases"].items()}
    for section in _COMPONENT_KEYS:
        if section in prepared:
            prepared[section] = _split_component(section, prepared[section])
    if isinstance(prepared.get("plugins"), Mapping):
        prepared["plugins"] = _split_plugins(prepared["plugins"])
    env = env or {}
    try:
        config = conv.structure(prepared, Config)
    except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError) as err:
        raise ConfigError(problems_message(error_messages(err, "$"), source, env)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ConfigError(problems_message([f"{err} @ $"], source, env)) from None
    config = attrs.evolve(config, source=source, env=dict(env))
    return _attach_secret_paths(config)


def problems_message(lines: list[str], source: str | None, env: Mapping[str, str]) -> str:
    """``invalid config in SOURCE:`` and one problem per line; a problem about a key an
    ``LLMX_*`` variable set names the variable, and when every problem is such, the
    message blames the environment, not the file."""
    blamed = blame_env(lines, env)
    from_env = [b != line for b, line in zip(blamed, lines, strict=True)]
    if lines and all(from_env):
        over = f", over {source}" if source else ""
        where = f" from LLMX_* environment variables{over}"
    elif any(from_env):
        where = f" in {source} and LLMX_* environment variables" if source else ""
    else:
        where = f" in {source}" if source else ""
    return f"invalid config{where}:\n  " + "\n  ".join(blamed)


def did_you_mean(wrong: Iterable[str], valid: Iterable[str]) -> str:
    """``"; did you mean 'api_key'?"`` for the names in ``wrong`` close to one in ``valid``
    (``difflib.get_close_matches``), or ``""`` when none is."""
    import difflib

    choices = sorted(set(valid))
    wrong = sorted(set(wrong))
    hits = [(w, m[0]) for w in wrong if (m := difflib.get_close_matches(w, choices, n=1))]
    if not hits:
        return ""
    if len(wrong) == 1:
        return f"; did you mean {hits[0][1]!r}?"
    return "; did you mean " + ", ".join(f"{m!r} for {w!r}" for w, m in hits) + "?"


class _UnknownName(ValueError):
    """A value that is not one of the names allowed there; ``hint`` says which is close."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _user_keys(cls: type) -> list[str]:
    """The keys a user may write in a table structured into ``cls``."""
    return [f.name for f in attrs.fields(cls) if f.name not in ("options", "source", "env")]


def _key_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if text and all(c.isalnum() or c in "_-" for c in text):
        return f"{path}.{text}"
    return f"{path}[{text!r}]"


def _field_path(cls: type, path: str, name: str) -> str:
    """The path of field ``name`` of ``cls`` as users wrote it.

    Provider-type keys and component settings live in ``options`` internally, the
    ``[cache]`` policy keys in ``policy``, a component's name in ``name``; users wrote
    all of them directly in the section, the name under its section's key.
    """
    if name == "options" and issubclass(cls, (ProviderConfig, ComponentConfig)):
        return path
    if issubclass(cls, CacheConfig) and name == "policy":
        return path
    if issubclass(cls, ComponentConfig) and name == "name":
        section = path.rpartition(".")[2]
        return f"{path}.{_COMPONENT_KEYS.get(section, name)}"
    return _key_path(path, name)


def error_messages(exc: BaseException, path: str, known: Iterable[str] = ()) -> list[str]:
    """One ``description @ $.path`` line per problem in a cattrs structuring error.

    An unknown key's line adds the close valid names (``; did you mean 'api_key'?``);
    ``known`` adds names valid at ``path`` besides the fields of the class structured
    there (a provider's common keys next to its type's own).
    """
    import cattrs

    out: list[str] = []
    if isinstance(exc, cattrs.IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, inote in with_notes:
            out.extend(error_messages(sub, _key_path(path, inote.index)))
        for sub in without:
            out.extend(error_messages(sub, path, known))
    elif isinstance(exc, cattrs.ClassValidationError):
        with_attr_notes, without = exc.group_exceptions()
        for sub, anote in with_attr_notes:
            out.extend(error_messages(sub, _field_path(exc.cl, path, anote.name)))
        for sub in without:
            out.extend(error_messages(sub, path, known))
    elif isinstance(exc, cattrs.ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)
        hint = did_you_mean(extra, [*_user_keys(exc.cl), *known])
        out.append(f"extra fields found ({', '.join(extra)}) @ {path}{hint}")
    else:
        hint = exc.hint if isinstance(exc, _UnknownName) else ""
        out.append(f"{_format_exception(exc, None)} @ {path}{hint}")
    return out


def _format_exception(exc: BaseException, type_: Any) -> str:
    import cattrs

    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _attach_secret_paths(config: Config) -> Config:
    providers = {}
    for name, p in config.providers.items():
        api_key = p.api_key
        if api_key is not None:
            api_key = attrs.evolve(api_key, where=f"$.providers.{name}.api_key")
        providers[name] = attrs.evolve(p, api_key=api_key)
    return attrs.evolve(config, providers=providers)


def _describe(config: Config) -> dict[str, Any]:
    def provider(p: ProviderConfig) -> dict[str, Any]:
        out: dict[str, Any] = {"type": p.type}
        if p.api_key is not None:
            out["api_key"] = p.api_key.describe()
        for f in attrs.fields(ProviderConfig):
            if f.name in ("type", "api_key", "options", "headers", "adaptive_concurrency"):
                continue
            value = getattr(p, f.name)
            if f.name == "model_info":
                out[f.name] = {m: facts.given() for m, facts in value.items()}
            elif isinstance(value, Mapping):
                out[f.name] = _redact(value)
            elif f.name in ("breaker", "limits", "cache"):
                out[f.name] = _table(value)
            else:
                out[f.name] = value
        adaptive = p.adaptive_concurrency
        out["adaptive_concurrency"] = (adaptive is not None) and (_table(adaptive) or True)
        if p.headers:
            out["headers"] = {k: v.describe() for k, v in p.headers.items()}
        out.update(_redact(p.options))
        return out

    def component(section: str, c: ComponentConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if c.name is not None:
            out[_COMPONENT_KEYS[section]] = c.name
        if isinstance(c, CacheConfig):
            out.update(_table(c.policy))
            if c.namespace is not None:
                out["namespace"] = c.namespace
        if c.store is not None:
            from llmx._settings import STORE_KEYS

            names = {field: key for key, field in STORE_KEYS.items()}
            names["expected_processes"] = "expected_processes"
            out.update({names[k]: v for k, v in _table(c.store).items()})
        out.update(_redact(c.options))
        return out

    return {
        "source": config.source,
        "default_model": config.default_model,
        "plugins": {
            "enable": list(config.plugins.enable),
            "disable": list(config.plugins.disable),
            "autoload": config.plugins.autoload,
            "strict": config.plugins.strict,
            **{k: _redact(v) for k, v in config.plugins.settings.items()},
        },
        "providers": {k: provider(v) for k, v in config.providers.items()},
        "aliases": {
            k: {
                "candidates": list(a.candidates),
                "strategy": a.strategy or config.routing.name,
                "fallback": a.fallback,
                "deadline": a.deadline,
                **({"cache": _table(a.cache)} if a.cache is not None else {}),
            }
            for k, a in config.aliases.items()
        },
        "deadline": config.deadline,
        "breaker": _table(config.breaker),
        "retry_budget": _table(config.retry_budget),
        "log": attrs.asdict(config.log),
        "logging": _table(config.logging),
        "cache": component("cache", config.cache),
        "retry": component("retry", config.retry),
        "routing": component("routing", config.routing),
        "limiter": component("limiter", config.limiter),
        "breaker_store": component("breaker_store", config.breaker_store),
    }


def _table(value: Any) -> dict[str, Any]:
    """A typed table as JSON-ready data: the fields that are set (None: an empty table)."""
    if value is None:
        return {}
    out: dict[str, Any] = {}
    for name, v in _given(value).items():
        if attrs.has(type(v)):
            out[name] = _table(v)
        elif isinstance(v, Mapping):
            out[name] = {k: _table(x) if attrs.has(type(x)) else x for k, x in v.items()}
        else:
            out[name] = v
    return out


_SECRETISH = ("key", "token", "secret", "password", "credential", "auth")


def _redact(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, Secret):
            out[k] = v.describe()
        elif isinstance(v, Mapping):
            if set(v) <= {"env", "file"} and v:
                out[k] = dict(v)
            else:
                out[k] = _redact(v)
        elif any(s in k.lower() for s in _SECRETISH):
            out[k] = "***"
        elif isinstance(v, str) and "://" in v and "@" in v:
            out[k] = _redact_url(v)
        else:
            out[k] = v
    return out


def _redact_url(value: str) -> str:
    """``value`` with the password of a URL in it (``redis://:PASSWORD@host``) as ``***``."""
    try:
        password = urlsplit(value).password
    except ValueError:
        return value
    if not password:
        return value
    remember(password)  # and scrubbed from whatever prints it from now on
    return value.replace(f":{password}@", ":***@", 1)


# -- loading ---------------------------------------------------------------------------------


MAX_CONFIG_BYTES = 10 * 1024 * 1024
"""The largest config file llmx reads (a real one is a few kilobytes; this bounds what
``--config /dev/zero`` or a runaway generated file costs)."""

MAX_CONFIG_DEPTH = 64
"""How deeply tables and arrays may nest in a config (a real one nests four or five
levels; Python's parser and the checks that walk the config recurse per level)."""


def _position(data: bytes, offset: int) -> str:
    """``line L, column C`` of byte ``offset`` in ``data`` (both counted from 1)."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


_TOML_SPECIAL = re.compile(r"[\n#\"'\[\]{}]")


def _nesting_too_deep(text: str) -> str | None:
    """The position where ``[``/``{`` nesting of a TOML value first exceeds
    :data:`MAX_CONFIG_DEPTH` (None: it never does). Strings and comments are skipped,
    so this is linear and never recurses; it runs before the parser, which would."""
    if text.count("[") + text.count("{") <= MAX_CONFIG_DEPTH:
        return None  # too few brackets to nest that deep: the usual config costs ~1 us
    depth = 0
    n = len(text)
    line, line_start = 1, 0
    found = _TOML_SPECIAL.search(text)
    while found is not None:
        i = found.start()
        c = text[i]
        nxt = i + 1
        if c == "\n":
            line, line_start = line + 1, i + 1
        elif c == "#":
            end = text.find("\n", i)
            nxt = n if end < 0 else end
        elif c in "\"'":
            quote = text[i : i + 3] if text.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if text[j] == "\\" and c == '"':
                    j += 1
                elif text[j] == "\n":
                    if len(quote) == 1:
                        break  # an unterminated string: the parser reports it
                    line, line_start = line + 1, j + 1
                j += 1
            nxt = j + len(quote) if j < n and text.startswith(quote, j) else j
        elif c in "[{":
            depth += 1
            if depth > MAX_CONFIG_DEPTH:
                return f"line {line}, column {i - line_start + 1}"
        else:
            depth = max(depth - 1, 0)
        found = _TOML_SPECIAL.search(text, nxt)
    return None


def _too_deep(data: Any, limit: int = MAX_CONFIG_DEPTH) -> str | None:
    """The key path of the first value nested deeper than ``limit`` tables or arrays
    (None: none is), found without recursion."""
    stack: list[tuple[Any, str, int]] = [(data, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > limit:
            return path if len(path) <= 120 else path[:117] + "..."
        if isinstance(value, Mapping):
            stack.extend((v, _key_path(path, k), depth + 1) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def check_depth(data: Any, where: str) -> None:
    """Raise :class:`ConfigError` if ``data`` nests deeper than :data:`MAX_CONFIG_DEPTH`
    (``where`` names the file or variables it came from)."""
    path = _too_deep(data)
    if path is not None:
        msg = (
            f"{where} nests tables or arrays more than {MAX_CONFIG_DEPTH} levels deep "
            f"@ {path}; a config never needs that many: flatten it"
        )
        raise ConfigError(msg)


def _read_toml(path: Path) -> dict[str, Any]:
    """Read and parse the config file ``path``; every way that fails is a
    :class:`ConfigError` naming the file (and the line and column where it is known)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        msg = f"config file {str(path)!r} does not exist; create it or pass another path"
        raise ConfigError(msg) from None
    except IsADirectoryError:
        msg = f"config file {str(path)!r} is a directory; pass the path of a TOML file"
        raise ConfigError(msg) from None
    except PermissionError:
        msg = (
            f"cannot read config file {str(path)!r}: permission denied; make it readable "
            "by this user (chmod u+r) or pass another path"
        )
        raise ConfigError(msg) from None
    except OSError as err:
        msg = f"cannot read config file {str(path)!r}: {err.strerror or err}"
        raise ConfigError(msg) from None
    if len(raw) > MAX_CONFIG_BYTES:
        msg = (
            f"config file {str(path)!r} is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MB; "
            "is it the right file?"
        )
        raise ConfigError(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        msg = (
            f"config file {str(path)!r} is not UTF-8 (byte 0x{raw[err.start]:02x} at "
            f"{_position(raw, err.start)}); TOML files are UTF-8: save it as UTF-8"
        )
        raise ConfigError(msg) from None
    deep = _nesting_too_deep(text)
    if deep is not None:
        msg = (
            f"config file {str(path)!r} nests arrays or inline tables more than "
            f"{MAX_CONFIG_DEPTH} levels deep (at {deep}); a config never needs that many"
        )
        raise ConfigError(msg)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        msg = f"{path} is not valid TOML: {err}"
        raise ConfigError(msg) from None
    except RecursionError:
        # tomli >= 2.1 (the parser on Python 3.10) refuses a dotted key of too many parts
        # before any data exists; name it as check_depth does when tomllib parses it.
        nested = _deep_dotted_key(text)
        if nested is None:
            msg = f"config file {str(path)!r} nests too deeply for the TOML parser"
            raise ConfigError(msg) from None
        data = nested
    check_depth(data, f"config file {str(path)!r}")
    return data


def _deep_dotted_key(text: str) -> dict[str, Any] | None:
    """The first key of ``text`` (a table header or a key = value line) with more than
    :data:`MAX_CONFIG_DEPTH` dotted parts, as the nested tables of its first parts (what
    :func:`check_depth` reports); None when no line has one."""
    for line in text.splitlines():
        key = line.strip().lstrip("[").split("]", 1)[0].split("=", 1)[0]
        parts = [p.strip().strip("\"'") for p in key.split(".")]
        if len(parts) > MAX_CONFIG_DEPTH:
            nested: dict[str, Any] = {}
            for part in reversed(parts[: MAX_CONFIG_DEPTH + 1]):
                nested = {part: nested}
            return nested
    return None


def _parse_env_value(raw: str) -> Any:
    """Read an env value as a TOML value if it is one (``3``, ``true``, ``["a"]``), else text."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested overrides ``LLMX_*`` variables give (``LLMX_PROVIDERS__MAIN__BASE_URL``);
    variables outside the config's namespace are left out (see :data:`ENV_PREFIX`)."""
    return _read_env(environ)[0]


def _read_env(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """``(overrides, {key path: variable}, [ignored variables])``."""
    out: dict[str, Any] = {}
    origins: dict[str, str] = {}
    ignored: list[str] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in ENV_SPECIAL:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if parts[0] not in ENV_SECTIONS or not all(parts):
            ignored.append(name)
            continue
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                ignored.append(name)  # a variable above it set a value, not a table
                break
            node = child
        else:
            node[parts[-1]] = _parse_env_value(environ[name])
            origins["$." + ".".join(parts)] = name
    return out, origins, ignored


def _warn_ignored(ignored: list[str], data: Mapping[str, Any]) -> None:
    """Warn once per process about each ``LLMX_*`` variable llmx does not read, unless
    the config names it as a secret's ``{ env = "..." }``."""
    referenced = set(_secret_env_names(data))
    for name in ignored:
        if name in referenced or name in _env_warned:
            continue
        _env_warned.add(name)
        _env_log.warning(
            "environment variable %s is ignored: it is not an llmx setting%s. In the "
            "LLMX_ namespace llmx reads LLMX_<KEY> and LLMX_<SECTION>__<KEY> for the "
            "config's keys (%s) and %s; a plugin's own variables take the plugin's own "
            "prefix",
            name,
            _env_did_you_mean(name),
            ", ".join(ENV_SECTIONS),
            ", ".join(sorted(ENV_SPECIAL)),
        )


def _env_did_you_mean(name: str) -> str:
    """`` (did you mean 'LLMX_DEFAULT_MODEL'?)`` for a variable close to one llmx reads:
    a special variable, or a config key (its first part compared, the rest kept)."""
    import difflib

    rest = name[len(ENV_PREFIX) :]
    specials = [n[len(ENV_PREFIX) :] for n in sorted(ENV_SPECIAL)]
    close = difflib.get_close_matches(rest, specials, n=1)
    if not close:
        first, sep, tail = rest.partition("__")
        keys = [k.upper() for k in ENV_SECTIONS]
        hits = difflib.get_close_matches(first, keys, n=1)
        close = [hits[0] + sep + tail] if hits else []
    return f" (did you mean {ENV_PREFIX + close[0]!r}?)" if close else ""


def _secret_env_names(data: Any) -> list[str]:
    """Every ``NAME`` in a ``{ env = "NAME" }`` table anywhere in ``data``."""
    if isinstance(data, Mapping):
        found = [data["env"]] if isinstance(data.get("env"), str) else []
        return found + [n for v in data.values() for n in _secret_env_names(v)]
    if isinstance(data, (list, tuple)):
        return [n for v in data for n in _secret_env_names(v)]
    return []


_LINE_PATH = re.compile(r" @ (\$[^\s;]*)")
_LINE_EXTRA = re.compile(r"^extra fields found \(([^)]*)\)")


def blame_env(lines: list[str], env: Mapping[str, str]) -> list[str]:
    """Each problem line (``... @ $.path``) about a key an ``LLMX_*`` variable set (or
    the table it created) ends with ``(set by environment variable LLMX_...)``."""
    if not env:
        return lines
    out = []
    for line in lines:
        m = _LINE_PATH.search(line)
        names: list[str] = []
        if m is not None:
            path = m.group(1)
            extra = _LINE_EXTRA.match(line)
            keys = [k.strip() for k in extra.group(1).split(",")] if extra else []
            targets = [f"{path}.{k}" for k in keys] or [path]
            for var_path, var in env.items():
                if any(_related(t, var_path) for t in targets) and var not in names:
                    names.append(var)
        if names:
            plural = "s" if len(names) > 1 else ""
            line = f"{line} (set by environment variable{plural} {', '.join(names)})"
        out.append(line)
    return out


def _related(path: str, var_path: str) -> bool:
    """Whether the problem at ``path`` is in what a variable set at ``var_path``: that
    key, or anything inside it."""
    return path == var_path or path.startswith((var_path + ".", var_path + "["))


def _created(data: Mapping[str, Any], path: str) -> str:
    """The shallowest table or key on ``path`` (``$.providers.new.base_url``) that
    ``data`` lacks: what the variable setting ``path`` brings in, so that a problem
    anywhere in it (``$.providers.new.type`` missing) is the variable's."""
    parts = path.split(".")[1:]
    node: Any = data
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            return ".".join(["$", *parts[: i + 1]])
        node = node[part]
    return path


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def find_config_file(start: Path | None = None) -> Path | None:
    """The config file to use: ``$LLMX_CONFIG``, else ``llmx.toml`` or a ``pyproject.toml``
    with ``[tool.llmx]`` in the working directory or its parents, else the user's
    ``~/.config/llmx/llmx.toml``; None when there is none."""
    explicit = os.environ.get("LLMX_CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / "llmx.toml"
        if candidate.is_file():
            return candidate
        pyproject = d / "pyproject.toml"
        if pyproject.is_file():
            try:
                has_section = b"[tool.llmx" in pyproject.read_bytes()
            except OSError:
                has_section = False
            if has_section:
                return pyproject
    user = Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() / "llmx" / "llmx.toml"
    return user if user.is_file() else None


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | Config | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate the configuration.

    ``source`` is a :class:`Config` (returned as is), a mapping, a path to a TOML file
    (``llmx.toml``, or a ``pyproject.toml`` whose ``[tool.llmx]`` is used), or None to
    find one (see :func:`find_config_file`). ``LLMX_*`` environment variables override
    keys: ``LLMX_DEFAULT_MODEL``, ``LLMX_PROVIDERS__MAIN__BASE_URL`` (lower-cased, ``__``
    nests; values read as TOML values where they parse, as text otherwise).
    """
    if isinstance(source, Config):
        return source
    env = os.environ if environ is None else environ
    origin: str | None = None
    if isinstance(source, Mapping):
        data: Mapping[str, Any] = source
        check_depth(data, "the config mapping")
    else:
        path = Path(source) if source is not None else find_config_file()
        data = {}
        if path is not None:
            origin = str(path)
            raw = _read_toml(path)
            if path.name == "pyproject.toml":
                tool = raw.get("tool", {})
                data = tool.get("llmx", {}) if isinstance(tool, Mapping) else {}
                origin = f"{path} [tool.llmx]"
            else:
                data = raw
    overrides, origins, ignored = _read_env(env)
    check_depth(overrides, "the LLMX_* environment variables")
    _warn_ignored(ignored, data)
    blame = {_created(data, path): name for path, name in origins.items()}
    if overrides:
        data = _merge(data, overrides)
    return _structure(data, origin, blame)


def settings_errors(
    settings_cls: type | None, options: Mapping[str, Any], path: str, known: Iterable[str] = ()
) -> tuple[Any, list[str]]:
    """Structure a component's own keys with its plugin's settings class.

    Returns ``(settings, [])``, or ``(None, problems)``: one ``description @ path`` line
    each (see :func:`error_messages`; ``known`` are the other keys valid at ``path``, for
    the "did you mean" hint). With no settings class, any key is an error.
    """
    import cattrs

    if settings_cls is None:
        if options:
            extra = sorted(options)
            hint = did_you_mean(extra, known)
            return None, [f"extra fields found ({', '.join(extra)}) @ {path}{hint}"]
        return None, []
    try:
        return _converter().structure(dict(options), settings_cls), []
    except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError) as err:
        return None, error_messages(err, path, known)
    except (TypeError, ValueError) as err:
        return None, [f"{err} @ {path}"]


def structure_settings(
    settings_cls: type | None, options: Mapping[str, Any], path: str, known: Iterable[str] = ()
) -> Any:
    """Validate a component's own keys with the settings class its plugin registered.

    ``path`` is where the keys live (``$.providers.main``). With no settings class, any
    key is an error (so a typo never passes silently). Raises a :class:`ConfigError`
    naming every problem (see :func:`settings_errors`).
    """
    settings, problems = settings_errors(settings_cls, options, path, known)
    if problems:
        msg = "invalid config:\n  " + "\n  ".join(problems)
        raise ConfigError(msg)
    return settings

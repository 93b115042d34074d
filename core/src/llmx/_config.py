"""Configuration: ``llmx.toml``, ``[tool.llmx]`` in pyproject.toml, a path or a dict,
plus ``LLMX_*`` environment overrides, structured with cattrs into frozen classes.

Every error is a :class:`~llmx.ConfigError` whose message names the key path, e.g.
``extra fields found (api_kye) @ $.providers.main``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from llmx._errors import ConfigError
from llmx._secret import Secret

ENV_PREFIX = "LLMX_"
"""Environment variables starting with this override config keys (``__`` nests)."""

_ENV_NOT_OVERRIDES = frozenset(
    {
        "LLMX_CONFIG",
        "LLMX_DISABLE_PLUGIN_AUTOLOAD",
        "LLMX_DEBUG",
        "LLMX_HOME",
        "LLMX_MODELS_DIR",  # where local models live (llmx models pull)
        "LLMX_MODEL",  # llmx chat's default model
    }
)


@attrs.frozen
class PluginsConfig:
    """``[plugins]``: which installed plugins may load.

    ``enable`` names plugins to load up front (and, with ``autoload = false`` or
    ``LLMX_DISABLE_PLUGIN_AUTOLOAD=1``, the only ones that may load). ``disable``
    names plugins that never load. ``strict`` turns a broken plugin into an error
    instead of a reported warning.
    """

    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    autoload: bool = True
    strict: bool = False


@attrs.frozen
class ProviderConfig:
    """``[providers.NAME]``: one provider instance (a deployment).

    ``type`` names the provider plugin; ``models`` maps the model names callers use
    to the provider's own. Timeouts (seconds): ``timeout`` bounds one attempt,
    ``connect_timeout`` the connection set-up, ``first_byte_timeout`` the wait for the
    first streamed chunk (time to first token), ``idle_timeout`` the silence between
    chunks. ``max_concurrent`` caps in-flight requests to this instance;
    ``adaptive_concurrency`` makes that cap an AIMD limit that shrinks on 429/503/529
    and grows on success. ``retry`` and ``breaker`` override the global ``[retry]`` and
    ``[breaker]`` settings for this instance; ``health_model`` is the model a health
    check asks when the provider cannot list models. ``limits`` are the client-side
    rate limits (see :class:`~llmx.LimitSettings`) and ``cache`` this instance's
    response-cache policy (see :class:`~llmx.CachePolicy`). Keys not listed here belong to
    the provider type and are validated by its plugin's settings class (kept raw in
    ``options``).
    """

    type: str
    api_key: Secret | None = None
    base_url: str | None = None
    priority: int = 0
    weight: float = 1.0
    models: Mapping[str, str] = attrs.field(factory=dict)
    timeout: float = 600.0
    connect_timeout: float = 10.0
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None
    max_concurrent: int | None = None
    adaptive_concurrency: bool = False
    verify_tls: bool = True
    headers: Mapping[str, Secret] = attrs.field(factory=dict)
    retry: Mapping[str, Any] = attrs.field(factory=dict)
    breaker: Mapping[str, Any] = attrs.field(factory=dict)
    health_model: str | None = None
    limits: Mapping[str, Any] = attrs.field(factory=dict)
    cache: Mapping[str, Any] = attrs.field(factory=dict)
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
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
    response-cache policy of requests to this alias (see :class:`~llmx.CachePolicy`).
    """

    candidates: tuple[str, ...]
    strategy: str | None = None
    fallback: Literal["fail_fast", "try_all"] = "fail_fast"
    deadline: float | None = None
    cache: Mapping[str, Any] = attrs.field(factory=dict)

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
    """A ``[cache]``, ``[retry]``, ``[routing]``, ``[limiter]`` or ``[breaker_store]``
    section: which component, and its settings."""

    name: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Config:
    """The whole configuration. Build it with :func:`load_config` or :meth:`from_dict`."""

    providers: Mapping[str, ProviderConfig] = attrs.field(factory=dict)
    aliases: Mapping[str, AliasConfig] = attrs.field(factory=dict)
    default_model: str | None = None
    deadline: float | None = None
    """Default bound on one whole request, retries and fallbacks included (seconds)."""
    plugins: PluginsConfig = PluginsConfig()
    cache: ComponentConfig = ComponentConfig()
    retry: ComponentConfig = ComponentConfig(name="stamina")
    routing: ComponentConfig = ComponentConfig(name="priority")
    limiter: ComponentConfig = ComponentConfig(name="local")
    """``[limiter]``: where rate-limit buckets live (``local``, or ``redis`` to share them)."""
    breaker_store: ComponentConfig = ComponentConfig(name="memory")
    """``[breaker_store]``: where breaker state and cooldowns live (``memory``, ``redis``)."""
    breaker: Mapping[str, Any] = attrs.field(factory=dict)
    """``[breaker]``: circuit-breaker settings for every instance (see BreakerSettings)."""
    retry_budget: Mapping[str, Any] = attrs.field(factory=dict)
    """``[retry_budget]``: the per-instance cap on retries (see RetryBudgetSettings)."""

    def __attrs_post_init__(self) -> None:
        if self.deadline is not None and not self.deadline > 0:
            msg = "deadline must be a positive number of seconds"
            raise ValueError(msg)

    source: str | None = attrs.field(default=None, eq=False)
    """Where the config was read from (a file path, or None)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Config:
        """Validate a mapping (as read from TOML) into a Config, or raise ConfigError."""
        return _structure(data, source)

    def describe(self) -> dict[str, Any]:
        """The resolved config as JSON-ready data, every secret redacted."""
        return _describe(self)


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
    if not isinstance(value, Mapping):
        return value
    key = _COMPONENT_KEYS[section]
    out: dict[str, Any] = {"options": {k: v for k, v in value.items() if k != key}}
    if key in value:
        out["name"] = value[key]
    return out


def _alias_input(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return {"candidates": value}
    return value


def _structure(data: Mapping[str, Any], source: str | None) -> Config:
    import cattrs

    if not isinstance(data, Mapping):  # type: ignore[unreachable, unused-ignore]
        msg = f"config must be a table/mapping, got {type(data).__name__}"  # type: ignore[unreachable, unused-ignore]
        raise ConfigError(msg)
    prepared: dict[str, Any] = dict(data)
    if isinstance(prepared.get("providers"), Mapping):
        prepared["providers"] = {k: _split_provider(v) for k, v in prepared["providers"].items()}
    if isinstance(prepared.get("aliases"), Mapping):
        prepared["aliases"] = {k: _alias_input(v) for k, v in prepared["aliases"].items()}
    for section in _COMPONENT_KEYS:
        if section in prepared:
            prepared[section] = _split_component(section, prepared[section])
    conv = _converter()
    try:
        config = conv.structure(prepared, Config)
    except cattrs.ClassValidationError as err:
        messages = cattrs.transform_error(err, path="$", format_exception=_format_exception)
        messages = [_unprepare_path(m) for m in messages]
        where = f" in {source}" if source else ""
        msg = f"invalid config{where}:\n  " + "\n  ".join(messages)
        raise ConfigError(msg) from None
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        where = f" in {source}" if source else ""
        msg = f"invalid config{where}: {err} @ $"
        raise ConfigError(msg) from None
    config = attrs.evolve(config, source=source)
    return _attach_secret_paths(config)


def _format_exception(exc: BaseException, type_: Any) -> str:
    import cattrs

    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"extra fields found ({', '.join(sorted(exc.extra_fields))})"
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _unprepare_path(message: str) -> str:
    """Report paths as users wrote them: ``$.providers.main.base_url``.

    Type-specific keys and component settings live in ``options`` internally, and a
    component's name in ``name``; users wrote both directly in the section.
    """
    import re

    message = re.sub(r"\['([A-Za-z0-9_-]+)'\]", r".\1", message)
    for section, key in _COMPONENT_KEYS.items():
        message = message.replace(f"$.{section}.name", f"$.{section}.{key}")
    return re.sub(r"\.options(?=\.|\s|$)", "", message)


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
            if f.name in ("type", "api_key", "options", "headers"):
                continue
            value = getattr(p, f.name)
            out[f.name] = _redact(value) if isinstance(value, Mapping) else value
        if p.headers:
            out["headers"] = {k: v.describe() for k, v in p.headers.items()}
        out.update(_redact(p.options))
        return out

    def component(section: str, c: ComponentConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if c.name is not None:
            out[_COMPONENT_KEYS[section]] = c.name
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
        },
        "providers": {k: provider(v) for k, v in config.providers.items()},
        "aliases": {
            k: {
                "candidates": list(a.candidates),
                "strategy": a.strategy or config.routing.name,
                "fallback": a.fallback,
                "deadline": a.deadline,
                **({"cache": _redact(a.cache)} if a.cache else {}),
            }
            for k, a in config.aliases.items()
        },
        "deadline": config.deadline,
        "breaker": dict(config.breaker),
        "retry_budget": dict(config.retry_budget),
        "cache": component("cache", config.cache),
        "retry": component("retry", config.retry),
        "routing": component("routing", config.routing),
        "limiter": component("limiter", config.limiter),
        "breaker_store": component("breaker_store", config.breaker_store),
    }


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
        else:
            out[k] = v
    return out


# -- loading ---------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        msg = f"config file {str(path)!r} does not exist; create it or pass another path"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as err:
        msg = f"{path} is not valid TOML: {err}"
        raise ConfigError(msg) from None
    except OSError as err:
        msg = f"cannot read config file {str(path)!r}: {err.strerror}"
        raise ConfigError(msg) from None


def _parse_env_value(raw: str) -> Any:
    """Read an env value as a TOML value if it is one (``3``, ``true``, ``["a"]``), else text."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested overrides ``LLMX_*`` variables give (``LLMX_PROVIDERS__MAIN__BASE_URL``)."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_OVERRIDES:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            continue
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = _parse_env_value(raw)
    return out


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
    overrides = env_overrides(env)
    if overrides:
        data = _merge(data, overrides)
    return Config.from_dict(data, source=origin)


def structure_settings(settings_cls: type | None, options: Mapping[str, Any], path: str) -> Any:
    """Validate a component's own keys with the settings class its plugin registered.

    ``path`` is where the keys live (``$.providers.main``). With no settings class, any
    key is an error (so a typo never passes silently).
    """
    import cattrs

    if settings_cls is None:
        if options:
            msg = f"extra fields found ({', '.join(sorted(options))}) @ {path}"
            raise ConfigError(msg)
        return None
    try:
        return _converter().structure(dict(options), settings_cls)
    except cattrs.ClassValidationError as err:
        messages = cattrs.transform_error(err, path=path, format_exception=_format_exception)
        msg = "invalid config:\n  " + "\n  ".join(messages)
        raise ConfigError(msg) from None
    except (TypeError, ValueError) as err:
        msg = f"invalid config: {err} @ {path}"
        raise ConfigError(msg) from None

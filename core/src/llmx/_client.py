"""``llmx.Client``: the async entry point. It composes config, registry, provider pool
and pipeline; the pipeline does the work."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmx._config import Config, load_config
from llmx._engine.pipeline import Pipeline
from llmx._errors import ClientClosedError, ConfigError
from llmx._pool import ProviderPool
from llmx._registry import Registry
from llmx._scrub import scrub
from llmx._state import DegradableStore, degradable_stats
from llmx._stats import InstanceStats, Stats
from llmx._types import Message, Request, _to_messages
from llmx._validate import validate

if TYPE_CHECKING:
    import os
    from types import TracebackType

    from llmx._health import HealthStatus
    from llmx._settings import CacheMode, CachePolicy
    from llmx._stream import Stream
    from llmx._types import ModelInfo, Response, Usage


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def build_request(
    request: Request | None,
    *,
    model: str | None,
    messages: Iterable[Message | Mapping[str, Any]] | str | None,
    prompt: str | None,
    system: str | None,
    default_model: str | None,
    params: Mapping[str, Any],
) -> Request:
    """A Request from either a ready one or the convenience keyword arguments."""
    if request is not None:
        if (
            model is not None
            or messages is not None
            or prompt is not None
            or system is not None
            or params
        ):
            msg = "pass either a Request or keyword arguments, not both"
            raise TypeError(msg)
        return request
    chosen = model or default_model
    if not chosen:
        msg = (
            "no model given: pass model='instance/model' (e.g. 'openai/gpt-4o-mini') or set "
            "default_model in llmx.toml"
        )
        raise ConfigError(msg)
    if messages is None and prompt is None:
        msg = "pass messages=[...] or prompt='...'"
        raise TypeError(msg)
    convo: list[Message | Mapping[str, Any]] = []
    if system is not None:
        convo.append(Message("system", system))
    if messages is not None:
        convo.extend(_to_messages(messages))
    if prompt is not None:
        convo.append(Message("user", prompt))
    return Request(chosen, convo, **params)


class Client:
    """One llmx client: configured providers behind one API.

    ``config`` is a :class:`Config`, a mapping, a path to a TOML file, or None to read
    ``llmx.toml`` / ``[tool.llmx]`` / ``$LLMX_CONFIG`` (see :func:`llmx.load_config`).
    It is validated completely here, every key and every name against the installed
    plugins: a :class:`ConfigError` names each problem and its path.
    Use it as an async context manager, which closes its connection pools on exit::

        async with llmx.Client() as client:
            reply = await client.complete(model="openai/gpt-4o-mini", prompt="Hello")
            print(reply.text)

    A closed client refuses further use (:class:`ClientClosedError`).
    """

    def __init__(
        self,
        config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        registry: Registry | None = None,
    ) -> None:
        self._config = load_config(config)
        self._registry = registry if registry is not None else Registry.from_config(self._config)
        validate(self._config, self._registry)
        self._pool = ProviderPool(
            self._config, self._registry, on_breaker_transition=self._breaker_transition
        )
        self._pipeline = Pipeline(self._config, self._registry, self._pool)
        self._pool.validate()
        self._state = _State.UNOPENED

    def _breaker_transition(self, instance: str, old: str, new: str, reason: str) -> None:
        self._pipeline.breaker_transition(instance, old, new, reason)

    @property
    def config(self) -> Config:
        """The validated configuration."""
        return self._config

    @property
    def registry(self) -> Registry:
        """The plugin registry this client uses."""
        return self._registry

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            msg = "this llmx.Client is closed; create a new one"
            raise ClientClosedError(msg)

    async def __aenter__(self) -> Client:
        self._check_open()
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection pool; the client cannot be used afterwards."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            await self._pool.aclose()
        finally:
            await self._pipeline.aclose()

    async def complete(
        self,
        request: Request | None = None,
        /,
        *,
        model: str | None = None,
        messages: Iterable[Message | Mapping[str, Any]] | str | None = None,
        prompt: str | None = None,
        system: str | None = None,
        timeout: float | None = None,
        cache: CachePolicy | CacheMode | None = None,
        **params: Any,
    ) -> Response:
        """Send a request and return the whole answer.

        Pass a :class:`Request`, or keyword arguments: ``model`` (``"instance/model"`` or
        an alias; defaults to the config's ``default_model``), ``messages`` or ``prompt``,
        ``system``, and any :class:`Request` field (``max_tokens``, ``temperature``,
        ``tools``, ``response_format``, ...). ``timeout`` bounds the whole request,
        retries and fallbacks included (default: the alias's or config's ``deadline``).
        ``cache`` overrides the response-cache policy for this call: a mode
        (``"off"``, ``"read_only"``, ``"refresh"``, ``"read_write"``) or a
        :class:`CachePolicy`; a cached answer has ``response.cached`` set.
        """
        if self._state is not _State.OPENED:
            self._check_open()
        req = build_request(
            request,
            model=model,
            messages=messages,
            prompt=prompt,
            system=system,
            default_model=self._config.default_model,
            params=params,
        )
        return await self._pipeline.complete(req, timeout=timeout, cache=cache)

    def stream(
        self,
        request: Request | None = None,
        /,
        *,
        model: str | None = None,
        messages: Iterable[Message | Mapping[str, Any]] | str | None = None,
        prompt: str | None = None,
        system: str | None = None,
        timeout: float | None = None,
        cache: CachePolicy | CacheMode | None = None,
        **params: Any,
    ) -> Stream:
        """Send a request and stream the answer (same arguments as :meth:`complete`).

        Returns a :class:`Stream`: iterate it with ``async for``; after the last chunk
        ``stream.response`` holds the assembled :class:`Response`. Retries and fallback
        happen only before the first chunk; ``timeout`` bounds the time to it. A cached
        answer replays as the same chunks; a stream is stored only once it completed.
        """
        if self._state is not _State.OPENED:
            self._check_open()
        req = build_request(
            request,
            model=model,
            messages=messages,
            prompt=prompt,
            system=system,
            default_model=self._config.default_model,
            params=params,
        )
        return self._pipeline.stream(req, timeout=timeout, cache=cache)

    async def count_tokens(
        self,
        request: Request | None = None,
        /,
        *,
        model: str | None = None,
        messages: Iterable[Message | Mapping[str, Any]] | str | None = None,
        prompt: str | None = None,
        system: str | None = None,
        **params: Any,
    ) -> Usage:
        """The input tokens a request would be billed for, before sending it (same
        arguments as :meth:`complete`).

        Counted on the candidate the request would go to first (for an alias: the
        first in routing order), by its provider when the provider can count
        (:class:`llmx.plugin.TokenCountingProvider`: Anthropic's ``count_tokens`` and
        Gemini's ``countTokens`` endpoints, a local model's tokenizer): then
        ``usage.estimated`` is False. Otherwise llmx's own estimate (about four
        characters per token, erring high), with ``usage.estimated`` True. Only
        ``input_tokens`` is filled in.

        An exact count of a :class:`Request` object is remembered: sending that same
        object afterwards plans its rate limits and context-window checks with it
        instead of the estimate. A provider's failure raises its typed error.
        """
        if self._state is not _State.OPENED:
            self._check_open()
        req = build_request(
            request,
            model=model,
            messages=messages,
            prompt=prompt,
            system=system,
            default_model=self._config.default_model,
            params=params,
        )
        return await self._pipeline.count_tokens(req)

    def model_info(self, model_ref: str) -> ModelInfo | None:
        """What is known about the first candidate of ``model_ref`` (no network)."""
        self._check_open()
        route = self._pipeline.route(model_ref)
        candidate = route.candidates[0]
        return candidate.info or self._pool.get(candidate.instance).model_info(candidate.model)

    async def list_models(self, instance: str) -> Sequence[ModelInfo]:
        """The models the instance's API lists now (a network call)."""
        self._check_open()
        inst = self._pool.get(instance)
        provider = inst.open()
        if not inst.can_list:
            msg = f"provider type {inst.config.type!r} cannot list models"
            raise ConfigError(msg)
        models: Sequence[ModelInfo] = await provider.list_models()  # type: ignore[attr-defined]
        # A model list is the upstream's text: a server that echoes a credential into it
        # (a proxy naming the key it was given) must not get it printed.
        return [m if scrub(m.id) == m.id else m.renamed(scrub(m.id)) for m in models]

    def stats(self) -> Stats:
        """Usage, cost, errors and latency per instance and model, and each instance's
        live state (in flight, breaker, concurrency limit, cooldown)."""
        import time

        now = time.monotonic()
        instances = {
            d.name: InstanceStats(
                instance=d.name,
                in_flight=d.in_flight,
                breaker=d.breaker.refresh(),
                concurrency_limit=d.limit.limit if d.limit is not None else None,
                cooldown_remaining=max(0.0, d.blocked_until - now),
                limiter=d.limiter.stats() if d.limiter is not None else None,
            )
            for d in self._pool.built()
        }
        cache = self._pipeline.cache
        stores = {}
        if cache is not None and cache.guard is not None:
            stores["cache"] = cache.guard.stats()
        limiter = self._pool.shared_limiter
        if limiter is not None:
            stores["limiter"] = limiter.guard.stats()
        breaker_store = self._pool.breaker_store
        if isinstance(breaker_store, DegradableStore):
            name = self.config.breaker_store.name or "memory"
            stores["breaker_store"] = degradable_stats("breaker store", name, breaker_store)
        return Stats(
            self._pipeline.stats.snapshot(),
            instances,
            cache.stats() if cache is not None else None,
            stores,
        )

    async def health(
        self, *, timeout: float = 10.0, instances: Sequence[str] | None = None
    ) -> list[HealthStatus]:
        """Probe every configured instance (or ``instances``) concurrently.

        Each probe is the cheapest the provider supports (listing models, or a
        one-token completion of the instance's ``health_model``) and is bounded by
        ``timeout`` seconds; the result lists status, latency and error per instance.
        """
        self._check_open()
        from llmx._health import check_health

        names = list(instances) if instances is not None else self.instances()
        return await check_health(self._pool, names, timeout)

    def instances(self) -> list[str]:
        """The configured provider instance names."""
        return sorted(self._config.providers)

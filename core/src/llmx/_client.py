"""``llmx.Client``: the async entry point. It composes config, registry, provider pool
and pipeline; the pipeline does the work."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmx._config import Config, load_config
from llmx._embedding import EmbeddingRequest
from llmx._engine.pipeline import Pipeline
from llmx._errors import ClientClosedError, ConfigError
from llmx._pool import ProviderPool
from llmx._registry import Registry, start_listeners
from llmx._scrub import scrub
from llmx._state import DegradableStore, degradable_stats
from llmx._stats import InstanceStats, Stats
from llmx._types import Message, Request, _to_messages
from llmx._validate import validate

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from types import TracebackType

    from llmx._embedding import EmbeddingResponse, EmbeddingTask
    from llmx._health import HealthStatus
    from llmx._provider_batch import Backend, ProviderBatchReport
    from llmx._requestlog import RequestLog
    from llmx._settings import CacheMode, CachePolicy
    from llmx._stream import Stream
    from llmx._structured import ParsedResponse, StructuredStream
    from llmx._types import ModelInfo, Response, Usage

T = TypeVar("T")


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
        if self._config.logging.configured:  # [logging]: the app asked for a handler
            from llmx._logging import configure

            configure(self._config.logging)
        start_listeners(self._registry, self._config.plugins.settings)
        self._pool = ProviderPool(
            self._config, self._registry, on_breaker_transition=self._breaker_transition
        )
        self._log: RequestLog | None = None
        hooks = None
        if self._config.log.active():
            from llmx._requestlog import LoggedEvents, RequestLog, remember_secrets

            remember_secrets(self._config)  # scrubbed from every row, even before use
            log = self._config.log
            self._log = RequestLog(log.resolved_path(), content=log.content)
            hooks = LoggedEvents(self._registry, self._log)
        self._pipeline = Pipeline(self._config, self._registry, self._pool, hooks)
        self._pool.validate()
        self._state = _State.UNOPENED

    def _breaker_transition(self, instance: str, old: str, new: str, reason: str) -> None:
        self._pipeline.breaker_transition(instance, old, new, reason)

    @property
    def config(self) -> Config:
        """The validated configuration."""
        return self._config

    @property
    def request_log(self) -> RequestLog | None:
        """The request log this client writes (``[log]``), or None when it is off."""
        return self._log

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
            try:
                await self._pipeline.aclose()
            finally:
                if self._log is not None and self._log.running:  # off the event loop
                    import asyncio

                    await asyncio.to_thread(self._log.close)

    @overload
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
        response_model: type[T],
        max_validation_retries: int = 1,
        **params: Any,
    ) -> ParsedResponse[T]: ...
    @overload
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
        response_model: None = None,
        max_validation_retries: int = 1,
        **params: Any,
    ) -> Response: ...
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
        response_model: type[Any] | None = None,
        max_validation_retries: int = 1,
        **params: Any,
    ) -> Response:
        """Send a request and return the whole answer.

        Pass a :class:`Request`, or keyword arguments: ``model`` (``"instance/model"`` or
        an alias; defaults to the config's ``default_model``), ``messages`` or ``prompt``,
        ``system``, and any :class:`Request` field (``max_tokens``, ``temperature``,
        ``tools``, ``response_format``, ``reasoning``, ...). ``timeout`` bounds the whole request,
        retries and fallbacks included (default: the alias's or config's ``deadline``).
        ``cache`` overrides the response-cache policy for this call: a mode
        (``"off"``, ``"read_only"``, ``"refresh"``, ``"read_write"``) or a
        :class:`CachePolicy`; a cached answer has ``response.cached`` set.

        ``response_model`` (an attrs class, dataclass, ``TypedDict``, Pydantic model or
        plain type such as ``list[Item]``) asks for JSON of its schema, sent in each
        vendor's strict form, and returns a :class:`~llmx.structured.ParsedResponse` whose ``parsed`` is
        the instance; an answer that does not match is asked again with the errors, at
        most ``max_validation_retries`` times, then :class:`~llmx.structured.StructuredOutputError`.
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
        if response_model is not None:
            from llmx._structured import complete_structured, structured_output

            spec = structured_output(response_model)
            return await complete_structured(
                self._pipeline,
                spec.request(req),
                spec,
                max_validation_retries=max_validation_retries,
                timeout=timeout,
                cache=cache,
            )
        return await self._pipeline.complete(req, timeout=timeout, cache=cache)

    @overload
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
        response_model: type[T],
        max_validation_retries: int = 1,
        **params: Any,
    ) -> StructuredStream[T]: ...
    @overload
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
        response_model: None = None,
        max_validation_retries: int = 1,
        **params: Any,
    ) -> Stream: ...
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
        response_model: type[Any] | None = None,
        max_validation_retries: int = 1,
        **params: Any,
    ) -> Stream:
        """Send a request and stream the answer (same arguments as :meth:`complete`).

        Returns a :class:`Stream`: iterate it with ``async for``; after the last chunk
        ``stream.response`` holds the assembled :class:`Response`. Retries and fallback
        happen only before the first chunk; ``timeout`` bounds the time to it. A cached
        answer replays as the same chunks; a stream is stored only once it completed.
        With ``response_model``, a :class:`~llmx.structured.StructuredStream`: the JSON text streams as
        usual and ``await stream.parsed()`` returns the validated instance.
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
        if response_model is not None:
            from llmx._structured import stream_structured

            return stream_structured(
                self._pipeline, req, response_model, max_validation_retries, timeout, cache
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

    async def embed(
        self,
        request: EmbeddingRequest | None = None,
        /,
        *,
        model: str | None = None,
        input: str | Iterable[str] | None = None,
        dimensions: int | None = None,
        task: EmbeddingTask | None = None,
        timeout: float | None = None,
        cache: CachePolicy | CacheMode | None = None,
        concurrency: int = 4,
        extra: Mapping[str, Any] | None = None,
    ) -> EmbeddingResponse:
        """Embed ``input`` (a string or several) with ``model`` and return the vectors,
        one per input, in input order (see :class:`EmbeddingResponse`).

        Pass an :class:`~llmx.plugin.EmbeddingRequest`, or keyword arguments: ``model``
        (``"instance/model"`` or an alias, as for :meth:`complete`; no default),
        ``input``, ``dimensions`` (shorter vectors, where the model can), ``task`` (a
        hint for providers that tune embeddings to a use) and ``extra`` (provider
        fields). The request goes through the same pipeline as :meth:`complete`:
        routing, fallback, retries, breaker, rate limits, the response cache
        (``cache``), stats (``embeds``) and cost. More inputs than the provider takes in
        one request are sent as several batches, ``concurrency`` at a time, and put back
        in order. A provider without embeddings is refused before sending
        (:class:`UnsupportedFeatureError`).
        """
        if self._state is not _State.OPENED:
            self._check_open()
        if request is None:
            if model is None or input is None:
                msg = "pass model='instance/model' and input=[...] (or an EmbeddingRequest)"
                raise TypeError(msg)
            request = EmbeddingRequest(model, input, dimensions, task, extra or {})
        elif model is not None or input is not None or dimensions is not None or task:
            msg = "pass either an EmbeddingRequest or keyword arguments, not both"
            raise TypeError(msg)
        if concurrency < 1:
            msg = f"concurrency must be at least 1, not {concurrency!r}"
            raise ValueError(msg)
        from llmx._embed import embed

        return await embed(
            self._pipeline, request, timeout=timeout, cache=cache, concurrency=concurrency
        )

    async def provider_batch(
        self,
        input: str | os.PathLike[str],
        output: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        cancel: bool = False,
        echo: Callable[[str], None] | None = None,
    ) -> ProviderBatchReport:
        """Run the JSONL file ``input`` (what ``llmx batch`` takes) through the providers'
        batch APIs into the results file ``output`` (default ``INPUT.results.jsonl``),
        as ``llmx batch --provider-batch`` does: resumable (call it again after a crash:
        nothing is submitted twice), every id written exactly once. Returns when every
        batch ended, or when ``timeout`` seconds passed (``report.waiting`` counts what
        is still running; call again to resume). ``model`` overrides the lines' models;
        ``echo`` receives the progress lines. A provider without a batch API is refused
        before anything is sent (:class:`UnsupportedFeatureError`).
        """
        self._check_open()
        from llmx._provider_batch import run_file

        return await run_file(
            self.backend(),
            input,
            output,
            model=model,
            poll_interval=poll_interval,
            timeout=timeout,
            cancel=cancel,
            echo=echo,
        )

    def backend(self) -> Backend:
        """The routes, provider instances and config of this client, for the batch module
        (:mod:`llmx._provider_batch`), which does not import the client."""
        from llmx._provider_batch import Backend

        return Backend(self._pipeline.route, self._pool, self._config, self._pipeline.stats)

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

"""The plugin-author API: what a plugin implements, receives and may reuse.

::

    from llmx import Request, Response
    from llmx.plugin import ProviderContext, Register, hookimpl

    llmx_contract = "1.0"


    class AcmeProvider:
        def __init__(self, ctx: ProviderContext) -> None: ...
        async def complete(self, request: Request) -> Response: ...


    @hookimpl
    def llmx_register_providers(register: Register) -> None:
        register("acme", AcmeProvider)

* **The contract**: :data:`hookimpl` (and :data:`hookspec`, :data:`CONTRACT_VERSION`
  for frameworks adding specs), the :class:`Register` callback every registration hook
  receives; the hook specifications themselves are documented in :mod:`llmx.hookspecs`.
* **Component protocols**: :class:`Provider` (one required method) and its optional
  abilities (:class:`StreamingProvider`, :class:`ModelInfoProvider`,
  :class:`ModelListingProvider`, :class:`EmbeddingProvider` with :class:`EmbeddingLimits`
  and the :class:`EmbeddingRequest` it receives, :class:`Closable`, and
  :class:`BatchProvider` with :class:`BatchLimits`, :class:`BatchJob`, :class:`BatchStatus`,
  :class:`BatchResult` for provider batch APIs), :class:`Cache` (and the optional
  :class:`ScopedCache`),
  :class:`RateLimiter` with :class:`Bucket` (and the optional :class:`InProcessAcquire`,
  :class:`InProcessRelease`), :class:`BreakerStore` with :class:`SharedBreakerState` (and
  the optional :class:`ScopedBreakerStore`), :class:`RetryPolicy`, :class:`RoutingStrategy` (and the
  optional :class:`HedgingStrategy`, :class:`LayeredStrategy`) with
  :class:`RoutingView` and :class:`Candidate`, and :class:`ModelSource` with
  :class:`DefaultModel` for ``llmx models pull`` and ``llmx chat`` on a machine where
  nothing is configured.
* **What the core hands plugins**: :class:`ProviderContext`, the event objects of the
  event hooks (:class:`RequestStart`, :class:`AttemptStart` with :data:`AttemptKind`,
  :class:`AttemptEnd`, :class:`RequestEnd`, :class:`RequestError`,
  :class:`RequestCancelled`, :class:`BreakerTransition`), and :class:`Registration` /
  :class:`PluginInfo` describing what the registry loaded.
* **Helpers for providers**: :class:`SSEParser` / :func:`aiter_sse`,
  :class:`ResponseBuilder`, :func:`error_class_for_status`, :func:`parse_retry_after`,
  :func:`cache_key`; :func:`scrub` (every secret llmx knows replaced by ``***``, for
  text a plugin exports); :func:`lazy_exports` for a package whose names load on first use.

The value types (``Request``, ``Response``, ``TextDelta``, ``ModelInfo``, ...) and the
errors (``ProviderError`` and its subclasses) are shared with applications and live in
:mod:`llmx`. Like ``import llmx``, importing this module is cheap: each name is
imported from its private module on first use. The test kit for plugins is
:mod:`llmx.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx._lazy import lazy_exports as lazy_exports

_EXPORTS: dict[str, str] = {
    # the contract
    "hookimpl": "llmx.hookspecs",
    "hookspec": "llmx.hookspecs",
    "CONTRACT_VERSION": "llmx.hookspecs",
    "Register": "llmx.hookspecs",
    "Registration": "llmx._registry",
    "PluginInfo": "llmx._registry",
    # providers
    "Provider": "llmx._components",
    "StreamingProvider": "llmx._components",
    "ModelInfoProvider": "llmx._components",
    "ModelListingProvider": "llmx._components",
    "TokenCountingProvider": "llmx._components",
    "PriceTier": "llmx._types",
    "EmbeddingProvider": "llmx._components",
    "EmbeddingLimits": "llmx._embedding",
    "EmbeddingRequest": "llmx._embedding",
    "Closable": "llmx._components",
    "BatchProvider": "llmx._batchapi",
    "BatchLimits": "llmx._batchapi",
    "BatchJob": "llmx._batchapi",
    "BatchStatus": "llmx._batchapi",
    "BatchResult": "llmx._batchapi",
    "BatchState": "llmx._batchapi",
    "InProcessAcquire": "llmx._components",
    "InProcessRelease": "llmx._components",
    "ScopedBreakerStore": "llmx._components",
    "ScopedCache": "llmx._components",
    "ProviderContext": "llmx._components",
    # other components
    "Cache": "llmx._components",
    "RateLimiter": "llmx._components",
    "Bucket": "llmx._components",
    "BreakerStore": "llmx._components",
    "SharedBreakerState": "llmx._components",
    "RetryPolicy": "llmx._components",
    "RoutingStrategy": "llmx._components",
    "HedgingStrategy": "llmx._components",
    "LayeredStrategy": "llmx._components",
    "RoutingView": "llmx._components",
    "Candidate": "llmx._components",
    "ModelSource": "llmx._model_sources",
    "DefaultModel": "llmx._model_sources",
    # events
    "RequestStart": "llmx._events",
    "AttemptStart": "llmx._events",
    "AttemptKind": "llmx._events",
    "AttemptEnd": "llmx._events",
    "RequestEnd": "llmx._events",
    "RequestError": "llmx._events",
    "RequestCancelled": "llmx._events",
    "BreakerTransition": "llmx._events",
    # helpers
    "SSEParser": "llmx._sse",
    "SSEEvent": "llmx._sse",
    "aiter_sse": "llmx._sse",
    "ResponseBuilder": "llmx._stream",
    "scrub": "llmx._scrub",
    "REASONING_BUDGETS": "llmx._reasoning",
    "reasoning_budget": "llmx._reasoning",
    "reasoning_effort": "llmx._reasoning",
    "reasoning_off": "llmx._reasoning",
    "reasoning_off_unsaid": "llmx._reasoning",
    "own_reasoning": "llmx._reasoning",
    "error_class_for_status": "llmx._errors",
    "parse_retry_after": "llmx._errors",
    "cache_key": "llmx._cachekey",
    "strict_json_schema": "llmx._strict",
    "lazy_exports": "llmx._lazy",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from llmx._batchapi import BatchJob as BatchJob
    from llmx._batchapi import BatchLimits as BatchLimits
    from llmx._batchapi import BatchProvider as BatchProvider
    from llmx._batchapi import BatchResult as BatchResult
    from llmx._batchapi import BatchState as BatchState
    from llmx._batchapi import BatchStatus as BatchStatus
    from llmx._cachekey import cache_key as cache_key
    from llmx._components import BreakerStore as BreakerStore
    from llmx._components import Bucket as Bucket
    from llmx._components import Cache as Cache
    from llmx._components import Candidate as Candidate
    from llmx._components import Closable as Closable
    from llmx._components import EmbeddingProvider as EmbeddingProvider
    from llmx._components import HedgingStrategy as HedgingStrategy
    from llmx._components import InProcessAcquire as InProcessAcquire
    from llmx._components import InProcessRelease as InProcessRelease
    from llmx._components import LayeredStrategy as LayeredStrategy
    from llmx._components import ModelInfoProvider as ModelInfoProvider
    from llmx._components import ModelListingProvider as ModelListingProvider
    from llmx._components import Provider as Provider
    from llmx._components import ProviderContext as ProviderContext
    from llmx._components import RateLimiter as RateLimiter
    from llmx._components import RetryPolicy as RetryPolicy
    from llmx._components import RoutingStrategy as RoutingStrategy
    from llmx._components import RoutingView as RoutingView
    from llmx._components import ScopedBreakerStore as ScopedBreakerStore
    from llmx._components import ScopedCache as ScopedCache
    from llmx._components import SharedBreakerState as SharedBreakerState
    from llmx._components import StreamingProvider as StreamingProvider
    from llmx._components import TokenCountingProvider as TokenCountingProvider
    from llmx._embedding import EmbeddingLimits as EmbeddingLimits
    from llmx._embedding import EmbeddingRequest as EmbeddingRequest
    from llmx._errors import error_class_for_status as error_class_for_status
    from llmx._errors import parse_retry_after as parse_retry_after
    from llmx._events import AttemptEnd as AttemptEnd
    from llmx._events import AttemptKind as AttemptKind
    from llmx._events import AttemptStart as AttemptStart
    from llmx._events import BreakerTransition as BreakerTransition
    from llmx._events import RequestCancelled as RequestCancelled
    from llmx._events import RequestEnd as RequestEnd
    from llmx._events import RequestError as RequestError
    from llmx._events import RequestStart as RequestStart
    from llmx._model_sources import DefaultModel as DefaultModel
    from llmx._model_sources import ModelSource as ModelSource
    from llmx._reasoning import REASONING_BUDGETS as REASONING_BUDGETS
    from llmx._reasoning import own_reasoning as own_reasoning
    from llmx._reasoning import reasoning_budget as reasoning_budget
    from llmx._reasoning import reasoning_effort as reasoning_effort
    from llmx._reasoning import reasoning_off as reasoning_off
    from llmx._reasoning import reasoning_off_unsaid as reasoning_off_unsaid
    from llmx._registry import PluginInfo as PluginInfo
    from llmx._registry import Registration as Registration
    from llmx._scrub import scrub as scrub
    from llmx._sse import SSEEvent as SSEEvent
    from llmx._sse import SSEParser as SSEParser
    from llmx._sse import aiter_sse as aiter_sse
    from llmx._stream import ResponseBuilder as ResponseBuilder
    from llmx._strict import strict_json_schema as strict_json_schema
    from llmx._types import PriceTier as PriceTier
    from llmx.hookspecs import CONTRACT_VERSION as CONTRACT_VERSION
    from llmx.hookspecs import Register as Register
    from llmx.hookspecs import hookimpl as hookimpl
    from llmx.hookspecs import hookspec as hookspec

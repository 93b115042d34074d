"""Everything the core calls on a plugin's object is declared in ``llmx._components``.

A component missing a required member is refused when it is built, with a
:class:`llmx.PluginError` naming the plugin and its distribution (never an
AttributeError from inside llmx); optional members are declared protocols, checked once.
Each test registers an in-process plugin (``misfit``, distribution ``llmx-misfit``)
with the component under test next to the core's builtins and the ``flex`` provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import importlib_metadata
import pytest

import llmx
from llmx._components import Bucket, ProviderContext, SharedBreakerState
from llmx.hookspecs import Register, hookimpl

from core_support import FlexPlugin, flex_client

PROVIDERS: dict[str, Any] = {"providers": {"a": {"type": "flex"}}}


class Misfit:
    """Registers ``components`` = {(kind hook suffix, name): factory}."""

    def __init__(self, **components: Any) -> None:
        self.components = components

    def _register(self, kind: str, register: Register) -> None:
        for name, factory in self.components.items():
            if name.startswith(kind):
                register(name, factory)

    @hookimpl
    def llmx_register_retry_policies(self, register: Register) -> None:
        self._register("policy", register)

    @hookimpl
    def llmx_register_limiters(self, register: Register) -> None:
        self._register("limiter", register)

    @hookimpl
    def llmx_register_breaker_stores(self, register: Register) -> None:
        self._register("store", register)

    @hookimpl
    def llmx_register_providers(self, register: Register) -> None:
        self._register("provider", register)

    @hookimpl
    def llmx_register_routing_strategies(self, register: Register) -> None:
        self._register("strategy", register)


def client(
    config: dict[str, Any], flex: FlexPlugin | None = None, **components: Any
) -> llmx.Client:
    """A client over the builtins, ``flex`` and a ``misfit`` plugin with ``components``."""
    builtins = importlib_metadata.EntryPoint(name="builtins", value="llmx._builtins", group="llmx")
    registry = llmx.Registry(entry_points=[builtins])
    registry.register(Misfit(**components), name="misfit", distribution="llmx-misfit")
    return flex_client(flex or FlexPlugin(), {**PROVIDERS, **config}, registry)


def assert_blames_misfit(err: llmx.PluginError, *missing: str) -> None:
    assert (err.plugin, err.distribution) == ("misfit", "llmx-misfit")
    assert "plugin 'misfit' (llmx-misfit" in str(err)
    assert f"without {', '.join(missing)}," in str(err)


# -- required members: refused when built ------------------------------------------------


class PolicyWithoutLimits:
    """A retry policy that forgot ``attempts`` and ``max_retry_after``."""

    async def retrying(self, on: object, *, timeout: float) -> Any:
        yield None  # pragma: no cover - never called


def test_a_retry_policy_without_attempts_is_refused_naming_its_plugin() -> None:
    with pytest.raises(llmx.PluginError, match=r"RetryPolicy protocol") as info:
        client({"retry": {"policy": "policy-half"}}, **{"policy-half": PolicyWithoutLimits})
    assert_blames_misfit(info.value, "attempts", "max_retry_after")


class PolicyWithTextAttempts:
    """A retry policy whose ``attempts`` came from a config string, unconverted."""

    attempts = "3"
    max_retry_after = None

    async def retrying(self, on: object, *, timeout: float) -> Any:
        yield None  # pragma: no cover - never called


def test_a_retry_policy_with_members_of_the_wrong_type_is_refused_naming_its_plugin() -> None:
    """``attempts`` and ``max_retry_after`` are compared with numbers by the engine: a
    string would be a TypeError from inside llmx at the first failure."""
    with pytest.raises(llmx.PluginError, match=r"RetryPolicy protocol") as info:
        client({"retry": {"policy": "policy-text"}}, **{"policy-text": PolicyWithTextAttempts})
    assert_blames_misfit(
        info.value,
        "attempts as an int (not str '3')",
        "max_retry_after as a float (not NoneType None)",
    )


class StoreWithoutPublish:
    """A breaker store that can read but not publish."""

    def get(self, instance: str) -> SharedBreakerState | None:
        return None


def test_a_breaker_store_without_publish_is_refused_naming_its_plugin() -> None:
    with pytest.raises(llmx.PluginError, match=r"BreakerStore protocol") as info:
        client({"breaker_store": {"backend": "store-half"}}, **{"store-half": StoreWithoutPublish})
    assert_blames_misfit(info.value, "publish")


class LimiterWithoutRelease:
    """A rate limiter that takes but never gives back."""

    async def acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        return 0.0


def test_a_rate_limiter_without_release_is_refused_naming_its_plugin() -> None:
    config = {
        "providers": {"a": {"type": "flex", "limits": {"rpm": 60}}},
        "limiter": {"backend": "limiter-half"},
    }
    with pytest.raises(llmx.PluginError, match=r"RateLimiter protocol") as info:
        client(config, **{"limiter-half": LimiterWithoutRelease})
    assert_blames_misfit(info.value, "release")


class LimiterReleasingGrantsOnly(LimiterWithoutRelease):
    """A rate limiter whose release cannot take the buckets the core passes."""

    async def release(self, grant: str) -> None:
        return None


def test_a_rate_limiter_method_with_the_wrong_arguments_is_refused_naming_its_plugin() -> None:
    config = {
        "providers": {"a": {"type": "flex", "limits": {"rpm": 60}}},
        "limiter": {"backend": "limiter-old"},
    }
    with pytest.raises(llmx.PluginError, match=r"RateLimiter protocol") as info:
        client(config, **{"limiter-old": LimiterReleasingGrantsOnly})
    assert_blames_misfit(info.value, "release(grant, buckets)")


class Mute:
    """A provider that cannot complete."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx


async def test_a_provider_without_complete_is_refused_when_built_naming_its_plugin() -> None:
    config = {"providers": {"m": {"type": "provider-mute"}}}
    async with client(config, **{"provider-mute": Mute}) as c:
        with pytest.raises(llmx.PluginError, match=r"Provider protocol") as info:
            await c.complete(model="m/any", prompt="hi")
        assert_blames_misfit(info.value, "complete")
        # Health checks report it as that instance's error, not as a crash.
        (status,) = await c.health(instances=["m"])
        assert status.status == "error"
        assert "without complete" in (status.error or "")


# -- optional members: declared protocols --------------------------------------------------


class Counting:
    """Records which methods were called."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class AsyncOnlyLimiter(Counting):
    """A complete rate limiter with only the required methods."""

    async def acquire(self, grant: str, buckets: Sequence[Bucket]) -> float:
        self.calls.append("acquire")
        return 0.0

    async def release(self, grant: str, buckets: Sequence[Bucket]) -> None:
        self.calls.append("release")


class NowaitLimiter(AsyncOnlyLimiter):
    """A rate limiter that also releases synchronously (llmx InProcessRelease)."""

    def release_nowait(self, grant: str, buckets: Sequence[Bucket]) -> None:
        self.calls.append("release_nowait")


@pytest.mark.parametrize(
    ("backend", "released_by"),
    [(AsyncOnlyLimiter, "release"), (NowaitLimiter, "release_nowait")],
)
async def test_a_rate_limiter_is_released_synchronously_only_when_it_says_it_can(
    backend: type[AsyncOnlyLimiter], released_by: str
) -> None:
    limiter = backend()
    config = {
        "providers": {"a": {"type": "flex", "limits": {"max_concurrent": 2}}},
        "limiter": {"backend": "limiter-x"},
    }
    async with client(config, **{"limiter-x": lambda: limiter}) as c:
        await c.complete(model="a/m", prompt="hi")
    assert limiter.calls == ["acquire", released_by]


class UnflaggedStore(Counting):
    """A breaker store that does not say whether it is shared."""

    def get(self, instance: str) -> SharedBreakerState | None:
        self.calls.append("get")
        return None

    def publish(self, instance: str, state: SharedBreakerState) -> None:
        self.calls.append("publish")


class PrivateStore(UnflaggedStore):
    """A breaker store only this client sees (llmx ScopedBreakerStore, shared = False)."""

    shared = False


@pytest.mark.parametrize(("backend", "consulted"), [(UnflaggedStore, True), (PrivateStore, False)])
async def test_a_breaker_store_is_skipped_on_the_hot_path_only_when_it_says_it_is_private(
    backend: type[UnflaggedStore], consulted: bool
) -> None:
    store = backend()
    async with client({"breaker_store": {"backend": "store-x"}}, **{"store-x": lambda: store}) as c:
        await c.complete(model="a/m", prompt="hi")
    assert ("get" in store.calls) is consulted


class ClosableLimiter(AsyncOnlyLimiter):
    async def aclose(self) -> None:
        self.calls.append("aclose")


class ClosableStore(PrivateStore):
    async def aclose(self) -> None:
        self.calls.append("aclose")


async def test_closable_components_are_closed_with_the_client_and_others_left_alone() -> None:
    limiter, store = ClosableLimiter(), ClosableStore()
    config = {
        "providers": {"a": {"type": "flex", "limits": {"rpm": 60}}},
        "limiter": {"backend": "limiter-c"},
        "breaker_store": {"backend": "store-c"},
    }
    async with client(config, **{"limiter-c": lambda: limiter, "store-c": lambda: store}) as c:
        await c.complete(model="a/m", prompt="hi")
    assert limiter.calls[-1] == store.calls[-1] == "aclose"

    plain = AsyncOnlyLimiter()
    config["limiter"] = {"backend": "limiter-p"}
    async with client(config, **{"limiter-p": lambda: plain, "store-c": ClosableStore}) as c:
        await c.complete(model="a/m", prompt="hi")
    assert "aclose" not in plain.calls


INFO = llmx.ModelInfo("m", context_window=1000, input_price=1.0, output_price=2.0)


class StaticInfo:
    """A provider class answering model_info before any instance exists."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    @staticmethod
    def model_info(model: str) -> llmx.ModelInfo | None:
        return INFO if model == "m" else None

    async def complete(self, request: llmx.Request) -> llmx.Response:
        return llmx.Response("ok", request.model, self.ctx.instance, usage=llmx.Usage(10, 5))


class InstanceInfo(StaticInfo):
    """The same, but model_info needs the built provider (an instance method)."""

    def model_info(self, model: str) -> llmx.ModelInfo | None:  # type: ignore[override]
        assert isinstance(self, InstanceInfo), "called on the class, unbound"
        return INFO if model == "m" else None


async def test_a_provider_class_is_asked_for_model_info_before_build_only_if_it_can_answer() -> (
    None
):
    config = {"providers": {"s": {"type": "provider-s"}, "i": {"type": "provider-i"}}}
    async with client(config, **{"provider-s": StaticInfo, "provider-i": InstanceInfo}) as c:
        assert c.model_info("s/m") == INFO  # from the class: nothing built yet
        assert c.model_info("i/m") is None  # not called unbound, no TypeError
        reply = await c.complete(model="i/m", prompt="hi")  # builds the provider
        assert reply.cost is not None  # ... whose own model_info now prices the answer
        assert c.model_info("i/m") == INFO


class HealthyLister:
    """A provider with a health() method of its own: the core does not call it."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    async def complete(self, request: llmx.Request) -> llmx.Response:
        raise AssertionError("not a probe here")

    async def list_models(self) -> list[llmx.ModelInfo]:
        return [INFO]

    async def health(self) -> None:
        raise AssertionError("health checks are the core's job")


async def test_health_probes_with_declared_abilities_only() -> None:
    async with client(
        {"providers": {"h": {"type": "provider-h"}}}, **{"provider-h": HealthyLister}
    ) as c:
        (status,) = await c.health(instances=["h"])
    assert (status.status, status.probe) == ("ok", "list_models")


# -- optional abilities: all of one, or none ------------------------------------------------


class Order:
    """A routing strategy that keeps the order it is given."""

    def order(self, candidates: Sequence[Any], request: Any, view: Any) -> Sequence[Any]:
        return candidates


class HalfHedging(Order):
    """Says how long to wait before hedging, but cannot spend a hedge."""

    def hedge_delay(self, first: Any, view: Any) -> float:
        return 0.0


class HalfLayered(Order):
    """Names a base strategy but cannot be bound to it."""

    base_name = "priority"


class LimiterReleasingNowaitGrantsOnly(AsyncOnlyLimiter):
    """Releases synchronously, but without the buckets the core passes."""

    def release_nowait(self, grant: str) -> None:
        return None


class StoreSharedAsText(UnflaggedStore):
    """Says whether it is shared, as text: ``not "no"`` is False."""

    shared = "no"


class StreamWithoutRequest:
    """A provider whose ``stream`` takes no request."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    async def complete(self, request: llmx.Request) -> llmx.Response:
        return llmx.Response("ok", request.model, self.ctx.instance)

    async def stream(self) -> Any:
        yield llmx.TextDelta("never")  # pragma: no cover - never called


ALIAS: dict[str, Any] = {"aliases": {"both": ["a/x", "a/y"]}}


@pytest.mark.parametrize(
    ("config", "component", "fragments"),
    [
        (
            {**ALIAS, "routing": {"strategy": "strategy-hedge"}},
            {"strategy-hedge": HalfHedging},
            ["with hedge_delay but without try_hedge", "HedgingStrategy"],
        ),
        (
            {**ALIAS, "routing": {"strategy": "strategy-layer"}},
            {"strategy-layer": HalfLayered},
            ["with base_name but without bind_base", "LayeredStrategy"],
        ),
        (
            {
                "providers": {"a": {"type": "flex", "limits": {"max_concurrent": 2}}},
                "limiter": {"backend": "limiter-nowait"},
            },
            {"limiter-nowait": LimiterReleasingNowaitGrantsOnly},
            ["without release_nowait(grant, buckets)", "InProcessRelease"],
        ),
        (
            {"breaker_store": {"backend": "store-text"}},
            {"store-text": StoreSharedAsText},
            ["without shared as a bool (not str 'no')", "ScopedBreakerStore"],
        ),
        (
            {"providers": {"s": {"type": "provider-stream"}}},
            {"provider-stream": StreamWithoutRequest},
            ["without stream(request)", "StreamingProvider"],
        ),
    ],
    ids=["hedging", "layered", "release-nowait", "shared-flag", "stream"],
)
async def test_half_an_optional_ability_is_refused_when_built_naming_its_plugin(
    config: dict[str, Any], component: dict[str, Any], fragments: list[str]
) -> None:
    """Half an optional protocol was either skipped silently (a strategy with
    ``hedge_delay`` but no ``try_hedge`` never hedged) or failed inside llmx (a
    ``release_nowait`` or ``stream`` that cannot take what the core passes)."""
    model = "s/m" if "provider-stream" in component else "both" if "aliases" in config else "a/m"
    with pytest.raises(llmx.PluginError, match="optional") as info:
        async with client(config, **component) as c:
            await c.complete(model=model, prompt="hi")
    err = info.value
    assert (err.plugin, err.distribution) == ("misfit", "llmx-misfit")
    assert "plugin 'misfit' (llmx-misfit" in str(err)
    for fragment in fragments:
        assert fragment in str(err)

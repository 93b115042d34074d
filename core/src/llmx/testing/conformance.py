"""The conformance suite every llmx provider plugin runs: subclass, point, pass.

A provider distribution — first-party or third-party — tests itself against llmx's
expectations by subclassing :class:`ProviderConformance` in its own tests and naming
its provider type, a model, and a fake server for its wire protocol::

    # tests/test_conformance.py of llmx-provider-acme
    from collections.abc import Mapping
    from typing import ClassVar

    from llmx.testing.conformance import Feature, ProviderConformance
    from my_tests.fake_acme import FakeAcmeServer

    class TestAcmeConformance(ProviderConformance):
        provider_type = "acme"
        model = "acme-large"
        models: ClassVar[Mapping[str, str]] = {Feature.IMAGES: "acme-vision"}
        server_class = FakeAcmeServer
        supports = ProviderConformance.supports - {Feature.JSON_SCHEMA}
        tool_call_ids = False  # the Acme API matches tool results by name

pytest collects the subclass (its name starts with ``Test``) and runs every test of the
suite against the provider, installed and discovered through its entry point, talking
real HTTP to the fake server on 127.0.0.1: plain completion, system prompt,
multi-turn, options, streaming (deltas equal the text; usage and finish reason
arrive; a streamed answer equals the non-streamed one), a tool round trip (call →
result → answer), tool choice, images, JSON mode and schemas (and typed output with ``response_model=``:
parsed, re-asked with the errors, still invalid, streamed), usage details, every
error class (401, 403, 404 model, 400, context length, 429 with Retry-After,
500/502/503/529, timeout, connection reset, dropped and truncated streams, a
mid-stream error event, malformed bodies), safety refusals, cancellation (a stream
left early closes its connection), features the model lacks refused before sending
(``stop`` too, for an API without stop sequences: ``_conf_options``), prompt caching (breakpoints and a cache key answered with their usage and cost, or
refused before sending), embeddings (split to the provider's limit, in input order; or
refused unsent), reasoning (``reasoning=`` sent, reasoning parts and deltas, the vendor's
state kept across a tool loop, another vendor's state never sent), model infos and
live model lists, the vendor's batch API (``Feature.PROVIDER_BATCH``), and hypothesis properties
(any TCP chunking of a body gives the same answer; any unicode text round-trips). The
kit's own self-test (``core/tests/test_testing_selftest.py``) shows it failing
deliberately broken providers: a 429 mapped to ServerError, a lost Retry-After, a
swallowed mid-stream error, a stream leaked on cancel, reordered deltas, a claim of
prompt caching the model facts deny.

The fake server
    A :class:`~llmx.testing.FakeServer` subclass speaking the API's wire format. The
    provider distributions ship theirs in their ``testing`` modules:
    ``llmx_openai.testing`` (``FakeOpenAIServer``, with ``OpenAIQuirks`` for
    OpenAI-compatible servers, and ``FakeAzureOpenAIServer``),
    ``llmx_anthropic.testing.FakeAnthropicServer`` and
    ``llmx_gemini.testing.FakeGeminiServer``. A new one implements:

    * always (abstract: the class cannot be instantiated without them):
      ``route(method, path)`` (the handler of each URL; the model endpoint's is usually
      ``self.answer_model_request``), ``describe(recorded)`` (what a request asked for,
      as a :class:`~llmx.testing.RequestView`) and ``reply_body(reply, recorded)`` (the
      JSON answer to a non-streamed request);
    * for an API that streams, ``stream_events(reply, recorded)`` (JSON values, one per
      event; :class:`~llmx.testing.Event` for named SSE events) and
      ``mid_stream_error_event(reply, recorded)`` (the event a failing stream ends
      with); for an API that refuses prompts, ``render_blocked`` (its refusal). The
      base raises ``NotImplementedError`` naming the method when a test needs one that
      is missing, and the test fails with it (:class:`~llmx.testing.FakeServerError`).

    It declares ``framing = "sse"`` (the default) or ``"ndjson"``: the base frames the
    events, writes JSON or a stream as the request asks (``is_stream``: ``"stream":
    true`` unless overridden), cuts a stream part-way for mid-stream errors, and
    applies split reads, dropped connections, truncation, malformed events and every
    other chaos fault in that framing. It checks the key (``auth_header``, default
    ``authorization``, and ``auth_scheme``, default ``Bearer``) and answers a wrong one
    with ``error_for("authentication")``. Override ``error_for`` (and ``render_error``)
    for the vendor's exact error bodies and statuses; the base's are
    ``{"error": {"message", "type", "code"}}`` with the usual statuses.

What a subclass sets (class attributes) or overrides (methods)
    Required: ``provider_type`` (the entry-point name), ``model`` (the model most tests
    ask) and ``server_class`` (or :meth:`~ProviderConformance.make_server`).

    The API and the provider:
        ``supports``: the :class:`Feature` names the provider implements (default all);
        every other one must be refused with :class:`llmx.UnsupportedFeatureError`
        before anything is sent, and its tests are skipped as not supported.
        ``models``: per-feature models, ``{Feature.IMAGES: "acme-vision"}``; the tests
        of a feature named there ask that model, the others :attr:`model` (a test
        needing two features mapped to different models is skipped).
        ``settings``: extra ``[providers.NAME]`` keys. ``api_key``: the key configured
        and required by the fake.

    Protocol facts some APIs lack (each True by default; False adapts the tests that
    depend on it or reports them as not applicable, i.e. skipped with the reason):
        ``tool_call_ids``: tool calls have ids that results echo. False: the tests
        check names and arguments, that the provider makes up an id, and that results
        go back by name.
        ``refusals``: the API signals refusals (a ``content_filter`` finish reason or
        a refused prompt). False: the content-filter test is not applicable.
        ``context_length_errors``: an over-long prompt gets an error of its own. False:
        the ``context_length`` error tests are not applicable.
        ``auth``: the API takes a key. False: no key is configured or required, and
        the ``authentication``/``permission`` error tests and the wrong-key test are
        not applicable.
        ``usage_details``: which :class:`llmx.Usage` details the protocol reports
        (``cache_read``, ``cache_write``, ``cache_write_1h``, ``reasoning``).
        ``reasoning_text``: whether
        the API returns the reasoning's text (False: only its tokens are checked). ``stream_usage``: whether a
        stream reports its usage (else it must be estimated and marked so).

    Running: ``hypothesis_examples`` (examples per property test), ``timeout`` (the
    instance's timeout in the timeout tests), and :meth:`validate_request`, called for
    every model request the fake received (validate bodies against your vendor's
    published schema there, e.g. with :mod:`llmx.testing.openapi`).

The suite is synchronous (each test runs its own event loop), so it works with or
without pytest-asyncio; it needs ``pytest`` and ``hypothesis``. llmx's retries are
turned off for the instance under test (``retry = {attempts = 1}``) so every test sees
exactly what the provider raised.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmx
import llmx.types
from llmx.testing._chaos import Fault
from llmx.testing._conf_choices import CHOICES, CHOICES_STREAMED, LOGPROBS, ChoicesConformance
from llmx.testing._conf_embeddings import EMBEDDINGS, EmbeddingsConformance
from llmx.testing._conf_media import AUDIO, DOCUMENT_URLS, DOCUMENTS, MediaConformance
from llmx.testing._conf_options import OptionsConformance
from llmx.testing._conf_prompt_caching import PROMPT_CACHING, PromptCachingConformance
from llmx.testing._conf_provider_batch import ProviderBatchTests
from llmx.testing._conf_reasoning import ReasoningConformance
from llmx.testing._conf_structured import StructuredOutputConformance
from llmx.testing._conf_tokens import TOKEN_COUNTING, TokenCountingConformance
from llmx.testing._replies import Blocked, ErrorKind, MidStreamError, Reply, Reset, Stall
from llmx.testing._server import FakeServer, RecordedRequest

if TYPE_CHECKING:
    from llmx.testing._view import RequestView

__all__ = ["Feature", "ProviderConformance"]

T = TypeVar("T")

INSTANCE = "conf"
"""The name of the provider instance the suite configures."""

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
"""A 1x1 PNG image."""

WEATHER = llmx.Tool(
    "get_weather",
    "The current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
"""The tool the suite offers."""

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "label": {"type": "string"}},
    "required": ["n", "label"],
    "additionalProperties": False,
}
"""The JSON schema the structured-output tests ask for."""


class Feature:
    """Names of the optional features a provider may implement (``supports``)."""

    SYSTEM = "system"
    """A system prompt."""
    STREAMING = "streaming"
    """Native streaming (``stream()``)."""
    TOOLS = "tools"
    """Tool calls and results."""
    TOOL_CHOICE_NONE = "tool_choice_none"
    """``tool_choice="none"``."""
    TOOL_CHOICE_REQUIRED = "tool_choice_required"
    """``tool_choice="required"`` and a named tool."""
    IMAGES = "images"
    """Images given as bytes."""
    IMAGE_URLS = "image_urls"
    """Images given by URL."""
    JSON_MODE = "json_mode"
    """Any JSON object (``response_format="json"``)."""
    JSON_SCHEMA = "json_schema"
    """JSON matching a schema (structured output)."""
    STOP = "stop"
    """Stop sequences."""
    TEMPERATURE = "temperature"
    """Sampling temperature."""
    LIST_MODELS = "list_models"
    """``list_models()`` from the API."""
    MODEL_INFO = "model_info"
    """Static model infos with prices (``model_info``)."""
    TOKEN_COUNTING = TOKEN_COUNTING
    """Exact input-token counts before sending (``count_tokens``)."""
    PROMPT_CACHING = PROMPT_CACHING
    """Prompt-cache breakpoints (``cache=``) and ``prompt_cache_key``, with cache reads and
    writes in the usage (:mod:`llmx.testing._conf_prompt_caching`)."""
    EMBEDDINGS = EMBEDDINGS
    """Embeddings (``Client.embed``; an :class:`~llmx.plugin.EmbeddingProvider`). Opt-in
    (:attr:`OPT_IN`): a second capability, not a chat option."""
    REASONING = "reasoning"
    """``reasoning=`` (effort or budget), reasoning parts and deltas, reasoning state kept
    across a tool loop (``_conf_reasoning``)."""
    PROVIDER_BATCH = "provider_batch"
    """The vendor's batch API (:class:`llmx.plugin.BatchProvider`, ``--provider-batch``)."""
    DOCUMENTS = DOCUMENTS
    """PDF documents given as bytes (:class:`llmx.Document`; ``_conf_media``)."""
    DOCUMENT_URLS = DOCUMENT_URLS
    """Documents given by URL."""
    AUDIO = AUDIO
    """Audio input (:class:`llmx.Audio`)."""
    CHOICES = CHOICES
    """Several answers per request (``n > 1``, ``Response.choices``). Opt-in: without it,
    the kit checks ``n`` is refused before sending (``_conf_choices``)."""
    CHOICES_STREAMED = CHOICES_STREAMED
    """``n > 1`` streamed too (the other answers' chunks as ``llmx.types.ChoiceDelta``).
    Opt-in, with :attr:`CHOICES`: without it, the kit checks a stream with ``n > 1`` is
    refused before sending."""
    LOGPROBS = LOGPROBS
    """Token logprobs (``logprobs=``, ``top_logprobs=``), whole and streamed. Opt-in."""

    ALL: ClassVar[frozenset[str]] = frozenset(
        {
            SYSTEM,
            STREAMING,
            TOOLS,
            TOOL_CHOICE_NONE,
            TOOL_CHOICE_REQUIRED,
            IMAGES,
            IMAGE_URLS,
            JSON_MODE,
            JSON_SCHEMA,
            STOP,
            TEMPERATURE,
            LIST_MODELS,
            MODEL_INFO,
            TOKEN_COUNTING,
            PROMPT_CACHING,
            REASONING,
            PROVIDER_BATCH,
            DOCUMENTS,
            DOCUMENT_URLS,
            AUDIO,
        }
    )
    """The chat features (the default ``supports``)."""
    OPT_IN: ClassVar[frozenset[str]] = frozenset({EMBEDDINGS, CHOICES, CHOICES_STREAMED, LOGPROBS})
    """Features beyond chat, which a subclass adds to ``supports`` when its provider has
    them (``ProviderConformance.supports | {Feature.EMBEDDINGS}``); without them, the
    kit checks they are refused before sending."""
    KNOWN: ClassVar[frozenset[str]] = ALL | OPT_IN
    """Every feature name ``supports`` and ``models`` may use."""


_ERRORS: list[tuple[ErrorKind, type[llmx.ProviderError], bool]] = [
    ("authentication", llmx.AuthenticationError, False),
    ("permission", llmx.PermissionDeniedError, False),
    ("model_not_found", llmx.ModelNotFoundError, False),
    ("bad_request", llmx.BadRequestError, False),
    ("context_length", llmx.ContextWindowExceededError, False),
    ("rate_limit", llmx.RateLimitError, True),
    ("server", llmx.ServerError, True),
    ("bad_gateway", llmx.ServerError, True),
    ("unavailable", llmx.ServerError, True),
    ("overloaded", llmx.ServerError, True),
    ("timeout", llmx.ProviderTimeoutError, True),
]

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")
_CALLS = st.lists(
    st.tuples(
        st.from_regex(r"call_[a-z0-9]{1,8}", fullmatch=True),
        st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True),
        st.dictionaries(
            st.from_regex(r"[a-z]{1,5}", fullmatch=True),
            st.integers(-1000, 1000) | st.text(max_size=8),
            max_size=3,
        ).map(json.dumps),
    ),
    max_size=2,
    unique_by=(lambda c: c[0], lambda c: c[1]),
)


def _text_of(chunks: list[llmx.types.StreamChunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, llmx.TextDelta))


async def _drain(stream: llmx.Stream, into: list[llmx.types.StreamChunk]) -> llmx.Response:
    async with stream:
        async for chunk in stream:
            into.append(chunk)  # noqa: PERF401 - keep what arrived before an error
    assert stream.response is not None, "the stream ended without a response"
    return stream.response


class ProviderConformance(
    OptionsConformance,
    TokenCountingConformance,
    PromptCachingConformance,
    EmbeddingsConformance,
    ReasoningConformance,
    ProviderBatchTests,
    StructuredOutputConformance,
    MediaConformance,
    ChoicesConformance,
):
    """Base class of a provider's conformance tests (see the module docstring)."""

    provider_type: ClassVar[str]
    """The provider type under test (its entry-point name), e.g. ``"anthropic"``."""
    model: ClassVar[str]
    """The provider's model name the suite asks for."""
    server_class: ClassVar[type[FakeServer]]
    """The fake server class for the protocol (or override :meth:`make_server`)."""
    api_key: ClassVar[str] = "test-key"
    """The key the fake requires and the instance is configured with."""
    settings: ClassVar[Mapping[str, Any]] = {}
    """Extra keys of the ``[providers.conf]`` table (type-specific settings)."""
    supports: ClassVar[frozenset[str]] = Feature.ALL
    """The :class:`Feature` names the provider implements (default: every chat feature,
    :attr:`Feature.ALL`; add ``Feature.EMBEDDINGS`` for a provider that embeds)."""
    usage_details: ClassVar[frozenset[str]] = frozenset({"cache_read"})
    """Which usage details the protocol reports: ``cache_read``, ``cache_write``,
    ``cache_write_1h`` (the one-hour part of the writes), ``reasoning``."""
    stream_usage: ClassVar[bool] = True
    """Whether a streamed answer reports its usage."""
    hypothesis_examples: ClassVar[int] = 12
    """Examples per property test (kept modest: each runs a server and a client)."""
    timeout: ClassVar[float] = 0.2
    """The instance's timeout in the timeout tests (seconds)."""
    models: ClassVar[Mapping[str, str]] = {}
    """Per-feature models, e.g. ``{Feature.IMAGES: "acme-vision"}``: the tests of a feature
    named here ask that model; every other test asks :attr:`model`. Keys are supported
    :class:`Feature` names (not ``streaming``, ``list_models`` or ``model_info``, which
    belong to the provider, not to a model)."""
    tool_call_ids: ClassVar[bool] = True
    """Whether the API gives tool calls ids and echoes them with the results. False: the
    tool tests check names and arguments, and that the provider makes up an id."""
    refusals: ClassVar[bool] = True
    """Whether the API signals a refusal (a filtered answer or a refused prompt). False:
    the content-filter test is reported as not applicable."""
    context_length_errors: ClassVar[bool] = True
    """Whether the API answers an over-long prompt with an error of its own. False: the
    ``context_length`` error tests are reported as not applicable."""
    auth: ClassVar[bool] = True
    """Whether the API takes a key. False: the instance and the fake get no key, and the
    ``authentication``/``permission`` error and wrong-key tests are not applicable."""

    _FACTS: ClassVar[Mapping[str, str]] = {
        "tool_call_ids": "tool-call ids",
        "refusals": "refusal signal",
        "context_length_errors": "context-length errors",
        "auth": "authentication",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check the subclass's settings when it is defined (a typo fails collection)."""
        super().__init_subclass__(**kwargs)
        unknown = set(cls.supports) - Feature.KNOWN
        if unknown:
            msg = f"{cls.__name__}.supports names unknown features {sorted(unknown)}; known: {sorted(Feature.KNOWN)}"
            raise TypeError(msg)
        per_model = Feature.KNOWN - {
            Feature.STREAMING,
            Feature.LIST_MODELS,
            Feature.MODEL_INFO,
            Feature.PROVIDER_BATCH,
        }
        for feature in cls.models:
            if feature not in per_model:
                msg = f"{cls.__name__}.models: {feature!r} is not a per-model feature; use one of {sorted(per_model)}"
                raise TypeError(msg)
            if feature not in cls.supports:
                msg = f"{cls.__name__}.models names {feature!r}, which is not in supports"
                raise TypeError(msg)

    # -- hooks -----------------------------------------------------------------------------

    def make_server(self) -> FakeServer:
        """A new, not yet started fake server requiring :attr:`api_key` (none without :attr:`auth`)."""
        return self.server_class(api_key=self.api_key if self.auth else None)

    def provider_config(self, server: FakeServer, **options: Any) -> dict[str, Any]:
        """The ``[providers.conf]`` table pointing at ``server`` (``options`` merged last)."""
        config: dict[str, Any] = {
            "type": self.provider_type,
            "base_url": server.base_url,
            "retry": {"attempts": 1},
        }
        if self.auth:
            config["api_key"] = self.api_key
        config.update(self.settings)
        config.update(options)
        return config

    def validate_request(self, server: FakeServer, recorded: RecordedRequest) -> None:
        """Check one model request the provider sent (e.g. against the vendor's schema).

        Called after every test for each of ``server.model_requests``; raise
        ``AssertionError`` to fail the test. The default accepts everything.
        """

    # -- running ---------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        """The model reference the suite uses (``conf/MODEL``)."""
        return f"{INSTANCE}/{self.model}"

    def model_for(self, *features: str) -> str:
        """The model a test of ``features`` asks (:attr:`models`, else :attr:`model`).

        Features mapped to different models: the test is not applicable (skipped,
        saying so), as no one model has them all.
        """
        chosen = sorted({self.models[f] for f in features if f in self.models})
        if len(chosen) > 1:
            pytest.skip(
                f"{self.provider_type}: no one model has {', '.join(features)} "
                f"(models maps them to {', '.join(chosen)})"
            )
        return chosen[0] if chosen else self.model

    def ref_for(self, *features: str) -> str:
        """The model reference for a test of ``features`` (see :meth:`model_for`)."""
        return f"{INSTANCE}/{self.model_for(*features)}"

    def has(self, fact: str) -> None:
        """Skip the test unless the API has ``fact`` (a knob: ``auth``, ``refusals``, ...)."""
        if not getattr(self, fact):
            pytest.skip(
                f"{self.provider_type}'s API has no {self._FACTS.get(fact, fact)} ({fact} = False)"
            )

    def calls_of(self, response: llmx.Response) -> tuple[Any, ...]:
        """The response's tool calls as compared across answers: whole, or without their
        ids when the API has none (the provider makes them up)."""
        if self.tool_call_ids:
            return response.tool_calls
        return tuple((c.name, c.arguments) for c in response.tool_calls)

    def _essentials(self, response: llmx.Response) -> tuple[Any, ...]:
        """What two answers to the same reply must share (not latency, attempts or cost)."""
        return (
            response.text,
            self.calls_of(response),
            response.finish_reason,
            response.usage,
            response.id,
            response.model,
        )

    def run(self, scenario: Callable[[FakeServer, llmx.Client], Awaitable[T]], **options: Any) -> T:
        """Run ``scenario(server, client)`` in a fresh event loop with a fresh server and client.

        ``options`` are extra ``[providers.conf]`` keys. Every model request the server
        received is then passed to :meth:`validate_request`.
        """

        async def main() -> T:
            async with self.make_server() as server:
                config = {"providers": {INSTANCE: self.provider_config(server, **options)}}
                try:
                    async with llmx.Client(config) as client:
                        result = await scenario(server, client)
                except Exception:
                    server.raise_errors()  # the fake's own failure is the cause
                    raise
                server.raise_errors()
                for recorded in server.model_requests:
                    self.validate_request(server, recorded)
                return result

        return asyncio.run(main())

    def needs(self, *features: str) -> None:
        """Skip the test unless the provider supports every feature named."""
        missing = [f for f in features if f not in self.supports]
        if missing:
            pytest.skip(f"{self.provider_type} does not support {', '.join(missing)}")

    async def _ask(self, client: llmx.Client, streamed: bool, prompt: str = "x") -> llmx.Response:
        """One request for the suite's model, streamed or not."""
        if streamed:
            return await client.stream(model=self.ref, prompt=prompt).collect()
        return await client.complete(model=self.ref, prompt=prompt)

    @staticmethod
    def view(server: FakeServer, index: int = -1) -> RequestView:
        """What the ``index``-th model request asked for."""
        return server.describe(server.model_requests[index])

    # -- plain requests --------------------------------------------------------------------

    def test_registered_through_an_entry_point(self) -> None:
        """The provider type comes from an installed distribution's ``llmx`` entry point."""
        registration = llmx.Registry().get("provider", self.provider_type)
        assert registration.distribution, f"{self.provider_type!r} is not from a distribution"

    def test_complete(self) -> None:
        """A plain prompt: the text, finish reason, usage, id and instance name come back."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            reply = await client.complete(model=self.ref, prompt="Hello there")
            assert reply.text == "Hello there"
            assert reply.provider == INSTANCE
            assert reply.finish_reason == "stop"
            assert reply.model
            assert reply.usage.input_tokens > 0
            assert reply.usage.output_tokens > 0
            view = self.view(server)
            assert view.model == self.model
            assert [(t.role, t.text) for t in view.turns] == [("user", "Hello there")]
            assert view.stream is False

        self.run(scenario)

    def test_system_prompt(self) -> None:
        """The system prompt travels the provider's way, not as a user turn."""
        self.needs(Feature.SYSTEM)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            await client.complete(
                model=self.ref_for(Feature.SYSTEM), system="Answer in French.", prompt="Hi"
            )
            view = self.view(server)
            assert view.system == "Answer in French."
            assert [(t.role, t.text) for t in view.turns] == [("user", "Hi")]

        self.run(scenario)

    def test_multi_turn(self) -> None:
        """Earlier turns are sent in order, with their roles."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            messages = [
                llmx.Message.user("My name is Ada."),
                llmx.Message.assistant("Hello Ada!"),
                llmx.Message.user("What is my name?"),
            ]
            reply = await client.complete(model=self.ref, messages=messages)
            assert reply.text == "What is my name?"
            assert [(t.role, t.text) for t in self.view(server).turns] == [
                ("user", "My name is Ada."),
                ("assistant", "Hello Ada!"),
                ("user", "What is my name?"),
            ]

        self.run(scenario)

    def test_consecutive_messages_of_one_side(self) -> None:
        """Two user messages in a row arrive in order (merged where the API needs it)."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            messages = [llmx.Message.user("first"), llmx.Message.user("second")]
            await client.complete(model=self.ref, messages=messages)
            turns = self.view(server).turns
            assert [t.role for t in turns] == ["user"]
            assert [p.text for p in turns[0].parts] == ["first", "second"]

        self.run(scenario)

    def test_options(self) -> None:
        """``max_tokens``, ``temperature`` and ``stop`` are sent."""

        groups: dict[str, dict[str, Any]] = {self.model: {"max_tokens": 50}}
        if Feature.TEMPERATURE in self.supports:
            groups.setdefault(self.model_for(Feature.TEMPERATURE), {})["temperature"] = 0.5
        if Feature.STOP in self.supports:
            groups.setdefault(self.model_for(Feature.STOP), {})["stop"] = ["END"]

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            for model, params in groups.items():
                await client.complete(model=f"{INSTANCE}/{model}", prompt="x", **params)
                view = self.view(server)
                assert view.model == model
                if "max_tokens" in params:
                    assert view.max_tokens == 50
                if "temperature" in params:
                    assert view.temperature == 0.5
                if "stop" in params:
                    assert view.stop == ("END",)

        self.run(scenario)

    # -- streaming ---------------------------------------------------------------------------

    def test_stream(self) -> None:
        """The deltas add up to the text; the finish reason and the usage arrive at the end."""
        self.needs(Feature.STREAMING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("Streaming is fun!", chunk_size=3, usage=(12, 5)))
            chunks: list[llmx.types.StreamChunk] = []
            response = await _drain(client.stream(model=self.ref, prompt="x"), chunks)
            assert _text_of(chunks) == response.text == "Streaming is fun!"
            assert sum(isinstance(c, llmx.TextDelta) for c in chunks) > 1
            assert isinstance(chunks[-1], llmx.StreamEnd)
            assert sum(isinstance(c, llmx.StreamEnd) for c in chunks) == 1
            assert response.finish_reason == "stop"
            if self.stream_usage:
                assert response.usage == llmx.Usage(12, 5)
            else:  # no usage on the wire: estimated and marked so, never a silent 0
                assert response.usage.estimated
                assert response.usage.output_tokens > 0
            assert self.view(server).stream is True

        self.run(scenario)

    def test_streamed_equals_complete(self) -> None:
        """The same answer streamed and not streamed gives the same Response."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            reply = Reply(
                "Let me look that up.",
                tool_calls=[("call_1", "get_weather", '{"city": "Oslo"}')],
                usage=(40, 12),
                id="answer-1",
                chunk_size=4,
            )
            server.enqueue(reply, reply)
            tools = [WEATHER] if Feature.TOOLS in self.supports else []
            if not tools:
                server.clear()
                reply = Reply("Let me look that up.", usage=(40, 12), id="answer-1", chunk_size=4)
                server.enqueue(reply, reply)
            ref = self.ref_for(Feature.TOOLS) if tools else self.ref
            whole = await client.complete(model=ref, prompt="Weather?", tools=tools)
            streamed = await client.stream(model=ref, prompt="Weather?", tools=tools).collect()
            assert streamed.text == whole.text == "Let me look that up."
            assert self.calls_of(streamed) == self.calls_of(whole)
            assert streamed.finish_reason == whole.finish_reason
            assert streamed.id == whole.id
            assert streamed.model == whole.model
            if self.stream_usage:
                assert streamed.usage == whole.usage == llmx.Usage(40, 12)

        self.run(scenario)

    # -- tools -----------------------------------------------------------------------------

    def test_tool_round_trip(self) -> None:
        """Call → result → answer: the call comes back, and the result is sent its way."""
        self.needs(Feature.TOOLS)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(
                Reply(tool_calls=[("call_w1", "get_weather", '{"city":"Paris"}')], usage=(50, 10)),
                Reply("It is sunny in Paris."),
            )
            ref = self.ref_for(Feature.TOOLS)
            question = llmx.Message.user("What's the weather in Paris?")
            first = await client.complete(model=ref, messages=[question], tools=[WEATHER])
            assert first.finish_reason == "tool_calls"
            assert first.text == ""
            (call,) = first.tool_calls
            assert (call.name, call.args()) == ("get_weather", {"city": "Paris"})
            if self.tool_call_ids:
                assert call.id == "call_w1", "the call's id is the one the API gave"
            else:
                assert call.id, "the provider makes up an id where the API gives none"
            assert self.view(server).tools == ("get_weather",)

            conversation = [
                question,
                llmx.Message.assistant(tool_calls=first.tool_calls),
                llmx.Message.tool(call.id, json.dumps({"sky": "sunny", "celsius": 24})),
            ]
            second = await client.complete(model=ref, messages=conversation, tools=[WEATHER])
            assert second.text == "It is sunny in Paris."
            assert second.finish_reason == "stop"
            view = self.view(server)
            (sent_call,) = view.parts("tool_call")
            assert sent_call.name == "get_weather"
            assert sent_call.arguments == {"city": "Paris"}
            (result,) = view.parts("tool_result")
            if self.tool_call_ids:
                assert result.id == "call_w1" or result.name == "get_weather"
            else:
                assert result.name == "get_weather", "without ids, results go back by name"
            assert result.result_value() == {"sky": "sunny", "celsius": 24}
            roles = [t.role for t in view.turns]
            assert roles == ["user", "assistant", "user"]

        self.run(scenario)

    def test_tool_error_result(self) -> None:
        """A failed tool call's result is marked as an error (where the API can say so)."""
        self.needs(Feature.TOOLS)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            conversation = [
                llmx.Message.user("Weather in Atlantis?"),
                llmx.Message.assistant(
                    tool_calls=[llmx.ToolCall("call_a", "get_weather", '{"city":"Atlantis"}')]
                ),
                llmx.Message.tool("call_a", "unknown city", is_error=True),
            ]
            await client.complete(
                model=self.ref_for(Feature.TOOLS), messages=conversation, tools=[WEATHER]
            )
            (result,) = self.view(server).parts("tool_result")
            assert result.text == "unknown city"

        self.run(scenario)

    def test_streamed_tool_call(self) -> None:
        """A streamed tool call is assembled into the same call; id and name arrive once."""
        self.needs(Feature.TOOLS, Feature.STREAMING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(
                Reply(tool_calls=[("call_s", "get_weather", '{"city": "Oslo"}')], chunk_size=3)
            )
            chunks: list[llmx.types.StreamChunk] = []
            response = await _drain(
                client.stream(model=self.ref_for(Feature.TOOLS), prompt="Oslo?", tools=[WEATHER]),
                chunks,
            )
            (call,) = response.tool_calls
            assert (call.name, call.args()) == ("get_weather", {"city": "Oslo"})
            deltas = [c for c in chunks if isinstance(c, llmx.ToolCallDelta)]
            if self.tool_call_ids:
                assert call.id == "call_s"
                named = [(d.id, d.name) for d in deltas if d.id or d.name]
                assert named == [("call_s", "get_weather")]
            else:
                assert call.id, "the provider makes up an id where the API gives none"
                assert [d.name for d in deltas if d.name] == ["get_weather"]
            assert response.finish_reason == "tool_calls"

        self.run(scenario)

    @pytest.mark.parametrize("choice", ["auto", "none", "required", "get_weather"])
    def test_tool_choice(self, choice: str) -> None:
        """``tool_choice`` is sent as the API spells it."""
        self.needs(Feature.TOOLS)
        if choice == "none":
            self.needs(Feature.TOOL_CHOICE_NONE)
        if choice in ("required", "get_weather"):
            self.needs(Feature.TOOL_CHOICE_REQUIRED)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            features = [Feature.TOOLS]
            if choice == "none":
                features.append(Feature.TOOL_CHOICE_NONE)
            elif choice != "auto":
                features.append(Feature.TOOL_CHOICE_REQUIRED)
            await client.complete(
                model=self.ref_for(*features), prompt="x", tools=[WEATHER], tool_choice=choice
            )
            assert self.view(server).tool_choice == choice

        self.run(scenario)

    # -- images and structured output -------------------------------------------------------------

    def test_images(self) -> None:
        """Images by bytes (and by URL, where supported) arrive with their media type."""
        self.needs(Feature.IMAGES)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            parts: list[Any] = ["What is in these?", llmx.Image(data=PNG, media_type="image/png")]
            if Feature.IMAGE_URLS in self.supports:
                parts.append(llmx.Image(url="https://example.com/cat.jpg"))
            features = [Feature.IMAGES]
            if Feature.IMAGE_URLS in self.supports:
                features.append(Feature.IMAGE_URLS)
            message = llmx.Message.user(*parts)
            await client.complete(model=self.ref_for(*features), messages=[message])
            images = self.view(server).parts("image")
            assert images[0].data == PNG
            assert images[0].media_type == "image/png"
            if Feature.IMAGE_URLS in self.supports:
                assert images[1].url == "https://example.com/cat.jpg"
            assert self.view(server).turns[0].text == "What is in these?"

        self.run(scenario)

    def test_json_mode(self) -> None:
        """``response_format="json"`` asks for JSON the API's way."""
        self.needs(Feature.JSON_MODE)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply('{"answer": 42}'))
            reply = await client.complete(
                model=self.ref_for(Feature.JSON_MODE), prompt="JSON please", response_format="json"
            )
            assert reply.json() == {"answer": 42}
            assert self.view(server).json_mode

        self.run(scenario)

    def test_json_schema(self) -> None:
        """A JSON schema is sent as the API's structured-output request."""
        self.needs(Feature.JSON_SCHEMA)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply('{"n": 3, "label": "three"}'))
            fmt = llmx.ResponseFormat("json_schema", SCHEMA, name="count")
            ref = self.ref_for(Feature.JSON_SCHEMA)
            reply = await client.complete(model=ref, prompt="n?", response_format=fmt)
            assert reply.json() == {"n": 3, "label": "three"}
            schema = self.view(server).json_schema
            assert schema is not None
            assert set(schema.get("properties", {})) == {"n", "label"}

        self.run(scenario)

    def test_unsupported_features_are_refused_before_sending(self) -> None:
        """What the provider cannot express fails with UnsupportedFeatureError, unsent."""
        requests: list[tuple[str, dict[str, Any]]] = [
            (Feature.TOOLS, {"prompt": "x", "tools": [WEATHER]}),
            (
                Feature.IMAGES,
                {
                    "messages": [
                        llmx.Message.user("x", llmx.Image(data=PNG, media_type="image/png"))
                    ]
                },
            ),
            (Feature.JSON_MODE, {"prompt": "x", "response_format": "json"}),
            (
                Feature.JSON_SCHEMA,
                {"prompt": "x", "response_format": llmx.ResponseFormat("json_schema", SCHEMA)},
            ),
        ]
        if Feature.IMAGES in self.supports:
            requests.append(
                (
                    Feature.IMAGE_URLS,
                    {
                        "messages": [
                            llmx.Message.user("x", llmx.Image(url="https://example.com/a.png"))
                        ]
                    },
                )
            )
        if Feature.TOOLS in self.supports:
            requests.append(
                (
                    Feature.TOOL_CHOICE_NONE,
                    {"prompt": "x", "tools": [WEATHER], "tool_choice": "none"},
                )
            )
        unsupported = [(f, kw) for f, kw in requests if f not in self.supports]
        if not unsupported:
            pytest.skip(f"{self.provider_type} supports every optional feature")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            for feature, kwargs in unsupported:
                with pytest.raises(llmx.UnsupportedFeatureError):
                    await client.complete(model=self.ref, **kwargs)
                assert not server.model_requests, f"{feature}: the request was sent"

        self.run(scenario)

    # -- usage and model facts ---------------------------------------------------------------------

    def test_usage_details(self) -> None:
        """Cached, cache-written and reasoning tokens map onto llmx's Usage."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            details = self.usage_details
            reply = Reply(
                "counted",
                usage=(1200, 300),
                cached_tokens=1000 if "cache_read" in details else 0,
                cache_write_tokens=150 if "cache_write" in details else 0,
                reasoning_tokens=120 if "reasoning" in details else 0,
            )
            expected = llmx.Usage(
                1200,
                300,
                cache_read_tokens=reply.cached_tokens,
                cache_write_tokens=reply.cache_write_tokens,
                reasoning_tokens=reply.reasoning_tokens,
            )
            server.enqueue(reply, reply)
            assert (await client.complete(model=self.ref, prompt="x")).usage == expected
            if Feature.STREAMING in self.supports and self.stream_usage:
                streamed = await client.stream(model=self.ref, prompt="x").collect()
                assert streamed.usage == expected

        self.run(scenario)

    def test_model_info_and_cost(self) -> None:
        """The provider knows the suite's model: limits, capabilities, prices; costs follow."""
        self.needs(Feature.MODEL_INFO)
        registration = llmx.Registry().get("provider", self.provider_type)
        info_of = getattr(registration.factory, "model_info", None)
        assert callable(info_of), "model_info should be a staticmethod of the provider class"
        info = info_of(self.model)
        assert isinstance(info, llmx.ModelInfo)
        assert info.context_window
        assert info.max_output_tokens
        assert info.input_price is not None
        assert info.output_price is not None
        assert info.supports(llmx.Capability.STREAMING) == (Feature.STREAMING in self.supports)
        for feature, capability in (
            (Feature.TOOLS, llmx.Capability.TOOLS),
            (Feature.IMAGES, llmx.Capability.VISION),
        ):
            model = self.model_for(feature)
            facts = info if model == self.model else info_of(model)
            assert isinstance(facts, llmx.ModelInfo), f"model_info({model!r}) knows nothing"
            assert facts.supports(capability) == (feature in self.supports), (
                f"model_info({model!r}): {capability.value} should be "
                f"{feature in self.supports}, as {feature!r} is "
                f"{'' if feature in self.supports else 'not '}in supports"
            )

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            assert client.model_info(self.ref) == info
            server.enqueue(Reply("priced", usage=(1_000_000, 1_000_000)))
            reply = await client.complete(model=self.ref, prompt="x")
            assert reply.cost == pytest.approx(info.cost(reply.usage))

        self.run(scenario)

    def test_list_models(self) -> None:
        """``list_models`` asks the API (following its pagination) and returns ModelInfos."""
        self.needs(Feature.LIST_MODELS)

        async def scenario(server: FakeServer, client: llmx.Client) -> list[llmx.ModelInfo]:
            return list(await client.list_models(INSTANCE))

        models = self.run(scenario)
        assert models
        assert all(isinstance(m, llmx.ModelInfo) and m.id for m in models)
        assert len({m.id for m in models}) == len(models)

    # -- errors -------------------------------------------------------------------------------

    @pytest.mark.parametrize(("kind", "cls", "retryable"), _ERRORS, ids=[e[0] for e in _ERRORS])
    @pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
    def test_errors(
        self, kind: ErrorKind, cls: type[llmx.ProviderError], retryable: bool, streamed: bool
    ) -> None:
        """Each documented error answer maps to its llmx class, with retryability."""
        if streamed:
            self.needs(Feature.STREAMING)
        if kind in ("authentication", "permission"):
            self.has("auth")
        if kind == "context_length":
            self.has("context_length_errors")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(server.error_for(kind, retry_after=3 if kind == "rate_limit" else None))
            with pytest.raises(llmx.ProviderError) as info:
                await self._ask(client, streamed)
            error = info.value
            assert type(error) is cls, f"{kind}: {type(error).__name__}: {error}"
            assert error.retryable is retryable
            assert error.provider == INSTANCE
            assert error.status is not None
            assert error.message
            if kind == "rate_limit":
                assert error.retry_after == 3.0

        self.run(scenario)

    @pytest.mark.parametrize("status", [500, 502, 503, 529])
    def test_server_error_statuses(self, status: int) -> None:
        """5xx answers (529 included) are retryable ServerErrors."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.schedule([Fault.error(status)])
            with pytest.raises(llmx.ServerError) as info:
                await client.complete(model=self.ref, prompt="x")
            assert info.value.status == status
            assert info.value.retryable

        self.run(scenario)

    @pytest.mark.parametrize("header", [None, "2"])
    def test_rate_limit_with_and_without_retry_after(self, header: str | None) -> None:
        """A 429 with ``Retry-After`` gives ``retry_after``; without, None."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.schedule([Fault.error(429, retry_after=None if header is None else 2.0)])
            with pytest.raises(llmx.RateLimitError) as info:
                await client.complete(model=self.ref, prompt="x")
            assert info.value.retry_after == (None if header is None else 2.0)
            assert info.value.retryable

        self.run(scenario)

    def test_wrong_api_key(self) -> None:
        """The fake's own answer to a wrong key is an AuthenticationError, key not shown."""
        self.has("auth")
        secret = "sk-conformance-wrong-key-0123456789"

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            with pytest.raises(llmx.AuthenticationError) as info:
                await client.complete(model=self.ref, prompt="x")
            assert not info.value.retryable
            assert secret not in str(info.value)
            assert secret not in repr(info.value)

        self.run(scenario, api_key=secret)

    def test_timeout(self) -> None:
        """No answer within the instance's timeout: ProviderTimeoutError (complete and stream)."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Stall(5.0), Stall(5.0))
            with pytest.raises(llmx.ProviderTimeoutError) as info:
                await client.complete(model=self.ref, prompt="x")
            assert info.value.retryable
            if Feature.STREAMING in self.supports:
                with pytest.raises(llmx.ProviderTimeoutError):
                    await client.stream(model=self.ref, prompt="x").collect()

        self.run(scenario, timeout=self.timeout)

    def test_connection_reset(self) -> None:
        """A connection closed without an answer: ProviderConnectionError."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reset(), Reset())
            with pytest.raises(llmx.ProviderConnectionError) as info:
                await client.complete(model=self.ref, prompt="x")
            assert info.value.retryable
            if Feature.STREAMING in self.supports:
                with pytest.raises(llmx.ProviderConnectionError):
                    await client.stream(model=self.ref, prompt="x").collect()

        self.run(scenario)

    def test_connection_dropped_mid_body(self) -> None:
        """A body cut off by a dropped connection: ProviderConnectionError."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(
                Reply("a fairly long answer " * 5, chunk_size=6), Reply("b " * 50, chunk_size=6)
            )
            server.schedule([Fault.drop(), Fault.drop()])
            with pytest.raises(llmx.ProviderConnectionError):
                await client.complete(model=self.ref, prompt="x")
            if Feature.STREAMING in self.supports:
                received: list[llmx.types.StreamChunk] = []
                with pytest.raises(llmx.ProviderConnectionError):
                    await _drain(client.stream(model=self.ref, prompt="x"), received)

        self.run(scenario)

    def test_truncated_stream(self) -> None:
        """A stream that ends cleanly before its end: ProviderConnectionError, not a short answer."""
        self.needs(Feature.STREAMING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("never finished, sadly", chunk_size=2))
            server.schedule([Fault.truncate()])
            with pytest.raises(llmx.ProviderConnectionError) as info:
                await client.stream(model=self.ref, prompt="x").collect()
            assert info.value.retryable

        self.run(scenario)

    def test_truncated_body(self) -> None:
        """A JSON body cut short (complete HTTP answer): MalformedResponseError."""

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("a whole answer that gets cut"))
            server.schedule([Fault.truncate()])
            with pytest.raises(llmx.MalformedResponseError):
                await client.complete(model=self.ref, prompt="x")

        self.run(scenario)

    def test_mid_stream_error_event(self) -> None:
        """An error event after some deltas: the provider's generic failure, retryable."""
        self.needs(Feature.STREAMING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(MidStreamError(after_events=2, text="partial answer here"))
            received: list[llmx.types.StreamChunk] = []
            with pytest.raises(llmx.ServerError) as info:
                await _drain(client.stream(model=self.ref, prompt="x"), received)
            assert info.value.retryable
            assert info.value.provider == INSTANCE

        self.run(scenario)

    @pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
    def test_malformed_answer(self, streamed: bool) -> None:
        """An answer that is not the documented format: MalformedResponseError."""
        if streamed:
            self.needs(Feature.STREAMING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(server.malformed_reply(stream=streamed), Reply("ok", chunk_size=1))
            server.schedule([None, Fault.malformed()])
            for _ in range(2):
                with pytest.raises(llmx.MalformedResponseError) as info:
                    await self._ask(client, streamed)
                assert info.value.provider == INSTANCE

        self.run(scenario)

    def test_content_filter(self) -> None:
        """A filtered answer has finish reason ``content_filter``; a refused prompt is typed."""
        self.has("refusals")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("I can", finish_reason="content_filter"))
            reply = await client.complete(model=self.ref, prompt="x")
            assert reply.finish_reason == "content_filter"
            if Feature.STREAMING in self.supports:
                server.enqueue(Reply("I can", finish_reason="content_filter"))
                streamed = await client.stream(model=self.ref, prompt="x").collect()
                assert streamed.finish_reason == "content_filter"
            for streaming in (False, True):
                if streaming and Feature.STREAMING not in self.supports:
                    continue
                server.enqueue(Blocked())
                outcome: llmx.Response | llmx.ContentFilterError
                try:
                    outcome = await self._ask(client, streaming)
                except llmx.ContentFilterError as err:
                    outcome = err
                if isinstance(outcome, llmx.ContentFilterError):
                    assert not outcome.retryable
                else:
                    assert outcome.finish_reason == "content_filter"

        self.run(scenario)

    # -- cancellation --------------------------------------------------------------------------

    def test_leaving_a_stream_early_closes_its_connection(self) -> None:
        """Breaking out of a stream drops the connection at once; the client stays usable."""
        self.needs(Feature.STREAMING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("x" * 200, chunk_size=1, chunk_delay=0.01))
            async with client.stream(model=self.ref, prompt="x") as stream:
                async for chunk in stream:
                    if isinstance(chunk, llmx.TextDelta):
                        break
            await server.wait_for_disconnects(1, timeout=2)
            again = await client.complete(model=self.ref, prompt="still usable")
            assert again.text == "still usable"

        self.run(scenario)

    def test_cancelling_the_consumer_closes_the_connection(self) -> None:
        """Cancelling the task reading a stream drops its connection."""
        self.needs(Feature.STREAMING)

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            server.enqueue(Reply("y" * 200, chunk_size=1, chunk_delay=0.01))
            first = asyncio.Event()

            async def consume() -> None:
                async with client.stream(model=self.ref, prompt="x") as stream:
                    async for _ in stream:
                        first.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), 2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await server.wait_for_disconnects(1, timeout=2)

        self.run(scenario)

    # -- properties -----------------------------------------------------------------------------

    def test_any_read_boundaries_give_the_same_answer(self) -> None:
        """However the body is split into TCP reads, the answer is the same (property)."""

        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            text=_TEXT,
            calls=_CALLS,
            offsets=st.lists(st.integers(1, 2000), max_size=8),
            chunk_size=st.none() | st.integers(1, 7),
            line_ending=st.sampled_from(["\n", "\r\n"]),
        )
        def check(
            text: str,
            calls: list[tuple[str, str, str]],
            offsets: list[int],
            chunk_size: int | None,
            line_ending: str,
        ) -> None:
            if Feature.TOOLS not in self.supports:
                calls = []

            async def scenario(server: FakeServer, client: llmx.Client) -> None:
                tools = [llmx.Tool(name) for _, name, _ in calls]

                def reply(split: list[int] | None = None) -> Reply:
                    return Reply(
                        text,
                        tool_calls=calls,
                        chunk_size=chunk_size,
                        line_ending=line_ending,
                        id="same",
                        split_at=split,
                    )

                ref = self.ref_for(Feature.TOOLS) if tools else self.ref
                server.enqueue(reply(), reply(offsets))
                whole = await client.complete(model=ref, prompt="p", tools=tools)
                if Feature.STREAMING in self.supports:
                    server.enqueue(reply(offsets))
                    split_whole = await client.complete(model=ref, prompt="p", tools=tools)
                    assert self._essentials(split_whole) == self._essentials(whole)
                    chunks: list[llmx.types.StreamChunk] = []
                    streamed = await _drain(
                        client.stream(model=ref, prompt="p", tools=tools), chunks
                    )
                    assert _text_of(chunks) == streamed.text == whole.text == text
                    assert self.calls_of(streamed) == self.calls_of(whole)
                    assert [c.args() for c in whole.tool_calls] == [
                        json.loads(a) for _, _, a in calls
                    ]
                    assert streamed.finish_reason == whole.finish_reason
                    if self.stream_usage:
                        assert streamed.usage == whole.usage

            self.run(scenario)

        check()

    def test_unicode_round_trips(self) -> None:
        """Any unicode prompt arrives intact and an echo of it comes back intact (property)."""

        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(text=_TEXT, system=st.none() | _TEXT)
        def check(text: str, system: str | None) -> None:
            if Feature.SYSTEM not in self.supports:
                system = None

            async def scenario(server: FakeServer, client: llmx.Client) -> None:
                ref = self.ref_for(Feature.SYSTEM) if system is not None else self.ref
                reply = await client.complete(model=ref, prompt=text, system=system)
                assert reply.text == text
                view = self.view(server)
                assert view.last_user_text() == text
                assert view.system == system
                if Feature.STREAMING in self.supports:
                    streamed = await client.stream(model=ref, prompt=text).collect()
                    assert streamed.text == text

            self.run(scenario)

        check()

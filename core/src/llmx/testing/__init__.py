"""llmx's testing kit, for llmx itself and for third-party plugin authors.

* :class:`ScriptedProvider`, :func:`scripted_plugin`, :func:`scripted_client`: a
  provider answering from a script, in memory, for unit tests of code built on llmx.
* :class:`FakeServer`, the base class of fake vendor servers on 127.0.0.1 (streams
  framed as SSE or NDJSON, :data:`Framing`; :class:`Event` for named SSE events; a
  fake's own failures raised as :class:`FakeServerError`), scripted
  with one set of reply types (:class:`Reply`, :class:`ErrorReply`, :class:`RawReply`,
  :class:`MidStreamError`, :class:`Stall`, :class:`Reset`, :class:`Blocked`), including
  wire faults (split TCP reads, dropped connections, truncated streams). A fake records
  what arrived and describes it provider-neutrally (:class:`RequestView`,
  :func:`merge_turns`); embeddings requests are answered with :func:`fake_embedding`
  vectors. Each provider distribution ships the fake of its own vendor's
  API: ``llmx_openai.testing`` (``FakeOpenAIServer``, ``FakeAzureOpenAIServer``),
  ``llmx_anthropic.testing`` (``FakeAnthropicServer``) and ``llmx_gemini.testing``
  (``FakeGeminiServer``), with their pytest fixtures.
* :class:`FakeBatches`: the batch store and scripted lifecycle a fake mixes in to
  implement its vendor's batch API (the first-party fakes do).
* Fault injection on every fake server: :class:`Faults` (random, seeded),
  :class:`Fault` schedules and a "down" switch, with counters of what was injected.
* :mod:`llmx.testing.conformance`: the test suite every provider plugin runs
  (:class:`~llmx.testing.conformance.ProviderConformance`).
* :mod:`llmx.testing.openapi`: OpenAPI 3.x and Google discovery schemas as JSON
  Schema, to validate request bodies against a vendor's published specification.
* A pytest plugin (installed with llmx) providing the ``scripted_provider`` fixture.

``import llmx`` never imports this package; importing it is cheap, and aiohttp is
imported only when a fake server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmx._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ScriptedProvider": "llmx.testing._scripted",
    "ScriptedPlugin": "llmx.testing._scripted",
    "ScriptItem": "llmx.testing._scripted",
    "scripted_plugin": "llmx.testing._scripted",
    "scripted_client": "llmx.testing._scripted",
    "FakeServer": "llmx.testing._server",
    "FakeServerError": "llmx.testing._server",
    "FakeBatches": "llmx.testing._batchfake",
    "Event": "llmx.testing._server",
    "Framing": "llmx.testing._server",
    "Handler": "llmx.testing._server",
    "RecordedRequest": "llmx.testing._server",
    "Reset": "llmx.testing._replies",
    "Blocked": "llmx.testing._replies",
    "ErrorKind": "llmx.testing._replies",
    "Fault": "llmx.testing._chaos",
    "FaultKind": "llmx.testing._chaos",
    "Faults": "llmx.testing._chaos",
    "Injection": "llmx.testing._chaos",
    "RequestView": "llmx.testing._view",
    "ViewPart": "llmx.testing._view",
    "ViewTurn": "llmx.testing._view",
    "merge_turns": "llmx.testing._view",
    "Reply": "llmx.testing._replies",
    "ErrorReply": "llmx.testing._replies",
    "RawReply": "llmx.testing._replies",
    "MidStreamError": "llmx.testing._replies",
    "Stall": "llmx.testing._replies",
    "ReplyItem": "llmx.testing._replies",
    "approx_tokens": "llmx.testing._replies",
    "TOOL_REPLY": "llmx.testing._replies",
    "sse_events": "llmx.testing._replies",
    "fake_embedding": "llmx.testing._embeddings",
}

__all__ = [
    "TOOL_REPLY",
    "Blocked",
    "ErrorKind",
    "ErrorReply",
    "Event",
    "FakeBatches",
    "FakeServer",
    "FakeServerError",
    "Fault",
    "FaultKind",
    "Faults",
    "Framing",
    "Handler",
    "Injection",
    "MidStreamError",
    "RawReply",
    "RecordedRequest",
    "Reply",
    "ReplyItem",
    "RequestView",
    "Reset",
    "ScriptItem",
    "ScriptedPlugin",
    "ScriptedProvider",
    "Stall",
    "ViewPart",
    "ViewTurn",
    "approx_tokens",
    "fake_embedding",
    "merge_turns",
    "scripted_client",
    "scripted_plugin",
    "sse_events",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from llmx.testing._batchfake import FakeBatches as FakeBatches
    from llmx.testing._chaos import Fault, FaultKind, Faults, Injection
    from llmx.testing._embeddings import fake_embedding
    from llmx.testing._replies import TOOL_REPLY as TOOL_REPLY
    from llmx.testing._replies import (
        Blocked,
        ErrorKind,
        ErrorReply,
        MidStreamError,
        RawReply,
        Reply,
        ReplyItem,
        Reset,
        Stall,
        approx_tokens,
        sse_events,
    )
    from llmx.testing._scripted import (
        ScriptedPlugin,
        ScriptedProvider,
        ScriptItem,
        scripted_client,
        scripted_plugin,
    )
    from llmx.testing._server import (
        Event,
        FakeServer,
        FakeServerError,
        Framing,
        Handler,
        RecordedRequest,
    )
    from llmx.testing._view import RequestView, ViewPart, ViewTurn, merge_turns

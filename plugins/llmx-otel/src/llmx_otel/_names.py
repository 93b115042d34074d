"""The attribute and metric names this plugin writes: the OpenTelemetry GenAI semantic
conventions' (as of opentelemetry-semantic-conventions 0.66b2, where they are marked as
moved to the GenAI conventions repository, unchanged), and llmx's own under ``llmx.``."""

from __future__ import annotations

from typing import Final

# -- GenAI semantic conventions -----------------------------------------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_REASONING_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
USAGE_CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
TOKEN_TYPE: Final = "gen_ai.token.type"
ERROR_TYPE: Final = "error.type"

# -- llmx's own -----------------------------------------------------------------------------
REQUEST_ID: Final = "llmx.request_id"
"""The id every event of one request shares (also in llmx's logs)."""
STREAM: Final = "llmx.stream"
"""Whether the caller asked for a stream."""
CACHE_HIT: Final = "llmx.cache_hit"
"""The answer came from llmx's response cache (no attempt was made)."""
ATTEMPTS: Final = "llmx.attempts"
"""How many attempts the request made (retries, fallbacks and hedges included)."""
COST: Final = "llmx.cost"
"""The request's cost in USD, when the model's prices are known."""
INSTANCE: Final = "llmx.provider.instance"
"""The configured provider instance (``[providers.NAME]``) that answered or was tried."""
ATTEMPT: Final = "llmx.attempt"
"""The attempt's number, from 1, across the whole request."""
ATTEMPT_KIND: Final = "llmx.attempt.kind"
"""Why the attempt was made: ``first``, ``retry``, ``fallback`` or ``hedge``."""
RETRY: Final = "llmx.retry"
"""True on a retry of the same candidate."""
FALLBACK: Final = "llmx.fallback"
"""True on an attempt at a later candidate after an earlier one failed."""
HEDGE: Final = "llmx.hedge"
"""True on a hedge: sent to the next candidate while the first had not answered."""
ABANDONED_REQUEST: Final = "llmx.abandoned"
"""A request span ended without its last event (a cancelled request, past
``MAX_OPEN_REQUESTS`` open ones)."""
ABANDONED: Final = "llmx.attempt.abandoned"
"""Why an attempt's answer was never used (``hedge lost``, ``cancelled``, ...)."""

# -- metrics ----------------------------------------------------------------------------------
METRIC_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKENS: Final = "gen_ai.client.token.usage"
METRIC_TTFC: Final = "gen_ai.client.operation.time_to_first_chunk"

DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
"""The conventions' advised boundaries for ``gen_ai.client.operation.duration`` (s)."""

TTFC_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
"""Boundaries for the time to the first chunk (s): the conventions' time-to-first-token
boundaries."""

TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""The conventions' advised boundaries for ``gen_ai.client.token.usage``."""

PROVIDER_NAMES: Final = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "openai-responses": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}
"""llmx provider types whose ``gen_ai.provider.name`` the conventions spell otherwise;
any other type is its own name."""

"""The error hierarchy: everything llmx raises derives from :class:`LlmxError`.

Provider errors carry the provider instance, the HTTP status, whether a retry may
succeed and how long the provider asked to wait. Messages say what went wrong, where,
and how to fix it; none of them ever contains a credential.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from llmx._scrub import scrub

if TYPE_CHECKING:
    from llmx._types import Attempt


class LlmxError(Exception):
    """Base class of every error llmx raises."""


class ConfigError(LlmxError):
    """The configuration is invalid; the message names the key path and the fix."""


class ClientClosedError(LlmxError):
    """The client was used after :meth:`Client.aclose`; create a new one instead."""


class UnsupportedFeatureError(LlmxError):
    """The request needs a feature the chosen model lacks (found before anything is sent)."""

    def __init__(self, message: str, *, provider: str, model: str, feature: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.feature = feature


class StructuredOutputError(LlmxError):
    """The answer to a request with ``response_model=`` never matched the model's
    schema, re-asks included.

    ``text`` is the last answer's raw text, ``errors`` what was wrong with it (one
    message per problem, with its JSON path, e.g. ``$.age: expected integer, got string
    "ten"``), ``response`` that whole :class:`~llmx.Response`.
    """

    def __init__(
        self, message: str, *, text: str, errors: Sequence[str], response: Any = None
    ) -> None:
        super().__init__(message)
        self.text = text
        self.errors = tuple(errors)
        self.response = response


# -- plugins -----------------------------------------------------------------------------


class PluginError(LlmxError):
    """A plugin could not be used; names the plugin and its distribution and version."""

    def __init__(
        self,
        message: str,
        *,
        plugin: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.distribution = distribution
        self.version = version


class PluginNotInstalledError(PluginError):
    """No installed distribution provides the plugin (or component) asked for."""


class PluginLoadError(PluginError):
    """The plugin is installed but crashed while importing or registering."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name; the message names both distributions."""


class PluginIncompatibleError(PluginError):
    """The plugin was written for a contract version this llmx does not speak."""


# -- providers ---------------------------------------------------------------------------


class ProviderError(LlmxError):
    """A provider call failed.

    Attributes: ``provider`` (the configured instance), ``model``, ``status`` (HTTP
    status or None), ``retryable`` (whether trying again may succeed), ``retry_after``
    (seconds the provider asked us to wait, or None), ``code`` (the provider's own
    error code or type, if any).
    """

    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        message = scrub(message)  # an upstream may echo a credential back
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.code = code
        self.attempts: tuple[Attempt, ...] = ()
        """Every attempt of the request that ended in this error (set by the pipeline)."""
        self.details: tuple[str, ...] = ()
        """Why no further retry or fallback was made, if the pipeline decided so."""

    def __str__(self) -> str:
        where = self.provider if self.model is None else f"{self.provider}/{self.model}"
        status = f" (HTTP {self.status})" if self.status is not None else ""
        details = f" [{'; '.join(self.details)}]" if self.details else ""
        return f"{where}{status}: {self.message}{details}"

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "code": self.code,
        }
        return (_rebuild_provider_error, (type(self), self.message, kwargs))


def _rebuild_provider_error(
    cls: type[ProviderError], message: str, kwargs: dict[str, Any]
) -> ProviderError:
    return cls(message, **kwargs)


class AuthenticationError(ProviderError):
    """The credentials were rejected (HTTP 401): check the instance's ``api_key``."""


class PermissionDeniedError(ProviderError):
    """The credentials lack access to this resource (HTTP 403)."""


class ModelNotFoundError(ProviderError):
    """The provider does not know the model, or the account cannot see it (HTTP 404)."""


class BadRequestError(ProviderError):
    """The provider rejected the request as invalid (HTTP 400/422)."""


class ContextWindowExceededError(BadRequestError):
    """The prompt plus ``max_tokens`` do not fit the model's context window."""


class ContentFilterError(BadRequestError):
    """The provider refused the prompt or answer on safety grounds."""


class ConflictError(ProviderError):
    """The provider reported a conflict or lock (HTTP 409); a retry usually succeeds."""

    default_retryable = True


class RateLimitError(ProviderError):
    """Too many requests or tokens (HTTP 429); ``retry_after`` says when to come back."""

    default_retryable = True


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time (our timeout, or HTTP 408/504)."""

    default_retryable = True


class ProviderConnectionError(ProviderError):
    """The connection failed or broke (refused, reset, DNS, TLS, dropped mid-stream)."""

    default_retryable = True


class ServerError(ProviderError):
    """The provider failed (HTTP 5xx, or 529 overloaded)."""

    default_retryable = True


class MalformedResponseError(ProviderError):
    """The provider answered with something that is not its documented format."""

    default_retryable = True


class CircuitOpenError(ProviderError):
    """The instance's circuit breaker is open: it was not tried (nothing was sent)."""


class DeadlineExceededError(ProviderTimeoutError):
    """The request's deadline passed before an answer; no further retry or fallback fits."""

    default_retryable = False


class AllCandidatesFailedError(LlmxError):
    """Every candidate for a request failed; ``attempts`` lists each try in order."""

    def __init__(
        self, message: str, *, attempts: Sequence[Attempt], errors: Sequence[BaseException] = ()
    ) -> None:
        lines = [message, *(f"  - {a}" for a in attempts)]
        super().__init__("\n".join(lines))
        self.attempts = tuple(attempts)
        self.errors = tuple(errors)


# -- helpers for provider plugins ------------------------------------------------------------

_STATUS_CLASSES: dict[int, type[ProviderError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PermissionDeniedError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    408: ProviderTimeoutError,
    409: ConflictError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
    504: ProviderTimeoutError,
}


def error_class_for_status(status: int) -> type[ProviderError]:
    """The error class for an HTTP status (unknown 4xx are bad requests, 5xx server errors)."""
    cls = _STATUS_CLASSES.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return MalformedResponseError


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date).

    Returns None when no header is present or it cannot be read; never negative.
    ``headers`` lookups should be case-insensitive (aiohttp's and multidict's are).
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))

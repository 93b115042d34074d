"""The error hierarchy and the helpers provider plugins use to build errors."""

from __future__ import annotations

import email.utils
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx.plugin import error_class_for_status, parse_retry_after


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, llmx.BadRequestError, False),
        (401, llmx.AuthenticationError, False),
        (403, llmx.PermissionDeniedError, False),
        (404, llmx.ModelNotFoundError, False),
        (408, llmx.ProviderTimeoutError, True),
        (409, llmx.ConflictError, True),
        (418, llmx.BadRequestError, False),
        (422, llmx.BadRequestError, False),
        (429, llmx.RateLimitError, True),
        (500, llmx.ServerError, True),
        (502, llmx.ServerError, True),
        (503, llmx.ServerError, True),
        (504, llmx.ProviderTimeoutError, True),
        (529, llmx.ServerError, True),
    ],
)
def test_status_mapping(status: int, cls: type[llmx.ProviderError], retryable: bool) -> None:
    assert error_class_for_status(status) is cls
    err = cls("m", provider="p", status=status)
    assert err.retryable is retryable
    assert isinstance(err, llmx.LlmxError)


def test_context_window_is_a_bad_request_and_not_retryable() -> None:
    err = llmx.ContextWindowExceededError("too long", provider="p", model="m", status=400)
    assert isinstance(err, llmx.BadRequestError)
    assert not err.retryable
    assert str(err) == "p/m (HTTP 400): too long"


def test_retryable_can_be_overridden_and_pickles() -> None:
    err = llmx.ServerError(
        "x", provider="p", status=501, retryable=False, retry_after=3.0, code="c"
    )
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is llmx.ServerError
    assert (again.provider, again.status, again.retryable, again.retry_after, again.code) == (
        "p", 501, False, 3.0, "c",
    )  # fmt: skip


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "-4"}) == 0.0
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(30.0)


@given(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms"]), st.text(max_size=40)))
def test_parse_retry_after_never_raises(headers: dict[str, str]) -> None:
    value = parse_retry_after(headers)
    assert value is None or value >= 0


def test_all_candidates_failed_lists_attempts() -> None:
    attempts = [
        llmx.Attempt("a", "m1", 0.25, "RateLimitError", "slow down"),
        llmx.Attempt("b", "m2", 1.0, "ServerError", "boom"),
    ]
    err = llmx.AllCandidatesFailedError("all 2 candidates failed", attempts=attempts)
    text = str(err)
    assert "a/m1 after 250 ms: RateLimitError: slow down" in text
    assert "b/m2 after 1000 ms: ServerError: boom" in text
    assert err.attempts == tuple(attempts)


def test_plugin_errors_carry_origin() -> None:
    err = llmx.PluginLoadError("x", plugin="p", distribution="d", version="1")
    assert (err.plugin, err.distribution, err.version) == ("p", "d", "1")
    assert isinstance(err, llmx.PluginError)
    assert not issubclass(llmx.PluginNotInstalledError, llmx.PluginLoadError)

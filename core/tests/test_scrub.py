"""The one scrubber: every secret llmx reads is replaced by ``***`` wherever llmx writes."""

from __future__ import annotations

import logging

import pytest

import llmx
from llmx._scrub import remember, scrub


def test_a_read_secret_is_scrubbed_from_provider_errors() -> None:
    secret = llmx.Secret(value="sk-scrub-me-123456")
    assert secret.get() == "sk-scrub-me-123456"
    error = llmx.ServerError("upstream said sk-scrub-me-123456", provider="p")
    assert "sk-scrub-me" not in str(error)
    assert error.message == "upstream said ***"


def test_the_longest_secret_is_replaced_whole_and_a_url_password_on_its_own() -> None:
    remember("tok-abcdef")
    remember("tok-abcdef-team")
    assert scrub("a tok-abcdef-team b tok-abcdef") == "a *** b ***"
    remember("redis://:pw-in-url-9876@127.0.0.1:6379/0")
    assert scrub("AUTH pw-in-url-9876 failed") == "AUTH *** failed"
    remember("abc")  # too short to scrub without mangling ordinary words
    assert scrub("abc") == "abc"


def test_llmx_log_records_are_scrubbed_when_made(caplog: pytest.LogCaptureFixture) -> None:
    remember("sk-log-secret-5555")
    logging.getLogger("llmx.anything").warning("got %s back", "sk-log-secret-5555")
    logging.getLogger("someone.else").warning("theirs: %s", "sk-log-secret-5555")
    assert "got *** back" in caplog.text
    assert "theirs: sk-log-secret-5555" in caplog.text  # other libraries' logs are theirs

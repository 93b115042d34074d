"""The conformance kit fails broken providers, each in exactly the tests meant to catch
its bug, and passes a correct provider whose API streams NDJSON.

``kit_selftest/llmx_kit_selftest`` is a small real provider for an imaginary NDJSON API
(raw aiohttp), six deliberately broken variants of it, and its fake server on the kit's
base. The test installs it as a distribution (a ``.dist-info`` with its ``llmx`` entry
points, on the subprocess's path), runs ``kit_selftest/acme_conformance.py`` with pytest
in a subprocess and checks every test's outcome.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "kit_selftest"

PROVIDER_TYPES = [
    "acme",
    "acme_wrong_error",
    "acme_lost_retry_after",
    "acme_swallowed_error",
    "acme_leaky",
    "acme_reordered",
    "acme_reordered_vectors",
]

EXPECTED_FAILURES = {
    "TestAcmeWrongError": {
        "test_embedding_errors_are_typed",
        "test_errors[complete-rate_limit]",
        "test_errors[stream-rate_limit]",
        "test_rate_limit_with_and_without_retry_after[None]",
        "test_rate_limit_with_and_without_retry_after[2]",
    },
    "TestAcmeLostRetryAfter": {
        "test_embedding_errors_are_typed",
        "test_errors[complete-rate_limit]",
        "test_errors[stream-rate_limit]",
        "test_rate_limit_with_and_without_retry_after[2]",
    },
    "TestAcmeSwallowedError": {"test_mid_stream_error_event"},
    "TestAcmeLeaky": {
        "test_leaving_a_stream_early_closes_its_connection",
        "test_cancelling_the_consumer_closes_the_connection",
    },
    "TestAcmeReordered": {
        "test_stream",
        "test_streamed_equals_complete",
        "test_any_read_boundaries_give_the_same_answer",
        "test_unicode_round_trips",
    },
    "TestAcmeClaimsCaching": {"test_prompt_caching", "test_prompt_caching_in_model_info"},
    "TestAcmeReorderedVectors": {
        "test_embeddings",
        "test_embeddings_split_to_the_provider_limit",
    },
    "TestAcme": set(),
    "TestAcmeWithoutFacts": set(),
}
"""Per conformance class, the tests that must fail (every other test must not)."""

NOT_APPLICABLE = {
    "test_errors[complete-authentication]",
    "test_errors[stream-authentication]",
    "test_errors[complete-permission]",
    "test_errors[stream-permission]",
    "test_wrong_api_key",
    "test_errors[complete-context_length]",
    "test_errors[stream-context_length]",
    "test_content_filter",
}
"""What ``auth``, ``refusals`` and ``context_length_errors = False`` report as not applicable."""

UNSUPPORTED = {
    "test_json_schema",
    "test_count_tokens_of_a_whole_request",
    "test_embeddings_refused_before_sending_when_unsupported",
    *(f"test_reasoning_is_sent[{v}]" for v in ("low", "medium", "high", "4096", "none")),
    "test_reasoning_parts_and_deltas",
    "test_reasoning_tool_loop[complete]",
    "test_reasoning_tool_loop[stream]",
    "test_provider_batch",
    "test_refusal_message",  # the Acme API has no refusal message (refusal_messages)
    "test_response_model_parsed",
    "test_response_model_reasks_with_the_errors",
    "test_response_model_still_invalid",
    "test_response_model_streamed",
    *(
        f"test_{media}[{mode}]"
        for media in ("documents", "audio")
        for mode in ("whole", "streamed")
    ),
}
"""The tests of the features Acme lacks (images by URL are checked inside test_images;
without token counting, test_count_tokens checks that the estimate sends nothing;
reasoning's refusal by test_reasoning_refused_when_unsupported, which runs; without JSON
schemas, the typed output built on them is refused before sending, which runs too), and
the refusal test of embeddings, which Acme makes."""


def _install(site: Path) -> None:
    """A ``.dist-info`` declaring the ``llmx`` entry points: installed, as pip would."""
    info = site / "llmx_kit_selftest-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llmx-kit-selftest\nVersion: 0.1\n")
    lines = "".join(f"{name} = llmx_kit_selftest\n" for name in PROVIDER_TYPES)
    (info / "entry_points.txt").write_text(f"[llmx]\n{lines}")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Each conformance class's tests and their outcomes (passed, failed, skipped)."""
    tmp = tmp_path_factory.mktemp("kit_selftest")
    site = tmp / "site"
    _install(site)
    (tmp / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    # Outcomes are what counts here: a failing example need not be shrunk (saves ~20 s).
    (tmp / "conftest.py").write_text(
        "from hypothesis import Phase, settings\n"
        "settings.register_profile('selftest', phases=[Phase.explicit, Phase.generate])\n"
        "settings.load_profile('selftest')\n"
    )
    shutil.copy(HERE / "acme_conformance.py", tmp)
    report = tmp / "report.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(HERE)])}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tmp / "acme_conformance.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp / "pytest.ini"),
            "--rootdir",
            str(tmp),
            f"--junitxml={report}",
        ],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert report.exists(), f"pytest did not run:\n{run.stdout}\n{run.stderr}"
    out: dict[str, dict[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        cls = case.attrib["classname"].rsplit(".", 1)[-1]
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"error": "failed", "failure": "failed"}.get(tag, tag)
        out.setdefault(cls, {})[case.attrib["name"]] = outcome
    assert set(out) == set(EXPECTED_FAILURES), run.stdout[-3000:]
    return out


@pytest.mark.parametrize("cls", sorted(EXPECTED_FAILURES))
def test_the_kit_fails_exactly_the_tests_that_catch_each_bug(
    outcomes: dict[str, dict[str, str]], cls: str
) -> None:
    """Broken providers fail just their tests; the correct NDJSON provider fails none."""
    tests = outcomes[cls]
    failed = {name for name, outcome in tests.items() if outcome == "failed"}
    assert failed == EXPECTED_FAILURES[cls]
    assert len(tests) > 60, "the whole suite ran"


def test_an_ndjson_provider_passes_the_whole_kit(outcomes: dict[str, dict[str, str]]) -> None:
    """Every test runs and passes, bar the one unsupported feature."""
    tests = outcomes["TestAcme"]
    skipped = {name for name, outcome in tests.items() if outcome == "skipped"}
    assert skipped == UNSUPPORTED
    assert {"test_stream", "test_mid_stream_error_event", "test_truncated_stream"} <= {
        name for name, outcome in tests.items() if outcome == "passed"
    }


def test_absent_facts_are_reported_not_applicable(outcomes: dict[str, dict[str, str]]) -> None:
    """``auth``/``refusals``/``context_length_errors = False`` skip (not pass) their tests."""
    tests = outcomes["TestAcmeWithoutFacts"]
    skipped = {name for name, outcome in tests.items() if outcome == "skipped"}
    assert skipped == NOT_APPLICABLE | UNSUPPORTED

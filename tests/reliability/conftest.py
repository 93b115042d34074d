"""The reliability suite: real servers and stores misbehaving on purpose; every case
prints its figures (``-s``). ``RELIABILITY_SCALE=full`` (``scripts/reliability``) runs
the long form; CI runs the bounded default."""

from __future__ import annotations

import os

import pytest

FULL = os.environ.get("RELIABILITY_SCALE", "ci") == "full"
"""Whether the long form runs (scripts/reliability)."""


@pytest.fixture
def scale() -> int:
    """How many times the CI form's counts and durations a case runs (10 in the long
    form, 1 in CI)."""
    return 10 if FULL else 1

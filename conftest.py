"""Repository-wide pytest set-up: hypothesis profiles.

``HYPOTHESIS_PROFILE=ci`` (what scripts/test uses) is bounded and derandomised so the
suite stays fast and reproducible; ``dev`` explores more.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config: object) -> None:
    """``llmx chat`` writes the request log under ``$XDG_DATA_HOME`` by default: point it
    at a directory of this session (inherited by the subprocesses tests start), so no
    test writes to the user's own log. Tests that need their own set it themselves."""
    import atexit
    import shutil
    import tempfile

    data_home = tempfile.mkdtemp(prefix="llmx-tests-data-")
    os.environ["XDG_DATA_HOME"] = data_home
    atexit.register(shutil.rmtree, data_home, ignore_errors=True)

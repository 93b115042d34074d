"""The distribution's version and the ``User-Agent`` built from it (a leaf module)."""

from __future__ import annotations

VERSION = "0.1.0"
"""The version of the ``llmx`` distribution (``llmx.__version__``)."""

USER_AGENT = f"llmx/{VERSION}"
"""The ``User-Agent`` header llmx's pooled sessions send (an instance's ``headers`` may
set another)."""

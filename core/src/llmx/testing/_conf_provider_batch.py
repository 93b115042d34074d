"""The conformance kit's tests of provider batch APIs (``Feature.PROVIDER_BATCH``).

Mixed into :class:`~llmx.testing.conformance.ProviderConformance`. A provider that
supports the feature runs a small batch through :meth:`llmx.Client.provider_batch`
against its fake server (whose batch endpoints answer each request as a normal call
would be answered) and must write every id exactly once, answers parsed as a normal
call's, a failing request typed as a normal call's error; one that does not must refuse
before sending anything.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import llmx

if TYPE_CHECKING:
    from llmx.testing._server import FakeServer

__all__ = ["ProviderBatchTests"]

FEATURE = "provider_batch"


class ProviderBatchTests:
    """The ``provider_batch`` tests (see the module docstring)."""

    if TYPE_CHECKING:  # ProviderConformance's, which this is mixed into
        provider_type: ClassVar[str]
        supports: ClassVar[frozenset[str]]

        def run(self, scenario: Any, **options: Any) -> Any: ...
        def needs(self, *features: str) -> None: ...
        def ref_for(self, *features: str) -> str: ...

    @staticmethod
    def _write(directory: Path, ids: list[str]) -> Path:
        path = directory / "in.jsonl"
        lines = (json.dumps({"id": i, "prompt": f"prompt of {i}"}) + "\n" for i in ids)
        path.write_text("".join(lines))
        return path

    def test_provider_batch(self) -> None:
        """A batch through the vendor's batch API: every id exactly once, the answers as a
        normal call's, the failing request typed as a normal call's error."""
        self.needs(FEATURE)
        ids = ["first", "second", "third id"]

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            with tempfile.TemporaryDirectory() as directory:
                source = self._write(Path(directory), ids)
                server.enqueue(server.error_for("bad_request"))
                report = await client.provider_batch(
                    source, model=self.ref_for(FEATURE), poll_interval=0.001, timeout=60
                )
                text = source.with_name("in.results.jsonl").read_text()
                out = [json.loads(line) for line in text.splitlines()]
            assert report.waiting == 0, "the batch did not end"
            assert (report.succeeded, report.failed) == (2, 1)
            counts = Counter(row["id"] for row in out)
            assert counts == Counter(ids), f"each id exactly once: {counts}"
            for row in out:
                if row["error"] is None:
                    assert row["response"]["text"] == f"prompt of {row['id']}"
                    assert row["response"]["provider"] == "conf"
                else:
                    assert row["error"]["type"] == "BadRequestError", row["error"]

        self.run(scenario)

    def test_provider_batch_refused_when_unsupported(self) -> None:
        """Without a batch API, the run is refused before anything is sent, naming the
        provider, the model and the feature."""
        if FEATURE in self.supports:
            pytest.skip(f"{self.provider_type} supports {FEATURE}")

        async def scenario(server: FakeServer, client: llmx.Client) -> None:
            with tempfile.TemporaryDirectory() as directory:
                source = self._write(Path(directory), ["a"])
                with pytest.raises(llmx.UnsupportedFeatureError) as caught:
                    await client.provider_batch(source, model=self.ref_for())
                assert not source.with_name("in.results.jsonl").exists()
            assert caught.value.feature == FEATURE
            assert caught.value.provider == "conf"
            assert server.requests == [], "something was sent"

        self.run(scenario)

"""``llmx batch`` end to end: the real CLI in a subprocess, the installed OpenAI provider,
and the fake OpenAI server on 127.0.0.1 (in a thread of the test process).

Every test checks the one promise that matters: each input id ends up in the results
file exactly once, whatever happened to the process in between.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmx.testing import ErrorReply, RawReply, Reply, ReplyItem, Stall
from llmx.testing._server import RecordedRequest
from llmx_openai.testing import FakeOpenAIServer


class BatchServer(FakeOpenAIServer):
    """The fake OpenAI server, echoing each prompt after ``delay`` seconds, and answering
    the prompts in ``faults`` with their scripted fault instead (on every attempt)."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0
        self.faults: dict[str, ReplyItem] = {}

    def default_reply(self, recorded: RecordedRequest) -> ReplyItem:
        """The echo, or this prompt's fault; after ``delay`` seconds."""
        reply = super().default_reply(recorded)
        if isinstance(reply, Reply):
            reply = self.faults.get(reply.text, reply)
        return Stall(self.delay, then=reply) if self.delay else reply

    def prompts(self) -> Counter[str]:
        """How many times each prompt arrived."""
        return Counter(_prompt(r) for r in self.requests if r.path.endswith("/completions"))


def _prompt(recorded: RecordedRequest) -> str:
    return str(recorded.json["messages"][-1]["content"])


@pytest.fixture
def server() -> Iterator[BatchServer]:
    """A :class:`BatchServer` running in a background thread."""
    with BatchServer().in_thread() as srv:
        yield srv


@pytest.fixture
def config(tmp_path: Path, server: BatchServer) -> Path:
    """An ``llmx.toml`` with one instance ``fake`` of type ``openai`` pointing at the server."""
    path = tmp_path / "llmx.toml"
    path.write_text(
        f'[providers.fake]\ntype = "openai"\nbase_url = "{server.base_url}"\napi_key = "test-key"\n'
    )
    return path


def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    out["XDG_CONFIG_HOME"] = str(tmp_path / ".config")
    return out


def batch_args(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "llmx", "--config", str(config), "batch", *args]


def run_batch(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        batch_args(config, *args),
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def write_requests(path: Path, count: int, prefix: str = "r") -> list[str]:
    ids = [f"{prefix}{i}" for i in range(count)]
    with path.open("w") as f:
        for item_id in ids:
            f.write(json.dumps({"id": item_id, "prompt": f"prompt of {item_id}"}) + "\n")
    return ids


def results(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the results file ends with a torn line"
    return [json.loads(line) for line in text.splitlines()]


def assert_exactly_once(rows: list[dict[str, Any]], ids: list[str]) -> None:
    seen = Counter(r["custom_id"] for r in rows)
    assert [k for k, n in seen.items() if n > 1] == [], "ids written twice"
    assert set(seen) == set(ids), f"missing ids: {sorted(set(ids) - set(seen))[:10]}"
    for row in rows:
        assert row["id"] == row["custom_id"]
        assert (row["response"] is None) != (row["error"] is None)
        if row["response"] is not None:  # the answer belongs to this id
            assert row["response"]["text"] == f"prompt of {row['custom_id']}"


def wait_for_lines(
    path: Path, count: int, proc: subprocess.Popen[str], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"batch ended early ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.02)
    pytest.fail(f"no {count} results after {timeout} s")


# -- a big batch with faults ---------------------------------------------------------------


def test_5000_requests_with_faults_every_id_exactly_once_then_retry_failed(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 5000)
    kinds: list[ReplyItem] = [
        ErrorReply(400),  # never retried
        ErrorReply(500),  # retried by the pipeline, fails every time
        ErrorReply(429, headers={"retry-after": "0"}),
        RawReply(200, "this is not JSON"),  # a malformed answer
        Reply("cut", drop_after=5),  # the connection drops mid-body
    ]
    faulty = {f"prompt of r{i}": kinds[(i // 97) % len(kinds)] for i in range(0, 5000, 97)}
    server.faults.update(faulty)
    out = tmp_path / "in.results.jsonl"

    first = run_batch(tmp_path, config, "in.jsonl", "-m", "fake/gpt-4o-mini", "-c", "64")

    assert first.returncode == 1, first.stderr  # some requests failed
    assert "Traceback" not in first.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    assert [r["custom_id"] for r in rows] == ids  # --order input (the default)
    errors = {r["custom_id"]: r["error"] for r in rows if r["error"] is not None}
    assert {f"prompt of {i}" for i in errors} >= set(faulty)  # every fault is an error line
    bad_request = errors["r0"]
    assert (bad_request["type"], bad_request["status"], bad_request["retryable"]) == (
        "BadRequestError",
        400,
        False,
    )
    assert errors["r97"]["type"] in ("ServerError", "CircuitOpenError")
    assert "failed; re-run with --retry-failed" in first.stderr
    assert "succeeded" in first.stderr  # the summary table

    server.faults.clear()
    again = run_batch(tmp_path, config, "in.jsonl", "-m", "fake/gpt-4o-mini", "-c", "64")
    assert again.returncode == 1  # nothing to do: the failures stay failures
    assert "5000 of 5000 requests already have a result" in again.stderr
    assert results(out) == rows

    before = server.prompts()
    retried = run_batch(
        tmp_path, config, "in.jsonl", "-m", "fake/gpt-4o-mini", "-c", "64", "--retry-failed"
    )
    assert retried.returncode == 0, retried.stderr
    assert f"retrying {len(errors)} failed request(s)" in retried.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    assert all(r["error"] is None for r in rows)
    assert [r["custom_id"] for r in rows] == ids
    sent = server.prompts() - before
    assert set(sent) == {f"prompt of {i}" for i in errors}  # only the failed ids ran again


# -- crashes and signals ------------------------------------------------------------------------


def test_sigkill_mid_run_then_resume_writes_every_id_exactly_once(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 1500)
    server.delay = 0.02
    out = tmp_path / "out.jsonl"
    args = batch_args(config, "in.jsonl", "-o", str(out), "-m", "fake/m", "-c", "8", "--quiet")
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for_lines(out, 200, proc)
    proc.kill()
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    killed_rows = results(out)
    assert 200 <= len(killed_rows) < 1500
    assert len({r["custom_id"] for r in killed_rows}) == len(killed_rows)
    # What a kill in the middle of a write leaves behind: half a line.
    with out.open("ab") as f:
        f.write(b'{"id": "r1499", "custom_id": "r1499", "respon')

    server.delay = 0.0
    resumed = run_batch(tmp_path, config, "in.jsonl", "-o", str(out), "-m", "fake/m", "-c", "8")

    assert resumed.returncode == 0, resumed.stderr
    assert "dropped a torn last line" in resumed.stderr
    assert f"resuming: {len(killed_rows)} of 1500" in resumed.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    assert [r["custom_id"] for r in rows] == ids
    assert {r["custom_id"]: r for r in rows}.keys() >= {r["custom_id"] for r in killed_rows}
    # Ids finished before the kill were not sent again.
    sent = server.prompts()
    assert all(sent[f"prompt of {r['custom_id']}"] == 1 for r in killed_rows)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_gracefully_and_resume(
    tmp_path: Path, server: BatchServer, config: Path, sig: signal.Signals, code: int
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 400)
    server.delay = 0.05
    out = tmp_path / "in.results.jsonl"
    proc = subprocess.Popen(
        batch_args(config, "in.jsonl", "-m", "fake/m", "-c", "8"),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_lines(out, 40, proc)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)

    assert proc.returncode == code, stderr
    assert time.monotonic() - t0 < 10
    assert f"stopped by {sig.name}" in stderr
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    stopped_rows = results(out)
    assert 40 <= len(stopped_rows) < 400
    assert len({r["custom_id"] for r in stopped_rows}) == len(stopped_rows)

    server.delay = 0.0
    resumed = run_batch(tmp_path, config, "in.jsonl", "-m", "fake/m", "-c", "8")
    assert resumed.returncode == 0, resumed.stderr
    assert_exactly_once(results(out), ids)


# -- input problems ---------------------------------------------------------------------------


def test_malformed_lines_are_reported_and_skipped(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    lines = [
        json.dumps({"id": "a", "prompt": "prompt of a"}),
        "{oops",
        json.dumps({"id": "b", "prompt": "prompt of b", "temprature": 2}),
        json.dumps({"id": "c", "prompt": "prompt of c"}),
        json.dumps({"id": "a", "prompt": "prompt of a, again"}),
        json.dumps(
            {
                "custom_id": "d",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "prompt of d"}],
                },
            }
        ),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")

    result = run_batch(tmp_path, config, "in.jsonl", "-m", "fake/gpt-4o-mini", "-q")

    assert result.returncode == 1  # lines were skipped
    assert "line 2: not JSON" in result.stderr
    assert "line 3: unknown fields (temprature)" in result.stderr
    assert "line 5: id 'a' repeats line 1" in result.stderr
    assert_exactly_once(results(tmp_path / "in.results.jsonl"), ["a", "c", "d"])

    strict = run_batch(
        tmp_path, config, "in.jsonl", "-o", "strict.jsonl", "-m", "fake/m", "--strict"
    )
    assert strict.returncode == 1
    assert strict.stderr.startswith("llmx: error: ")
    assert "3 bad line(s) (--strict)" in strict.stderr
    assert not (tmp_path / "strict.jsonl").exists()


def test_batch_api_models_need_m_unless_they_are_llmx_references(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    def line(item_id: str, model: str) -> str:
        body = {"model": model, "messages": [{"role": "user", "content": f"prompt of {item_id}"}]}
        return json.dumps(
            {"custom_id": item_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
        )

    (tmp_path / "bare.jsonl").write_text(line("x", "gpt-4o-mini") + "\n")
    (tmp_path / "refs.jsonl").write_text(line("y", "fake/gpt-4o-mini") + "\n")

    bare = run_batch(tmp_path, config, "bare.jsonl")
    assert bare.returncode == 1
    assert "pass -m" in bare.stderr
    assert "Traceback" not in bare.stderr

    refs = run_batch(tmp_path, config, "refs.jsonl", "-q")
    assert refs.returncode == 0, refs.stderr
    row = results(tmp_path / "refs.results.jsonl")[0]
    assert (row["response"]["model"], row["response"]["provider"]) == ("gpt-4o-mini", "fake")
    assert server.requests[-1].json["model"] == "gpt-4o-mini"

    unknown = run_batch(tmp_path, config, "refs.jsonl", "-m", "nowhere/x")
    assert unknown.returncode == 1
    assert "unknown provider instance 'nowhere'" in unknown.stderr

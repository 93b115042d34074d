"""``llmx batch --provider-batch`` end to end: the real CLI in a subprocess, the installed
OpenAI provider, and the fake OpenAI server's Files and Batch API (in a thread of the
test process), which validates every upload and create against OpenAI's schema.

The promise checked everywhere: every input id ends up in the results file exactly
once, and the fake saw exactly one create per chunk, whatever happened to the process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmx.testing import ErrorReply, Reply, ReplyItem
from llmx.testing._server import RecordedRequest
from llmx_openai.testing import FakeAzureOpenAIServer, FakeOpenAIServer


class Server(FakeOpenAIServer):
    """The fake OpenAI server answering the prompts in ``faults`` with their fault."""

    def __init__(self) -> None:
        super().__init__()
        self.faults: dict[str, ReplyItem] = {}

    def default_reply(self, recorded: RecordedRequest) -> ReplyItem:
        reply = super().default_reply(recorded)
        if isinstance(reply, Reply):
            reply = self.faults.get(reply.text, reply)
        return reply

    def chat_prompts(self) -> Counter[str]:
        """The prompts sent as normal chat calls (not through a batch)."""
        return Counter(
            str(r.json["messages"][-1]["content"])
            for r in self.requests
            if r.path == "/v1/chat/completions"
        )

    def creates(self) -> int:
        return sum(1 for r in self.requests if r.path == "/v1/batches" and r.method == "POST")


@pytest.fixture
def server() -> Iterator[Server]:
    with Server().in_thread() as srv:
        yield srv


@pytest.fixture
def config(tmp_path: Path, server: Server) -> Path:
    path = tmp_path / "llmx.toml"
    path.write_text(
        f'[providers.fake]\ntype = "openai"\nbase_url = "{server.base_url}"\napi_key = "test-key"\n'
        f'[providers.resp]\ntype = "openai-responses"\nbase_url = "{server.base_url}"\n'
        'api_key = "test-key"\n'
    )
    return path


def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    out["XDG_CONFIG_HOME"] = str(tmp_path / ".config")
    return out


def args(config: Path, *more: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "llmx",
        "--config",
        str(config),
        "batch",
        "in.jsonl",
        "--provider-batch",
        "--poll-interval",
        "0.01",
        "-m",
        "fake/gpt-4o-mini",
        *more,
    ]


def run(tmp_path: Path, config: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args(config, *more),
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_requests(path: Path, count: int) -> list[str]:
    ids = [f"r{i}" for i in range(count)]
    path.write_text("".join(json.dumps({"id": i, "prompt": f"prompt of {i}"}) + "\n" for i in ids))
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
        assert (row["response"] is None) != (row["error"] is None)
        if row["response"] is not None:
            assert row["response"]["text"] == f"prompt of {row['custom_id']}"


def test_a_batch_with_partial_errors_then_retry_failed_through_the_pipeline(
    tmp_path: Path, server: Server, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 120)
    server.faults["prompt of r7"] = ErrorReply(400, message="bad r7")
    server.faults["prompt of r50"] = ErrorReply(500)
    out = tmp_path / "in.results.jsonl"

    first = run(tmp_path, config)

    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    assert [r["custom_id"] for r in rows] == ids  # input order
    errors = {r["custom_id"]: r["error"] for r in rows if r["error"] is not None}
    assert set(errors) == {"r7", "r50"}
    assert (errors["r7"]["type"], errors["r7"]["status"], errors["r7"]["message"]) == (
        "BadRequestError",
        400,
        "bad r7",
    )
    assert (errors["r50"]["type"], errors["r50"]["retryable"]) == ("ServerError", True)
    ok = next(r for r in rows if r["custom_id"] == "r0")["response"]
    assert ok["provider"] == "fake"
    assert ok["batch"]["price"] == "batch"  # genai-prices has gpt-4o-mini's batch prices
    assert ok["cost"] is not None
    assert ok["usage"]["input_tokens"] > 0
    # progress: counts per state, on stderr
    assert "validating" not in first.stderr or "in_progress" in first.stderr
    assert "completed (total 120, completed 118, failed 2)" in first.stderr
    assert "118 ok, 2 failed" in first.stderr
    assert "at batch prices" in first.stderr
    assert server.creates() == 1
    assert server.chat_prompts() == Counter()  # nothing went through the normal path
    assert not (tmp_path / "in.results.jsonl.batch-state.json").exists()

    server.faults.clear()
    again = run(tmp_path, config, "--retry-failed")
    assert again.returncode == 0, again.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    assert all(r["error"] is None for r in rows)
    assert server.chat_prompts() == Counter({"prompt of r7": 1, "prompt of r50": 1})
    assert server.creates() == 1  # the retry did not submit another batch


STAGES: dict[str, Callable[[Server, Path], bool]] = {
    # the file is uploaded, its answer held: the client never learnt its id
    "upload": lambda s, out: len(s.files) == 1,
    # the batch is created, the answer held: the client does not know its id
    "create": lambda s, out: s.batch_creates == 1,
    # polling: the id is recorded, the client waits on a poll
    "poll": lambda s, out: any(r.path.startswith("/v1/batches/batch") for r in s.requests),
    # half the results are written, the rest of the download is held
    "results": lambda s, out: out.exists() and out.read_bytes().count(b"\n") >= 10,
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_at_each_stage_then_rerun_creates_each_batch_once(
    tmp_path: Path, server: Server, config: Path, stage: str
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 40)
    out = tmp_path / "in.results.jsonl"
    server.batch_hold[stage] = 60.0
    proc = subprocess.Popen(
        args(config, "-q"),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not STAGES[stage](server, out):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"never reached {stage}"
        time.sleep(0.01)
    time.sleep(0.05)  # whatever the client does next, it does while held
    proc.kill()
    proc.wait(timeout=10)
    proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    state = tmp_path / "in.results.jsonl.batch-state.json"
    assert state.exists()
    written = results(out) if out.exists() else []
    if stage == "results":
        assert 10 <= len(written) < 40

    server.batch_hold.clear()
    rerun = run(tmp_path, config)

    assert rerun.returncode == 0, rerun.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    assert [r["custom_id"] for r in rows] == ids
    assert server.creates() == 1, "a batch was created twice"
    assert server.batch_creates == 1
    if stage == "create":
        assert "not creating it again" in rerun.stderr
    if stage in ("poll", "results"):
        assert len(server.files) == 1 + 1  # the input file, the output file: no new upload
    assert server.chat_prompts() == Counter()
    assert not state.exists()


def test_expired_batch_with_partial_answers_then_retry_failed(
    tmp_path: Path, server: Server, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 10)
    server.batch_lifecycle = ("validating", "in_progress", "expired")
    server.batch_answer_before_end = 4
    out = tmp_path / "in.results.jsonl"

    first = run(tmp_path, config, "-q")

    assert first.returncode == 1, first.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    errors = {r["custom_id"]: r["error"] for r in rows if r["error"]}
    assert sorted(errors) == sorted(ids[4:])
    for error in errors.values():
        assert (error["type"], error["code"], error["retryable"]) == (
            "ProviderTimeoutError",
            "batch_expired",
            True,
        )
    assert "re-run with --retry-failed" in first.stderr

    retried = run(tmp_path, config, "-q", "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert_exactly_once(results(out), ids)
    assert set(server.chat_prompts()) == {f"prompt of {i}" for i in ids[4:]}
    assert server.creates() == 1


def test_timeout_leaves_the_batch_running_and_cancel_ends_it(
    tmp_path: Path, server: Server, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 6)
    server.batch_lifecycle = ("validating", *["in_progress"] * 10_000, "completed")
    out = tmp_path / "in.results.jsonl"

    waited = run(tmp_path, config, "--timeout", "0.3")

    assert waited.returncode == 75, waited.stderr
    assert "6 waiting on running batches" in waited.stderr
    assert "resume polling" in waited.stderr
    state = json.loads((tmp_path / "in.results.jsonl.batch-state.json").read_text())
    assert [c["job"]["id"] for c in state["chunks"]] == ["batch_fake000001"]
    assert not out.exists() or results(out) == []

    cancelled = run(tmp_path, config, "--cancel")

    assert cancelled.returncode == 1, cancelled.stderr
    assert "cancelling batch batch_fake000001" in cancelled.stderr
    rows = results(out)
    assert_exactly_once(rows, ids)
    assert {(r["error"]["type"], r["error"]["code"]) for r in rows} == {
        ("ProviderError", "batch_canceled")
    }
    assert server.creates() == 1


def test_a_batch_that_fails_validation_types_every_id(
    tmp_path: Path, server: Server, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 5)
    server.batch_failure = "the input file is not valid"

    result = run(tmp_path, config, "-q")

    assert result.returncode == 1
    rows = results(tmp_path / "in.results.jsonl")
    assert_exactly_once(rows, ids)
    for row in rows:
        assert row["error"]["type"] == "BadRequestError"
        assert row["error"]["code"] == "batch_failed"
        assert "the input file is not valid" in row["error"]["message"]


def test_a_provider_without_a_batch_api_is_refused_before_anything_is_sent(
    tmp_path: Path, server: Server, config: Path
) -> None:
    write_requests(tmp_path / "in.jsonl", 3)
    cmd = args(config, "-q")
    cmd[cmd.index("fake/gpt-4o-mini")] = "resp/gpt-4o-mini"
    result = subprocess.run(
        cmd, cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "llmx: error: provider instance 'resp' (type 'openai-responses') has no"
    )
    assert "resp/gpt-4o-mini" in result.stderr
    assert "Traceback" not in result.stderr
    assert server.requests == []
    assert not (tmp_path / "in.results.jsonl.batch-state.json").exists()


def test_sigint_while_polling_stops_and_a_rerun_resumes(
    tmp_path: Path, server: Server, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 8)
    server.batch_lifecycle = ("validating", *["in_progress"] * 20, "completed")
    proc = subprocess.Popen(
        args(config), cwd=tmp_path, env=env(tmp_path), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not any(r.path.startswith("/v1/batches/batch") for r in server.requests):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "the batches keep running at the provider" in stderr

    resumed = run(tmp_path, config, "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert_exactly_once(results(tmp_path / "in.results.jsonl"), ids)
    assert server.creates() == 1


def _other_vendor_config(tmp_path: Path, vendor: str, base_url: str) -> Path:
    path = tmp_path / "llmx.toml"
    path.write_text(
        f'[providers.fake]\ntype = "{vendor}"\nbase_url = "{base_url}"\napi_key = "test-key"\n'
    )
    return path


@pytest.mark.parametrize("vendor", ["anthropic", "gemini"])
@pytest.mark.parametrize("stage", ["create", "poll", "results"])
def test_sigkill_at_each_stage_anthropic_and_gemini(
    tmp_path: Path, vendor: str, stage: str
) -> None:
    """The same kills for the APIs without an upload: after the create (its answer held:
    Anthropic's batch is found by its time and size, Gemini's by its display name), while
    polling, while the results are read."""
    from llmx_anthropic.testing import FakeAnthropicServer
    from llmx_gemini.testing import FakeGeminiServer

    fake: Any = FakeAnthropicServer if vendor == "anthropic" else FakeGeminiServer
    model = "claude-sonnet-4-5" if vendor == "anthropic" else "gemini-2.5-flash"
    ids = write_requests(tmp_path / "in.jsonl", 30)
    out = tmp_path / "in.results.jsonl"
    with fake().in_thread() as server:
        config = _other_vendor_config(tmp_path, vendor, server.base_url)
        reached: dict[str, Callable[[], bool]] = {
            "create": lambda: server.batch_creates == 1,
            "poll": lambda: any(b.step >= 1 for b in server.batches.values()),
            "results": lambda: (
                any(b.outcomes is not None for b in server.batches.values())
                and len([r for r in server.requests if r.method == "GET"]) >= 3
            ),
        }
        server.batch_hold[stage] = 60.0
        cmd = args(config, "-q")
        cmd[cmd.index("fake/gpt-4o-mini")] = f"fake/{model}"
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while not reached[stage]():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"never reached {stage}"
            time.sleep(0.01)
        time.sleep(0.1)
        proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()  # type: ignore[union-attr]
        assert (tmp_path / "in.results.jsonl.batch-state.json").exists()

        server.batch_hold.clear()
        rerun = subprocess.run(
            cmd, cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr
        rows = results(out)
        assert_exactly_once(rows, ids)
        assert server.batch_creates == 1, "a batch was created twice"
        normal_calls = [
            r
            for r in server.requests
            if r.method == "POST" and r.path.endswith(("/v1/messages", ":generateContent"))
        ]
        assert normal_calls == []  # everything went through the batch


def test_timeout_and_cancel_need_provider_batch(tmp_path: Path, config: Path) -> None:
    write_requests(tmp_path / "in.jsonl", 1)
    cmd = [sys.executable, "-m", "llmx", "--config", str(config), "batch", "in.jsonl", "--cancel"]
    result = subprocess.run(
        cmd, cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "--timeout and --cancel apply to --provider-batch only" in result.stderr


# -- Azure OpenAI: the same API under /openai with api-version -------------------------------


class AzureServer(FakeAzureOpenAIServer):
    """The fake Azure resource answering the prompts in ``faults`` with their fault."""

    def __init__(self) -> None:
        super().__init__(deployments=["gpt-4o-mini"])
        self.faults: dict[str, ReplyItem] = {}

    def default_reply(self, recorded: RecordedRequest) -> ReplyItem:
        reply = super().default_reply(recorded)
        if isinstance(reply, Reply):
            reply = self.faults.get(reply.text, reply)
        return reply


def _azure_config(tmp_path: Path, server: AzureServer, api_version: str = "2024-10-21") -> Path:
    path = tmp_path / "llmx.toml"
    path.write_text(
        f'[providers.fake]\ntype = "azure"\nbase_url = "{server.base_url}"\n'
        f'api_key = "test-key"\napi_version = "{api_version}"\n'
    )
    return path


def test_azure_batch_then_retry_failed_through_the_deployment(tmp_path: Path) -> None:
    """Azure's batch API end to end: files and batches under /openai with api-version,
    lines to /chat/completions naming the deployment; a failed id retried as a normal
    call to the deployment's URL."""
    ids = write_requests(tmp_path / "in.jsonl", 12)
    with AzureServer().in_thread() as server:
        server.faults["prompt of r3"] = ErrorReply(400, message="bad r3")
        config = _azure_config(tmp_path, server)
        first = run(tmp_path, config)
        assert first.returncode == 1, first.stderr
        assert "Traceback" not in first.stderr
        rows = results(tmp_path / "in.results.jsonl")
        assert_exactly_once(rows, ids)
        errors = {r["custom_id"]: r["error"] for r in rows if r["error"] is not None}
        assert list(errors) == ["r3"]
        assert (errors["r3"]["type"], errors["r3"]["message"]) == ("BadRequestError", "bad r3")
        ok = rows[0]["response"]
        assert (ok["provider"], ok["batch"]["price"]) == ("fake", "batch")
        assert server.errors == []  # every upload and create matched Azure's schemas
        paths = {(r.method, r.path.split("/batch_")[0]) for r in server.requests}
        assert ("POST", "/openai/files") in paths
        assert ("POST", "/openai/batches") in paths
        assert all(r.query.get("api-version") == "2024-10-21" for r in server.requests)
        upload = next(r for r in server.requests if r.path == "/openai/files")
        assert b'"url":"/chat/completions"' in upload.body
        assert b'"model":"gpt-4o-mini"' in upload.body

        server.faults.clear()
        again = run(tmp_path, config, "--retry-failed")
        assert again.returncode == 0, again.stderr
        assert_exactly_once(results(tmp_path / "in.results.jsonl"), ids)
        chat = [r for r in server.requests if r.path.endswith("/chat/completions")]
        assert [r.path for r in chat] == ["/openai/deployments/gpt-4o-mini/chat/completions"]
        assert server.batch_creates == 1


@pytest.mark.parametrize("stage", ["upload", "create", "poll", "results"])
def test_azure_sigkill_at_each_stage_then_rerun_creates_each_batch_once(
    tmp_path: Path, stage: str
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 30)
    out = tmp_path / "in.results.jsonl"
    with AzureServer().in_thread() as server:
        config = _azure_config(tmp_path, server)
        reached: dict[str, Callable[[], bool]] = {
            "upload": lambda: len(server.files) == 1,
            "create": lambda: server.batch_creates == 1,
            "poll": lambda: any(b.step >= 1 for b in server.batches.values()),
            "results": lambda: out.exists() and out.read_bytes().count(b"\n") >= 5,
        }
        server.batch_hold[stage] = 60.0
        proc = subprocess.Popen(
            args(config, "-q"),
            cwd=tmp_path,
            env=env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not reached[stage]():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"never reached {stage}"
            time.sleep(0.01)
        time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()  # type: ignore[union-attr]
        assert (tmp_path / "in.results.jsonl.batch-state.json").exists()

        server.batch_hold.clear()
        rerun = run(tmp_path, config)
        assert rerun.returncode == 0, rerun.stderr
        assert_exactly_once(results(out), ids)
        assert server.batch_creates == 1, "a batch was created twice"
        if stage in ("poll", "results"):
            assert len(server.files) == 1 + 1  # the input and the output file: no new upload
        assert not any(r.path.endswith("/chat/completions") for r in server.requests)


def test_azure_api_version_without_batches_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 3)
    with AzureServer().in_thread() as server:
        result = run(tmp_path, _azure_config(tmp_path, server, "2024-06-01"))
        assert server.requests == []
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    rows = results(tmp_path / "in.results.jsonl")
    assert_exactly_once(rows, ids)
    for row in rows:
        assert row["error"]["type"] == "UnsupportedFeatureError"
        assert 'set api_version = "2024-10-21"' in row["error"]["message"]

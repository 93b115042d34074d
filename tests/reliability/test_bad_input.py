"""Reliability: bad input loses nothing (issue 14, defects 7 to 10).

The real CLI in a subprocess, the installed OpenAI provider and the fake OpenAI server
on 127.0.0.1; real kernel faults (a file size limit set with ``RLIMIT_FSIZE`` makes
``write`` fail with ``EFBIG`` mid-run, ``/dev/full``, pipes closed by their reader).
Each test prints its figures (run with ``-s``) so a regression shows as a number.

* lone surrogates in an answer or an id: escaped in result files and ``--json``,
  U+FFFD with one warning on a terminal; a re-run does not ask again;
* malformed batch lines: skipped with line number and reason, the rest run;
* write failures: a clean stop, exit 74, whole lines only, the resume runs each id
  exactly once; special files refused at start, without reading them;
* config files that cannot be read or parsed: one ``llmx: error:`` line naming the
  file and position from every command, help still prints with a one-line warning.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmx.testing import RawReply, Reply
from tests.test_batch_cli import BatchServer, assert_exactly_once, env, results, write_requests

LLMX = [sys.executable, "-m", "llmx"]


@pytest.fixture
def server() -> Iterator[BatchServer]:
    """The fake OpenAI server (echoing each prompt) in a background thread."""
    with BatchServer().in_thread() as srv:
        yield srv


@pytest.fixture
def config(tmp_path: Path, server: BatchServer) -> Path:
    """An ``llmx.toml`` with the instance ``fake`` (type ``openai``) at the server."""
    path = tmp_path / "llmx.toml"
    path.write_text(
        f'default_model = "fake/m"\n[providers.fake]\ntype = "openai"\n'
        f'base_url = "{server.base_url}"\napi_key = "test-key"\n'
    )
    return path


def llmx(
    tmp_path: Path, *args: str, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m llmx ARGS`` in ``tmp_path``; never hangs past ``timeout``."""
    if "stdout" in kwargs:
        kwargs.setdefault("stderr", subprocess.PIPE)
    else:
        kwargs["capture_output"] = True
    return subprocess.run(
        [*LLMX, *args],
        cwd=tmp_path,
        env=env(tmp_path),
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def shell(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a bash pipeline (an llmx command with a reader that goes away, or stderr
    redirected) in ``tmp_path``; its output captured."""
    return subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def peak_rss_mb(cmd: list[str], cwd: Path, timeout: float = 60) -> tuple[int, float, str]:
    """Run ``cmd``; its exit status, its peak RSS in MB (``wait4``) and its stderr."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    peak_kb = 0
    while True:
        # VmHWM, the peak RSS of the process's own memory since its exec, read while it
        # runs: wait4's ru_maxrss would also count the parent's memory at the fork,
        # which after a long test session is hundreds of MB.
        peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"{cmd} did not end within {timeout} s")
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.returncode, peak_kb / 1024, stderr


def _vm_hwm_kb(pid: int) -> int:
    """The VmHWM of a running process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def chat_json(text: str) -> RawReply:
    """A chat completion whose text is ``text`` (lone surrogates sent as JSON escapes,
    as a real upstream would: the bytes are valid UTF-8)."""
    body = {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return RawReply(200, json.dumps(body))


def chat_sse(chunks: list[str]) -> RawReply:
    """A streamed chat completion sending ``chunks`` as its deltas, one event each."""
    events = [
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}],
        }
        for c in chunks
    ]
    events.append(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return RawReply(200, body, content_type="text/event-stream")


def no_crash(result: subprocess.CompletedProcess[str]) -> None:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    assert "internal error" not in text, text


# -- 7: lone surrogates ------------------------------------------------------------------------


def test_a_lone_surrogate_in_an_answer_or_an_id_is_written_escaped_and_not_asked_again(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    half = "\ud83d"
    server.faults["prompt of r1"] = chat_json(f"half an emoji: {half}!")
    ids = write_requests(tmp_path / "in.jsonl", 20)
    with (tmp_path / "in.jsonl").open("a") as f:  # an id with a lone surrogate (JSON-escaped)
        f.write(json.dumps({"id": f"id-{half}", "prompt": "prompt of odd id"}) + "\n")
    out = tmp_path / "out.jsonl"
    first = llmx(tmp_path, "--config", str(config), "batch", "in.jsonl", "-o", str(out), "-q")
    no_crash(first)
    assert first.returncode == 0, first.stderr
    rows = results(out)
    by_id = {r["id"]: r for r in rows}
    assert by_id["r1"]["response"]["text"] == f"half an emoji: {half}!"
    assert by_id[f"id-{half}"]["response"]["text"] == "prompt of odd id"
    raw = out.read_bytes()
    assert b"\\ud83d" in raw
    raw.decode("utf-8")  # valid UTF-8 throughout

    again = llmx(tmp_path, "--config", str(config), "batch", "in.jsonl", "-o", str(out), "-q")
    assert again.returncode == 0, again.stderr
    asked = server.prompts()
    assert asked["prompt of r1"] == 1
    assert asked["prompt of odd id"] == 1
    assert sorted(r["id"] for r in results(out)) == sorted([*ids, f"id-{half}"])
    print(
        f"\n[bad-input] surrogates: 2 answers written escaped; re-run asked again: 0 (of {len(rows)})"
    )


def test_unicode_text_stays_readable_in_the_results_file(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "a", "prompt": "café 😀"}) + "\n")
    out = tmp_path / "out.jsonl"
    result = llmx(tmp_path, "--config", str(config), "batch", "in.jsonl", "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert "café 😀" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("mode", ["stream", "no-stream", "json"])
def test_chat_prints_a_lone_surrogate_as_a_replacement_with_one_warning(
    tmp_path: Path, server: BatchServer, config: Path, mode: str
) -> None:
    text = "a\ud83db\ud83dc\ud83d\ude00"
    server.faults["hi"] = chat_sse(list(text)) if mode == "stream" else chat_json(text)
    flags = {"stream": [], "no-stream": ["--no-stream"], "json": ["--json"]}[mode]
    result = llmx(tmp_path, "--config", str(config), "chat", *flags, "hi")
    no_crash(result)
    assert result.returncode == 0, result.stderr
    if mode == "json":
        assert json.loads(result.stdout)["text"] == "a\ud83db\ud83dc😀"  # JSON joined the pair
        assert result.stderr == ""
    else:
        # the pair split across stream chunks is joined back into one emoji
        assert result.stdout == "a\ufffdb\ufffdc😀\n"
        assert result.stderr.count("llmx: warning:") == 1
        assert "cannot be printed" in result.stderr


def test_chat_whose_reader_goes_away_exits_quietly(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    server.faults["hi"] = Reply("x" * 200_000, chunk_size=1000)
    cmd = " ".join([*LLMX, "--config", str(config), "chat", "hi"])
    proc = shell(f"{cmd} | head -c 10; echo status=${{PIPESTATUS[0]}} >&2", tmp_path)
    assert proc.stdout == "x" * 10
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert "status=141" in proc.stderr


@pytest.mark.parametrize("flags", [[], ["--no-stream"], ["--json"]])
def test_chat_to_a_full_disk_is_one_clear_error(
    tmp_path: Path, server: BatchServer, config: Path, flags: list[str]
) -> None:
    with open("/dev/full", "w") as full:
        result = llmx(tmp_path, "--config", str(config), "chat", *flags, "hi", stdout=full)
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert result.returncode == 74, result.stderr
    assert result.stderr.startswith("llmx: error: cannot write standard output: No space left")


# -- 8: malformed batch lines --------------------------------------------------------------------

MALFORMED = [
    ({"id": "m1", "messages": [{"role": [], "content": "x"}]}, "role must be a string"),
    (
        {"id": "m2", "messages": [{"role": "assistant", "content": "x", "tool_calls": 5}]},
        "tool_calls must be a list",
    ),
    ({"id": "m3", "messages": [{"role": {"a": 1}, "content": "x"}]}, "role must be a string"),
    (
        {
            "custom_id": "m4",
            "body": {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}],
            },
        },
        "'parameters' must be a JSON Schema object",
    ),
    (
        {
            "id": "m5",
            "messages": [{"role": "tool", "tool_call_id": "c", "content": "x", "name": 3}],
        },
        "name must be a string",
    ),
    ("[" * 100_000, "nested too deeply"),
]


def test_every_malformed_line_is_skipped_with_its_number_and_reason_and_the_rest_run(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    lines: list[str] = []
    good: list[str] = []
    for i, (bad, _) in enumerate(MALFORMED):
        good.append(f"g{i}")
        lines.append(json.dumps({"id": f"g{i}", "prompt": f"prompt of g{i}"}))
        lines.append(bad if isinstance(bad, str) else json.dumps(bad))
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    result = llmx(tmp_path, "--config", str(config), "batch", "in.jsonl", "-o", str(out), "-q")
    no_crash(result)
    assert result.returncode == 1, result.stderr  # lines were skipped
    assert_exactly_once(results(out), good)
    for i, (_, reason) in enumerate(MALFORMED):
        line = 2 * i + 2
        assert f"line {line}: " in result.stderr
        [warning] = [w for w in result.stderr.splitlines() if f"line {line}: " in w]
        assert reason in warning, warning
        assert warning.endswith("(skipped)"), warning

    strict = llmx(
        tmp_path, "--config", str(config), "batch", "in.jsonl", "-o", "strict.jsonl", "--strict"
    )
    no_crash(strict)
    assert strict.returncode == 1
    assert "line 2: " in strict.stderr
    assert "(--strict)" in strict.stderr
    assert not (tmp_path / "strict.jsonl").exists()
    print(
        f"\n[bad-input] malformed lines: {len(MALFORMED)} skipped (each named), "
        f"{len(good)} run; --strict ran 0"
    )


# -- 9: write failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/dev/full", "/dev/null", "/dev/zero", "fifo"])
def test_a_special_results_file_is_refused_at_start_without_reading_it(
    tmp_path: Path, server: BatchServer, config: Path, target: str
) -> None:
    write_requests(tmp_path / "in.jsonl", 5)
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
    cmd = [*LLMX, "--config", str(config), "batch", "in.jsonl", "-o", target, "-q"]
    status, rss, stderr = peak_rss_mb(cmd, tmp_path, timeout=30)
    assert "Traceback" not in stderr
    assert "internal error" not in stderr
    assert status == 1, stderr
    assert stderr.startswith("llmx: error: the results file")
    assert "not a regular file" in stderr
    assert "-o FILE" in stderr
    assert server.prompts() == {}  # nothing ran
    assert rss < 200, f"peak RSS {rss:.0f} MB"
    print(f"\n[bad-input] -o {target}: refused at start, peak RSS {rss:.0f} MB, 0 requests")


def test_a_directory_as_the_results_file_is_a_usage_error(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    write_requests(tmp_path / "in.jsonl", 5)
    (tmp_path / "dir").mkdir()
    result = llmx(tmp_path, "--config", str(config), "batch", "in.jsonl", "-o", "dir")
    no_crash(result)
    assert result.returncode == 2
    assert "is a directory" in result.stderr
    assert server.prompts() == {}


def test_stdout_as_the_results_file_through_a_pipe_is_refused_not_hung(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    write_requests(tmp_path / "in.jsonl", 5)
    cmd = " ".join([*LLMX, "--config", str(config), "batch", "in.jsonl", "-o", "/dev/stdout"])
    started = time.monotonic()
    for reader in ("cat", "head -c 10"):
        proc = shell(f"{cmd} | {reader}; echo status=${{PIPESTATUS[0]}} >&2", tmp_path)
        assert "is a pipe, not a regular file" in proc.stderr
        assert "status=1" in proc.stderr
    assert server.prompts() == {}
    print(
        f"\n[bad-input] -o /dev/stdout | cat: refused in {time.monotonic() - started:.1f} s (2 runs)"
    )


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_write_failure_mid_run_stops_cleanly_and_the_resume_runs_each_id_exactly_once(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 300)
    server.delay = 0.005
    out = tmp_path / "out.jsonl"
    limit = 60 * 1024  # room for about 100 result lines, then write() fails with EFBIG
    first = subprocess.run(
        [*LLMX, "--config", str(config), "batch", "in.jsonl", "-o", str(out), "-q", "-c", "8"],
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: _limit_file_size(limit),
    )
    no_crash(first)
    assert first.returncode == 74, first.stderr
    assert "llmx: error: cannot write the results file" in first.stderr
    assert "File too large" in first.stderr
    written = results(out)  # whole lines only
    assert 0 < len(written) < len(ids)
    assert len({r["id"] for r in written}) == len(written)
    asked_first = sum(server.prompts().values())

    second = llmx(tmp_path, "--config", str(config), "batch", "in.jsonl", "-o", str(out), "-q")
    assert second.returncode == 0, second.stderr
    assert_exactly_once(results(out), ids)
    asked = server.prompts()
    asked_twice = sorted(p for p, n in asked.items() if n > 1)
    for row in written:  # what was written is never asked again
        assert asked[f"prompt of {row['id']}"] == 1
    print(
        f"\n[bad-input] EFBIG mid-run: {len(written)} of {len(ids)} results written before "
        f"the stop (exit 74), {asked_first} asked in the first run, {len(asked_twice)} asked "
        f"again on resume (in flight or unwritten at the failure), every id exactly once "
        f"after the resume"
    )


def test_standard_error_closed_by_its_reader_does_not_stop_or_break_the_batch(
    tmp_path: Path, server: BatchServer, config: Path
) -> None:
    ids = write_requests(tmp_path / "in.jsonl", 50)
    with (tmp_path / "in.jsonl").open("a") as f:
        f.write("not json\n" * 30)  # 30 warnings on standard error
    out = tmp_path / "out.jsonl"
    cmd = " ".join([*LLMX, "--config", str(config), "batch", "in.jsonl", "-o", str(out)])
    proc = shell(
        f"{cmd} 2>&1 >/dev/null | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}", tmp_path
    )
    assert proc.stdout.strip() == "1"  # lines were skipped: 1, not a crash
    assert_exactly_once(results(out), ids)


# -- 10: config files that cannot be read or parsed --------------------------------------------

BAD_CONFIGS = {
    "latin1": (b'# caf\xe9\ndefault_model = "a/b"\n', "line 1, column 6"),
    "deep": (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "line 1, column 69"),
    "dotted": (b"[x." + b".".join([b"y"] * 5000) + b"]\n", "@ $.x.y.y"),
    "invalid": (b"[providers\n", "line 1, column 11"),
}
COMMANDS = [
    ["config", "check"],
    ["models"],
    ["plugins"],
    ["chat", "-m", "a/b", "hi"],
    ["health"],
    ["batch", "in.jsonl"],
]


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_a_config_that_cannot_be_parsed_is_one_clear_line_from_every_command(
    tmp_path: Path, name: str
) -> None:
    content, position = BAD_CONFIGS[name]
    (tmp_path / "llmx.toml").write_bytes(content)
    write_requests(tmp_path / "in.jsonl", 1)
    helped = llmx(tmp_path, "--help")
    no_crash(helped)
    assert helped.returncode == 0
    assert "Commands:" in helped.stdout
    assert helped.stderr.count("\n") == 1
    assert helped.stderr.startswith("llmx: warning:")
    assert "llmx.toml" in helped.stderr
    assert position in helped.stderr
    for command in COMMANDS:
        result = llmx(tmp_path, *command)
        no_crash(result)
        text = result.stderr
        if command == ["plugins"]:  # lists plugins anyway, warning about the config
            assert result.returncode == 0, text
            assert "config ignored" in text, text
        else:
            assert result.returncode == 1, (command, text)
            assert text.startswith("llmx: error: "), (command, text)
        assert "llmx.toml" in text, (command, text)
        assert position in text, (command, text)
    print(
        f"\n[bad-input] config {name}: --help + {len(COMMANDS)} commands, 0 tracebacks, "
        f"each names the file and {position!r}"
    )
    explicit = llmx(tmp_path, "--config", "llmx.toml", "--help")
    assert explicit.returncode == 0
    assert position in explicit.stderr


def test_an_unreadable_config_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "llmx.toml"
    path.write_text('default_model = "a/b"\n')
    path.chmod(0o000)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads any file: drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv(1): cannot make a file unreadable")
        caps = "-dac_override,-dac_read_search"
        prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
    probe = subprocess.run([*prefix, "cat", str(path)], capture_output=True, check=False)
    assert probe.returncode != 0, "the file must be unreadable for the test's user"
    for args in (["config", "check"], ["models"], ["--help"]):
        result = subprocess.run(
            [*prefix, *LLMX, "--config", str(path), *args],
            cwd=tmp_path,
            env=env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        no_crash(result)
        assert "permission denied" in result.stderr, result
        assert str(path) in result.stderr, result
        assert result.returncode == (0 if args == ["--help"] else 1)


def test_a_directory_as_the_config_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    checked = llmx(tmp_path, "--config", "conf", "config", "check")
    no_crash(checked)
    assert checked.returncode == 1
    assert checked.stderr.startswith("llmx: error: config file 'conf' is a directory")
    helped = llmx(tmp_path, "--config", "conf", "--help")
    assert helped.returncode == 0
    assert "Commands:" in helped.stdout
    assert helped.stderr.startswith("llmx: warning:")
    assert "is a directory" in helped.stderr

"""``llmx chat`` writing the request log, ``llmx logs``, ``llmx stats``, conversations
(``-c``, ``--cid``) and the interactive chat in a real pseudo-terminal, against a fake
OpenAI server on 127.0.0.1 (a provider is configured, so the local-model fallback never
answers)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmx.testing import Reply
from llmx_openai.testing import FakeOpenAIServer

KEY = "sk-requestlog-cli-CANARY-0123456789"
MODEL = "main/gpt-4o-mini"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key=KEY).in_thread() as fake:
        yield fake


@pytest.fixture
def home(tmp_path: Path, server: FakeOpenAIServer) -> Path:
    """A working directory with an llmx.toml naming the fake; its own XDG dirs."""
    server.clear()
    (tmp_path / "llmx.toml").write_text(
        "[providers.main]\n"
        'type = "openai"\n'
        f'base_url = "{server.base_url}"\n'
        'api_key = { env = "REQUESTLOG_CLI_KEY" }\n'
        "retry = { attempts = 1 }\n"
    )
    return tmp_path


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMX_", "OPENAI_"))}
    env["REQUESTLOG_CLI_KEY"] = KEY
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["XDG_DATA_HOME"] = str(home / ".data")
    return env


def llmx(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=home,
        env=env_for(home),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def logged(home: Path, *args: str) -> list[dict[str, object]]:
    data = json.loads(ok(llmx(home, "logs", "--json", "-n", "0", *args)))
    assert isinstance(data, list)
    return data


def test_chat_logs_by_default_and_no_log_skips(home: Path) -> None:
    assert ok(llmx(home, "chat", "-m", MODEL, "hello penguin")).strip() == "hello penguin"
    ok(llmx(home, "chat", "-m", MODEL, "--no-log", "not this one"))
    rows = logged(home)
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == MODEL
    assert row["instance"] == "main"
    assert row["resolved_model"] == "gpt-4o-mini"
    assert row["prompt"] == "hello penguin"
    assert row["reply"] == "hello penguin"
    assert row["input_tokens"]
    assert row["output_tokens"]
    assert isinstance(row["cost"], float)
    assert row["cost"] > 0  # gpt-4o-mini's price is known
    assert isinstance(row["latency"], float)
    assert isinstance(row["conversation_id"], str)
    assert (home / ".data" / "llmx" / "logs.db").exists()
    assert ok(llmx(home, "logs", "path")).strip() == str(home / ".data" / "llmx" / "logs.db")


def test_config_can_turn_the_cli_log_off(home: Path) -> None:
    with (home / "llmx.toml").open("a") as f:
        f.write("[log]\nenabled = false\n")
    ok(llmx(home, "chat", "-m", MODEL, "hi"))
    assert not (home / ".data" / "llmx" / "logs.db").exists()
    result = llmx(home, "logs")
    assert result.returncode == 1
    assert result.stderr.startswith("llmx: error: no request log at")


def test_logs_filters_search_show_and_text(home: Path, server: FakeOpenAIServer) -> None:
    ok(llmx(home, "chat", "-m", MODEL, "the emperor penguin"))
    ok(llmx(home, "chat", "-m", MODEL, "a blue whale"))
    server.enqueue(server.error_for("bad_request"))
    failed = llmx(home, "chat", "-m", MODEL, "a refused question")
    assert failed.returncode == 1

    (error,) = logged(home, "--errors")
    assert error["error_type"] == "BadRequestError"
    assert error["prompt"] == "a refused question"
    assert error["reply"] is None

    assert [r["prompt"] for r in logged(home, "-q", "penguin")] == ["the emperor penguin"]
    assert [r["prompt"] for r in logged(home, "-q", 'whale"')] == [
        "a blue whale"
    ]  # not FTS5 syntax
    assert len(logged(home, "-m", "gpt-4o-mini")) >= 2
    assert logged(home, "-m", "other/x") == []
    assert len(logged(home, "--since", "1h")) >= 2
    assert logged(home, "--until", "2000-01-01") == []
    first = logged(home)[0]
    assert [r["id"] for r in logged(home, "--cid", str(first["conversation_id"]))] == [first["id"]]

    text = ok(llmx(home, "logs", "-n", "1"))
    assert "#" in text
    assert "gpt-4o-mini" in text
    shown = ok(llmx(home, "logs", "show", str(first["id"])))
    assert "the emperor penguin" in shown
    assert "--- user" in shown
    one = json.loads(ok(llmx(home, "logs", "show", "--json", str(first["id"]))))
    assert one["messages"][-1]["content"][0]["text"] == "the emperor penguin"
    missing = llmx(home, "logs", "show", "999")
    assert missing.returncode == 1
    assert "no request #999" in missing.stderr
    bad_date = llmx(home, "logs", "--since", "yesterday-ish")
    assert bad_date.returncode == 2
    assert "duration ago" in bad_date.stderr


def test_chat_continue_and_cid_send_the_earlier_messages(
    home: Path, server: FakeOpenAIServer
) -> None:
    ok(llmx(home, "chat", "-m", MODEL, "-s", "Be terse.", "My name is Ada."))
    ok(llmx(home, "chat", "-m", MODEL, "Another conversation."))
    first_cid = logged(home)[0]["conversation_id"]

    ok(llmx(home, "chat", "-c", "What did I say?"))  # the latest: 'Another conversation.'
    sent = server.model_requests[-1].json
    assert sent is not None
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("user", "Another conversation."),
        ("assistant", "Another conversation."),
        ("user", "What did I say?"),
    ]
    assert sent["model"] == "gpt-4o-mini"  # the conversation's model, without -m

    ok(llmx(home, "chat", "--cid", str(first_cid), "What is my name?"))
    sent = server.model_requests[-1].json
    assert sent is not None
    assert [m["content"] for m in sent["messages"]] == [
        "Be terse.",
        "My name is Ada.",
        "My name is Ada.",
        "What is my name?",
    ]
    rows = logged(home, "--cid", str(first_cid))
    assert len(rows) == 2  # the continuation joined the conversation

    unknown = llmx(home, "chat", "--cid", "nope", "hi")
    assert unknown.returncode == 1
    assert "no answered request in conversation 'nope'" in unknown.stderr


def test_continue_without_a_log_says_so(home: Path) -> None:
    result = llmx(home, "chat", "-c", "hi")
    assert result.returncode == 1
    assert "no request log" in result.stderr


def test_stats_table_and_json(home: Path, server: FakeOpenAIServer) -> None:
    for i in range(5):
        ok(llmx(home, "chat", "-m", MODEL, f"question {i}"))
    data = json.loads(ok(llmx(home, "stats", "--json")))
    (group,) = data["models"]
    assert group["instance"] == "main"
    assert group["model"] == "gpt-4o-mini"
    assert group["requests"] == 5
    assert group["errors"] == 0
    assert group["input_tokens"] > 0
    assert group["output_tokens"] > 0
    assert group["cost"] > 0
    assert 0 < group["latency_p50"] <= group["latency_p95"] <= group["latency_p99"]
    table = ok(llmx(home, "stats", "--since", "1h"))
    assert table.splitlines()[0].split()[:4] == ["INSTANCE", "MODEL", "REQUESTS", "ERRORS"]
    assert "gpt-4o-mini" in table
    assert json.loads(ok(llmx(home, "stats", "--json", "--until", "2000-01-01")))["models"] == []


def test_no_secret_in_the_log_and_purge_redact(home: Path, server: FakeOpenAIServer) -> None:
    ok(llmx(home, "chat", "-m", MODEL, f"my key is {KEY}"))  # echoed back by the fake
    ok(llmx(home, "chat", "-m", MODEL, "keep the whales"))
    ok(llmx(home, "chat", "-m", MODEL, "private penguin diary"))
    db = home / ".data" / "llmx" / "logs.db"

    def on_disk() -> bytes:
        return b"".join(
            Path(str(db) + s).read_bytes() for s in ("", "-wal") if Path(str(db) + s).exists()
        )

    assert KEY.encode() not in on_disk()
    assert logged(home, "-q", "key")[0]["reply"] == "my key is ***"

    refused = llmx(home, "logs", "purge")
    assert refused.returncode == 2
    assert "--all" in refused.stderr
    ok(llmx(home, "logs", "redact", "-q", "penguin"))
    (redacted,) = [r for r in logged(home) if r["reply"] == "[redacted]"]
    assert redacted["prompt"] is None
    assert redacted["output_tokens"]
    assert b"penguin diary" not in on_disk()
    ok(llmx(home, "logs", "purge", "-q", "whales"))
    assert [r["reply"] for r in logged(home)] == ["my key is ***", "[redacted]"]
    assert b"keep the whales" not in on_disk()
    ok(llmx(home, "logs", "purge", "--all"))
    assert logged(home) == []


# -- the interactive chat, in a pseudo-terminal ------------------------------------------


class Terminal:
    """``llmx chat`` on the slave side of a pty (its controlling terminal, so Ctrl-C
    and Ctrl-D go through the line discipline as a user's keys do)."""

    def __init__(self, home: Path, *args: str) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.output = b""

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        env = env_for(home)
        env["TERM"] = "dumb"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmx", *args],
            cwd=home,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=controlling_tty,
            close_fds=True,
        )
        os.close(slave)

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """Read until ``text`` appears after what earlier calls consumed."""
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                msg = f"{text!r} not seen; the terminal showed {self.output!r}"
                raise AssertionError(msg)
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    msg = f"{text!r} not seen before the end; the terminal showed {self.output!r}"
                    raise AssertionError(msg)
                self.output += chunk
        before, _, self.output = self.output.partition(needle)
        return before.decode(errors="replace")

    def send(self, data: str) -> None:
        os.write(self.master, data.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        os.close(self.master)


def test_interactive_chat_in_a_terminal(home: Path, server: FakeOpenAIServer) -> None:
    term = Terminal(home, "chat", "-m", MODEL)
    try:
        term.expect("Ctrl-D")
        term.expect("> ")
        term.send("hello there\r")
        term.expect("hello there")  # the typed line, echoed by the terminal
        term.expect("hello there")  # the answer
        term.expect("> ")

        # A slow answer, cancelled with Ctrl-C once it has started: the session goes on.
        server.enqueue(Reply("slow " * 200, chunk_size=5, chunk_delay=0.05))
        term.send("tell me a long story\r")
        term.expect("slow slow")
        term.send("\x03")
        term.expect("answer cancelled")
        term.expect("> ")

        term.send("second question\r")
        term.expect("second question")
        term.expect("second question")
        term.expect("> ")
        sent = server.model_requests[-1].json
        assert sent is not None
        assert [m["content"] for m in sent["messages"]] == [
            "hello there",
            "hello there",
            "second question",
        ]  # the cancelled exchange is not part of the conversation

        term.send("\x04")  # Ctrl-D: leave
        assert term.proc.wait(30) == 0
    finally:
        term.close()

    rows = logged(home)
    assert [r["prompt"] for r in rows] == ["hello there", "second question"]
    assert len({r["conversation_id"] for r in rows}) == 1
    history = home / ".data" / "llmx" / "chat_history"
    assert "second question" in history.read_text()


def test_interactive_chat_continues_a_conversation(home: Path, server: FakeOpenAIServer) -> None:
    ok(llmx(home, "chat", "-m", MODEL, "first words"))
    term = Terminal(home, "chat", "-c")
    try:
        term.expect("> ")
        term.send("and then\r")
        term.expect("and then")
        term.expect("and then")
        term.expect("> ")
        term.send("exit\r")
        assert term.proc.wait(30) == 0
    finally:
        term.close()
    sent = server.model_requests[-1].json
    assert sent is not None
    assert [m["content"] for m in sent["messages"]] == ["first words", "first words", "and then"]

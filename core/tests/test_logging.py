"""Logging (issue 16 item 1): one record per request end and per failed attempt (retry,
fallback, hedge, cooldown) and per breaker transition under ``llmx.*`` loggers, with
structured fields; the ``[logging]`` section; secrets and content never in the output;
the CLI's one human line per retry or fallback.

Real fake vendor servers on 127.0.0.1; the CLI runs as a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmx_anthropic.testing import FakeAnthropicServer

import llmx
from llmx import _logging
from llmx.testing import ErrorReply, Reply
from llmx_openai.testing import FakeOpenAIServer

KEY = "sk-CANARY-KEY-4b1d9e0c7a"
PROMPT = "CANARY-PROMPT-93f1 what is the secret plan"
FAST_RETRY = {"wait_initial": 0.001, "wait_max": 0.01, "wait_jitter": 0.0}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``llmx`` loggers from INFO, as an application's handler sees
    them (llmx installs nothing here)."""
    logger = logging.getLogger("llmx")
    handler = _Collect()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _config(openai: FakeOpenAIServer, anthropic: FakeAnthropicServer, **extra: Any) -> Any:
    return {
        "providers": {
            "openai": {"type": "openai", "base_url": openai.base_url, "api_key": KEY},
            "anthropic": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": KEY},
        },
        "aliases": {"smart": {"candidates": ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-6"]}},
        "retry": FAST_RETRY,
        **extra,
    }


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return _logging.fields_of(record)


def _by_event(records: list[logging.LogRecord], event: str) -> list[dict[str, Any]]:
    return [_fields(r) for r in records if getattr(r, "event", None) == event]


def test_import_logs_nothing_and_installs_no_handler() -> None:
    code = (
        "import logging, llmx\n"
        "c = llmx.Client({'providers': {'p': {'type': 'openai', 'api_key': 'x' * 8}}})\n"
        "assert logging.getLogger('llmx').handlers == [], logging.getLogger('llmx').handlers\n"
        "assert logging.getLogger().handlers == []\n"
        "assert logging.getLogger('llmx').level == logging.NOTSET\n"
        "assert logging.getLogger('llmx').propagate\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMX_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


async def test_a_retry_then_success_is_one_retry_record_and_one_request_record(
    records: list[logging.LogRecord],
) -> None:
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anthropic,
    ):
        openai.enqueue(ErrorReply(503), Reply("hello", usage=(11, 2)))
        async with llmx.Client(_config(openai, anthropic)) as client:
            response = await client.complete(model="openai/gpt-4o-mini", messages=PROMPT)
    assert response.text == "hello"
    (retry,) = _by_event(records, "retry")
    assert retry["instance"] == "openai"
    assert retry["model"] == "gpt-4o-mini"
    assert retry["attempt"] == 1
    assert retry["next_try"] == 2
    assert retry["tries"] == 3
    assert retry["error"] == "ServerError"
    assert retry["status"] == 503
    assert retry["latency"] > 0
    (end,) = _by_event(records, "request")
    assert end["request_id"] == retry["request_id"] != ""
    assert end["outcome"] == "ok"
    assert end["instance"] == "openai"
    assert end["attempts"] == 2
    assert (end["input_tokens"], end["output_tokens"]) == (11, 2)
    assert end["cost"] == response.cost
    assert end["latency"] > 0
    assert end["stream"] is False
    assert "messages" not in end
    assert "response" not in end
    retry_record = next(r for r in records if getattr(r, "event", None) == "retry")
    assert retry_record.name == "llmx.attempt"
    assert retry_record.levelno == logging.INFO
    assert retry_record.getMessage() == (
        "retrying openai/gpt-4o-mini after 503 ServerError (attempt 2 of 3)"
    )
    # No more than one record per failed attempt, none per successful one.
    assert len(records) == 2


async def test_retries_exhausted_then_fallback_then_a_stream(
    records: list[logging.LogRecord],
) -> None:
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anthropic,
    ):
        openai.enqueue(ErrorReply(503), ErrorReply(503), ErrorReply(503))
        anthropic.enqueue(Reply("from claude"))
        async with llmx.Client(_config(openai, anthropic)) as client:
            text = (await client.stream(model="smart", messages="hi").collect()).text
    assert text == "from claude"
    retries = _by_event(records, "retry")
    assert [r["next_try"] for r in retries] == [2, 3]  # none logged past the last try
    (fallback,) = _by_event(records, "fallback")
    assert fallback["instance"] == "openai"
    assert fallback["next"] == "anthropic/claude-sonnet-4-6"
    assert fallback["attempt"] == 3
    assert fallback["error"] == "ServerError"
    (end,) = _by_event(records, "request")
    assert end["outcome"] == "ok"
    assert end["instance"] == "anthropic"
    assert end["attempts"] == 4
    assert end["stream"] is True
    assert len({r["request_id"] for r in [*retries, fallback, end]}) == 1


async def test_a_failed_request_is_one_error_record(records: list[logging.LogRecord]) -> None:
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anthropic,
    ):
        openai.enqueue(ErrorReply(400, message="bad thing"))
        async with llmx.Client(_config(openai, anthropic)) as client:
            with pytest.raises(llmx.BadRequestError):
                await client.complete(model="openai/gpt-4o-mini", messages="hi")
    (end,) = _by_event(records, "request")
    assert end["outcome"] == "error"
    assert end["error"] == "BadRequestError"
    assert end["status"] == 400
    assert end["instance"] == "openai"
    assert end["model"] == "gpt-4o-mini"
    assert "bad thing" in end["error_message"]
    assert len(records) == 1


async def test_cooldown_breaker_and_hedge_records(records: list[logging.LogRecord]) -> None:
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anthropic,
    ):
        config = _config(
            openai,
            anthropic,
            breaker={"failure_threshold": 1, "cooldown": 60},
        )
        async with llmx.Client(config) as client:
            # A 429 with Retry-After: the next request waits it out (a cooldown).
            openai.enqueue(ErrorReply(429, headers={"retry-after": "0.2"}))
            with pytest.raises(llmx.RateLimitError):
                await client.complete(model="openai/gpt-4o-mini", messages="hi", timeout=0.1)
            await client.complete(model="openai/gpt-4o-mini", messages="hi")
            (cooldown,) = _by_event(records, "cooldown")
            assert cooldown["instance"] == "openai"
            assert 0 < cooldown["wait"] <= 0.2
            # A server error opens the breaker (threshold 1).
            openai.enqueue(ErrorReply(500), ErrorReply(500), ErrorReply(500))
            with pytest.raises(llmx.ServerError):
                await client.complete(model="openai/gpt-4o-mini", messages="hi")
    (breaker,) = _by_event(records, "breaker")
    assert (breaker["instance"], breaker["old"], breaker["new"]) == ("openai", "closed", "open")
    record = next(r for r in records if getattr(r, "event", None) == "breaker")
    assert record.name == "llmx.breaker"
    assert record.levelno == logging.WARNING


async def test_hedge_record(records: list[logging.LogRecord]) -> None:
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anthropic,
    ):
        config = _config(openai, anthropic)
        config["routing"] = {"strategy": "hedged", "delay": 0.05, "budget": 1.0}
        config["aliases"]["smart"]["strategy"] = "hedged"
        openai.enqueue(Reply("slow", delay=1.0))
        anthropic.enqueue(Reply("fast"))
        async with llmx.Client(config) as client:
            response = await client.complete(model="smart", messages="hi")
    assert response.text == "fast"
    (hedge,) = _by_event(records, "hedge")
    assert hedge["instance"] == "openai"
    assert hedge["next"] == "anthropic/claude-sonnet-4-6"
    assert hedge["wait"] == pytest.approx(0.05)


async def test_a_cache_hit_is_a_cached_request_record(records: list[logging.LogRecord]) -> None:
    async with FakeOpenAIServer(api_key=KEY) as openai, FakeAnthropicServer(api_key=KEY) as anth:
        config = _config(openai, anth, cache={"backend": "memory"})
        async with llmx.Client(config) as client:
            for _ in range(2):
                await client.complete(model="openai/gpt-4o-mini", messages="hi", temperature=0)
    first, second = _by_event(records, "request")
    assert (first["outcome"], first["attempts"]) == ("ok", 1)
    assert (second["outcome"], second["attempts"]) == ("cached", 0)
    assert first["request_id"] != second["request_id"]


async def test_an_embedding_request_is_a_request_record(
    records: list[logging.LogRecord],
) -> None:
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anth,
        llmx.Client(_config(openai, anth)) as client,
    ):
        await client.embed(model="openai/text-embedding-3-small", input=["a", "b"])
    (end,) = _by_event(records, "request")
    assert (end["outcome"], end["instance"], end["attempts"]) == ("ok", "openai", 1)
    assert end["model"] == "text-embedding-3-small"
    assert end["input_tokens"] > 0


async def test_with_logging_off_no_record_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine checks the level before building a record: with the ``llmx`` loggers
    at WARNING (the default), the record functions are never called."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a record was built while logging was off")

    from llmx._engine import call, fallback, run

    monkeypatch.setattr(run, "log_request_end", boom)
    monkeypatch.setattr(run, "log_request_error", boom)
    monkeypatch.setattr(fallback, "log_retry", boom)
    monkeypatch.setattr(fallback, "log_fallback", boom)
    monkeypatch.setattr(call, "log_cooldown", boom)
    async with FakeOpenAIServer(api_key=KEY) as openai, FakeAnthropicServer(api_key=KEY) as anth:
        openai.enqueue(ErrorReply(503), ErrorReply(503), ErrorReply(503))
        async with llmx.Client(_config(openai, anth)) as client:
            await client.complete(model="smart", messages="hi")
            openai.enqueue(ErrorReply(400))
            with pytest.raises(llmx.BadRequestError):
                await client.complete(model="openai/gpt-4o-mini", messages="hi")
    logging.getLogger("llmx").setLevel(logging.INFO)
    try:
        async with (
            FakeOpenAIServer(api_key=KEY) as openai,
            FakeAnthropicServer() as anth,
            llmx.Client(_config(openai, anth)) as client,
        ):
            with pytest.raises(AssertionError, match="while logging was off"):
                await client.complete(model="openai/gpt-4o-mini", messages="hi")
    finally:
        logging.getLogger("llmx").setLevel(logging.NOTSET)


# -- [logging]: formats, levels, and what never reaches the output ------------------------


async def _failures_and_retries(config: dict[str, Any]) -> None:
    """Retries, a fallback, a failed request and a success, each with the canary prompt
    (the fakes' default answer echoes it back)."""
    messages = [llmx.Message.system(PROMPT), llmx.Message.user(PROMPT)]
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anth,
        llmx.Client(_config(openai, anth, **config)) as client,
    ):
        openai.enqueue(ErrorReply(503), ErrorReply(503), ErrorReply(503))
        await client.complete(model="smart", messages=messages)
        openai.enqueue(ErrorReply(429, headers={"retry-after": "0"}))
        streamed = client.stream(model="openai/gpt-4o-mini", messages=messages)
        assert (await streamed.collect()).text
        openai.enqueue(ErrorReply(401, message=f"bad key {KEY}"))
        with pytest.raises(llmx.AuthenticationError):
            await client.complete(model="openai/gpt-4o-mini", messages=messages)
        await client.complete(model="anthropic/claude-sonnet-4-6", messages=messages)


@pytest.mark.parametrize("level", ["DEBUG", "info", "WARNING"])
@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_key_and_no_content_in_the_output(tmp_path: Path, level: str, fmt: str) -> None:
    log = tmp_path / "llmx.log"
    await _failures_and_retries({"logging": {"level": level, "format": fmt, "file": str(log)}})
    output = log.read_text()
    assert KEY not in output
    assert "CANARY-PROMPT" not in output
    lines = output.splitlines()
    if level == "WARNING":
        assert all("llmx.request" not in line for line in lines)
        return
    assert sum("llmx.request" in line for line in lines) == 4
    assert sum("event" in line and "retry" in line for line in lines) >= 3
    if fmt == "json":
        for line in lines:
            data = json.loads(line)
            assert {"time", "level", "logger", "message"} <= set(data)
        ends = [json.loads(x) for x in lines if json.loads(x).get("event") == "request"]
        assert [e["outcome"] for e in ends] == ["ok", "ok", "error", "ok"]
        assert ends[2]["error"] == "AuthenticationError"
        assert ends[2]["error_message"].count("***") == 1  # the key, scrubbed
    else:
        assert any(" event=request " in line and " outcome=error " in line for line in lines)


async def test_content_is_logged_only_when_opted_in(tmp_path: Path) -> None:
    log = tmp_path / "llmx.log"
    await _failures_and_retries({"logging": {"format": "json", "content": True, "file": str(log)}})
    ends = [json.loads(x) for x in log.read_text().splitlines()]
    ends = [e for e in ends if e.get("event") == "request"]
    assert ends[0]["messages"] == [
        {"role": "system", "content": PROMPT},
        {"role": "user", "content": PROMPT},
    ]
    assert PROMPT in ends[0]["response"]
    assert KEY not in log.read_text()


async def test_a_plain_client_installs_nothing_and_logging_section_installs_one() -> None:
    logger = logging.getLogger("llmx")
    async with (
        FakeOpenAIServer(api_key=KEY) as openai,
        FakeAnthropicServer(api_key=KEY) as anthropic,
    ):
        async with llmx.Client(_config(openai, anthropic)):
            assert logger.handlers == []
        async with llmx.Client(_config(openai, anthropic, logging={})):
            assert logger.handlers == []  # an empty section sets nothing
        async with llmx.Client(_config(openai, anthropic, logging={"format": "json"})):
            (handler,) = logger.handlers
            assert isinstance(handler.formatter, _logging.JsonFormatter)
            assert logger.level == logging.INFO
            assert not logger.propagate
        async with llmx.Client(_config(openai, anthropic, logging={"level": "debug"})):
            (handler,) = logger.handlers  # replaced, not added
            assert isinstance(handler.formatter, _logging.TextFormatter)
            assert logger.level == logging.DEBUG


async def test_json_on_stderr_is_only_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """With ``format = "json"`` on standard error, every line there is a JSON object: the
    retry library's bare warning is quieted (llmx's ``retry`` record says more)."""
    async with FakeOpenAIServer(api_key=KEY) as openai, FakeAnthropicServer(api_key=KEY) as anth:
        openai.enqueue(ErrorReply(503), Reply("hello"))
        async with llmx.Client(_config(openai, anth, logging={"format": "json"})) as client:
            await client.complete(model="openai/gpt-4o-mini", messages="hi")
            assert logging.getLogger("stamina").level == logging.ERROR
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["retry", "request"]
    _logging.reset()
    assert logging.getLogger("stamina").level == logging.NOTSET


def test_an_application_s_stamina_level_is_left_alone() -> None:
    stamina_log = logging.getLogger("stamina")
    stamina_log.setLevel(logging.INFO)
    try:
        _logging.configure(llmx.Config.from_dict({"logging": {"level": "info"}}).logging)
        assert stamina_log.level == logging.INFO
        _logging.reset()
        assert stamina_log.level == logging.INFO
    finally:
        stamina_log.setLevel(logging.NOTSET)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"levle": "info"}, "extra fields found (levle) @ $.logging; did you mean 'level'?"),
        ({"level": "warn"}, "not 'warn'; did you mean 'WARNING'? @ $.logging"),
        ({"format": "xml"}, "expected one of 'text', 'json', got 'xml' @ $.logging.format"),
        ({"content": "yes"}, "@ $.logging.content"),
    ],
)
def test_bad_logging_section_names_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(llmx.ConfigError) as info:
        llmx.Config.from_dict({"logging": section})
    assert message in str(info.value)


def test_logging_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMX_LOGGING__FORMAT", "json")
    monkeypatch.setenv("LLMX_LOGGING__LEVEL", "debug")
    (tmp_path / "llmx.toml").write_text("[logging]\nformat = 'text'\n")
    config = llmx.load_config(tmp_path / "llmx.toml")
    assert (config.logging.format, config.logging.level) == ("json", "debug")
    assert config.describe()["logging"] == {"format": "json", "level": "debug"}


def test_json_and_text_formatters_carry_any_extra_fields() -> None:
    record = logging.LogRecord("llmx.request", logging.INFO, __file__, 1, "m %s", ("x",), None)
    record.event = "request"
    record.latency = 0.25
    record.error_message = "two words"
    data = json.loads(_logging.JsonFormatter().format(record))
    assert data["message"] == "m x"
    assert data["event"] == "request"
    assert data["latency"] == 0.25
    line = _logging.TextFormatter().format(record)
    assert line.endswith(
        ' INFO llmx.request m x event=request latency=0.25 error_message="two words"'
    )


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAIServer, FakeAnthropicServer]]:
    with (
        FakeOpenAIServer(api_key=KEY).in_thread() as openai,
        FakeAnthropicServer(api_key=KEY).in_thread() as anthropic,
    ):
        yield openai, anthropic


def _cli(
    tmp_path: Path, fakes: tuple[FakeOpenAIServer, FakeAnthropicServer], *args: str, extra: str = ""
) -> subprocess.CompletedProcess[str]:
    openai, anthropic = fakes
    (tmp_path / "llmx.toml").write_text(
        f"""
[providers.openai]
type = "openai"
base_url = "{openai.base_url}"
api_key = {{ env = "LOGGING_TEST_KEY" }}

[providers.anthropic]
type = "anthropic"
base_url = "{anthropic.base_url}"
api_key = {{ env = "LOGGING_TEST_KEY" }}

[aliases.smart]
candidates = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-6"]

[retry]
wait_initial = 0.001
wait_jitter = 0
{extra}
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMX_", "OPENAI_"))}
    env["LOGGING_TEST_KEY"] = KEY
    env["XDG_CONFIG_HOME"] = str(tmp_path / ".config")
    env["XDG_DATA_HOME"] = str(tmp_path / ".data")
    return subprocess.run(
        [sys.executable, "-m", "llmx", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_shows_one_human_line_per_retry_and_fallback(
    tmp_path: Path, fakes: tuple[FakeOpenAIServer, FakeAnthropicServer]
) -> None:
    openai, anthropic = fakes
    openai.enqueue(ErrorReply(503), Reply("hello"))
    result = _cli(tmp_path, fakes, "chat", "-m", "openai/gpt-4o-mini", PROMPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    assert result.stderr == (
        "llmx: retrying openai/gpt-4o-mini after 503 ServerError (attempt 2 of 3)…\n"
    )
    openai.enqueue(ErrorReply(503), ErrorReply(503), ErrorReply(503))
    anthropic.enqueue(Reply("from claude"))
    result = _cli(tmp_path, fakes, "chat", "-m", "smart", PROMPT)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "llmx: retrying openai/gpt-4o-mini after 503 ServerError (attempt 2 of 3)…",
        "llmx: retrying openai/gpt-4o-mini after 503 ServerError (attempt 3 of 3)…",
        "llmx: falling back to anthropic/claude-sonnet-4-6 after openai/gpt-4o-mini "
        "failed: 503 ServerError…",
    ]
    assert "stamina" not in result.stderr


@pytest.mark.parametrize("flag", ["-v", "--debug"])
def test_cli_verbose_shows_the_fields(
    tmp_path: Path, fakes: tuple[FakeOpenAIServer, FakeAnthropicServer], flag: str
) -> None:
    openai, _ = fakes
    openai.enqueue(ErrorReply(503), Reply("hello"))
    result = _cli(tmp_path, fakes, flag, "chat", "-m", "openai/gpt-4o-mini", PROMPT)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    retry, end = [line for line in lines if " llmx.attempt " in line or " llmx.request " in line]
    assert " INFO llmx.attempt retrying openai/gpt-4o-mini" in retry
    assert " event=retry " in retry
    assert " status=503 " in retry
    assert " INFO llmx.request request " in end
    assert " outcome=ok " in end
    assert "stamina" not in result.stderr
    assert KEY not in result.stderr
    assert "CANARY-PROMPT" not in result.stderr


def test_cli_with_a_json_logging_section(
    tmp_path: Path, fakes: tuple[FakeOpenAIServer, FakeAnthropicServer]
) -> None:
    openai, _ = fakes
    openai.enqueue(ErrorReply(503), Reply("hello"))
    result = _cli(
        tmp_path,
        fakes,
        "chat",
        "-m",
        "openai/gpt-4o-mini",
        PROMPT,
        extra='[logging]\nformat = "json"\n',
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["retry", "request"]
    assert "stamina" not in result.stderr

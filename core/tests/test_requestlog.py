"""The request log (``[log]``): what a client writes, the schema and its migrations,
several processes writing one file, secrets never stored, and the pure helpers of
``llmx logs`` / ``llmx stats`` (dates, percentiles)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmx
from llmx import requestlog
from llmx._cli_logs import compute_stats, parse_when, percentile
from llmx._requestlog import SCHEMA_VERSION, connect, migrate_to
from llmx.testing import scripted_client

CANARY = "sk-canary-REQUESTLOG-0123456789abcdef"


def rows(path: Path) -> list[dict[str, object]]:
    db = connect(path)
    try:
        return [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        db.close()


def file_bytes(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            data += part.read_bytes()
    return data


# -- a client writes -------------------------------------------------------------------


def test_off_by_default_for_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))

    async def main() -> None:
        async with scripted_client(["Hello."]) as client:
            assert client.request_log is None
            assert client._pipeline.events is client.registry.events  # nothing added
            await client.complete(model="scripted/any", prompt="Hi")

    asyncio.run(main())
    assert not (tmp_path / "llmx").exists()


def test_client_logs_whole_answers_streams_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    down = llmx.ServerError("down for maintenance", provider="scripted", status=503)
    config = {"log": {"path": str(path)}, "retry": {"policy": "none"}}

    async def main() -> str:
        async with scripted_client(["Paris.", "Rome.", down], config=config) as client:
            assert client.request_log is not None
            with requestlog.conversation() as cid:
                await client.complete(
                    model="scripted/any",
                    prompt="Capital of France?",
                    system="Be brief.",
                    max_tokens=20,
                )
                async with client.stream(model="scripted/any", prompt="And Italy?") as s:
                    async for _ in s:
                        pass
            with pytest.raises(llmx.ServerError):
                await client.complete(model="scripted/any", prompt="And Spain?")
        return cid  # no flush: closing the client wrote everything

    cid = asyncio.run(main())
    first, second, third = rows(path)
    assert first["model"] == "scripted/any"
    assert first["instance"] == "scripted"
    assert first["system"] == "Be brief."
    assert first["prompt"] == "Capital of France?"
    assert first["reply"] == "Paris."
    assert first["conversation_id"] == cid
    assert len(cid) == 26
    assert json.loads(str(first["options"])) == {"max_tokens": 20}
    messages = json.loads(str(first["messages"]))
    assert [m["role"] for m in messages] == ["system", "user"]
    assert first["input_tokens"]
    assert first["output_tokens"]
    assert isinstance(first["latency"], float)
    assert first["latency"] >= 0
    assert first["attempts"] == 1
    assert first["error_type"] is None
    assert second["stream"] == 1
    assert second["reply"] == "Rome."
    assert second["conversation_id"] == cid
    assert third["conversation_id"] is None
    assert third["error_type"] == "ServerError"
    assert "down for maintenance" in str(third["error"])
    assert third["reply"] is None
    assert third["instance"] == "scripted"
    # the datetimes are UTC, ordered, and now-ish
    when = dt.datetime.fromisoformat(str(first["datetime_utc"]))
    assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 60


def test_flush_writes_before_the_client_closes(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"

    async def main() -> None:
        async with scripted_client(["one"], config={"log": {"path": str(path)}}) as client:
            log = client.request_log
            assert log is not None
            assert log.flush()  # nothing recorded yet: nothing to wait for
            await client.complete(model="scripted/any", prompt="hi")
            assert await asyncio.to_thread(log.flush)
            assert [r["reply"] for r in rows(path)] == ["one"]
            assert log.running

    asyncio.run(main())


def test_content_false_keeps_numbers_only(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"

    async def main() -> None:
        config = {"log": {"path": str(path), "content": False}}
        async with scripted_client(["A secret answer."], config=config) as client:
            await client.complete(model="scripted/any", prompt="a private question")

    asyncio.run(main())
    (row,) = rows(path)
    assert row["prompt"] is None
    assert row["reply"] is None
    assert row["messages"] is None
    assert row["output_tokens"]
    assert b"private question" not in file_bytes(path)


def test_enabled_false_wins_over_path(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"

    async def main() -> None:
        config = {"log": {"path": str(path), "enabled": False}}
        async with scripted_client(["x"], config=config) as client:
            assert client.request_log is None
            await client.complete(model="scripted/any", prompt="hi")

    asyncio.run(main())
    assert not path.exists()


def test_secrets_never_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A canary API key (read from the environment by the config) typed into a prompt,
    echoed in a reply and in an upstream error never reaches the database file."""
    monkeypatch.setenv("REQUESTLOG_CANARY_KEY", CANARY)
    path = tmp_path / "logs.db"
    echo_error = llmx.ServerError(f"upstream says: bad key {CANARY}", provider="x", status=500)
    config = {
        "log": {"path": str(path)},
        "retry": {"policy": "none"},
        "providers": {
            "scripted": {"type": "scripted", "api_key": {"env": "REQUESTLOG_CANARY_KEY"}}
        },
    }

    async def main() -> None:
        async with scripted_client([f"your key is {CANARY}", echo_error], config=config) as c:
            await c.complete(model="scripted/any", prompt=f"remember {CANARY} please")
            with pytest.raises(llmx.ServerError):
                await c.complete(model="scripted/any", prompt="again")

    asyncio.run(main())
    logged = rows(path)
    assert len(logged) == 2
    assert logged[0]["reply"] == "your key is ***"
    assert "***" in str(logged[0]["prompt"])
    assert "***" in str(logged[1]["error"])
    assert CANARY.encode() not in file_bytes(path)


def test_writing_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """The hook only queues: the database is written by the log's own thread."""
    path = tmp_path / "logs.db"
    threads: set[str] = set()
    real_write = requestlog.RequestLog._write

    def spy(self: requestlog.RequestLog, db: sqlite3.Connection, batch: list[object]) -> None:
        threads.add(threading.current_thread().name)
        real_write(self, db, batch)  # type: ignore[arg-type]

    async def main() -> None:
        async with scripted_client(["a"] * 50, config={"log": {"path": str(path)}}) as client:
            await asyncio.gather(
                *(client.complete(model="scripted/any", prompt=f"q{i}") for i in range(50))
            )

    requestlog.RequestLog._write = spy  # type: ignore[method-assign]
    try:
        asyncio.run(main())
    finally:
        requestlog.RequestLog._write = real_write  # type: ignore[method-assign]
    assert threads == {"llmx-requestlog"}
    assert len(rows(path)) == 50


def test_unwritable_path_warns_and_requests_still_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async def main() -> str:
        config = {"log": {"path": str(blocker / "logs.db")}}
        async with scripted_client(["fine"], config=config) as client:
            return (await client.complete(model="scripted/any", prompt="hi")).text

    assert asyncio.run(main()) == "fine"
    assert any("request log off" in r.getMessage() for r in caplog.records)


# -- config ----------------------------------------------------------------------------


def test_log_config_rejects_unknown_keys() -> None:
    with pytest.raises(llmx.ConfigError, match=r"extra fields found \(pth\) @ \$\.log"):
        llmx.load_config({"log": {"pth": "x.db"}})


def test_log_config_types() -> None:
    with pytest.raises(llmx.ConfigError, match=r"\$\.log\.enabled"):
        llmx.load_config({"log": {"enabled": "sometimes"}})
    config = llmx.load_config({"log": {"path": "~/x.db"}})
    assert config.log.active()
    assert config.log.resolved_path() == Path.home() / "x.db"
    assert not llmx.load_config({}).log.active()
    assert llmx.load_config({"log": {"enabled": True}}).log.active()
    assert llmx.load_config({}).describe()["log"] == {
        "enabled": None,
        "path": None,
        "content": True,
    }


def test_default_path_honours_xdg_data_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/data/home")
    assert requestlog.default_log_path() == Path("/data/home/llmx/logs.db")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the spec: absolute only
    assert requestlog.default_log_path() == Path.home() / ".local/share/llmx/logs.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert requestlog.default_log_path() == Path.home() / ".local/share/llmx/logs.db"


# -- schema ----------------------------------------------------------------------------


def test_migrates_an_old_schema(tmp_path: Path) -> None:
    """A version-1 database (no full-text index) with a row in it is migrated when
    opened; the old row is then found by full-text search."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    migrate_to(old, 1)
    old.execute(
        "INSERT INTO requests (datetime_utc, model, prompt, reply) VALUES "
        "('2026-01-01T00:00:00.000+00:00', 'a/b', 'about penguins', 'they swim')"
    )
    old.commit()
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    old.close()

    db = connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    found = db.execute(
        "SELECT prompt FROM requests WHERE id IN "
        "(SELECT rowid FROM requests_fts WHERE requests_fts MATCH 'penguins')"
    ).fetchall()
    assert [r[0] for r in found] == ["about penguins"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(llmx.ConfigError, match="newer than this llmx"):
        connect(path)


_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from llmx._events import RequestEnd, RequestStart
    from llmx._requestlog import RequestLog, connect
    from llmx._types import Request, Response

    path, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    connect(path).close()  # both open (and race to migrate) before writing
    print("ready", flush=True)
    while not os.path.exists(go):  # then start writing at the same moment
        time.sleep(0.001)
    log = RequestLog(path)
    for i in range(count):
        request = Request("inst/m", f"{tag} question {i}")
        start = RequestStart(f"{tag}-{i}", request, False, 0.0)
        end = RequestEnd(f"{tag}-{i}", Response(f"{tag} answer {i}", "m", "inst"), 0.01)
        log.record(start, end)
        if i % 3 == 0:
            log.flush()  # many small transactions, interleaving with the other process
    log.close()
    print(log.written, log.errors)
    """
)


def test_two_processes_write_one_log(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    go = tmp_path / "go"
    count = 600
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), tag, str(count), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("alpha", "beta")
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline() == "ready\n"
        go.touch()
        outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    finally:  # a failed start must not leave the writers running (or their pipes open)
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    assert all(p.returncode == 0 for p in procs)
    assert outputs == [[str(count), "0"], [str(count), "0"]]
    db = connect(path)
    try:
        assert db.execute("SELECT count(*) FROM requests").fetchone()[0] == 2 * count
        for tag in ("alpha", "beta"):
            hits = db.execute(
                "SELECT count(*) FROM requests_fts WHERE requests_fts MATCH ?", (tag,)
            ).fetchone()[0]
            assert hits == count
        assert db.execute("INSERT INTO requests_fts(requests_fts) VALUES ('integrity-check')")
    finally:
        db.close()


# -- helpers of llmx logs / llmx stats -----------------------------------------------------

NOW = dt.datetime(2026, 12, 8, 12, 0, tzinfo=dt.timezone.utc)


@given(st.datetimes(timezones=st.just(dt.timezone.utc)))
def test_parse_when_round_trips_iso(when: dt.datetime) -> None:
    assert parse_when(when.isoformat()) == when
    assert parse_when(when.isoformat().replace("+00:00", "Z")) == when


@given(st.integers(min_value=0, max_value=10_000), st.sampled_from(list("smhdw")))
def test_parse_when_durations_ago(amount: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit] * amount
    assert parse_when(f"{amount}{unit}", now=NOW) == NOW - dt.timedelta(seconds=seconds)


@given(st.text(max_size=30))
def test_parse_when_rejects_with_the_accepted_forms(text: str) -> None:
    try:
        result = parse_when(text, now=NOW)
    except ValueError as err:
        message = str(err)
    else:
        assert result.tzinfo is not None
        return
    assert "duration ago" in message or "too far back" in message


def test_parse_when_naive_is_local_time() -> None:
    local = dt.datetime(2026, 6, 1, 9, 30).astimezone()
    assert parse_when("2026-06-01T09:30") == local.astimezone(dt.timezone.utc)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_percentiles_are_values_in_order(values: list[float]) -> None:
    ordered = sorted(values)
    p50, p95, p99 = (percentile(ordered, p) for p in (50, 95, 99))
    assert p50 is not None
    assert p95 is not None
    assert p99 is not None
    assert p50 in ordered
    assert p95 in ordered
    assert p99 in ordered
    assert ordered[0] <= p50 <= p95 <= p99 <= ordered[-1]


def test_percentile_nearest_rank() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert [percentile(ordered, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0


def test_compute_stats_groups_and_counts() -> None:
    def row(**kw: object) -> dict[str, object]:
        base = {
            "instance": "a",
            "model": "a/m",
            "resolved_model": "m",
            "error_type": None,
            "input_tokens": 10,
            "output_tokens": 5,
            "cost": 0.5,
            "cached": 0,
            "latency": 1.0,
        }
        return {**base, **kw}

    stats = compute_stats(
        [
            row(latency=1.0),
            row(latency=3.0),
            row(cached=1, latency=0.001),
            row(error_type="ServerError", input_tokens=None, output_tokens=None, cost=None),
            row(instance="b", cost=None),
            row(instance=None, resolved_model=None, model="nowhere/x", error_type="ConfigError"),
        ]
    )
    by_key = {(g["instance"], g["model"]): g for g in stats}
    a = by_key[("a", "m")]
    assert (a["requests"], a["errors"], a["cached"]) == (4, 1, 1)
    assert (a["input_tokens"], a["output_tokens"], a["cost"]) == (30, 15, 1.5)
    assert (a["latency_p50"], a["latency_p99"]) == (1.0, 3.0)
    assert by_key[("b", "m")]["cost_known"] is False
    assert by_key[("-", "nowhere/x")]["errors"] == 1


@given(st.text(max_size=40))
def test_any_search_text_is_an_answer_or_a_clear_error(query: str) -> None:
    """Whatever a user types after ``-q`` (FTS5 syntax or not), ``llmx logs`` answers
    or raises an LlmxError, never an sqlite3 error (the CLI's internal error)."""
    from llmx._cli_logs import Filters, select

    db = _memory_log()
    try:
        found = select(db, Filters(query=query), "SELECT prompt FROM requests")
    except llmx.LlmxError:
        return
    finally:
        db.close()
    assert all(row[0] == "penguins and whales" for row in found)


def _memory_log() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    migrate_to(db, SCHEMA_VERSION)
    db.execute(
        "INSERT INTO requests (datetime_utc, model, prompt, reply) VALUES "
        "('2026-01-01T00:00:00.000+00:00', 'a/b', 'penguins and whales', 'yes')"
    )
    return db


def test_a_lone_surrogate_is_stored_as_a_replacement(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Half an emoji in a prompt or reply (SQLite cannot store it as UTF-8) is stored as
    U+FFFD; the row is written, nothing is logged."""
    path = tmp_path / "logs.db"

    async def main() -> None:
        async with scripted_client(["a\ud83d!"], config={"log": {"path": str(path)}}) as c:
            await c.complete(model="scripted/any", prompt="b\udc00?")

    asyncio.run(main())
    (row,) = rows(path)
    assert (row["prompt"], row["reply"]) == ("b\ufffd?", "a\ufffd!")
    assert not [r for r in caplog.records if r.name == "llmx.requestlog"]

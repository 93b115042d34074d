"""``llmx._batch``: input parsing, the results journal (resume, torn lines, atomic
rewrites) and the runner, in process with a scripted provider.

The end-to-end runs (the CLI, 5,000 requests against the fake OpenAI server, killing
the process) are in ``tests/test_batch_cli.py``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmx
from llmx._batch import (
    BatchError,
    BatchItem,
    BatchRunner,
    ResultWriter,
    error_record,
    load_results,
    parse_line,
    read_input,
    resolve_models,
    rewrite_results,
    success_record,
)
from llmx._batch import _UnexpectedLineError as UnexpectedLineError


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- input ---------------------------------------------------------------------------------


def test_plain_lines() -> None:
    item = parse_line(
        json.dumps(
            {
                "id": 7,
                "prompt": "Hi",
                "system": "Be brief.",
                "model": "a/b",
                "max_tokens": 5,
                "temperature": 0,
                "stop": "\n",
                "seed": 1,
                "response_format": "json",
            }
        )
    )
    assert (item.id, item.model) == ("7", "a/b")
    req = item.request
    assert [m.role for m in req.messages] == ["system", "user"]
    assert req.messages[1].text == "Hi"
    assert (req.max_tokens, req.temperature, req.stop, req.seed) == (5, 0, ("\n",), 1)
    assert req.response_format.type == "json"


def test_plain_lines_with_messages_and_a_schema() -> None:
    item = parse_line(
        json.dumps(
            {
                "id": "x",
                "messages": [
                    {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "4"},
                    {"role": "user", "content": [{"type": "text", "text": "and 3+3?"}]},
                ],
                "response_format": {"type": "object", "properties": {"n": {"type": "integer"}}},
            }
        )
    )
    assert [m.text for m in item.request.messages] == ["2+2?", "4", "and 3+3?"]
    assert item.request.response_format.type == "json_schema"
    assert item.model is None


def test_openai_batch_api_lines() -> None:
    line = {
        "custom_id": "request-1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "developer", "content": "You are terse."},
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ],
            "max_completion_tokens": 10,
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "response_format": {"type": "json_object"},
            "logprobs": False,
            "user": "u-1",
        },
    }
    item = parse_line(json.dumps(line))
    req = item.request
    assert (item.id, item.model) == ("request-1", "gpt-4o-mini")
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert req.messages[2].content == (llmx.ToolCall("c1", "weather", '{"city": "Paris"}'),)
    assert req.messages[3].content[0] == llmx.ToolResult("c1", "sunny")
    assert req.max_tokens == 10
    assert req.tools[0].name == "weather"
    assert req.tool_choice == llmx.ToolChoice("tool", "weather")
    assert req.response_format.type == "json"
    assert req.extra == {"logprobs": False, "user": "u-1"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"prompt": "no id"}', "no 'id'"),
        ('{"id": "a"}', "neither 'prompt' nor 'messages'"),
        ('{"id": "a", "prompt": "x", "temprature": 1}', "unknown fields (temprature)"),
        ('{"id": true, "prompt": "x"}', "'id' must be a string or an integer"),
        ('{"id": "a", "prompt": "x", "max_tokens": "5"}', "'max_tokens' must be an integer"),
        ('{"id": "a", "messages": [{"role": "wizard", "content": "x"}]}', "role must be one of"),
        (
            '{"custom_id": "b", "method": "POST", "url": "/v1/embeddings", "body": {}}',
            "only POST /v1/chat/completions",
        ),
        ('{"custom_id": "b", "body": {"model": "m"}}', "no 'messages'"),
        ('{"id": "a", "messages": [{"role": [], "content": "x"}]}', "role must be a string"),
        (
            '{"id": "a", "messages": [{"role": "assistant", "content": "x", "tool_calls": 5}]}',
            "tool_calls must be a list",
        ),
        ('{"id": "a", "messages": [{"role": {"x": 1}, "content": "x"}]}', "role must be a string"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as exc_info:
        parse_line(line)
    assert message in str(exc_info.value)


def test_read_input_reports_bad_lines_and_duplicates(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "prompt": "1"},
            "garbage",
            "",
            {"id": "b", "prompt": "2"},
            {"id": "a", "prompt": "again"},
        ],
    )
    parsed = read_input(path)
    assert [i.id for i in parsed.items] == ["a", "b"]
    assert [(p.line, "not JSON" in p.message) for p in parsed.malformed] == [(2, True)]
    assert [(p.line, p.id) for p in parsed.duplicates] == [(5, "a")]
    assert "repeats line 1" in str(parsed.duplicates[0])


def test_resolve_models() -> None:
    items = [parse_line(json.dumps({"id": str(i), "prompt": "x"})) for i in range(2)]
    named = parse_line(json.dumps({"id": "n", "prompt": "x", "model": "smart"}))

    resolved = resolve_models(
        [*items, named], override=None, default_model="a/b", aliases=["smart"]
    )
    assert [i.request.model for i in resolved] == ["a/b", "a/b", "smart"]
    assert {
        i.request.model for i in resolve_models(items, override="c/d", default_model="a/b")
    } == {"c/d"}
    with pytest.raises(BatchError, match="pass -m"):
        resolve_models(items, override=None, default_model=None)


def test_a_bare_openai_model_name_needs_m() -> None:
    line = {
        "custom_id": "1",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    }
    item = parse_line(json.dumps(line))

    with pytest.raises(BatchError, match=r"'gpt-4o-mini' \(1 lines\).*pass -m"):
        resolve_models([item], override=None, default_model=None)
    assert resolve_models([item], override="openai/gpt-4o-mini", default_model=None)
    slashed = parse_line(json.dumps({**line, "body": {**line["body"], "model": "fake/gpt-4o"}}))
    assert (
        resolve_models([slashed], override=None, default_model=None)[0].request.model
        == "fake/gpt-4o"
    )


# -- the results journal -----------------------------------------------------------------------


def ok(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "custom_id": item_id, "response": {"text": "x"}, "error": None}


def failed(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "custom_id": item_id, "response": None, "error": {"type": "E"}}


def test_load_results_reads_done_and_failed_ids(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "out.jsonl", [ok("a"), failed("b"), ok("c")])
    state = load_results(path)
    assert state.done == {"a", "b", "c"}
    assert state.failed == {"b"}
    assert state.repaired_bytes == 0
    assert load_results(tmp_path / "missing.jsonl").done == frozenset()


@pytest.mark.parametrize("torn", ['{"id": "c", "custom_id": "c", "resp', '{"id": "c"', "{"])
def test_a_torn_last_line_is_cut_off(tmp_path: Path, torn: str) -> None:
    path = write_lines(tmp_path / "out.jsonl", [ok("a"), ok("b")])
    good = path.read_bytes()
    with path.open("ab") as f:
        f.write(torn.encode())

    state = load_results(path)
    assert state.done == {"a", "b"}
    assert state.repaired_bytes == len(torn)
    assert path.read_bytes() == good


def test_a_broken_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "out.jsonl", [ok("a"), "not a result", ok("b")])
    with pytest.raises(BatchError, match="line 2 of the results file"):
        load_results(path)


def test_rewrite_keeps_drops_and_orders_atomically(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "out.jsonl", [ok("c"), failed("b"), ok("a"), ok("zz")])

    dropped = rewrite_results(path, lambda rec: rec["error"] is None, ["a", "b", "c"])

    assert dropped == 1
    assert [r["id"] for r in records(path)] == ["a", "c", "zz"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_the_writer_appends_whole_lines_and_locks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer = ResultWriter(path, fsync_interval=0)
    writer.write(ok("a"))
    with pytest.raises(BatchError, match="another process is writing"):
        ResultWriter(path)
    writer.write(ok("b"))
    writer.close()
    writer.close()
    assert [r["id"] for r in records(path)] == ["a", "b"]
    ResultWriter(path).close()  # the lock went with the writer


# -- records and the runner ---------------------------------------------------------------------


def item(item_id: str, prompt: str = "hi") -> BatchItem:
    parsed = parse_line(json.dumps({"id": item_id, "prompt": prompt}))
    return resolve_models([parsed], override="scripted/any", default_model=None)[0]


def test_records_look_like_openai_batch_output() -> None:
    response = llmx.Response(
        "hello",
        "m",
        "p",
        finish_reason="stop",
        usage=llmx.Usage(3, 4),
        cost=0.5,
        tool_calls=(llmx.ToolCall("c", "f", "{}"),),
    )
    rec = success_record(item("a"), response)
    assert rec["id"] == rec["custom_id"] == "a"
    assert rec["error"] is None
    body = rec["response"]
    assert (body["status_code"], body["text"], body["finish_reason"]) == (200, "hello", "stop")
    assert (body["model"], body["provider"], body["cost"]) == ("m", "p", 0.5)
    assert body["usage"]["total_tokens"] == 7
    assert body["tool_calls"] == [{"id": "c", "name": "f", "arguments": "{}"}]

    err = llmx.RateLimitError("slow down", provider="p", model="m", status=429, retry_after=2)
    rec = error_record(item("b"), err)
    assert rec["response"] is None
    assert rec["error"] == {
        "type": "RateLimitError",
        "message": "slow down",
        "status": 429,
        "retryable": True,
        "provider": "p",
        "code": None,
        "retry_after": 2,
    }
    assert error_record(item("c"), KeyError("x"))["error"]["type"] == "internal:KeyError"
    json.dumps(rec)


async def test_the_runner_writes_every_id_once_with_bounded_concurrency(tmp_path: Path) -> None:
    in_flight = 0
    peak = 0

    async def complete(request: llmx.Request) -> llmx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.001)
            prompt = request.messages[-1].text
            if prompt.endswith("7"):
                raise llmx.ServerError("boom", provider="scripted", status=500)
            return llmx.Response(prompt, "any", "scripted", usage=llmx.Usage(1, 2))
        finally:
            in_flight -= 1

    items = [item(str(i), f"prompt {i}") for i in range(200)]
    path = tmp_path / "out.jsonl"
    writer = ResultWriter(path)
    stats = await BatchRunner(complete, items, writer, concurrency=8).run()
    writer.close()

    rows = records(path)
    assert sorted(r["id"] for r in rows) == sorted(i.id for i in items)
    assert peak == 8
    assert (stats.succeeded, stats.failed) == (180, 20)
    assert stats.errors == {"ServerError": 20}
    by_id = {r["id"]: r for r in rows}
    assert by_id["3"]["response"]["text"] == "prompt 3"
    assert by_id["17"]["error"]["type"] == "ServerError"


async def test_stopping_the_runner_cancels_in_flight_requests(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def complete(request: llmx.Request) -> llmx.Response:
        if request.messages[-1].text == "slow":
            started.set()
            await asyncio.sleep(60)
        return llmx.Response("fast", "m", "p")

    items = [
        item("fast1", "fast"),
        item("slow", "slow"),
        *(item(f"f{i}", "fast") for i in range(50)),
    ]
    path = tmp_path / "out.jsonl"
    writer = ResultWriter(path)
    runner = BatchRunner(complete, items, writer, concurrency=2)
    task = asyncio.create_task(runner.run())
    await started.wait()
    runner.stop(15)
    stats = await asyncio.wait_for(task, 5)
    writer.close()

    assert runner.stopped_by == 15
    ids = [r["id"] for r in records(path)]
    assert "slow" not in ids
    assert len(ids) == len(set(ids)) == stats.completed


# -- any wrong type anywhere (issue 14, defect 8) -----------------------------------------------

VALID_LINES: list[dict[str, Any]] = [
    {
        "id": "a",
        "prompt": "hi",
        "system": "s",
        "max_tokens": 5,
        "temperature": 0.5,
        "top_p": 1,
        "seed": 1,
        "stop": ["x"],
        "model": "m/x",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": True},
        },
    },
    {
        "id": 1,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "r", "name": "f"},
        ],
    },
    {
        "custom_id": "b",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt",
            "messages": [{"role": "developer", "content": "s"}, {"role": "user", "content": "x"}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "description": "d",
                        "parameters": {"type": "object"},
                        "strict": True,
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_object"},
            "max_completion_tokens": 3,
            "logprobs": True,
        },
    },
]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*path, index))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copy


@st.composite
def mutated_lines(draw: st.DrawFn) -> Any:
    """A valid batch line with one to three values anywhere replaced by any JSON value."""
    line: Any = draw(st.sampled_from(VALID_LINES))
    for _ in range(draw(st.integers(1, 3))):
        line = _replaced(line, draw(st.sampled_from(_paths(line))), draw(JSON_VALUES))
    return line


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_lines())
def test_any_wrong_type_anywhere_is_this_lines_named_problem(line: Any) -> None:
    try:
        parse_line(json.dumps(line))
    except UnexpectedLineError as err:  # the safety net caught what no check named
        pytest.fail(f"no check names this problem: {err}; line: {json.dumps(line)[:300]}")
    except ValueError:
        pass


def test_the_valid_lines_the_mutations_start_from_parse() -> None:
    for line in VALID_LINES:
        parse_line(json.dumps(line))


def test_read_input_skips_a_line_no_check_expected_and_reads_the_rest(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "prompt": "1"},
            {"id": "b", "messages": [{"role": [], "content": "x"}]},
            {"id": "c", "messages": [{"role": "assistant", "content": "x", "tool_calls": 5}]},
            {"id": "d", "prompt": "2"},
        ],
    )
    parsed = read_input(path)
    assert [i.id for i in parsed.items] == ["a", "d"]
    assert [p.line for p in parsed.malformed] == [2, 3]


# -- lone surrogates and failed writes (issue 14, defects 7 and 9) -------------------------------


def test_a_lone_surrogate_is_written_escaped_and_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer = ResultWriter(path)
    half = "\ud83d"
    writer.write(ok(f"id-{half}") | {"note": f"half {half}"})
    writer.write(ok("b") | {"note": "café 😀"})
    writer.close()
    raw = path.read_bytes()
    first, second = raw.decode("utf-8").splitlines()
    assert "\\ud83d" in first
    assert first.isascii()
    assert "café 😀" in second  # other lines keep their text
    rows = records(path)
    assert rows[0]["id"] == f"id-{half}"
    assert rows[0]["note"] == f"half {half}"
    assert load_results(path).done == {f"id-{half}", "b"}


async def test_a_write_that_fails_stops_the_runner_and_keeps_the_answer(tmp_path: Path) -> None:
    """``/dev/full`` fails every write with ENOSPC: a real kernel error, not a mock."""
    import errno

    started = 0

    async def complete(request: llmx.Request) -> llmx.Response:
        nonlocal started
        started += 1
        await asyncio.sleep(0.001)
        return llmx.Response(request.messages[-1].text, "m", "p")

    items = [item(str(i)) for i in range(100)]
    writer = ResultWriter(Path("/dev/full"))
    runner = BatchRunner(complete, items, writer, concurrency=4)
    stats = await runner.run()
    writer.close()
    assert runner.write_error is not None
    assert runner.write_error.errno == errno.ENOSPC
    assert runner.stopped
    assert len(runner.unwritten) == 1
    assert stats.completed == 0
    assert started <= 4  # no request started after the failure
    assert runner.retry_unwritten() == 1  # still full: kept, not dropped


def test_a_torn_write_is_cut_back_to_the_last_whole_line(tmp_path: Path) -> None:
    """A file size limit (``RLIMIT_FSIZE``, in a child process) makes the kernel write part
    of a line, then fail with EFBIG: the part is cut off, the file ends on a whole line."""
    import subprocess
    import sys

    path = tmp_path / "out.jsonl"
    script = f"""
import resource
from pathlib import Path
from llmx._batch import ResultWriter
resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))
w = ResultWriter(Path({str(path)!r}))
w.write({{"id": "a", "custom_id": "a", "response": None, "error": {{"type": "x"}}}})
try:
    w.write({{"id": "b", "custom_id": "b", "response": None, "error": {{"type": "x" * 400}}}})
except OSError as err:
    print(err.errno)
w.close()
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "27"  # EFBIG
    assert [r["id"] for r in records(path)] == ["a"]
    assert path.read_bytes().endswith(b"\n")


def test_an_endless_input_line_stops_the_read_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmx._batch as batch

    monkeypatch.setattr(batch, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a", "prompt": "hi"}\n' + b"0" * 5000)
    with pytest.raises(batch.BatchError, match=r"line 2 of .* is longer than 1,000 bytes"):
        batch.read_input(path)
    path.write_bytes(b'{"id": "a", "prompt": "' + b"x" * 900 + b'"}\n')
    assert [item.id for item in batch.read_input(path).items] == ["a"]

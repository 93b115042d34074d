"""``llmx batch``: run a JSONL file of requests through a :class:`~llmx.Client`, resumably.

Input lines take one of two forms:

* the OpenAI Batch API's: ``{"custom_id": ..., "method": "POST", "url":
  "/v1/chat/completions", "body": {"model": ..., "messages": [...], ...}}``;
* a plain one: ``{"id": ..., "prompt": "..." | "messages": [...], "model"?: ...,
  "system"?: ..., "max_tokens"?: ..., ...}``.

Each result is one line ``{"id", "custom_id", "response": {...} | null, "error": null |
{...}}`` (close to the OpenAI Batch output), **appended and flushed the moment its
request finishes** and fsync'd at least every second. The results file is therefore
its own journal: a re-run of the same command reads it, repairs a torn last line (a
``SIGKILL`` in the middle of a write), and skips every id that already has a result,
so no result is ever lost and no id is ever written twice. ``retry_failed`` first
removes the error lines (an atomic rewrite) so those ids run again. With
``order="input"`` the file is rewritten in input order once every request has a
result, again atomically (a temporary file, fsync, rename).

Every request goes through :meth:`Client.complete`, so routing, fallback, retries,
caching and rate limits apply as configured; ``concurrency`` bounds the requests in
flight.

Bad input loses nothing:

* **Text that is not valid Unicode** (a lone surrogate such as ``"\\ud83d"``, half an
  emoji, in an answer, an error message or an id) is written as JSON's ``\\ud83d``
  escape: that line is written with ``ensure_ascii`` (every other line keeps its UTF-8
  text), and reads back as the same string. The paid answer is in the file; a re-run
  does not ask again. The same rule holds wherever llmx writes JSON (``--json``);
  where it prints text for people (``llmx chat``), such a character is shown as
  U+FFFD with one warning on standard error.
* **A malformed input line** (wrong JSON, a wrong type anywhere) is skipped with its
  line number and the reason, and the other lines run; ``strict`` refuses the file,
  naming every bad line.
* **The results file must be a regular file** (or not exist yet): it is the journal a
  re-run resumes from, locked, and rewritten in place. A pipe, ``/dev/stdout``,
  ``/dev/full`` or any other special file is refused before anything runs.
* **A write that fails** (a full disk, a file size limit, an I/O error) stops the
  batch: no new request starts, those in flight are cancelled, a half-written line is
  cut off, the answer whose write failed is written again once (space may have come
  back), and one error line says how many results are in the file and how many
  requests run again when the same command is re-run; the exit status is
  :data:`EXIT_WRITE_FAILED` (74). Nothing that was written is lost and no id is
  written twice.
* **Standard error closed by its reader** (``2>&1 | head``) drops the messages; the
  batch goes on, its output is the results file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from llmx._errors import AllCandidatesFailedError, LlmxError, ProviderError
from llmx._types import (
    Image,
    Message,
    Part,
    Request,
    Response,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)

Order = Literal["input", "completion"]
"""How the results file ends up ordered: as the input, or as requests completed."""

_PLACEHOLDER_MODEL = "-"
_FSYNC_INTERVAL = 1.0
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_PLAIN_KEYS = frozenset(
    {
        "id",
        "model",
        "prompt",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "response_format",
        "reasoning",
    }
)


class BatchError(LlmxError):
    """A batch cannot run: bad options, an unusable results file, or (strict) bad input."""


# -- input ---------------------------------------------------------------------------------


@attrs.frozen
class BatchItem:
    """One request of a batch: its id, its input line number, and the request.

    ``model`` is the model the line named (None: none), before ``-m`` or the config's
    default apply; ``request.model`` is a placeholder until :func:`resolve_models`.
    """

    id: str
    line: int
    request: Request
    model: str | None = None


@attrs.frozen
class InputProblem:
    """A line of the input that was skipped: its number, why, and its id if it had one."""

    line: int
    message: str
    id: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@attrs.frozen
class BatchInput:
    """A parsed input file: the usable items, malformed lines and duplicate ids."""

    items: tuple[BatchItem, ...]
    malformed: tuple[InputProblem, ...] = ()
    duplicates: tuple[InputProblem, ...] = ()


class _LineError(ValueError):
    """What is wrong with one input line (the line is skipped)."""


class _UnexpectedLineError(_LineError):
    """A line no specific check caught (a test finding one means a check is missing)."""


MAX_LINE_BYTES = 64 * 2**20
"""The longest input line read (a request carrying images as base64 stays well under it)."""


def read_input(path: str | os.PathLike[str]) -> BatchInput:
    """Parse a JSONL request file; malformed lines and repeated ids are collected, not raised."""
    items: list[BatchItem] = []
    malformed: list[InputProblem] = []
    duplicates: list[InputProblem] = []
    first_line: dict[str, int] = {}
    try:
        f = Path(path).open("rb")  # noqa: SIM115 - closed by the with below
    except OSError as err:
        msg = f"cannot read the input file {str(path)!r}: {err.strerror}"
        raise BatchError(msg) from err
    with f:
        number = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                # Not a request but an endless stream (/dev/zero) or the wrong file: stop
                # reading it, rather than hold it in memory.
                msg = (
                    f"line {number} of {str(path)!r} is longer than {MAX_LINE_BYTES:,} bytes; "
                    "is it a JSONL file of requests?"
                )
                raise BatchError(msg)
            if not raw.strip():
                continue
            try:
                item = parse_line(raw, number)
            except _LineError as err:
                malformed.append(InputProblem(number, str(err)))
                continue
            seen = first_line.get(item.id)
            if seen is not None:
                duplicates.append(
                    InputProblem(
                        number, f"id {item.id!r} repeats line {seen}; this line is skipped", item.id
                    )
                )
                continue
            first_line[item.id] = number
            items.append(item)
    return BatchInput(tuple(items), tuple(malformed), tuple(duplicates))


def parse_line(raw: bytes | str, number: int = 0) -> BatchItem:
    """One input line as a :class:`BatchItem` (raises ``ValueError`` saying what is wrong).

    Every way a line can be wrong is a ``ValueError``: the checks below name the field;
    anything they missed (a type no check expected) is still reported as this line's
    problem, never raised as something else that would stop the whole batch.
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        msg = "not JSON this program can read (nested too deeply)"
        raise _LineError(msg) from None
    except ValueError as err:
        msg = f"not JSON ({err})"
        raise _LineError(msg) from None
    if not isinstance(data, dict):
        msg = f"expected a JSON object, got {type(data).__name__}"
        raise _LineError(msg)
    try:
        if "custom_id" in data or "body" in data:
            return _parse_openai_line(data, number)
        return _parse_plain_line(data, number)
    except _LineError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as err:
        msg = f"a field has a value of the wrong type or shape ({type(err).__name__}: {err})"
        raise _UnexpectedLineError(msg) from None


def _item_id(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        msg = f"{key!r} must be a string or an integer, got {type(value).__name__}"
        raise _LineError(msg)
    text = str(value)
    if not text:
        msg = f"{key!r} is empty"
        raise _LineError(msg)
    return text


def _parse_plain_line(data: dict[str, Any], number: int) -> BatchItem:
    if "id" not in data:
        msg = 'no \'id\' (a plain line is {"id": ..., "prompt": ...} or has "messages")'
        raise _LineError(msg)
    item_id = _item_id(data["id"], "id")
    extra = sorted(set(data) - _PLAIN_KEYS)
    if extra:
        msg = f"unknown fields ({', '.join(extra)}) for id {item_id!r}; known: {', '.join(sorted(_PLAIN_KEYS))}"
        raise _LineError(msg)
    prompt, messages, system = data.get("prompt"), data.get("messages"), data.get("system")
    if prompt is None and messages is None:
        msg = f"id {item_id!r} has neither 'prompt' nor 'messages'"
        raise _LineError(msg)
    convo: list[Message] = []
    if system is not None:
        convo.append(Message("system", _string(system, "system")))
    if messages is not None:
        convo.extend(_messages(messages))
    if prompt is not None:
        convo.append(Message("user", _string(prompt, "prompt")))
    params = _params(data)
    if "response_format" in data:
        params["response_format"] = _plain_format(data["response_format"])
    model = data.get("model")
    if model is not None:
        model = _string(model, "model")
    return BatchItem(item_id, number, _request(convo, params), model)


def _parse_openai_line(data: dict[str, Any], number: int) -> BatchItem:
    item_id = _item_id(data.get("custom_id"), "custom_id")
    method = data.get("method", "POST")
    url = data.get("url", "/v1/chat/completions")
    if method != "POST" or not isinstance(url, str) or not url.endswith("/chat/completions"):
        msg = f"custom_id {item_id!r}: only POST /v1/chat/completions is supported, not {method} {url}"
        raise _LineError(msg)
    body = data.get("body")
    if not isinstance(body, dict):
        msg = f"custom_id {item_id!r}: 'body' must be an object"
        raise _LineError(msg)
    if "messages" not in body:
        msg = f"custom_id {item_id!r}: the body has no 'messages'"
        raise _LineError(msg)
    convo = _messages(body["messages"])
    rest = dict(body)
    for key in ("model", "messages", "stream", "stream_options"):
        rest.pop(key, None)
    if "max_completion_tokens" in rest:
        rest["max_tokens"] = rest.pop("max_completion_tokens")
    if "reasoning_effort" in rest:  # provider-neutral, so any provider can take the line
        rest["reasoning"] = rest.pop("reasoning_effort")
    params = _params(rest)
    for key in ("max_tokens", "temperature", "top_p", "stop", "seed", "reasoning"):
        rest.pop(key, None)
    if "tools" in rest:
        params["tools"] = _tools(rest.pop("tools"))
    if "tool_choice" in rest:
        params["tool_choice"] = _tool_choice(rest.pop("tool_choice"))
    if "response_format" in rest:
        params["response_format"] = _openai_format(rest.pop("response_format"))
    if rest:
        params["extra"] = rest
    model = body.get("model")
    if model is not None:
        model = _string(model, "body.model")
    return BatchItem(item_id, number, _request(convo, params), model)


def _request(convo: Sequence[Message], params: dict[str, Any]) -> Request:
    if not convo:
        msg = "the conversation is empty"
        raise _LineError(msg)
    try:
        return Request(_PLACEHOLDER_MODEL, convo, **params)
    except (TypeError, ValueError) as err:
        raise _LineError(str(err)) from None


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        msg = f"{key!r} must be a string, got {type(value).__name__}"
        raise _LineError(msg)
    return value


def _number(value: Any, key: str, kind: type) -> Any:
    ok = isinstance(value, (int, float)) if kind is float else isinstance(value, int)
    if isinstance(value, bool) or not ok:
        msg = f"{key!r} must be {'a number' if kind is float else 'an integer'}, got {value!r}"
        raise _LineError(msg)
    return value


def _params(data: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, kind in (("max_tokens", int), ("seed", int), ("temperature", float), ("top_p", float)):
        if data.get(key) is not None:
            params[key] = _number(data[key], key, kind)
    stop = data.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            msg = "'stop' must be a string or a list of strings"
            raise _LineError(msg)
        params["stop"] = tuple(stop)
    if data.get("reasoning") is not None:  # checked by Request (a level or a budget)
        params["reasoning"] = data["reasoning"]
    return params


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        msg = "'messages' must be a non-empty list"
        raise _LineError(msg)
    return [_message(m, i) for i, m in enumerate(value)]


def _message(m: Any, index: int) -> Message:
    where = f"messages[{index}]"
    if not isinstance(m, dict):
        msg = f"{where} must be an object"
        raise _LineError(msg)
    role = m.get("role")
    if not isinstance(role, str):
        msg = f"{where}.role must be a string (system, developer, user, assistant or tool); got {role!r}"
        raise _LineError(msg)
    if role == "developer":
        role = "system"
    if role not in _ROLES:
        msg = f"{where}.role must be one of system, developer, user, assistant, tool; got {role!r}"
        raise _LineError(msg)
    parts: list[Part] = list(_content(m.get("content"), where))
    if role == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str):
            msg = f"{where}: a tool message needs 'tool_call_id' (a string)"
            raise _LineError(msg)
        name = m.get("name")
        if name is not None and not isinstance(name, str):
            msg = f"{where}.name must be a string, got {type(name).__name__}"
            raise _LineError(msg)
        text = "".join(p.text for p in parts if isinstance(p, Text))
        return Message("tool", (ToolResult(call_id, text, name=name),))
    calls = m.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        msg = f"{where}.tool_calls must be a list, got {type(calls).__name__}"
        raise _LineError(msg)
    for i, call in enumerate(calls or ()):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            msg = f"{where}.tool_calls[{i}] needs function.name (a string)"
            raise _LineError(msg)
        arguments = fn.get("arguments") or "{}"
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, (str, int)):
            msg = f"{where}.tool_calls[{i}].id must be a string, got {type(call_id).__name__}"
            raise _LineError(msg)
        parts.append(ToolCall(str(call_id or ""), fn["name"], arguments))
    return Message(role, parts)  # type: ignore[arg-type]  # one of _ROLES, checked above


def _content(value: Any, where: str) -> Iterator[Part]:
    if value is None:
        return
    if isinstance(value, str):
        yield Text(value)
        return
    if not isinstance(value, list):
        msg = f"{where}.content must be a string or a list of parts"
        raise _LineError(msg)
    for part in value:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            yield Text(part["text"])
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                msg = f"{where}: an image_url part needs a url"
                raise _LineError(msg)
            detail = image.get("detail") if isinstance(image, dict) else None
            if detail is not None and not isinstance(detail, str):
                msg = f"{where}: image_url.detail must be a string (low, high or auto)"
                raise _LineError(msg)
            yield Image(url=url, detail=detail)
        else:
            msg = f"{where}: unsupported content part {kind!r} (text and image_url are)"
            raise _LineError(msg)


def _tools(value: Any) -> tuple[Tool, ...]:
    if not isinstance(value, list):
        msg = "'tools' must be a list"
        raise _LineError(msg)
    tools = []
    for t in value:
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            msg = "each tool needs {'type': 'function', 'function': {'name': ...}}"
            raise _LineError(msg)
        where = f"tool {fn['name']!r}"
        if not isinstance(fn.get("description") or "", str):
            msg = f"{where}: 'description' must be a string"
            raise _LineError(msg)
        if not isinstance(fn.get("parameters") or {}, dict):
            msg = f"{where}: 'parameters' must be a JSON Schema object"
            raise _LineError(msg)
        if fn.get("strict") is not None and not isinstance(fn["strict"], bool):
            msg = f"{where}: 'strict' must be true or false"
            raise _LineError(msg)
        tools.append(
            Tool(
                fn["name"],
                fn.get("description") or "",
                fn.get("parameters") or {"type": "object", "properties": {}},
                fn.get("strict"),
            )
        )
    return tuple(tools)


def _tool_choice(value: Any) -> ToolChoice:
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict):
        fn = value.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return ToolChoice("tool", fn["name"])
    msg = f"unsupported tool_choice {value!r}"
    raise _LineError(msg)


def _openai_format(value: Any) -> ResponseFormat:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return ResponseFormat()
    if kind == "json_object":
        return ResponseFormat("json")
    if kind == "json_schema":
        spec = value.get("json_schema")
        if (
            isinstance(spec, dict)
            and isinstance(spec.get("schema"), dict)
            and isinstance(spec.get("name", ""), (str, type(None)))
            and isinstance(spec.get("strict", True), bool)
        ):
            return ResponseFormat(
                "json_schema", spec["schema"], spec.get("name"), bool(spec.get("strict", True))
            )
    msg = f"unsupported response_format {value!r}"
    raise _LineError(msg)


def _plain_format(value: Any) -> ResponseFormat:
    if value in ("text", "json"):
        return ResponseFormat(value)
    if isinstance(value, dict):
        if value.get("type") in ("text", "json_object", "json_schema"):
            return _openai_format(value)
        return ResponseFormat("json_schema", value)
    msg = "'response_format' must be 'text', 'json', a JSON schema or an OpenAI response_format"
    raise _LineError(msg)


def resolve_models(
    items: Iterable[BatchItem],
    *,
    override: str | None,
    default_model: str | None,
    aliases: Iterable[str] = (),
) -> list[BatchItem]:
    """Give each item its model reference: ``override`` (``-m``), else the line's own
    model, else ``default_model``.

    A line's model must be an llmx reference (``instance/model``) or an alias; an
    OpenAI Batch line naming a bare model such as ``gpt-4o-mini`` needs ``-m``. Raises
    :class:`BatchError` listing every model that cannot be used.
    """
    known_aliases = set(aliases)
    out: list[BatchItem] = []
    bad: Counter[str] = Counter()
    missing = 0
    for item in items:
        chosen = override or item.model or default_model
        if chosen is None:
            missing += 1
            continue
        if (
            override is None
            and item.model is not None
            and "/" not in chosen
            and chosen not in known_aliases
        ):
            bad[chosen] += 1
            continue
        out.append(attrs.evolve(item, request=item.request.with_model(chosen)))
    problems = []
    if missing:
        problems.append(
            f"{missing} line(s) name no model and there is no default_model: pass -m instance/model"
        )
    if bad:
        names = ", ".join(f"{m!r} ({n} lines)" for m, n in bad.most_common(5))
        problems.append(
            f"the input names models that are neither 'instance/model' nor an alias: {names}; "
            "pass -m to choose the model (e.g. -m openai/gpt-4o-mini, or an alias)"
        )
    if problems:
        raise BatchError("; ".join(problems))
    return out


# -- results file --------------------------------------------------------------------------


@attrs.frozen
class ResultsState:
    """What a results file already holds: ids with a result, which of them failed, and
    whether a torn last line was dropped."""

    done: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    lines: int = 0
    repaired_bytes: int = 0


def _record_id(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    value = record.get("custom_id", record.get("id"))
    return value if isinstance(value, str) else None


def load_results(path: Path) -> ResultsState:
    """Read ``path`` (missing: empty), truncating a torn last line in place.

    A last line without its newline, or whose JSON does not parse, is what a process
    killed in the middle of a write leaves: it is cut off (its request runs again). A
    broken line anywhere else means something else wrote the file: :class:`BatchError`.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ResultsState()
    except OSError as err:
        msg = f"cannot read the results file {str(path)!r}: {err.strerror}"
        raise BatchError(msg) from err
    keep = len(data)
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
    done: set[str] = set()
    failed: set[str] = set()
    lines = data[:keep].split(b"\n")[:-1] if keep else []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        record_id = _record_id(record)
        if record_id is None:
            if index == len(lines) - 1 and keep == len(data):
                keep -= len(line) + 1
                lines = lines[:-1]
                break
            msg = (
                f"line {index + 1} of the results file {str(path)!r} is not a result line; "
                "was it written by something else? Fix or remove it, or write to another file (-o)"
            )
            raise BatchError(msg) from None
        if record.get("error") is not None:
            if record_id not in done:
                failed.add(record_id)
        else:
            failed.discard(record_id)
        done.add(record_id)
    repaired = len(data) - keep
    if repaired:
        with path.open("r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    return ResultsState(frozenset(done), frozenset(failed), len(lines), repaired)


def _iter_records(path: Path) -> Iterator[tuple[bytes, Any]]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield line if line.endswith(b"\n") else line + b"\n", json.loads(line)


def rewrite_results(path: Path, keep: Callable[[Any], bool], order: Sequence[str] = ()) -> int:
    """Atomically rewrite ``path`` keeping the records ``keep`` accepts, sorted by ``order``
    (ids not in it follow, in file order). Returns how many records were dropped."""
    records = list(_iter_records(path))
    kept = [(line, rec) for line, rec in records if keep(rec)]
    if order:
        rank = {item_id: i for i, item_id in enumerate(order)}
        tail = len(rank)
        kept.sort(key=lambda pair: rank.get(_record_id(pair[1]) or "", tail))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for line, _ in kept:
                out.write(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)
    return len(records) - len(kept)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ResultWriter:
    """Appends result lines to the results file: one ``write`` per line, flushed at once
    (so a killed process loses at most the line being written), fsync'd at least every
    ``fsync_interval`` seconds and on close. Holds an exclusive lock on the file so two
    runs never write the same results file."""

    def __init__(self, path: Path, *, fsync_interval: float = _FSYNC_INTERVAL) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            msg = f"cannot open the results file {str(path)!r}: {err.strerror}"
            raise BatchError(msg) from err
        try:
            _lock(self._fd, path)
        except BaseException:
            os.close(self._fd)
            raise
        self._interval = fsync_interval
        self._last_sync = time.monotonic()
        self._dirty = False
        self.written = 0

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record as a JSON line. Raises ``OSError`` if the write fails, after
        cutting off what part of the line was written (so the file ends on a whole line)."""
        data = encode_record(record)
        view = memoryview(data)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError:
            if len(view) != len(data):
                with contextlib.suppress(OSError):  # else the resume drops the torn line
                    os.ftruncate(self._fd, start)
            raise
        self.written += 1
        self._dirty = True
        now = time.monotonic()
        if now - self._last_sync >= self._interval:
            self.sync(now)

    def sync(self, now: float | None = None) -> None:
        """fsync what was written so far."""
        if self._dirty and self._fd >= 0:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic() if now is None else now

    def close(self) -> None:
        """fsync and close (idempotent); raises ``OSError`` if the fsync fails."""
        if self._fd < 0:
            return
        try:
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One result line as UTF-8 bytes. Text that cannot be UTF-8 (a lone surrogate, half
    an emoji) makes that line ASCII with JSON escapes (``\\ud83d``), which read back as the
    same string; every other line keeps its text as is."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    try:
        return text.encode()
    except UnicodeEncodeError:
        return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _lock(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        msg = f"another process is writing {str(path)!r} (another llmx batch on the same file?)"
        raise BatchError(msg) from err


# -- result records --------------------------------------------------------------------------


def success_record(item: BatchItem, response: Response) -> dict[str, Any]:
    """The result line of a request that got an answer."""
    usage = response.usage
    return {
        "id": item.id,
        "custom_id": item.id,
        "response": {
            "status_code": 200,
            "text": response.text,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls
            ],
            "finish_reason": response.finish_reason,
            "model": response.model,
            "provider": response.provider,
            "response_id": response.id,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            "cost": response.cost,
            "latency": round(response.latency, 6),
            "attempts": len(response.attempts),
        },
        "error": None,
    }


def error_record(item: BatchItem, err: BaseException) -> dict[str, Any]:
    """The result line of a request that failed (after the pipeline's retries/fallback)."""
    error: dict[str, Any] = {
        "type": type(err).__name__,
        "message": str(err),
        "status": None,
        "retryable": False,
        "provider": None,
        "code": None,
    }
    if isinstance(err, ProviderError):
        error.update(
            message=err.message,
            status=err.status,
            retryable=err.retryable,
            provider=err.provider,
            code=err.code,
            retry_after=err.retry_after,
        )
    elif isinstance(err, AllCandidatesFailedError):
        causes = [e for e in err.errors if isinstance(e, ProviderError)]
        error["retryable"] = any(e.retryable for e in causes)
        if causes:
            error["status"] = causes[-1].status
    elif not isinstance(err, LlmxError):
        error["type"] = f"internal:{type(err).__name__}"
    return {"id": item.id, "custom_id": item.id, "response": None, "error": error}


# -- running ---------------------------------------------------------------------------------


@attrs.define
class BatchStats:
    """Counts and totals of one run (what the progress bar and the summary show)."""

    total: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    priced: int = 0
    """How many answers had a known cost (the others' models have no prices)."""
    errors: Counter[str] = attrs.field(factory=Counter)
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None

    @property
    def completed(self) -> int:
        """Requests that got a result line in this run."""
        return self.succeeded + self.failed

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it finished)."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Results per second in this run."""
        elapsed = self.elapsed
        return self.completed / elapsed if elapsed > 0 else 0.0

    def add(self, record: Mapping[str, Any]) -> None:
        """Count one result record."""
        response = record["response"]
        if response is None:
            self.failed += 1
            self.errors[record["error"]["type"]] += 1
            return
        self.succeeded += 1
        usage = response["usage"]
        self.input_tokens += usage["input_tokens"]
        self.output_tokens += usage["output_tokens"]
        if response["cost"] is not None:
            self.cost += response["cost"]
            self.priced += 1


class BatchRunner:
    """Runs items through ``complete`` with at most ``concurrency`` in flight, writing each
    result as it completes. :meth:`stop` (from a signal handler) cancels what is in
    flight; those ids get no line and run again next time."""

    def __init__(
        self,
        complete: Callable[[Request], Any],
        items: Sequence[BatchItem],
        writer: ResultWriter,
        *,
        concurrency: int,
        stats: BatchStats | None = None,
        on_result: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        if concurrency < 1:
            msg = "concurrency must be at least 1"
            raise BatchError(msg)
        self._complete = complete
        self._items = items
        self._writer = writer
        self._concurrency = concurrency
        self.stats = stats if stats is not None else BatchStats(total=len(items))
        self._on_result = on_result
        self._tasks: list[asyncio.Task[None]] = []
        self.stopped_by: int | None = None
        """The signal number that stopped the run, if one did."""
        self.write_error: OSError | None = None
        """The failed write of the results file that stopped the run, if one did."""
        self.unwritten: list[Mapping[str, Any]] = []
        """Records whose answer arrived but whose write failed (see :meth:`retry_unwritten`)."""

    async def run(self) -> BatchStats:
        """Run every item (or until :meth:`stop`); returns the stats."""
        queue = iter(self._items)
        workers = min(self._concurrency, len(self._items))
        self._tasks = [asyncio.create_task(self._worker(queue)) for _ in range(workers)]
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self.stats.finished = time.monotonic()
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return self.stats

    @property
    def stopped(self) -> bool:
        """Whether a signal or a failed write stopped the run before its end."""
        return self.stopped_by is not None or self.write_error is not None

    async def _worker(self, queue: Iterator[BatchItem]) -> None:
        for item in queue:
            if self.stopped:
                return
            try:
                response = await self._complete(item.request)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                record = error_record(item, err)
            else:
                record = success_record(item, response)
            try:
                self._writer.write(record)
            except OSError as err:
                self._write_failed(record, err)
                return
            self.stats.add(record)
            if self._on_result is not None:
                self._on_result(record)

    def _write_failed(self, record: Mapping[str, Any], err: OSError) -> None:
        """Stop as :meth:`stop` does: the file cannot take more results."""
        self.unwritten.append(record)
        if self.write_error is None:
            self.write_error = err
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    def retry_unwritten(self) -> int:
        """Write the records whose write failed once more (space may have come back);
        returns how many are still not written."""
        while self.unwritten:
            try:
                self._writer.write(self.unwritten[0])
            except OSError:
                break
            record = self.unwritten.pop(0)
            self.stats.add(record)
            if self._on_result is not None:
                self._on_result(record)
        return len(self.unwritten)

    def stop(self, signum: int) -> None:
        """Stop: start no new request and cancel those in flight (they run again on resume)."""
        if self.stopped_by is None:
            self.stopped_by = signum
        for task in self._tasks:
            task.cancel()


# -- the command -------------------------------------------------------------------------------


@attrs.frozen
class BatchOptions:
    """What ``llmx batch`` was asked to do (see :func:`run_command`)."""

    input: Path
    output: Path | None = None
    model: str | None = None
    concurrency: int = 16
    order: Order = "input"
    retry_failed: bool = False
    strict: bool = False
    quiet: bool = False
    config: str | None = None
    provider_batch: bool = False
    """Run through the providers' batch APIs (:mod:`llmx._provider_batch`)."""
    poll_interval: float = 10.0
    """``provider_batch``: seconds between polls at first (backing off to 30x when nothing changes)."""
    timeout: float | None = None
    """``provider_batch``: stop waiting after this many seconds (the batches go on; rerun to resume)."""
    cancel: bool = False
    """``provider_batch``: cancel the recorded batches, then write what they answered."""


def default_output(input_path: Path) -> Path:
    """``requests.jsonl`` -> ``requests.results.jsonl`` (next to the input)."""
    stem = input_path.name.removesuffix(".jsonl").removesuffix(".json")
    return input_path.with_name(f"{stem}.results.jsonl")


def _problem_lines(problems: Sequence[InputProblem], limit: int = 10) -> list[str]:
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return lines


EXIT_WRITE_FAILED = 74
"""Exit status when the results file could not be written (``EX_IOERR`` of sysexits.h)."""


def run_command(
    options: BatchOptions, echo: Callable[[str], None], make_client: ClientFactory
) -> int:
    """Run ``llmx batch`` and return its exit status: 0 when every request has an answer,
    1 when some failed or input lines were skipped, 128 + the signal number when stopped
    by SIGINT (130) or SIGTERM (143), :data:`EXIT_WRITE_FAILED` (74) when writing the
    results file failed. ``echo`` prints a line to standard error; if standard error
    is closed (its reader went away), the lines are dropped and the batch goes on: its
    output is the results file."""
    return asyncio.run(_run_command(options, _tolerant(echo), make_client))


def _tolerant(echo: Callable[[str], None]) -> Callable[[str], None]:
    gone = False

    def safe(line: str) -> None:
        nonlocal gone
        if gone:
            return
        try:
            echo(line)
        except OSError:  # EPIPE, EIO: nobody reads standard error any more
            gone = True
            _silence_stderr()

    return safe


def _silence_stderr() -> None:
    """Point file descriptor 2 at /dev/null, so later writes (rich's summary, logging,
    Python's exit-time flush) neither fail nor change the exit status."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)


def check_output_path(output: Path) -> None:
    """Refuse a results file that is not a regular file (or a path that does not exist
    yet): a pipe or device cannot be resumed from, locked or rewritten in input order,
    and reading ``/dev/full`` or ``/dev/zero`` back never ends."""
    import stat

    try:
        mode = output.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        msg = f"cannot use the results file {str(output)!r}: {err.strerror}"
        raise BatchError(msg) from err
    if stat.S_ISREG(mode):
        return
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a pipe"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
    )
    msg = (
        f"the results file {str(output)!r} is {kind}, not a regular file: llmx batch "
        "appends each result to a file that a re-run resumes from and that is rewritten "
        "in input order at the end. Pass -o FILE and read the results from there "
        "(e.g. -o results.jsonl, then cat results.jsonl)"
    )
    raise BatchError(msg)


ClientFactory = Callable[[Any], Any]
"""Builds the client from ``BatchOptions.config`` (``llmx.Client``: the command passes it,
so this module does not import the client, which imports the batch modules)."""


def prepare(
    options: BatchOptions, echo: Callable[[str], None], make_client: ClientFactory
) -> tuple[Any, Path, BatchInput, list[InputProblem], list[BatchItem]]:
    """What every ``llmx batch`` run starts with: the client, the results file, the parsed
    input (bad lines reported, or refused with ``strict``) and the items with their models
    resolved (an unknown instance or alias fails here, once)."""
    output = options.output or default_output(options.input)
    check_output_path(output)
    if output.resolve() == options.input.resolve():
        msg = "the results file (-o) must not be the input file"
        raise BatchError(msg)
    client = make_client(options.config)
    parsed = read_input(options.input)
    problems = [*parsed.malformed, *parsed.duplicates]
    if problems and options.strict:
        lines = "\n  ".join(_problem_lines(sorted(problems, key=lambda p: p.line)))
        msg = f"{options.input} has {len(problems)} bad line(s) (--strict):\n  {lines}"
        raise BatchError(msg)
    for line in _problem_lines(parsed.malformed):
        echo(f"llmx: warning: {options.input}: {line} (skipped)")
    for line in _problem_lines(parsed.duplicates):
        echo(f"llmx: warning: {options.input}: {line}")
    items = resolve_models(
        parsed.items,
        override=options.model,
        default_model=client.config.default_model,
        aliases=client.config.aliases,
    )
    for ref in sorted({item.request.model for item in items}):
        client.model_info(ref)  # an unknown instance or alias fails here, once, not per line
    return client, output, parsed, problems, items


async def _run_command(
    options: BatchOptions, echo: Callable[[str], None], make_client: ClientFactory
) -> int:
    import signal

    client, output, parsed, problems, items = prepare(options, echo, make_client)
    writer = ResultWriter(output)
    try:
        try:
            for stale in output.parent.glob(f".{output.name}.*.tmp"):  # a rewrite cut short
                stale.unlink(missing_ok=True)
            state = load_results(output)
        except OSError as err:
            msg = f"cannot prepare the results file {str(output)!r}: {err.strerror or err}"
            raise BatchError(msg) from err
        if state.repaired_bytes:
            echo(
                f"llmx: {output}: dropped a torn last line ({state.repaired_bytes} bytes) left "
                "by an interrupted run; its request runs again"
            )
        input_ids = {item.id for item in items}
        done = set(state.done)
        if options.retry_failed:
            retry = state.failed & input_ids
            if retry:
                try:
                    rewrite_results(output, lambda rec: _record_id(rec) not in retry)
                except OSError as err:
                    msg = (
                        f"cannot rewrite the results file {str(output)!r} without its failed "
                        f"results: {err.strerror or err}; nothing was run"
                    )
                    raise BatchError(msg) from err
                writer.close()
                writer = ResultWriter(output)
                done -= retry
                echo(f"llmx: retrying {len(retry)} failed request(s)")
        unknown = len(state.done - input_ids)
        if unknown:
            echo(f"llmx: warning: {output} holds {unknown} result(s) for ids not in the input")
        pending = [item for item in items if item.id not in done]
        stats = BatchStats(total=len(pending), skipped=len(items) - len(pending))
        still_failed = len((state.failed & input_ids) - {p.id for p in pending})
        if stats.skipped and not options.quiet:
            echo(f"llmx: resuming: {stats.skipped} of {len(items)} requests already have a result")

        progress = None if options.quiet else _Progress.start(stats)
        runner = BatchRunner(
            client.complete,
            pending,
            writer,
            concurrency=options.concurrency,
            stats=stats,
            on_result=progress.update if progress is not None else None,
        )
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if runner.stopped_by is not None:  # a second signal: stop now
                if progress is not None:
                    progress.stop()
                with contextlib.suppress(OSError):
                    writer.close()
                os._exit(128 + signum)
            runner.stop(signum)

        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                handled.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
                pass
        try:
            async with client:
                await runner.run()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            if progress is not None:
                progress.stop()
            if runner.write_error is not None:
                runner.retry_unwritten()
            try:
                writer.close()
            except OSError as err:  # the last fsync: what is not on disk may be lost
                if runner.write_error is None:
                    runner.write_error = err
    finally:
        with contextlib.suppress(OSError):
            writer.close()

    write_error = runner.write_error
    if write_error is None and not runner.stopped and options.order == "input":
        try:
            rewrite_results(output, lambda rec: True, [item.id for item in items])
        except OSError as err:
            write_error = err
            echo(
                f"llmx: error: every result is in {output}, but putting them in input order "
                f"failed: {err.strerror or err}; they stay in completion order. Run the same "
                "command again to order them (nothing runs again)"
            )
            return EXIT_WRITE_FAILED
    failed_total = still_failed + stats.failed
    not_run = len(pending) - stats.completed
    try:
        _summary(options, output, stats, parsed, failed_total, not_run, runner.stopped_by, echo)
    except OSError:
        _silence_stderr()
    if write_error is not None:
        echo(_write_failure_message(output, write_error, stats, runner, not_run))
        return EXIT_WRITE_FAILED
    if runner.stopped_by is not None:
        return 128 + runner.stopped_by
    return 1 if failed_total or problems else 0


def _write_failure_message(
    output: Path, err: OSError, stats: BatchStats, runner: BatchRunner, not_run: int
) -> str:
    lost = len(runner.unwritten)
    answered = f"; {lost} answer(s) arrived but could not be written" if lost else ""
    return (
        f"llmx: error: cannot write the results file {output}: {err.strerror or err} "
        f"(errno {err.errno}). The batch stopped: {stats.completed} result(s) written in "
        f"this run{answered}; {not_run} request(s) have no result and run when you run "
        "the same command again (after freeing space); ids already written are not asked again"
    )


class _Progress:
    """The live progress bar (rich, on standard error): done, failed, rate, ETA, tokens, cost."""

    def __init__(self, progress: Any, task: Any, stats: BatchStats) -> None:
        self._progress = progress
        self._task = task
        self._stats = stats
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    @classmethod
    def start(cls, stats: BatchStats) -> _Progress | None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            return None
        progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]:.1f} req/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tokens]} tok"),
            TextColumn("${task.fields[cost]:.4f}"),
            console=console,
            transient=False,
        )
        task = progress.add_task("batch", total=stats.total, failed=0, rate=0.0, tokens=0, cost=0.0)
        progress.start()
        self = cls(progress, task, stats)
        # Log lines (retries, warnings) go above the bar instead of through it: rich
        # redirects sys.stderr while it runs; point the stderr log handlers at it.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.__stderr__:
                self._handlers.append((handler, handler.setStream(sys.stderr)))
        return self

    def update(self, record: Mapping[str, Any]) -> None:
        """Show the stats after ``record`` was written."""
        s = self._stats
        self._progress.update(
            self._task,
            completed=s.completed,
            failed=s.failed,
            rate=s.rate,
            tokens=s.input_tokens + s.output_tokens,
            cost=s.cost,
        )

    def stop(self) -> None:
        """Stop the live display (idempotent) and give log handlers their stream back."""
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers.clear()
        self._progress.stop()


def _summary(
    options: BatchOptions,
    output: Path,
    stats: BatchStats,
    parsed: BatchInput,
    failed_total: int,
    not_run: int,
    stopped_by: int | None,
    echo: Callable[[str], None],
) -> None:
    if stopped_by is not None:
        import signal

        name = signal.Signals(stopped_by).name
        echo(
            f"llmx: stopped by {name}: {stats.completed} result(s) written, {not_run} request(s) "
            "not finished; run the same command again to resume"
        )
    if options.quiet:
        echo(
            f"llmx batch: {stats.succeeded} ok, {stats.failed} failed, {stats.skipped} already "
            f"done, {not_run} not run, in {stats.elapsed:.1f}s -> {output}"
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="llmx batch", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("results file", str(output))
    table.add_row("requests", str(stats.total + stats.skipped))
    table.add_row("already done (skipped)", str(stats.skipped))
    table.add_row("succeeded", f"[green]{stats.succeeded}")
    table.add_row("failed", f"[red]{stats.failed}" if stats.failed else "0")
    for kind, count in stats.errors.most_common():
        table.add_row(f"  {kind}", str(count))
    if not_run:
        table.add_row("not run (stopped; run again to resume)", str(not_run))
    if parsed.malformed:
        table.add_row("malformed lines (skipped)", str(len(parsed.malformed)))
    if parsed.duplicates:
        table.add_row("duplicate ids (skipped)", str(len(parsed.duplicates)))
    table.add_row("tokens in / out", f"{stats.input_tokens} / {stats.output_tokens}")
    unpriced = stats.succeeded - stats.priced
    cost = f"{stats.cost:.6f}" + (f" ({unpriced} without prices)" if unpriced else "")
    table.add_row("cost (USD)", cost)
    table.add_row("elapsed", f"{stats.elapsed:.2f} s")
    table.add_row("throughput", f"{stats.rate:.1f} req/s")
    Console(stderr=True).print(table)
    if failed_total and stopped_by is None:
        echo(
            f"llmx: {failed_total} request(s) failed; re-run with --retry-failed to try them again"
        )

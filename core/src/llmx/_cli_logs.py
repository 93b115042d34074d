"""``llmx logs`` and ``llmx stats`` (the request log), and what ``llmx chat`` needs from
it: the log switched on for the CLI, conversations continued (``-c``, ``--cid``) and the
interactive multi-turn chat.

Imported by :mod:`llmx._cli` only (never the other way round: the CLI's helpers a
command here needs are passed in or are the small copies below); nothing here runs at
``import llmx``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import click

from llmx._errors import LlmxError

if TYPE_CHECKING:
    import sqlite3

    from llmx._config import Config
    from llmx._types import Message


class _State(Protocol):
    """What the commands here read of the CLI's top-level options (``llmx._cli._State``)."""

    config_path: str | None
    debug: bool


def _echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (lone surrogates escaped), as ``llmx._cli`` does."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=2, default=str)
    click.echo(text)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns padded to their widest cell (the CLI's table format)."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(str(cell)))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    click.echo(fmt.format(*header).rstrip())
    for row in rows:
        click.echo(fmt.format(*(str(c) for c in row)).rstrip())


# -- dates -------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """A point in time from ``--since``/``--until``: an ISO date or date-time (without a
    zone: local time) or a duration ago (``30m``, ``2h``, ``7d``, ``1w``). Returns an
    aware UTC datetime; raises ValueError with what is accepted."""
    now = now or dt.datetime.now(dt.timezone.utc)
    match = _RELATIVE.match(text)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        try:
            return now - dt.timedelta(seconds=seconds)
        except OverflowError:
            msg = f"{text!r} reaches too far back"
            raise ValueError(msg) from None
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        msg = (
            f"{text!r} is not a date: give an ISO date or time (2026-12-01, "
            "2026-12-01T09:30, 2026-12-01T09:30Z) or a duration ago (30m, 2h, 7d, 1w)"
        )
        raise ValueError(msg) from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time
    return when.astimezone(dt.timezone.utc)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


class _When(click.ParamType):  # type: ignore[type-arg]
    name = "WHEN"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


WHEN = _When()

# -- the database --------------------------------------------------------------------------


def _log_config(state: _State) -> Any:
    from llmx._config import load_config

    return load_config(state.config_path).log


def log_path(state: _State) -> Path:
    """The log database this CLI reads and writes."""
    return Path(_log_config(state).resolved_path())


def _open(state: _State) -> sqlite3.Connection:
    from llmx._requestlog import connect

    return connect(log_path(state), create=False)


@attrs.frozen
class Filters:
    """``WHERE`` conditions over ``requests`` from the command's options."""

    model: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    conversation: str | None = None
    query: str | None = None
    errors: bool = False

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters (``1`` when there is none)."""
        parts: list[str] = []
        args: list[Any] = []
        if self.model:
            parts.append(
                "(model = ? OR resolved_model = ? OR instance = ? "
                "OR instance || '/' || resolved_model = ?)"
            )
            args += [self.model] * 4
        if self.since is not None:
            parts.append("datetime_utc >= ?")
            args.append(_iso(self.since))
        if self.until is not None:
            parts.append("datetime_utc < ?")
            args.append(_iso(self.until))
        if self.conversation:
            parts.append("conversation_id = ?")
            args.append(self.conversation)
        if self.query:
            parts.append("id IN (SELECT rowid FROM requests_fts WHERE requests_fts MATCH ?)")
            args.append(self.query)
        if self.errors:
            parts.append("error_type IS NOT NULL")
        return (" AND ".join(parts) or "1"), args

    @property
    def any(self) -> bool:
        """Whether any filter is set."""
        return (
            any(
                v not in (None, False)
                for v in (self.model, self.since, self.until, self.conversation, self.query)
            )
            or self.errors
        )


def _fts_quoted(query: str) -> str:
    """Each word of ``query`` as an FTS5 string (for text that is not FTS5 syntax)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query.split())


def select(
    db: sqlite3.Connection, filters: Filters, sql: str, tail: str = "", extra: Sequence[Any] = ()
) -> list[sqlite3.Row]:
    """Run ``sql WHERE <filters> tail``; a query that is not valid FTS5 syntax is run
    again with each word quoted."""
    import sqlite3

    where, args = filters.where()
    try:
        return db.execute(f"{sql} WHERE {where} {tail}", [*args, *extra]).fetchall()
    except sqlite3.OperationalError as err:
        if not filters.query:
            msg = f"cannot read the request log: {err}"
            raise LlmxError(msg) from err
    # Not FTS5 syntax (an unbalanced quote, a stray operator): search the words instead.
    quoted = attrs.evolve(filters, query=_fts_quoted(filters.query) or None)
    where, args = quoted.where()
    try:
        return db.execute(f"{sql} WHERE {where} {tail}", [*args, *extra]).fetchall()
    except sqlite3.OperationalError as err:
        msg = f"cannot search the request log for {filters.query!r}: {err}"
        raise LlmxError(msg) from err


def _filter_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option("-m", "--model", help="Only this model ref, model or instance."),
            click.option("--since", type=WHEN, help="From this time (ISO, or 30m/2h/7d ago)."),
            click.option("--until", type=WHEN, help="Before this time (ISO, or 30m/2h/7d ago)."),
            click.option("--cid", "--conversation", "conversation", help="Only this conversation."),
            click.option("-q", "--query", help="Full-text search of prompts and replies (FTS5)."),
            click.option("--errors", is_flag=True, help="Only failed requests."),
        ]
    ):
        func = option(func)
    return func


def _filters(**kw: Any) -> Filters:
    return Filters(**{k: kw[k] for k in attrs.fields_dict(Filters)})


# -- llmx logs ---------------------------------------------------------------------------


@click.group("logs", invoke_without_command=True)
@_filter_options
@click.option(
    "-n",
    "--count",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many of the latest requests (0: all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def logs_cmd(ctx: click.Context, /, count: int, as_json: bool, **kw: Any) -> None:
    """List the request log, latest last: what llmx chat (and clients with [log] on) sent
    and received. Sub-commands show one request, print the database's path, redact or
    purge requests."""
    if ctx.invoked_subcommand is not None:
        return
    state: _State = ctx.obj
    filters = _filters(**kw)
    db = _open(state)
    with db:
        rows = select(
            db,
            filters,
            "SELECT * FROM requests",
            "ORDER BY id DESC" + (" LIMIT ?" if count else ""),
            [count] if count else [],
        )
    from llmx._requestlog import rows_to_dicts

    data = rows_to_dicts(rows[::-1])
    if as_json:
        _echo_json(data)
        return
    if not data:
        click.echo("no requests logged" + (" match" if filters.any else ""), err=True)
        return
    for row in data:
        click.echo(_summary(row))


def _summary(row: dict[str, Any]) -> str:
    when = row["datetime_utc"][:19].replace("T", " ")
    where = "/".join(x for x in (row["instance"], row["resolved_model"]) if x) or row["model"]
    facts = [f"#{row['id']}", when, where]
    if row["conversation_id"]:
        facts.append(f"conversation {row['conversation_id']}")
    if row["latency"] is not None:
        facts.append(f"{row['latency']:.2f} s")
    if row["input_tokens"] is not None:
        facts.append(f"{row['input_tokens']}+{row['output_tokens']} tokens")
    if row["cost"] is not None:
        facts.append(f"${row['cost']:.6f}")
    if row["cached"]:
        facts.append("cached")
    lines = ["  ".join(facts)]
    if row["prompt"]:
        lines.append(f"  > {_clip(row['prompt'])}")
    if row["error_type"]:
        lines.append(f"  ! {row['error_type']}: {_clip(row['error'] or '')}")
    elif row["reply"] is not None:
        lines.append(f"  < {_clip(row['reply'])}")
    return "\n".join(lines)


def _clip(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


@logs_cmd.command("show")
@click.argument("request_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def logs_show(state: _State, request_id: int, as_json: bool) -> None:
    """Show one logged request in full: every field, the messages sent and the reply."""
    from llmx._requestlog import rows_to_dicts

    db = _open(state)
    with db:
        rows = db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchall()
    if not rows:
        msg = f"no request #{request_id} in {log_path(state)} (llmx logs lists them)"
        raise LlmxError(msg)
    (row,) = rows_to_dicts(rows)
    if as_json:
        _echo_json(row)
        return
    for key, value in row.items():
        if key in ("messages", "reply", "system", "prompt") or value is None:
            continue
        click.echo(f"{key}: {value}")
    for message in row["messages"] or []:
        click.echo(f"--- {message.get('role')}")
        for part in message.get("content", []):
            click.echo(
                part.get("text", "") if part.get("type") == "text" else f"[{part.get('type')}]"
            )
    if row["reply"] is not None:
        click.echo("--- reply")
        click.echo(row["reply"])


@logs_cmd.command("path")
@click.pass_obj
def logs_path(state: _State) -> None:
    """Print the request log's path (``[log] path``, default under the user data dir)."""
    click.echo(str(log_path(state)))


def _scrub_file(db: sqlite3.Connection) -> None:
    """After deleting or blanking text: merge the full-text index, copy the database
    compactly and empty the WAL, so the old text is not left in free pages."""
    db.execute("INSERT INTO requests_fts(requests_fts) VALUES ('optimize')")
    db.execute(
        "DELETE FROM conversations WHERE id NOT IN "
        "(SELECT conversation_id FROM requests WHERE conversation_id IS NOT NULL)"
    )
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _changing(filters: Filters, everything: bool, what: str) -> None:
    if not filters.any and not everything:
        msg = f"{what} which requests? give filters (--since, --until, -m, --cid, -q, --errors) or --all"
        raise click.UsageError(msg)


@logs_cmd.command("purge")
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Every request.")
@click.pass_obj
def logs_purge(state: _State, /, everything: bool, **kw: Any) -> None:
    """Delete the matching requests from the log (and their text from the file)."""
    filters = _filters(**kw)
    _changing(filters, everything, "purge")
    db = _open(state)
    try:
        ids = [r[0] for r in select(db, filters, "SELECT id FROM requests")]
        db.execute("BEGIN IMMEDIATE")
        db.executemany("DELETE FROM requests WHERE id = ?", [(i,) for i in ids])
        db.execute("COMMIT")
        _scrub_file(db)
    finally:
        db.close()
    click.echo(f"purged {len(ids)} request(s)", err=True)


@logs_cmd.command("redact")
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Every request.")
@click.pass_obj
def logs_redact(state: _State, /, everything: bool, **kw: Any) -> None:
    """Blank the text of the matching requests (messages, prompt, reply, error message),
    keeping model, usage, cost and latency for llmx stats."""
    filters = _filters(**kw)
    _changing(filters, everything, "redact")
    db = _open(state)
    try:
        ids = [r[0] for r in select(db, filters, "SELECT id FROM requests")]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "UPDATE requests SET system = NULL, prompt = NULL, messages = NULL, "
            "reply = CASE WHEN reply IS NULL THEN NULL ELSE '[redacted]' END, "
            "error = CASE WHEN error IS NULL THEN NULL ELSE '[redacted]' END WHERE id = ?",
            [(i,) for i in ids],
        )
        db.execute("COMMIT")
        _scrub_file(db)
    finally:
        db.close()
    click.echo(f"redacted {len(ids)} request(s)", err=True)


# -- llmx stats --------------------------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of sorted values."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def compute_stats(rows: Sequence[sqlite3.Row | dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (instance, model): requests, errors, cache hits, tokens, cost, and latency
    percentiles over the successful requests that reached a provider."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    latencies: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        key = (row["instance"] or "-", row["resolved_model"] or row["model"])
        g = groups.setdefault(
            key,
            {
                "instance": key[0],
                "model": key[1],
                "requests": 0,
                "errors": 0,
                "cached": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost": 0.0,
                "cost_known": True,
            },
        )
        g["requests"] += 1
        if row["error_type"]:
            g["errors"] += 1
            continue
        g["input_tokens"] += row["input_tokens"] or 0
        g["output_tokens"] += row["output_tokens"] or 0
        if row["cost"] is None:
            g["cost_known"] = False
        else:
            g["cost"] += row["cost"]
        if row["cached"]:
            g["cached"] += 1
        elif row["latency"] is not None:
            latencies.setdefault(key, []).append(row["latency"])
    out = []
    for key in sorted(groups):
        g = groups[key]
        ordered = sorted(latencies.get(key, []))
        for p in (50, 95, 99):
            g[f"latency_p{p}"] = percentile(ordered, p)
        out.append(g)
    return out


@click.command("stats")
@click.option("-m", "--model", help="Only this model ref, model or instance.")
@click.option("--since", type=WHEN, help="From this time (ISO, or 30m/2h/7d ago).")
@click.option("--until", type=WHEN, help="Before this time (ISO, or 30m/2h/7d ago).")
@click.option("--cid", "--conversation", "conversation", help="Only this conversation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats_cmd(
    state: _State,
    model: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    conversation: str | None,
    as_json: bool,
) -> None:
    """Usage, cost and latency percentiles (p50/p95/p99) per instance and model, from the
    request log (over --since/--until). Latency is over the successful requests answered
    by a provider (cache hits are counted apart); cost is in USD, "?" where a model's
    price is unknown."""
    filters = Filters(model=model, since=since, until=until, conversation=conversation)
    db = _open(state)
    with db:
        rows = select(
            db,
            filters,
            "SELECT instance, model, resolved_model, error_type, input_tokens, "
            "output_tokens, cost, cached, latency FROM requests",
        )
    stats = compute_stats(rows)
    period = {
        "since": _iso(since) if since else None,
        "until": _iso(until) if until else None,
    }
    if as_json:
        _echo_json({**period, "models": stats})
        return
    if not stats:
        click.echo("no requests logged in this period", err=True)
        return

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f} ms"

    table = [
        (
            g["instance"],
            g["model"],
            g["requests"],
            g["errors"],
            g["cached"],
            g["input_tokens"],
            g["output_tokens"],
            f"${g['cost']:.4f}" + ("" if g["cost_known"] else "?"),
            ms(g["latency_p50"]),
            ms(g["latency_p95"]),
            ms(g["latency_p99"]),
        )
        for g in stats
    ]
    _print_table(
        (
            "INSTANCE",
            "MODEL",
            "REQUESTS",
            "ERRORS",
            "CACHED",
            "IN",
            "OUT",
            "COST",
            "P50",
            "P95",
            "P99",
        ),
        table,
    )


# -- llmx chat: the log, conversations, interactive --------------------------------------


@attrs.frozen
class ChatSetup:
    """What ``llmx chat`` needs from the log: its config (log on or off), the
    conversation id, the earlier messages and model of a continued conversation."""

    config: Config
    conversation_id: str
    history: tuple[Message, ...] = ()
    model: str | None = None


def chat_setup(
    state: _State, *, continue_: bool, cid: str | None, no_log: bool, system: str | None
) -> ChatSetup:
    """The config for ``llmx chat`` (the log on unless ``--no-log`` or ``[log] enabled =
    false``) and the conversation it continues (``-c``: the latest; ``--cid``: that one)."""
    from llmx._config import load_config
    from llmx._requestlog import new_conversation_id

    config = load_config(state.config_path)
    log = config.log
    on = not no_log and log.enabled is not False
    config = attrs.evolve(config, log=attrs.evolve(log, enabled=on))
    if not continue_ and cid is None:
        return ChatSetup(config, new_conversation_id())
    path = log.resolved_path()
    from llmx._requestlog import connect

    db = connect(path, create=False)
    try:
        if cid is None:
            row = db.execute(
                "SELECT conversation_id FROM requests WHERE conversation_id IS NOT NULL "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                msg = f"no conversation to continue in {path} (start one with llmx chat)"
                raise LlmxError(msg)
            cid = str(row[0])
        last = db.execute(
            "SELECT model, messages, reply FROM requests WHERE conversation_id = ? "
            "AND error_type IS NULL ORDER BY id DESC LIMIT 1",
            (cid,),
        ).fetchone()
    finally:
        db.close()
    if last is None:
        msg = f"no answered request in conversation {cid!r} (llmx logs lists conversations)"
        raise LlmxError(msg)
    if last["messages"] is None:
        msg = (
            f"conversation {cid!r} was logged without its text ([log] content = false, or "
            "redacted): it cannot be continued"
        )
        raise LlmxError(msg)
    history = _messages_from_log(json.loads(last["messages"]), last["reply"], system)
    return ChatSetup(config, cid, history, last["model"])


def _messages_from_log(
    data: list[Any], reply: str | None, system: str | None
) -> tuple[Message, ...]:
    """The logged messages (text parts only) plus the logged reply; a new ``system``
    replaces the logged system prompt."""
    from llmx._types import Message

    out: list[Message] = []
    for item in data:
        role = item.get("role")
        if role == "system" and system is not None:
            continue
        text = "".join(
            p.get("text", "") for p in item.get("content", []) if p.get("type") == "text"
        )
        if role in ("system", "user", "assistant") and text:
            out.append(Message(role, text))
    if reply:
        out.append(Message("assistant", reply))
    return tuple(out)


def _history_file() -> Path:
    from llmx._requestlog import default_log_path

    return default_log_path().with_name("chat_history")


def interactive(
    client: Any,
    model: str,
    system: str | None,
    params: dict[str, Any],
    history: Sequence[Message],
    conversation_id: str,
    printable: Callable[[Any], Callable[..., str]],
) -> None:
    """The interactive chat: read a prompt, stream the answer, remember both; Ctrl-C
    cancels the answer being written (or the line being typed), Ctrl-D (or ``exit``)
    leaves. Readline keeps the prompts' history across sessions."""
    import asyncio
    import signal

    from llmx._types import Message, TextDelta

    history_file = _history_file()
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        readline = None  # type: ignore[assignment]
    if readline is not None:
        try:
            readline.read_history_file(history_file)
        except OSError:
            pass
        readline.set_history_length(1000)
    messages: list[Message] = list(history)
    out = sys.stdout
    click.echo(
        f"llmx chat with {model} (conversation {conversation_id}). Ctrl-C cancels an "
        "answer, Ctrl-D or 'exit' leaves.",
        err=True,
    )

    async def turn(prompt: str) -> str:
        text_for = printable(out)
        parts: list[str] = []
        async with client.stream(
            model=model, messages=messages, prompt=prompt, system=system, **params
        ) as s:
            async for chunk in s:
                if type(chunk) is TextDelta:
                    parts.append(chunk.text)
                    out.write(text_for(chunk.text))
                    out.flush()
        out.write(text_for("", final=True) + "\n")
        out.flush()
        return "".join(parts)

    loop = asyncio.new_event_loop()

    def run_turn(prompt: str) -> str:
        """One answer; Ctrl-C (SIGINT) cancels it, not the session."""
        task = loop.create_task(turn(prompt))
        try:
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Unix
            pass
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:  # pragma: no cover - no signal handler (Windows)
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
            raise asyncio.CancelledError from None
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    token = _conversation_token(conversation_id)
    try:
        loop.run_until_complete(client.__aenter__())
        while True:
            try:
                prompt = input("> ")
            except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line
                click.echo("")
                continue
            except EOFError:  # Ctrl-D
                click.echo("")
                break
            if not prompt.strip():
                continue
            if prompt.strip() in ("exit", "quit"):
                break
            try:
                answer = run_turn(prompt)
            except asyncio.CancelledError:
                out.write("\n")
                out.flush()
                click.echo("llmx: answer cancelled", err=True)
                continue
            except LlmxError as err:
                click.echo(f"llmx: error: {err}", err=True)
                continue
            messages += [Message("user", prompt), Message("assistant", answer)]
    finally:
        try:
            loop.run_until_complete(client.aclose())
        finally:
            loop.close()
            _conversation_reset(token)
            if readline is not None:
                with contextlib.suppress(OSError):
                    history_file.parent.mkdir(parents=True, exist_ok=True)
                    readline.write_history_file(history_file)


def _conversation_token(cid: str) -> Any:
    from llmx._requestlog import _conversation

    return _conversation.set(cid)


def _conversation_reset(token: Any) -> None:
    from llmx._requestlog import _conversation

    _conversation.reset(token)

"""The request log: every request's model, instance, messages, reply, usage, cost,
latency, error and conversation id in a SQLite database (``llmx logs``, ``llmx stats``).

It is off for the library unless ``[log]`` turns it on, and on for the ``llmx`` CLI
(``--no-log`` or ``[log] enabled = false`` turn it off). A client with the log on adds
one listener to its own event callers (:func:`with_listener`); with the log off nothing
is added, so the request path is the one without it.

Writing never happens on the event loop: the listener hands each finished request to a
queue, and one writer thread per :class:`RequestLog` inserts them in batches (one
transaction each), flushed by ``Client.aclose`` (and at interpreter exit). The database
is in WAL mode with a busy timeout, so several processes write to one file safely; its
schema is versioned (``PRAGMA user_version``) and migrated forward when opened.

Every text stored (messages, reply, error) goes through :func:`llmx._scrub.scrub`, so no
secret llmx knows (API keys, header secrets, URL passwords) is ever written.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from llmx._config import LogConfig, default_log_path
from llmx._errors import ConfigError
from llmx._scrub import scrub
from llmx._types import Request

if TYPE_CHECKING:
    from llmx._events import AttemptEnd, RequestEnd, RequestError, RequestStart
    from llmx._registry import _EventHooks

__all__ = [
    "SCHEMA_VERSION",
    "LogConfig",
    "RequestLog",
    "conversation",
    "current_conversation",
    "default_log_path",
    "new_conversation_id",
]

_log = logging.getLogger("llmx.requestlog")

_BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's transaction (SQLite's busy timeout)."""
_BATCH = 256
"""Rows inserted per transaction, at most."""
_PENDING_CAP = 10_000
"""Requests started but not yet ended that the listener remembers (a cancelled request
sends no end event; the oldest are forgotten past this)."""
_QUEUE_CAP = 100_000
"""Rows waiting for the writer; past this, new rows are dropped (with one warning)."""
_BLOB_LIMIT = 1024
"""Inline media (base64 ``data``) longer than this is stored as a placeholder."""


# -- conversations ---------------------------------------------------------------------

_conversation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "llmx_conversation", default=None
)
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_conversation_id() -> str:
    """A new conversation id: 26 characters, sortable by creation time (a ULID)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


@contextlib.contextmanager
def conversation(conversation_id: str | None = None) -> Iterator[str]:
    """Log the requests made inside this block (in this task and the tasks it starts)
    under one conversation id (a new one when None); yields the id::

        with llmx.requestlog.conversation() as cid:
            await client.complete(model=..., prompt="Hi")
    """
    cid = conversation_id or new_conversation_id()
    token = _conversation.set(cid)
    try:
        yield cid
    finally:
        _conversation.reset(token)


def current_conversation() -> str | None:
    """The conversation id requests made here are logged under (None: none)."""
    return _conversation.get()


# -- the schema --------------------------------------------------------------------------

_MIGRATIONS: tuple[str, ...] = (
    # 1: conversations and requests
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        model TEXT,
        created TEXT NOT NULL
    );
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        request_id TEXT,
        conversation_id TEXT REFERENCES conversations(id),
        datetime_utc TEXT NOT NULL,
        model TEXT NOT NULL,
        instance TEXT,
        resolved_model TEXT,
        stream INTEGER NOT NULL DEFAULT 0,
        system TEXT,
        prompt TEXT,
        messages TEXT,
        options TEXT,
        reply TEXT,
        finish_reason TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        reasoning_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        cost REAL,
        latency REAL,
        ttft REAL,
        attempts INTEGER,
        cached INTEGER NOT NULL DEFAULT 0,
        error_type TEXT,
        error TEXT
    );
    CREATE INDEX requests_datetime ON requests(datetime_utc);
    CREATE INDEX requests_conversation ON requests(conversation_id, id);
    CREATE INDEX requests_model ON requests(model, datetime_utc);
    """,
    # 2: full-text search over prompts and replies (FTS5, external content), backfilled
    """
    CREATE VIRTUAL TABLE requests_fts USING fts5(
        system, prompt, reply, content='requests', content_rowid='id'
    );
    CREATE TRIGGER requests_ai AFTER INSERT ON requests BEGIN
        INSERT INTO requests_fts(rowid, system, prompt, reply)
        VALUES (new.id, new.system, new.prompt, new.reply);
    END;
    CREATE TRIGGER requests_ad AFTER DELETE ON requests BEGIN
        INSERT INTO requests_fts(requests_fts, rowid, system, prompt, reply)
        VALUES ('delete', old.id, old.system, old.prompt, old.reply);
    END;
    CREATE TRIGGER requests_au AFTER UPDATE ON requests BEGIN
        INSERT INTO requests_fts(requests_fts, rowid, system, prompt, reply)
        VALUES ('delete', old.id, old.system, old.prompt, old.reply);
        INSERT INTO requests_fts(rowid, system, prompt, reply)
        VALUES (new.id, new.system, new.prompt, new.reply);
    END;
    INSERT INTO requests_fts(requests_fts) VALUES ('rebuild');
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this llmx writes (``PRAGMA user_version``)."""


def connect(path: Path | str, *, create: bool = True) -> sqlite3.Connection:
    """Open the log database at ``path`` (WAL, busy timeout), migrated to the current
    schema, with rows as :class:`sqlite3.Row`. ``create=False``: refuse a file that does
    not exist. Raises :class:`~llmx.ConfigError` when it cannot be opened or was written
    by a newer llmx."""
    path = Path(path)
    if not create and not path.exists():
        msg = f"no request log at {path} (llmx chat writes one; see [log] path in llmx.toml)"
        raise ConfigError(msg)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as err:
        msg = (
            f"cannot open the request log {path}: {err} (set [log] path in llmx.toml, or --no-log)"
        )
        raise ConfigError(msg) from err
    try:
        _prepare(db, path)
    except sqlite3.Error as err:
        db.close()
        msg = f"cannot use the request log {path}: {err} (is it an llmx log database?)"
        raise ConfigError(msg) from err
    except BaseException:
        db.close()
        raise
    db.row_factory = sqlite3.Row
    return db


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    """WAL, the pragmas and the schema, retried while another process holds the lock.

    SQLite answers "database is locked" at once, without waiting out the busy timeout,
    when two connections race to switch a new file to WAL or to upgrade a read lock to
    a write lock (it refuses rather than deadlock): two processes opening a new log
    together meet exactly that, so the whole step is retried until the busy timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA secure_delete = ON")  # purged and redacted text is overwritten
            migrate(db, path)
            return
        except sqlite3.OperationalError as err:
            busy = "locked" in str(err) or "busy" in str(err)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(db: sqlite3.Connection, path: Path | str = "the request log") -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`, each step in one exclusive
    transaction (another process migrating at the same time waits, then finds it done).
    Returns the version found before."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        msg = (
            f"{path} has request-log schema {found}, newer than this llmx's "
            f"{SCHEMA_VERSION}: upgrade llmx, or point [log] path at another file"
        )
        raise ConfigError(msg)
    while found < SCHEMA_VERSION:
        db.execute("BEGIN EXCLUSIVE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version < SCHEMA_VERSION:
                for statement in _statements(_MIGRATIONS[version]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
    return found


def _statements(script: str) -> list[str]:
    """A migration's statements (``executescript`` would commit our transaction)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def migrate_to(db: sqlite3.Connection, version: int) -> None:
    """Apply the migrations up to ``version`` only (for tests of old schemas)."""
    for step in range(int(db.execute("PRAGMA user_version").fetchone()[0]), version):
        db.executescript(_MIGRATIONS[step])
        db.execute(f"PRAGMA user_version = {step + 1}")


# -- rows --------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """``text`` as stored: secrets scrubbed, lone surrogates (half an emoji, which SQLite
    cannot store as UTF-8) replaced by U+FFFD."""
    text = scrub(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _text_of(message: Any) -> str:
    return "".join(getattr(p, "text", "") for p in message.content if type(p).__name__ == "Text")


def _shrink(data: Any) -> Any:
    """JSON data with long inline media replaced by a placeholder."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key == "data" and isinstance(value, str) and len(value) > _BLOB_LIMIT:
                out[key] = f"<{len(value)} base64 characters not logged>"
            else:
                out[key] = _shrink(value)
        return out
    if isinstance(data, list):
        return [_shrink(v) for v in data]
    return data


_OPTIONS = ("max_tokens", "temperature", "top_p", "seed", "reasoning", "n")


def _row(
    start: RequestStart,
    end: RequestEnd | RequestError,
    last: Any,
    cid: str | None,
    ended: float,
    content: bool,
) -> tuple[Any, ...]:
    """One ``requests`` row (built in the writer thread; every input is immutable)."""
    from llmx._convert import to_json
    from llmx._events import RequestEnd

    request: Any = start.request  # a Request: the listener skips embeddings
    messages = request.messages
    system = "\n\n".join(_text_of(m) for m in messages if m.role == "system") or None
    users = [m for m in messages if m.role == "user"]
    prompt = _text_of(users[-1]) if users else None
    options = {k: getattr(request, k) for k in _OPTIONS if getattr(request, k, None) is not None}
    when = dt.datetime.fromtimestamp(ended - end.duration, dt.timezone.utc)
    instance = resolved = reply = finish = error_type = error = None
    usage = None
    cost = None
    cached = False
    attempts, ttft = (last[0], last[3]) if last else (None, None)
    if last:
        instance, resolved = last[1], last[2]
    if isinstance(end, RequestEnd):
        response: Any = end.response
        instance, resolved = response.provider, response.model
        reply = response.text
        finish = response.finish_reason
        usage = response.usage
        cost = response.cost
        cached = bool(response.cached)
    else:
        error_type = type(end.error).__name__
        error = _clean(str(end.error))
    messages_json = None
    if content:
        messages_json = _clean(
            json.dumps(_shrink([to_json(m) for m in messages]), ensure_ascii=False)
        )
        system = _clean(system) if system else None
        prompt = _clean(prompt) if prompt else None
        reply = _clean(reply) if reply else reply
    else:
        system = prompt = reply = None
    return (
        start.request_id,
        cid,
        when.isoformat(timespec="milliseconds"),
        request.model,
        instance,
        resolved,
        int(start.stream),
        system,
        prompt,
        messages_json,
        json.dumps(options, default=str) if options else None,
        reply,
        finish,
        usage.input_tokens if usage else None,
        usage.output_tokens if usage else None,
        usage.reasoning_tokens if usage else None,
        usage.cache_read_tokens if usage else None,
        usage.cache_write_tokens if usage else None,
        cost,
        end.duration,
        ttft,
        attempts,
        int(cached),
        error_type,
        error,
    )


_INSERT = (
    "INSERT INTO requests (request_id, conversation_id, datetime_utc, model, instance, "
    "resolved_model, stream, system, prompt, messages, options, reply, finish_reason, "
    "input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens, "
    "cost, latency, ttft, attempts, cached, error_type, error) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# -- the writer --------------------------------------------------------------------------

_Item = tuple[Any, Any, Any, str | None, float] | threading.Event | None


class RequestLog:
    """A request log database and its writer thread (see the module docstring).

    :meth:`record` queues one finished request (never blocks, never raises);
    :meth:`flush` waits until everything queued is written; :meth:`close` flushes and
    stops the thread. The thread and the database connection start with the first
    record. Reading goes through :func:`connect`.
    """

    def __init__(self, path: Path | str, *, content: bool = True) -> None:
        self.path = Path(path)
        self.content = content
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failed = False
        self._dropped = False
        self.written = 0
        self.errors = 0

    def __repr__(self) -> str:
        return f"RequestLog({str(self.path)!r})"

    def record(
        self,
        start: RequestStart,
        end: RequestEnd | RequestError,
        last: Any = None,
        conversation_id: str | None = None,
    ) -> None:
        """Queue one finished request (``last``: its last attempt's facts or None)."""
        if self._queue.qsize() >= _QUEUE_CAP:
            if not self._dropped:
                self._dropped = True
                _log.warning("request log %s: the writer is behind; dropping rows", self.path)
            return
        self._queue.put((start, end, last, conversation_id, time.time()))
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="llmx-requestlog", daemon=True)
            self._thread = thread
            thread.start()
            _open_logs.add(self)

    @property
    def running(self) -> bool:
        """Whether the writer thread is running (it starts with the first record)."""
        return self._thread is not None and self._thread.is_alive()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued row is written (True) or ``timeout`` passes (False)."""
        if self._thread is None or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush and stop the writer thread."""
        thread = self._thread
        if thread is None:
            return
        if thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)
        _open_logs.discard(self)

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while True:
                item = self._queue.get()
                batch: list[tuple[Any, ...]] = []
                events: list[threading.Event] = []
                stop = False
                while True:
                    if item is None:
                        stop = True
                    elif isinstance(item, threading.Event):
                        events.append(item)
                    else:
                        row = self._make_row(item)
                        if row is not None:
                            batch.append(row)
                    if len(batch) >= _BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch and not self._failed:
                    if db is None:
                        db = self._open()
                    if db is not None:
                        self._write(db, batch)
                for event in events:
                    event.set()
                if stop:
                    return
        finally:
            if db is not None:
                db.close()

    def _make_row(self, item: Any) -> tuple[Any, ...] | None:
        start, end, last, cid, ended = item
        try:
            return _row(start, end, last, cid, ended, self.content)
        except Exception as err:  # a bug here must not stop the writer
            self.errors += 1
            _log.warning(
                "request log: request %s not recorded: %s: %s",
                start.request_id,
                type(err).__name__,
                err,
            )
            return None

    def _open(self) -> sqlite3.Connection | None:
        try:
            return connect(self.path)
        except ConfigError as err:
            self._failed = True
            self.errors += 1
            _log.warning("request log off for this client: %s", err)
            return None

    def _write(self, db: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for row in batch:
                    cid = row[1]
                    if cid is not None:
                        db.execute(
                            "INSERT OR IGNORE INTO conversations (id, model, created) "
                            "VALUES (?, ?, ?)",
                            (cid, row[3], row[2]),
                        )
                db.executemany(_INSERT, batch)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.written += len(batch)
        except Exception as err:  # sqlite3.Error, or a value it cannot bind: never fatal
            self.errors += 1
            _log.warning(
                "request log %s: %d row(s) not written: %s: %s",
                self.path,
                len(batch),
                type(err).__name__,
                err,
            )


_open_logs: weakref.WeakSet[RequestLog] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for log in list(_open_logs):
        log.close(timeout=5.0)


def remember_secrets(config: Any) -> None:
    """Make every secret of ``config`` that can be read known to the scrubber now, so
    the log scrubs it even from text no provider has sent yet."""
    from llmx._scrub import remember

    for provider in config.providers.values():
        secrets = [provider.api_key, *provider.headers.values()]
        for secret in secrets:
            if secret is not None and hasattr(secret, "is_available") and secret.is_available():
                with contextlib.suppress(Exception):
                    remember(secret.get())


# -- the listener ------------------------------------------------------------------------


class _Listener:
    """The event callbacks a client with the log on adds to its event callers."""

    __slots__ = ("_attempts", "_log", "_pending")

    def __init__(self, log: RequestLog) -> None:
        self._log = log
        self._pending: dict[str, tuple[RequestStart, str | None]] = {}
        self._attempts: dict[str, tuple[int, str, str, float | None]] = {}

    def start(self, *, event: RequestStart) -> None:
        if type(event.request) is not Request:  # embeddings are not logged
            return
        pending = self._pending
        if len(pending) >= _PENDING_CAP:  # cancelled requests never end: forget the oldest
            for key in list(pending)[: _PENDING_CAP // 10]:
                pending.pop(key, None)
                self._attempts.pop(key, None)
        pending[event.request_id] = (event, _conversation.get())

    def attempt(self, *, event: AttemptEnd) -> None:
        if event.request_id in self._pending:
            self._attempts[event.request_id] = (
                event.attempt,
                event.provider,
                event.model,
                event.ttft,
            )

    def end(self, *, event: RequestEnd | RequestError) -> None:
        started = self._pending.pop(event.request_id, None)
        if started is not None:
            start, cid = started
            self._log.record(start, event, self._attempts.pop(event.request_id, None), cid)


def _chain(first: Callable[..., None] | None, second: Callable[..., None]) -> Callable[..., None]:
    if first is None:
        return second

    def both(*, event: object) -> None:
        first(event=event)
        second(event=event)

    return both


class LoggedEvents:
    """The event callers of a registry plus a request-log listener, rebuilt whenever the
    registry's change (a plugin registered later)."""

    __slots__ = ("_base", "_events", "_listener", "_registry")

    def __init__(self, registry: Any, log: RequestLog) -> None:
        self._registry = registry
        self._listener = _Listener(log)
        self._base: _EventHooks | None = None
        self._events: _EventHooks | None = None

    @property
    def events(self) -> _EventHooks:
        """The combined callers (same shape as ``Registry.events``)."""
        base = self._registry.events
        if base is not self._base or self._events is None:
            listener = self._listener
            # evolve: the hooks this listener does not use (attempt start, breaker
            # transitions, and any added later) stay the registry's own.
            self._events = attrs.evolve(
                base,
                start=_chain(base.start, listener.start),
                attempt=_chain(base.attempt, listener.attempt),
                end=_chain(base.end, listener.end),
                error=_chain(base.error, listener.end),
                any=True,
            )
            self._base = base
        return self._events


def rows_to_dicts(rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
    """Rows as plain dicts, JSON columns decoded."""
    out = []
    for row in rows:
        data = dict(row)
        for key in ("messages", "options"):
            if isinstance(data.get(key), str):
                data[key] = json.loads(data[key])
        if "cached" in data:
            data["cached"] = bool(data["cached"])
        if "stream" in data:
            data["stream"] = bool(data["stream"])
        out.append(data)
    return out

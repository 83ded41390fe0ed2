"""The call log: one `CallRecord` row per model call, its texts in a separate table, and queries over them.

`python -m core calls tail` prints the newest calls of the log at PROMPTLAB_DB_URL.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.db import engine_for, engine_in_use, without_ping
from core.base.errors import scrub_secrets
from core.policy.redaction import redact_value
from core.policy.workspace import Setting, Workspace

logger = logging.getLogger(__name__)
TEXT_POLICY_KEY = "text_policy"
TEXT_POLICY = Setting(TEXT_POLICY_KEY, "full")  # what the log keeps of texts (core/records/privacy.py sets it)
POLICY_TTL_S = 5.0

_meta = sa.MetaData()
calls_table = sa.Table(
    "calls", _meta,
    sa.Column("request_id", sa.Text, primary_key=True), sa.Column("ts", sa.Text), sa.Column("page", sa.Text),
    sa.Column("provider", sa.Text), sa.Column("model_requested", sa.Text), sa.Column("model", sa.Text),
    sa.Column("status", sa.Text), sa.Column("error_type", sa.Text), sa.Column("error_message", sa.Text),
    sa.Column("finish_reason", sa.Text), sa.Column("input_tokens", sa.Integer),
    sa.Column("cached_input_tokens", sa.Integer), sa.Column("output_tokens", sa.Integer),
    sa.Column("reasoning_tokens", sa.Integer), sa.Column("images", sa.Integer),
    sa.Column("tokens_estimated", sa.Boolean), sa.Column("cost_usd", sa.Float), sa.Column("latency_ms", sa.Float),
    sa.Column("ttft_ms", sa.Float), sa.Column("user_id", sa.Text), sa.Column("session_id", sa.Text),
    sa.Column("tags", sa.Text), sa.Column("chain_id", sa.Text), sa.Column("attempt", sa.Integer),
    sa.Column("cached", sa.Boolean), sa.Column("endpoint", sa.Text),
)
call_texts_table = sa.Table(
    "call_texts", _meta,
    sa.Column("request_id", sa.Text, primary_key=True), sa.Column("request_json", sa.Text),
    sa.Column("reply", sa.Text),
)


@dataclass
class CallRecord:
    """One model call as the log keeps it (status ok | error | cancelled; cost None = unpriced)."""

    request_id: str
    ts: str
    page: str
    provider: str
    model_requested: str | None
    model: str | None = None
    status: str = "ok"
    error_type: str | None = None
    error_message: str | None = None
    finish_reason: str | None = None
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    images: int | None = None
    tokens_estimated: bool = False
    cost_usd: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    user: str | None = None
    session: str | None = None
    tags: list[str] = field(default_factory=list)
    chain_id: str | None = None  # fallback attempts share the first attempt's request id
    attempt: int | None = None
    cached: bool = False  # answered from the response cache (cost 0)
    endpoint: str = "chat.completions"  # the API called (ENDPOINTS), so Analytics can split cost by it (m015)


@dataclass
class CallTexts:
    """What was sent (messages and parameters) and what came back."""

    request: dict[str, Any]
    reply: str | None = None


# What `CallRecord.endpoint` holds: the OpenAI API path a call went to, dotted. Rows written before the column
# existed took it from their `endpoint:` tag (m015), else from their page.
CHAT_COMPLETIONS = "chat.completions"
ENDPOINTS = (CHAT_COMPLETIONS, "responses", "audio.transcriptions", "audio.speech", "images.generate", "images.edit",
             "moderations", "models", "embeddings")
ENDPOINT_TAG = "endpoint:"


def endpoint_from_tags(tags: list[str], page: str | None = None) -> str:
    """The endpoint an older row (or an imported line without one) went to: its `endpoint:` tag, else what its page
    calls (images: generate; moderation: moderations; "other": the model list), else Chat Completions."""
    tagged = next((t[len(ENDPOINT_TAG):] for t in tags if t.startswith(ENDPOINT_TAG)), None)
    if tagged in ENDPOINTS:
        return tagged
    if tagged == "chat":
        return CHAT_COMPLETIONS
    if page == "images" and "edit" in tags:
        return "images.edit"
    return {"images": "images.generate", "moderation": "moderations", "other": "models"}.get(page or "",
                                                                                            CHAT_COMPLETIONS)


_FIELDS = tuple(f.name for f in fields(CallRecord))
# CallRecord field -> calls column where the names differ (SQL keywords avoided); every other field is its column.
_COLUMN = {"user": "user_id", "session": "session_id"}
STARTED = "started"  # a call whose request was sent and whose end is not written yet
CALL_COLUMNS = tuple(c.name for c in calls_table.columns)  # the insert order of every bulk path


def _write_sql(paramstyle: str, again: bool) -> tuple[str, str, str]:
    """The statements of CallLog.write and .start for a driver's placeholders: the call (its started row, if any,
    becomes it; `again`, a retry that may have been committed already: whatever is stored under the id), its texts,
    and a started row."""
    mark = "?" if paramstyle == "qmark" else "%s"
    values = ", ".join(mark for _ in CALL_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c != "request_id")
    only_started = "" if again else f" WHERE calls.status = '{STARTED}'"
    call = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({values}) "
            f"ON CONFLICT (request_id) DO UPDATE SET {updates}{only_started}")
    texts = (f"INSERT INTO call_texts (request_id, request_json, reply) VALUES ({mark}, {mark}, {mark}) "
             "ON CONFLICT (request_id) DO " + ("UPDATE SET request_json = excluded.request_json, reply = "
                                               "excluded.reply" if again else "NOTHING"))
    started = f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({values})"
    return call, texts, started


def _give_back_broken(connection: Any) -> bool:
    """After a failed write through the bare driver: roll back, and drop a connection the server closed (a restart)
    so the pool never hands it out again. True when it was dropped."""
    try:
        connection.rollback()
    except Exception:
        connection.invalidate()
        return True
    if getattr(connection.driver_connection, "closed", False):
        connection.invalidate()
        return True
    return False


_WRITE_SQL = {(style, again): _write_sql(style, again)  # sqlite3's and psycopg's placeholders
              for style in ("qmark", "pyformat", "format") for again in (False, True)}


def field_for_column(column: str) -> str:
    """The CallRecord field a calls column holds."""
    return next((f for f, c in _COLUMN.items() if c == column), column)


def record_values(record: CallRecord) -> dict[str, Any]:
    """The record's fields as a flat dict (dataclasses.asdict deep-copies and is ~10x slower on bulk paths)."""
    return {name: getattr(record, name) for name in _FIELDS}


def _to_row(record: CallRecord) -> dict[str, Any]:
    row = {_COLUMN.get(name, name): getattr(record, name) for name in _FIELDS}
    row["tags"] = json.dumps(record.tags)
    return row


def _from_row(row: sa.Row) -> CallRecord:
    data = dict(row._mapping)
    data = {field_for_column(column): value for column, value in data.items()}
    data["tags"] = json.loads(data["tags"] or "[]")
    data["tokens_estimated"] = bool(data["tokens_estimated"])
    data["cached"] = bool(data["cached"])
    data["endpoint"] = data["endpoint"] or endpoint_from_tags(data["tags"], data["page"])
    return CallRecord(**{name: data[name] for name in _FIELDS})


class CallLog:
    """Reads and writes call records in the database at a SQLAlchemy URL."""

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = engine_for(url)
        self._policy, self._policy_read_at = "full", -POLICY_TTL_S

    row = staticmethod(_to_row)
    record = staticmethod(_from_row)

    def text_policy(self) -> str:
        """What to keep of prompts and replies: full | redacted | metadata (Settings; re-read every few seconds)."""
        now = time.monotonic()
        if now - self._policy_read_at > POLICY_TTL_S:
            self._policy = Workspace(self.engine).load(TEXT_POLICY)
            self._policy_read_at = now
        return self._policy

    def write(self, record: CallRecord, texts: CallTexts | None = None, *, again: bool = False) -> None:
        """Store one call (and its texts, as the text policy allows) in one transaction; redaction happens here,
        before anything is written. `again`: the retry of a write that failed, which may have been committed all
        the same (the connection dropped after the server's commit, before its answer): whatever is stored under
        the id gives way — only this process writes how its call ended, and the record is the same."""
        policy = self.text_policy()
        if policy == "metadata":
            texts = None
        elif policy == "redacted":
            if texts is not None:
                texts = CallTexts(redact_value(texts.request), redact_value(texts.reply))
            if record.error_message:
                record.error_message = redact_value(record.error_message)
        # Every replica's calls go through here, so this is the ceiling of a deployment: two statements through the
        # bare driver in one transaction (bench/calllog_writes.py compares it with one INSERT + COMMIT per call).
        # The row written when the request was sent (status "started") becomes the finished call in place.
        row = _to_row(record)
        for attempt in (1, 2):
            sql = _WRITE_SQL[(self.engine.dialect.paramstyle, again)]
            with without_ping():  # a dead pooled connection is found by the write itself, then replaced below
                connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(sql[0], [row[c] for c in CALL_COLUMNS])
                if texts is not None:
                    cursor.execute(sql[1], (record.request_id, json.dumps(texts.request, default=str), texts.reply))
                connection.commit()
                return
            except Exception:
                if not _give_back_broken(connection) or attempt == 2:
                    raise
                again = True  # the server may have committed before the connection died: replace, not add
            finally:
                connection.close()  # back to the pool (or, invalidated, away)

    def start(self, record: CallRecord) -> None:
        """The row of a call whose request is being sent: status "started", owned by this process. `write()`
        replaces it when the call ends; if the process dies first, `mark_interrupted()` turns it into an error."""
        row = _to_row(replace(record, status=STARTED, error_type=None, error_message=process_owner()))
        try:
            keep_beating(self.engine)  # other replicas settle this row only once the beats stop
        except Exception as exc:
            logger.warning("heartbeat not started: %s", scrub_secrets(repr(exc)))
        connection = self.engine.raw_connection()
        try:
            connection.cursor().execute(_WRITE_SQL[(self.engine.dialect.paramstyle, False)][2],
                                        [row[c] for c in CALL_COLUMNS])
            connection.commit()
        except BaseException:
            _give_back_broken(connection)
            raise
        finally:
            connection.close()

    def mark_interrupted(self, older_than_s: float = 3600) -> int:
        return mark_interrupted(self.engine, older_than_s)

    def get(self, request_id: str) -> CallRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(calls_table.select().where(calls_table.c.request_id == request_id)).first()
        return _from_row(row) if row else None

    def texts_for(self, request_id: str, user: str, admin: bool = False) -> CallTexts | None:
        """A call's texts if `user` made the call (or is an admin): replays and drill-downs show nobody else's
        prompts and replies."""
        record = self.get(request_id)
        if record is None or (not admin and record.user != user):
            return None
        return self.texts(request_id)

    def texts(self, request_id: str) -> CallTexts | None:
        with self.engine.connect() as conn:
            row = conn.execute(call_texts_table.select()
                               .where(call_texts_table.c.request_id == request_id)).first()
        return CallTexts(json.loads(row.request_json), row.reply) if row else None

    def texts_page(self, request_ids: list[str], user: str, admin: bool = False
                   ) -> list[tuple[CallRecord, CallTexts | None]]:
        """Calls and their texts for up to a page of ids (one query each), in the order given; another user's calls
        are left out unless `user` is an admin, as in `texts_for`."""
        if not request_ids:
            return []
        with self.engine.connect() as conn:
            records = {r.request_id: _from_row(r) for r in conn.execute(
                calls_table.select().where(calls_table.c.request_id.in_(request_ids)))}
            texts = {r.request_id: CallTexts(json.loads(r.request_json), r.reply) for r in conn.execute(
                call_texts_table.select().where(call_texts_table.c.request_id.in_(request_ids)))}
        return [(records[i], texts.get(i)) for i in request_ids
                if i in records and (admin or records[i].user == user)]

    def recent(self, limit: int = 50) -> list[CallRecord]:
        """The newest calls first."""
        query = calls_table.select().order_by(calls_table.c.ts.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(calls_table)).scalar_one()


def mark_interrupted(engine: Engine, older_than_s: float = 3600) -> int:
    """Calls left "started" by a process that is gone become errors of type "interrupted"; returns how many this
    call settled. Gone: one of this machine's that no longer runs; another machine's whose heartbeat stopped
    (`process_heartbeats`, beaten by every process that makes calls); or, for a process that never beat (an older
    version), any row more than `older_than_s` old. Each row is settled once, by whichever replica gets there first:
    the UPDATE itself requires the row to be still "started", so a second settler (or the call finishing meanwhile)
    changes nothing and is not counted. Run at start-up and hourly (core.records.privacy.RetentionWorker)."""
    cutoff = (datetime.now(timezone.utc) - timedelta(seconds=older_than_s)).isoformat(timespec="milliseconds")
    stale = (datetime.now(timezone.utc) - timedelta(seconds=STALE_S)).isoformat(timespec="milliseconds")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(calls_table.c.request_id, calls_table.c.ts, calls_table.c.error_message)
                            .where(sa.text("status = 'started'"))).all()  # a literal: the partial index (m018)
        beats: dict[str, str] = dict(conn.execute(sa.text("SELECT owner, seen_at FROM process_heartbeats")).all()) if rows else {}

    def gone(ts: str, marker: str) -> bool:
        owner = marker.removeprefix("in progress: ")
        if owner in beats and not owner.endswith(f"@{socket.gethostname()}"):
            return beats[owner] < stale  # another machine's process: alive while it beats
        return ts < cutoff or owner_gone(marker)

    dead = [r.request_id for r in rows if gone(r.ts, r.error_message or "")]
    settled = 0
    for start in range(0, len(dead), 500):
        with engine.begin() as conn:
            settled += conn.execute(
                calls_table.update().where(calls_table.c.request_id.in_(dead[start:start + 500])
                                           & (calls_table.c.status == STARTED))
                .values(status="error", error_type="interrupted",
                        error_message="The server stopped before this call ended.")).rowcount
    return settled


HEARTBEAT_S = 20.0  # how often a process that makes calls says it is alive
SWEEP_EVERY = 3  # beats between two looks for another process's orphaned started calls
STALE_S = 90.0  # a heartbeat older than this: the process is gone (several missed beats, clocks a little apart)
_beating: set[str] = set()
_beat_lock = threading.Lock()


def beat(engine: Engine, owner: str | None = None) -> None:
    """Say in the database that this process (or `owner`) is alive now."""
    owner = owner or _BOOT
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    with engine.begin() as conn:
        if not conn.execute(sa.text("UPDATE process_heartbeats SET seen_at = :t WHERE owner = :o"),
                            {"t": now, "o": owner}).rowcount:
            conn.execute(sa.text("INSERT INTO process_heartbeats (owner, seen_at) VALUES (:o, :t)"),
                         {"t": now, "o": owner})


def keep_beating(engine: Engine) -> None:
    """Beat now and then every HEARTBEAT_S in a daemon thread (once per database and process), so that another
    replica can tell when this one's started calls are orphans."""
    key = engine.url.render_as_string(hide_password=False)
    with _beat_lock:
        if key in _beating:
            return
        beat(engine)
        _beating.add(key)

    def loop() -> None:
        beats = 0
        while True:
            time.sleep(HEARTBEAT_S)
            if not engine_in_use(engine):  # disposed (a shutdown, a test's database): stop, keep no connection
                with _beat_lock:
                    _beating.discard(key)
                return
            beats += 1
            try:
                beat(engine)
                if beats % SWEEP_EVERY == 0:  # a replica killed mid-reply: its rows settled within minutes
                    mark_interrupted(engine)
            except Exception as exc:  # a busy database: the next beat is in time unless it stays down
                logger.warning("heartbeat not written: %s", scrub_secrets(repr(exc)))
    threading.Thread(target=loop, name="heartbeat", daemon=True).start()


_BOOT = f"{os.getpid()}@{socket.gethostname()}"


def process_owner() -> str:
    """Who is making a call: this process on this machine (kept in a started row until it ends)."""
    return f"in progress: {_BOOT}"


def owner_gone(marker: str) -> bool:
    """True when the marker names a process of this machine that no longer runs (or is this machine's PID reused
    by another program: then its command line is not ours — treated as gone too)."""
    match = re.match(r"^in progress: (\d+)@(.+)$", marker)
    if not match or match.group(2) != socket.gethostname():
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False

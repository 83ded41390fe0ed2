"""The database: one SQLAlchemy engine per URL and the append-only schema migrations.

Never edit a shipped migration; add the next `mNNN_…` function. Each runs once and is recorded in `_migrations`.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.base.i18n import _

Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def migration(fn: Migration) -> Migration:
    """Register a migration; its function name is its permanent id."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_calls(conn: Connection) -> None:
    conn.execute(sa.text("""
        CREATE TABLE calls (
            request_id TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            page TEXT NOT NULL,
            provider TEXT NOT NULL,
            model_requested TEXT,
            model TEXT,
            status TEXT NOT NULL,
            error_type TEXT,
            error_message TEXT,
            finish_reason TEXT,
            input_tokens INTEGER,
            cached_input_tokens INTEGER,
            output_tokens INTEGER,
            reasoning_tokens INTEGER,
            images INTEGER,
            tokens_estimated BOOLEAN NOT NULL DEFAULT FALSE,
            cost_usd REAL,
            latency_ms REAL,
            ttft_ms REAL,
            user_id TEXT,
            session_id TEXT,
            tags TEXT NOT NULL DEFAULT '[]'
        )"""))
    conn.execute(sa.text("CREATE INDEX ix_calls_ts ON calls (ts)"))
    # Texts live apart so later retention / redaction can drop them without touching the metrics.
    conn.execute(sa.text("""
        CREATE TABLE call_texts (
            request_id TEXT PRIMARY KEY REFERENCES calls(request_id) ON DELETE CASCADE,
            request_json TEXT NOT NULL,
            reply TEXT
        )"""))


@migration
def m002_conversations(conn: Connection) -> None:
    conn.execute(sa.text("""
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            body TEXT NOT NULL
        )"""))
    conn.execute(sa.text("CREATE INDEX ix_conversations_user ON conversations (user_id, updated_at)"))


@migration
def m003_app_settings(conn: Connection) -> None:
    # Settings the app changes at run time and every replica must share (e.g. the monthly budget).
    conn.execute(sa.text("CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT)"))


@migration
def m004_prompt_library(conn: Connection) -> None:
    conn.execute(sa.text("""
        CREATE TABLE prompt_versions (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            author TEXT,
            note TEXT,
            created_at TEXT NOT NULL,
            body TEXT NOT NULL,
            UNIQUE (name, version)
        )"""))
    conn.execute(sa.text("""
        CREATE TABLE playground_runs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            user_id TEXT,
            created_at TEXT NOT NULL,
            body TEXT NOT NULL
        )"""))


@migration
def m005_images(conn: Connection) -> None:
    conn.execute(sa.text("""
        CREATE TABLE images (
            id TEXT PRIMARY KEY,
            request_id TEXT,
            created_at TEXT NOT NULL,
            user_id TEXT,
            prompt TEXT NOT NULL,
            model TEXT NOT NULL,
            params TEXT NOT NULL,
            cost_usd REAL,
            cost_estimated BOOLEAN NOT NULL DEFAULT FALSE,
            path TEXT NOT NULL,
            mime TEXT NOT NULL
        )"""))
    conn.execute(sa.text("CREATE INDEX ix_images_created ON images (created_at)"))


@migration
def m006_call_chains(conn: Connection) -> None:
    # Fallback attempts are separate rows linked by the first attempt's request id.
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN chain_id TEXT"))
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN attempt INTEGER"))


@migration
def m007_response_cache(conn: Connection) -> None:
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN cached BOOLEAN NOT NULL DEFAULT FALSE"))
    conn.execute(sa.text("""
        CREATE TABLE response_cache (
            key TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            user_id TEXT,
            reply TEXT NOT NULL,
            finish_reason TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            hits INTEGER NOT NULL DEFAULT 0
        )"""))
    conn.execute(sa.text("CREATE INDEX ix_response_cache_expires ON response_cache (expires_at)"))


@migration
def m008_call_sequence(conn: Connection) -> None:
    # Analytics copies new calls by insertion order: SQLite has its rowid; PostgreSQL gets a sequence column.
    if conn.dialect.name != "sqlite":
        conn.execute(sa.text("ALTER TABLE calls ADD COLUMN seq BIGSERIAL"))
        conn.execute(sa.text("CREATE INDEX ix_calls_seq ON calls (seq)"))


@migration
def m009_privacy_audit(conn: Connection) -> None:
    # Who asked for what about whom, and how many rows it touched (data-subject requests, retention runs).
    conn.execute(sa.text("""
        CREATE TABLE privacy_audit (
            id TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            actor TEXT,
            action TEXT NOT NULL,
            subject TEXT,
            detail TEXT NOT NULL
        )"""))


@migration
def m010_evals(conn: Connection) -> None:
    # Test sets are versioned like prompts; a run keeps its config and every graded cell (outputs included).
    conn.execute(sa.text("""
        CREATE TABLE eval_sets (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            author TEXT,
            note TEXT,
            created_at TEXT NOT NULL,
            body TEXT NOT NULL,
            UNIQUE (name, version)
        )"""))
    conn.execute(sa.text("""
        CREATE TABLE eval_runs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            user_id TEXT,
            created_at TEXT NOT NULL,
            config TEXT NOT NULL,
            body TEXT NOT NULL,
            baseline BOOLEAN NOT NULL DEFAULT FALSE
        )"""))
    conn.execute(sa.text("CREATE INDEX eval_runs_created ON eval_runs (created_at)"))


@migration
def m011_private_prompts(conn: Connection) -> None:
    # A prompt version marked private is seen only by its author (and admins).
    conn.execute(sa.text("ALTER TABLE prompt_versions ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE"))


@migration
def m012_reconciliations(conn: Connection) -> None:
    # The last comparison with the provider's bill per period, so the page opens without calling the API.
    conn.execute(sa.text("CREATE TABLE reconciliations (period TEXT PRIMARY KEY, fetched_at TEXT NOT NULL, "
                         "body TEXT NOT NULL)"))


@migration
def m013_durable_eval_runs(conn: Connection) -> None:
    # An eval run is written as its cells finish, so a server killed mid-run leaves every finished cell behind:
    # the run row exists from the start (status running, owned by pid@host like a started call) and each graded
    # cell is one row keyed by run and cell. Runs saved before this keep their rows in `body` (status done).
    conn.execute(sa.text("ALTER TABLE eval_runs ADD COLUMN status TEXT NOT NULL DEFAULT 'done'"))
    conn.execute(sa.text("ALTER TABLE eval_runs ADD COLUMN owner TEXT"))
    conn.execute(sa.text("ALTER TABLE eval_runs ADD COLUMN updated_at TEXT"))
    conn.execute(sa.text("ALTER TABLE eval_runs ADD COLUMN planned_cells INTEGER"))
    conn.execute(sa.text("ALTER TABLE eval_runs ADD COLUMN plan TEXT"))
    conn.execute(sa.text("""
        CREATE TABLE eval_run_cells (
            run_id TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
            cell_key TEXT NOT NULL,
            position INTEGER NOT NULL,
            finished_at TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (run_id, cell_key)
        )"""))


@migration
def m014_eval_set_owners(conn: Connection) -> None:
    # A test set has an owner, who alone (with admins) adds versions, and is readable by others only when its
    # owner shares it. Sets saved before owners existed belong to nobody (only admins may change them) and stay
    # readable by everyone, as they were.
    conn.execute(sa.text("ALTER TABLE eval_sets ADD COLUMN owner TEXT"))
    conn.execute(sa.text("ALTER TABLE eval_sets ADD COLUMN shared BOOLEAN NOT NULL DEFAULT FALSE"))
    conn.execute(sa.text("UPDATE eval_sets SET shared = TRUE"))


@migration
def m015_call_endpoints(conn: Connection) -> None:
    # Which API each call went to (chat.completions, responses, audio.transcriptions, audio.speech, images.generate,
    # images.edit, moderations, models, embeddings), so Analytics splits cost, calls and latency by it. Rows from
    # before take it from their `endpoint:` tag when they have one, else from their page (images, moderation, the
    # model list), else Chat Completions, the only API PromptLab called before the others came.
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN endpoint TEXT NOT NULL DEFAULT 'chat.completions'"))
    conn.execute(sa.text("UPDATE calls SET endpoint = 'models' WHERE page = 'other'"))
    conn.execute(sa.text("UPDATE calls SET endpoint = 'moderations' WHERE page = 'moderation'"))
    conn.execute(sa.text("UPDATE calls SET endpoint = CASE WHEN tags LIKE '%\"edit\"%' THEN 'images.edit' "
                         "ELSE 'images.generate' END WHERE page = 'images'"))
    for endpoint in ("responses", "audio.transcriptions", "audio.speech", "images.generate", "images.edit",
                     "moderations", "embeddings"):
        conn.execute(sa.text("UPDATE calls SET endpoint = :e WHERE tags LIKE :t"),
                     {"e": endpoint, "t": f'%"endpoint:{endpoint}"%'})


@migration
def m016_eval_batches(conn: Connection) -> None:
    # An eval run sent through OpenAI's Batch API: one row per batch (a run's cells are split by endpoint and
    # model, one batch each), so polling survives a restart of the app — any process picks the batch up from here.
    # `phase` is PromptLab's own step (waiting for the batch, ingesting its output, ingested); `owner` the process
    # ingesting it; `keys` the run's cells in this batch (JSON); `failed` the lines that failed or never ran, with
    # why (JSON); `on_failure` whether those run live ("live") or are stored as failed cells ("report").
    conn.execute(sa.text("""
        CREATE TABLE eval_batches (
            run_id TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
            part INTEGER NOT NULL,
            provider_index INTEGER NOT NULL,
            model TEXT NOT NULL,
            batch_id TEXT,
            input_file_id TEXT,
            output_file_id TEXT,
            error_file_id TEXT,
            status TEXT NOT NULL,
            phase TEXT NOT NULL,
            owner TEXT,
            total INTEGER NOT NULL DEFAULT 0,
            completed INTEGER NOT NULL DEFAULT 0,
            failed_count INTEGER NOT NULL DEFAULT 0,
            keys TEXT NOT NULL,
            failed TEXT,
            on_failure TEXT NOT NULL,
            cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
            notes TEXT,
            created_at TEXT NOT NULL,
            polled_at TEXT,
            ended_at TEXT,
            PRIMARY KEY (run_id, part)
        )"""))
    conn.execute(sa.text("CREATE INDEX eval_batches_batch ON eval_batches (batch_id)"))


@migration
def m017_eval_ratings(conn: Connection) -> None:
    # A person's blind vote between two configurations' outputs for one case of a run, written the moment it is
    # cast (a tab closed mid-queue keeps every vote). One vote per rater, run, pair and case: a rater changes only
    # their own. The pair is keyed by a hash (prompts can be longer than an index entry may be); `shown` is the
    # side A was drawn on, so a vote for "left" reads back as A or B. Ratings go with their run. A run is rated by
    # its owner and admins, and by every signed-in user once its owner (or an admin) opens it for rating.
    conn.execute(sa.text("""
        CREATE TABLE eval_ratings (
            run_id TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
            pair_key TEXT NOT NULL,
            case_key TEXT NOT NULL,
            rater TEXT NOT NULL,
            config_a TEXT NOT NULL,
            config_b TEXT NOT NULL,
            vote TEXT NOT NULL,
            shown TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, pair_key, case_key, rater)
        )"""))
    conn.execute(sa.text("CREATE INDEX eval_ratings_rater ON eval_ratings (rater)"))
    conn.execute(sa.text("ALTER TABLE eval_runs ADD COLUMN rating_open BOOLEAN NOT NULL DEFAULT FALSE"))


@migration
def m018_replica_state(conn: Connection) -> None:
    # State that every replica on this database must share. Rate-limit reservations (one row per request sent, or
    # per 429 hold) so that N processes together stay within a provider's RPM / TPM; the provider each user chose in
    # Settings (its key only encrypted with the server's secret); and a heartbeat per process that makes calls, so
    # a replica can tell that another host's process is gone and settle the calls it left started.
    conn.execute(sa.text("""
        CREATE TABLE rate_limit_events (
            bucket TEXT NOT NULL,
            ref TEXT,
            at DOUBLE PRECISION NOT NULL,
            requests DOUBLE PRECISION NOT NULL,
            tokens DOUBLE PRECISION NOT NULL
        )"""))
    conn.execute(sa.text("CREATE INDEX ix_rate_limit_events ON rate_limit_events (bucket, at)"))
    conn.execute(sa.text("CREATE TABLE user_settings (user_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
                         "updated_at TEXT NOT NULL, PRIMARY KEY (user_id, key))"))
    conn.execute(sa.text("CREATE TABLE process_heartbeats (owner TEXT PRIMARY KEY, seen_at TEXT NOT NULL)"))
    # Every replica looks for orphaned started calls every minute: only those rows are indexed, so that is cheap.
    conn.execute(sa.text("CREATE INDEX ix_calls_started ON calls (ts) WHERE status = 'started'"))



# Analytics roll-ups (m019, PostgreSQL): every KPI and chart of the Analytics page is answered from these instead
# of from a copy of the log in each replica. A star: `calls_totals` has one row per combination of dimensions ever
# seen (its `combo` id, and its calls of all time — what the filter menus list), and the hourly and daily roll-ups
# hold narrow rows (bucket, combo, sums), cheap to scan over months. Statement-level triggers keep all three current
# inside the transaction that writes the calls (a bulk import is one aggregate per statement, not one per row).
# Calls still "started" are left out until they end. Dimensions are stored NOT NULL ('' for none) so that
# ON CONFLICT finds the row.
ROLLUP_DIMENSIONS = {
    "provider": "provider", "model": "coalesce(model, model_requested, '')", "page": "page",
    "user_id": "coalesce(user_id, '')", "status": "status", "error_type": "coalesce(error_type, '')",
    "endpoint": "endpoint", "tags": "coalesce(tags, '[]')::jsonb", "cached": "coalesce(cached, false)",
}
ROLLUP_MEASURES = {  # column: the expression summed, times +1 for rows added and -1 for rows removed
    "calls": "1", "priced": "(cost_usd IS NOT NULL)::int", "cost_usd": "coalesce(cost_usd, 0)",
    "input_tokens": "coalesce(input_tokens, 0)", "output_tokens": "coalesce(output_tokens, 0)",
    "cached_input_tokens": "coalesce(cached_input_tokens, 0)", "estimated": "tokens_estimated::int",
}
ROLLUP_LEVELS = {"calls_hourly": "date_trunc('hour', left(ts, 19)::timestamp)", "calls_daily": "left(ts, 10)::date"}
SAMPLE_COLUMNS = ("request_id", "ts", "provider", "model", "page", "user_id", "status", "endpoint", "tags",
                  "latency_ms", "ttft_ms", "output_tokens", "one_in")
# Percentiles cannot be rolled up. One call in 8 (by a hash of its id, so every replica picks the same ones) is also
# copied, narrow, to calls_sample; `one_in` says the sparsest of the nested samples 1/8 ⊃ 1/64 ⊃ 1/512 it is in, so
# a period too large to read whole is estimated from the sample level that gives a few tens of thousands of calls.
SAMPLE_LEVELS = (8, 64, 512)


def _signed_calls(sources: list[tuple[int, str]]) -> str:
    """The non-started calls of each source relation with their sign (+1 added, -1 removed): their hour and day,
    dimensions and the measures to sum."""
    picked = ", ".join([f"{e} AS b_{level}" for level, e in ROLLUP_LEVELS.items()]
                       + [f"{e} AS {c}" for c, e in ROLLUP_DIMENSIONS.items()]
                       + [f"{e} AS m_{c}" for c, e in ROLLUP_MEASURES.items()])
    return " UNION ALL ".join(f"SELECT {sign} AS sign, {picked} FROM {source} WHERE status <> 'started'"
                              for sign, source in sources)


def _rollup_statement(sources: list[tuple[int, str]]) -> str:
    """One statement that adds (sign +1) or subtracts (-1) the calls of the source relations to the three roll-ups:
    `calls_totals` by dimensions (creating a combination's id on first sight), then the hourly and daily rows by
    bucket and that id. Each table's rows are locked in key order (two writers never wait on each other in a
    cycle); one statement rather than three, because every call of every replica passes through it."""
    keys = ", ".join(ROLLUP_DIMENSIONS)
    sums = ", ".join(f"sum(sign * m_{c})" for c in ROLLUP_MEASURES)
    updates = ", ".join(f"{c} = r.{c} + excluded.{c}" for c in ROLLUP_MEASURES)
    measures = ", ".join(ROLLUP_MEASURES)
    same = " AND ".join(f"t.{c} = d.{c}" for c in ROLLUP_DIMENSIONS)
    totals = (f"INSERT INTO calls_totals AS r ({keys}, {measures}) SELECT {keys}, {sums} FROM d GROUP BY {keys} "
              f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {updates} RETURNING r.combo, "
              + ", ".join(f"r.{c}" for c in ROLLUP_DIMENSIONS))

    def bucketed(table: str) -> str:
        return (f"INSERT INTO {table} AS r (bucket, combo, {measures}) SELECT d.b_{table}, t.combo, {sums} "
                f"FROM d JOIN t ON {same} GROUP BY 1, 2 ORDER BY 1, 2 "
                f"ON CONFLICT (bucket, combo) DO UPDATE SET {updates}")
    hourly, daily = ROLLUP_LEVELS
    return (f"WITH d AS MATERIALIZED ({_signed_calls(sources)}), t AS ({totals}), h AS ({bucketed(hourly)}) "
            f"{bucketed(daily)}")


def _sample_insert(source: str) -> str:
    columns = ", ".join(SAMPLE_COLUMNS)
    hashed = "(hashtext(request_id) & 511)"
    picked = ("request_id, left(ts, 19)::timestamp, provider, coalesce(model, model_requested, ''), page, "
              "coalesce(user_id, ''), status, endpoint, coalesce(tags, '[]')::jsonb, latency_ms, ttft_ms, "
              f"output_tokens, CASE WHEN {hashed} = 0 THEN 512 WHEN {hashed} & 63 = 0 THEN 64 ELSE 8 END")
    return (f"INSERT INTO calls_sample ({columns}) SELECT {picked} FROM {source} WHERE status <> 'started' "
            f"AND {hashed} & 7 = 0")


@migration
def m019_analytics_rollups(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        return  # one SQLite node keeps its in-process DuckDB mirror (core/analytics/dashboard.py)
    dims = ", ".join(f"{c} {'JSONB' if c == 'tags' else 'BOOLEAN' if c == 'cached' else 'TEXT'} NOT NULL"
                     for c in ROLLUP_DIMENSIONS)
    measures = ", ".join(f"{c} {'DOUBLE PRECISION' if c == 'cost_usd' else 'BIGINT'} NOT NULL"
                         for c in ROLLUP_MEASURES)
    conn.execute(sa.text(f"CREATE TABLE calls_totals (combo BIGSERIAL UNIQUE, {dims}, {measures}, "
                         f"PRIMARY KEY ({', '.join(ROLLUP_DIMENSIONS)}))"))
    for table, bucket_type in (("calls_hourly", "TIMESTAMP"), ("calls_daily", "DATE")):
        conn.execute(sa.text(f"CREATE TABLE {table} (bucket {bucket_type} NOT NULL, combo BIGINT NOT NULL, "
                             f"{measures}, PRIMARY KEY (bucket, combo))"))
    conn.execute(sa.text("CREATE TABLE calls_sample (request_id TEXT PRIMARY KEY, ts TIMESTAMP NOT NULL, "
                         "provider TEXT NOT NULL, model TEXT NOT NULL, page TEXT NOT NULL, user_id TEXT NOT NULL, "
                         "status TEXT NOT NULL, endpoint TEXT NOT NULL, tags JSONB NOT NULL, latency_ms REAL, "
                         "ttft_ms REAL, output_tokens INTEGER, one_in INTEGER NOT NULL)"))
    conn.execute(sa.text("CREATE INDEX ix_calls_sample_ts ON calls_sample (one_in, ts)"))
    # Rows that reach zero calls go (a deleted user's combinations leave the filter menus with them).
    removed_zeros = " ".join([f"DELETE FROM {t} WHERE calls = 0 AND bucket IN (SELECT DISTINCT {e} FROM old_calls);"
                              for t, e in ROLLUP_LEVELS.items()] + ["DELETE FROM calls_totals WHERE calls = 0;"])
    bodies = {
        "insert": [(1, "new_calls")],
        "delete": [(-1, "old_calls")],
        "update": [(-1, "old_calls"), (1, "new_calls")],
    }
    # Every change to the calls moves this sequence (no row lock, so writers never wait on it): a replica reads it
    # to know that its cached dashboards are out of date.
    conn.execute(sa.text("CREATE SEQUENCE calls_changes"))
    for event, sources in bodies.items():
        # A statement that touched only started calls (a call being sent, or its row giving way to the finished
        # call) changes no roll-up: return at once, the common case of every chat turn.
        counted = " OR ".join(f"EXISTS (SELECT 1 FROM {source} WHERE status <> 'started')" for _, source in sources)
        statements = [f"IF NOT ({counted}) THEN RETURN NULL; END IF;", "PERFORM nextval('calls_changes');"]
        statements.append(_rollup_statement(sources) + ";")
        if event != "insert":
            statements += ["DELETE FROM calls_sample WHERE request_id IN (SELECT request_id FROM old_calls);",
                           removed_zeros]
        if event != "delete":
            statements.append(_sample_insert("new_calls") + ";")
        conn.execute(sa.text(f"CREATE FUNCTION promptlab_calls_rollup_{event}() RETURNS trigger LANGUAGE plpgsql "
                             f"AS $$ BEGIN {' '.join(statements)} RETURN NULL; END $$"))
        referencing = {"insert": "NEW TABLE AS new_calls", "delete": "OLD TABLE AS old_calls",
                       "update": "OLD TABLE AS old_calls NEW TABLE AS new_calls"}[event]
        conn.execute(sa.text(f"CREATE TRIGGER calls_rollup_{event} AFTER {event.upper()} ON calls "
                             f"REFERENCING {referencing} FOR EACH STATEMENT "
                             f"EXECUTE FUNCTION promptlab_calls_rollup_{event}()"))
    conn.execute(sa.text("CREATE FUNCTION promptlab_calls_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
                         "BEGIN TRUNCATE calls_totals, calls_hourly, calls_daily, calls_sample; "
                         "PERFORM nextval('calls_changes'); RETURN NULL; END $$"))
    conn.execute(sa.text("CREATE TRIGGER calls_rollup_truncate AFTER TRUNCATE ON calls FOR EACH STATEMENT "
                         "EXECUTE FUNCTION promptlab_calls_rollup_truncate()"))
    # Analytics no longer copies the log by insertion order here, so `seq` needs no index: one less to keep on
    # every write.
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_calls_seq"))
    # The calls already logged, added once, under the migration lock.
    conn.execute(sa.text(_rollup_statement([(1, "calls")])))
    conn.execute(sa.text(_sample_insert("calls")))


def insertion_order_column(engine: Engine) -> str:
    """The column that grows with every inserted call (see m008)."""
    return "rowid" if engine.dialect.name == "sqlite" else "seq"


def get_value(engine: Engine, key: str) -> str | None:
    """A value from the app_settings table (None when unset)."""
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT value FROM app_settings WHERE key = :k"), {"k": key}).scalar()


def set_value(engine: Engine, key: str, value: str | None) -> None:
    """Store (or with None, remove) a value in the app_settings table."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM app_settings WHERE key = :k"), {"k": key})
        if value is not None:
            conn.execute(sa.text("INSERT INTO app_settings (key, value, updated_at) VALUES (:k, :v, :t)"),
                         {"k": key, "v": value, "t": datetime.now(timezone.utc).isoformat()})


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the Analytics page read while chats write; busy_timeout rides out short write locks.
    cur.execute("PRAGMA busy_timeout=10000")  # first: switching a new file to WAL waits for a lock too
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = url.removeprefix("sqlite:///")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    # A database host that does not answer at all (a partition, not a restart, which refuses at once) must not hold a
    # call for the system's TCP timeout: ten seconds, unless the URL says otherwise.
    waits = {} if url.startswith("sqlite") or "connect_timeout" in url else {"connect_args": {"connect_timeout": 10}}
    engine = sa.create_engine(url, future=True, **waits)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        _ping_idle_connections(engine)
    return engine


_unpinged = threading.local()


@contextlib.contextmanager
def without_ping() -> Iterator[None]:
    """Check connections out of the pool without the ping, for a caller that finds a dead one itself and tries again
    at once (the call log's write path, where a round trip before every write cost ~10 %: bench/calllog_writes.py)."""
    _unpinged.active = True
    try:
        yield
    finally:
        _unpinged.active = False


def _ping_idle_connections(engine: Engine) -> None:
    """A database server that restarted (or dropped idle connections) leaves the pool holding dead ones; without a
    ping at checkout the next read raised AdminShutdown to the page, and the next reservation or call row failed.
    A file has no server to lose: SQLite is never pinged."""
    def on_checkout(dbapi_connection, record, proxy) -> None:
        if getattr(_unpinged, "active", False):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError() from exc  # the pool drops it and hands out a fresh one

    sa.event.listen(engine, "checkout", on_checkout)


# Every replica migrates at first use; replicas that start together (a rolling deploy) must not race on the same
# ALTER TABLE. PostgreSQL: a transaction-level advisory lock per schema (released at commit, or when the holder's
# connection dies mid-migration — its DDL rolls back with it and the next replica does the work). SQLite: BEGIN
# IMMEDIATE takes the file's write lock before anything is read.
MIGRATION_LOCK = "promptlab-migrations"
MIGRATION_WAIT_S = 600.0  # how long a replica waits for another's migrations (a large log's can take minutes)


def _lock_for_migrations(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || :k))"),
                     {"k": ":" + MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        # pysqlite would otherwise begin only at the first INSERT. The busy timeout (10 s) can be shorter than
        # another process's migration of a large log: keep waiting for it rather than failing to start.
        deadline = time.monotonic() + MIGRATION_WAIT_S
        while True:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise


def _pending(engine: Engine) -> bool:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("_migrations"):
            return True
        done = {row[0] for row in conn.execute(sa.text("SELECT name FROM _migrations"))}
    return any(name not in done for name, _fn in MIGRATIONS)


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations not yet applied, under the database's lock (one replica at a time; the others wait,
    then find them applied); returns the names this call applied."""
    applied_now: list[str] = []
    if not _pending(engine):  # the usual start: nothing to do, and no write lock taken (a read-only copy opens)
        return applied_now
    with engine.connect() as conn:
        _lock_for_migrations(conn)
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"))
        done = {row[0] for row in conn.execute(sa.text("SELECT name FROM _migrations"))}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            fn(conn)
            conn.execute(sa.text("INSERT INTO _migrations (name, applied_at) VALUES (:n, :t)"),
                         {"n": name, "t": datetime.now(timezone.utc).isoformat()})
            applied_now.append(name)
        conn.commit()
    return applied_now


def engine_for(url: str) -> Engine:
    """The process-wide engine for a URL, migrated on first use."""
    with _lock:
        if url not in _engines:
            engine = _make_engine(url)
            migrate(engine)
            _engines[url] = engine
        return _engines[url]


_writable: set[str] = set()


def database_problem(url: str) -> str | None:
    """One sentence when the database cannot be opened and written (a read-only file, a wrong URL, a server that
    refuses), None when it can. Checked once per URL and process while it works; re-checked while it does not."""
    if url in _writable:
        return None
    shown = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)  # never the password of a database URL
    try:
        engine = engine_for(url)
        with engine.connect() as conn:
            probe = conn.begin()  # a real write, rolled back: the only test every backend answers the same way
            try:
                conn.execute(sa.text("INSERT INTO app_settings (key, value) VALUES (:k, '')"),
                             {"k": f"__write_probe_{os.getpid()}_{threading.get_ident()}"})
            finally:
                probe.rollback()
    except sa.exc.SQLAlchemyError as exc:
        text = str(getattr(exc, "orig", exc) or exc).lower()
        with _lock:
            _engines.pop(url, None)  # try again from scratch next time
        if "readonly" in text or "read-only" in text or "read only" in text:
            return _("The database at {url} is read-only: PromptLab needs to write to it (check the file's "
                     "permissions, or set PROMPTLAB_DB_URL to a writable database).").format(url=shown)
        return _("The database at {url} cannot be opened ({why}): check PROMPTLAB_DB_URL.").format(
            url=shown, why=type(exc).__name__)
    except OSError as exc:
        return _("The database at {url} cannot be opened ({why}): check PROMPTLAB_DB_URL.").format(
            url=shown, why=exc.strerror or exc)
    _writable.add(url)
    return None


def dispose_engine(url: str) -> None:
    """Close a URL's pooled connections and forget its engine (a test's throwaway database, a shutdown)."""
    with _lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def engine_in_use(engine: Engine) -> bool:
    """Whether this is still the process-wide engine of its URL (not disposed): a background thread that holds an
    engine stops with it instead of reopening its connections."""
    with _lock:
        return any(known is engine for known in _engines.values())

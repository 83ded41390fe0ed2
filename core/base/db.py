"""The database: one SQLAlchemy engine per URL and the append-only schema migrations.

Never edit a shipped migration; add the next `mNNN_…` function. Each runs once and is recorded in `_migrations`.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
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
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = url.removeprefix("sqlite:///")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations not yet applied; returns their names."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"))
        done = {row[0] for row in conn.execute(sa.text("SELECT name FROM _migrations"))}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            fn(conn)
            conn.execute(sa.text("INSERT INTO _migrations (name, applied_at) VALUES (:n, :t)"),
                         {"n": name, "t": datetime.now(timezone.utc).isoformat()})
            applied_now.append(name)
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

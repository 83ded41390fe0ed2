"""Privacy controls: what the log keeps (text policy), retention (text and metrics separately, enforced at start-up
and hourly), and data-subject requests (export everything about a user as one ZIP, or delete it), each audited.
"""
from __future__ import annotations

import io
import json
import logging
import secrets
import threading
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyzipper
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.clock import utc_now_iso
from core.calls.log import TEXT_POLICY, mark_interrupted
from core.evals.store import mark_interrupted_runs
from core.policy.access import Identity
from core.policy.audit import audit
from core.policy.audit import audit_log as audit_log  # re-exported: pages read the log through privacy
from core.policy.redaction import TEXT_POLICIES
from core.policy.workspace import Setting, Workspace

logger = logging.getLogger(__name__)

RETENTION_KEY = "retention"


def set_text_policy(engine: Engine, policy: str, *, actor: Identity) -> None:
    """What the log keeps from now on, for everyone: an admin's choice (AdminOnly otherwise), audited."""
    if policy not in TEXT_POLICIES:
        raise ValueError(f"text policy must be one of {TEXT_POLICIES}")
    Workspace(engine).save(TEXT_POLICY, policy, actor=actor)


def text_policy(engine: Engine) -> str:
    return Workspace(engine).load(TEXT_POLICY)


@dataclass(frozen=True)
class Retention:
    """How long texts (prompts, replies, conversations, images, cache) and metrics (call rows) are kept."""

    text_hours: float | None = None  # None = forever
    metrics_days: float | None = None


RETENTION = Setting(RETENTION_KEY, Retention(), stored_as=Retention)


def retention(engine: Engine) -> Retention:
    return Workspace(engine).load(RETENTION)


def set_retention(engine: Engine, value: Retention, *, actor: Identity) -> None:
    """How long everyone's texts and calls are kept: an admin's choice (AdminOnly otherwise), audited."""
    Workspace(engine).save(RETENTION, value, actor=actor)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def enforce_retention(engine: Engine, data_dir: str | Path, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than the retention periods; returns rows removed per kind (audited when any)."""
    policy = retention(engine)
    now = now or datetime.now(timezone.utc)
    removed = {"texts": 0, "conversations": 0, "eval_runs": 0, "images": 0, "cache": 0, "calls": 0}
    with engine.begin() as conn:
        if policy.text_hours is not None:
            cutoff = _iso(now - timedelta(hours=policy.text_hours))
            removed["texts"] = conn.execute(sa.text(
                "DELETE FROM call_texts WHERE request_id IN (SELECT request_id FROM calls WHERE ts < :c)"),
                {"c": cutoff}).rowcount
            removed["conversations"] = conn.execute(sa.text("DELETE FROM conversations WHERE updated_at < :c"),
                                                    {"c": cutoff}).rowcount
            # An eval run keeps every output it graded: texts, under the same limit (its cells go with it); not
            # while it runs (the retention worker marks a run whose process died interrupted just before this),
            # nor while its batch is out at OpenAI (status `batch`, core/evals/batch.py).
            removed["eval_runs"] = conn.execute(sa.text("DELETE FROM eval_runs WHERE created_at < :c "
                                                        "AND status NOT IN ('running', 'batch')"),
                                                {"c": cutoff}).rowcount
            removed["cache"] = conn.execute(sa.text("DELETE FROM response_cache WHERE created_at < :c"),
                                            {"c": cutoff}).rowcount
            old_images = conn.execute(sa.text("SELECT id, path FROM images WHERE created_at < :c"),
                                      {"c": cutoff}).all()
            for _, path in old_images:
                Path(path).unlink(missing_ok=True)
            removed["images"] = conn.execute(sa.text("DELETE FROM images WHERE created_at < :c"),
                                             {"c": cutoff}).rowcount
        if policy.metrics_days is not None:
            cutoff = _iso(now - timedelta(days=policy.metrics_days))
            conn.execute(sa.text("DELETE FROM call_texts WHERE request_id IN "
                                 "(SELECT request_id FROM calls WHERE ts < :c)"), {"c": cutoff})
            removed["calls"] = conn.execute(sa.text("DELETE FROM calls WHERE ts < :c"), {"c": cutoff}).rowcount
    if any(removed.values()):
        audit(engine, "retention", "retention", None, removed)
    return removed


def oldest_kept(engine: Engine) -> dict[str, str | None]:
    """The date of the oldest call row and of the oldest stored text."""
    with engine.connect() as conn:
        oldest_call = conn.execute(sa.text("SELECT min(ts) FROM calls")).scalar()
        oldest_text = conn.execute(sa.text("SELECT min(c.ts) FROM call_texts t JOIN calls c "
                                           "ON c.request_id = t.request_id")).scalar()
    return {"calls": oldest_call, "texts": oldest_text}


class RetentionWorker:
    """Runs retention (and marks calls and eval runs a dead server left "started" / running as interrupted) at start
    and then every hour, in a daemon thread (one per database per process)."""

    def __init__(self, engine: Engine, data_dir: str | Path, every_s: float = 3600):
        self.engine, self.data_dir, self.every_s = engine, data_dir, every_s
        self.runs = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                mark_interrupted(self.engine)  # calls a dead server left "started"
                mark_interrupted_runs(self.engine)  # and its eval runs (their finished cells stay, resumable)
                enforce_retention(self.engine, self.data_dir)
            except Exception as exc:  # a busy database now is retried next hour; retention must never take the app down
                logger.warning("retention run failed, retried next hour: %s", repr(exc))
            self.runs += 1
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()


# ----- data-subject requests -------------------------------------------------------------------------------------

_USER_TABLES = {  # table -> (column naming the user, order column)
    "calls": ("user_id", "ts"),
    "conversations": ("user_id", "updated_at"),
    "prompt_versions": ("author", "created_at"),
    "playground_runs": ("user_id", "created_at"),
    "eval_sets": ("author", "created_at"),
    "eval_runs": ("user_id", "created_at"),
    "eval_ratings": ("rater", "created_at"),  # a rater's votes on anyone's runs (m017)
    "images": ("user_id", "created_at"),
    "response_cache": ("user_id", "created_at"),
}


def _rows(conn: sa.Connection, table: str, user: str) -> list[dict]:
    column, order = _USER_TABLES[table]
    return [dict(r._mapping) for r in conn.execute(
        sa.text(f"SELECT * FROM {table} WHERE {column} = :u ORDER BY {order}"), {"u": user})]


def may_act_for(actor: str | None, subject: str, actor_is_admin: bool) -> bool:
    """Data-subject actions: for yourself, or for anyone as an admin (`actor=None`: maintenance code)."""
    return actor is None or actor == subject or actor_is_admin


def export_passphrase() -> str:
    """A one-time passphrase for an export: 6 groups of 5 letters/digits (~155 bits), shown once to whoever asked."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(6))


def export_user(engine: Engine, user: str, actor: str | None = None, *, actor_is_admin: bool = False,
                passphrase: str | None = None) -> bytes:
    """Everything stored about a user as one ZIP: JSON per kind, plus the image files. With a passphrase the
    ZIP is AES-256 encrypted (7-Zip, WinZip, macOS Archive Utility with a helper, `7z x`): the file a download URL
    serves is then useless to anyone without the passphrase, which only its requester saw."""
    if not may_act_for(actor, user, actor_is_admin):
        raise PermissionError(f"Only {user} or an admin may export {user}'s data.")
    buffer = io.BytesIO()
    counts: dict[str, int] = {}
    archive = (pyzipper.AESZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, encryption=pyzipper.WZ_AES)
               if passphrase else zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED))
    if passphrase:
        archive.setpassword(passphrase.encode())
    with engine.connect() as conn, archive as zf:
        data = {table: _rows(conn, table, user) for table in _USER_TABLES}
        ids = [c["request_id"] for c in data["calls"]]
        texts = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            texts += [dict(r._mapping) for r in conn.execute(
                sa.text("SELECT * FROM call_texts WHERE request_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)), {"ids": chunk})]
        data["call_texts"] = texts
        run_ids = [r["id"] for r in data["eval_runs"]]
        cells = []  # an eval run's graded cells (outputs included) live in their own table since m013
        for start in range(0, len(run_ids), 500):
            cells += [dict(r._mapping) for r in conn.execute(
                sa.text("SELECT * FROM eval_run_cells WHERE run_id IN :ids ORDER BY run_id, position").bindparams(
                    sa.bindparam("ids", expanding=True)), {"ids": run_ids[start:start + 500]})]
        data["eval_run_cells"] = cells
        for name, rows in data.items():
            counts[name] = len(rows)
            zf.writestr(f"{name}.json", json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        for img in data["images"]:
            path = Path(img["path"])
            if path.exists():
                zf.writestr(f"images/{path.name}", path.read_bytes())
        zf.writestr("README.txt", f"PromptLab data export for user {user!r}, {utc_now_iso()}.\n"
                                  "One JSON file per kind of record; images/ holds the generated images.\n")
    audit(engine, actor, "export", user, counts)
    return buffer.getvalue()


def delete_user(engine: Engine, user: str, actor: str | None = None, *,
                actor_is_admin: bool = False) -> dict[str, int]:
    """Delete everything stored about a user (rows and image files); returns rows removed per kind."""
    if not may_act_for(actor, user, actor_is_admin):
        raise PermissionError(f"Only {user} or an admin may delete {user}'s data.")
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        images = _rows(conn, "images", user)
        counts["call_texts"] = conn.execute(sa.text(
            "DELETE FROM call_texts WHERE request_id IN (SELECT request_id FROM calls WHERE user_id = :u)"),
            {"u": user}).rowcount
        for table, (column, _) in _USER_TABLES.items():
            counts[table] = conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :u"), {"u": user}).rowcount
    for img in images:
        Path(img["path"]).unlink(missing_ok=True)
    audit(engine, actor, "delete", user, counts)
    return counts

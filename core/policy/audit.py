"""The audit log: who did what to whose data or to the workspace's settings, when (the `privacy_audit` table).

Data-subject requests, retention runs, price and workspace-setting changes each leave one line; an admin reads them
all, anyone else only the lines about themselves.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.clock import utc_now_iso


def audit(engine: Engine, actor: str | None, action: str, subject: str | None, detail: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO privacy_audit (id, ts, actor, action, subject, detail) "
                             "VALUES (:id, :ts, :actor, :action, :subject, :detail)"),
                     {"id": uuid.uuid4().hex, "ts": utc_now_iso(), "actor": actor, "action": action,
                      "subject": subject, "detail": json.dumps(detail)})


def audit_log(engine: Engine, limit: int = 50, viewer: str | None = None) -> list[dict]:
    """The latest lines, newest first: all of them (`viewer=None`: an admin), or those a user did or was the
    subject of (other users' names and requests are theirs)."""
    where = "" if viewer is None else "WHERE actor = :v OR subject = :v "
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM privacy_audit {where}ORDER BY ts DESC LIMIT :l"),
                            {"l": limit, "v": viewer})
        return [dict(r._mapping) for r in rows]

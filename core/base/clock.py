"""Time stamps as the database and exports store them: UTC, ISO 8601, milliseconds."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

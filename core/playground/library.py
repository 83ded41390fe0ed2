"""The prompt library: named prompts with numbered versions (draft, author, note) kept in the database, and
saved playground runs. OpenAI's hosted prompt objects are being retired, so versions live here, importable and
exportable as JSON.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.base.clock import utc_now_iso
from core.base.db import engine_for
from core.formats import json_guard
from core.playground.draft import Draft
from core.playground.matrix import CellResult, results_from_json, results_to_json

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "promptlab.prompts.v1"


@dataclass(frozen=True)
class PromptVersion:
    """One saved version of a named prompt."""

    id: str
    name: str
    version: int
    author: str | None
    note: str | None
    created_at: str
    draft: Draft

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class SavedRun:
    """A finished compare-matrix run kept for later comparison."""

    id: str
    name: str
    created_at: str
    results: list[CellResult]


class PromptLibrary:
    """Prompt versions and saved runs in the database at a SQLAlchemy URL."""

    def __init__(self, url: str, viewer: str | None = None, admin: bool = False):
        """`viewer`: whose library this is — versions others marked private, and others' saved runs, are left out
        (unless `admin`); None is the unscoped view of maintenance code and tests."""
        self.engine = engine_for(url)
        self.viewer, self.admin = viewer, admin

    @property
    def _scoped(self) -> bool:
        return self.viewer is not None and not self.admin

    def _visible(self) -> str:
        return " AND (private = FALSE OR author = :viewer)" if self._scoped else ""

    def save(self, name: str, draft: Draft, author: str | None = None, note: str | None = None,
             private: bool = False) -> PromptVersion:
        """Store the draft as the next version of `name` (private: only its author and admins see it)."""
        with self.engine.begin() as conn:
            return self._insert(conn, name, draft, author, note, private)

    @staticmethod
    def _insert(conn: sa.Connection, name: str, draft: Draft, author: str | None, note: str | None,
                private: bool = False) -> PromptVersion:
        name = name.strip()
        if not name:
            raise ValueError("a prompt needs a name")
        latest = conn.execute(sa.text("SELECT max(version) FROM prompt_versions WHERE name = :n"),
                              {"n": name}).scalar() or 0
        version = PromptVersion(uuid.uuid4().hex, name, latest + 1, author, note, utc_now_iso(), draft)
        conn.execute(sa.text("INSERT INTO prompt_versions (id, name, version, author, note, created_at, body, "
                             "private) VALUES (:id, :name, :v, :a, :note, :t, :body, :private)"),
                     {"id": version.id, "name": name, "v": version.version, "a": author, "note": note,
                      "t": version.created_at, "body": json.dumps(draft.to_dict()), "private": private})
        return version

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT DISTINCT name FROM prompt_versions WHERE TRUE{self._visible()} "
                                             "ORDER BY name"), {"viewer": self.viewer}).scalars())

    def history(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt the viewer may see, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM prompt_versions WHERE name = :n{self._visible()} "
                                        "ORDER BY version DESC"), {"n": name, "viewer": self.viewer})
            versions = [self._readable(r) for r in rows]
        return [v for v in versions if v is not None]

    def _readable(self, row: Any) -> PromptVersion | None:
        """A stored version, or None (logged) when its body is not a valid draft — one bad row written before
        imports were checked must not break the library for everyone."""
        try:
            return PromptVersion(row.id, row.name, row.version, row.author, row.note, row.created_at,
                                 Draft.checked(json_guard.loads(row.body, "A stored draft")))
        except (ValueError, TypeError):
            logger.warning("prompt version %s skipped: its stored draft is not valid", row.id)
            return None

    def get(self, version_id: str) -> PromptVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM prompt_versions WHERE id = :id{self._visible()}"),
                               {"id": version_id, "viewer": self.viewer}).first()
        return self._readable(row) if row else None

    def export_json(self, names: list[str] | None = None) -> str:
        versions = [v for n in (names or self.names()) for v in reversed(self.history(n))]
        return json.dumps({"format": EXPORT_FORMAT, "prompts": [
            {"name": v.name, "version": v.version, "author": v.author, "note": v.note, "created_at": v.created_at,
             "draft": v.draft.to_dict()} for v in versions]}, indent=2, ensure_ascii=False)

    def import_json(self, text: str, importer: str | None = None) -> int:
        """Add the versions of an export (each becomes the next version of its name, authored by the importer);
        returns how many. The whole file is checked first: one bad entry rejects it, with the reason, and nothing
        is written."""
        try:
            data = json_guard.loads(text, "The file")
        except json.JSONDecodeError as exc:
            raise ValueError(f"the file is not JSON (line {exc.lineno}: {exc.msg})") from None
        items = data.get("prompts") if isinstance(data, dict) else data
        if not isinstance(items, list) or not items:
            raise ValueError("not a PromptLab prompt export (no list of prompts)")
        drafts = []
        for n, item in enumerate(items, 1):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
                raise ValueError(f"prompt {n} needs a name (text)")
            note = item.get("note")
            if note is not None and not isinstance(note, str):
                raise ValueError(f"prompt {n}: the note must be text")
            drafts.append((item["name"], Draft.checked(item.get("draft"), f"prompt {n}"), note))
        with self.engine.begin() as conn:  # all or nothing
            for name, draft, note in drafts:
                self._insert(conn, name, draft, importer, note)
        return len(drafts)

    # ----- saved runs ---------------------------------------------------------------------------------------
    def save_run(self, name: str, results: list[CellResult], user: str | None = None) -> SavedRun:
        run = SavedRun(uuid.uuid4().hex, name.strip() or "run", utc_now_iso(), results)
        with self.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO playground_runs (id, name, user_id, created_at, body) "
                                 "VALUES (:id, :name, :u, :t, :body)"),
                         {"id": run.id, "name": run.name, "u": user, "t": run.created_at,
                          "body": results_to_json(results)})
        return run

    def run(self, run_id: str) -> SavedRun | None:
        """One saved run by id, if the viewer may see it."""
        mine = " AND user_id = :viewer" if self._scoped else ""
        with self.engine.connect() as conn:
            r = conn.execute(sa.text(f"SELECT * FROM playground_runs WHERE id = :id{mine}"),
                             {"id": run_id, "viewer": self.viewer}).first()
        return SavedRun(r.id, r.name, r.created_at, results_from_json(r.body)) if r else None

    def runs(self, limit: int = 50) -> list[SavedRun]:
        """Saved runs, newest first: the viewer's own (all for an admin)."""
        mine = " WHERE user_id = :viewer" if self._scoped else ""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM playground_runs{mine} ORDER BY created_at DESC LIMIT :l"),
                                {"l": limit, "viewer": self.viewer})
            return [SavedRun(r.id, r.name, r.created_at, results_from_json(r.body)) for r in rows]

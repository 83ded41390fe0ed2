"""The prompt library: named prompts with numbered versions (draft, author, note) kept in the database, and
saved playground runs. OpenAI's hosted prompt objects are being retired, so versions live here, importable and
exportable as JSON.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.clock import utc_now_iso
from core.db import engine_for
from core.playground import CellResult, Draft, results_from_json, results_to_json

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

    def __init__(self, url: str):
        self.engine = engine_for(url)

    def save(self, name: str, draft: Draft, author: str | None = None, note: str | None = None) -> PromptVersion:
        """Store the draft as the next version of `name`."""
        name = name.strip()
        if not name:
            raise ValueError("a prompt needs a name")
        with self.engine.begin() as conn:
            latest = conn.execute(sa.text("SELECT max(version) FROM prompt_versions WHERE name = :n"),
                                  {"n": name}).scalar() or 0
            version = PromptVersion(uuid.uuid4().hex, name, latest + 1, author, note, utc_now_iso(), draft)
            conn.execute(sa.text("INSERT INTO prompt_versions (id, name, version, author, note, created_at, body) "
                                 "VALUES (:id, :name, :v, :a, :note, :t, :body)"),
                         {"id": version.id, "name": name, "v": version.version, "a": author, "note": note,
                          "t": version.created_at, "body": json.dumps(draft.to_dict())})
        return version

    @staticmethod
    def _version(row: Any) -> PromptVersion:
        return PromptVersion(row.id, row.name, row.version, row.author, row.note, row.created_at,
                             Draft.from_dict(json.loads(row.body)))

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT DISTINCT name FROM prompt_versions ORDER BY name")).scalars())

    def history(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM prompt_versions WHERE name = :n ORDER BY version DESC"),
                                {"n": name})
            return [self._version(r) for r in rows]

    def get(self, version_id: str) -> PromptVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM prompt_versions WHERE id = :id"), {"id": version_id}).first()
        return self._version(row) if row else None

    def export_json(self, names: list[str] | None = None) -> str:
        versions = [v for n in (names or self.names()) for v in reversed(self.history(n))]
        return json.dumps({"format": EXPORT_FORMAT, "prompts": [
            {"name": v.name, "version": v.version, "author": v.author, "note": v.note, "created_at": v.created_at,
             "draft": v.draft.to_dict()} for v in versions]}, indent=2, ensure_ascii=False)

    def import_json(self, text: str) -> int:
        """Add the versions of an export (each becomes the next version of its name); returns how many."""
        try:
            data = json.loads(text)
            items = data["prompts"] if isinstance(data, dict) else data
            drafts = [(i["name"], Draft.from_dict(i["draft"]), i.get("author"), i.get("note")) for i in items]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a PromptLab prompt export ({type(exc).__name__})") from None
        for name, draft, author, note in drafts:
            self.save(name, draft, author, note)
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

    def runs(self, limit: int = 50) -> list[SavedRun]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM playground_runs ORDER BY created_at DESC LIMIT :l"),
                                {"l": limit})
            return [SavedRun(r.id, r.name, r.created_at, results_from_json(r.body)) for r in rows]

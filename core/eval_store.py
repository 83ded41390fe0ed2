"""Evals in the database: test sets versioned like the prompt library, and finished runs (their config and every
graded cell) so a later run can be compared with a baseline."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.clock import utc_now_iso
from core.db import engine_for
from core.eval_config import EvalConfig, TestCase, parse_config, tests_from_jsonl, tests_to_jsonl


@dataclass(frozen=True, kw_only=True)
class TestSetVersion:
    """One saved version of a named test set."""

    __test__ = False  # not a pytest class, whatever its name

    id: str
    name: str
    version: int
    author: str | None
    note: str | None
    created_at: str
    tests: list[TestCase]


@dataclass(frozen=True, kw_only=True)
class SavedEvalRun:
    """A finished run as stored: its config, the graded cells (results.json's `results`) and its summary."""

    id: str
    name: str
    user: str | None
    created_at: str
    config: EvalConfig
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    baseline: bool = False

    def to_json(self) -> str:
        """The run as results.json (what `python -m core.evals run --output` writes)."""
        return json.dumps({"summary": self.summary, "results": self.rows, "notes": self.config.notes},
                          ensure_ascii=False, indent=2, default=str)


class EvalStore:
    """Test sets and eval runs in the database at a SQLAlchemy URL."""

    def __init__(self, url: str, viewer: str | None = None, admin: bool = False):
        """`viewer`: whose runs are listed (an admin sees all; None: the unscoped view of maintenance code)."""
        self.engine = engine_for(url)
        self.viewer, self.admin = viewer, admin

    def _mine(self, prefix: str = "WHERE") -> str:
        return f" {prefix} user_id = :viewer" if self.viewer is not None and not self.admin else ""

    # ----- test sets -------------------------------------------------------------------------------------------
    def save_set(self, name: str, tests: list[TestCase], author: str | None = None,
                 note: str | None = None) -> TestSetVersion:
        """Store the tests as the next version of `name`."""
        name = name.strip()
        if not name:
            raise ValueError("A test set needs a name.")
        with self.engine.begin() as conn:
            latest = conn.execute(sa.text("SELECT max(version) FROM eval_sets WHERE name = :n"),
                                  {"n": name}).scalar() or 0
            saved = TestSetVersion(id=uuid.uuid4().hex, name=name, version=latest + 1, author=author, note=note,
                                   created_at=utc_now_iso(), tests=list(tests))
            conn.execute(sa.text("INSERT INTO eval_sets (id, name, version, author, note, created_at, body) "
                                 "VALUES (:id, :n, :v, :a, :note, :t, :body)"),
                         {"id": saved.id, "n": name, "v": saved.version, "a": author, "note": note,
                          "t": saved.created_at, "body": tests_to_jsonl(tests)})
        return saved

    def set_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT DISTINCT name FROM eval_sets ORDER BY name")).scalars())

    def set_history(self, name: str) -> list[TestSetVersion]:
        """Every version of a test set, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM eval_sets WHERE name = :n ORDER BY version DESC"),
                                {"n": name}).all()
        return [TestSetVersion(id=r.id, name=r.name, version=r.version, author=r.author, note=r.note,
                               created_at=r.created_at, tests=tests_from_jsonl(r.body)) for r in rows]

    def latest_set(self, name: str) -> TestSetVersion | None:
        history = self.set_history(name)
        return history[0] if history else None

    # ----- runs ------------------------------------------------------------------------------------------------
    def save_run(self, run_id: str, name: str, config: EvalConfig, rows: list[dict[str, Any]],
                 summary: dict[str, Any], user: str | None = None) -> SavedEvalRun:
        saved = SavedEvalRun(id=run_id, name=name, user=user, created_at=utc_now_iso(), config=config, rows=rows,
                             summary=summary)
        with self.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO eval_runs (id, name, user_id, created_at, config, body) "
                                 "VALUES (:id, :n, :u, :t, :c, :b)"),
                         {"id": run_id, "n": name, "u": user, "t": saved.created_at,
                          "c": json.dumps(config.to_dict(), ensure_ascii=False),
                          "b": json.dumps({"results": rows, "summary": summary}, ensure_ascii=False, default=str)})
        return saved

    @staticmethod
    def _run(row: Any) -> SavedEvalRun:
        body = json.loads(row.body)
        return SavedEvalRun(id=row.id, name=row.name, user=row.user_id, created_at=row.created_at,
                            config=parse_config(json.loads(row.config)), rows=body["results"],
                            summary=body["summary"], baseline=bool(row.baseline))

    def runs(self, limit: int = 50) -> list[SavedEvalRun]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM eval_runs{self._mine()} ORDER BY created_at DESC LIMIT :l"),
                                {"l": limit, "viewer": self.viewer}).all()
        return [self._run(r) for r in rows]

    def run(self, run_id: str) -> SavedEvalRun | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM eval_runs WHERE id = :id{self._mine('AND')}"),
                               {"id": run_id, "viewer": self.viewer}).first()
        return self._run(row) if row else None

    def set_baseline(self, run_id: str) -> None:
        """Make this run the viewer's baseline (one each)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE eval_runs SET baseline = FALSE WHERE baseline{self._mine('AND')}"),
                         {"viewer": self.viewer})
            conn.execute(sa.text(f"UPDATE eval_runs SET baseline = TRUE WHERE id = :id{self._mine('AND')}"),
                         {"id": run_id, "viewer": self.viewer})

    def baseline(self) -> SavedEvalRun | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM eval_runs WHERE baseline{self._mine('AND')}"),
                               {"viewer": self.viewer}).first()
        return self._run(row) if row else None

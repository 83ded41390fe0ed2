"""Evals in the database: test sets versioned like the prompt library — each with an owner, who alone (with admins)
adds versions and chooses whether others may read it — and finished runs (their config and every graded cell) so
a later run can be compared with a baseline."""
from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.clock import utc_now_iso
from core.db import engine_for
from core.eval_assertions import CODE_TYPES
from core.eval_config import EvalConfig, TestCase, parse_config, tests_from_jsonl, tests_to_jsonl
from core.i18n import _


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
    owner: str | None = None  # adds versions (with admins); None: saved before sets had owners — admins only
    shared: bool = False  # readable by everyone: the owner's choice


class TestSetRefused(PermissionError):
    """A change to a test set that the viewer may not make: the one sentence to show."""

    __test__ = False


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


def _stored_tests(body: str) -> list[TestCase]:
    """A stored set's cases: bounded when they came in, and a set saved before the limits may be larger."""
    return tests_from_jsonl(body, max_bytes=sys.maxsize, max_cases=sys.maxsize)


class EvalStore:
    """Test sets and eval runs in the database at a SQLAlchemy URL."""

    def __init__(self, url: str, viewer: str | None = None, admin: bool = False):
        """`viewer`: whose runs are listed (an admin sees all; None: the unscoped view of maintenance code)."""
        self.engine = engine_for(url)
        self.viewer, self.admin = viewer, admin

    def _mine(self, prefix: str = "WHERE") -> str:
        return f" {prefix} user_id = :viewer" if self.viewer is not None and not self.admin else ""

    # ----- test sets -------------------------------------------------------------------------------------------
    @property
    def _scoped(self) -> bool:
        return self.viewer is not None and not self.admin

    def _readable(self) -> str:
        return " AND (shared OR owner = :viewer)" if self._scoped else ""

    def may_change(self, version: TestSetVersion) -> bool:
        """Whether the viewer may add versions to this set or share it: its owner, or an admin."""
        return not self._scoped or (version.owner is not None and version.owner == self.viewer)

    def save_set(self, name: str, tests: list[TestCase], author: str | None = None,
                 note: str | None = None, shared: bool | None = None) -> TestSetVersion:
        """Store the tests as the next version of `name`. A new set is the viewer's (`shared`: readable by
        everyone); another's set, or one saved before sets had owners, only an admin may add to, and cases
        with code in them (python assertions) only an admin may save — someone else would run them."""
        name = name.strip()
        if not name:
            raise ValueError("A test set needs a name.")
        if self._scoped and any(a.base_type in CODE_TYPES for t in tests for a in t.assertions):
            raise TestSetRefused(_("Only an admin may save test cases with python assertions: they run code on the "
                                   "server."))
        try:
            with self.engine.begin() as conn:
                latest = conn.execute(sa.text("SELECT version, owner, shared FROM eval_sets WHERE name = :n "
                                              "ORDER BY version DESC LIMIT 1"), {"n": name}).first()
                if latest is not None and self._scoped and (latest.owner is None or latest.owner != self.viewer):
                    raise TestSetRefused(_("The test set “{name}” is not yours to change: save these cases under "
                                           "another name.").format(name=name))
                owner = latest.owner if latest is not None else self.viewer
                is_shared = bool(shared if shared is not None else latest is not None and latest.shared)
                saved = TestSetVersion(id=uuid.uuid4().hex, name=name, version=(latest.version if latest else 0) + 1,
                                       author=author, note=note, created_at=utc_now_iso(), tests=list(tests),
                                       owner=owner, shared=is_shared)
                conn.execute(sa.text("INSERT INTO eval_sets (id, name, version, author, note, created_at, body, "
                                     "owner, shared) VALUES (:id, :n, :v, :a, :note, :t, :body, :owner, :shared)"),
                             {"id": saved.id, "n": name, "v": saved.version, "a": author, "note": note,
                              "t": saved.created_at, "body": tests_to_jsonl(tests), "owner": owner,
                              "shared": is_shared})
                conn.execute(sa.text("UPDATE eval_sets SET shared = :s WHERE name = :n"),
                             {"s": is_shared, "n": name})  # one choice for every version of the set
        except sa.exc.IntegrityError:  # the same name and version saved by someone else a moment ago
            raise TestSetRefused(_("The test set “{name}” was saved by someone else at the same moment: try "
                                   "again.").format(name=name)) from None
        return saved

    def share_set(self, name: str, shared: bool) -> None:
        """Let everyone read the set (or only its owner and admins again): its owner's choice, or an admin's."""
        latest = self.latest_set(name)
        if latest is None or not self.may_change(latest):
            raise TestSetRefused(_("The test set “{name}” is not yours to change: save these cases under another "
                                   "name.").format(name=name.strip()))
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE eval_sets SET shared = :s WHERE name = :n"), {"s": shared, "n": name})

    def set_names(self) -> list[str]:
        """The sets the viewer may read: their own, shared ones (every set for an admin)."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT DISTINCT name FROM eval_sets WHERE TRUE{self._readable()} "
                                             "ORDER BY name"), {"viewer": self.viewer}).scalars())

    def set_history(self, name: str) -> list[TestSetVersion]:
        """Every version of a test set, newest first (none when the viewer may not read it)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM eval_sets WHERE name = :n{self._readable()} "
                                        "ORDER BY version DESC"), {"n": name, "viewer": self.viewer}).all()
        return [TestSetVersion(id=r.id, name=r.name, version=r.version, author=r.author, note=r.note,
                               created_at=r.created_at, tests=_stored_tests(r.body), owner=r.owner,
                               shared=bool(r.shared)) for r in rows]

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

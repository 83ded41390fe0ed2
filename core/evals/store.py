"""Evals in the database: test sets versioned like the prompt library — each with an owner, who alone (with admins)
adds versions and chooses whether others may read it — and runs (their config and every graded cell) so a later
run can be compared with a baseline.

A run is written as it goes: its row first (status running, owned by pid@host like a started call), then each
graded cell as it finishes, cleaned of the keys in play and under the call log's text policy. A run whose process
died is read as interrupted, with every finished cell, and can be taken over to run the missing ones.
"""
from __future__ import annotations

import json
import socket
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.clock import utc_now_iso
from core.base.db import engine_for
from core.base.errors import without_keys
from core.base.i18n import _
from core.calls.log import TEXT_POLICY, owner_gone, process_owner
from core.evals import results as eval_results
from core.evals.assertions import CODE_TYPES
from core.evals.config import STORED, EvalConfig, TestCase, parse_config, tests_from_jsonl, tests_to_jsonl
from core.policy.redaction import redact_value
from core.policy.workspace import Workspace


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


@dataclass(frozen=True)
class SetDiff:
    """What changed between two versions of a test set: cases added, removed, and changed (old, new)."""

    added: list[TestCase]
    removed: list[TestCase]
    changed: list[tuple[TestCase, TestCase]]

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _case_key(case: TestCase) -> str:
    # A case from traffic is the same case while its source is; a typed one is known by its variables.
    source = case.metadata.get("source")
    return f"source:{source}" if source else "vars:" + json.dumps(case.vars, sort_keys=True, default=str)


def diff_sets(old: list[TestCase], new: list[TestCase]) -> SetDiff:
    """Cases matched by their source (traffic) or their variables; a matched case whose assertions, description,
    threshold, variables or metadata differ is changed."""
    before = {_case_key(c): c for c in old}
    after = {_case_key(c): c for c in new}
    return SetDiff(added=[c for k, c in after.items() if k not in before],
                   removed=[c for k, c in before.items() if k not in after],
                   changed=[(before[k], c) for k, c in after.items() if k in before and before[k] != c])


class TestSetRefused(PermissionError):
    """A change to a test set that the viewer may not make: the one sentence to show."""

    __test__ = False


# ----- runs (records) ------------------------------------------------------------------------------------------------
RUNNING, DONE, CANCELLED, INTERRUPTED = "running", "done", "cancelled", "interrupted"
RESUMABLE = (INTERRUPTED, CANCELLED)
STALE_AFTER_S = 3600  # a running run that wrote nothing for this long is another machine's dead process's
# The cell fields that hold texts (from the cases, the model or a grader): what the text policy acts on.
CELL_TEXT_FIELDS = ("vars", "output", "reason", "error", "assertions", "grading", "description")

_meta = sa.MetaData()
eval_run_cells_table = sa.Table(  # m013: one graded cell of a run, written as it finishes
    "eval_run_cells", _meta,
    sa.Column("run_id", sa.Text, primary_key=True), sa.Column("cell_key", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer), sa.Column("finished_at", sa.Text), sa.Column("body", sa.Text),
)


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """How a run was asked for besides its config (how many cells, repeats, concurrency, cache): what a resume
    needs to run the missing cells the same way."""

    cells: int
    repeat: int = 1
    concurrency: int = 8
    cache: bool = False

    def to_json(self) -> str:
        return json.dumps({"cells": self.cells, "repeat": self.repeat, "concurrency": self.concurrency,
                           "cache": self.cache})

    @staticmethod
    def from_json(text: str | None, cells: int) -> RunPlan:
        data = json.loads(text) if text else {}
        return RunPlan(cells=int(data.get("cells", cells)), repeat=int(data.get("repeat", 1)),
                       concurrency=int(data.get("concurrency", 8)), cache=bool(data.get("cache", False)))


@dataclass(frozen=True, kw_only=True)
class SavedEvalRun:
    """A run as stored: its config, the graded cells (results.json's `results`), its summary, and its state —
    running, done, cancelled, or interrupted (its process is gone); `cell_keys` say which cells finished."""

    id: str
    name: str
    user: str | None
    created_at: str
    config: EvalConfig
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    baseline: bool = False
    status: str = DONE
    plan: RunPlan | None = None
    cell_keys: frozenset[str] = frozenset()

    @property
    def missing_cells(self) -> int:
        """Cells not run yet (0 for a run saved whole)."""
        return max(0, self.plan.cells - len(self.cell_keys)) if self.plan else 0

    @property
    def resumable(self) -> bool:
        """An interrupted or cancelled run with cells still to run."""
        return self.status in RESUMABLE and self.missing_cells > 0

    def to_json(self) -> str:
        """The run as results.json (what `python -m core evals run --output` writes)."""
        return json.dumps({"summary": self.summary, "results": self.rows, "notes": self.config.notes},
                          ensure_ascii=False, indent=2, default=str)


def clean_cell(row: dict[str, Any], secrets: Iterable[str], policy: str) -> dict[str, Any]:
    """A cell as it may be stored: the keys in play removed from every field, and the call log's text policy on its
    texts — "redacted": PII and key-shaped strings replaced by typed placeholders; "metadata": the model's output
    and the grading prompts not kept at all (verdicts, scores and the rest, redacted)."""
    row = dict(row)
    if policy in ("redacted", "metadata"):
        for name in CELL_TEXT_FIELDS:
            if name in row:
                row[name] = redact_value(row[name])
    if policy == "metadata":
        row["output"], row["grading"] = "", []
    return without_keys(row, secrets)


class RunJournal:
    """A run being written as its cells finish, by the process that runs them (the run row names it as owner).
    `record` runs in the cells' worker threads; `finish` once, when the run ends or is cancelled."""

    def __init__(self, engine: Engine, run_id: str, planned: int, secrets: Iterable[str], policy: str):
        self.engine, self.run_id, self.planned = engine, run_id, planned
        self.secrets = frozenset(s for s in secrets if s)
        self.policy = policy
        self.owner = process_owner()

    def record(self, key: str, position: int, row: dict[str, Any], secrets: Iterable[str] = ()) -> None:
        """Store one graded cell (cleaned first: see `clean_cell`); writing the same key again replaces it."""
        body = json.dumps(clean_cell(row, self.secrets | set(secrets), self.policy), ensure_ascii=False,
                          default=str)
        now = utc_now_iso()
        cells = eval_run_cells_table
        with self.engine.begin() as conn:
            conn.execute(cells.delete().where((cells.c.run_id == self.run_id) & (cells.c.cell_key == key)))
            conn.execute(cells.insert(), {"run_id": self.run_id, "cell_key": key, "position": position,
                                          "finished_at": now, "body": body})
            conn.execute(sa.text("UPDATE eval_runs SET updated_at = :t WHERE id = :id"),
                         {"t": now, "id": self.run_id})

    def finish(self, status: str) -> str:
        """Mark the run done / cancelled / interrupted and release it; "done" with cells missing (a write that
        failed, a worker that died) is stored as interrupted, so a resume can run them. Returns the state kept."""
        with self.engine.begin() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(eval_run_cells_table)
                                  .where(eval_run_cells_table.c.run_id == self.run_id)).scalar_one()
            if status == DONE and stored < self.planned:
                status = INTERRUPTED
            conn.execute(sa.text("UPDATE eval_runs SET status = :s, owner = NULL, updated_at = :t "
                                 "WHERE id = :id AND owner = :me"),
                         {"s": status, "t": utc_now_iso(), "id": self.run_id, "me": self.owner})
        return status


def run_state(status: str, owner: str | None, updated_at: str | None) -> str:
    """A stored run's state as it is: a run still marked running whose process is gone (this machine's), or that
    wrote nothing for an hour (another machine's, whose processes cannot be asked), is interrupted."""
    if status != RUNNING:
        return status
    if owner_gone(owner or ""):
        return INTERRUPTED
    if (owner or "").endswith(f"@{socket.gethostname()}"):
        return RUNNING  # this machine's, and its process runs: however slow a cell, it is not to be taken over
    cutoff = (datetime.now(timezone.utc) - timedelta(seconds=STALE_AFTER_S)).isoformat(timespec="milliseconds")
    return INTERRUPTED if (updated_at or "") < cutoff else RUNNING


def mark_interrupted_runs(engine: Engine) -> int:
    """Store the state of runs whose process is gone as interrupted (run at start-up and hourly by
    core.records.privacy.RetentionWorker, next to the call log's own); returns how many."""
    with engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT id, status, owner, updated_at FROM eval_runs WHERE status = :s"),
                            {"s": RUNNING}).all()
        dead = [r.id for r in rows if run_state(r.status, r.owner, r.updated_at) == INTERRUPTED]
        for run_id in dead:
            conn.execute(sa.text("UPDATE eval_runs SET status = :i, owner = NULL WHERE id = :id AND status = :s"),
                         {"i": INTERRUPTED, "id": run_id, "s": RUNNING})
    return len(dead)


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

    def add_to_set(self, name: str, cases: list[TestCase], author: str | None = None,
                   note: str | None = None) -> tuple[TestSetVersion, int]:
        """"Add to a test set": the set's latest cases plus those not in it yet (a call or turn added twice is one
        case), saved as its next version — or a new private set. Returns the version and how many were new."""
        latest = self.latest_set(name.strip())
        have = {_case_key(c) for c in latest.tests} if latest else set()
        new = [c for c in dict((_case_key(c), c) for c in cases).values() if _case_key(c) not in have]
        tests = (latest.tests if latest else []) + new
        return self.save_set(name, tests, author, note), len(new)

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
    def begin_run(self, run_id: str, name: str, config: EvalConfig, plan: RunPlan, *, user: str | None = None,
                  secrets: Iterable[str | None] = ()) -> RunJournal:
        """Create the run's row before its first cell (status running, owned by this process) and return the
        journal its cells are written through. `secrets`: the keys in play, removed from everything stored."""
        keys = tuple(s for s in secrets if s)
        now = utc_now_iso()
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO eval_runs (id, name, user_id, created_at, config, body, status, owner, updated_at, "
                "planned_cells, plan) VALUES (:id, :n, :u, :t, :c, '{}', :s, :o, :t, :cells, :plan)"),
                {"id": run_id, "n": without_keys(name, keys), "u": user, "t": now,
                 "c": json.dumps(without_keys(config.to_dict(), keys), ensure_ascii=False), "s": RUNNING,
                 "o": process_owner(), "cells": plan.cells, "plan": plan.to_json()})
        return RunJournal(self.engine, run_id, plan.cells, keys, Workspace(self.engine).load(TEXT_POLICY))

    def take_over(self, run_id: str, secrets: Iterable[str | None] = ()) -> RunJournal | None:
        """Claim an interrupted (or cancelled) run of the viewer's to resume it: it is running again, owned by this
        process. None when it is not resumable, not the viewer's, or another process claimed it first."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM eval_runs WHERE id = :id{self._mine('AND')}"),
                               {"id": run_id, "viewer": self.viewer}).first()
        if row is None or row.planned_cells is None or run_state(row.status, row.owner, row.updated_at) \
                not in RESUMABLE:
            return None
        with self.engine.begin() as conn:  # the row as read, or nothing: two resumes cannot both win
            claimed = conn.execute(sa.text(
                "UPDATE eval_runs SET status = :s, owner = :o, updated_at = :t WHERE id = :id AND status = :was "
                "AND coalesce(owner, '') = :owner"),
                {"s": RUNNING, "o": process_owner(), "t": utc_now_iso(), "id": run_id, "was": row.status,
                 "owner": row.owner or ""}).rowcount
        if claimed != 1:
            return None
        keys = tuple(s for s in secrets if s)
        return RunJournal(self.engine, run_id, row.planned_cells, keys, Workspace(self.engine).load(TEXT_POLICY))

    def save_run(self, run_id: str, name: str, config: EvalConfig, rows: list[dict[str, Any]],
                 summary: dict[str, Any], user: str | None = None,
                 secrets: Iterable[str | None] = ()) -> SavedEvalRun | None:
        """Store a finished run whole (rows and summary in the run's row, as before runs were written as they go),
        cleaned like a journal's cells."""
        keys = tuple(s for s in secrets if s)
        policy = Workspace(self.engine).load(TEXT_POLICY)
        body = {"results": [clean_cell(r, keys, policy) for r in rows], "summary": without_keys(summary, keys)}
        with self.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO eval_runs (id, name, user_id, created_at, config, body, updated_at) "
                                 "VALUES (:id, :n, :u, :t, :c, :b, :t)"),
                         {"id": run_id, "n": without_keys(name, keys), "u": user, "t": utc_now_iso(),
                          "c": json.dumps(without_keys(config.to_dict(), keys), ensure_ascii=False),
                          "b": json.dumps(body, ensure_ascii=False, default=str)})
        return self.run(run_id)

    def _cells(self, run_ids: list[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """The stored cells of these runs, in run order: run id -> [(cell key, row)]."""
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {run_id: [] for run_id in run_ids}
        cells = eval_run_cells_table
        with self.engine.connect() as conn:
            for start in range(0, len(run_ids), 500):
                for r in conn.execute(sa.select(cells.c.run_id, cells.c.cell_key, cells.c.body)
                                      .where(cells.c.run_id.in_(run_ids[start:start + 500]))
                                      .order_by(cells.c.run_id, cells.c.position)):
                    out[r.run_id].append((r.cell_key, json.loads(r.body)))
        return out

    @staticmethod
    def _run(row: Any, cells: list[tuple[str, dict[str, Any]]]) -> SavedEvalRun:
        body = json.loads(row.body)
        config = parse_config(json.loads(row.config), STORED)
        if row.planned_cells is None:  # saved whole (`save_run`, and every run before m013)
            return SavedEvalRun(id=row.id, name=row.name, user=row.user_id, created_at=row.created_at, config=config,
                                rows=body["results"], summary=body["summary"], baseline=bool(row.baseline))
        rows = [r for _, r in cells]
        summary = {"run_id": row.id, "name": row.name, **eval_results.summary(rows), "cells": row.planned_cells}
        status = run_state(row.status, row.owner, row.updated_at)
        if status == INTERRUPTED and len(cells) >= row.planned_cells:
            status = DONE  # every cell is there (its process died just before saying so, or a late write landed)
        return SavedEvalRun(id=row.id, name=row.name, user=row.user_id, created_at=row.created_at, config=config,
                            rows=rows, summary=summary, baseline=bool(row.baseline), status=status,
                            plan=RunPlan.from_json(row.plan, row.planned_cells),
                            cell_keys=frozenset(k for k, _ in cells))

    def _read(self, where: str, params: dict[str, Any], limit: int | None = None) -> list[SavedEvalRun]:
        query = f"SELECT * FROM eval_runs {where}{self._mine('AND' if where else 'WHERE')} ORDER BY created_at DESC"
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(query + (" LIMIT :l" if limit else "")),
                                {**params, "l": limit, "viewer": self.viewer}).all()
        cells = self._cells([r.id for r in rows if r.planned_cells is not None])
        return [self._run(r, cells.get(r.id, [])) for r in rows]

    def runs(self, limit: int = 50) -> list[SavedEvalRun]:
        """The viewer's runs, newest first, whatever their state (a running or interrupted run shows the cells
        that finished)."""
        return self._read("", {}, limit)

    def run(self, run_id: str) -> SavedEvalRun | None:
        found = self._read("WHERE id = :id", {"id": run_id})
        return found[0] if found else None

    def set_baseline(self, run_id: str) -> None:
        """Make this run the viewer's baseline (one each)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE eval_runs SET baseline = FALSE WHERE baseline{self._mine('AND')}"),
                         {"viewer": self.viewer})
            conn.execute(sa.text(f"UPDATE eval_runs SET baseline = TRUE WHERE id = :id{self._mine('AND')}"),
                         {"id": run_id, "viewer": self.viewer})

    def baseline(self) -> SavedEvalRun | None:
        found = self._read("WHERE baseline", {})
        return found[0] if found else None

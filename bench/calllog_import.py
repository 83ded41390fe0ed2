"""Benchmark: importing an N-line JSONL export into the call log, as a ratio to a floor timed in the same run.

The file is what `python -m core calls export` writes (synthetic calls exported from a scratch log). The floor reads
it line by line, `json.loads` each line and `executemany`s the rows into a plain table with the same columns (no key,
no index: what the driver alone costs) through the bare driver, committing as often as the import does. PromptLab's
import is `core.calls.interchange.import_jsonl` into a fresh call log: the path `python -m core calls import` takes.
Both run on SQLite and, when PROMPTLAB_TEST_PG_URL is set, on PostgreSQL (fresh schemas, dropped afterwards); row
counts are checked. N: BENCH_IMPORT_LINES (default 1,000,000). Prints `RESULT calllog_import_ratio_<sqlite|pg> <x>` (goal <= 3).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from core.base.db import dispose_engine  # noqa: E402
from core.calls import interchange, synthetic  # noqa: E402
from core.calls.log import CALL_COLUMNS, CallLog, field_for_column  # noqa: E402

LINES = int(os.environ.get("BENCH_IMPORT_LINES", 1_000_000))
PG_URL = os.environ.get("PROMPTLAB_TEST_PG_URL")
FLOOR_COLUMNS = [c for c in CALL_COLUMNS if field_for_column(c) in interchange.KEYS]  # user_id holds "user" …


def write_export(path: Path, scratch_url: str) -> None:
    log = CallLog(scratch_url)
    synthetic.generate(log, LINES, days=30, seed=7)
    assert interchange.export(log, path) == LINES


def floor(path: Path, url: str) -> tuple[float, int]:
    """json.loads + executemany through the bare driver into a plain table with the same columns, nothing else."""
    engine = CallLog(url).engine
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE floor_calls AS SELECT * FROM calls WHERE 1 = 0"))
    raw = engine.raw_connection()
    conn = raw.driver_connection  # sqlite3 or psycopg, under nothing of SQLAlchemy's
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO floor_calls ({', '.join(FLOOR_COLUMNS)}) VALUES ({', '.join([mark] * len(FLOOR_COLUMNS))})"
    keys = [field_for_column(c) for c in FLOOR_COLUMNS]
    t0 = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        rows = []
        for line in f:
            obj = json.loads(line)
            obj["tags"] = json.dumps(obj["tags"])
            rows.append([obj[k] for k in keys])
            if len(rows) == interchange.IMPORT_BATCH:
                conn.cursor().executemany(sql, rows)
                conn.commit()
                rows = []
        if rows:
            conn.cursor().executemany(sql, rows)
            conn.commit()
    elapsed = time.perf_counter() - t0
    raw.close()
    with engine.connect() as c:
        return elapsed, c.execute(sa.text("SELECT count(*) FROM floor_calls")).scalar_one()


def promptlab(path: Path, url: str) -> tuple[float, int]:
    log = CallLog(url)  # migrated before the clock starts, as a running app's log is
    t0 = time.perf_counter()
    report = interchange.import_jsonl(path, log)
    elapsed = time.perf_counter() - t0
    assert (report.imported, report.skipped) == (LINES, 0), report.summary()
    return elapsed, log.count()


def fresh_url(backend: str, tmp: str, name: str, schemas: list[str]) -> str:
    """An empty database: a SQLite file, or a new PostgreSQL schema (added to `schemas`, dropped at the end)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp}/{name}.db"
    assert PG_URL
    schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    schemas.append(schema)
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"


def main() -> None:
    schemas: list[str] = []

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.jsonl"
        t0 = time.perf_counter()
        write_export(path, f"sqlite:///{tmp}/scratch.db")
        print(f"export of {LINES:,} synthetic calls: {path.stat().st_size / 1e6:,.0f} MB in "
              f"{time.perf_counter() - t0:.0f} s")
        try:
            for backend in ["sqlite", "pg"] if PG_URL else ["sqlite"]:
                floor_url = fresh_url(backend, tmp, "floor", schemas)
                import_url = fresh_url(backend, tmp, "import", schemas)
                floor_s, floor_rows = floor(path, floor_url)
                ours_s, rows = promptlab(path, import_url)
                assert floor_rows == rows == LINES, (floor_rows, rows, LINES)
                ratio = ours_s / floor_s
                print(f"{backend:6s}: floor (json.loads + executemany, bare driver) {floor_s:.1f} s; "
                      f"import_jsonl {ours_s:.1f} s ({LINES / ours_s:,.0f} lines/s) = {ratio:.2f}x the floor")
                print(f"RESULT calllog_import_ratio_{backend} {ratio:.3f}")
                dispose_engine(floor_url)
                dispose_engine(import_url)
        finally:
            if schemas:
                engine = sa.create_engine(PG_URL)
                with engine.begin() as conn:
                    for schema in schemas:
                        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                engine.dispose()


if __name__ == "__main__":
    main()

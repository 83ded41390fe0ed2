"""Benchmark: 8 processes × 2,000 calls written to the call log at once, on SQLite and on PostgreSQL.

Each process writes the way the call gate does (one transaction per call: the CallRecord and its texts). Nothing may
be lost: the row count is checked. Rows per second are printed per backend. PostgreSQL runs when
PROMPTLAB_TEST_PG_URL is set (.ci/run sets it). Last line: `RESULT calllog_rows_per_s <SQLite rate>` (goal >= 2,000).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from core.calls.log import CallLog, CallTexts  # noqa: E402
from core.calls.synthetic import generate_records  # noqa: E402

PROCESSES = 8
CALLS = int(os.environ.get("BENCH_CALLS_PER_PROCESS", 2000))


def writer(url: str, worker: int, start: mp.Event, done: mp.Queue) -> None:
    log = CallLog(url)
    records = generate_records(CALLS, days=1, seed=worker)
    for i, r in enumerate(records):
        r.request_id = f"w{worker}_{i}"
    texts = CallTexts({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 20}]},
                      "a reply of a few words " * 10)
    start.wait()
    for record in records:
        log.write(record, texts)
    done.put(worker)


def floor_writer(url: str, worker: int, start: mp.Event, done: mp.Queue) -> None:
    """The floor: the same rows through the bare driver, one INSERT and one COMMIT per call, nothing else."""
    records = generate_records(CALLS, days=1, seed=worker)
    rows = []
    for i, r in enumerate(records):
        r.request_id = f"f{worker}_{i}"
        rows.append(CallLog.row(r))
    columns = list(rows[0])
    if url.startswith("sqlite"):
        import sqlite3
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        sql = f"INSERT INTO floor_calls ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        start.wait()
        for row in rows:
            conn.execute("BEGIN")
            conn.execute(sql, [row[c] for c in columns])
            conn.execute("COMMIT")
    else:
        import psycopg
        conninfo, _, options = url.replace("postgresql+psycopg", "postgresql").partition("?options=")
        conn = psycopg.connect(conninfo, options=options.replace("%3D", "="))
        sql = f"INSERT INTO floor_calls ({', '.join(columns)}) VALUES ({', '.join('%s' for _ in columns)})"
        start.wait()
        for row in rows:
            conn.execute(sql, [row[c] for c in columns])
            conn.commit()
    conn.close()
    done.put(worker)


def run(url: str, target=writer, table: str = "calls") -> tuple[float, int]:
    CallLog(url)  # migrate once before the writers race
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    if table == "floor_calls":  # the same columns, no index but the key, nothing else in the table
        with CallLog(url).engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS floor_calls"))
            conn.execute(sa.text("CREATE TABLE floor_calls AS SELECT * FROM calls WHERE 1 = 0"))
            conn.execute(sa.text("ALTER TABLE floor_calls ADD PRIMARY KEY (request_id)")
                         if conn.dialect.name == "postgresql" else sa.text("SELECT 1"))
    procs = [ctx.Process(target=target, args=(url, w, start, done)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    time.sleep(3)  # let every writer import, connect and build its records
    t0 = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    with CallLog(url).engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    return elapsed, rows


def main() -> None:
    expected = PROCESSES * CALLS
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        backends = {"sqlite": f"sqlite:///{tmp}/writes.db"}
        pg = os.environ.get("PROMPTLAB_TEST_PG_URL")
        if pg:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            engine = sa.create_engine(pg)
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            backends["postgresql"] = f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
        for name, url in backends.items():
            elapsed, rows = run(url)
            lost = expected - rows
            results[name] = rows / elapsed
            print(f"{name:10s}: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s, lost {lost}")
            assert lost == 0, f"{lost} calls lost on {name}"
            floor_elapsed, floor_rows = run(url, floor_writer, "floor_calls")
            assert floor_rows == expected
            ratio = (rows / elapsed) / (floor_rows / floor_elapsed)
            print(f"{name:10s}: floor (bare driver, one INSERT + COMMIT per call) {floor_rows / floor_elapsed:,.0f} "
                  f"rows/s; PromptLab = {ratio:.2f}x the floor")
            print(f"RESULT calllog_write_ratio_{name} {ratio:.3f}")
        if pg:
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    print(f"RESULT calllog_rows_per_s {results['sqlite']:.0f}")


if __name__ == "__main__":
    main()

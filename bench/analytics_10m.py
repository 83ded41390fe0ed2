"""Benchmark: the Analytics page on a 10 M-call log in PostgreSQL (issue 27), and on a 1 M-call SQLite log.

PostgreSQL answers the page from its roll-ups (core/analytics/pushdown.py); one SQLite node keeps the DuckDB mirror
(core/analytics/dashboard.py), measured here as it is today. Each measurement runs in a fresh process — a replica
just restarted — which times:
- cold: the first Analytics visit (the new-calls check, filter options, the default 30-day dashboard, its charts,
  the first page of the calls table, the budget);
- worst: the slowest of the page's filters below, each a first visit to that filter (nothing cached by the page);
- rss: the process's resident memory after all of them.

    python bench/analytics_10m.py [--calls 10000000] [--sqlite-calls 1000000] [--keep]

PROMPTLAB_TEST_PG_URL names the PostgreSQL database (a schema `bench_analytics_10m` is filled once and, with
--keep, reused by later runs). Last lines: RESULT analytics_10m_worst_s / analytics_10m_rss_mib / analytics_10m_cold_s
(goals ≤ 1 s, ≤ 300 MiB, ≤ 2 s), then the same three for SQLite at 1 M (analytics_1m_sqlite_*).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = "bench_analytics_10m"


def page_filters(today: date) -> dict[str, object]:
    from core.analytics.dashboard import Filters
    month = today.replace(day=1)
    return {
        "30 days": Filters(today - timedelta(days=29), today),
        "90 days (all)": Filters(today - timedelta(days=89), today),
        "this month": Filters(month, today),
        "today (hourly)": Filters(today, today),
        "yesterday + today (hourly)": Filters(today - timedelta(days=1), today),
        "7 days, 2 models, ok": Filters(today - timedelta(days=6), today, models=("gpt-4o", "gpt-4o-mini"),
                                        statuses=("ok",)),
        "30 days, 2 users, tag eval": Filters(today - timedelta(days=29), today, users=("ana", "ben"),
                                              tags=("eval",)),
        "90 days, errors": Filters(today - timedelta(days=89), today, statuses=("error",)),
        "90 days, moderations": Filters(today - timedelta(days=89), today, endpoints=("moderations",)),
        "90 days, farid on gpt-4.1": Filters(today - timedelta(days=89), today, users=("farid",),
                                             models=("gpt-4.1",)),
    }


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def measure(url: str) -> dict[str, object]:
    """In this (fresh) process: the first visit, then every filter once; seconds and memory."""
    from core.analytics.charts import figures
    from core.analytics.dashboard import budget_status
    from core.analytics.pushdown import analytics_for
    from core.calls.log import CallLog

    filters = page_filters(date.today())
    t0 = time.perf_counter()
    engine = analytics_for(CallLog(url))

    def visit(f) -> int:
        engine.refresh()
        dash = engine.dashboard(f)
        figures(dash)
        engine.calls_page(f, 0, 50)
        budget_status(engine, 1000.0)
        return dash.current.calls

    engine.refresh()
    engine.options()
    calls = visit(filters["30 days"])
    cold = time.perf_counter() - t0
    times, counts = {}, {}
    for name, f in filters.items():
        t = time.perf_counter()
        counts[name] = visit(f)
        times[name] = time.perf_counter() - t
    return {"engine": type(engine).__name__, "cold_s": cold, "calls_30d": calls, "times": times, "counts": counts,
            "rss_mib": rss_mib()}


def fresh_process(url: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", url], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(label: str, result: dict) -> float:
    print(f"{label}: {result['engine']}, fresh process")
    print(f"  first visit (cold): {result['cold_s']:.2f} s")
    for name, seconds in result["times"].items():
        print(f"  {name:<30} {result['counts'][name]:>11,} calls   {seconds:6.3f} s")
    print(f"  RSS after every filter: {result['rss_mib']:.0f} MiB")
    return max(result["times"].values())


def postgres(pg_url: str, calls: int, keep: bool) -> dict:
    import sqlalchemy as sa

    from bench.synthetic_sql import fill
    from core.calls.log import CallLog

    admin = sa.create_engine(pg_url)
    sep = "&" if "?" in pg_url else "?"
    url = f"{pg_url}{sep}options=-csearch_path%3D{SCHEMA}"
    with admin.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": SCHEMA}).scalar()
        if exists and not keep:
            conn.execute(sa.text(f"DROP SCHEMA {SCHEMA} CASCADE"))
            exists = None
        if not exists:
            conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    log = CallLog(url)
    with log.engine.connect() as conn:
        have = conn.execute(sa.text("SELECT count(*) FROM calls")).scalar_one()
    if have != calls:
        with log.engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE calls CASCADE"))
        t0 = time.perf_counter()
        fill(log.engine, calls, days=90, seed=1, chunk=500_000, progress=True)
        with log.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        print(f"PostgreSQL: {calls:,} calls written (roll-ups kept by the triggers) in "
              f"{time.perf_counter() - t0:.0f} s")
    with log.engine.connect() as conn:
        sizes = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM calls_daily), (SELECT count(*) FROM calls_hourly), "
            "(SELECT count(*) FROM calls_sample), pg_size_pretty(pg_total_relation_size('calls')), "
            "pg_size_pretty(pg_total_relation_size('calls_daily') + pg_total_relation_size('calls_hourly') + "
            "pg_total_relation_size('calls_sample'))")).one()
    print(f"PostgreSQL roll-ups: {sizes[0]:,} daily rows, {sizes[1]:,} hourly rows, {sizes[2]:,} sampled calls; "
          f"calls table {sizes[3]}, roll-ups and sample {sizes[4]}")
    from core.base.db import dispose_engine
    dispose_engine(url)
    return fresh_process(url)


def sqlite(calls: int) -> dict:
    from core.calls.log import CallLog
    from core.calls.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/calls.db"
        t0 = time.perf_counter()
        generate(CallLog(url), calls, days=90, seed=1)
        print(f"SQLite: {calls:,} calls generated in {time.perf_counter() - t0:.0f} s")
        return fresh_process(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--sqlite-calls", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the filled PostgreSQL schema")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    pg_url = os.environ.get("PROMPTLAB_TEST_PG_URL")
    results = []
    if pg_url:
        pg = postgres(pg_url, args.calls, args.keep)
        results.append(("analytics_10m" if args.calls == 10_000_000 else f"analytics_{args.calls}", pg,
                        report(f"PostgreSQL, {args.calls:,} calls", pg)))
    else:
        print("PROMPTLAB_TEST_PG_URL is not set: PostgreSQL skipped")
    if args.sqlite_calls:
        lite = sqlite(args.sqlite_calls)
        results.append(("analytics_1m_sqlite" if args.sqlite_calls == 1_000_000
                        else f"analytics_{args.sqlite_calls}_sqlite", lite,
                        report(f"SQLite, {args.sqlite_calls:,} calls", lite)))
    for name, result, worst in results:
        print(f"RESULT {name}_worst_s {worst:.3f}")
        print(f"RESULT {name}_rss_mib {result['rss_mib']:.0f}")
        print(f"RESULT {name}_cold_s {result['cold_s']:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: the Analytics page's computation at 1,000,000 calls vs a pandas baseline, plus a 1 M-line import.

1. `generate` 1 M synthetic calls into a temporary SQLite call log.
2. PromptLab: load the DuckDB mirror once (cold, printed), then for three filters compute everything the page
   shows: the new-calls check, the dashboard (KPIs, previous period, every series), its ten Plotly figures, the
   first page of the calls table and the budget.
3. Baseline, same run, same filters: `pandas.read_sql` of all rows, then the same KPIs and series in pandas.
4. Export the log to JSONL and time `import` of the 1 M lines into a fresh log (goal <= 60 s).
Last line: `RESULT analytics_speedup <baseline/yours>` (goal >= 10). Per-filter seconds are printed (goal <= 1 s).
"""
from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from core.analytics.charts import figures  # noqa: E402
from core.analytics.dashboard import Analytics, Filters, budget_status  # noqa: E402
from core.calls.interchange import export, import_jsonl  # noqa: E402
from core.calls.log import CallLog  # noqa: E402
from core.calls.synthetic import generate  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", 1_000_000))


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def filters_to_time(today: date) -> list[Filters]:
    return [Filters(today - timedelta(days=29), today),
            Filters(today - timedelta(days=6), today, models=("gpt-4o", "gpt-4o-mini"), statuses=("ok",)),
            Filters(today.replace(day=1), today, users=("ana", "ben"), tags=("eval",))]


def ours(engine: Analytics, f: Filters) -> tuple[float, int]:
    t0 = time.perf_counter()
    engine.refresh()  # the page's check for new calls
    dash = engine.dashboard(f)
    figures(dash)  # and the ten Plotly figures it draws
    engine.calls_page(f, 0, 50)
    budget_status(engine, 1000.0)
    return time.perf_counter() - t0, dash.current.calls


def baseline(db_url: str, f: Filters) -> tuple[float, int]:
    """What a page would do without an analytics design: load every row, aggregate in pandas."""
    t0 = time.perf_counter()
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        df = pd.read_sql("SELECT * FROM calls", conn)
    engine.dispose()
    df["day"] = pd.to_datetime(df["ts"].str.slice(0, 10)).dt.date
    df["model"] = df["model"].fillna(df["model_requested"])
    df["tags"] = df["tags"].map(lambda t: t.strip("[]").replace('"', "").split(", ") if t != "[]" else [])

    def select(frame: pd.DataFrame, flt: Filters) -> pd.DataFrame:
        m = (frame["day"] >= flt.start) & (frame["day"] <= flt.end)
        for col, vals in (("provider", flt.providers), ("model", flt.models), ("page", flt.pages),
                          ("user_id", flt.users), ("status", flt.statuses)):
            if vals:
                m &= frame[col].isin(vals)
        if flt.tags:
            m &= frame["tags"].map(lambda ts: any(t in ts for t in flt.tags))
        return frame[m]

    def kpis(frame: pd.DataFrame) -> dict:
        ok = frame[frame.status == "ok"]
        return {"spend": frame.cost_usd.sum(), "calls": len(frame), "errors": (frame.status == "error").sum(),
                "p50": ok.latency_ms.quantile(0.5), "p95": ok.latency_ms.quantile(0.95),
                "ttft": ok.ttft_ms.median(), "in": frame.input_tokens.sum(), "out": frame.output_tokens.sum(),
                "cached": frame.cached_input_tokens.sum(), "unpriced": frame.cost_usd.isna().sum(),
                "estimated": frame.tokens_estimated.sum()}

    cur = select(df, f)
    kpis(cur)
    kpis(select(df, f.previous()))
    cur.groupby(["day", "model"]).cost_usd.sum()
    cur.groupby("day").agg(calls=("status", "size"), errors=("status", lambda s: (s == "error").sum()))
    cur[cur.status == "ok"].groupby("day").latency_ms.quantile([0.5, 0.95, 0.99])
    cur.ttft_ms.dropna().clip(lower=10).pipe(lambda s: s.groupby((s.apply(__import__("math").log10) * 8)
                                                                  .astype(int)).size())
    cur.groupby("model")[["input_tokens", "output_tokens"]].sum()
    for col in ("page", "user_id"):
        cur.groupby(col).cost_usd.sum()
    cur.explode("tags").groupby("tags").cost_usd.sum()
    ok = cur[(cur.status == "ok") & (cur.output_tokens > 1) & cur.ttft_ms.notna() & (cur.latency_ms > cur.ttft_ms)]
    ((ok.output_tokens - 1) / ((ok.latency_ms - ok.ttft_ms) / 1000)).groupby(ok.model).median()
    cur[cur.status == "error"].groupby("error_type").size()
    cur.sort_values("ts", ascending=False).head(50)
    return time.perf_counter() - t0, len(cur)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/calls.db"
        log = CallLog(url)
        t0 = time.perf_counter()
        generate(log, CALLS, days=90, seed=1)
        print(f"generated {CALLS:,} calls in {time.perf_counter() - t0:.1f} s")

        engine = Analytics(log)
        t0 = time.perf_counter()
        engine.refresh()
        print(f"DuckDB mirror loaded (cold, once per process) in {time.perf_counter() - t0:.1f} s; "
              f"RSS {rss_mib():.0f} MiB")
        today = date.today()
        ours_times, base_times = [], []
        for i, f in enumerate(filters_to_time(today), start=1):
            ours(engine, f)  # first touch of this filter's data pages
            t_ours, n_ours = ours(engine, f)
            t_base, n_base = baseline(url, f)
            assert n_ours == n_base, (n_ours, n_base)
            ours_times.append(t_ours)
            base_times.append(t_base)
            print(f"filter {i}: {n_ours:>9,} calls   PromptLab {t_ours:6.3f} s   baseline {t_base:6.2f} s")
        print(f"PromptLab RSS after the dashboards: {rss_mib():.0f} MiB (baseline frames included)")

        jsonl = Path(tmp) / "calls.jsonl"
        t0 = time.perf_counter()
        export(log, jsonl)
        print(f"export of {CALLS:,} calls to JSONL: {time.perf_counter() - t0:.1f} s")
        fresh = CallLog(f"sqlite:///{tmp}/imported.db")
        t0 = time.perf_counter()
        report = import_jsonl(jsonl, fresh)
        print(f"import of {report.imported:,} JSONL lines: {time.perf_counter() - t0:.1f} s (goal <= 60 s)")

    speedup = sum(base_times) / sum(ours_times)
    print(f"worst PromptLab filter: {max(ours_times):.3f} s (goal <= 1 s)")
    print(f"RESULT analytics_speedup {speedup:.1f}")


if __name__ == "__main__":
    main()

"""Benchmark: reconciling 90 days × 20 models against 1,000,000 logged calls, after the API has answered.

1 M synthetic calls over 90 days go into a temporary SQLite call log; the provider's side is 90 daily buckets × 20
models of usage and costs (the shapes the Usage and Costs APIs return, already fetched). Timed: PromptLab's
tracked usage per day × model from the log plus the comparison with the bill — what `reconcile` does once the API
has answered. Median of 5. Last line: `RESULT reconcile_s <s>` (goal ≤ 2 s).
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analytics import reconcile  # noqa: E402
from core.calls.log import CallLog  # noqa: E402
from core.calls.synthetic import generate  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", 1_000_000))
DAYS, MODELS = 90, 20


def billed(since: date) -> tuple[list[reconcile.Usage], dict[str, float], dict[str, float]]:
    usage, by_day, by_item = [], {}, {}
    for d in range(DAYS):
        day = (since + timedelta(days=d)).isoformat()
        for m in range(MODELS):
            model = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o", "gpt-4.1", "o4-mini", "gpt-5-mini"][m] if m < 6 \
                else f"ft:gpt-4o-mini:acme:{m}"
            usage.append(reconcile.Usage(day=day, model=model, requests=400 + m, input_tokens=90_000 + m,
                                         output_tokens=20_000 + m))
        by_day[day] = 12.5
    by_item["gpt-4o-mini, input"] = 12.5 * DAYS
    return usage, by_day, by_item


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = CallLog(f"sqlite:///{tmp}/bench.db")
        t0 = time.perf_counter()
        generate(log, CALLS, days=DAYS, seed=3)
        print(f"generated {CALLS:,} calls over {DAYS} days in {time.perf_counter() - t0:.1f} s")
        until = date.today()
        since = until - timedelta(days=DAYS - 1)
        usage, by_day, by_item = billed(since)
        times, rows = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            result = reconcile.reconcile(reconcile.tracked_usage(log.engine, since, until), usage, by_day, by_item,
                                         since, until)
            times.append(time.perf_counter() - t0)
            rows = len(result.rows)
    print(f"{rows:,} day × model rows; coverage {result.coverage:.1%}; runs: "
          + ", ".join(f"{t:.2f} s" for t in times))
    print(f"RESULT reconcile_s {statistics.median(times):.3f}")


if __name__ == "__main__":
    main()

"""Benchmark: an eval's fan-out and its results view.

200 cases × 2 prompts × 2 models = 800 cells against the loopback server (its own process) answering every request
after 1 s, at concurrency 16; each cell is graded by two deterministic assertions and stored as it finishes (the
page's durable path: one database write per cell, from the cells' worker threads). The ideal wall time is
cells × 1 s / 16 = 50 s: `RESULT evals_fanout_ratio` = measured / ideal (goal ≤ 1.3).

Then the results view for that run, with the first run as its baseline: (a) loading it from the database and every
computation the Results tab makes (summary, pass-rate matrix, per-configuration table, failures-first ordering, an
A/B comparison with its flipped cases, the comparison with the baseline), median of 5, printed; (b) the whole Evals
page drawn by Streamlit's AppTest with that run shown (config tab, estimate, results tab with its tables and the
first 200 cases): `RESULT evals_view_s` (goal ≤ 1 s), the median of 5 reruns.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.calls.gate import CallContext  # noqa: E402
from core.calls.log import CallLog  # noqa: E402
from core.evals import results as er  # noqa: E402
from core.evals.config import parse_config  # noqa: E402
from core.evals.run import EvalRun  # noqa: E402
from core.evals.store import EvalStore  # noqa: E402
from core.llm.providers import Provider  # noqa: E402
from tests.browser import free_port  # noqa: E402

CASES, LATENCY_S, CONCURRENCY = 200, 1.0, 16
KEY = "sk-bench-evals-000000000000"


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback_server", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}/v1"


def script(base_url: str, n: int) -> None:
    body = json.dumps([{"first_byte_delay": LATENCY_S} for _ in range(n)]).encode()
    req = urllib.request.Request(base_url.removesuffix("/v1") + "/_script", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def config(base_url: str):
    return parse_config({
        "prompts": ["Answer briefly: {{question}}", "You are a support agent. {{question}}"],
        "providers": [{"id": "openai:chat:gpt-4o-mini", "config": {"apiBaseUrl": base_url, "max_tokens": 64}},
                      {"id": "openai:chat:gpt-4o", "config": {"apiBaseUrl": base_url, "max_tokens": 64}}],
        "tests": [{"description": f"case {i}", "vars": {"question": f"Question {i} about order {i % 7}?"},
                   "assert": [{"type": "icontains", "value": "answer" if i % 3 else "agent"},
                              {"type": "contains", "value": f"{i % 7}"}]} for i in range(CASES)]})


def view(store: EvalStore, run_id: str, baseline_id: str) -> float:
    """Seconds for everything the Results tab computes for one run."""
    t0 = time.perf_counter()
    run, baseline = store.run(run_id), store.run(baseline_id)
    assert run is not None and baseline is not None
    rows = run.rows
    er.summary(rows)
    er.pass_matrix(rows)
    configs = er.config_summaries(rows)
    ordered = er.cases_failures_first(rows)
    comparison = er.compare_prompts(rows, configs[0].prompt, configs[-1].prompt, configs[0].provider)
    er.flipped(rows, comparison, configs[-1].prompt, configs[0].provider)
    er.compare_with_baseline(rows, baseline.rows)
    assert len(ordered) == len(rows)
    return time.perf_counter() - t0


def page_renders(db_url: str, base_url: str) -> list[float]:
    """Seconds per rerun of the Evals page (AppTest, no browser) showing the newest run."""
    import os

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # as in tests/conftest.py: run the router, not the page file alone
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    os.environ.update({"PROMPTLAB_DB_URL": db_url, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": KEY,
                       "PROMPTLAB_MODELS_DIR": str(ROOT / "data" / "models")})
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/evals.py").run()
    assert not at.exception, at.exception
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    assert any(d.value.index.name == "prompt" for d in at.dataframe)  # the pass-rate matrix is there
    return times


def main() -> None:
    proc, base_url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            cfg = config(base_url)
            provider = Provider("compatible", base_url, KEY, timeout_s=30, max_retries=0)
            store = EvalStore(url)
            ids = []
            for attempt in range(2):  # the second run is compared with the first as its baseline
                run = EvalRun(cfg, lambda spec: provider, CallContext("evals", "bench"), CallLog(url),
                              concurrency=CONCURRENCY, name=f"bench-{attempt}")
                script(base_url, len(run.cells))
                t0 = time.perf_counter()
                run.start_stored(store, user="bench")  # as the page does: each cell stored as it finishes
                assert run.wait(600)
                wall = time.perf_counter() - t0
                assert run.progress() == (len(run.cells), len(run.cells))
                assert all(r.status == "ok" for r in run.results)
                assert run.finish() == "done"
                ids.append(run.id)
                if attempt == 0:
                    first_wall = wall
            store.set_baseline(ids[0])
            views = [view(store, ids[1], ids[0]) for _ in range(5)]
            renders = page_renders(url, base_url)
    finally:
        proc.terminate()
    cells = len(run.cells)
    ideal = cells * LATENCY_S / CONCURRENCY
    passed = run.summary()["passed"]
    print(f"{cells} cells ({CASES} cases × 2 prompts × 2 models), {LATENCY_S:g} s per call, concurrency "
          f"{CONCURRENCY}: {first_wall:.1f} s and {wall:.1f} s (ideal {ideal:.0f} s); {passed} passed")
    print(f"results view: median {statistics.median(views) * 1000:.0f} ms of 5 (max {max(views) * 1000:.0f} ms)")
    print(f"RESULT evals_fanout_ratio {min(first_wall, wall) / ideal:.3f}")
    print(f"page render (AppTest, Results tab on that run): median {statistics.median(renders):.3f} s of "
          f"{len(renders)}")
    print(f"RESULT evals_view_s {statistics.median(renders):.3f}")


if __name__ == "__main__":
    main()

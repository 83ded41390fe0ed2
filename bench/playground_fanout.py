"""Benchmark: a 9-cell compare matrix against the loopback server answering each call after 1 s, versus one call.

All cells go through PromptLab's MatrixRun (the call gate, logging, checks). With the cells running concurrently,
nine 1-second calls should take barely longer than one. The matrix runs with concurrency 9 (the Playground's
"Concurrent calls" setting; its default of 8 would make two waves). The server runs in its own process.
Last line: `RESULT playground_fanout_ratio <9-cell wall time / one call>` (goal <= 1.3).
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
from core.llm.providers import Provider  # noqa: E402
from core.playground.draft import Draft  # noqa: E402
from core.playground.matrix import CellSpec, MatrixRun, prepare_cell  # noqa: E402
from tests.browser import free_port  # noqa: E402

LATENCY_S = 1.0
CELLS = 9
ROUNDS = 3


def script(base: str, n: int) -> None:
    body = json.dumps([{"first_byte_delay": LATENCY_S, "reply": "A short answer."}] * n).encode()
    urllib.request.urlopen(urllib.request.Request(f"{base}/_script", body,
                                                  {"Content-Type": "application/json"})).read()


def run_cells(provider: Provider, log: CallLog, n: int) -> float:
    draft = Draft("gpt-4o-mini", "You are terse.", "Question {{i}}", {"i": "1"})
    cells = [prepare_cell(CellSpec("v1", "gpt-4o-mini", 0.0, r + 1), draft, provider) for r in range(n)]
    t0 = time.perf_counter()
    run = MatrixRun(cells, CallContext("playground", tags=["bench"]), log, concurrency=n).start()
    assert run.wait(60) and all(r.status == "ok" for r in run.results), [r.error for r in run.results]
    return time.perf_counter() - t0


def main() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.loopback_server", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    server.stdout.readline()
    base = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log = CallLog(f"sqlite:///{tmp}/bench.db")
            provider = Provider("compatible", f"{base}/v1", "sk-bench", timeout_s=30, max_retries=0)
            singles, matrices = [], []
            for _ in range(ROUNDS):
                script(base, 1)
                singles.append(run_cells(provider, log, 1))
                script(base, CELLS)
                matrices.append(run_cells(provider, log, CELLS))
            assert log.count() == ROUNDS * (CELLS + 1)
    finally:
        server.terminate()
    one, nine = statistics.median(singles), statistics.median(matrices)
    print(f"server latency per call: {LATENCY_S:.1f} s; rounds: {ROUNDS}")
    print(f"one call:           median {one:.3f} s")
    print(f"{CELLS}-cell matrix:      median {nine:.3f} s (concurrency {CELLS})")
    print(f"RESULT playground_fanout_ratio {nine / one:.3f}")


if __name__ == "__main__":
    main()

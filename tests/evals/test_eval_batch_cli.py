"""`python -m core evals run CONFIG --batch` submits, polls (printing progress) and prints the table from the stored
run; `python -m core evals poll RUN_ID` picks a stored batch run up in another process and finishes it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.evals.batch import submit
from core.evals.run import EvalRun
from core.evals.store import DONE, EvalStore
from tests.conftest import TEST_KEY
from tests.evals.test_eval_batch import CASES, config, openai_at

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"description": "batched", "prompts": ["Answer: {{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
          "tests": [{"vars": {"q": f"q{i}"}, "assert": [{"type": "contains", "value": f"q{i}"}]}
                    for i in range(CASES)]}


def cli(server, db_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "evals", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PROMPTLAB_DB_URL": db_url, "OPENAI_API_KEY": TEST_KEY,
                                            "OPENAI_BASE_URL": server.base_url, "PROMPTLAB_PROVIDER": "openai",
                                            "PROMPTLAB_MAX_RETRIES": "0"})


def test_evals_run_batch_submits_polls_with_progress_and_prints_the_stored_table(server, sqlite_url, tmp_path):
    server.batch.polls = 3
    path = tmp_path / "batched.yaml"
    path.write_text(json.dumps(CONFIG))
    EvalStore(sqlite_url)  # migrated before the child starts
    done = cli(server, sqlite_url, "run", str(path), "--batch", "--poll-interval", "0.05", "--junit-xml",
               str(tmp_path / "junit.xml"))
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stdout.splitlines() if line.startswith("batch ") and "lines done" in line]
    assert progress[-1].startswith(f"batch completed: {CASES}/{CASES} lines done") and len(progress) == 3
    assert "submitted" in done.stdout and f"{CASES}/{CASES}" in done.stdout and server.chat_requests() == []
    assert (tmp_path / "junit.xml").read_text().count("<testcase") == CASES
    assert EvalStore(sqlite_url).runs()[0].status == DONE


def test_evals_poll_finishes_a_batch_run_submitted_by_another_process(server, sqlite_url):
    server.batch.polls = 2
    sent = submit(EvalRun(config(), lambda spec: openai_at(server), CallContext("evals"), CallLog(sqlite_url)),
                  EvalStore(sqlite_url))
    done = cli(server, sqlite_url, "poll", sent.run_id, "--poll-interval", "0.05")
    assert done.returncode == 0, done.stderr
    assert "batch completed" in done.stdout and f"run {sent.run_id} (done)" in done.stdout
    assert EvalStore(sqlite_url).run(sent.run_id).status == DONE


def test_evals_run_batch_against_a_server_without_batches_says_so_and_runs_live(server, sqlite_url, tmp_path):
    server.batch.supported = False
    path = tmp_path / "batched.yaml"
    path.write_text(json.dumps(CONFIG))
    EvalStore(sqlite_url)
    done = cli(server, sqlite_url, "run", str(path), "--batch", "--poll-interval", "0.05")
    assert done.returncode == 0, done.stderr
    assert "no Batch API" in done.stderr and len(server.chat_requests()) == CASES

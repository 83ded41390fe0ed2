"""Eval runs survive a crash: `python -m core evals run` running a 12-cell eval against the loopback server is
killed with SIGKILL mid-run; the store then holds an interrupted run with exactly the cells that finished, a resume runs only
the missing ones (counted at the server) and the run ends done. The Evals page lists such a run with its finished
cells and a Resume button. Cancel keeps a run's finished cells, resumable too."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.evals.config import parse_config
from core.evals.run import EvalRun
from core.evals.store import EvalStore
from core.llm.providers import Provider
from tests.conftest import ADMIN, TEST_KEY
from tests.loopback_server import Script

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CELLS = 12
CONFIG = {"description": "nightly", "prompts": ["Answer: {{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
          "tests": [{"vars": {"q": f"q{i}"}, "assert": [{"type": "contains", "value": f"q{i}"}]}
                    for i in range(CELLS)]}


def start_command_line_run(server, db_url: str, tmp_path: Path, held_s: float = 0.4) -> subprocess.Popen:
    """`python -m core evals run` of CONFIG as a child, one call at a time, each held `held_s` at the server."""
    EvalStore(db_url)  # migrated before the child starts (two first migrations at once would collide)
    config = tmp_path / "nightly.yaml"
    config.write_text(json.dumps(CONFIG))
    server.push(*[Script(first_byte_delay=held_s) for _ in range(CELLS)])
    return subprocess.Popen([sys.executable, "-m", "core", "evals", "run", str(config), "--concurrency", "1"], cwd=ROOT,
                            env={**os.environ, "PROMPTLAB_DB_URL": db_url, "OPENAI_API_KEY": TEST_KEY,
                                 "OPENAI_BASE_URL": server.base_url, "PROMPTLAB_PROVIDER": "auto",
                                 "PROMPTLAB_MAX_RETRIES": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def killed_run(server, db_url: str, tmp_path: Path) -> tuple[str, int]:
    """`python -m core evals run` (the command line: the same path as the page) as a child, one call at a time, each
    held 0.4 s at the server; SIGKILL once its 4th call has ended (the worker stores a cell before it sends the next
    call, so 3 cells are stored by then). Returns the stored run's id and how many cells it holds."""
    child = start_command_line_run(server, db_url, tmp_path)
    log = CallLog(db_url)
    deadline = time.monotonic() + 90
    try:
        while sum(r.page == "evals" and r.status == "ok" for r in log.recent(50)) < 4:
            assert child.poll() is None, child.communicate()  # the child must still be running
            assert time.monotonic() < deadline, "no calls ended"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    server.reset()  # the unused delays go; the request count starts again at 0
    runs = EvalStore(db_url).runs()
    assert len(runs) == 1, "the killed run was not stored"
    return runs[0].id, len(runs[0].rows)


def test_a_run_killed_with_sigkill_is_interrupted_with_its_finished_cells_and_resumes_only_the_missing(
        server, db_url, tmp_path):
    run_id, finished = killed_run(server, db_url, tmp_path)
    assert 3 <= finished < CELLS
    from core.evals.run import cell_key
    from core.evals.store import mark_interrupted_runs  # (after the replay: the old code fails it, not an import)

    store = EvalStore(db_url)
    saved = store.run(run_id)
    assert saved.status == "interrupted" and saved.resumable and saved.missing_cells == CELLS - finished
    # Exactly the cells that finished: each stored cell is a call the log saw end, graded; at most the one call that
    # ended in the instant before the kill (answered, not yet stored) is missing.
    assert len(saved.rows) == finished and all(r["graded"] and r["pass"] for r in saved.rows)
    ended = {r.request_id for r in CallLog(db_url).recent(100) if f"run:{run_id}" in r.tags and r.status == "ok"}
    stored = {r["request_id"] for r in saved.rows}
    assert stored <= ended and len(ended - stored) <= 1
    assert saved.summary["cells"] == CELLS and saved.summary["graded"] == finished
    assert mark_interrupted_runs(CallLog(db_url).engine) == 1  # the start-up sweep stores the state

    evaluation = EvalRun.resuming(saved, lambda spec: Provider("compatible", server.base_url, TEST_KEY,
                                                               max_retries=0), CallContext("evals", "local"),
                                  CallLog(db_url))
    assert evaluation.resume_stored(store)
    assert store.take_over(run_id) is None  # two resumes cannot both run it
    assert store.run(run_id).status == "running"
    assert evaluation.wait(60) and evaluation.finish() == "done"
    sent = [b["messages"][-1]["content"] for b in server.chat_requests()]
    assert len(sent) == CELLS - finished  # only the missing cells were asked again
    done_before = {r["test_index"] for r in saved.rows}
    assert set(sent) == {f"Answer: q{i}" for i in range(CELLS) if i not in done_before}
    done = store.run(run_id)
    assert done.status == "done" and not done.resumable
    assert done.cell_keys == {cell_key(0, 0, i, 1) for i in range(CELLS)}
    assert [r["test_index"] for r in done.rows] == list(range(CELLS))  # in the run's order, not finishing order
    assert done.summary["passed"] == CELLS and all(f"run:{run_id}" in r.tags for r in CallLog(db_url).recent(100)
                                                   if r.page == "evals")


def test_the_evals_page_lists_the_interrupted_run_and_resumes_it(server, sqlite_url, app_env, tmp_path):
    run_id, finished = killed_run(server, sqlite_url, tmp_path)
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("pages/evals.py").run()
    assert not at.exception, at.exception
    pick = at.selectbox(key="eval_result_pick")
    assert pick.value == run_id and "⏸" in pick.options[pick.index]  # listed, marked interrupted
    assert any("Interrupted" in w.value and f"after {finished} of {CELLS} cells" in w.value for w in at.warning)
    cases = [e.label for e in at.expander if e.label.startswith(("⚠️", "❌", "✅"))]
    assert len(cases) == finished and all(label.startswith("✅") for label in cases)
    resume = at.button(key="eval_resume")
    assert resume.label == f"▶ Resume: run the {CELLS - finished} missing cells"

    resume.click().run()
    assert not at.exception, at.exception
    assert len(server.chat_requests()) == CELLS - finished
    assert EvalStore(sqlite_url).run(run_id).status == "done"
    assert len([e for e in at.expander if e.label.startswith("✅")]) == CELLS
    assert not [b for b in at.button if b.key == "eval_resume"] and not at.warning


def test_cancel_stores_the_finished_cells_and_the_run_can_be_resumed(server, db_url):
    server.push(*[Script(chunk_delay=0.2) for _ in range(6)])
    config = parse_config({"prompts": ["{{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                           "tests": [{"vars": {"q": f"q{i}"}} for i in range(6)]})
    resolve = lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0)  # noqa: E731
    store = EvalStore(db_url, "ana")
    run = EvalRun(config, resolve, CallContext("evals", "ana"), CallLog(db_url), concurrency=1)
    run.start_stored(store, user="ana")
    assert store.run(run.id).status == "running" and not store.run(run.id).rows  # the row is there first
    while run.progress()[0] < 2:
        time.sleep(0.01)
    run.cancel()
    assert run.wait(30) and run.finish() == "cancelled"
    saved = store.run(run.id)
    graded = run.progress()[0]
    assert saved.status == "cancelled" and len(saved.rows) == graded and saved.resumable
    assert EvalStore(db_url, "bob").take_over(run.id) is None  # not bob's run
    server.reset()
    again = EvalRun.resuming(saved, resolve, CallContext("evals", "ana"), CallLog(db_url))
    assert again.resume_stored(store) and again.wait(30) and again.finish() == "done"
    assert len(server.chat_requests()) == 6 - graded and len(store.run(run.id).rows) == 6


def test_a_run_whose_cells_were_not_all_stored_is_not_done(server, db_url):
    """A cell whose write failed (database busy) leaves the run interrupted, never done with a hole."""
    from core.evals.run import cell_key
    from core.evals.store import eval_run_cells_table

    config = parse_config({"prompts": ["{{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                           "tests": [{"vars": {"q": "a"}}, {"vars": {"q": "b"}}]})
    run = EvalRun(config, lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0),
                  CallContext("evals"), CallLog(db_url), concurrency=1)
    store = EvalStore(db_url)
    assert run.start_stored(store).wait(30) and run.outcome() == "done"
    with store.engine.begin() as conn:  # as if the second cell's write had failed
        conn.execute(eval_run_cells_table.delete().where(eval_run_cells_table.c.cell_key == cell_key(0, 0, 1, 1)))
    assert run.finish() == "interrupted" and store.run(run.id).missing_cells == 1


@pytest.mark.parametrize("policy", ["redacted", "metadata"])
def test_stored_cells_follow_the_text_policy(server, db_url, policy):
    from core.records.privacy import set_text_policy

    set_text_policy(CallLog(db_url).engine, policy, actor=ADMIN)
    server.push(Script(reply="Write to ana.lopez@example.com"))
    config = parse_config({"prompts": ["{{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                           "tests": [{"vars": {"q": "mail bob@example.org"},
                                      "assert": [{"type": "contains", "value": "example"}]}]})
    run = EvalRun(config, lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0),
                  CallContext("evals"), CallLog(db_url))
    store = EvalStore(db_url)
    run.start_stored(store).wait(30)
    run.finish()
    (row,) = store.run(run.id).rows
    assert row["vars"] == {"q": "mail [EMAIL]"} and row["pass"]
    assert row["output"] == ("Write to [EMAIL]" if policy == "redacted" else "")


def test_a_users_export_holds_their_runs_cells_and_deleting_them_removes_the_cells(server, db_url):
    from core.records.privacy import delete_user, export_user
    from tests.records.test_privacy import unzip

    config = parse_config({"prompts": ["{{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                           "tests": [{"vars": {"q": "ana's question"}}]})
    run = EvalRun(config, lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0),
                  CallContext("evals", "ana"), CallLog(db_url))
    store = EvalStore(db_url)
    run.start_stored(store, user="ana").wait(30)
    run.finish()
    engine = CallLog(db_url).engine
    (cell,) = unzip(export_user(engine, "ana"))["eval_run_cells"]
    assert cell["run_id"] == run.id and "Echo: ana's question" in cell["body"]
    assert delete_user(engine, "ana")["eval_runs"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM eval_run_cells")).scalar_one() == 0


def test_which_running_runs_are_interrupted(db_url):
    """Like a started call: this machine's run whose process is gone, or another machine's run silent for an hour;
    never a run of a live process of this machine's, however long its cell takes."""
    import socket

    from core.calls.log import process_owner
    from core.evals.store import RunPlan, mark_interrupted_runs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = EvalStore(db_url)
    config = parse_config({"prompts": ["x"], "providers": ["openai:gpt-4o"]})
    rows = {"dead": (f"in progress: {dead.pid}@{socket.gethostname()}", "2099-01-01T00:00:00.000+00:00"),
            "live-but-slow": (process_owner(), "2000-01-01T00:00:00.000+00:00"),
            "elsewhere-silent": ("in progress: 1@another-host", "2000-01-01T00:00:00.000+00:00"),
            "elsewhere-busy": ("in progress: 1@another-host", "2099-01-01T00:00:00.000+00:00")}
    for run_id, (owner, updated) in rows.items():
        store.begin_run(run_id, run_id, config, RunPlan(cells=1))
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE eval_runs SET owner = :o, updated_at = :u WHERE id = :id"),
                         {"o": owner, "u": updated, "id": run_id})
    states = {r.id: r.status for r in store.runs()}
    assert states == {"dead": "interrupted", "live-but-slow": "running", "elsewhere-silent": "interrupted",
                      "elsewhere-busy": "running"}
    assert mark_interrupted_runs(store.engine) == 2 and {r.id: r.status for r in store.runs()} == states
    assert store.take_over("live-but-slow") is None and store.take_over("elsewhere-busy") is None
    # A run whose process died after its last cell was stored, before it said so, is complete: done.
    journal = store.take_over("dead")
    journal.record("only", 0, {"prompt_index": 0, "prompt": "x", "provider": "openai:gpt-4o", "test_index": 0,
                               "repeat": 1, "pass": True, "graded": True})
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE eval_runs SET status = 'interrupted', owner = NULL WHERE id = 'dead'"))
    assert store.run("dead").status == "done" and not store.run("dead").resumable


def test_ctrl_c_on_the_command_line_keeps_the_finished_cells_as_a_cancelled_run(server, sqlite_url, tmp_path):
    # Calls held 1 s each: a busy machine's polling must still see the run unfinished when it presses Ctrl-C.
    child = start_command_line_run(server, sqlite_url, tmp_path, held_s=1.0)
    deadline = time.monotonic() + 90
    while not (EvalStore(sqlite_url).runs() and len(EvalStore(sqlite_url).runs()[0].rows) >= 2):
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 130 and "Traceback" not in err
    (saved,) = EvalStore(sqlite_url).runs()
    assert saved.status == "cancelled" and 2 <= len(saved.rows) < CELLS and saved.resumable
    assert f"keeps its {len(saved.rows)} finished cells" in err


def test_run_and_resume_are_one_core_call_each_and_a_refusing_database_is_a_sentence(server, tmp_path):
    """What the Evals page's Run and Resume buttons call: a database that refuses the run's row (read-only here)
    is a RunNotStarted sentence with nothing sent; a run another session already resumed is a notice to reload."""
    from core.evals.run import RunNotStarted

    path = tmp_path / "evals.db"
    url, read_only = f"sqlite:///{path}", f"sqlite:///file:{path}?mode=ro&uri=true"
    config = parse_config({"prompts": ["{{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                           "tests": [{"vars": {"q": f"q{i}"}} for i in range(2)]})
    resolve = lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0)  # noqa: E731
    store, log = EvalStore(url, "ana"), CallLog(url)
    with pytest.raises(RunNotStarted, match="could not be stored") as refused:
        EvalRun(config, resolve, CallContext("evals", "ana"), log).launch(EvalStore(read_only, "ana"), user="ana")
    assert not refused.value.elsewhere and server.chat_requests() == []  # nothing was sent
    server.push(*[Script(chunk_delay=0.2) for _ in range(2)])
    run = EvalRun(config, resolve, CallContext("evals", "ana"), log, concurrency=1).launch(store, user="ana")
    while run.progress()[0] < 1:
        time.sleep(0.01)
    run.cancel()
    assert run.wait(30) and run.finish() == "cancelled"
    saved = store.run(run.id)
    with pytest.raises(RunNotStarted, match="could not be stored"):  # the claim is a write: refused, not claimed
        EvalRun.resume(saved, resolve, CallContext("evals", "ana"), log, EvalStore(read_only, "ana"))
    again = EvalRun.resume(saved, resolve, CallContext("evals", "ana"), log, store)
    assert again.wait(30) and again.finish() == "done"
    with pytest.raises(RunNotStarted, match="no longer interrupted") as stale:  # a second Resume of the same run
        EvalRun.resume(saved, resolve, CallContext("evals", "ana"), log, store)
    assert stale.value.elsewhere

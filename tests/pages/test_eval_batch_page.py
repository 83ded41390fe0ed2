"""AppTest of the Evals page's batch runs: "Run as a batch" next to Run (disabled with its reason on a provider
without a Batch API), a progress view with status, counts and Cancel, and a NEW session (the app restarted) that
finds the running batch in the database and finishes it; a server without /batches runs live, saying why."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.evals.batch import BATCH
from core.evals.store import CANCELLED, DONE, EvalStore

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CONFIG = """description: batched
prompts: ["Q: {{q}}"]
providers: [openai:chat:gpt-4o-mini]
tests:
  - vars: {q: one}
    assert: [{type: contains, value: one}]
  - vars: {q: two}
    assert: [{type: contains, value: two}]
  - vars: {q: three}
    assert: [{type: contains, value: three}]
"""


def evals_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/evals.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def openai_env(app_env, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_PROVIDER", "openai")  # OpenAI's API, at the loopback server's address
    return app_env


def submit_batch(at: AppTest) -> None:
    at.text_area(key="eval_yaml").set_value(CONFIG).run()
    at.checkbox(key="eval_batch").check().run()
    at.button(key="eval_run").click().run()
    assert not at.exception, at.exception


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_a_batch_run_started_in_one_session_is_found_and_finished_by_a_new_one(server, openai_env):
    server.batch.polls = 3
    at = evals_page()
    submit_batch(at)
    store = EvalStore(openai_env["PROMPTLAB_DB_URL"])
    run = store.runs()[0]
    assert run.status == BATCH and server.chat_requests() == []
    assert metric(at, "Batch status") == "in_progress" and metric(at, "Lines done") == "0/3"
    assert any("Sent as a batch" in i.value for i in at.info)  # the Results tab says where the run is

    fresh = evals_page()  # the app restarted: a new session knows nothing but the database
    assert any(s.value == "Batch runs" for s in fresh.subheader)
    assert metric(fresh, "Lines done") == "0/3"
    fresh.button(key="eval_batch_refresh").click().run()  # polled again: still out
    assert store.run(run.id).status == BATCH and metric(fresh, "Batch status") == "in_progress"
    fresh.button(key="eval_batch_refresh").click().run()  # the third poll ends it: ingested, graded, done
    assert not fresh.exception, fresh.exception
    assert store.run(run.id).status == DONE and len(store.run(run.id).rows) == 3
    assert all(r["pass"] for r in store.run(run.id).rows) and server.chat_requests() == []
    calls = [c for c in CallLog(openai_env["PROMPTLAB_DB_URL"]).recent(20) if c.page == "evals"]
    assert len(calls) == 3 and all("endpoint:batch" in c.tags for c in calls)
    assert any("has ended" in s.value for s in fresh.success)


def test_cancel_in_the_progress_view_keeps_what_finished(server, openai_env):
    server.batch.polls, server.batch.done_before_cancel = 10, 1
    at = evals_page()
    submit_batch(at)
    run_id = EvalStore(openai_env["PROMPTLAB_DB_URL"]).runs()[0].id
    at.button(key=f"eval_batch_cancel_{run_id}").click().run()
    at.button(key="eval_batch_refresh").click().run()
    assert not at.exception, at.exception
    run = EvalStore(openai_env["PROMPTLAB_DB_URL"]).run(run_id)
    assert run.status == CANCELLED and len(run.rows) == 1 and run.resumable
    assert any("Cancelled" in i.value for i in at.info)


def test_the_batch_choice_is_disabled_with_its_reason_on_a_server_without_a_batch_api(server, app_env):
    at = evals_page()  # PROMPTLAB_PROVIDER=auto with a base URL: an OpenAI-compatible server
    at.text_area(key="eval_yaml").set_value(CONFIG).run()
    assert at.checkbox(key="eval_batch").disabled
    assert any("no Batch API" in c.value for c in at.caption)


def test_an_openai_address_without_batches_runs_live_and_says_why(server, openai_env):
    server.batch.supported = False
    at = evals_page()
    submit_batch(at)
    run = EvalStore(openai_env["PROMPTLAB_DB_URL"]).runs()[0]
    assert run.status == DONE and len(server.chat_requests()) == 3
    assert any("no Batch API" in i.value for i in at.info)

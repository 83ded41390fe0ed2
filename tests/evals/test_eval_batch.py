"""Eval runs through the Batch API against the loopback server (real openai SDK): submitted, polled, ingested into
the same eval tables and graded by the same assertions, one CallRecord per line at the batch rate; polling survives
a restart (a fresh engine and store find the batch); an expired batch's missing lines and failed lines run live (or
are reported); cancel keeps what finished; a server without /batches runs live with one sentence."""
from __future__ import annotations

import pytest

from core.base.db import dispose_engine
from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.evals.batch import BATCH, REPORT, Poller, progress, submit, waiting_runs
from core.evals.config import parse_config
from core.evals.run import EvalRun
from core.evals.store import CANCELLED, DONE, EvalStore
from core.llm.providers import Provider
from tests.conftest import TEST_KEY

CASES = 4


def config():
    return parse_config({"description": "batched", "prompts": ["Answer: {{q}}"],
                         "providers": ["openai:chat:gpt-4o-mini"],
                         "tests": [{"vars": {"q": f"q{i}"}, "assert": [{"type": "contains", "value": f"q{i}"}]}
                                   for i in range(CASES)]})


def openai_at(server) -> Provider:
    return Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)


def new_run(server, log) -> EvalRun:
    return EvalRun(config(), lambda spec: openai_at(server), CallContext("evals", "alice"), log)


def poller(server, db_url) -> Poller:
    return Poller(EvalStore(db_url), lambda spec: openai_at(server), CallContext("evals", "alice"), CallLog(db_url))


def live_calls(server) -> int:
    return len(server.chat_requests())


def test_a_batch_run_is_submitted_polled_ingested_graded_and_logged_at_the_batch_rate(server, db_url):
    server.batch.polls = 2
    log = CallLog(db_url)
    store = EvalStore(db_url)
    sent = submit(new_run(server, log), store, user="alice")
    assert sent.live is None
    shown = progress(store, sent.run_id)
    assert shown is not None and shown.run_status == BATCH and shown.parts[0].batch_id
    assert store.run(sent.run_id).status == BATCH and not store.run(sent.run_id).rows
    first = poller(server, db_url).poll(sent.run_id)
    assert first.status == "in_progress" and not first.finished and first.polled_at
    done = poller(server, db_url).poll(sent.run_id)
    assert done.finished and done.status == "completed" and done.completed == CASES
    run = store.run(sent.run_id)
    assert run.status == DONE and len(run.rows) == CASES and all(r["pass"] for r in run.rows)
    assert live_calls(server) == 0  # nothing went through the live endpoint
    records = [r for r in log.recent(50) if f"run:{sent.run_id}" in r.tags]
    batch_id = shown.parts[0].batch_id
    assert len(records) == CASES
    assert all(r.page == "evals" and f"batch:{batch_id}" in r.tags and "endpoint:batch" in r.tags
               and r.status == "ok" and r.input_tokens for r in records)


def test_a_batch_line_costs_half_of_the_same_call_made_live(server, db_url):
    server.batch.polls = 1
    log = CallLog(db_url)
    live = new_run(server, log).start()
    live.wait(30)
    sent = submit(new_run(server, log), EvalStore(db_url))
    poller(server, db_url).poll(sent.run_id)
    by_tag = {True: {}, False: {}}
    for r in log.recent(50):
        by_tag["endpoint:batch" in r.tags][(r.input_tokens, r.output_tokens)] = r.cost_usd
    assert by_tag[True] and by_tag[True].keys() == by_tag[False].keys()
    for usage, cost in by_tag[True].items():
        assert cost == pytest.approx(by_tag[False][usage] / 2) and cost > 0


def test_polling_survives_a_restart_a_fresh_store_finds_the_batch_and_completes_it(server, db_url):
    server.batch.polls = 2
    sent = submit(new_run(server, CallLog(db_url)), EvalStore(db_url, "alice"), user="alice")
    dispose_engine(db_url)  # the app restarts: no engine, no session, only the database
    fresh = EvalStore(db_url, "alice")
    assert waiting_runs(fresh) == [sent.run_id]
    bob = EvalStore(db_url, "bob")  # runs hold outputs: another user neither sees nor polls this one
    assert waiting_runs(bob) == [] and progress(bob, sent.run_id) is None
    while not (shown := poller(server, db_url).poll(sent.run_id)).finished:
        pass
    assert shown.completed == CASES and fresh.run(sent.run_id).status == DONE
    assert waiting_runs(EvalStore(db_url, "alice")) == []


def test_an_expired_batch_keeps_its_output_and_runs_the_missing_lines_live(server, db_url):
    server.batch.polls, server.batch.expire_after = 1, 1
    server.batch.fail_ids = {"p0.v0.t1.r1"}  # one line fails outright as well
    sent = submit(new_run(server, CallLog(db_url)), EvalStore(db_url))
    shown = poller(server, db_url).poll(sent.run_id)
    assert shown.finished and shown.status == "expired"
    run = EvalStore(db_url).run(sent.run_id)
    assert run.status == DONE and len(run.rows) == CASES and all(r["pass"] for r in run.rows)
    assert live_calls(server) == CASES - 1  # the one line that ran came from the batch; the rest went live
    assert any("retried live" in n and str(CASES - 1) in n for n in shown.notes)
    tags = [r.tags for r in CallLog(db_url).recent(50)]
    assert sum("endpoint:batch" in t for t in tags) == 1 and len(tags) == CASES


def test_failed_lines_are_reported_as_failed_cells_when_the_user_chose_so(server, db_url):
    server.batch.polls, server.batch.fail_ids = 1, {"p0.v0.t2.r1"}
    sent = submit(new_run(server, CallLog(db_url)), EvalStore(db_url), on_failure=REPORT)
    shown = poller(server, db_url).poll(sent.run_id)
    run = EvalStore(db_url).run(sent.run_id)
    assert run.status == DONE and len(run.rows) == CASES and live_calls(server) == 0
    failed = [r for r in run.rows if not r["pass"]]
    assert len(failed) == 1 and "scripted line failure" in failed[0]["error"]
    assert any("reported as failed" in n for n in shown.notes)


def test_cancel_keeps_the_lines_that_finished_and_the_run_can_resume_the_rest(server, db_url):
    server.batch.polls, server.batch.done_before_cancel = 10, 1
    sent = submit(new_run(server, CallLog(db_url)), EvalStore(db_url))
    assert poller(server, db_url).cancel(sent.run_id).status == "cancelling"
    shown = poller(server, db_url).poll(sent.run_id)
    assert shown.finished and shown.status == "cancelled"
    run = EvalStore(db_url).run(sent.run_id)
    assert run.status == CANCELLED and len(run.rows) == 1 and run.resumable and run.missing_cells == CASES - 1
    assert live_calls(server) == 0
    assert any("Cancelled" in n for n in shown.notes)


def test_a_server_without_the_batch_api_says_so_in_one_sentence_and_runs_live(server, db_url):
    server.batch.supported = False
    sent = submit(new_run(server, CallLog(db_url)), EvalStore(db_url))
    assert sent.live is not None and sent.note and "no Batch API" in sent.note and sent.note.count(".") <= 2
    sent.live.wait(30)
    sent.live.finish()
    run = EvalStore(db_url).run(sent.run_id)
    assert run.status == DONE and len(run.rows) == CASES and live_calls(server) == CASES


def test_an_azure_batch_goes_to_its_files_and_batches_and_costs_half_by_the_documented_rule(server, db_url):
    # genai-prices has no Azure batch variant: the one 50% rule (core/llm/pricing.py) prices these lines
    server.batch.polls = 1
    azure = Provider("azure", server.base_url.removesuffix("/v1"), TEST_KEY, api_version="2024-10-21", timeout_s=5,
                     max_retries=0)
    log = CallLog(db_url)
    sent = submit(EvalRun(config(), lambda spec: azure, CallContext("evals"), log), EvalStore(db_url))
    Poller(EvalStore(db_url), lambda spec: azure, CallContext("evals"), log).poll(sent.run_id)
    assert EvalStore(db_url).run(sent.run_id).status == DONE
    assert any(r["path"] == "/v1/batches" and r["headers"].get("api-key") == TEST_KEY for r in server.requests)
    from core.llm.pricing import TokenUsage, cost_usd
    for r in log.recent(10):
        live = cost_usd(TokenUsage(r.input_tokens, r.output_tokens), "gpt-4o-mini", "azure")
        assert r.provider == "azure" and r.cost_usd == pytest.approx(live / 2) and live > 0


def test_retention_never_deletes_a_run_whose_batch_is_still_out(server, db_url, tmp_path):
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    from core.policy.access import Identity
    from core.records.privacy import Retention, enforce_retention, set_retention

    server.batch.polls = 5
    store = EvalStore(db_url)
    sent = submit(new_run(server, CallLog(db_url)), store)
    old = (datetime.now(timezone.utc) - timedelta(days=5)).isoformat()
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE eval_runs SET created_at = :t"), {"t": old})
    set_retention(store.engine, Retention(text_hours=72, metrics_days=400), actor=Identity("admin", admin=True))
    assert enforce_retention(store.engine, tmp_path)["eval_runs"] == 0
    assert progress(store, sent.run_id) is not None and store.run(sent.run_id).status == BATCH


def test_a_batch_that_fails_validation_says_why_and_its_lines_run_live(server, db_url):
    server.batch.refuse = "gpt-4o-mini is not enabled for batch on this project"
    sent = submit(new_run(server, CallLog(db_url)), EvalStore(db_url))
    shown = poller(server, db_url).poll(sent.run_id)
    assert shown.finished and shown.status == "failed"
    assert any("failed validation" in n and "not enabled for batch" in n for n in shown.notes)
    assert EvalStore(db_url).run(sent.run_id).status == DONE and live_calls(server) == CASES


def test_a_refused_submission_cancels_the_batches_already_out_and_says_why(server, db_url):
    from core.base.errors import PromptLabError

    two = parse_config({"prompts": ["Answer: {{q}}"], "providers": ["openai:chat:gpt-4o-mini", "openai:chat:gpt-4o"],
                        "tests": [{"vars": {"q": "q0"}}]})
    wrong_key = Provider("openai", server.base_url, "sk-wrong-wrong-wrong-0000", timeout_s=5, max_retries=0)
    run = EvalRun(two, lambda spec: openai_at(server) if spec.model == "gpt-4o-mini" else wrong_key,
                  CallContext("evals"), CallLog(db_url))
    with pytest.raises(PromptLabError) as info:
        submit(run, EvalStore(db_url))
    assert "sk-wrong" not in str(info.value)
    [batch] = server.batch_state.batches.values()
    assert batch["status"] == "cancelling"  # the first provider's batch was called back
    assert EvalStore(db_url).run(run.id).status == "interrupted"


def test_a_failed_line_whose_error_echoes_the_key_is_stored_without_it(server, db_url):
    import tests.loopback_batches as lb

    server.batch.polls, server.batch.fail_ids = 1, {"p0.v0.t0.r1"}
    original = lb.FAIL_MESSAGE
    lb.FAIL_MESSAGE = f"Incorrect API key provided: {TEST_KEY}."
    try:
        sent = submit(new_run(server, CallLog(db_url)), EvalStore(db_url), on_failure=REPORT)
        poller(server, db_url).poll(sent.run_id)
    finally:
        lb.FAIL_MESSAGE = original
    store = EvalStore(db_url)
    with store.engine.connect() as conn:
        import sqlalchemy as sa
        stored = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM eval_batches")) for v in row)
        cells = " ".join(r.body for r in conn.execute(sa.text("SELECT body FROM eval_run_cells")))
    assert "Incorrect API key" in stored and TEST_KEY not in stored and TEST_KEY not in cells

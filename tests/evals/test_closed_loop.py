"""Issue 26, "done when": one whole loop on the loopback server — cases from logged calls → a run of two prompts →
two people's blind ratings → a revision from the failures → its significance. Run with -s to read the numbers."""
from __future__ import annotations

from dataclasses import replace

from core.calls.gate import CallContext
from core.evals.assertions import Assertion
from core.evals.config import EvalConfig, PromptSpec, ProviderSpec
from core.evals.rating import LEFT, RIGHT, Ratings, pair_key, pair_summary, shown_order
from core.evals.revision import judge, revision_config, suggest_revision
from core.evals.run import EvalRun
from core.evals.store import EvalStore
from core.evals.traffic import add_calls_to_set
from core.llm.providers import Provider
from core.policy.access import Identity
from tests.conftest import TEST_KEY
from tests.evals.test_traffic import call
from tests.loopback_server import Script

QUESTIONS = ["Can I return worn shoes?", "Do you ship to Canada?", "Is there a student discount?",
             "How long does delivery take?", "Can I change my order?", "Do the boots run small?",
             "Where is my refund?", "Can I pay later?"]


def test_cases_from_traffic_run_rated_revised_and_proven(server, log, db_url):
    ids = [call(server, log, [{"role": "user", "content": q}], user="alice") for q in QUESTIONS]
    store = EvalStore(db_url, viewer="alice")
    added = add_calls_to_set(store, log, "support questions", ids, user="alice")
    assert (added.added, added.skipped) == (8, 0)
    # The user edits the proposed rubric into what they want: every answer ends with "OK".
    cases = [replace(c, assertions=[Assertion(type="contains", value="OK")]) for c in added.version.tests]
    store.save_set("support questions", cases, "alice", note="expectations edited")

    provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
    config = EvalConfig(prompts=[PromptSpec(label="A", text="Answer: {{input}}"),
                                 PromptSpec(label="B", text="Answer kindly: {{input}}")],
                        providers=[ProviderSpec(id="openai:chat:gpt-4o-mini", model="gpt-4o-mini")],
                        tests=store.latest_set("support questions").tests)
    run = EvalRun(config, lambda spec: provider, CallContext("evals", "alice"), log).start_stored(store, user="alice")
    assert run.wait(60) and run.summary()["passed"] == 0
    run.finish()
    saved = store.run(run.id)

    a, b = ("A", "openai:chat:gpt-4o-mini"), ("B", "openai:chat:gpt-4o-mini")
    for rater in ("alice", "root"):  # two people prefer B's wording on 6 of 8 cases, blind
        ratings = Ratings(db_url, Identity(rater, admin=rater == "root"))
        for n, case in enumerate(ratings.queue(run.id, a, b).cases):
            b_side = RIGHT if shown_order(run.id, pair_key(a, b), rater, case.key) == "AB" else LEFT
            a_side = LEFT if b_side == RIGHT else RIGHT
            ratings.cast(run.id, a, b, case.key, b_side if n < 6 else a_side)
    votes = Ratings(db_url, Identity("root", admin=True)).votes(run.id, a, b)
    rated = pair_summary(a, b, 8, votes)
    assert (rated["b_wins"], rated["a_wins"]) == (6, 2) and rated["agreement"][0]["kappa"] == 1.0

    server.push(Script(reply="<prompt>Answer kindly: {{input}} Always end with OK.</prompt>",
                       when="You revise prompts"))
    revision = suggest_revision(saved.rows, config.prompts[1], provider, "gpt-4o-mini",
                                CallContext("evals", "alice", tags=[f"run:{run.id}"]), log)
    second = EvalRun(revision_config(config, revision), lambda spec: provider, CallContext("evals", "alice"),
                     log).start_stored(store, user="alice")
    assert second.wait(60)
    second.finish()
    (verdict,) = judge(saved.rows, store.run(second.id).rows, revision)
    print(f"\nloop: {added.added} cases from {len(ids)} logged calls · run {run.id}: A 0/8, B 0/8 · ratings: B "
          f"preferred {rated['b_wins']}–{rated['a_wins']} (win rate {rated['b_win_rate']:.0%}, interval "
          f"{rated['interval_95'][0]:.0%}–{rated['interval_95'][1]:.0%}, sign test p = {rated['sign_test_p']:.3f}, "
          f"kappa {rated['agreement'][0]['kappa']:.2f}) · revision: {verdict.sentence()}")
    assert verdict.better and verdict.comparison.pairs == 8 and round(verdict.comparison.p_value, 4) == 0.0078

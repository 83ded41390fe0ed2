"""Human rating (issue 26 point 3): the statistics on worked examples, and votes in the database on SQLite and
PostgreSQL — written at once, the queue resuming at the first unrated case, each rater's votes their own, only a
readable run rated, and a data subject's votes erased with them."""
from __future__ import annotations

import io
import json
import math
import zipfile

import pytest

from core.base.db import engine_for
from core.evals import rating
from core.evals.config import parse_config
from core.evals.rating import LEFT, RIGHT, SKIP, TIE, RatingRefused, Ratings, Vote, shown_order
from core.evals.results import summary
from core.evals.stats import WinRate, cohen_kappa, sign_test, wilson
from core.evals.store import EvalStore
from core.policy.access import Identity
from core.records.privacy import delete_user, export_user
from core.records.report import eval_report

A = ("Q: {{q}}", "openai:chat:gpt-4o-mini")
B = ("Please answer {{q}}", "openai:chat:gpt-4o-mini")
CASES = 6


# ----- statistics, worked by hand ---------------------------------------------------------------------------------
def test_cohen_kappa_on_a_known_two_by_two_table():
    # 50 items: both yes 20, yes/no 5, no/yes 10, both no 15. Observed 35/50 = 0.7; chance 0.5·0.6 + 0.5·0.4 = 0.5.
    table = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    assert cohen_kappa(table) == pytest.approx(0.4)
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)  # perfect agreement
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)  # always apart
    assert cohen_kappa([("a", "a")] * 3) is None and cohen_kappa([]) is None  # undefined: chance agreement is 1


def test_sign_test_values():
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 1024)  # 0.021484375
    assert sign_test(1, 9) == sign_test(9, 1)  # two-sided
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(6, 0) == pytest.approx(2 / 64)  # 0.03125
    assert sign_test(5, 0) == pytest.approx(2 / 32)  # 0.0625: five out of five is not yet significant


def test_win_rate_leaves_ties_out_of_the_rate_and_its_interval():
    win = WinRate(b_wins=14, a_wins=6, ties=5)
    assert win.decisive == 20 and win.rate == pytest.approx(0.7)
    low, high = win.interval
    assert (low, high) == wilson(14, 20)
    assert low == pytest.approx(0.4810, abs=1e-4) and high == pytest.approx(0.8545, abs=1e-4)  # Wilson, by hand
    assert win.p_value == pytest.approx(2 * sum(math.comb(20, i) for i in range(7)) / 2 ** 20)  # 0.1153
    assert WinRate(b_wins=0, a_wins=0, ties=3).rate is None


def test_a_vote_reads_back_in_the_configurations_terms():
    def vote(v: str, shown: str) -> str:
        return Vote(case_key="0:0", rater="x", vote=v, shown=shown, created_at="").winner
    assert [vote(LEFT, "AB"), vote(RIGHT, "AB"), vote(LEFT, "BA"), vote(RIGHT, "BA")] == ["a", "b", "b", "a"]
    assert vote(TIE, "BA") == "tie" and vote(SKIP, "AB") == "skip"


def test_the_order_is_fixed_per_rater_and_case_and_shuffled_across_them():
    orders = [shown_order("run", "pair", "alice", f"{i}:0") for i in range(200)]
    assert orders == [shown_order("run", "pair", "alice", f"{i}:0") for i in range(200)]  # the same every rerun
    assert 70 < orders.count("AB") < 130  # about half each way
    assert orders != [shown_order("run", "pair", "bob", f"{i}:0") for i in range(200)]  # bob has his own


# ----- storage ---------------------------------------------------------------------------------------------------
def _rows() -> list[dict]:
    rows = []
    for prompt, provider in (A, B):
        for i in range(CASES):
            rows.append({"prompt": prompt, "provider": provider, "prompt_index": 0 if (prompt, provider) == A else 1,
                         "test_index": i, "repeat": 0, "vars": {"q": f"question {i}"}, "description": f"case {i}",
                         "output": f"{prompt[:6]} answer {i}", "pass": True, "graded": True, "error": None,
                         "reason": "", "assertions": []})
    rows[CASES - 1]["error"] = "timed out"  # A failed its last case: not rateable
    return rows


def saved_run(db_url: str, user: str = "alice") -> str:
    config = parse_config({"prompts": [A[0], B[0]], "providers": [A[1]], "tests": [{"vars": {"q": "x"}}]})
    run_id = f"run-{user}"
    EvalStore(db_url, user).save_run(run_id, "rating", config, _rows(), summary(_rows()), user=user)
    return run_id


def test_votes_are_kept_at_once_and_the_queue_resumes_at_the_first_unrated_case(db_url):
    run_id = saved_run(db_url)
    alice = Ratings(db_url, Identity("alice"))
    queue = alice.queue(run_id, A, B)
    assert [c.key for c in queue.cases] == ["0:0", "1:0", "2:0", "3:0", "4:0"]  # the errored case left out
    assert queue.rated == 0 and queue.next_case.key == "0:0"
    for key, vote in (("0:0", LEFT), ("1:0", TIE), ("2:0", SKIP)):
        alice.cast(run_id, A, B, key, vote)
    again = Ratings(db_url, Identity("alice")).queue(run_id, A, B)  # a new session: nothing held in memory
    assert again.rated == 3 and again.skipped == 1 and again.next_case.key == "3:0"
    alice.cast(run_id, A, B, "0:0", RIGHT)  # a changed mind replaces the vote, never adds one
    assert [v.vote for v in alice.votes(run_id, A, B)] == [RIGHT, TIE, SKIP]
    with pytest.raises(RatingRefused):
        alice.cast(run_id, A, B, "5:0", LEFT)  # A errored there: nothing to compare
    with pytest.raises(RatingRefused):
        alice.cast(run_id, A, B, "1:0", "a")  # not a vote


def test_each_rater_sees_and_changes_only_their_own_votes_and_an_admin_sees_all(db_url):
    run_id = saved_run(db_url)
    alice, root = Ratings(db_url, Identity("alice")), Ratings(db_url, Identity("root", admin=True))
    alice.cast(run_id, A, B, "0:0", LEFT)
    root.cast(run_id, A, B, "0:0", RIGHT)
    root.cast(run_id, A, B, "1:0", TIE)
    assert [(v.rater, v.vote) for v in alice.votes(run_id, A, B)] == [("alice", LEFT)]
    assert alice.queue(run_id, A, B).rated == 1  # root's votes are not hers
    assert sorted((v.rater, v.case_key) for v in root.votes(run_id, A, B)) == [
        ("alice", "0:0"), ("root", "0:0"), ("root", "1:0")]
    assert [v.vote for v in alice.votes(run_id, A, B)] == [LEFT]  # root's vote on the same case left hers alone


def test_a_run_the_rater_may_not_read_cannot_be_rated(db_url):
    run_id = saved_run(db_url, "alice")
    bob = Ratings(db_url, Identity("bob"))
    for attempt in (lambda: bob.queue(run_id, A, B), lambda: bob.cast(run_id, A, B, "0:0", LEFT),
                    lambda: bob.votes(run_id, A, B)):
        with pytest.raises(RatingRefused, match="not yours to rate"):
            attempt()
    assert rating.summary(engine_for(db_url), EvalStore(db_url, "alice").run(run_id)) == []  # bob wrote nothing
    assert bob.open_runs() == []
    with pytest.raises(RatingRefused, match="Only the run's owner or an admin"):
        bob.open_for_rating(run_id, True)  # not his to open


def test_a_run_opened_for_rating_is_rated_by_teammates_each_on_their_own(db_url):
    run_id = saved_run(db_url, "alice")
    alice, bob = Ratings(db_url, Identity("alice")), Ratings(db_url, Identity("bob"))
    alice.open_for_rating(run_id, True)
    assert [r.id for r in bob.open_runs()] == [run_id] and EvalStore(db_url, "bob").runs() == []  # rate, not read
    bob.cast(run_id, A, B, "0:0", LEFT)
    alice.cast(run_id, A, B, "0:0", RIGHT)
    assert [(v.rater, v.vote) for v in bob.votes(run_id, A, B)] == [("bob", LEFT)]
    assert [(v.rater, v.vote) for v in alice.votes(run_id, A, B)] == [("alice", RIGHT)]  # the owner sees hers only
    alice.open_for_rating(run_id, False)
    with pytest.raises(RatingRefused):
        bob.cast(run_id, A, B, "1:0", LEFT)  # closed again
    assert len(rating.summary(engine_for(db_url), EvalStore(db_url, "alice").run(run_id))[0]["agreement"]) == 1


def test_the_summary_gives_the_win_rate_sign_test_and_kappa_of_two_raters(db_url):
    run_id = saved_run(db_url)
    alice, root = Ratings(db_url, Identity("alice")), Ratings(db_url, Identity("root", admin=True))

    def side(rater: str, key: str, winner: str) -> str:  # the button that means `winner` for this rater and case
        if winner == "tie":
            return TIE
        a_left = shown_order(run_id, rating.pair_key(A, B), rater, key) == "AB"
        return LEFT if (winner == "a") == a_left else RIGHT
    plan = {"alice": ["b", "b", "b", "a", "tie"], "root": ["b", "b", "a", "a", "tie"]}
    for name, ratings in (("alice", alice), ("root", root)):
        for i, winner in enumerate(plan[name]):
            ratings.cast(run_id, A, B, f"{i}:0", side(name, f"{i}:0", winner))
    [pair] = rating.summary(engine_for(db_url), EvalStore(db_url, "alice").run(run_id))
    # Per case, the side more raters chose: b, b, tie (one each), a, tie → B 2, A 1, ties 2.
    assert (pair["b_wins"], pair["a_wins"], pair["ties"]) == (2, 1, 2)
    assert pair["b_win_rate"] == pytest.approx(2 / 3) and pair["interval_95"] == list(wilson(2, 3))
    assert pair["sign_test_p"] == pytest.approx(1.0) and pair["ties_rule"] == "excluded"
    assert pair["cases"] == 5 and pair["raters"] == 2 and pair["votes"] == 10
    assert pair["a"] == A[0] and pair["b"] == B[0]
    # Kappa over 5 shared cases: agree on 4 (0.8); chance: alice b .6 a .2 t .2, root b .4 a .4 t .2 → .24+.08+.04
    [agree] = pair["agreement"]
    assert agree["raters"] == ["alice", "root"] and agree["shared_cases"] == 5
    assert agree["kappa"] == pytest.approx((0.8 - 0.36) / (1 - 0.36))
    shown = rating.with_ratings(engine_for(db_url), EvalStore(db_url, "alice").run(run_id))
    assert '"sign_test_p"' in shown.to_json() and shown.summary["ratings"][0]["b_wins"] == 2
    page = eval_report(shown).html  # the shared HTML report carries them too
    assert "Human ratings (blind, side by side)" in page and "67% (21%–94%)" in page
    assert f"alice / root: {agree['kappa']:.2f} (5)" in page
    assert "Human ratings" not in eval_report(EvalStore(db_url, "alice").run(run_id)).html  # the run as stored, without its votes


def test_erasing_a_rater_removes_their_votes_and_only_theirs(db_url):
    run_id = saved_run(db_url)
    Ratings(db_url, Identity("alice")).cast(run_id, A, B, "0:0", LEFT)
    Ratings(db_url, Identity("root", admin=True)).cast(run_id, A, B, "0:0", RIGHT)
    engine = engine_for(db_url)
    exported = zipfile.ZipFile(io.BytesIO(export_user(engine, "root")))
    assert [v["vote"] for v in json.loads(exported.read("eval_ratings.json"))] == [RIGHT]  # the export holds them
    counts = delete_user(engine, "root", actor="root", actor_is_admin=True)
    assert counts["eval_ratings"] == 1
    assert [v.rater for v in Ratings(db_url, Identity("root", admin=True)).votes(run_id, A, B)] == ["alice"]
    Ratings(db_url, Identity("ops", admin=True)).cast(run_id, A, B, "1:0", TIE)
    delete_user(engine, "alice", actor="alice")  # her run goes, and everyone's votes on it with it
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM eval_ratings").scalar() == 0


def test_the_command_line_report_of_a_rated_run_carries_the_ratings(db_url, tmp_path, monkeypatch):
    from core.cli import report_main

    run_id = saved_run(db_url)
    Ratings(db_url, Identity("alice")).cast(run_id, A, B, "0:0", TIE)
    monkeypatch.setenv("PROMPTLAB_DB_URL", db_url)
    out = tmp_path / "run.html"
    assert report_main(["run", run_id, "-o", str(out)]) == 0
    assert "Human ratings (blind, side by side)" in out.read_text()

"""AppTest of the Evals page's rating tab (issue 26 point 3): blind votes with keyboard shortcuts and progress, kept
when the tab closes mid-queue, each signed-in rater's votes their own, the verdict and Cohen's kappa when done."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.evals.config import parse_config
from core.evals.rating import Ratings, pair_key, shown_order
from core.evals.results import summary
from core.evals.stats import cohen_kappa
from core.evals.store import EvalStore
from core.policy.access import Identity
from tests.pages import test_evals_page
from tests.pages.test_evals_page import page_text, signed_in

A = ("Q: {{q}}", "openai:chat:gpt-4o-mini")
B = ("Please answer {{q}}", "openai:chat:gpt-4o-mini")
CASES = 5
RUN = "run-rating"
team = test_evals_page.team  # the fixture: alice and bob, and root the admin, behind the sign-in gate


def seed(url: str, owner: str = "alice", outputs: bool = True) -> None:
    """A finished run of two prompts on five cases, owned by `owner` (without outputs: as the text policy
    "metadata" stores them)."""
    rows = [{"prompt": p, "provider": v, "prompt_index": n, "test_index": i, "repeat": 0, "vars": {"q": f"q{i}"},
             "description": f"case-{i}", "output": f"{'alpha' if n == 0 else 'beta'} reply {i}" if outputs else "", "pass": True,
             "graded": True, "error": None, "reason": "", "assertions": []}
            for n, (p, v) in enumerate((A, B)) for i in range(CASES)]
    config = parse_config({"prompts": [A[0], B[0]], "providers": [A[1]], "tests": [{"vars": {"q": "x"}}]})
    EvalStore(url, owner).save_run(RUN, "two prompts", config, rows, summary(rows), user=owner)


def rate_text(at: AppTest) -> str:
    """What the rating tab (the fourth) sent to the browser: texts as written, other elements' messages."""
    parts: list[str] = []

    def walk(node) -> None:
        value = getattr(node, "value", None)
        parts.append(value if isinstance(value, str) else str(getattr(node, "proto", "")))
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at.tabs[3])
    return "\n".join(parts)


def progress(at: AppTest) -> str:
    return next(p.proto.text for p in at.get("progress"))


def vote(at: AppTest, key: str) -> AppTest:
    """Press one of the four buttons (keyed by the vote and the case on screen)."""
    next(b for b in at.button if (b.key or "").startswith(f"{key}:")).click().run()
    assert not at.exception, at.exception
    return at


def test_votes_survive_a_closed_tab_and_the_queue_resumes_at_the_fourth_case(team):
    seed(team["PROMPTLAB_DB_URL"])
    alice = signed_in("alice")
    assert progress(alice) == "0 of 5 rated (0 skipped)"
    assert "case-0" in rate_text(alice)
    shortcuts = {b.key: b.proto.shortcut for b in alice.button if b.key and b.key.startswith("eval_rate_")}
    assert all(key.endswith(":0:0") for key in shortcuts)  # the first case's buttons
    shortcuts = {key.split(":")[0]: shortcut for key, shortcut in shortcuts.items()}
    assert shortcuts == {"eval_rate_left": "left", "eval_rate_right": "right", "eval_rate_tie": "t",
                         "eval_rate_skip": "s"}  # Streamlit's key bindings (it sends them lower case)
    for key in ("eval_rate_left", "eval_rate_tie", "eval_rate_right"):
        vote(alice, key)
    assert progress(alice) == "3 of 5 rated (0 skipped)"
    del alice  # the tab closes mid-queue

    again = signed_in("alice")  # a new session as the same user
    assert progress(again) == "3 of 5 rated (0 skipped)"
    text = rate_text(again)
    assert "Case 4" in text and "case-3" in text and "Case 3" not in text
    votes = Ratings(team["PROMPTLAB_DB_URL"], Identity("alice")).votes(RUN, A, B)
    assert [v.vote for v in votes] == ["left", "tie", "right"]
    assert [v.shown for v in votes] == [shown_order(RUN, pair_key(A, B), "alice", f"{i}:0") for i in range(3)]


def test_the_outputs_are_drawn_on_the_sides_the_hash_says(team):
    seed(team["PROMPTLAB_DB_URL"])
    alice = signed_in("alice")
    for i in range(CASES):
        text = rate_text(alice)
        a_left = shown_order(RUN, pair_key(A, B), "alice", f"{i}:0") == "AB"
        first, second = (f"alpha reply {i}", f"beta reply {i}") if a_left else (f"beta reply {i}", f"alpha reply {i}")
        assert text.index(first) < text.index(second)  # left is drawn before right
        assert "left was" not in text  # nothing revealed before the queue is done
        vote(alice, "eval_rate_skip")
    assert "All 5 cases rated" in rate_text(alice)


def test_two_raters_are_kept_apart_and_kappa_is_shown_when_both_are_done(team):
    url = team["PROMPTLAB_DB_URL"]
    seed(url)
    alice, root = signed_in("alice"), signed_in("root")
    for _ in range(CASES):
        vote(alice, "eval_rate_left")
    assert progress(root) == "0 of 5 rated (0 skipped)"  # alice's votes are not root's
    for _ in range(CASES):
        vote(root, "eval_rate_left")
    alice.run()
    text = rate_text(alice)
    assert "All 5 cases rated" in text and "Agreement of alice and root: Cohen" in text and "on 5 shared cases" in text
    assert "Every rater" not in text  # only an admin sees everyone's votes
    results = "\n".join(i.value for i in alice.tabs[2].info).replace("\\", "")  # the verdict in 📊 Results too
    assert "preferred over" in results or "no case decided yet" in results
    root_text = rate_text(root)
    assert "Every rater" in root_text and "alice" in root_text
    # Both pressed "left" every time, but each saw their own sides: the kappa is of what they chose, A or B.
    meant = {r: ["a" if shown_order(RUN, pair_key(A, B), r, f"{i}:0") == "AB" else "b" for i in range(CASES)]
             for r in ("alice", "root")}
    kappa = cohen_kappa(list(zip(meant["alice"], meant["root"], strict=True)))
    assert f"Cohen's kappa {'–' if kappa is None else f'{kappa:.2f}'} on 5 shared cases" in text
    assert [v.rater for v in Ratings(url, Identity("alice")).votes(RUN, A, B)] == ["alice"] * CASES


def test_bob_rates_alices_run_only_once_she_opens_it_for_rating(team):
    seed(team["PROMPTLAB_DB_URL"])
    bob = signed_in("bob")
    assert not [s for s in bob.selectbox if s.key == "eval_rate_run"]
    assert "Finish a run with two prompts" in rate_text(bob) and "alpha reply" not in page_text(bob)
    alice = signed_in("alice")
    alice.toggle(key=f"eval_rate_open_{RUN}").set_value(True).run()
    bob.run()
    assert bob.selectbox(key="eval_rate_run").value == RUN and progress(bob) == "0 of 5 rated (0 skipped)"
    assert not [t for t in bob.toggle if t.key == f"eval_rate_open_{RUN}"]  # her choice, not his
    assert not [s for s in bob.selectbox if s.key == "eval_result_pick"]  # rating it is not reading her run
    vote(bob, "eval_rate_tie")
    assert progress(bob) == "1 of 5 rated (0 skipped)"
    alice.run()
    assert progress(alice) == "0 of 5 rated (0 skipped)"  # bob's vote is his


def test_a_run_made_on_the_page_against_the_loopback_server_is_rated_blind_and_gets_a_verdict(team, server):
    """The loop on the loopback server: two prompts run through the gate, stored as they finish, rated blind, and the
    verdict in results.json's `summary.ratings`."""
    alice = signed_in("alice")
    alice.text_area(key="eval_yaml").set_value(
        "prompts: ['Q: {{q}}', 'Please answer {{q}}']\nproviders: [openai:chat:gpt-4o-mini]\n"
        "tests: [{vars: {q: one}}, {vars: {q: two}}, {vars: {q: three}}]\n").run()
    alice.button(key="eval_run").click().run()
    assert not alice.exception and len(server.chat_requests()) == 6
    [run] = EvalStore(team["PROMPTLAB_DB_URL"], "alice").runs()
    assert progress(alice) == "0 of 3 rated (0 skipped)"
    sent = {b["messages"][-1]["content"] for b in server.chat_requests()}
    assert any(text in rate_text(alice) for text in sent)  # the loopback server's replies echo what was sent
    pair_of = rating_pair(run)
    for _ in range(3):  # B (the second prompt) every time, whichever side it was drawn on
        case = Ratings(team["PROMPTLAB_DB_URL"], Identity("alice")).queue(run.id, *pair_of).next_case
        b_left = shown_order(run.id, pair_key(*pair_of), "alice", case.key) == "BA"
        vote(alice, "eval_rate_left" if b_left else "eval_rate_right")
    text = rate_text(alice).replace("\\", "")  # shown as literal text: markdown's characters escaped
    assert "All 3 cases rated" in text and "Please answer {{q}} preferred over Q: {{q}} in 3 of 3 decided" in text
    ratings = rating_summary(team["PROMPTLAB_DB_URL"], run)
    assert ratings[0]["b_wins"] == 3 and ratings[0]["sign_test_p"] == 0.25  # 3 of 3: p = 2/8, not significant


def test_a_run_that_kept_no_outputs_says_there_is_nothing_to_rate(team):
    seed(team["PROMPTLAB_DB_URL"], outputs=False)
    alice = signed_in("alice")
    assert "kept no outputs" in rate_text(alice)
    assert not [b for b in alice.button if (b.key or "").startswith("eval_rate_")]


def rating_pair(run):
    from core.evals.rating import rateable_pairs
    [pair] = rateable_pairs(run)
    return pair


def rating_summary(url, run):
    from core.base.db import engine_for
    from core.evals.rating import with_ratings
    return with_ratings(engine_for(url), run).summary["ratings"]


def test_the_second_of_two_runs_can_be_picked_for_rating(team):
    """The run picker is drawn once whichever run is picked (it was drawn inside a search over the runs, so picking
    any but the first raised a duplicate-key error on the page)."""
    seed(team["PROMPTLAB_DB_URL"])
    rows = EvalStore(team["PROMPTLAB_DB_URL"], "alice").run(RUN)
    EvalStore(team["PROMPTLAB_DB_URL"], "alice").save_run("run-older", "older", rows.config, rows.rows,
                                                         rows.summary, user="alice")
    alice = signed_in("alice")
    picker = alice.selectbox(key="eval_rate_run")
    assert len(picker.options) == 2
    picker.set_value(next(v for v in ("run-older", RUN) if v != picker.value)).run()
    assert not alice.exception, alice.exception
    assert progress(alice) == "0 of 5 rated (0 skipped)"

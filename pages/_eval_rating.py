"""The Evals page's rating tab: a blind side-by-side queue of two configurations' outputs for each case of a finished
run. Every vote is stored as it is cast (core.evals.rating), so a closed tab resumes at the first unrated case; the
sides are revealed, with the verdict of everyone's votes, only when the rater's queue is done."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.base.i18n import _
from core.evals import rating
from core.evals.rating import LEFT, RIGHT, SKIP, TIE, RatingQueue, RatingRefused, Ratings
from core.evals.store import RUNNING, EvalStore, SavedEvalRun
from core.formats.rendering import model_markdown, plain

# Streamlit's own key bindings (st.button's `shortcut`): ← and → for a side, T for a tie, S to skip.
BUTTONS = ((LEFT, "eval_rate_left", "Left"), (TIE, "eval_rate_tie", "T"), (SKIP, "eval_rate_skip", "S"),
           (RIGHT, "eval_rate_right", "Right"))


def _cast(ratings: Ratings, run_id: str, pair: tuple[rating.Config, rating.Config], case_key: str,
          vote: str) -> None:
    """A button's callback: the vote on the case that was on screen when it was pressed, stored at once."""
    try:
        ratings.cast(run_id, *pair, case_key, vote)
    except RatingRefused as err:
        st.session_state.eval_rate_error = str(err)


def _labels() -> dict[str, str]:
    return {LEFT: _("⬅ Left is better"), RIGHT: _("Right is better ➡"), TIE: _("🤝 Tie"), SKIP: _("⏭ Skip")}


def render_rating(store: EvalStore, ratings: Ratings) -> None:
    """The rating tab: the viewer's runs and those opened for rating, a pair, and the viewer's queue on it."""
    mine = store.runs()
    known = {r.id for r in mine}
    runs = [r for r in mine + [r for r in ratings.open_runs() if r.id not in known]
            if r.status != RUNNING and rating.rateable_pairs(r)]
    if not runs:
        st.info(_("Finish a run with two prompts (or two providers) to rate their outputs side by side."))
        return
    picked = st.selectbox(  # drawn once: inside the search below it would be drawn again for every run before it
        _("Run to rate"), [r.id for r in runs], key="eval_rate_run",
        format_func=lambda i: next(f"{r.name} · {r.created_at[:16]} · {r.user or ''}" for r in runs if r.id == i))
    run = next((r for r in runs if r.id == picked), runs[0])
    if run.id in known:  # the owner's choice (or an admin's): teammates rate its cases, and see nothing else of it
        is_open = ratings.is_open(run.id)
        if st.toggle(_("Open for rating by every signed-in user"), value=is_open,
                     key=f"eval_rate_open_{run.id}") != is_open:
            ratings.open_for_rating(run.id, not is_open)
            st.rerun()
    pairs = rating.rateable_pairs(run)
    pick = st.selectbox(_("Compare"), range(len(pairs)), key="eval_rate_pair",
                        format_func=lambda i: " ⟷ ".join(rating.pair_labels(*pairs[i])))
    pair = pairs[pick or 0]
    try:
        queue = ratings.queue(run.id, *pair)
    except RatingRefused as err:
        st.error(plain(err))
        return
    if error := st.session_state.pop("eval_rate_error", None):
        st.error(plain(error))
    if not any(c.output_a or c.output_b for c in queue.cases):
        st.info(_("This run kept no outputs (the workspace's text policy is metadata only): there is nothing to rate."))
        return
    total = len(queue.cases)
    st.progress(queue.rated / total if total else 1.0, text=_("{rated} of {total} rated ({skipped} skipped)").format(
        rated=queue.rated, total=total, skipped=queue.skipped))
    case = queue.next_case
    if case is not None:
        st.caption(_("Blind: which configuration is on which side is hidden until you have rated every case. "
                     "Keys: ← left · → right · T tie · S skip."))
        st.markdown(_("**Case {n}** {description}").format(n=case.test_index + 1, description=plain(case.description)))
        st.json(case.vars, expanded=True)
        a_left = rating.shown_order(run.id, rating.pair_key(*pair), ratings.identity.name, case.key) == "AB"
        left, right = (case.output_a, case.output_b) if a_left else (case.output_b, case.output_a)
        for column, side, title, text in zip(st.columns(2), ("left", "right"), (_("Left"), _("Right")),
                                             (left, right), strict=True):
            box = column.container(border=True, key=f"data-rate-{side}")
            box.markdown(f"**{title}**")
            box.markdown(model_markdown(text) if text else _("*(no output stored)*"))
        for column, (vote, key, shortcut) in zip(st.columns(4), BUTTONS, strict=True):
            # Keyed by the case too: a key pressed while the next case is being drawn votes on the one on screen.
            column.button(_labels()[vote], key=f"{key}:{case.key}", shortcut=shortcut, width="stretch",
                          on_click=_cast, args=(ratings, run.id, pair, case.key, vote))
    else:
        _reveal(store, ratings, run, pair, queue)
    if ratings.identity.admin:
        label_a, label_b = rating.pair_labels(*pair)
        names = {"a": label_a, "b": label_b, TIE: _("tie"), SKIP: _("skipped")}
        with st.expander(_("Every rater's votes (admins only)")):
            st.dataframe(pd.DataFrame([{_("rater"): v.rater, _("case"): v.case_key, _("vote"): _labels()[v.vote],
                                        _("verdict"): names[v.winner]} for v in ratings.votes(run.id, *pair)]),
                         hide_index=True, width="stretch")


def _reveal(store: EvalStore, ratings: Ratings, run: SavedEvalRun, pair: tuple[rating.Config, rating.Config],
            queue: RatingQueue) -> None:
    """A finished queue: the rater's votes with the sides they hid, and the verdict of everyone's votes."""
    total = len(queue.cases)
    label_a, label_b = rating.pair_labels(*pair)
    st.success(_("All {total} cases rated. The sides, revealed:").format(total=total))
    names = {"a": label_a, "b": label_b, TIE: _("tie"), SKIP: _("skipped")}
    mine = [{_("case"): v.case_key, _("your vote"): _labels()[v.vote],
             _("left was"): label_a if v.shown == "AB" else label_b, _("verdict"): names[v.winner]}
            for v in queue.votes.values()]
    st.dataframe(pd.DataFrame(mine), hide_index=True, width="stretch")
    render_verdicts(rating.summary(store.engine, run), only=pair)


def render_verdicts(pairs: list[dict], only: tuple[rating.Config, rating.Config] | None = None) -> None:
    """The verdict of everyone's votes on each rated pair (or on one): win rate, interval, sign test, kappa."""
    for pair_summary in pairs:
        if only is not None and (tuple(pair_summary["config_a"]), tuple(pair_summary["config_b"])) != only:
            continue
        st.info(plain(rating.sentence(pair_summary)))
        for agree in pair_summary["agreement"]:
            kappa = agree["kappa"]
            st.caption(_("Agreement of {r1} and {r2}: Cohen's kappa {kappa} on {n} shared cases.").format(
                r1=plain(agree["raters"][0]), r2=plain(agree["raters"][1]), n=agree["shared_cases"],
                kappa="–" if kappa is None else f"{kappa:.2f}"))

"""The Evals page's results: a run's state (interrupted runs offer Resume), pass-rate matrix, configurations, A/B on
the same cases, the baseline, cases failures first."""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from core.base import i18n
from core.base.i18n import _
from core.evals import rating
from core.evals import results as er
from core.evals.store import CANCELLED, INTERRUPTED, RUNNING, EvalStore, SavedEvalRun
from core.formats.columns import for_people
from core.formats.rendering import plain
from core.llm import file_vars
from core.llm.pricing import format_cost_total
from core.records import report
from pages._eval_rating import render_verdicts

STATE_MARKS = {RUNNING: " · ⏳", INTERRUPTED: " · ⏸", CANCELLED: " · ⏹", "batch": " · 📦"}


def render_state(run: SavedEvalRun, resume: Callable[[SavedEvalRun], None] | None) -> None:
    """What a run that is not done holds, and Resume for one whose cells can still be run."""
    done, cells = len(run.cell_keys), run.plan.cells if run.plan else len(run.rows)
    if run.status == RUNNING:
        st.info(_("Running: {done} of {cells} cells graded so far.").format(done=done, cells=cells))
    elif run.status == INTERRUPTED:
        st.warning(_("Interrupted: the server stopped after {done} of {cells} cells; the finished cells are kept "
                     "below.").format(done=done, cells=cells))
    elif run.status == "batch":  # core/evals/batch.py: out at OpenAI's Batch API
        st.info(_("Sent as a batch: its results come within 24 hours (progress and Cancel in ▶ Run)."))
    elif run.status == CANCELLED and run.missing_cells:
        st.info(_("Cancelled after {done} of {cells} cells.").format(done=done, cells=cells))
    if resume is not None and run.resumable and st.button(
            _("▶ Resume: run the {n} missing cells").format(n=run.missing_cells), key="eval_resume", type="primary"):
        resume(run)


def render_results(store: EvalStore, secrets: tuple[str, ...] = (),
                   resume: Callable[[SavedEvalRun], None] | None = None,
                   revise: Callable[[SavedEvalRun], None] | None = None) -> None:
    state = st.session_state
    runs = store.runs()
    if not runs:
        st.info(_("Run an eval to see which prompt passes more cases."))
    else:
        last = state.eval_box.get("last")
        ids = [r.id for r in runs]
        if last in ids and state.get("eval_last_shown") != last:  # a run just finished: show it
            state.eval_result_pick, state.eval_last_shown = last, last
        pick = st.selectbox(_("Run"), ids, key="eval_result_pick",
                            format_func=lambda i: next(f"{r.name} · {r.created_at[:16]}" + (_(" ⭐ baseline") if
                                                       r.baseline else "") + STATE_MARKS.get(r.status, "")
                                                       for r in runs if r.id == i))
        shown = next(r for r in runs if r.id == pick)
        render_state(shown, resume)
        rows = shown.rows
        s = shown.summary
        st.markdown(_("**{passed} passed · {failed} failed · {errors} errors** · {cost}").format(
            passed=s["passed"], failed=s["failed"], errors=s["errors"],
            cost=format_cost_total(s["cost_usd"], s.get("unpriced_calls") or 0)))
        st.subheader(_("Pass rate (interval: 95%)"))
        st.dataframe(er.pass_matrix(rows), width="stretch")
        configs = er.config_summaries(rows)
        st.dataframe(pd.DataFrame([{
            _("configuration"): c.label, _("passed"): c.passed, _("cases"): c.total, _("errors"): c.errors,
            _("cost"): format_cost_total(c.cost_usd, c.unpriced),
            _("median latency (s)"): None if c.latency_median_ms is None else round(c.latency_median_ms / 1000, 2),
            _("tokens in / out"): f"{c.input_tokens:,} / {c.output_tokens:,}"} for c in configs]),
            hide_index=True, width="stretch")

        if len(configs) > 1:  # any two configurations: two prompts, two providers, or both
            st.subheader(_("Compare two configurations on the same cases"))
            labels = [c.label for c in configs]
            first_a, first_b = er.first_pair(rows, configs)
            a, b = st.columns(2)
            pick_a = a.selectbox("A", range(len(configs)), index=first_a, format_func=lambda i: labels[i],
                                 key="eval_cmp_a")
            pick_b = b.selectbox("B", range(len(configs)), index=first_b, format_func=lambda i: labels[i],
                                 key="eval_cmp_b")
            config_a, config_b = configs[pick_a], configs[pick_b]
            comparison = er.compare_configs(rows, (config_a.prompt, config_a.provider),
                                            (config_b.prompt, config_b.provider))
            st.info(plain(comparison.sentence()))
            for row in er.flipped(rows, comparison, config_b.prompt, config_b.provider):
                st.caption(_("{verdict} · case {n} #{repeat} · {case}").format(
                    verdict=_("✅ B better") if row["flip"] == "better" else _("❌ B worse"), n=row["test_index"] + 1,
                    repeat=row["repeat"], case=plain(row.get("description") or file_vars.chipped(row["vars"]))))

        shown = rating.with_ratings(store.engine, shown)  # people's votes: summary.ratings, like any verdict
        if shown.summary.get("ratings"):
            st.subheader(_("Human ratings (blind, side by side)"))
            render_verdicts(shown.summary["ratings"])
        st.subheader(_("Baseline"))
        baseline = store.baseline()
        if st.button(_("⭐ Make this run the baseline"), key="eval_set_baseline", disabled=shown.baseline):
            store.set_baseline(shown.id)
            st.rerun()
        if baseline is None:
            st.caption(_("No baseline yet: make a run the baseline, and later runs show what changed."))
        elif baseline.id != shown.id:
            for label, comparison in er.compare_with_baseline(rows, baseline.rows):
                st.markdown(f"**{plain(label)}** — {plain(comparison.sentence())}")
                prompt, provider = label.split(" · ", 1)
                for row in er.flipped(rows, comparison, prompt, provider):
                    st.caption(_("{verdict} · case {n} #{repeat} · {case}").format(
                        verdict=_("✅ now passes") if row["flip"] == "better" else _("❌ now fails"),
                        n=row["test_index"] + 1, repeat=row["repeat"],
                        case=plain(row.get("description") or file_vars.chipped(row["vars"]))))
        else:
            st.caption(_("This run is the baseline."))

        if revise is not None and shown.status not in (RUNNING,):
            revise(shown)  # "Suggest a revision" (pages/_eval_revision.py)

        st.subheader(_("Cases, failures first"))
        for row in er.cases_failures_first(rows)[:200]:
            mark = "⚠️" if row.get("error") else "✅" if row["pass"] else "❌"
            case = _("case {n} #{repeat}").format(n=row["test_index"] + 1, repeat=row["repeat"])
            title = (f"{mark} {case} · {plain(row['prompt'][:40])} · "
                     f"{plain(row['provider'])} — {plain((row.get('description') or '')[:40])}")
            with st.expander(title):
                st.caption(_('Reason: {reason}').format(reason=plain(row['reason'])))
                st.json(file_vars.chipped(row["vars"]), expanded=False)  # an image or PDF as a file chip
                st.text(row["output"] or _("(no output)"))
                if row["assertions"]:
                    st.dataframe(for_people(pd.DataFrame(row["assertions"])), hide_index=True, width="stretch")
                for verdict in row.get("grading", []):
                    st.caption(_('Grading prompt ({assertion})').format(assertion=verdict['type']))
                    st.json(verdict["prompt"], expanded=False)
        if len(rows) > 200:
            st.caption(_('First 200 of {cells} cells; download the run for all of them.').format(cells=len(rows)))
        d1, d2 = st.columns(2)
        d1.download_button(_("⬇ results.json"), shown.to_json(),
                           f"{shown.name}.json", "application/json", key="eval_download")
        d2.download_button(_("🔗 Share (HTML)"), i18n.deferred(lambda: report.eval_report(shown, secrets).html),
                           f"{shown.name}.html", "text/html", key="eval_share",
                           help=_("The matrix, outputs and verdicts in one file that opens offline in any browser."))

"""The Evals page's batch runs: the "Run as a batch" choice next to Run (OpenAI / Azure only), the submission, and a
progress view (status, lines done, failed, last polled, Cancel) that polls while the page is open — every
`POLL_EVERY_S` in a fragment, or at once with Refresh — and finds the run again in the database after a restart."""
from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.evals.batch import LIVE, REPORT, BatchProgress, Poller, batch_refusal, progress, submit, waiting_runs
from core.evals.run import EvalRun, RunNotStarted
from core.evals.store import EvalStore
from core.formats.rendering import plain

POLL_EVERY_S = 30  # a batch takes minutes to hours: a poll each half minute while the page is open is plenty
_LAST = "eval_batch_last"  # the batch run this session submitted last (shown with its notes once it ended)


def batch_choice(wb) -> tuple[bool, str]:
    """The choice next to Run: (send the run as a batch, what becomes of failed lines). Disabled with the reason
    when the active provider has no Batch API."""
    refusal = batch_refusal(wb.provider)
    chosen = st.checkbox(_("Run as a batch (50% price, results within 24 h)"), key="eval_batch",
                         disabled=refusal is not None, help=refusal or _(
                             "The cells go to OpenAI's Batch API as one file; this page (or `python -m core evals "
                             "poll RUN_ID`) collects the results, also after a restart."))
    if refusal is not None:
        st.caption(refusal)
        return False, LIVE
    if not chosen:
        return False, LIVE
    failed = st.radio(_("Lines that fail or expire in the batch"), [LIVE, REPORT], key="eval_batch_failed",
                      horizontal=True, format_func=lambda v: _("retry them live (normal price)") if v == LIVE
                      else _("report them as failed cells"))
    return True, failed


def submit_batch(evaluation: EvalRun, store: EvalStore, wb, on_failure: str) -> EvalRun | None:
    """The Run click in batch mode: submit (one core call). Returns the run when it went live instead (a server
    without the Batch API: its sentence is shown), None when the batch is out (the progress view follows it)."""
    try:
        sent = submit(evaluation, store, user=wb.user, secrets=wb.secrets, on_failure=on_failure)
    except PromptLabError as err:  # the upload or the batch refused (its sentence); the run is interrupted
        raise RunNotStarted(str(err)) from None
    except SQLAlchemyError:  # the database refused the run's row: nothing was sent
        raise RunNotStarted(_("The run could not be stored (the database is busy or read-only), so it was not "
                              "started: try again in a moment.")) from None
    st.session_state[_LAST] = sent.run_id  # the progress view shows it (and, gone live, the sentence why)
    if sent.live is not None:
        return sent.live
    return None


def _age_s(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()


def _show(shown: BatchProgress, poller: Poller, name: str) -> None:
    st.markdown(f"**{plain(name)}** · `{shown.run_id}`")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("Batch status"), shown.status)
    c2.metric(_("Lines done"), f"{shown.completed}/{shown.total}")
    c3.metric(_("Failed"), shown.failed)
    age = _age_s(shown.polled_at)
    c4.metric(_("Last polled"), _("never") if age is None else _("{s:.0f} s ago").format(s=age))
    for note in shown.notes:
        st.info(plain(note))
    if not shown.finished:
        st.progress(shown.completed / shown.total if shown.total else 0.0)
        if st.button(_("⏹ Cancel the batch"), key=f"eval_batch_cancel_{shown.run_id}"):
            try:
                poller.cancel(shown.run_id)
            except PromptLabError as err:
                st.error(str(err))
            st.rerun()
    else:
        st.success(_("This batch run has ended ({state}): its results are in 📊 Results.").format(
            state=shown.run_status))


def render_batches(store: EvalStore, poller: Poller) -> None:
    """The progress view of the viewer's batch runs still out (found in the database, whichever session or process
    submitted them), and of this session's last one once it ended."""
    ids = waiting_runs(store)
    last = st.session_state.get(_LAST)
    if not ids and not last:
        return

    @st.fragment(run_every=POLL_EVERY_S)
    def view() -> None:
        st.subheader(_("Batch runs"))
        refresh = st.button(_("🔄 Refresh now"), key="eval_batch_refresh")
        for run_id in dict.fromkeys([*ids, *([last] if last else [])]):
            shown = progress(store, run_id)
            if shown is None:
                continue
            age = _age_s(shown.polled_at)
            if not shown.finished and (refresh or age is None or age >= POLL_EVERY_S / 2):
                try:
                    shown = poller.poll(run_id) or shown
                except PromptLabError as err:
                    st.warning(plain(str(err)))
                if shown.finished:
                    st.session_state[_LAST] = run_id
                    st.rerun()  # the whole page: the results tab lists the finished run
            _show(shown, poller, shown.name)
    view()

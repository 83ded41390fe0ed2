"""The Playground's compare matrix: choose, estimate, run live, cancel; grid, table, diff, stability, baseline."""
from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import streamlit as st

from core.base import i18n
from core.base.clock import utc_now_iso
from core.base.i18n import _
from core.calls.metrics import call_status_label, finish_label, metrics_caption
from core.formats.columns import for_people
from core.formats.exports import to_csv
from core.formats.rendering import model_markdown, plain
from core.llm.pricing import format_cost
from core.playground.codegen import curl_command, python_code
from core.playground.compare import compare_runs, diff_html, stability_summary
from core.playground.draft import Draft, PlaygroundError
from core.playground.library import PromptLibrary, SavedRun
from core.playground.matrix import (
    CURRENT_DRAFT,
    CellResult,
    MatrixRun,
    estimate_cost,
    expand_matrix,
    fresh_run_name,
    parse_temperatures,
    prepare_cell,
    results_to_json,
    with_screen_inputs,
)
from core.records import report
from pages._widgets import available_models
from pages._workbench import Workbench

CURRENT = CURRENT_DRAFT  # an option's value; shown translated


API_BADGES = {"responses": "responses", "chat": "chat"}  # the API's own names, as in the code it shows


def show_cell(r: CellResult) -> None:
    """One result: its reasoning summary (collapsed), output (or error), search calls and their links, tool calls
    and checks, and its metrics with the API that ran it."""
    if r.error:
        st.error(r.error)
    if r.thinking:
        with st.expander(_("Thinking"), expanded=False):
            st.markdown(plain(r.thinking))
    for call in r.builtin_calls:  # the server searched: what for, and how it ended
        web = call.get("type") == "web_search_call"
        st.caption(("🔎 " + _("web search") if web else "📁 " + _("file search"))
                   + f" · {plain(call.get('query') or '')} · {plain(call.get('status') or '')}")
    if r.citations:
        st.markdown(" · ".join(f"[{plain(c['title'])}]({c['url']})" for c in r.citations
                               if str(c.get("url", "")).startswith(("https://", "http://"))))
    if r.builtin_calls:
        fees = format_cost(r.tool_fees_usd) + (_(" (estimated)") if r.tool_fees_estimated else "")
        st.caption(_("Built-in tool calls: {n} · fees {fees} (in the cost below)").format(n=len(r.builtin_calls),
                                                                                          fees=fees))
    if r.text:
        # no remote image loads from a reply; model output, not interface ("data-" key)
        st.container(key=f"data-output-{id(r)}").markdown(model_markdown(r.text))
    for call in r.tool_calls:
        st.markdown(f"🔧 **{plain(call['name'])}**")
        st.json(call.get("parsed") if call.get("parsed") is not None else call["arguments"])
        st.caption(_("✅ arguments match the declared schema") if not call.get("error") else f"❌ {call['error']}")
    if r.schema_valid is not None:
        st.caption(_("✅ valid JSON output") if r.schema_valid else
                   _("❌ invalid output — {error}").format(error=r.schema_error))
    measured = f" · {metrics_caption(r.metrics)}" if r.metrics else ""
    badge = f" · `{API_BADGES[r.api]}`" if r.api in API_BADGES else ""  # which API ran it
    st.caption(_("{status} · finish: {finish}").format(status=call_status_label(r.status),
                                                       finish=finish_label(r.finish_reason)) + measured + badge)


def _versions(library: PromptLibrary, draft: Draft | None) -> dict[str, Draft]:
    """The current draft and the last five versions of each saved prompt, each with the screen's variables and max
    tokens (the inputs of this comparison)."""
    options = {CURRENT: draft} if draft else {}
    for name in library.names():
        for v in library.history(name)[:5]:
            options[v.label] = with_screen_inputs(v.draft, draft) if draft else v.draft
    return options


def _live(run: MatrixRun, columns: int) -> None:
    """Draw every cell as it streams until the run ends; a click elsewhere (Cancel) cancels it."""
    grid = st.columns(columns)
    slots = []
    for i, r in enumerate(run.results):
        with grid[i % columns].container(border=True):
            st.caption(f"{plain(r.spec.label)} · `{API_BADGES.get(run.cells[i].api, run.cells[i].api)}`")
            slots.append(st.empty())
    shown = [None] * len(slots)
    # Take the holder and name now: once a click interrupts this run, touching st.session_state raises again.
    box, name = st.session_state.pg_matrix_box, st.session_state.get("pg_run_name") or "run"
    try:
        while True:
            finished = run.done()
            for i, r in enumerate(run.results):
                view = (r.status, r.text)
                if view != shown[i]:
                    slots[i].markdown(model_markdown(r.text) if r.text else f"*{call_status_label(r.status)}…*")
                    shown[i] = view
            if finished:
                break
            time.sleep(0.1)
    finally:
        if not run.done():
            run.cancel()
            run.wait(30)
        box["last"] = (name, run.results)
        box["requests"] = [(c.provider, c.spec.model, c.messages, c.params, c.api) for c in run.cells]
        box["new_name"] = True
        box.setdefault("names", set()).add(name)


def render_compare(wb: Workbench, draft: Draft | None, library: PromptLibrary, problem: str | None) -> None:
    box = st.session_state.setdefault("pg_matrix_box", {})
    used = box.setdefault("names", set())
    if box.pop("new_name", False) or "pg_run_name" not in st.session_state:  # a fresh default for every run
        st.session_state.pg_run_name = fresh_run_name(datetime.now(), used)
    versions = _versions(library, draft)
    models, _error = available_models(wb)
    c1, c2 = st.columns(2)
    chosen_versions = c1.multiselect(_("Prompt versions"), list(versions), default=[CURRENT] if draft else [],
                                     placeholder=_("Choose options"),
                                     format_func=lambda v: _(v) if v == CURRENT else v,
                                     key="pg_cmp_versions")
    chosen_models = c2.multiselect(_("Models"), models, placeholder=_("Choose options"),
                                   default=[draft.model] if draft and draft.model in models else models[:1],
                                   key="pg_cmp_models")
    c3, c4, c5 = st.columns(3)
    temps_text = c3.text_input(_("Temperatures"), "0, 1", key="pg_cmp_temps")
    repeats = c4.number_input(_("Repeats"), 1, 10, 1, key="pg_cmp_repeats")
    concurrency = c5.number_input(_("Concurrent calls"), 1, 32, 8, key="pg_cmp_concurrency")
    st.text_input(_("Run name (tags the calls in the log)"), key="pg_run_name")
    try:
        specs = expand_matrix(chosen_versions, chosen_models, parse_temperatures(temps_text), int(repeats))
        cells = [prepare_cell(s, versions[s.version], wb.provider_for(s.model)) for s in specs]
    except PlaygroundError as err:
        st.info(str(err))
        return
    def counter(messages: list[dict], model: str) -> int:
        return wb.provider_for(model).prompt_counter(model)(messages)

    estimate = estimate_cost([(c.spec, c.messages, versions[c.spec.version].settings.max_tokens) for c in cells],
                             counter, lambda m: wb.provider_for(m).pricing_id)
    if estimate.unpriced_cells == len(cells):
        cost = _("cost unknown (unpriced models)")
    else:
        unpriced = _(" + {n} unpriced cells").format(n=estimate.unpriced_cells) if estimate.unpriced_cells else ""
        cost = _("at most {cost}").format(cost=format_cost(estimate.max_cost_usd)) + unpriced
    st.caption(_("{cells} cells · {input_tokens:,} input tokens · at most {max_output_tokens:,} output tokens · "
                 "{cost}").format(cells=len(cells), input_tokens=estimate.input_tokens,
                                  max_output_tokens=estimate.max_output_tokens, cost=cost))
    limit = wb.settings.confirm_cost_usd
    confirmed = True
    if estimate.max_cost_usd > limit:
        confirmed = st.checkbox(_('This run may cost up to {cost} (over {limit}): run it anyway').format(
            cost=format_cost(estimate.max_cost_usd), limit=format_cost(limit)), key="pg_cmp_confirm")
    if st.button(_("▶ Run matrix"), type="primary", disabled=not confirmed or problem is not None, key="pg_cmp_run"):
        tag = f"run:{st.session_state.pg_run_name}"
        run = MatrixRun(cells, wb.context("playground", [tag]), wb.log, int(concurrency)).start()
        st.button(_("⏹ Cancel"), key="pg_cmp_cancel")
        _live(run, min(len(cells), 3))
        st.rerun()
    if st.session_state.pg_matrix_box.get("last"):
        _results(wb, library, *st.session_state.pg_matrix_box["last"], box.get("requests") or [])


def _view_code(request: tuple) -> None:
    """A cell's exact request as Python and curl, on the API it ran on (responses.create or chat.completions)."""
    provider, model, messages, params, api = request
    with st.expander(_("View code")):
        st.code(python_code(provider, model, messages, params, api=api), language="python")
        st.code(curl_command(provider, model, messages, params, api=api), language="bash")


def _results(wb: Workbench, library: PromptLibrary, name: str, results: list[CellResult],
             requests: list[tuple]) -> None:
    st.subheader(_('Results — {name}').format(name=name))
    grid, table, diff, stability, baseline = st.tabs([_("Grid"), _("Table"), _("Diff"), _("Stability"), _("Baseline")])
    with grid:
        cols = st.columns(min(len(results), 3))
        for i, r in enumerate(results):
            with cols[i % len(cols)].container(border=True):
                st.caption(plain(r.spec.label))
                show_cell(r)
                if i < len(requests) and len(requests) == len(results):
                    _view_code(requests[i])
    frame = pd.DataFrame([r.row() for r in results])
    with table:
        st.dataframe(for_people(frame), hide_index=True, width="stretch")
        e1, e2, e3, e4 = st.columns(4)
        e1.download_button(_("⬇ CSV"), to_csv(for_people(frame)) or "", f"{name}.csv", "text/csv")
        e2.download_button(_("⬇ JSON"), results_to_json(results), f"{name}.json", "application/json")
        e3.download_button(_("🔗 Share (HTML)"), i18n.deferred(lambda: report.compare_report(
            SavedRun("", name, utc_now_iso(), results), wb.secrets).html), f"{name}.html", "text/html",
            key="pg_share", help=_("One file that opens offline in any browser; no keys, no personal data."))
        if e4.button(_("💾 Save run"), key="pg_save_run"):
            library.save_run(name, results, wb.user)
            st.success(_('Saved “{name}”.').format(name=name))
    with diff:
        labels = [r.spec.label for r in results]
        a = st.selectbox(_("Output A"), range(len(results)), format_func=labels.__getitem__, key="pg_diff_a")
        b = st.selectbox(_("Output B"), range(len(results)), index=min(1, len(results) - 1),
                         format_func=labels.__getitem__, key="pg_diff_b")
        st.html(diff_html(results[a].text, results[b].text))
    with stability:
        st.dataframe(for_people(pd.DataFrame([s.__dict__ for s in stability_summary(results)])), hide_index=True,
                     width="stretch")
    with baseline:
        saved = library.runs()
        if not saved:
            st.caption(_("Save a run to compare later runs against it."))
        else:
            pick = st.selectbox(_("Baseline run"), range(len(saved)), key="pg_baseline",
                                format_func=lambda i: f"{saved[i].name} · {saved[i].created_at[:16]}")
            rows = compare_runs(results, saved[pick].results)
            st.dataframe(for_people(pd.DataFrame([r.__dict__ for r in rows])), hide_index=True, width="stretch")

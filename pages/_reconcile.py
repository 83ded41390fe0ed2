"""Analytics' "Reconcile with the bill": the log against OpenAI's Usage and Costs for the period on screen."""
from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.analytics import reconcile
from core.base import i18n
from core.base.errors import PromptLabError
from core.base.i18n import _
from core.formats.columns import for_people
from core.formats.exports import to_csv
from core.formats.rendering import plain
from core.llm.pricing import format_cost, format_cost_total
from pages._workbench import Workbench, base_settings


def render_reconcile(wb: Workbench, start: date, end: date) -> None:
    st.subheader(_("Reconcile with the bill"))
    if not wb.admin:
        st.caption(_("The organisation's bill is for admins."))
        return
    if not wb.settings.openai_admin_key:
        st.caption(_("Set OPENAI_ADMIN_KEY (an OpenAI admin key) to compare this log with what OpenAI billed: "
                     "requests, tokens and cost per day and model, and the share of the bill that went through "
                     "PromptLab."))
        return
    engine = wb.log.engine
    result = reconcile.saved(engine, start, end)
    if st.button(_("↻ Fetch usage and costs for {start} – {end}").format(
            start=i18n.day(start), end=i18n.day(end)), key="rec_fetch"):
        try:
            with st.spinner(_("Asking OpenAI's Usage and Costs APIs…")):
                # The configured endpoint, never this browser's provider switch: the admin key goes nowhere else.
                client = reconcile.admin_client(wb.settings.openai_admin_key, base_settings().openai_base_url,
                                                wb.settings.timeout_s)
                result = reconcile.fetch(client, engine, start, end)
        except PromptLabError as err:
            st.error(plain(err.message))
    if result is None:
        st.caption(_("Not fetched yet for this period."))
        return
    coverage = "–" if result.coverage is None else f"{result.coverage:.1%}"
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Coverage (tracked ÷ billed)"), coverage)
    c2.metric(_("Billed"), format_cost(result.billed_cost_usd))
    c3.metric(_("Tracked by PromptLab"), format_cost_total(result.tracked_cost_usd, result.unpriced_rows))
    frame = pd.DataFrame(result.json_rows())
    if frame.empty:  # no columns to compare: the table below would raise KeyError
        st.caption(_("Nothing billed and nothing logged in this period."))
        return
    differences = frame[frame["explanation"] != reconcile.MATCHES]  # stored in English; shown translated
    st.caption(_('{differ} of {rows} day × model rows differ · fetched {fetched} UTC').format(
        differ=len(differences), rows=len(frame), fetched=result.fetched_at[:16]))
    for row in differences.head(20).itertuples():
        st.markdown(f"- **{row.day} · {plain(row.model)}**: {plain(reconcile.explanation_text(row.explanation))}")
    shown = frame.assign(explanation=frame["explanation"].map(reconcile.explanation_text))
    st.dataframe(for_people(pd.concat([shown[frame["explanation"] != reconcile.MATCHES],
                                       shown[frame["explanation"] == reconcile.MATCHES]])), hide_index=True,
                 width="stretch", key="rec_rows")
    if result.billed_cost_by_line_item:
        st.dataframe(pd.DataFrame([{_("Line item"): k, _("Billed (USD)"): round(v, 6)}
                                   for k, v in sorted(result.billed_cost_by_line_item.items())]),
                     hide_index=True, width="stretch", key="rec_items")
    st.download_button(_("⬇ Reconciliation CSV"), to_csv(for_people(shown)) or "", f"reconcile-{start}-{end}.csv", "text/csv",
                       key="rec_csv")

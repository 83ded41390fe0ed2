"""Analytics: spend, latency and errors over the call log, with filters, budget, drill-down and downloads."""
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core.analytics import dashboard as an
from core.analytics import whatif
from core.analytics.charts import CHART_CONFIG, CHART_GROUPS, comparable, figures, kpi_cards, without_notes
from core.analytics.pushdown import AnalyticsEngine, analytics_for
from core.base import i18n
from core.base.i18n import N_, _
from core.calls.synthetic import generate
from core.formats.columns import for_people, label, page_name
from core.formats.exports import to_csv
from core.formats.rendering import code_text, plain
from core.llm.pricing import format_cost, format_cost_total
from core.playground.draft import replay_draft
from core.records import report
from pages._analytics_traffic import draw_add_to_set
from pages._reconcile import render_reconcile
from pages._workbench import workbench

PERIODS = {"Today": N_("Today"), "7 days": N_("7 days"), "30 days": N_("30 days"), "This month": N_("This month"),
           "Custom": N_("Custom")}  # core.analytics.dashboard.preset_range's names → what the menu shows
NO_OTHER_MODEL = N_("(no other model)")
DIMENSIONS = {"provider": N_("Provider"), "model": N_("Model"), "page": N_("Page"), "user": N_("User"),
              "status": N_("Status"), "endpoint": N_("Endpoint"), "tag": N_("Tag")}

wb = workbench()
st.title(_("📊 Analytics"))


@st.cache_resource(show_spinner=False)  # the spinner is drawn below, in the session's language
def _engine(db_url: str) -> AnalyticsEngine:
    return analytics_for(wb.log)  # PostgreSQL answers from its roll-ups; one SQLite node keeps a DuckDB mirror


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def _dashboard(db_url: str, version: tuple, filters: an.Filters) -> an.Dashboard:
    return _engine(db_url).dashboard(filters)


@st.cache_resource(ttl=600, show_spinner=False, max_entries=32)
def _charts(db_url: str, version: tuple, filters: an.Filters, language: str, group: str,
            _dash: an.Dashboard) -> tuple[dict, dict[str, str]]:
    """The figures of one chart group and their notes for one filter, built once: a filter switched back and
    forth redraws what it drew before. Shared read-only (Streamlit copies a figure into its message; nothing
    changes these objects)."""
    return without_notes(figures(_dash, CHART_GROUPS[group].keys))  # _dash: the dashboard of these arguments


@st.cache_data(ttl=600, show_spinner=False, max_entries=8)
def _options(db_url: str, version: tuple) -> dict:
    return _engine(db_url).options()


with st.spinner(_("Indexing the call log…")):
    engine = _engine(wb.settings.db_url)
with st.spinner(_("Reading new calls…")):
    engine.refresh()
if engine.version[1] == 0:
    st.info(_("The call log is empty. Chat, use the Playground, or fill it with realistic demo calls to explore."))
    if st.button(_("Generate demo data (5,000 calls over 30 days)"), type="primary"):
        with st.spinner(_("Generating…")):
            made = generate(wb.log, 5_000, days=29, seed=int(datetime.now().timestamp()))  # all in "30 days"
        st.session_state.an_generated = made
        st.rerun()
    st.stop()
if "an_generated" in st.session_state:
    st.toast(_("Generated {calls:,} demo calls; model lists and connection tests among them are counted "
               "apart (the sidebar's toggle includes them).").format(
        calls=st.session_state.pop('an_generated')))

today = datetime.now(timezone.utc).date()
options = _options(wb.settings.db_url, engine.version)
with st.sidebar:
    st.subheader(_("Filters"))
    preset = st.selectbox(_("Period"), list(PERIODS), index=2, key="an_period", format_func=lambda p: _(PERIODS[p]))
    if preset == "Custom":
        span = engine.date_span() or (today, today)
        picked = st.date_input(_("Days (UTC)"), value=(max(span[0], today.replace(day=1)), today), key="an_custom")
        start, end = (picked[0], picked[-1]) if isinstance(picked, (tuple, list)) and picked else (today, today)
    else:
        start, end = an.preset_range(preset, today)
    chosen = {dim: tuple(st.multiselect(_(DIMENSIONS[dim]), options[dim], key=f"an_{dim}", placeholder=_("All"),
                                        format_func=page_name if dim == "page" else str))
              for dim in (*an.FILTER_DIMENSIONS, "tag")}
    non_model = st.toggle(_("Include non-model calls"), key="an_non_model",
                          help=_("Model lists and connection tests (page “other”) are counted apart from calls "
                                 "to a model; turn this on to include them."))
pages_filter = an.pages_shown(chosen["page"], options["page"], non_model)
filters = an.Filters(start, end, chosen["provider"], chosen["model"], pages_filter, chosen["user"],
                     chosen["status"], chosen["tag"], chosen["endpoint"])
dash = _dashboard(wb.settings.db_url, engine.version, filters)
st.caption(f"{i18n.day(filters.start)} – {i18n.day(filters.end)} (UTC), "
           + (_("compared with the {days} days before.").format(days=filters.days)
              if comparable(dash.current, dash.previous)
              else _("no comparable previous period (it holds next to no calls).")))

budget = an.monthly_budget(wb.log)
if budget:
    status = an.budget_status(engine, budget)
    warning = an.budget_warning(status)
    if warning:
        st.warning(warning)
    b1, b2, b3 = st.columns(3)
    b1.metric(_("Month to date"), format_cost(status.month_to_date_usd),
              _("{share:.0%} of budget").format(share=status.used_share),
              delta_color="off")
    b2.metric(_("Burn rate"), _("{cost} / day").format(cost=format_cost(status.burn_rate_usd_per_day)))
    b3.metric(_("Month-end forecast"), format_cost(status.forecast_usd),
              _("budget {cost}").format(cost=format_cost(budget)), delta_color="off")

cards = kpi_cards(dash.current, dash.previous)
for row in (cards[:6], cards[6:]):
    for col, card in zip(st.columns(6), row, strict=False):
        col.metric(card.label, card.value, card.delta, delta_color="normal" if card.up_is_good else "inverse")
badges = []
if dash.current.unpriced_calls:
    models = ", ".join(plain(m) for m in dash.unpriced_models) or _("unknown models")
    badges.append(_(":orange-badge[{n:,} unpriced calls] ({models}) are not in the spend").format(
        n=dash.current.unpriced_calls, models=models))
if dash.current.estimated_calls:
    badges.append(_(":blue-badge[{n:,} estimated token counts] (server sent no usage)").format(
        n=dash.current.estimated_calls))
for badge in badges:
    st.markdown(badge)
if dash.sampled:
    st.caption(_("Latency percentiles, speeds and the time-to-first-token histogram are estimated from {n:,} "
                 "sampled calls (one in {one_in}): the period holds too many to read them all.").format(
        n=dash.sampled, one_in=dash.one_in))

if dash.current.calls == 0:
    st.info(_("No calls match these filters: widen the period or clear a filter."))
else:
    # One group of charts at a time: the browser spends most of a filter change drawing Plotly charts, so drawing
    # all ten took ~2 s in Chromium; the charts of the other groups are one click away (core/analytics/charts.py).
    group = st.segmented_control(_("Charts"), list(CHART_GROUPS), default="overview", required=True,
                                 key="an_charts", format_func=lambda g: _(CHART_GROUPS[g].label)) or "overview"
    charts, notes = _charts(wb.settings.db_url, engine.version, filters, i18n.language(), group, dash)
    keys = list(charts)
    for i in range(0, len(keys), 2):
        for col, key in zip(st.columns(2, gap="medium"), keys[i:i + 2], strict=False):
            # A bordered box of its own per chart: the figure and the note under it stay inside their column.
            box = col.container(border=True, key=f"chart_box_{key}")
            box.plotly_chart(charts[key], width="stretch", key=f"chart_{key}", config=CHART_CONFIG)
            if key in notes:
                box.caption(notes[key])

    with st.expander(_("By endpoint"), expanded=dash.by_endpoint["endpoint"].nunique() > 1):
        st.dataframe(pd.DataFrame([{
            _("Endpoint"): r.endpoint, _("Calls"): int(r.calls), _("Errors"): int(r.errors),
            _("Spend"): format_cost_total(None if pd.isna(r.spend_usd) else r.spend_usd, int(r.unpriced)),
            _("p50 latency (ms)"): None if pd.isna(r.p50_latency_ms) else round(r.p50_latency_ms)}
            for r in dash.by_endpoint.itertuples()]), hide_index=True, width="stretch", key="an_by_endpoint")

with st.expander(_("What if… (estimates)")):
    usage = engine.usage_by_model(filters)
    other = st.selectbox(_("The same tokens on"), [NO_OTHER_MODEL, "gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini",
                                                "gpt-4o", "gpt-4.1", "gpt-5", "o4-mini"], key="an_whatif_model",
                         format_func=lambda m: _(m) if m == NO_OTHER_MODEL else m)
    table = whatif.scenarios(usage, None if other == NO_OTHER_MODEL else other)
    if table:
        st.dataframe(pd.DataFrame([{_("Scenario"): w.scenario, _("Cost"): format_cost(w.cost_usd), _("How"): w.note}
                                   for w in table]), hide_index=True, width="stretch", key="an_whatif")
        st.caption(_("Estimates from list prices (genai-prices) for the OpenAI and Azure calls on screen — not a "
                     "bill."))
    else:
        st.caption(_("No OpenAI or Azure calls in these filters."))

render_reconcile(wb, start, end)

st.subheader(_("Calls"))
page_size = 50
frame, total = engine.calls_page(filters, st.session_state.get("an_calls_page", 1) - 1, page_size)
pages = max(1, -(-total // page_size))
top = st.columns([2, 1, 1, 1.4, 0.6])
top[0].number_input(_('Page (of {pages:,}, {total:,} calls)').format(
    pages=pages, total=total), 1, pages, key="an_calls_page")
top[1].download_button(_("⬇ CSV"), i18n.deferred(lambda: to_csv(for_people(engine.filtered_frame(filters))) or ""),
                       "promptlab-calls.csv", "text/csv")
top[2].download_button(_("⬇ Parquet"), lambda: engine.filtered_frame(filters).to_parquet(index=False),
                       "promptlab-calls.parquet", "application/octet-stream")
if total > an.DOWNLOAD_LIMIT:
    st.caption(_("Downloads hold the newest {limit:,} of these calls; `python -m core calls export` writes them "
                 "all.").format(limit=an.DOWNLOAD_LIMIT))
top[3].download_button(_("🔗 Share report (HTML)"), i18n.deferred(
    lambda: report.analytics_report(dash, filters, wb.secrets).html),
                       report.analytics_file_name(filters), "text/html", key="an_share",
                       help=_("KPIs and interactive charts for this period and these filters, in one file that "
                            "opens offline in any browser."))
event = st.dataframe(for_people(frame), hide_index=True, width="stretch", on_select="rerun",
                     selection_mode="multi-row", key="an_calls",
                     column_config={label("cost_usd"): st.column_config.NumberColumn(format="$%.6f")})
selected = [frame.iloc[i]["request_id"] for i in event.selection.rows]
draw_add_to_set(wb, engine, filters, selected, total)
typed_id = st.text_input(_("…or open a call by its request id"), key="an_request_id").strip()
request_id = selected[-1] if selected else typed_id  # the last row clicked
if request_id:
    record, texts = wb.log.get(request_id), wb.log.texts_for(request_id, wb.user, wb.admin)  # texts: own calls only
    with st.container(border=True):
        st.markdown(_('**Call {request_id}**').format(request_id=code_text(request_id)))
        st.json(an.record_details(record) if record else {"request_id": request_id, "note": _("not in the log")})
        if texts and texts.request.get("messages") and st.button(_("🧪 Open in the Playground"), key="an_replay"):
            st.session_state.pg_load = replay_draft(texts.request)
            st.switch_page("pages/playground.py")
        if texts:
            st.markdown(_("**Messages**"))
            st.json(texts.request.get("messages", []), expanded=False)
            st.markdown(_("**Reply**"))
            st.text(texts.reply or "")

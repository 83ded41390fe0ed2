"""Plotly figures for the Analytics page, built from a Dashboard (plain plotly: testable without Streamlit)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from core.analytics.dashboard import Dashboard, Kpis, change
from core.base import i18n
from core.base.i18n import N_, _
from core.formats.rendering import chart_label
from core.llm.pricing import format_cost

_LAYOUT = dict(margin=dict(l=10, r=10, t=56, b=10), legend_title_text="", height=320)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
BAR_SHARE = 0.8  # a time bar fills this share of its day or hour: a lone day is a bar, never a hairline
_ONE_DAY = pd.Timedelta(days=1)
# Plotly's toolbar, trimmed to what a reader of these charts uses, so that it no longer covers the titles (which
# sit on the left, the toolbar on the right).
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d",
                                                                  "zoomIn2d", "zoomOut2d"]}


@dataclass(frozen=True)
class KpiCard:
    """One metric card: label, value, change versus the previous period, and whether up is good."""

    label: str
    value: str
    delta: str | None
    up_is_good: bool


def _fmt_ms(ms: float | None) -> str:
    return "–" if ms is None else (f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _delta(cur: float | None, prev: float | None) -> str | None:
    c = change(cur, prev)
    return None if c is None else f"{c:+.1%}"


def comparable(cur: Kpis, prev: Kpis) -> bool:
    """Is the previous period worth comparing with? Not when it holds next to nothing ("+3311.7 %" against a nearly
    empty week says nothing): it needs at least 5 % as many calls as this period."""
    return prev.calls >= max(1, 0.05 * cur.calls)


def kpi_cards(cur: Kpis, prev: Kpis) -> list[KpiCard]:
    """The KPI cards, each with its change versus the previous period of the same length (none when that period
    is not comparable)."""
    if not comparable(cur, prev):
        prev = Kpis()
        _no = True
    else:
        _no = False

    def delta(c: float | None, p: float | None) -> str | None:
        return None if _no else _delta(c, p)
    return [
        KpiCard(_("Spend"), format_cost(cur.spend_usd) if cur.calls else "$0", delta(cur.spend_usd, prev.spend_usd),
                False),
        KpiCard(_("Calls"), f"{cur.calls:,}", delta(cur.calls, prev.calls), True),
        KpiCard(_("Error rate"), _pct(cur.error_rate), delta(cur.error_rate, prev.error_rate), False),
        KpiCard(_("p50 latency"), _fmt_ms(cur.p50_latency_ms), delta(cur.p50_latency_ms, prev.p50_latency_ms), False),
        KpiCard(_("p95 latency"), _fmt_ms(cur.p95_latency_ms), delta(cur.p95_latency_ms, prev.p95_latency_ms), False),
        KpiCard(_("Median TTFT"), _fmt_ms(cur.median_ttft_ms), delta(cur.median_ttft_ms, prev.median_ttft_ms), False),
        KpiCard(_("Tokens in"), f"{cur.input_tokens:,}", delta(cur.input_tokens, prev.input_tokens), True),
        KpiCard(_("Tokens out"), f"{cur.output_tokens:,}", delta(cur.output_tokens, prev.output_tokens), True),
        KpiCard(_("Prompt-cache hit rate (tokens)"), _pct(cur.cache_hit_rate),
                delta(cur.cache_hit_rate, prev.cache_hit_rate), True),
        KpiCard(_("Reply cache hits"), _pct(cur.response_cache_rate),
                delta(cur.response_cache_rate, prev.response_cache_rate), True),
        KpiCard(_("Spend / 1k calls"), format_cost(cur.spend_per_1k_calls) if cur.calls else "–",
                delta(cur.spend_per_1k_calls, prev.spend_per_1k_calls), False),
    ]


def _layout(fig: go.Figure, title: str, **extra) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=0.97, yanchor="top", font=dict(size=15)),
                      **_LAYOUT, **extra)
    fig.update_yaxes(rangemode="tozero")
    if not any(t.x is not None and len(t.x) for t in fig.data):
        _note(fig, _("No data for these filters"))
    return fig


def _note(fig: go.Figure, text: str) -> None:
    """A line in the middle of an empty chart instead of bare −1…1 axes."""
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font=dict(size=13, color="#6b7280"))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, range=[0, 1])


def _timeline(fig: go.Figure, d: Dashboard, stamps) -> go.Figure:
    """A time axis in the dashboard's step: days (one tick per day or per few days) or, over a short period,
    hours across the whole period. Bars fill most of their step, so a single day or hour is a visible bar."""
    stamps = sorted(pd.to_datetime(pd.Series(stamps)).dropna().unique())
    if not stamps:
        return fig
    step_ms = HOUR_MS if d.bucket == "hour" else DAY_MS
    fig.update_traces(width=BAR_SHARE * step_ms, selector=dict(type="bar"))
    if d.bucket == "hour":
        return _hourly(fig, d, stamps)
    return _daily(fig, stamps)


def _hourly(fig: go.Figure, d: Dashboard, stamps) -> go.Figure:
    """Hours on the x-axis over the whole period shown (a quiet morning stays visible as a gap), a tick every
    two hours for one day, every four for two; bars sit inside their hour."""
    start, end = d.period or (stamps[0].date(), stamps[-1].date())
    low, high = pd.Timestamp(start), pd.Timestamp(end) + _ONE_DAY
    days = max(1, (high - low) // _ONE_DAY)
    hour_format = "%H:%M" if days == 1 else i18n.chart_day_format() + "<br>%H:%M"
    fig.update_traces(offset=(1 - BAR_SHARE) / 2 * HOUR_MS, selector=dict(type="bar"))
    fig.update_xaxes(type="date", range=[low, high], dtick=2 * days * HOUR_MS, tick0=low, tickformat=hour_format)
    return fig


def _daily(fig: go.Figure, stamps) -> go.Figure:
    """Days on the x-axis read as days: one tick per day (or per few days over a long period), never the
    sub-millisecond ticks Plotly picks around a single day; a lone day gets a day either side."""
    step = max(1, -(-len(stamps) // 10))
    fig.update_xaxes(type="date", tickformat=i18n.chart_day_format(), dtick=step * DAY_MS, tick0=stamps[0])
    if len(stamps) == 1:
        fig.update_xaxes(range=[stamps[0] - _ONE_DAY, stamps[0] + _ONE_DAY])
    return fig


def _money(fig: go.Figure, values) -> go.Figure:
    """A spend chart whose every value is $0 (offline or unpriced calls only) says so instead of drawing an
    empty −1…1 axis."""
    if len(values) and not (values.fillna(0) != 0).any():
        _note(fig, _("No spend in this period: only free (offline) or unpriced calls"))
    fig.update_yaxes(tickprefix="$")
    return fig


def _text(values):
    """Categories from the data (model ids, users, tags) with Plotly's HTML subset escaped: a model id holding
    <a href=…> must not become a link in a legend or on an axis."""
    return values.map(chart_label) if values.dtype == object or str(values.dtype).startswith("str") else values


def _bars_by(frame, x: str, y: str, by: str, title: str, barmode: str = "stack") -> go.Figure:
    """One bar trace per value of `by` (what plotly express does, without its per-call overhead)."""
    fig = go.Figure([go.Bar(x=_text(part[x]), y=part[y], name=chart_label(name))
                     for name, part in frame.groupby(by, sort=True)])
    return _layout(fig, title, barmode=barmode)


def _lines(frame, x: str, columns: dict[str, str], title: str) -> go.Figure:
    """One line per column, named as `columns` says (column → legend label)."""
    fig = go.Figure([go.Scatter(x=frame[x], y=frame[c], name=name, mode="lines+markers")
                     for c, name in columns.items()])
    return _layout(fig, title)


def _bars(frame, x: str, y: str, title: str, **extra) -> go.Figure:
    return _layout(go.Figure([go.Bar(x=_text(frame[x]), y=frame[y])]), title, **extra)


def _spend_by_day(d: Dashboard) -> go.Figure:
    title = _("Spend per hour by model (USD)") if d.bucket == "hour" else _("Spend per day by model (USD)")
    frame = d.spend_by_day_model
    return _money(_timeline(_bars_by(frame, "day", "spend_usd", "model", title), d, frame["day"]), frame["spend_usd"])


def _calls_by_day(d: Dashboard) -> go.Figure:
    title = _("Calls and errors per hour") if d.bucket == "hour" else _("Calls and errors per day")
    return _timeline(_lines(d.calls_by_day, "day", {"calls": _("Calls"), "errors": _("Errors")}, title),
                     d, d.calls_by_day["day"])


def _tokens_by_model(d: Dashboard) -> go.Figure:
    tokens = d.tokens_by_model.melt(id_vars="model", value_vars=["input_tokens", "output_tokens"],
                                    var_name="direction", value_name="tokens")
    tokens["direction"] = tokens["direction"].map({"input_tokens": _("Tokens in"), "output_tokens": _("Tokens out")})
    return _bars_by(tokens, "model", "tokens", "direction", _("Tokens in / out by model"), barmode="group")


# Every chart of the page by a stable key, each built on its own: a page builds only the charts it shows.
_BUILDERS: dict[str, Callable[[Dashboard], go.Figure]] = {
    "spend_by_day": _spend_by_day,
    "calls_by_day": _calls_by_day,
    "latency": lambda d: _timeline(_lines(d.latency_by_day, "day", {"p50": "p50", "p95": "p95", "p99": "p99"},
                                          _("Latency p50 / p95 / p99 (ms, successful calls)")),
                                   d, d.latency_by_day["day"]),
    "ttft": lambda d: _bars(d.ttft_histogram, "ttft_ms", "calls", _("Time to first token (ms, log scale)"),
                            xaxis_type="log"),
    "tokens_by_model": _tokens_by_model,
    "spend_by_page": lambda d: _money(_bars(d.spend_by_page, "page", "spend_usd", _("Spend by page (USD)")),
                                      d.spend_by_page["spend_usd"]),
    "spend_by_endpoint": lambda d: _money(_bars(d.by_endpoint, "endpoint", "spend_usd",
                                                _("Spend by endpoint (USD)")), d.by_endpoint["spend_usd"]),
    "spend_by_user": lambda d: _money(_bars(d.spend_by_user, "user", "spend_usd", _("Spend by user (USD)")),
                                      d.spend_by_user["spend_usd"]),
    "spend_by_tag": lambda d: _money(_bars(d.spend_by_tag, "tag", "spend_usd", _("Spend by tag (USD)")),
                                     d.spend_by_tag["spend_usd"]),
    "speed": lambda d: _bars(d.speed_by_model, "model", "tokens_per_s", _("Output tokens / s by model (median)")),
    "errors": lambda d: _bars(d.error_types, "error_type", "calls", _("Errors by type")),
}


@dataclass(frozen=True)
class ChartGroup:
    """Charts the Analytics page shows together; the page draws one group at a time (label marked with N_)."""

    label: str
    keys: tuple[str, ...]


# A browser spends ~0.1-0.2 s drawing each Plotly chart on a busy 2-core machine: ten charts on every filter change
# took 2 s in Chromium (bench/analytics_browser.py), two or three stay well under the 1 s goal. Every chart is in
# exactly one group (tests/analytics/test_analytics.py checks it).
CHART_GROUPS: dict[str, ChartGroup] = {
    "overview": ChartGroup(N_("Spend and calls"), ("spend_by_day", "calls_by_day")),
    "breakdown": ChartGroup(N_("Spend by page, endpoint, user, tag"),
                            ("spend_by_page", "spend_by_endpoint", "spend_by_user", "spend_by_tag")),
    "speed": ChartGroup(N_("Latency and speed"), ("latency", "ttft", "speed")),
    "tokens": ChartGroup(N_("Tokens and errors"), ("tokens_by_model", "errors")),
}


def figures(d: Dashboard, keys: Iterable[str] | None = None) -> dict[str, go.Figure]:
    """The charts named by `keys` (default: every chart of the page), by their stable key. Built with
    graph_objects: plotly express costs ~50 ms a chart, which alone would spend half of a filter change's
    one-second budget."""
    return {key: _BUILDERS[key](d) for key in (_BUILDERS if keys is None else keys)}


def without_notes(charts: dict[str, go.Figure]) -> tuple[dict[str, go.Figure], dict[str, str]]:
    """The charts with their notes ("No data…", "No spend…") taken out, and the notes by chart key: a page prints
    them as text under the chart, where a narrow column wraps them instead of clipping a line drawn in the plot."""
    notes: dict[str, str] = {}
    for key, fig in charts.items():
        if fig.layout.annotations:
            notes[key] = " ".join(a.text for a in fig.layout.annotations)
            fig.layout.annotations = ()
    return charts, notes

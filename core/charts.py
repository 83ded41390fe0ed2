"""Plotly figures for the Analytics page, built from a Dashboard (plain plotly: testable without Streamlit)."""
from __future__ import annotations

from dataclasses import dataclass

import plotly.express as px
import plotly.graph_objects as go

from core.analytics import Dashboard, Kpis, change
from core.pricing import format_cost

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="", height=320)


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


def kpi_cards(cur: Kpis, prev: Kpis) -> list[KpiCard]:
    """The KPI cards, each with its change versus the previous period of the same length."""
    return [
        KpiCard("Spend", format_cost(cur.spend_usd) if cur.calls else "$0", _delta(cur.spend_usd, prev.spend_usd),
                False),
        KpiCard("Calls", f"{cur.calls:,}", _delta(cur.calls, prev.calls), True),
        KpiCard("Error rate", _pct(cur.error_rate), _delta(cur.error_rate, prev.error_rate), False),
        KpiCard("p50 latency", _fmt_ms(cur.p50_latency_ms), _delta(cur.p50_latency_ms, prev.p50_latency_ms), False),
        KpiCard("p95 latency", _fmt_ms(cur.p95_latency_ms), _delta(cur.p95_latency_ms, prev.p95_latency_ms), False),
        KpiCard("Median TTFT", _fmt_ms(cur.median_ttft_ms), _delta(cur.median_ttft_ms, prev.median_ttft_ms), False),
        KpiCard("Tokens in", f"{cur.input_tokens:,}", _delta(cur.input_tokens, prev.input_tokens), True),
        KpiCard("Tokens out", f"{cur.output_tokens:,}", _delta(cur.output_tokens, prev.output_tokens), True),
        KpiCard("Cache hit rate", _pct(cur.cache_hit_rate), _delta(cur.cache_hit_rate, prev.cache_hit_rate), True),
        KpiCard("Response cache hits", _pct(cur.response_cache_rate),
                _delta(cur.response_cache_rate, prev.response_cache_rate), True),
        KpiCard("Spend / 1k calls", format_cost(cur.spend_per_1k_calls) if cur.calls else "–",
                _delta(cur.spend_per_1k_calls, prev.spend_per_1k_calls), False),
    ]


def _styled(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def figures(d: Dashboard) -> dict[str, go.Figure]:
    """Every chart of the page, by a stable key."""
    calls = d.calls_by_day.melt(id_vars="day", value_vars=["calls", "errors"], var_name="series", value_name="n")
    latency = d.latency_by_day.melt(id_vars="day", value_vars=["p50", "p95", "p99"], var_name="percentile",
                                    value_name="ms")
    tokens = d.tokens_by_model.melt(id_vars="model", value_vars=["input_tokens", "output_tokens"],
                                    var_name="direction", value_name="tokens")
    return {
        "spend_by_day": _styled(px.bar(d.spend_by_day_model, x="day", y="spend_usd", color="model"),
                                "Spend per day by model (USD)"),
        "calls_by_day": _styled(px.line(calls, x="day", y="n", color="series", markers=True), "Calls and errors per day"),
        "latency": _styled(px.line(latency, x="day", y="ms", color="percentile", markers=True),
                           "Latency p50 / p95 / p99 (ms, successful calls)"),
        "ttft": _styled(px.bar(d.ttft_histogram, x="ttft_ms", y="calls", log_x=True),
                        "Time to first token (ms, log scale)"),
        "tokens_by_model": _styled(px.bar(tokens, x="model", y="tokens", color="direction", barmode="group"),
                                   "Tokens in / out by model"),
        "spend_by_page": _styled(px.bar(d.spend_by_page, x="page", y="spend_usd"), "Spend by page (USD)"),
        "spend_by_user": _styled(px.bar(d.spend_by_user, x="user", y="spend_usd"), "Spend by user (USD)"),
        "spend_by_tag": _styled(px.bar(d.spend_by_tag, x="tag", y="spend_usd"), "Spend by tag (USD)"),
        "speed": _styled(px.bar(d.speed_by_model, x="model", y="tokens_per_s"), "Output tokens / s by model (median)"),
        "errors": _styled(px.bar(d.error_types, x="error_type", y="calls"), "Errors by type"),
    }

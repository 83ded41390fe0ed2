"""Aggregations of core.analytics.dashboard against a small, hand-checkable call log."""
from datetime import date, datetime, timezone

import pytest

from core.analytics.charts import CHART_GROUPS, figures, kpi_cards, without_notes
from core.analytics.dashboard import Analytics, Filters, budget_status, change, preset_range, record_details
from core.analytics.pushdown import PushedDownAnalytics, analytics_for
from core.calls.interchange import insert_new
from core.calls.log import CallRecord


def call(rid, ts, cost, latency, ttft, *, status="ok", model="gpt-4o-mini", provider="openai", page="chat",
         user="ana", inp=100, out=10, cached=0, tags=(), error_type=None, estimated=False):
    return CallRecord(request_id=rid, ts=ts, page=page, provider=provider, model_requested=model, model=model,
                      status=status, error_type=error_type, input_tokens=inp, cached_input_tokens=cached,
                      output_tokens=out, reasoning_tokens=0, tokens_estimated=estimated, cost_usd=cost,
                      latency_ms=latency, ttft_ms=ttft, user=user, session="s", tags=list(tags))


SMALL_LOG = [
    call("r1", "2026-11-20T09:00:00.000+00:00", 1.0, 100, 10, inp=100, out=10, cached=50, tags=["a"]),
    call("r2", "2026-11-20T10:00:00.000+00:00", 2.0, 200, 20, model="gpt-4o", page="playground", user="ben",
         inp=200, out=20, tags=["a", "b"]),
    call("r3", "2026-11-20T11:00:00.000+00:00", 0.0, 300, None, status="error", model="gpt-4o",
         error_type="rate_limited", inp=0, out=0),
    call("r4", "2026-11-21T09:00:00.000+00:00", 3.0, 400, 40, user="ben", inp=300, out=30),
    call("r5", "2026-11-21T23:59:59.999+00:00", None, 500, 50, model="llama3.1:8b", provider="compatible",
         inp=10, out=5, estimated=True),
    call("r6", "2026-11-19T12:00:00.000+00:00", 4.0, 1000, 100),  # previous period
]
PERIOD = Filters(date(2026, 11, 20), date(2026, 11, 21))


@pytest.fixture
def analytics(log) -> Analytics:
    insert_new(log, SMALL_LOG)
    engine = analytics_for(log)  # on PostgreSQL: answered by the database's roll-ups; on SQLite: the DuckDB mirror
    assert engine.refresh() == (0 if isinstance(engine, PushedDownAnalytics) else 6)
    return engine


def test_kpis_of_the_period(analytics):
    k = analytics.dashboard(PERIOD).current
    assert (k.calls, k.errors, k.spend_usd) == (5, 1, pytest.approx(6.0))
    assert k.error_rate == pytest.approx(0.2)
    assert k.p50_latency_ms == pytest.approx(300)  # successful calls only: 100, 200, 400, 500
    assert k.p95_latency_ms == pytest.approx(485)  # linear interpolation, like numpy's default
    assert k.median_ttft_ms == pytest.approx(30)
    assert (k.input_tokens, k.output_tokens, k.cached_input_tokens) == (610, 65, 50)
    assert k.cache_hit_rate == pytest.approx(50 / 610)
    assert k.spend_per_1k_calls == pytest.approx(1200)
    assert (k.unpriced_calls, k.estimated_calls) == (1, 1)


def test_previous_period_of_the_same_length(analytics):
    assert PERIOD.previous() == Filters(date(2026, 11, 18), date(2026, 11, 19))
    d = analytics.dashboard(PERIOD)
    assert d.previous.calls == 1 and d.previous.spend_usd == pytest.approx(4.0)
    assert change(d.current.spend_usd, d.previous.spend_usd) == pytest.approx(0.5)
    assert change(1.0, 0) is None
    cards = {c.label: c for c in kpi_cards(d.current, d.previous)}
    assert cards["Spend"].value == "$6.00" and cards["Spend"].delta == "+50.0%" and not cards["Spend"].up_is_good
    assert cards["Calls"].delta == "+400.0%"


def test_series(analytics):
    d = analytics.dashboard(PERIOD, bucket="day")  # two days would be hourly by default
    spend = {(str(r.day)[:10], r.model): r.spend_usd for r in d.spend_by_day_model.itertuples()}
    assert spend[("2026-11-20", "gpt-4o")] == pytest.approx(2.0)
    assert spend[("2026-11-21", "gpt-4o-mini")] == pytest.approx(3.0)
    assert d.calls_by_day[["calls", "errors"]].values.tolist() == [[3, 1], [2, 0]]
    assert d.latency_by_day["p50"].tolist() == pytest.approx([150, 450])
    assert dict(zip(d.spend_by_tag.tag, d.spend_by_tag.spend_usd, strict=True)) == pytest.approx({"a": 3.0, "b": 2.0})
    assert dict(zip(d.spend_by_user.user, d.spend_by_user.spend_usd, strict=True)) == pytest.approx({"ben": 5.0, "ana": 1.0})
    speed = dict(zip(d.speed_by_model.model, d.speed_by_model.tokens_per_s, strict=True))
    assert speed["gpt-4o-mini"] == pytest.approx((100 + 29 / 0.36) / 2)
    assert d.error_types.values.tolist() == [["rate_limited", 1]]
    assert d.ttft_histogram["calls"].sum() == 4
    assert d.unpriced_models == ["llama3.1:8b"]
    assert set(figures(d)) >= {"spend_by_day", "calls_by_day", "latency", "ttft", "tokens_by_model", "spend_by_page",
                               "spend_by_user", "spend_by_tag", "speed", "errors"}
    # The page draws one group at a time: every chart is in exactly one group, and a group builds only its own.
    grouped = [key for group in CHART_GROUPS.values() for key in group.keys]
    assert sorted(grouped) == sorted(figures(d)) and len(grouped) == len(set(grouped))
    assert list(figures(d, CHART_GROUPS["speed"].keys)) == ["latency", "ttft", "speed"]


@pytest.mark.parametrize("filters, calls, spend", [
    (Filters(date(2026, 11, 20), date(2026, 11, 21), users=("ana",)), 3, 1.0),
    (Filters(date(2026, 11, 20), date(2026, 11, 21), tags=("b",)), 1, 2.0),
    (Filters(date(2026, 11, 20), date(2026, 11, 21), models=("gpt-4o",), statuses=("ok",)), 1, 2.0),
    (Filters(date(2026, 11, 21), date(2026, 11, 21)), 2, 3.0),  # the last millisecond of a day is in it
    (Filters(date(2026, 11, 20), date(2026, 11, 21), providers=("compatible",)), 1, 0.0),
    (Filters(date(2026, 11, 20), date(2026, 11, 21), pages=("playground",)), 1, 2.0),
])
def test_filters_change_the_numbers(analytics, filters, calls, spend):
    k = analytics.dashboard(filters).current
    assert k.calls == calls and k.spend_usd == pytest.approx(spend)


def test_calls_page_newest_first_and_paginated(analytics):
    frame, total = analytics.calls_page(PERIOD, page=0, page_size=2)
    assert total == 5 and frame.request_id.tolist() == ["r5", "r4"]
    frame, _ = analytics.calls_page(PERIOD, page=2, page_size=2)
    assert frame.request_id.tolist() == ["r1"]
    assert len(analytics.filtered_frame(PERIOD)) == 5


def test_refresh_is_incremental_and_rebuilds_after_deletes(analytics, log):
    version = analytics.version
    assert analytics.refresh() == 0 and analytics.version == version
    insert_new(log, [call("r7", "2026-11-21T12:00:00.000+00:00", 1.0, 100, 10)])
    copied = analytics.refresh()
    assert copied == (0 if isinstance(analytics, PushedDownAnalytics) else 1)
    assert analytics.version != version and analytics.dashboard(PERIOD).current.calls == 6
    version = analytics.version
    with log.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM calls WHERE request_id IN ('r1', 'r2')")
    analytics.refresh()
    assert analytics.version != version and analytics.dashboard(PERIOD).current.calls == 4
    assert analytics.options()["user"] == ["ana", "ben"] and analytics.options()["tag"] == []


def test_options_list_filter_values(analytics):
    opts = analytics.options()
    assert opts["model"] == ["gpt-4o", "gpt-4o-mini", "llama3.1:8b"] and opts["tag"] == ["a", "b"]
    assert opts["status"] == ["error", "ok"]


def test_presets():
    today = date(2026, 11, 26)
    assert preset_range("Today", today) == (today, today)
    assert preset_range("7 days", today) == (date(2026, 11, 20), today)
    assert preset_range("30 days", today) == (date(2026, 10, 28), today)
    assert preset_range("This month", today) == (date(2026, 11, 1), today)


def daily_spend(log, days: list[tuple[int, float]]):
    insert_new(log, [call(f"b{d}", f"2026-11-{d:02d}T08:00:00.000+00:00", cost, 100, 10) for d, cost in days])
    engine = analytics_for(log)
    engine.refresh()
    return engine


def test_budget_forecast_uses_last_seven_days(log):
    engine = daily_spend(log, [(d, 10.0) for d in range(1, 10)] + [(10, 5.0)])
    status = budget_status(engine, 250.0, now=datetime(2026, 11, 10, 12, tzinfo=timezone.utc))
    assert status.month_to_date_usd == pytest.approx(95)
    assert status.burn_rate_usd_per_day == pytest.approx(10)
    assert status.days_elapsed == pytest.approx(9.5) and status.days_in_month == 30
    assert status.forecast_usd == pytest.approx(95 + 10 * 20.5) and status.over_budget_forecast
    assert status.used_share == pytest.approx(95 / 250)


def test_budget_forecast_early_in_the_month_uses_month_to_date_rate(log):
    engine = daily_spend(log, [(1, 10.0), (2, 10.0), (3, 5.0)])
    status = budget_status(engine, 400.0, now=datetime(2026, 11, 3, 12, tzinfo=timezone.utc))
    assert status.burn_rate_usd_per_day == pytest.approx(25 / 2.5)
    assert status.forecast_usd == pytest.approx(25 + 10 * 27.5) and not status.over_budget_forecast


def test_record_details_spell_out_cost(analytics, log):
    assert record_details(log.get("r5"))["cost_usd"] == "unpriced"
    assert record_details(log.get("r1"))["cost_usd"] == "$1.00"


def test_a_nearly_empty_previous_period_is_not_compared():
    from core.analytics.charts import comparable, kpi_cards
    from core.analytics.dashboard import Kpis
    now, before = Kpis(spend_usd=10.0, calls=1000), Kpis(spend_usd=0.3, calls=3)
    assert not comparable(now, before) and all(card.delta is None for card in kpi_cards(now, before))
    assert comparable(now, Kpis(spend_usd=8.0, calls=900))
    assert any(card.delta for card in kpi_cards(now, Kpis(spend_usd=8.0, calls=900)))


def test_a_one_or_two_day_period_is_shown_by_the_hour(analytics):
    one_day = analytics.dashboard(Filters(date(2026, 11, 20), date(2026, 11, 20)))
    assert one_day.bucket == "hour"
    hours = [str(h)[:16] for h in one_day.calls_by_day["day"]]
    assert hours == ["2026-11-20 09:00", "2026-11-20 10:00", "2026-11-20 11:00"]  # one bucket per hour with calls
    spend = {str(r.day)[:16]: r.spend_usd for r in one_day.spend_by_day_model.itertuples()}
    assert spend["2026-11-20 10:00"] == pytest.approx(2.0)
    assert analytics.dashboard(PERIOD).bucket == "hour"  # two days: still hourly
    assert analytics.dashboard(Filters(date(2026, 11, 19), date(2026, 11, 21))).bucket == "day"


def test_hourly_charts_span_the_whole_day_with_bars_an_hour_wide(analytics):
    charts = figures(analytics.dashboard(Filters(date(2026, 11, 21), date(2026, 11, 21))))
    assert charts["spend_by_day"].layout.title.text == "Spend per hour by model (USD)"
    for key in ("spend_by_day", "calls_by_day", "latency"):
        axis = charts[key].layout.xaxis
        assert axis.dtick == 2 * 3_600_000 and axis.tickformat == "%H:%M", key
        low, high = (str(v)[:16] for v in axis.range)
        assert (low, high) == ("2026-11-21 00:00", "2026-11-22 00:00"), key  # the whole day, not just its calls
    for bar in charts["spend_by_day"].data:  # a lone call is a bar 48 minutes wide on a 24-hour axis
        assert bar.width == pytest.approx(0.8 * 3_600_000)
        assert 0 <= bar.offset and bar.offset + bar.width <= 3_600_000  # inside its hour


def test_a_single_day_bar_is_a_bar_not_a_hairline(analytics):
    one_day = figures(analytics.dashboard(Filters(date(2026, 11, 21), date(2026, 11, 21)), bucket="day"))
    for key in ("spend_by_day", "calls_by_day", "latency"):
        axis = one_day[key].layout.xaxis
        assert axis.dtick == 86_400_000 and axis.tickformat == "%d %b", key  # never "23:59:59.9995"
        low, high = (str(v)[:10] for v in axis.range)
        assert (low, high) == ("2026-11-20", "2026-11-22"), key  # the lone day with a day either side
    bars = one_day["spend_by_day"].data
    assert bars and all(bar.width == pytest.approx(0.8 * 86_400_000) for bar in bars)  # 40 % of the axis
    month = figures(analytics.dashboard(Filters(date(2026, 10, 23), date(2026, 11, 21))))
    assert month["calls_by_day"].layout.xaxis.dtick == 86_400_000  # three days of data: a tick each
    assert all(bar.width == pytest.approx(0.8 * 86_400_000) for bar in month["spend_by_day"].data)


def test_charts_without_spend_or_data_say_so_instead_of_empty_axes(log):
    insert_new(log, [call("f1", "2026-11-20T09:00:00.000+00:00", 0.0, 100, 10, model="local/smollm2",
                          provider="local")])
    engine = analytics_for(log)
    engine.refresh()
    charts = figures(engine.dashboard(PERIOD))
    spend = charts["spend_by_day"].layout
    assert "No spend in this period" in spend.annotations[0].text and tuple(spend.yaxis.range) == (0, 1)
    assert "No data for these filters" in charts["errors"].layout.annotations[0].text  # no errors at all
    assert not charts["calls_by_day"].layout.annotations  # real data: no note
    assert all(f.layout.title.x == 0 and f.layout.title.xanchor == "left" for f in charts.values())
    shown, notes = without_notes(charts)  # the page prints the notes as text under the charts
    assert "No spend in this period" in notes["spend_by_day"] and "No data" in notes["errors"]
    assert "calls_by_day" not in notes and not any(f.layout.annotations for f in shown.values())


def test_by_endpoint_breakdown_and_filter(log):
    """Voice calls land in Analytics by endpoint: their own rows of calls, spend (unpriced counted apart, not $0)
    and latency, and a filter that keeps one endpoint."""
    from dataclasses import replace

    voice_log = [replace(SMALL_LOG[0], request_id="c1"),
                 replace(call("t1", "2026-11-20T12:00:00.000+00:00", 0.0002, 800, None, model="whisper-1"),
                         endpoint="audio.transcriptions"),
                 replace(call("t2", "2026-11-20T12:01:00.000+00:00", None, 600, None, model="whisper-x"),
                         endpoint="audio.transcriptions"),
                 replace(call("s1", "2026-11-20T12:02:00.000+00:00", 0.00015, 300, None, model="tts-1"),
                         endpoint="audio.speech")]
    insert_new(log, voice_log)
    engine = analytics_for(log)
    engine.refresh()
    rows = {r.endpoint: r for r in engine.dashboard(PERIOD).by_endpoint.itertuples()}
    assert set(rows) == {"chat.completions", "audio.transcriptions", "audio.speech"}
    hear = rows["audio.transcriptions"]
    assert (hear.calls, hear.spend_usd, hear.unpriced, hear.p50_latency_ms) == (2, pytest.approx(0.0002), 1, 700)
    assert (rows["audio.speech"].calls, rows["audio.speech"].spend_usd) == (1, pytest.approx(0.00015))
    only = engine.dashboard(Filters(PERIOD.start, PERIOD.end, endpoints=("audio.speech",)))
    assert only.current.calls == 1 and only.current.spend_usd == pytest.approx(0.00015)
    assert "audio.transcriptions" in engine.options()["endpoint"]
    assert "spend_by_endpoint" in figures(engine.dashboard(PERIOD))

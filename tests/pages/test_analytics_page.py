"""AppTest of the Analytics page over a seeded call log."""
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.analytics import dashboard as an
from core.analytics.charts import CHART_GROUPS, figures
from core.analytics.dashboard import set_monthly_budget
from core.base.db import dispose_engine
from core.calls.log import CallLog
from core.calls.synthetic import generate
from tests.conftest import ADMIN, PG_URL, _fresh_pg_schema

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_analytics() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/analytics.py").run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def seeded(app_env):
    log = CallLog(app_env["PROMPTLAB_DB_URL"])
    generate(log, 3000, days=20, seed=4)
    return log


def test_empty_log_offers_demo_data(offline_env):
    at = open_analytics()
    assert "call log is empty" in at.info[0].value
    next(b for b in at.button if b.label.startswith("Generate demo data")).click().run()
    assert not at.exception and metrics(at)["Calls"] != "0"
    assert len(at.get("plotly_chart")) == len(CHART_GROUPS["overview"].keys)  # the first group of charts


def test_kpis_charts_and_filters(seeded):
    at = open_analytics()
    shown = metrics(at)
    assert {"Spend", "Calls", "Error rate", "p50 latency", "p95 latency", "Median TTFT", "Tokens in", "Tokens out",
            "Prompt-cache hit rate (tokens)", "Reply cache hits", "Spend / 1k calls"} <= set(shown)
    assert len(at.get("plotly_chart")) == len(CHART_GROUPS["overview"].keys)
    assert any("unpriced calls" in m.value for m in at.markdown)
    all_calls = int(shown["Calls"].replace(",", ""))
    at.multiselect(key="an_model").set_value(["gpt-4o"]).run()
    only = int(metrics(at)["Calls"].replace(",", ""))
    assert 0 < only < all_calls
    at.selectbox(key="an_period").set_value("Today").run()
    assert int(metrics(at)["Calls"].replace(",", "")) <= only


def test_budget_warning_when_forecast_exceeds(seeded):
    set_monthly_budget(seeded, 1.0, actor=ADMIN)
    at = open_analytics()
    assert "over the $1.00 budget" in at.warning[0].value
    assert "Month-end forecast" in metrics(at)


def test_calls_table_is_paginated_newest_first(seeded):
    at = open_analytics()
    ts = "Time (UTC)"  # the table shows human headers (core/formats/columns.py)
    calls = lambda: next(d.value for d in at.dataframe if ts in d.value.columns)  # noqa: E731
    table = calls()
    assert len(table) == 50 and table[ts].is_monotonic_decreasing
    at.number_input(key="an_calls_page").set_value(2).run()
    assert calls()[ts].iloc[0] <= table[ts].iloc[-1]


def test_calls_made_through_chat_show_up(app_env, server):
    chat = AppTest.from_file(APP, default_timeout=60).run()
    chat.chat_input[0].set_value("count me").run()
    at = open_analytics()
    assert metrics(at)["Calls"] in ("1", "2")  # the chat call (and the model-list call)
    at.multiselect(key="an_page").set_value(["chat"]).run()
    assert metrics(at)["Calls"] == "1"


def drill_into_chat_call(db_url: str, message: str) -> tuple[AppTest, str]:
    """Send a chat message, then open Analytics with that call selected by its request id."""
    AppTest.from_file(APP, default_timeout=60).run().chat_input[0].set_value(message).run()
    request_id = next(r.request_id for r in CallLog(db_url).recent(5) if r.page == "chat")
    at = open_analytics()
    at.text_input(key="an_request_id").input(request_id).run()
    return at, request_id


def test_drill_down_shows_fields_messages_and_reply(app_env, server):
    at, request_id = drill_into_chat_call(app_env["PROMPTLAB_DB_URL"], "show me in the drill-down")
    fields = at.json[0].value
    assert request_id in fields and '"status": "ok"' in fields and '"model": "gpt-4o-mini"' in fields
    assert "show me in the drill-down" in at.json[1].value
    assert at.text[0].value == "Echo: show me in the drill-down"


def test_drill_down_opens_the_call_in_the_playground(app_env, server):
    at, _ = drill_into_chat_call(app_env["PROMPTLAB_DB_URL"], "replay me")
    at.button(key="an_replay").click().run()
    assert not at.exception
    assert at.text_area(key="pg_user").value == "replay me"
    assert at.text_area(key="pg_system").value.startswith("You are a helpful")


def test_model_lists_and_connection_tests_are_counted_apart(seeded):
    from core.analytics.dashboard import pages_shown
    assert pages_shown((), ["chat", "other", "playground"], False) == ("chat", "playground")
    assert pages_shown((), ["chat", "other"], True) == () and pages_shown(("other",), ["chat", "other"], False) == (
        "other",)
    with seeded.engine.connect() as conn:
        import sqlalchemy as sa
        others = conn.execute(sa.text("SELECT count(*) FROM calls WHERE page = 'other' AND ts >= :t"),
                              {"t": "2000"}).scalar()
    at = open_analytics()
    at.selectbox(key="an_period").set_value("Custom").run()
    model_work = int(metrics(at)["Calls"].replace(",", ""))
    at.toggle(key="an_non_model").set_value(True).run()
    everything = int(metrics(at)["Calls"].replace(",", ""))
    assert others > 0 and everything - model_work > 0


def test_demo_data_lands_in_the_default_period_and_says_how_many(offline_env):
    at = open_analytics()
    next(b for b in at.button if b.label.startswith("Generate demo data")).click().run()
    assert any("Generated 5,000 demo calls" in t.value for t in at.toast)
    at.toggle(key="an_non_model").set_value(True).run()
    assert metrics(at)["Calls"] == "5,000"  # every generated call is inside "30 days"


def test_a_budget_already_spent_is_said_before_the_forecast():
    from core.analytics.dashboard import BudgetStatus, budget_warning
    over = BudgetStatus(100.0, 132.0, 10.0, 300.0, 13.2, 30)
    assert budget_warning(over).startswith("This month's spend, $132.00, is 132% of the budget — $32.00 over")
    heading = BudgetStatus(100.0, 50.0, 10.0, 170.0, 5.0, 30)
    assert budget_warning(heading).startswith("At the current burn rate this month ends at $170.00")
    assert budget_warning(BudgetStatus(100.0, 10.0, 1.0, 40.0, 10.0, 30)) is None


def test_a_day_of_offline_calls_reads_by_the_hour_with_the_spend_note_as_text(app_env):
    """Row 12: "Today" is drawn by the hour, and "no spend" is a line of text under the chart, not a Plotly note
    that a narrow column clips."""
    import json
    from datetime import datetime, timezone

    from core.calls.interchange import insert_new
    from core.calls.log import CallRecord
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    insert_new(CallLog(app_env["PROMPTLAB_DB_URL"]), [
        CallRecord(request_id=f"l{i}", ts=now.replace(hour=h).isoformat(timespec="milliseconds"), page="chat",
                   provider="local", model_requested="local/smollm2", model="local/smollm2", status="ok",
                   input_tokens=80, output_tokens=40, cost_usd=0.0, latency_ms=900, ttft_ms=150, user="ana")
        for i, h in enumerate((0, 0, now.hour))])
    at = open_analytics()
    at.selectbox(key="an_period").set_value("Today").run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    spend = next(s for s in specs if "Spend per hour" in s["layout"]["title"]["text"])
    assert not spend["layout"].get("annotations")  # no note drawn inside the figure
    assert [b["width"] for b in spend["data"]] == [0.8 * 3_600_000]  # an hour-wide bar, not a hairline
    assert any("No spend in this period" in c.value for c in at.caption)


def drawn(at: AppTest) -> dict[str, dict]:
    """The Plotly charts the run sent to the browser, by title: what a browser would have to draw."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"]: s for s in specs}


def test_a_filter_change_draws_only_the_chosen_chart_group_and_every_chart_is_one_click_away(seeded):
    """Row 12: a filter change took 2 s in Chromium, most of it drawing ten Plotly charts. The page draws the one
    group of charts in view — after a filter change too — and each chart of the other groups is one choice away,
    with the same figure core.analytics.charts builds for these filters."""
    at = open_analytics()
    assert len(drawn(at)) == len(CHART_GROUPS["overview"].keys)
    start, end = an.preset_range("30 days", datetime.now(timezone.utc).date())
    engine = an.Analytics(seeded)
    engine.refresh()
    dash = engine.dashboard(an.Filters(start, end, pages=an.pages_shown((), engine.options()["page"], False)))
    expected = {fig.layout.title.text: json.loads(fig.to_json()) for fig in figures(dash).values()}
    seen: dict[str, dict] = {}
    for name, group in CHART_GROUPS.items():
        at.button_group(key="an_charts").set_value(name).run()
        charts = drawn(at)
        assert len(charts) == len(group.keys), (name, list(charts))
        seen.update(charts)
    assert set(seen) == set(expected) and len(seen) == 11  # every chart reachable, each in one group
    for title, spec in seen.items():
        assert spec["data"] == expected[title]["data"], title
    at.multiselect(key="an_model").set_value(["gpt-4o"]).run()  # a filter change draws the group in view only
    assert not at.exception
    assert len(drawn(at)) == len(CHART_GROUPS["tokens"].keys)
    assert at.button_group(key="an_charts").value == "tokens"


def test_voice_calls_appear_by_endpoint_with_a_filter(app_env, server):
    """A transcription and a speech call made through core show in the page's by-endpoint table, with their cost
    (or unpriced), and the endpoint filter keeps only them."""
    from core.calls.gate import CallContext
    from core.chat.voice import check_recording, speak, transcribe
    from core.llm.providers import Provider
    from tests.conftest import TEST_KEY
    from tests.loopback_server import tiny_wav

    log = CallLog(app_env["PROMPTLAB_DB_URL"])
    provider = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    transcribe(provider, check_recording(tiny_wav(2.0)), CallContext("chat", "local"), log, model="whisper-1")
    speak(provider, "Hello there", CallContext("chat", "local"), log, model="gpt-4o-mini-tts")
    at = open_analytics()
    [table] = [d.value for d in at.dataframe if {"Endpoint", "Spend"} <= set(d.value.columns)]
    rows = dict(zip(table["Endpoint"], table["Spend"], strict=True))
    assert rows == {"audio.transcriptions": "$0.0002", "audio.speech": "unpriced"}
    calls = [d.value for d in at.dataframe if "Request ID" in d.value.columns][0]
    assert sorted(calls["Endpoint"]) == ["audio.speech", "audio.transcriptions"]  # each call says which API
    at.multiselect(key="an_endpoint").set_value(["audio.speech"]).run()
    assert not at.exception and metrics(at)["Calls"] == "1"


def test_every_call_the_filters_match_can_become_test_cases(app_env, server):
    """Issue 26 point 1: Analytics' "Add to a test set" — the chat calls the filters match become cases of a set's
    next version; the model-list call (no messages) gives none and the sentence says so."""
    from core.evals.store import EvalStore

    chat = AppTest.from_file(APP, default_timeout=60).run()
    for text in ("what is the return window?", "do you ship to Canada?"):
        chat.chat_input[0].set_value(text).run()
    at = open_analytics()
    at.multiselect(key="an_page").set_value(["chat"]).run()
    at.text_input(key="an_set_name").input("from chat").run()
    at.button(key="an_set_add_all").click().run()
    assert not at.exception, at.exception
    assert any("“from chat” v1: 2 new cases" in s.value.replace("\\", "") for s in at.success)
    (version,) = EvalStore(app_env["PROMPTLAB_DB_URL"], viewer="local").set_history("from chat")
    assert sorted(c.vars["input"] for c in version.tests) == ["do you ship to Canada?", "what is the return window?"]
    assert all(c.metadata["source"].startswith("call:req_") for c in version.tests)
    at.button(key="an_set_add_all").click().run()  # the same calls again: the set does not grow
    assert any("“from chat” v2: 0 new cases" in s.value.replace("\\", "") for s in at.success)


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL tests need PROMPTLAB_TEST_PG_URL (.ci/run sets it)")
def test_on_postgresql_the_page_is_answered_by_the_database_and_says_when_it_samples(app_env, monkeypatch):
    """Shared deployments: the page reads PostgreSQL's roll-ups (no copy of the log in the replica); a period too
    large to read whole gets its percentiles from the sample, and the page says so with the sample's size."""
    from core.analytics import pushdown

    url = _fresh_pg_schema()
    monkeypatch.setenv("PROMPTLAB_DB_URL", url)
    log = CallLog(url)
    generate(log, 3000, days=20, seed=4)
    at = open_analytics()
    assert not any("sampled calls" in c.value for c in at.caption) and metrics(at)["Calls"] != "0"
    monkeypatch.setattr(pushdown, "EXACT_UP_TO", -1)  # from now on every period counts as too large to read
    at.selectbox(key="an_period").set_value("7 days").run()  # a filter the page has not cached
    assert not at.exception
    note = next(c.value for c in at.caption if "sampled calls" in c.value)
    assert "one in 8" in note
    engine = pushdown.PushedDownAnalytics(log)
    model_pages = an.pages_shown((), engine.options()["page"], include_non_model=False)
    week = an.Filters(*an.preset_range("7 days", datetime.now(timezone.utc).date()), pages=model_pages)
    assert metrics(at)["Calls"] == f"{engine.kpis(week).calls:,}"  # counts stay exact: the roll-ups
    dispose_engine(url)

"""What-if costs: the same tokens on another model, Batch, Flex and prompt caching, from list prices."""
from __future__ import annotations

import pandas as pd
import pytest

from core.analytics.whatif import scenarios


def test_what_if_scenarios_against_hand_computed_list_prices():
    usage = pd.DataFrame([
        {"provider": "openai", "model": "gpt-5-mini", "input_tokens": 1_000_000, "cached_input_tokens": 200_000,
         "output_tokens": 100_000, "cost_usd": 0.405},
        {"provider": "compatible", "model": "llama", "input_tokens": 10, "cached_input_tokens": 0,
         "output_tokens": 1, "cost_usd": None}])  # not list-priced: left out
    rows = {w.scenario: w.cost_usd for w in scenarios(usage, "gpt-4o-mini")}
    # gpt-5-mini: 0.25 / 0.025 cached / 2.00 per 1M; gpt-4o-mini: 0.15 / 0.075 / 0.60.
    assert rows["As logged"] == pytest.approx(0.405)
    assert rows["List price of these tokens"] == pytest.approx(0.8 * 0.25 + 0.2 * 0.025 + 0.1 * 2.0)
    assert rows["All on gpt-4o-mini"] == pytest.approx(0.8 * 0.15 + 0.2 * 0.075 + 0.1 * 0.60)
    assert rows["Through Batch"] == pytest.approx(rows["List price of these tokens"] / 2)  # Batch: half
    assert rows["On the Flex tier"] < rows["List price of these tokens"]
    assert rows["Prompt caching at 20% reuse"] == pytest.approx(rows["List price of these tokens"])
    assert scenarios(usage[usage["provider"] == "compatible"]) == []


def test_the_analytics_page_shows_the_what_if_table(app_env):
    from core.calls.log import CallLog
    from core.calls.synthetic import generate
    from tests.pages.test_analytics_page import open_analytics
    generate(CallLog(app_env["PROMPTLAB_DB_URL"]), 500, days=10, seed=2)
    at = open_analytics()
    at.selectbox(key="an_whatif_model").set_value("gpt-4o-mini").run()
    table = next(d.value for d in at.dataframe if "Scenario" in d.value.columns)  # a human header
    assert {"As logged", "List price of these tokens", "All on gpt-4o-mini", "Through Batch"} <= set(
        table["Scenario"])

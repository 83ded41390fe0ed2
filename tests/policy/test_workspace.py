"""Workspace settings: one way to load and save every runtime setting, stored as before (old rows still read)."""
from __future__ import annotations

import pytest

from core.analytics import dashboard as analytics
from core.base.db import get_value, set_value
from core.calls import fallback, moderation, ratelimit
from core.calls.log import CallLog
from core.policy.workspace import Workspace
from core.records import privacy
from tests.conftest import ADMIN


@pytest.fixture
def engine(db_url):
    return CallLog(db_url).engine


def test_defaults_when_nothing_is_stored(engine):
    ws = Workspace(engine)
    assert ws.load(privacy.RETENTION) == privacy.Retention()
    assert ws.load(moderation.MODERATION) == moderation.ModerationSettings()
    assert ws.load(analytics.BUDGET) is None and ws.load(fallback.FALLBACK_CHAIN, scope="openai:default") is None
    assert ws.load(ratelimit.RATE_LIMITS, scope="openai:default") == ratelimit.Limits()
    assert privacy.text_policy(engine) == "full"


def test_round_trips_and_unset_values_remove_the_row(engine):
    ws = Workspace(engine)
    ws.save(privacy.RETENTION, privacy.Retention(text_hours=72.0, metrics_days=400.0), actor=ADMIN)
    assert privacy.retention(engine) == privacy.Retention(72.0, 400.0)
    ws.save(analytics.BUDGET, 250.0, actor=ADMIN)
    assert ws.load(analytics.BUDGET) == 250.0 and get_value(engine, "monthly_budget_usd") == "250.0"
    ws.save(analytics.BUDGET, 0.0, actor=ADMIN)  # no budget
    assert get_value(engine, "monthly_budget_usd") is None and ws.load(analytics.BUDGET) is None
    ratelimit.save_limits(engine, "openai", None, ratelimit.Limits(rpm=60), actor=ADMIN)
    assert ratelimit.load_limits(engine, "openai", None) == ratelimit.Limits(rpm=60, tpm=0)
    ratelimit.save_limits(engine, "openai", None, ratelimit.Limits(), actor=ADMIN)
    assert get_value(engine, "rate_limits:openai:default") is None
    fallback.save_chain(engine, "compatible", "http://h:1/v1", "  gpt-4.1-nano, local ", actor=ADMIN)
    assert fallback.saved_chain(engine, "compatible", "http://h:1/v1") == "gpt-4.1-nano, local"
    assert fallback.saved_chain(engine, "openai", None) is None  # scoped per provider


def test_rows_written_by_earlier_versions_still_read(engine):
    """The stored form did not change: values saved before this object existed load as they were."""
    set_value(engine, "retention", '{"text_hours": 24, "metrics_days": null}')
    set_value(engine, "moderation", '{"mode": "input", "fail_open": false}')
    set_value(engine, "monthly_budget_usd", "99.5")
    set_value(engine, "rate_limits:openai:default", '{"rpm": 10, "tpm": 5000}')
    set_value(engine, "fallback:openai:default", "off")
    set_value(engine, "text_policy", "redacted")
    assert privacy.retention(engine) == privacy.Retention(24, None)
    assert moderation.load_moderation(engine) == moderation.ModerationSettings("input", False)
    assert Workspace(engine).load(analytics.BUDGET) == 99.5
    assert ratelimit.load_limits(engine, "openai", None) == ratelimit.Limits(10, 5000)
    assert fallback.saved_chain(engine, "openai", None) == "off"
    assert privacy.text_policy(engine) == "redacted"

"""The workspace's settings are the admins' (core/policy/workspace.py): every setter takes the actor, refuses a plain user
with one sentence whatever page or message called it, and writes an admin's change to the audit log with his name.
A plain user still exports and deletes his own data."""
from __future__ import annotations

import json

import pytest

from core.analytics.dashboard import monthly_budget, set_monthly_budget
from core.calls import fallback, moderation, ratelimit
from core.calls.cache import CachedReply, ResponseCache
from core.calls.log import CallLog, CallRecord, CallTexts
from core.llm import custom_prices
from core.policy.access import Identity
from core.policy.workspace import AdminOnly
from core.records import privacy

BOB = Identity("bob")
ROOT = Identity("root", admin=True)
URL = "http://models.example/v1"

# Each workspace setting: (what a user asks for, how to read the value back).
CHANGES = {
    "text policy": (lambda log, who: privacy.set_text_policy(log.engine, "metadata", actor=who),
                    lambda log: privacy.text_policy(log.engine)),
    "retention": (lambda log, who: privacy.set_retention(log.engine, privacy.Retention(0.001, 0.001), actor=who),
                  lambda log: privacy.retention(log.engine)),
    "budget": (lambda log, who: set_monthly_budget(log, 0.01, actor=who), monthly_budget),
    "rate limits": (lambda log, who: ratelimit.save_limits(log.engine, "compatible", URL, ratelimit.Limits(rpm=1),
                                                           actor=who),
                    lambda log: ratelimit.load_limits(log.engine, "compatible", URL)),
    "fallback chain": (lambda log, who: fallback.save_chain(log.engine, "compatible", URL, "local", actor=who),
                       lambda log: fallback.saved_chain(log.engine, "compatible", URL)),
    "moderation": (lambda log, who: moderation.save_moderation(log.engine, moderation.ModerationSettings("input"),
                                                               actor=who),
                   lambda log: moderation.load_moderation(log.engine)),
    "prices": (lambda log, who: custom_prices.save(log.engine, [custom_prices.CustomPrice(
        provider="compatible", model="m", input_per_mtok=0.0, output_per_mtok=0.0)], actor=who),
               lambda log: custom_prices.stored(log.engine)),
}


@pytest.mark.parametrize("name", CHANGES)
def test_a_plain_user_is_refused_in_core_and_nothing_changes(log, name):
    change, read = CHANGES[name]
    before = read(log)
    with pytest.raises(AdminOnly) as refused:
        change(log, BOB)
    assert refused.value.kind == "admin_only" and refused.value.message == (
        "Only an admin can change this: it applies to everyone using this workspace.")
    assert read(log) == before and privacy.audit_log(log.engine) == []


@pytest.mark.parametrize("name", CHANGES)
def test_an_admins_change_is_kept_and_audited_with_his_name(log, name):
    change, read = CHANGES[name]
    before = read(log)
    change(log, ROOT)
    assert read(log) != before
    line = next(a for a in privacy.audit_log(log.engine) if a["action"] == "setting")
    assert line["actor"] == "root" and json.loads(line["detail"])["to"] is not None


def test_the_audit_line_says_what_a_setting_was_and_became(log):
    set_monthly_budget(log, 100.0, actor=ROOT)
    set_monthly_budget(log, None, actor=ROOT)
    details = [json.loads(a["detail"]) for a in privacy.audit_log(log.engine) if a["subject"] == "monthly_budget_usd"]
    assert sorted(details, key=str) == [{"from": "100.0", "to": None}, {"from": None, "to": "100.0"}]


def seed_alice(log: CallLog) -> None:
    log.write(CallRecord(request_id="alice-1", ts="2026-01-01T00:00:00.000+00:00", page="chat", provider="compatible",
                         model_requested="m", user="alice", input_tokens=1, output_tokens=1),
              CallTexts({"messages": [{"role": "user", "content": "alice's private plan"}]}, "ok"))


def test_a_plain_user_cannot_clear_everyones_cache_or_run_retention_over_alices_rows(log, db_url, tmp_path):
    seed_alice(log)
    cache = ResponseCache(db_url)
    cache.put("k1", "compatible", "m", CachedReply("cached", "stop", 1, 1), "alice")
    with pytest.raises(AdminOnly):
        cache.clear(actor=BOB)
    with pytest.raises(AdminOnly):
        privacy.set_retention(log.engine, privacy.Retention(text_hours=0.001, metrics_days=0.001), actor=BOB)
    privacy.enforce_retention(log.engine, tmp_path)  # the hourly worker: the policy is still "forever"
    assert cache.stats()[0] == 1 and log.texts_for("alice-1", "alice") is not None
    assert cache.clear(actor=ROOT) == 1
    assert [(a["actor"], a["action"]) for a in privacy.audit_log(log.engine)] == [("root", "cache_clear")]


def test_a_plain_user_still_exports_and_deletes_his_own_data_only(log):
    seed_alice(log)
    assert privacy.export_user(log.engine, "bob", actor="bob")  # his own: allowed, audited
    with pytest.raises(PermissionError):
        privacy.delete_user(log.engine, "alice", actor="bob")
    assert privacy.delete_user(log.engine, "bob", actor="bob")["calls"] == 0
    assert log.get("alice-1") is not None
    assert {a["actor"] for a in privacy.audit_log(log.engine, viewer="bob")} == {"bob"}
    assert privacy.audit_log(log.engine, viewer="alice") == []  # bob's requests name bob, not her

"""The Settings page in a shared deployment (PROMPTLAB_USERS=alice,bob,root, PROMPTLAB_ADMINS=root, a server key):
each attack of issue 23's rows 1, 4, 5 and 6 replayed as bob, a plain user, through the page (AppTest); then root,
the admin, does the same and every change is in the audit log under his name. Widgets a plain user may not use are
drawn disabled, and the tests click them anyway, as a hand-crafted browser message would (`forged`): Streamlit drops
such a value, and the core setters refuse a plain user whatever reaches them (tests/pages/test_admin_settings.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from core.analytics.dashboard import monthly_budget
from core.calls import ratelimit
from core.calls.cache import CachedReply, ResponseCache
from core.calls.fallback import saved_chain
from core.calls.log import CallLog
from core.calls.moderation import load_moderation
from core.chat.store import ConversationStore
from core.formats.columns import label
from core.records import privacy
from tests.conftest import TEST_KEY
from tests.loopback_server import LoopbackServer, Script
from tests.policy.test_access import USERS, sign_in

APP = str(Path(__file__).resolve().parents[2] / "app.py")
METRICS_TEXT = b"# HELP promptlab_calls_total Calls\n# TYPE promptlab_calls_total counter\npromptlab_calls_total 3\n"


@pytest.fixture
def named(app_env, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_USERS", ",".join(f"{n}:{h}" for n, h in USERS.items()))
    monkeypatch.setenv("PROMPTLAB_ADMINS", "root")
    import core.policy.access
    import pages._access
    monkeypatch.setattr(core.policy.access, "LIMITER", core.policy.access.AttemptLimiter())
    monkeypatch.setattr(pages._access, "LIMITER", core.policy.access.LIMITER)
    return app_env


@pytest.fixture
def bobs_server():
    """A server bob runs on this machine; it records every request and the key that came with it."""
    own = LoopbackServer(api_key=None).start()
    yield own
    own.stop()


def settings_as(name: str) -> AppTest:
    at = sign_in(AppTest.from_file(APP, default_timeout=60).run(), name, f"{name} pw")
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    return at


def field(at: AppTest, label: str):
    return next(t for t in at.text_input if t.label == label)


def switch_provider(at: AppTest, url: str, key: str = "", kind: str | None = None) -> None:
    if kind is not None:
        next(s for s in at.selectbox if s.label == "Provider").set_value(kind)
    field(at, "Base URL / Azure endpoint").input(url)
    if key:
        field(at, "API key").input(key)
    next(b for b in at.button if b.label == "Apply").click().run()


def press_test_connection(at: AppTest) -> None:
    next(b for b in at.button if "Test connection" in b.label).click().run()


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def forged(widget):
    """A widget the page drew disabled, changed anyway: what a hand-crafted browser message does."""
    widget.proto.disabled = False
    return widget


def authorization(request: dict) -> str:
    return next((v for k, v in request["headers"].items() if k.lower() == "authorization"), "")


# ----- row 1: the server's key never leaves for a URL a user chose ----------------------------------------------

def test_bobs_own_url_with_the_key_left_empty_never_gets_the_servers_key(named, server, bobs_server, monkeypatch):
    # His server is allow-listed here (as if it were on the internet): this test is about the key, row 6 the address.
    monkeypatch.setenv("PROMPTLAB_ALLOWED_BASE_URLS", bobs_server.base_url)
    bob = settings_as("bob")
    switch_provider(bob, bobs_server.base_url)  # key field empty: "leave empty to keep the current key"
    assert not errors(bob) and "uses the provider set below" in bob.info[0].value
    press_test_connection(bob)
    assert "8 models listed" in bob.success[0].value
    bob.switch_page("pages/chat.py").run()
    bob.chat_input[0].set_value("hello from bob").run()
    assert not bob.exception
    assert [r["path"] for r in bobs_server.requests][-1] == "/v1/chat/completions"  # the chat went to his server
    assert all(TEST_KEY not in str(r["headers"]) for r in bobs_server.requests)  # and never with the server's key
    assert not [r for r in server.requests if r["path"] == "/v1/chat/completions"]


def test_bob_switching_to_openai_elsewhere_must_type_his_own_key(named, server, bobs_server, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_ALLOWED_BASE_URLS", bobs_server.base_url)
    bob = settings_as("bob")
    switch_provider(bob, bobs_server.base_url, kind="openai")
    assert "Type a key for this endpoint" in errors(bob)
    assert not bob.info  # nothing applied: the configured provider is still in use
    press_test_connection(bob)
    assert bobs_server.requests == []
    switch_provider(bob, bobs_server.base_url, key="sk-bobs-own-key-123456", kind="openai")
    press_test_connection(bob)
    assert [authorization(r) for r in bobs_server.requests] == ["Bearer sk-bobs-own-key-123456"]


def test_root_may_switch_with_the_servers_key(named, server):
    root = settings_as("root")
    switch_provider(root, "http://127.0.0.1:9/v1")  # anywhere, with the server's key: an admin's choice ...
    assert not errors(root) and "uses the provider set below" in root.info[0].value
    line = privacy.audit_log(CallLog(named["PROMPTLAB_DB_URL"]).engine)[0]  # ... on the record
    assert (line["actor"], line["action"], json.loads(line["detail"])["endpoint"]) == (
        "root", "provider_switch", "http://127.0.0.1:9/v1")
    switch_provider(root, server.base_url + "/")  # the configured endpoint, spelled differently: not audited
    press_test_connection(root)
    assert "8 models listed" in root.success[0].value
    assert len(privacy.audit_log(CallLog(named["PROMPTLAB_DB_URL"]).engine)) == 1


# ----- row 6: no requests to loopback, link-local or private addresses; odd answers are one sentence -------------

def test_bobs_test_connection_to_loopback_or_metadata_is_refused_and_nothing_is_sent(named, server, bobs_server):
    bob = settings_as("bob")
    for url, shown in [(bobs_server.base_url, "127.0.0.1"), ("http://169.254.169.254/latest/meta-data", "169.254")]:
        switch_provider(bob, url, key="sk-bobs-own-key-123456")
        assert "not on the public internet" in errors(bob) and shown in errors(bob)
        press_test_connection(bob)  # still the configured provider
        assert "8 models listed" in bob.success[0].value
    assert bobs_server.requests == []


def test_a_model_list_that_is_not_json_is_one_sentence_on_the_page(named, server):
    bob = settings_as("bob")
    for body, kind in [(METRICS_TEXT, "text/plain; version=0.0.4"), (b"<html>nginx</html>", "text/html"),
                       (b'{"data": 5}', "application/json")]:
        server.push(Script(path="/v1/models", raw_body=body, content_type=kind))
        press_test_connection(bob)
        assert not bob.exception
        assert [e.value for e in bob.error] == ["The server sent a response that is not valid OpenAI JSON: check "
                                                "that the base URL points at an OpenAI-compatible API."]


# ----- rows 4 and 5: the workspace's settings are the admins' ----------------------------------------------------

@pytest.fixture
def alices_data(named, server):
    """Alice has a conversation, a call with its texts and a cached reply."""
    alice = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "alice", "alice pw")
    alice.chat_input[0].set_value("alice's private plan").run()
    log = CallLog(named["PROMPTLAB_DB_URL"])
    request_id = next(r.request_id for r in log.recent(10) if r.page == "chat" and r.user == "alice")
    ResponseCache(named["PROMPTLAB_DB_URL"]).put("k1", "compatible", "gpt-4o-mini",
                                                 CachedReply("cached", "stop", 3, 1), "alice")
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(timespec="milliseconds")
    with log.engine.begin() as conn:  # written an hour ago: older than any retention bob could set
        conn.execute(sa.text("UPDATE calls SET ts = :t"), {"t": an_hour_ago})
        conn.execute(sa.text("UPDATE conversations SET updated_at = :t"), {"t": an_hour_ago})
        conn.execute(sa.text("UPDATE response_cache SET created_at = :t"), {"t": an_hour_ago})
    return log, request_id, alice.session_state.conversation.id


def test_bob_cannot_empty_everyones_history_with_retention_or_the_text_policy(alices_data, named):
    log, request_id, conv_id = alices_data
    bob = settings_as("bob")
    forged(bob.radio(key="text_policy")).set_value("metadata").run()
    forged(bob.number_input(key="retention_text_hours")).set_value(0.001)
    forged(bob.number_input(key="retention_metrics_days")).set_value(0.001)
    forged(bob.button(key="save_retention")).click().run()
    assert log.get(request_id) is not None and log.texts_for(request_id, "alice") is not None
    assert ConversationStore(named["PROMPTLAB_DB_URL"]).load(conv_id) is not None
    assert privacy.retention(log.engine) == privacy.Retention() and privacy.text_policy(log.engine) == "full"
    assert not bob.success and not bob.exception
    # Read-only for him: the values are shown, the widgets disabled, and the page says why.
    assert bob.number_input(key="retention_text_hours").disabled and bob.radio(key="text_policy").disabled
    assert any("Only an admin can change the settings below" in c.value for c in bob.caption)


def test_bob_cannot_clear_the_cache_or_set_budget_limits_fallback_or_moderation(alices_data, named, server):
    log, _, _ = alices_data
    cache = ResponseCache(named["PROMPTLAB_DB_URL"])
    bob = settings_as("bob")
    forged(bob.button(key="clear_cache")).click().run()
    assert cache.stats()[0] == 1
    forged(bob.number_input(key="monthly_budget")).set_value(0.01)
    forged(next(b for b in bob.button if b.label == "Save budget")).click().run()
    assert monthly_budget(log) is None
    forged(bob.number_input(key="limit_rpm")).set_value(1)
    forged(bob.button(key="save_limits")).click().run()
    assert ratelimit.load_limits(log.engine, "compatible", server.base_url) == ratelimit.Limits()
    forged(bob.text_input(key="fallback_chain")).input("local")
    forged(bob.button(key="save_chain")).click().run()
    assert saved_chain(log.engine, "compatible", server.base_url) is None
    forged(bob.selectbox(key="moderation_mode")).set_value("input").run()
    assert load_moderation(log.engine).mode == "off"
    assert not bob.success and not bob.exception
    for key in ("monthly_budget", "limit_rpm", "limit_tpm"):
        assert bob.number_input(key=key).disabled
    assert bob.button(key="clear_cache").disabled and bob.text_input(key="fallback_chain").disabled


def test_root_changes_every_workspace_setting_and_each_is_audited_with_his_name(alices_data, named, server):
    log, _, _ = alices_data
    root = settings_as("root")
    assert not root.number_input(key="retention_text_hours").disabled
    root.number_input(key="monthly_budget").set_value(50.0)
    root.button(key="save_budget").click().run()
    root.button(key="clear_cache").click().run()
    root.number_input(key="limit_rpm").set_value(600)
    root.button(key="save_limits").click().run()
    root.text_input(key="fallback_chain").input("gpt-4.1-nano, local")
    root.button(key="save_chain").click().run()
    root.selectbox(key="moderation_mode").set_value("input").run()
    root.radio(key="text_policy").set_value("redacted").run()
    root.number_input(key="retention_metrics_days").set_value(400.0)
    root.button(key="save_retention").click().run()
    assert not root.error and not root.exception
    assert monthly_budget(log) == 50.0 and ResponseCache(named["PROMPTLAB_DB_URL"]).stats()[0] == 0
    assert ratelimit.load_limits(log.engine, "compatible", server.base_url).rpm == 600
    assert saved_chain(log.engine, "compatible", server.base_url) == "gpt-4.1-nano, local"
    assert load_moderation(log.engine).mode == "input" and privacy.text_policy(log.engine) == "redacted"
    assert privacy.retention(log.engine) == privacy.Retention(metrics_days=400.0)
    audited = {(a["actor"], a["action"], a["subject"]) for a in privacy.audit_log(log.engine)}
    scope = ratelimit.provider_key("compatible", server.base_url)
    assert {("root", "setting", "monthly_budget_usd"), ("root", "cache_clear", None),
            ("root", "setting", f"rate_limits:{scope}"), ("root", "setting", f"fallback:{scope}"),
            ("root", "setting", "moderation"),
            ("root", "setting", "text_policy"), ("root", "setting", "retention")} <= audited
    # Bob's audit view holds only the lines about him: root's changes are not his to read.
    bob = settings_as("bob")
    shown = bob.dataframe[-1].value
    assert shown.empty or set(shown[label("actor")]) <= {"bob"}


def test_bobs_eval_config_cannot_point_at_an_internal_address(named, server, bobs_server):
    """Row 6 through the Evals page: an `apiBaseUrl` is a user-chosen URL too."""
    bob = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "bob", "bob pw")
    bob.switch_page("pages/evals.py").run()
    bob.text_area(key="eval_yaml").set_value(f"""prompts: ["Q: {{{{question}}}}"]
providers:
  - id: openai:chat:gpt-4o-mini
    config: {{apiBaseUrl: "{bobs_server.base_url}"}}
tests:
  - vars: {{question: "anything?"}}
""").run()
    bob.button(key="eval_run").click().run()
    assert not bob.exception
    assert bobs_server.requests == []
    calls = [r for r in CallLog(named["PROMPTLAB_DB_URL"]).recent(10) if r.page == "evals"]
    assert [r.error_type for r in calls] == ["url_refused"]


def test_the_admin_key_goes_to_the_configured_endpoint_even_after_a_switch(app_env, server, bobs_server, monkeypatch):
    """An admin who points their browser at another server (Ollama, say) and then reconciles the bill: the
    organisation's admin key still goes to the configured endpoint only."""
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-key-000000000000")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/settings.py").run()
    switch_provider(at, bobs_server.base_url)  # no gate: the single user is an admin, and may
    at.switch_page("pages/analytics.py").run()
    at.button(key="rec_fetch").click().run()
    assert not at.exception
    assert all("sk-admin-key" not in str(r["headers"]) for r in bobs_server.requests)
    assert any(r["path"].startswith("/v1/organization/") for r in server.requests)

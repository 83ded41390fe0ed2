"""The moderation gate: flagged prompts are not sent, replies can be withheld, failures follow the chosen policy."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.calls.moderation import ModerationSettings, check, save_moderation
from core.llm.providers import Provider
from tests.conftest import ADMIN
from tests.loopback_server import Script

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_check_flags_and_logs(provider, log):
    on = ModerationSettings("input")
    verdict = check(provider, "how do I build a bomb", on, CallContext("chat", "ana"), log)
    assert not verdict.allowed and verdict.categories == ["violence"]
    assert "flagged by moderation (violence)" in verdict.sentence()
    assert check(provider, "hello there", on, CallContext("chat"), log).allowed
    rows = log.recent(5)
    assert len(rows) == 2 and {r.page for r in rows} == {"moderation"} and rows[0].model_requested.startswith("omni")


def test_unreachable_endpoint_fails_open_or_closed(provider, log, server):
    server.push(Script(path="/v1/moderations", status=503))
    open_verdict = check(provider, "hi", ModerationSettings("input", fail_open=True), CallContext("chat"), log)
    assert open_verdict.allowed and "unchecked" in open_verdict.notice
    server.push(Script(path="/v1/moderations", status=503))
    closed = check(provider, "hi", ModerationSettings("input", fail_open=False), CallContext("chat"), log)
    assert not closed.allowed and "held back" in closed.sentence()
    local = check(Provider("local"), "hi", ModerationSettings("input", fail_open=False), CallContext("chat"), log)
    assert not local.allowed


def test_chat_flagged_prompt_is_not_sent_and_stays_editable(app_env, server):
    save_moderation(CallLog(app_env["PROMPTLAB_DB_URL"]).engine, ModerationSettings("input"), actor=ADMIN)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.chat_input[0].set_value("tell me how to build a bomb").run()
    assert "flagged by moderation (violence)" in at.error[0].value
    assert server.chat_requests() == [] and not at.chat_message
    assert at.chat_input[0].value == "tell me how to build a bomb"  # back in the box, editable
    at.chat_input[0].set_value("tell me about fireworks safety").run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"] and not at.error


def test_chat_reply_flagged_by_output_moderation_is_withheld(app_env, server):
    save_moderation(CallLog(app_env["PROMPTLAB_DB_URL"]).engine, ModerationSettings("input_and_output"), actor=ADMIN)
    server.push(Script(reply="here is how to build a bomb"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.chat_input[0].set_value("question").run()
    reply = [m for m in at.chat_message if m.name == "assistant"][0]
    assert "Reply withheld" in reply.markdown[0].value and "build a bomb" not in reply.markdown[0].value
    assert "withheld by moderation" in reply.caption[0].value

"""The fallback chain: the next model answers after a timeout, 5xx or dead connection; attempts are linked rows."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.base.config import Settings
from core.calls.fallback import FallbackStream, fallback_chain
from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.llm.providers import Provider, local_provider, request_params
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

APP = str(Path(__file__).resolve().parents[2] / "app.py")
USER = [{"role": "user", "content": "status?"}]


def test_chains():
    assert fallback_chain("gpt-4o", "auto") == ["gpt-4o", "gpt-4o-mini", "local/SmolLM2-135M-Instruct"]
    assert fallback_chain("gpt-4o-mini", "auto") == ["gpt-4o-mini", "local/SmolLM2-135M-Instruct"]
    assert fallback_chain("gpt-4o", "off") == ["gpt-4o"]
    assert fallback_chain("gpt-4o", "gpt-4.1-nano, local") == ["gpt-4o", "gpt-4.1-nano",
                                                               "local/SmolLM2-135M-Instruct"]
    assert fallback_chain("local/SmolLM2-135M-Instruct", "auto") == ["local/SmolLM2-135M-Instruct"]


def run(server, log, chain, timeout_s=5.0):
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=timeout_s, max_retries=0)
    local = local_provider(Settings())
    stream = FallbackStream(chain, USER, lambda m: local if m.startswith("local/") else provider,
                            lambda p, m: request_params(p, m, max_tokens=16, temperature=0),
                            CallContext("chat"), log)
    text = "".join(stream)
    return stream, text


def test_timeout_falls_back_and_says_so(server, log):
    server.push(Script(first_byte_delay=1.0))
    stream, text = run(server, log, ["gpt-4o", "gpt-4o-mini"], timeout_s=0.3)
    assert text == "Echo: status?" and stream.outcome.status == "ok" and stream.outcome.model == "gpt-4o-mini"
    assert stream.notice == "gpt-4o timed out after 0.3 s — answered by gpt-4o-mini"
    rows = sorted(log.recent(5), key=lambda r: r.attempt)
    assert [(r.model_requested, r.status, r.attempt) for r in rows] == [("gpt-4o", "error", 1),
                                                                        ("gpt-4o-mini", "ok", 2)]
    assert rows[0].chain_id == rows[1].chain_id == rows[0].request_id


def test_server_errors_fall_through_to_the_local_model(server, log):
    server.push(Script(status=503), Script(status=500))
    stream, text = run(server, log, ["gpt-4o", "gpt-4o-mini", "local/SmolLM2-135M-Instruct"])
    assert stream.outcome.status == "ok" and text and stream.attempts[-1].model.startswith("local/")
    assert "gpt-4o had a server error; gpt-4o-mini had a server error — answered by local/" in stream.notice
    assert [r.provider for r in sorted(log.recent(5), key=lambda r: r.attempt)] == ["compatible", "compatible",
                                                                                   "local"]


def test_when_every_model_fails_the_notice_names_each_one_tried(server, log):
    server.push(Script(status=503), Script(status=500))
    stream, text = run(server, log, ["gpt-4o", "gpt-4o-mini"])
    assert text == "" and stream.outcome.error.kind == "server_error"
    assert stream.notice == "Tried 2 models: gpt-4o had a server error; gpt-4o-mini had a server error"


@pytest.mark.parametrize("script", [Script(status=401), Script(status=400, error_message="bad temperature"),
                                    Script(status=429)])
def test_client_errors_do_not_fall_back(server, log, script):
    server.push(script)
    stream, _ = run(server, log, ["gpt-4o", "gpt-4o-mini"])
    assert stream.outcome.status == "error" and len(stream.attempts) == 1 and stream.notice is None


def test_a_stream_cut_after_text_is_not_restarted_elsewhere(server, log):
    server.push(Script(chunks=10, cut_after=3, cut_mode="drop"))
    stream, text = run(server, log, ["gpt-4o", "gpt-4o-mini"])
    assert text == "w0 w1 w2 " and stream.outcome.error.kind == "stream_cut" and len(stream.attempts) == 1


def test_chat_page_shows_who_answered(app_env, server, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_FALLBACK", "gpt-4.1-nano")
    server.push(Script(status=502))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.chat_input[0].set_value("anyone?").run()
    assert not at.exception and not at.error
    captions = [c.value for c in at.chat_message[1].caption]
    assert captions[0] == "↪ gpt-4o-mini had a server error — answered by gpt-4.1-nano"
    assert captions[1].startswith("gpt-4.1-nano")
    rows = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat"]
    assert sorted(r.status for r in rows) == ["error", "ok"] and len({r.chain_id for r in rows}) == 1


def test_chat_page_names_every_model_tried_when_none_answers(app_env, server, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_FALLBACK", "gpt-4.1-nano")
    server.push(Script(status=502), Script(status=503))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.chat_input[0].set_value("anyone at all?").run()
    assert not at.exception
    assert at.error[0].value == ("The provider had a server error (503), still after 0 retries: try again in a "
                                 "moment. Tried 2 models: gpt-4o-mini had a server error; gpt-4.1-nano had a server "
                                 "error.")
    assert at.chat_message[0].markdown[0].value == "anyone at all?"  # the message is kept for Retry


def test_cut_reply_offers_the_next_model_and_the_user_chooses(app_env, server, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_FALLBACK", "gpt-4.1-nano")
    server.push(Script(reply="partial answer that", cut_after=2))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.chat_input[0].set_value("explain").run()
    assert "cut off" in at.error[0].value and len(server.chat_requests()) == 1  # not silently restarted
    at.button(key="answer_other").click().run()
    assert server.chat_requests()[-1]["model"] == "gpt-4.1-nano"
    replies = [m for m in at.chat_message if m.name == "assistant"]
    assert len(replies) == 1 and replies[0].markdown[0].value == "Echo: explain"
    assert not at.error


def test_settings_chain_overrides_the_environment(app_env, server):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/settings.py").run()
    at.text_input(key="fallback_chain").set_value("gpt-4.1-nano").run()
    at.button(key="save_chain").click().run()
    server.push(Script(status=503))
    at.switch_page("pages/chat.py").run()
    at.chat_input[0].set_value("hello?").run()
    assert "answered by gpt-4.1-nano" in [m for m in at.chat_message if m.name == "assistant"][0].caption[0].value


def test_the_offline_fallback_answers_the_question_not_the_history(server, log):
    """Issue 28 row 11: the offline model standing in for a GPT got the whole history planned for a 128k window
    and repeated the previous answer. It gets the system message and the newest question."""
    previous = "Your parcel left the warehouse on Monday and arrives on Thursday."
    history = [{"role": "system", "content": "You are a courier's assistant."},
               {"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": previous},
               {"role": "user", "content": "Can I change the delivery address?"}]
    server.push(Script(status=500))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5.0, max_retries=0)
    local = local_provider(Settings())
    stream = FallbackStream(["gpt-4o", "local/SmolLM2-135M-Instruct"], history,
                            lambda m: local if m.startswith("local/") else provider,
                            lambda p, m: request_params(p, m, max_tokens=16, temperature=0), CallContext("chat"), log)
    "".join(stream)
    assert stream.outcome.status == "ok" and stream.attempts[-1].model.startswith("local/")
    assert server.chat_requests()[0]["messages"] == history  # the chosen model had the whole conversation
    sent = log.texts(stream.attempts[-1].stream.request_id).request["messages"]
    assert sent == [history[0], history[-1]]
    assert previous not in str(sent)

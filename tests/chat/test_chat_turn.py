"""A chat turn as one call into core (core/chat/turn.py), against the loopback server through the real SDK, with a
real call log and conversation store: saved before the call, streamed, recorded, saved after; Stop, errors, the
waiting hooks, and tool calls answered with `role: "tool"` turns so the model goes on."""
from __future__ import annotations

import json

import pytest

from core.calls.gate import CallHooks
from core.chat import conversation as chat
from core.chat.store import ConversationStore
from core.chat.turn import ChatServices, ChatTurn, TurnSettings, submit
from core.llm.providers import Provider
from core.records import report
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

TOOLS = json.dumps([{"name": "lookup_order", "parameters": {"type": "object", "properties": {
    "order": {"type": "string"}}, "required": ["order"]}}, {"name": "refund", "parameters": {"type": "object"}}])


@pytest.fixture
def services(server, log, db_url, ctx) -> ChatServices:
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    return ChatServices(provider=provider, provider_for=lambda m: provider, context_window=lambda m: 128_000,
                        log=log, context=ctx, store=ConversationStore(db_url), user="tester")


def settings(**kw) -> TurnSettings:
    return TurnSettings(**{"model": "gpt-4o-mini", "temperature": 0.0, "max_tokens": 64, **kw})


def asked(text: str, services: ChatServices, **kw) -> chat.Conversation:
    conv = chat.new_conversation(None, "You are terse.")
    assert submit(conv, text, settings(**kw), services).refusal is None
    return conv


def test_a_turn_saves_the_question_first_then_streams_records_and_saves_the_reply(server, services, log):
    conv = asked("Hello there", services)
    turn = ChatTurn(conv, settings(), services)
    stored = services.store.load(conv.id, "tester")
    assert stored.reply_pending and stored.messages[-1].content == "Hello there"  # before any token
    assert "".join(turn) == "Echo: Hello there"
    result = turn.close()
    assert result.error is None and not conv.reply_pending
    reply = services.store.load(conv.id, "tester").messages[-1]
    assert reply.role == "assistant" and reply.content == "Echo: Hello there" and reply.metrics.input_tokens
    assert [r.status for r in log.recent(5)] == ["ok"]


def test_stop_keeps_the_partial_reply_marked_stopped(server, services, log):
    server.push(Script(chunks=50, chunk_delay=0.05))
    conv = asked("count", services)
    with ChatTurn(conv, settings(), services) as turn:
        next(iter(turn))
    assert conv.messages[-1].status == "stopped" and conv.messages[-1].content.startswith("w0")
    assert services.store.load(conv.id, "tester").messages[-1].status == "stopped"
    assert log.recent(1)[0].status == "cancelled"


def test_a_failure_keeps_the_question_with_its_sentence_for_retry(server, services):
    server.push(Script(status=400, error_message="bad request"))
    conv = asked("hello", services)
    with ChatTurn(conv, settings(), services) as turn:
        assert list(turn) == []
    assert turn.result.error and chat.awaiting_reply(conv)
    stored = services.store.load(conv.id, "tester")
    assert stored.error == turn.result.error and chat.pending_notice(stored) == turn.result.error


def test_the_waiting_hooks_travel_as_one_value_to_the_gate(server, services):
    server.push(Script(first_byte_delay=1.2))
    waited: list[float] = []
    conv = asked("slow?", services)
    with ChatTurn(conv, settings(), services, hooks=CallHooks(on_waiting=waited.append)) as turn:
        assert "".join(turn) == "Echo: slow?"
    assert waited and max(waited) >= 0.5


def test_refusals_add_nothing(services):
    conv = chat.new_conversation(None, "")
    assert submit(conv, "   ", settings(), services).refusal == "The message is empty: type something to send."
    refused = submit(conv, "hi", settings(tools_json="[{"), services).refusal
    assert refused.startswith("The tools are not valid JSON") and conv.messages == []


def test_two_tool_calls_in_pieces_are_answered_and_the_model_goes_on(server, services, log):
    server.push(Script(tool_calls=[{"name": "lookup_order", "arguments": '{"order": "A-17"}'},
                                   {"name": "refund", "arguments": '{"order": "A-17", "why": "late"}'}]))
    conv = asked("Where is A-17?", services, tools_json=TOOLS)
    with ChatTurn(conv, settings(tools_json=TOOLS), services) as turn:
        assert "".join(turn) == ""
    first = server.chat_requests()[-1]
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup_order", "refund"]
    calls = chat.pending_tool_calls(conv)
    assert [(c["id"], c["name"], c["arguments"]) for c in calls] == [
        ("call_loopback", "lookup_order", '{"order": "A-17"}'),
        ("call_loopback_2", "refund", '{"order": "A-17", "why": "late"}')]

    with pytest.raises(ValueError, match="result for every tool call"):
        chat.answer_tool_calls(conv, ['{"status": "shipped"}', " "])
    chat.answer_tool_calls(conv, ['{"status": "shipped"}', "refunded"])
    server.push(Script(reply="It shipped and was refunded."))
    with ChatTurn(conv, settings(tools_json=TOOLS), services) as turn:
        assert "".join(turn) == "It shipped and was refunded."
    sent = server.chat_requests()[-1]["messages"]
    assert sent[1] == {"role": "user", "content": "Where is A-17?"}
    assert sent[2]["role"] == "assistant" and sent[2]["content"] is None
    assert [c["id"] for c in sent[2]["tool_calls"]] == ["call_loopback", "call_loopback_2"]
    assert sent[2]["tool_calls"][1]["function"] == {"name": "refund", "arguments": '{"order": "A-17", "why": "late"}'}
    assert sent[3:] == [{"role": "tool", "tool_call_id": "call_loopback", "content": '{"status": "shipped"}'},
                        {"role": "tool", "tool_call_id": "call_loopback_2", "content": "refunded"}]

    reloaded = services.store.load(conv.id, "tester")
    assert [m.role for m in reloaded.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert reloaded.messages[1].tool_calls == conv.messages[1].tool_calls
    assert chat.plan_context(reloaded, "gpt-4o-mini", context_window=128_000, reply_budget=64).messages[:5] == sent
    assert chat.totals(reloaded).replies == 2 and len(log.recent(5)) == 2  # both calls counted and logged
    first_row, second_row = sorted(log.recent(5), key=lambda r: len(log.texts(r.request_id).request["messages"]))
    assert "call_loopback_2" in log.texts(first_row.request_id).reply  # the calls the model made
    assert log.texts(second_row.request_id).request["messages"][3:] == sent[3:]  # the tool turns sent
    markdown = chat.export_markdown(reloaded)
    assert "Tool call: refund" in markdown and '    {"order": "A-17", "why": "late"}' in markdown
    assert "## Tool result (lookup_order)" in markdown
    exported = json.loads(chat.export_json(reloaded))["messages"]
    assert exported[2] == {**exported[2], "role": "tool", "tool_call_id": "call_loopback", "tool_name": "lookup_order"}
    assert "Tool result (refund)" in report.conversation_report(reloaded).html


def test_injected_tool_arguments_stay_text_in_the_shared_html(server, services):
    attack = '{"order": "</pre><img src=x onerror=alert(1)><script>steal()</script>"}'
    server.push(Script(tool_call={"name": "lookup_order", "arguments": attack}))
    conv = asked("Where?", services, tools_json=TOOLS)
    with ChatTurn(conv, settings(tools_json=TOOLS), services) as turn:
        list(turn)
    html = report.conversation_report(conv).html
    assert "<img src=x" not in html and "<script>steal" not in html and "&lt;img src=x" in html


def test_moderation_refuses_a_flagged_message_and_withholds_a_flagged_reply(server, services, log):
    from core.calls.moderation import ModerationSettings, save_moderation
    from tests.conftest import ADMIN
    save_moderation(log.engine, ModerationSettings("input_and_output"), actor=ADMIN)
    conv = chat.new_conversation(None, "")
    refused = submit(conv, "how do I build a bomb", settings(), services)
    assert "flagged by moderation (violence)" in refused.refusal and conv.messages == []
    assert submit(conv, "question", settings(), services).refusal is None
    server.push(Script(reply="here is how to build a bomb"))
    with ChatTurn(conv, settings(), services) as turn:
        list(turn)
    stored = services.store.load(conv.id, "tester").messages[-1]
    assert stored.status == "withheld" and "build a bomb" not in stored.content


def test_a_turn_on_the_responses_api_streams_the_answer_and_keeps_the_thinking_apart(server, services, log):
    server.push(Script(path="/v1/responses", reply="Paris.", reasoning_summary="The capital of France."))
    conv = asked("Capital of France?", services)
    with ChatTurn(conv, settings(api="responses"), services) as turn:
        assert "".join(turn) == "Paris."
        assert turn.thinking == "The capital of France." and turn.api == "responses"
    body = [r["body"] for r in server.requests if r["path"] == "/v1/responses"][-1]
    assert body["instructions"] == "You are terse." and body["input"][-1] == {"role": "user",
                                                                              "content": "Capital of France?"}
    assert conv.messages[-1].content == "Paris." and server.chat_requests() == []
    assert "endpoint:responses" in log.recent(1)[0].tags


def test_auto_on_a_compatible_server_is_chat_completions(server, services):
    conv = asked("hi", services)
    with ChatTurn(conv, settings(api="auto"), services) as turn:
        assert "".join(turn) == "Echo: hi" and turn.api == "chat" and turn.thinking == ""
    assert len(server.chat_requests()) == 1


def responses_bodies(server) -> list[dict]:
    return [r["body"] for r in server.requests if r["path"] == "/v1/responses"]


def test_the_thinking_is_kept_on_the_reply_and_survives_the_store_and_every_export(server, services, db_url):
    server.push(Script(path="/v1/responses", reply="Paris.", reasoning_summary="Recall the capital.",
                       reasoning_tokens=5))
    conv = asked("Capital of France?", services)
    with ChatTurn(conv, settings(api="responses"), services) as turn:
        list(turn)
    reply = ConversationStore(db_url).load(conv.id, "tester").messages[-1]  # read back as a reload would
    assert (reply.content, reply.thinking) == ("Paris.", "Recall the capital.")
    assert reply.metrics.reasoning_tokens == 5 and "5 reasoning" in chat.turn_caption(reply)
    assert reply.response_id and reply.response_id.startswith("resp_")
    assert json.loads(chat.export_json(conv))["messages"][-1]["thinking"] == "Recall the capital."
    markdown = chat.export_markdown(conv)
    assert "<details><summary>Thinking</summary>" in markdown
    assert markdown.index("Recall the capital.") < markdown.index("Paris.")  # above the answer
    page = report.conversation_report(conv).html
    assert '<details class="thinking"><summary>Thinking</summary>' in page and "Recall the capital." in page
    assert "<details open" not in page  # collapsed
    user = ConversationStore(db_url).load(conv.id, "tester").messages[0]
    assert user.thinking is None and "thinking" not in user.to_dict()  # other turns' stored form unchanged


def test_without_server_side_state_the_whole_history_goes_and_nothing_is_stored(server, services):
    conv = asked("first", services)
    with ChatTurn(conv, settings(api="responses"), services) as turn:
        list(turn)
    submit(conv, "second", settings(), services)
    with ChatTurn(conv, settings(api="responses"), services) as turn:
        assert "".join(turn) == "Echo: second"
    body = responses_bodies(server)[-1]
    assert body["store"] is False and "previous_response_id" not in body
    assert [i.get("role") for i in body["input"]] == ["user", "assistant", "user"]


def test_server_side_state_sends_only_the_new_input_with_the_previous_response_id(server, services, log):
    conv = asked("My name is Ada.", services)
    with ChatTurn(conv, settings(api="responses", server_state=True), services) as turn:
        list(turn)
    first_id = conv.messages[-1].response_id
    assert responses_bodies(server)[-1]["store"] is True and first_id
    submit(conv, "What is my name?", settings(), services)
    with ChatTurn(conv, settings(api="responses", server_state=True), services) as turn:
        assert "".join(turn) == "Echo: What is my name?"
    body = responses_bodies(server)[-1]
    assert body["previous_response_id"] == first_id and body["store"] is True
    assert body["input"] == [{"role": "user", "content": "What is my name?"}]  # only the new turn
    assert body["instructions"] == "You are terse."  # instructions are never carried over by the server
    # the server billed the stored conversation as input: more than the new turn alone
    rows = log.recent(2)
    assert rows[0].status == "ok" and rows[0].input_tokens > rows[1].input_tokens
    assert conv.messages[-1].note is None


def test_an_expired_previous_response_is_answered_from_the_full_history_once_and_says_so(server, services, log):
    conv = asked("first", services)
    with ChatTurn(conv, settings(api="responses"), services) as turn:  # stored false: its id cannot be continued
        list(turn)
    submit(conv, "second", settings(), services)
    with ChatTurn(conv, settings(api="responses", server_state=True), services) as turn:
        assert "".join(turn) == "Echo: second"
    result = turn.close()
    assert result.error is None
    tried, resent = responses_bodies(server)[-2:]
    assert tried["previous_response_id"] == conv.messages[1].response_id
    assert "previous_response_id" not in resent and len(resent["input"]) == 3 and resent["store"] is True
    assert "full history was sent" in conv.messages[-1].note
    assert [r.status for r in log.recent(2)] == ["ok", "error"]  # the refused call has its row
    assert log.recent(2)[1].error_type == "previous_response_not_found"


def test_a_responses_only_model_on_a_server_without_responses_says_so_and_keeps_the_text(server, services, log):
    server.push(Script(path="/v1/responses", status=404, error_message="Not Found"))
    conv = asked("Plan my week", services)
    with ChatTurn(conv, settings(model="o1-pro", api="auto"), services) as turn:  # auto, a compatible server
        assert "".join(turn) == ""
    result = turn.close()
    assert server.chat_requests() == [] and len(responses_bodies(server)) == 1  # auto asked /responses
    assert "no Responses API" in result.error and "o1-pro" in result.error and "\n" not in result.error
    assert conv.messages[-1].content == "Plan my week" and conv.error == result.error  # the text stays, Retry
    row = log.recent(1)[0]
    assert (row.status, row.error_type) == ("error", "no_responses")


def test_forcing_responses_on_a_server_without_it_names_the_way_out(server, services, log):
    server.push(Script(path="/v1/responses", status=404, error_message="Not Found"))
    conv = asked("hello", services)
    with ChatTurn(conv, settings(api="responses"), services) as turn:
        list(turn)
    assert "choose Chat Completions" in turn.close().error
    assert conv.messages[-1].content == "hello" and log.recent(1)[0].status == "error"

"""Tool calls that continue and the service tier, through the gate against the loopback server with the real SDK:
the model calls a tool, the user's result goes back as a `role: "tool"` turn, the model goes on."""
from __future__ import annotations

import pytest

from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.llm.pricing import cost_usd
from core.llm.providers import Provider
from core.playground.codegen import python_code
from core.playground.draft import Draft, PlaygroundError, RunSettings, build_params, messages_for, replay_draft
from core.playground.matrix import CellResult, CellSpec, prepare_cell, record_result
from core.playground.tools import continue_with_tool_results, validate_tools
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

TOOLS = validate_tools('[{"name": "lookup_order", "parameters": {"type": "object", "properties": '
                       '{"order": {"type": "string"}}, "required": ["order"]}}]')


def run(provider: Provider, draft: Draft, log) -> CellResult:
    cell = prepare_cell(CellSpec("draft", draft.model, draft.settings.temperature, 1), draft, provider)
    result = CellResult(spec=cell.spec)
    stream = ChatStream(provider, ChatRequest(draft.model, cell.messages, cell.params), CallContext("playground"),
                        log)
    "".join(stream)
    record_result(cell, result, stream)
    return result


def test_a_tool_call_is_answered_and_the_model_goes_on_for_two_rounds(server, log, provider):
    draft = Draft("gpt-4o-mini", "You are terse.", "Where is order {{order}}?", {"order": "A-17"},
                  RunSettings(tools=TOOLS))
    server.push(Script(tool_call={"name": "lookup_order", "arguments": '{"order": "A-17"}'}))
    first = run(provider, draft, log)
    assert first.status == "ok" and first.finish_reason == "tool_calls"
    assert [c["name"] for c in first.tool_calls] == ["lookup_order"]

    going_on = continue_with_tool_results(draft, first.text, first.tool_calls, ['{"status": "shipped"}'])
    server.push(Script(tool_call={"name": "lookup_order", "arguments": '{"order": "A-18"}'}))
    second = run(provider, going_on, log)
    sent = server.chat_requests()[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "You are terse."}
    assert sent[1] == {"role": "user", "content": "Where is order A-17?"}
    assert sent[2]["role"] == "assistant" and sent[2]["tool_calls"][0]["id"] == "call_loopback"
    assert sent[2]["tool_calls"][0]["function"] == {"name": "lookup_order", "arguments": '{"order": "A-17"}'}
    assert sent[3] == {"role": "tool", "tool_call_id": "call_loopback", "content": '{"status": "shipped"}'}
    assert len(sent) == 4  # the user message is not sent twice
    assert second.tool_calls  # a second round

    final = continue_with_tool_results(going_on, second.text, second.tool_calls, ['{"status": "lost"}'])
    server.push(Script(reply="A-17 shipped, A-18 is lost."))
    third = run(provider, final, log)
    sent = server.chat_requests()[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_loopback", "content": '{"status": "lost"}'}
    assert third.status == "ok" and third.text == "A-17 shipped, A-18 is lost." and not third.tool_calls
    # "View code" shows the conversation as it goes on, tool turns included
    code = python_code(provider, "gpt-4o-mini", sent, build_params(provider, "gpt-4o-mini", final.settings))
    assert "'tool_call_id': 'call_loopback'" in code and "'role': 'tool'" in code
    # a replayed continued call sends the same conversation, in its order
    replayed = replay_draft(log.texts(third_id(log)).request)
    assert messages_for(replayed) == sent
    # the continued draft survives the library's checks (saved and reloaded)
    assert Draft.checked(final.to_dict()).history == final.history


def third_id(log) -> str:
    return log.recent(1)[0].request_id


def test_every_tool_call_needs_a_result(provider):
    draft = Draft("gpt-4o-mini", "", "hi", settings=RunSettings(tools=TOOLS))
    calls = [{"id": "c1", "name": "lookup_order", "arguments": "{}"}]
    with pytest.raises(PlaygroundError, match="result for every tool call"):
        continue_with_tool_results(draft, "", calls, ["  "])


def test_service_tier_is_sent_logged_and_priced_at_its_rate(server, log):
    provider = Provider("openai", server.base_url, TEST_KEY, max_retries=0)  # OpenAI's price list
    draft = Draft("gpt-5-mini", "", "hello there", settings=RunSettings(service_tier="flex", max_tokens=100))
    server.push(Script(reply="four words of reply"))  # a response that does not say which tier served it
    cell = prepare_cell(CellSpec("draft", draft.model, None, 1), draft, provider)
    stream = ChatStream(provider, ChatRequest(draft.model, cell.messages, cell.params), CallContext("playground"),
                        log)
    "".join(stream)
    assert server.chat_requests()[-1]["service_tier"] == "flex"
    assert log.texts(stream.request_id).request["service_tier"] == "flex"
    usage = stream.outcome.usage
    flex = cost_usd(usage, "gpt-5-mini", "openai", {"service_tier": "flex"})
    assert flex is not None and flex < cost_usd(usage, "gpt-5-mini", "openai")
    assert log.get(stream.request_id).cost_usd == pytest.approx(flex)
    # a replayed call keeps its tier
    assert replay_draft(log.texts(stream.request_id).request).settings.service_tier == "flex"

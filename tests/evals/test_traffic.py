"""Issue 26 point 1: test cases from real traffic — calls that went through the gate to the loopback server, and
chat turns — with where each came from, the user's thumbs and note, and the text policy honoured."""
from __future__ import annotations

import uuid

import pytest

from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.calls.log import TEXT_POLICY, CallLog, CallRecord, CallTexts
from core.evals import config as cases_io  # its tests_* names would be collected as tests if imported bare
from core.evals.traffic import cases_from_conversation, import_calls
from core.llm.providers import Provider
from core.policy.workspace import Workspace
from tests.conftest import ADMIN, TEST_KEY


def call(server, log, messages, user="alice") -> str:
    provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", messages), CallContext("chat", user), log)
    "".join(stream)
    return stream.request_id


def test_a_logged_call_becomes_a_case_with_its_input_history_reply_and_source(server, log):
    request_id = call(server, log, [{"role": "system", "content": "You sell shoes."},
                                    {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                    {"role": "user", "content": "What is the return window?"}])
    result = import_calls(log, [request_id], user="alice")
    (case,) = result.cases
    assert case.vars["input"] == "What is the return window?" and '"Hello!"' in case.vars["history"]
    assert case.metadata["source"] == f"call:{request_id}" and case.metadata["system_prompt"] == "You sell shoes."
    assert case.metadata["reference_output"] == "Echo: What is the return window?"
    (proposal,) = case.assertions
    assert proposal.type == "llm-rubric" and "Echo: What is the return window?" in proposal.value
    # It survives the promptfoo formats a test set is exported in, metadata included.
    assert cases_io.tests_from_yaml(cases_io.tests_to_yaml([case]))[0] == case
    back = cases_io.tests_from_csv(cases_io.tests_to_csv([case]))[0]
    assert back.metadata["source"] == f"call:{request_id}" and back.vars == case.vars


def test_someone_elses_calls_and_calls_without_texts_give_no_case(server, log):
    mine = call(server, log, [{"role": "user", "content": "mine"}])
    theirs = call(server, log, [{"role": "user", "content": "bob's secret question"}], user="bob")
    Workspace(log.engine).save(TEXT_POLICY, "metadata", actor=ADMIN)
    fresh = CallLog(log.engine.url.render_as_string(hide_password=False))  # the policy as a new process reads it
    no_texts = call(server, fresh, [{"role": "user", "content": "not kept"}])
    result = import_calls(fresh, [mine, theirs, no_texts, "req_absent"], user="alice")
    assert [c.vars["input"] for c in result.cases] == ["mine"] and result.skipped == 3
    assert [c.vars["input"] for c in import_calls(fresh, [theirs], user="root", admin=True).cases] == [
        "bob's secret question"]


def test_a_redacted_log_yields_redacted_cases(server, log):
    Workspace(log.engine).save(TEXT_POLICY, "redacted", actor=ADMIN)
    redacting = CallLog(log.engine.url.render_as_string(hide_password=False))
    request_id = call(server, redacting, [{"role": "user", "content": "Mail jane.doe@example.com about order 7"}])
    (case,) = import_calls(redacting, [request_id], user="alice").cases
    text = str(case.to_config())
    assert "jane.doe@example.com" not in text and "[EMAIL" in case.vars["input"]
    turns = [{"role": "user", "content": "Call me on jane.doe@example.com"},
             {"role": "assistant", "content": "Sure, jane.doe@example.com", "rating": "down", "note": "leaks"}]
    (turn,) = cases_from_conversation(turns, "c1", text_policy="redacted")
    assert "jane.doe@example.com" not in str(turn.to_config())


def test_a_conversations_turns_carry_thumbs_and_notes_and_a_disliked_reply_is_what_to_avoid():
    turns = [{"role": "system", "content": "Be brief."},
             {"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "30 days.", "rating": "up"},
             {"role": "user", "content": "And gift cards?"},
             {"role": "assistant", "content": "Sure, anything goes.", "rating": "down", "note": "wrong: no refunds"}]
    liked, disliked = cases_from_conversation(turns, "conv-9", model="gpt-4o-mini")
    assert (liked.vars["input"], liked.metadata["rating"], liked.metadata["source"]) == ("Refund?", "up",
                                                                                          "conv-9#2".join(
                                                                                              ["conversation:", ""]))
    assert disliked.metadata | {"source": None} == {
        "source": None, "model": "gpt-4o-mini", "rating": "down", "note": "wrong: no refunds",
        "system_prompt": "Be brief.", "reference_output": "Sure, anything goes."}
    assert "rejected answer (wrong: no refunds)" in disliked.assertions[0].value
    assert cases_from_conversation(turns, "conv-9", model="gpt-4o-mini", turns=[4]) == [disliked]


def test_ten_thousand_calls_are_read_a_page_at_a_time(log):
    ids = []
    rows = []
    for i in range(10_000):
        request_id = f"req_{uuid.uuid4().hex}"
        ids.append(request_id)
        rows.append((CallRecord(request_id=request_id, ts="2026-12-01T10:00:00.000+00:00", page="chat",
                                provider="openai", model_requested="gpt-4o-mini", user="alice"),
                     CallTexts({"messages": [{"role": "user", "content": f"question {i}"}]}, f"answer {i}")))
    for record, texts in rows:
        log.write(record, texts)
    queries = []
    original = log.texts_page

    def counted(chunk, user, admin=False):
        queries.append(len(chunk))
        return original(chunk, user, admin)

    log.texts_page = counted
    result = import_calls(log, ids, user="alice")
    assert len(result.cases) == 10_000 and result.cases[-1].vars["input"] == "question 9999"
    assert len(queries) == 20 and max(queries) == 500


def test_two_versions_of_a_test_set_diff_by_source_or_variables():
    from core.evals.assertions import Assertion
    from core.evals.config import TestCase
    from core.evals.store import diff_sets

    typed = TestCase(vars={"q": "refund?"}, assertions=[Assertion(type="contains", value="30")])
    traffic = TestCase(vars={"input": "hi"}, metadata={"source": "call:req_1"})
    edited = TestCase(vars={"input": "hi (edited)"}, metadata={"source": "call:req_1"})  # same source, new text
    stricter = TestCase(vars={"q": "refund?"}, assertions=[Assertion(type="contains", value="30 days")])
    new = TestCase(vars={"q": "gift cards?"})
    diff = diff_sets([typed, traffic], [stricter, edited, new])
    assert diff.added == [new] and diff.removed == [] and diff.changed == [(typed, stricter), (traffic, edited)]
    assert diff_sets([typed], [typed]).unchanged and diff_sets([typed], []).removed == [typed]


def test_adding_traffic_to_a_set_makes_its_next_version_once_per_source_and_respects_owners(server, log, db_url):
    from core.evals.store import EvalStore, TestSetRefused, diff_sets

    first = call(server, log, [{"role": "user", "content": "first"}])
    second = call(server, log, [{"role": "user", "content": "second"}])
    alice = EvalStore(db_url, viewer="alice")
    v1, added = alice.add_to_set("from traffic", import_calls(log, [first], user="alice").cases, "alice")
    assert (v1.version, added, v1.shared) == (1, 1, False)
    v2, added = alice.add_to_set("from traffic", import_calls(log, [first, second], user="alice").cases, "alice")
    assert (v2.version, added, [c.vars["input"] for c in v2.tests]) == (2, 1, ["first", "second"])
    assert [c.vars["input"] for c in diff_sets(v1.tests, v2.tests).added] == ["second"]
    bob = EvalStore(db_url, viewer="bob")
    with pytest.raises(TestSetRefused):  # not his set (and he cannot read it while it is private)
        bob.add_to_set("from traffic", import_calls(log, [second], user="alice", admin=True).cases, "bob")

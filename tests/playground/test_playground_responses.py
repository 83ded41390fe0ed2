"""The Playground on the Responses API: compare cells run on the draft's API choice (auto or forced) and keep
which API ran, the reasoning summary and the code of their request; OpenAI's built-in tools (web / file search) go
only where they run, and their calls are kept and costed. Loopback server, real SDK."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.calls.gate import CallContext
from core.llm.providers import Provider
from core.playground.codegen import python_code
from core.playground.draft import Draft, PlaygroundError, RunSettings, build_params, builtin_tools_off
from core.playground.matrix import (
    CellResult,
    MatrixRun,
    expand_matrix,
    prepare_cell,
    results_from_json,
    results_to_json,
)
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

PATH = "/v1/responses"


def draft(**settings) -> Draft:
    return Draft(model="gpt-4o-mini", system="Be brief.", user_template="Capital of {{country}}?",
                 variables={"country": "France"}, settings=RunSettings(temperature=None, **settings))


def run_matrix(cells, log):
    run = MatrixRun(cells, CallContext("playground", tags=["run:api"]), log, 2).start()
    assert run.wait(30)
    return run


def test_compare_cells_run_on_the_drafts_api_and_say_which(server, log):
    openai_like = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    compatible = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    server.push(Script(path=PATH, reply="Paris.", reasoning_summary="Recall the capital."))
    specs = expand_matrix(["v1"], ["o4-mini"], [None], 1)
    auto_openai = [prepare_cell(s, draft(), openai_like) for s in specs]  # auto on OpenAI: Responses
    auto_compatible = [prepare_cell(s, draft(), compatible) for s in specs]  # auto elsewhere: Chat Completions
    forced_chat = [prepare_cell(s, draft(api="chat"), openai_like) for s in specs]
    run = run_matrix(auto_openai + auto_compatible + forced_chat, log)
    assert [r.api for r in run.results] == ["responses", "chat", "chat"]
    assert [c.api for c in run.cells] == ["responses", "chat", "chat"]
    first = run.results[0]
    assert (first.text, first.thinking) == ("Paris.", "Recall the capital.")
    assert len([r for r in server.requests if r["path"] == PATH]) == 1 and len(server.chat_requests()) == 2
    assert first.row()["api"] == "responses"  # the table's column
    again = results_from_json(results_to_json(run.results))  # a saved run keeps it
    assert [r.api for r in again] == ["responses", "chat", "chat"] and again[0].thinking == "Recall the capital."
    cell = run.cells[0]
    code = python_code(cell.provider, cell.spec.model, cell.messages, cell.params, api=cell.api)
    assert "client.responses.create(" in code and "instructions='Be brief.'" in code
    assert "client.chat.completions.create(" in python_code(
        run.cells[1].provider, "o4-mini", run.cells[1].messages, run.cells[1].params, api=run.cells[1].api)


def test_a_cell_saved_before_has_no_api_and_reads_back_unchanged():
    old = {"spec": {"version": "v1", "model": "m", "temperature": 0.0, "repeat": 1}, "text": "x", "status": "ok",
           "finish_reason": "stop", "error": None, "schema_valid": None, "schema_error": None, "tool_calls": []}
    cell = CellResult.from_dict(old)
    assert cell.api is None and cell.thinking == "" and cell.to_dict().keys() == CellResult.from_dict(
        cell.to_dict()).to_dict().keys()
    assert "api" not in cell.to_dict() and "thinking" not in cell.to_dict()


@pytest.mark.parametrize("kind, api, said", [
    ("local", "auto", "offline model"), ("compatible", "responses", "compatible server"),
    ("openai", "chat", "Responses API"), ("openai", "auto", None), ("azure", "responses", None)])
def test_built_in_tools_run_only_on_the_responses_api_of_openai_and_azure(kind, api, said):
    reason = builtin_tools_off(kind, api, "gpt-4o")
    assert (reason is None) if said is None else (said in reason)


def test_built_in_tools_are_sent_where_they_run_and_file_search_needs_a_vector_store(server):
    openai_like = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    compatible = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    settings = RunSettings(builtin_tools=["web_search", "file_search"], vector_store_ids=["vs_1"])
    assert build_params(openai_like, "gpt-4o", settings)["tools"] == [
        {"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]
    assert "tools" not in build_params(compatible, "gpt-4o", settings)  # never sent where it cannot run
    assert "tools" not in build_params(openai_like, "gpt-4o", replace(settings, api="chat"))
    with pytest.raises(PlaygroundError, match="vector store"):
        build_params(openai_like, "gpt-4o", replace(settings, vector_store_ids=[]))


def test_a_cell_with_web_search_shows_the_search_its_links_and_its_fee(server, log):
    openai_like = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    spec = expand_matrix(["v1"], ["gpt-4o"], [None], 1)[0]
    cell = prepare_cell(spec, draft(builtin_tools=["web_search"]), openai_like)
    result = run_matrix([cell], log).results[0]
    assert [(c["type"], c["query"]) for c in result.builtin_calls] == [("web_search_call", "Capital of France?")]
    assert result.citations[0]["url"] == "https://example.com/loopback-source"
    assert result.tool_fees_usd == pytest.approx(0.01) and not result.tool_fees_estimated
    row = log.recent(1)[0]
    assert row.cost_usd == pytest.approx(result.metrics.cost_usd) and row.cost_usd > 0.01  # tokens + the fee


def test_a_compare_report_says_which_api_ran_and_folds_the_thinking():
    from core.playground.library import SavedRun
    from core.playground.matrix import CellSpec
    from core.records import report
    cell = CellResult(spec=CellSpec("v1", "o4-mini", None, 1), text="Paris.", status="ok", api="responses",
                      thinking="Recall the capital.",
                      builtin_calls=[{"type": "web_search_call", "query": "capital", "status": "completed"}])
    page = report.compare_report(SavedRun("", "run-1", "2026-12-05T07:00:00", [cell])).html
    assert '<details class="thinking"><summary>Thinking</summary>' in page and "Recall the capital." in page
    assert "responses" in page and "[web_search_call: capital]" in page


def test_an_imported_draft_with_non_text_built_in_tools_is_refused():
    with pytest.raises(ValueError, match="built-in tools"):
        Draft.checked({"model": "gpt-4o", "settings": {"builtin_tools": [{"type": "web_search"}]}})

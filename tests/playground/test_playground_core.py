"""core.playground.draft / _tools / _matrix / _compare, core.playground.library, core.playground.codegen: unit tests and matrix runs against the loopback server."""
import json
import time

import pytest

from core.calls.gate import CallContext
from core.calls.metrics import CallMetrics
from core.llm.providers import Provider
from core.llm.tokens import count_messages
from core.playground.codegen import curl_command, python_code
from core.playground.compare import compare_runs, diff_html, stability_summary, word_diff
from core.playground.draft import (
    Draft,
    PlaygroundError,
    RunSettings,
    build_params,
    check_json_output,
    fill_template,
    messages_for,
    replay_draft,
    template_variables,
    unsupported_controls,
    validate_schema,
)
from core.playground.library import PromptLibrary
from core.playground.matrix import CellResult, CellSpec, MatrixRun, PreparedCell, estimate_cost, expand_matrix
from core.playground.tools import check_tool_call, validate_tools
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

TOOLS_JSON = json.dumps([{"type": "function", "function": {
    "name": "lookup_order", "description": "Find an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"]}}}])


def test_templates():
    assert template_variables("Hi {{name}}, order {{ order }} for {{name}}") == ["name", "order"]
    assert fill_template("Hi {{name}}!", {"name": "Ana"}) == "Hi Ana!"
    with pytest.raises(PlaygroundError, match=r"\{\{order\}\}"):
        fill_template("{{order}}", {})
    draft = Draft("gpt-4o", "sys", "Q: {{q}}", {"q": "why?"})
    assert messages_for(draft) == [{"role": "system", "content": "sys"}, {"role": "user", "content": "Q: why?"}]
    with pytest.raises(PlaygroundError):
        messages_for(Draft("gpt-4o", "only system"))


def test_matrix_expansion():
    cells = expand_matrix(["v1", "v2"], ["a", "b", "c"], [0.0, 1.0], 3)
    assert len(cells) == 36 and cells[0] == CellSpec("v1", "a", 0.0, 1) and cells[2].repeat == 3
    assert len({c.config for c in cells}) == 12
    with pytest.raises(PlaygroundError):
        expand_matrix(["v1"], [], [0.0], 1)
    with pytest.raises(PlaygroundError):
        expand_matrix(["v1"], ["a"], [0.0], 11)


def test_cost_estimate_counts_input_and_max_output():
    msgs = [{"role": "user", "content": "hello world"}]
    cells = [(CellSpec("v", "gpt-4o-mini", 0, 1), msgs, 100), (CellSpec("v", "gpt-4o", 0, 1), msgs, 100),
             (CellSpec("v", "mystery", 0, 1), msgs, 100)]
    est = estimate_cost(cells, count_messages, lambda m: "openai")
    n = count_messages(msgs, "gpt-4o")
    assert est.input_tokens == 3 * n and est.max_output_tokens == 300 and est.unpriced_cells == 1
    expected = n * 0.15e-6 + 100 * 0.6e-6 + n * 2.5e-6 + 100 * 10e-6
    assert est.max_cost_usd == pytest.approx(expected)


def test_tool_and_schema_validation():
    tools = validate_tools(TOOLS_JSON)
    assert tools[0]["function"]["name"] == "lookup_order"
    with pytest.raises(PlaygroundError, match="not valid JSON"):
        validate_tools("[{")
    with pytest.raises(PlaygroundError, match="not a valid JSON Schema"):
        validate_tools(json.dumps({"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": 5}}}}))
    with pytest.raises(PlaygroundError, match="function name"):
        validate_tools(json.dumps({"parameters": {}}))
    args, err = check_tool_call({"name": "lookup_order", "arguments": '{"order_id": "A1"}'}, tools)
    assert args == {"order_id": "A1"} and err is None
    assert "required" in check_tool_call({"name": "lookup_order", "arguments": "{}"}, tools)[1]
    assert "not declared" in check_tool_call({"name": "other", "arguments": "{}"}, tools)[1]
    assert "not JSON" in check_tool_call({"name": "lookup_order", "arguments": "{oops"}, tools)[1]
    schema = validate_schema('{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}')
    assert check_json_output('{"n": 3}', schema) == (True, None)
    valid, error = check_json_output('{"n": "three"}', schema)
    assert not valid and error.startswith("n:")
    assert check_json_output("not json", None)[0] is False
    with pytest.raises(PlaygroundError):
        validate_schema('{"type": 12}')


def test_controls_follow_the_model():
    assert "temperature" in unsupported_controls("openai", "o3-mini")
    assert "reasoning_effort" not in unsupported_controls("openai", "gpt-5")
    assert "reasoning_effort" in unsupported_controls("openai", "gpt-4o")
    assert "tools" in unsupported_controls("local", "local/SmolLM2-135M-Instruct")
    s = RunSettings(temperature=0.3, top_p=0.9, seed=7, stop=["END"], reasoning_effort="low",
                 tools=validate_tools(TOOLS_JSON), tool_choice="lookup_order", response_format="json_object")
    openai_p = Provider("openai", api_key="k")
    p = build_params(openai_p, "gpt-4o", s)
    assert p["temperature"] == 0.3 and p["seed"] == 7 and p["stop"] == ["END"] and "reasoning_effort" not in p
    assert p["tool_choice"] == {"type": "function", "function": {"name": "lookup_order"}}
    assert p["response_format"] == {"type": "json_object"} and p["max_completion_tokens"] == 512
    r = build_params(openai_p, "o4-mini", s)
    assert "temperature" not in r and "top_p" not in r and "stop" not in r and r["reasoning_effort"] == "low"
    local = build_params(Provider("local"), "local/SmolLM2-135M-Instruct", s)
    assert "tools" not in local and local["max_tokens"] == 512


def test_word_diff_and_html_is_escaped():
    assert word_diff("the cat sat", "the dog sat") == [("=", "the "), ("-", "cat"), ("+", "dog"), ("=", " sat")]
    out = diff_html("<b>a</b>", "<script>x</script>")
    assert "<script>" not in out and "&lt;script&gt;" in out and "<del" in out and "<ins" in out


def result(version, model, temp, repeat, text, latency, valid=None, cost=0.001, status="ok"):
    return CellResult(spec=CellSpec(version, model, temp, repeat), text=text, status=status, schema_valid=valid,
                      metrics=CallMetrics(status=status, latency_ms=latency, cost_usd=cost))


def test_stability_summary():
    rs = [result("v1", "m", 0.0, 1, "A", 100, True), result("v1", "m", 0.0, 2, "A ", 300, True),
          result("v1", "m", 0.0, 3, "B", 200, False), result("v1", "m", 1.0, 1, "x", 50),
          result("v1", "m", 1.0, 2, "", None, status="error")]
    by = {(s.temperature): s for s in stability_summary(rs)}
    assert by[0.0].runs == 3 and by[0.0].distinct_outputs == 2 and by[0.0].schema_valid_rate == pytest.approx(2 / 3)
    assert (by[0.0].latency_min_ms, by[0.0].latency_median_ms, by[0.0].latency_max_ms) == (100, 200, 300)
    assert by[1.0].runs == 1 and by[1.0].schema_valid_rate is None


def test_compare_with_baseline():
    base = [result("v1", "m", 0.0, 1, "same", 100, cost=0.01), result("v1", "m", 0.0, 2, "old", 100)]
    cur = [result("v1", "m", 0.0, 1, "same", 150, cost=0.02), result("v1", "m", 0.0, 2, "new", 80),
           result("v2", "m", 0.0, 1, "x", 80)]
    rows = compare_runs(cur, base)
    assert [r.output_changed for r in rows] == [False, True, None]
    assert rows[0].latency_delta_ms == 50 and rows[0].cost_delta_usd == pytest.approx(0.01)


def prepared(provider, n, model="gpt-4o-mini", schema=None, tools=()):
    msgs = [{"role": "user", "content": "hi"}]
    return [PreparedCell(CellSpec("v1", model, 0.0, i + 1), provider, msgs, {"max_tokens": 20}, schema,
                         schema is not None, list(tools)) for i in range(n)]


def test_matrix_runs_concurrently_through_the_gate(provider, server, log):
    for _ in range(4):
        server.push(Script(reply='{"n": 1}', first_byte_delay=0.5))
    ctx = CallContext("playground", tags=["run:test"])
    run = MatrixRun(prepared(provider, 4, schema={"type": "object", "required": ["n"]}), ctx, log, 4).start()
    assert run.wait(30) and run.done()
    assert server.max_in_flight == 4  # the four cells were in flight at once
    assert all(r.status == "ok" and r.schema_valid for r in run.results)
    records = log.recent(10)
    assert len(records) == 4 and all(r.page == "playground" and r.tags == ["run:test"] for r in records)


def test_matrix_cancel_stops_every_stream(provider, server, log):
    for _ in range(3):
        server.push(Script(chunks=300, chunk_delay=0.02))
    run = MatrixRun(prepared(provider, 3), CallContext("playground"), log, 3).start()
    deadline = time.monotonic() + 10
    while not all(r.text for r in run.results) and time.monotonic() < deadline:
        time.sleep(0.02)
    run.cancel()
    assert run.wait(10)
    assert [r.status for r in run.results] == ["cancelled"] * 3
    assert all(0 < len(r.text.split()) < 300 for r in run.results)
    assert sorted(r.status for r in log.recent(10)) == ["cancelled"] * 3


def test_matrix_checks_tool_calls(provider, server, log):
    server.push(Script(tool_call={"name": "lookup_order", "arguments": '{"order_id": 5}'}))
    tools = validate_tools(TOOLS_JSON)
    run = MatrixRun(prepared(provider, 1, tools=tools), CallContext("playground"), log).start()
    run.wait(10)
    call = run.results[0].tool_calls[0]
    assert call["parsed"] == {"order_id": 5} and "not of type 'string'" in call["error"]


def test_prompt_library_versions_history_export_import(db_url, tmp_path):
    lib = PromptLibrary(db_url)
    v1 = lib.save("returns", Draft("gpt-4o", "Be kind.", "{{q}}", {"q": "refund?"}), "ana", "first")
    v2 = lib.save("returns", Draft("gpt-4o-mini", "Be kind and brief.", "{{q}}", {"q": "refund?"}), "ben", "shorter")
    assert (v1.version, v2.version) == (1, 2) and v2.label == "returns v2"
    assert [v.version for v in lib.history("returns")] == [2, 1]
    assert lib.get(v1.id).draft.system == "Be kind." and lib.names() == ["returns"]
    exported = lib.export_json()
    other = PromptLibrary(f"sqlite:///{tmp_path}/other.db")
    assert other.import_json(exported, importer="carol") == 2
    assert [(v.version, v.author, v.draft.model) for v in other.history("returns")] == [
        (2, "carol", "gpt-4o-mini"), (1, "carol", "gpt-4o")]  # the importer, whatever the file claims
    with pytest.raises(ValueError):
        other.import_json("{}")


def test_saved_runs_round_trip(db_url):
    lib = PromptLibrary(db_url)
    rs = [result("v1", "m", 0.5, 1, "hello", 100)]
    lib.save_run("baseline", rs)
    assert lib.runs()[0].results == rs and lib.runs()[0].name == "baseline"


def test_view_code_never_inlines_the_key():
    provider = Provider("compatible", "http://localhost:11434/v1", TEST_KEY)
    msgs = [{"role": "user", "content": "it's {\"quoted\"}"}]
    params = {"temperature": 0.2, "stop": ["END"], "response_format": {"type": "json_object"}}
    py = python_code(provider, "llama3", msgs, params)
    sh = curl_command(provider, "llama3", msgs, params)
    assert TEST_KEY not in py + sh and 'os.environ["OPENAI_API_KEY"]' in py and "$OPENAI_API_KEY" in sh
    compile(py, "<view-code>", "exec")  # valid Python
    assert "base_url='http://localhost:11434/v1'" in py and "http://localhost:11434/v1/chat/completions" in sh
    assert "it'\\''s" in sh  # the single quote survives the shell
    azure = curl_command(Provider("azure", "https://x.openai.azure.com", "k", api_version="2024-10-21"), "dep",
                         msgs, {})
    assert "/openai/deployments/dep/chat/completions?api-version=2024-10-21" in azure and "api-key:" in azure


def test_view_code_for_the_responses_api_runs_against_the_server(server, monkeypatch, capsys):
    provider = Provider("openai", server.base_url, TEST_KEY)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    params = {"temperature": 0.2, "max_completion_tokens": 50, "seed": 1}
    py = python_code(provider, "gpt-4o-mini", msgs, params, api="responses")
    sh = curl_command(provider, "gpt-4o-mini", msgs, params, api="responses")
    assert "client.responses.create(" in py and "print(response.output_text)" in py and TEST_KEY not in py + sh
    assert f"{server.base_url}/responses" in sh and '"instructions": "Be brief."' in sh
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    exec(compile(py, "<view-code>", "exec"), {})  # the printed code is a working request
    assert capsys.readouterr().out.strip() == "Echo: Hi there"
    body = [r["body"] for r in server.requests if r["path"] == "/v1/responses"][-1]
    assert body["max_output_tokens"] == 50 and "seed" not in body
    azure = curl_command(Provider("azure", "https://x.openai.azure.com", "k", api_version="2024-10-21"), "dep",
                         msgs, {}, api="responses")
    assert "https://x.openai.azure.com/openai/v1/responses" in azure and "api-key:" in azure


def test_replay_draft_rebuilds_the_request():
    request = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "S"}, {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "say {{x}}"}], "temperature": 0.3, "max_completion_tokens": 99,
        "stop": "END", "tools": json.loads(TOOLS_JSON), "tool_choice": {"type": "function",
                                                                        "function": {"name": "lookup_order"}}}
    draft = replay_draft(request)
    assert draft.system == "S" and draft.history == request["messages"][1:3]
    assert messages_for(draft) == request["messages"]  # literal braces survive
    assert draft.settings.max_tokens == 99 and draft.settings.stop == ["END"]
    assert draft.settings.tool_choice == "lookup_order"


def test_cjk_text_is_diffed_by_character():
    assert word_diff("退货期限是三十天。", "退货期限是十四天。") == [
        ("=", "退货期限是"), ("-", "三"), ("=", "十"), ("+", "四"), ("=", "天。")]
    assert word_diff("返品は30日以内です", "返品は14日以内です") == [("=", "返品は"), ("-", "30"), ("+", "14"),
                                                              ("=", "日以内です")]


def test_saved_versions_take_the_screens_variables_and_max_tokens_and_runs_get_fresh_names():
    from datetime import datetime

    from core.playground.draft import RunSettings
    from core.playground.matrix import fresh_run_name, with_screen_inputs
    saved = Draft("gpt-4o", "sys v1", "Where is {{order}}?", {"order": "A-17", "lang": "en"},
                  RunSettings(max_tokens=512))
    screen = Draft("gpt-4o-mini", "sys now", "x", {"order": "B-99"}, RunSettings(max_tokens=99))
    sent = with_screen_inputs(saved, screen)
    assert (sent.system, sent.user_template, sent.model) == ("sys v1", "Where is {{order}}?", "gpt-4o")
    assert sent.variables == {"order": "B-99", "lang": "en"} and sent.settings.max_tokens == 99
    now = datetime(2026, 11, 27, 9, 15, 12)
    assert fresh_run_name(now, set()) == "run-091512"
    assert fresh_run_name(now, {"run-091512", "run-091512-2"}) == "run-091512-3"

"""The eval runner and its command line against the loopback server: one logged call per cell, grading as cells
finish, results.json's fields, exit codes 0 / 100 / 1, Cancel, the cache, and the statistics that decide."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.calls.cache import ResponseCache
from core.calls.gate import CallContext
from core.evals.config import parse_config
from core.evals.run import EvalRun, exit_code
from core.evals.stats import compare_paired, mcnemar_exact, wilson
from core.llm.providers import Provider
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

ROOT = Path(__file__).resolve().parents[2]


def config_dict(server, tests, prompts=None, providers=None, default=None):
    return {"prompts": prompts or ["Answer: {{q}}", "Reply to {{q}}"],
            "providers": providers or [{"id": "openai:chat:gpt-4o-mini",
                                        "config": {"apiBaseUrl": server.base_url, "temperature": 0}}],
            **({"defaultTest": default} if default else {}), "tests": tests}


def resolver(server):
    return lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0)


def test_every_cell_is_one_logged_call_tagged_with_the_run_and_graded(server, log):
    config = parse_config(config_dict(server, [
        {"vars": {"q": "refund"}, "assert": [{"type": "contains", "value": "Answer"}]},
        {"vars": {"q": "ship"}, "assert": [{"type": "icontains", "value": "SHIP"}]}],
        providers=[{"id": "openai:chat:gpt-4o-mini", "config": {"apiBaseUrl": server.base_url}},
                   {"id": "openai:gpt-4o", "config": {"apiBaseUrl": server.base_url, "max_tokens": 77}}]))
    run = EvalRun(config, resolver(server), CallContext("evals", "alice"), log, repeat=2, concurrency=4).start()
    assert run.wait(30) and run.progress() == (16, 16)
    calls = [r for r in log.recent(100) if f"run:{run.id}" in r.tags]
    assert len(calls) == 16 and {r.page for r in calls} == {"evals"} and {r.user for r in calls} == {"alice"}
    bodies = server.chat_requests()
    assert sum(b["model"] == "gpt-4o" and b["max_tokens"] == 77 for b in bodies) == 8
    assert {b["messages"][-1]["content"] for b in bodies} == {"Answer: refund", "Answer: ship", "Reply to refund",
                                                              "Reply to ship"}
    rows = run.rows()
    passed = {(r["prompt_index"], r["test_index"]): r["pass"] for r in rows}
    assert passed == {(0, 0): True, (0, 1): True, (1, 0): False, (1, 1): True}
    summary = {(c["prompt_index"], c["provider"]): c for c in run.summary()["configs"]}
    assert summary[(0, "openai:gpt-4o")]["passed"] == 4 and summary[(1, "openai:gpt-4o")]["passed"] == 2
    assert exit_code(run) == 100


def test_results_json_fields_and_default_assertions_first(server, tmp_path, sqlite_url):
    config = tmp_path / "eval.yaml"
    config.write_text(json.dumps(config_dict(server, [
        {"vars": {"q": "refund"}, "description": "first", "assert": [{"type": "contains", "value": "refund"}]}],
        prompts=["{{q}}"], default={"assert": [{"type": "not-icontains", "value": "sorry"}]})))
    out = tmp_path / "results.json"
    done = run_cli(["run", str(config), "--output", str(out)], sqlite_url, server.base_url)
    assert done.returncode == 0, done.stderr
    assert "1 passed, 0 failed, 0 errors" in done.stdout and "95% interval" in done.stdout
    data = json.loads(out.read_text())
    (cell,) = data["results"]
    for key in ("prompt_index", "provider", "test_index", "vars", "output", "pass", "score", "latency_ms",
                "cost_usd", "request_id", "assertions"):
        assert key in cell
    assert cell["provider"] == "openai:chat:gpt-4o-mini" and cell["vars"] == {"q": "refund"}
    assert [a["type"] for a in cell["assertions"]] == ["not-icontains", "contains"]
    assert set(cell["assertions"][0]) == {"type", "value", "pass", "score", "reason"}
    assert data["summary"]["passed"] == 1 and data["summary"]["configs"][0]["interval_95"][1] == 1.0
    assert TEST_KEY not in out.read_text()


def run_cli(args, db_url, base_url, **env):
    return subprocess.run([sys.executable, "-m", "core", "evals", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PROMPTLAB_DB_URL": db_url, "OPENAI_API_KEY": TEST_KEY,
                               "OPENAI_BASE_URL": base_url, "PROMPTLAB_PROVIDER": "auto", **env},
                          timeout=120)


def test_exit_codes_0_100_1(server, tmp_path, sqlite_url):
    ok, failing = tmp_path / "ok.yaml", tmp_path / "failing.yaml"
    ok.write_text(json.dumps(config_dict(server, [{"vars": {"q": "x"}, "assert": [{"type": "contains",
                                                                                    "value": "x"}]}])))
    failing.write_text(json.dumps(config_dict(server, [{"vars": {"q": "x"}, "assert": [{"type": "contains",
                                                                                         "value": "zzz"}]}])))
    assert run_cli(["run", str(ok)], sqlite_url, server.base_url).returncode == 0
    assert run_cli(["run", str(failing)], sqlite_url, server.base_url).returncode == 100
    broken = tmp_path / "broken.yaml"
    broken.write_text("prompts: [\n")
    done = run_cli(["run", str(broken)], sqlite_url, server.base_url)
    assert done.returncode == 1 and "not valid YAML" in done.stderr and "Traceback" not in done.stderr
    assert run_cli(["run", str(tmp_path / "absent.yaml")], sqlite_url, server.base_url).returncode == 1
    server.push(Script(status=500), Script(status=500))  # an API error is a failed case, not a crash
    assert run_cli(["run", str(ok)], sqlite_url, server.base_url, PROMPTLAB_MAX_RETRIES="0").returncode == 100


def test_cancel_keeps_what_finished(server, log):
    server.push(*[Script(chunk_delay=0.3) for _ in range(6)])
    config = parse_config(config_dict(server, [{"vars": {"q": f"q{i}"}} for i in range(3)], prompts=["{{q}}"]))
    run = EvalRun(config, resolver(server), CallContext("evals"), log, repeat=2, concurrency=1).start()
    while run.progress()[0] < 1:
        pass
    run.cancel()
    assert run.wait(30)
    statuses = [r.status for r in run.results]
    assert statuses.count("ok") >= 1 and "cancelled" in statuses
    finished = [g for g in run.grades if g is not None and g.error is None]
    assert len(finished) == statuses.count("ok") and all(g.passed for g in finished)


def test_the_cache_serves_repeats_only_when_allowed(server, log, db_url):
    config = parse_config(config_dict(server, [{"vars": {"q": "same"}}], prompts=["{{q}}"]))
    EvalRun(config, resolver(server), CallContext("evals"), log, repeat=3, concurrency=1).start().wait(30)
    assert len(server.chat_requests()) == 3  # not allowed: every repeat asks the model
    cached = EvalRun(config, resolver(server), CallContext("evals"), log, repeat=3, concurrency=1,
                     cache=ResponseCache(db_url)).start()
    cached.wait(30)
    assert len(server.chat_requests()) == 4 and sum(bool(r.metrics.cached) for r in cached.results) == 2


def test_grader_cost_counts_in_the_run(server, log):
    priced = lambda spec: Provider("openai", server.base_url, TEST_KEY, max_retries=0)  # noqa: E731
    server.push(Script(when="<Rubric>", reply='{"pass": true, "score": 1, "reason": "ok"}'))
    config = parse_config(config_dict(server, [{"vars": {"q": "x"}, "assert": [{"type": "llm-rubric",
                                                                                 "value": "is fine"}]}],
                                       prompts=["{{q}}"], providers=["openai:chat:gpt-4o-mini"]))
    run = EvalRun(config, priced, CallContext("evals"), log).start()
    run.wait(30)
    grade, result = run.grades[0], run.results[0]
    assert grade.passed and grade.grader_cost_usd > 0
    assert run.summary()["cost_usd"] == pytest.approx(result.metrics.cost_usd + grade.grader_cost_usd)


def test_statistics():
    low, high = wilson(24, 40)
    assert low == pytest.approx(0.446, abs=1e-3) and high == pytest.approx(0.737, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    assert mcnemar_exact(2, 9) == pytest.approx(0.0654, abs=1e-4) and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    a = {(i, 1): i < 24 for i in range(40)}
    b = {(i, 1): i < 22 or 24 <= i < 33 for i in range(40)}
    comparison = compare_paired(a, b, "v1", "v2")
    assert comparison.sentence() == ("v2 passes 31/40, v1 24/40; v2 better on 9 cases, worse on 2, p = 0.065 — not "
                                     "a significant difference.")
    assert comparison.b_worse == [(22, 1), (23, 1)]


def test_an_imported_file_cannot_send_the_configured_key_to_another_url():
    from core.base.config import load_settings
    from core.evals.config import ProviderSpec
    from core.evals.run import ProviderResolver

    configured = Provider("openai", "https://api.openai.com/v1", "sk-the-real-key-000000000")
    ui = ProviderResolver(load_settings(environ={}), configured)
    assert ui(ProviderSpec(id="openai:gpt-4o", model="gpt-4o")) is configured
    assert ui(ProviderSpec(id="x", model="gpt-4o", config={"apiBaseUrl": "https://api.openai.com/v1/"})) is configured
    evil = ProviderSpec(id="openai:gpt-4o", model="gpt-4o",
                        config={"apiBaseUrl": "https://attacker.example/v1", "apiKeyEnvar": "OPENAI_API_KEY"})
    assert ui(evil).api_key is None and ui(evil).base_url == "https://attacker.example/v1"
    cli = ProviderResolver(load_settings(environ={}), configured, {"OPENAI_API_KEY": "sk-env-000", "MINE": "sk-m"})
    assert cli(evil).api_key == "sk-env-000"  # the command line: the user's own file and environment
    assert cli(ProviderSpec(id="y", model="m", config={"apiBaseUrl": "https://p.example/v1"})).api_key is None
    assert ui(ProviderSpec(id="l", model="local/SmolLM2-135M-Instruct")).kind == "local"


def test_test_sets_are_versioned_and_runs_keep_a_single_baseline(db_url):
    from core.evals.config import TestCase
    from core.evals.store import EvalStore

    store = EvalStore(db_url)
    v1 = store.save_set("returns", [TestCase(vars={"q": "a"})], "alice")
    v2 = store.save_set("returns", [TestCase(vars={"q": "a"}), TestCase(vars={"q": "b"})], "bob", "added b")
    assert (v1.version, v2.version) == (1, 2) and store.set_names() == ["returns"]
    assert [len(v.tests) for v in store.set_history("returns")] == [2, 1]
    assert store.latest_set("returns").tests[1].vars == {"q": "b"}
    with pytest.raises(ValueError):
        store.save_set("  ", [])
    config = parse_config({"prompts": ["{{q}}"], "providers": ["openai:gpt-4o-mini"], "tests": [{"vars": {"q": "a"}}]})
    for run_id in ("r1", "r2"):
        store.save_run(run_id, run_id, config, [{"prompt": "{{q}}", "pass": True}], {"passed": 1}, "alice")
    store.set_baseline("r1")
    store.set_baseline("r2")
    assert store.baseline().id == "r2" and sum(r.baseline for r in store.runs()) == 1
    assert store.run("r1").config.prompts == config.prompts and json.loads(store.run("r1").to_json())["summary"]


def test_a_command_line_run_is_stored_reportable_compared_and_never_reads_unpriced_as_zero(server, tmp_path,
                                                                                         sqlite_url):
    """Issue 28 rows 9 and 10: `python -m core evals run` is stored (listed on the Evals page, `core.records.report run ID`
    finds it), compares its two prompts with McNemar in the table, results.json and the HTML report, and a run on
    a server whose prices are unknown reads "unpriced", never "$0.0000" / "Cost: $0"."""
    from core.evals.store import EvalStore

    config = tmp_path / "eval.yaml"
    config.write_text(json.dumps(config_dict(server, [  # echo server: prompt 1 says "Answer", prompt 2 does not
        {"vars": {"q": f"case {i}"}, "assert": [{"type": "contains", "value": "Answer"}]} for i in range(6)])))
    out = tmp_path / "results.json"
    done = run_cli(["run", str(config), "--output", str(out)], sqlite_url, server.base_url)
    assert done.returncode == 100, done.stderr
    assert "$0.0000" not in done.stdout and "$0 " not in done.stdout
    assert "unpriced (12 calls)" in done.stdout  # the compatible server's model has no known price
    assert "McNemar" in done.stdout and "better on 0 cases, worse on 6, p = 0.031" in done.stdout
    run_id = done.stdout.split(" · run ")[-1].split()[0]
    (comparison,) = json.loads(out.read_text())["summary"]["comparisons"]
    assert (comparison["pairs"], comparison["b_worse"], round(comparison["p_value"], 4)) == (6, 6, 0.0312)
    assert run_id in [r.id for r in EvalStore(sqlite_url).runs()]  # what the Evals page lists
    html = tmp_path / "run.html"
    made = subprocess.run([sys.executable, "-m", "core", "report", "run", run_id, "-o", str(html)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PROMPTLAB_DB_URL": sqlite_url},
                          timeout=120)
    assert made.returncode == 0, made.stderr
    doc = html.read_text()
    assert "Cost:</dt><dd>unpriced (12 calls)</dd>" in doc and "<dd>$0</dd>" not in doc
    assert "Paired comparisons (McNemar)" in doc and "p = 0.031" in doc


def test_openai_responses_providers_run_their_cells_through_the_responses_api(server, log):
    config = parse_config(config_dict(server, [{"vars": {"q": "refund"}, "assert": [
        {"type": "contains", "value": "refund"}]}], prompts=["Answer: {{q}}"], providers=[
        {"id": "openai:responses:gpt-4o-mini", "config": {"apiBaseUrl": server.base_url}},
        {"id": "openai:chat:gpt-4o-mini", "config": {"apiBaseUrl": server.base_url}}]))
    assert not config.notes and [p.api for p in config.providers] == ["responses", "chat"]
    run = EvalRun(config, resolver(server), CallContext("evals"), log).start()
    assert run.wait(30) and run.progress() == (2, 2)
    responses = [r["body"] for r in server.requests if r["path"] == "/v1/responses"]
    assert len(responses) == 1 and responses[0]["input"] == [{"role": "user", "content": "Answer: refund"}]
    assert len(server.chat_requests()) == 1 and all(r["pass"] for r in run.rows())
    assert sum("endpoint:responses" in r.tags for r in log.recent(10)) == 1

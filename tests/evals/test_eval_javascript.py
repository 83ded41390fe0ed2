"""promptfoo's `javascript` assertions (`fn:` / `eval:` / `javascript:` in a CSV cell): code, so admins' only as
python is; run with Node.js under its permission model, with an empty environment; skipped with a note where the
server has no Node. Never read as text to equal."""
from __future__ import annotations

import json

import pytest

from core.calls.gate import CallContext
from core.evals import config as ec
from core.evals import javascript
from core.evals.assertions import Assertion, Output, evaluate
from core.evals.config import EvalConfigError, assertion_from_string, parse_config_text
from core.evals.run import EvalRun
from core.llm.providers import Provider
from core.policy.access import Identity
from tests.conftest import TEST_KEY

BOB, ROOT = Identity("bob"), Identity("root", admin=True)
needs_node = pytest.mark.skipif(javascript.node() is None, reason="no Node.js 20+ on this machine")


def js_config(code: str, server_url: str = "http://127.0.0.1:9/v1") -> str:
    return (f"prompts: ['Q: {{{{q}}}}']\nproviders: [{{id: 'openai:chat:gpt-4o-mini', config: {{apiBaseUrl: "
            f"'{server_url}'}}}}]\ntests:\n  - vars: {{q: hi}}\n    assert:\n      - type: javascript\n"
            f"        value: {json.dumps(code)}\n")


def test_csv_code_cells_are_javascript_never_text_to_equal():
    for cell in ("javascript: output.length > 3", "fn: output.includes('b')", "eval: true", "file://check.js"):
        assert assertion_from_string(cell).type == "javascript", cell
    for cell, kind in (("word-count:4", "word-count"), ("is-xml", "is-xml"), ("similar:hi", "similar"),
                       ("rouge-n:hi", "rouge-n"), ("not-is-sql", "not-is-sql")):
        assert assertion_from_string(cell).type == kind


def test_a_non_admins_javascript_is_refused_and_never_runs(tmp_path, server, log):
    with pytest.raises(EvalConfigError, match="only an admin may run code"):
        parse_config_text(js_config("true"), actor=BOB)
    with pytest.raises(EvalConfigError, match="only an admin"):  # the CSV shorthand is the same code
        parse_config_text("prompts: [x]\nproviders: [openai:gpt-4o]\ndefaultTest: {assert: ['fn: true']}",
                          actor=BOB)
    config = parse_config_text(js_config("true", server.base_url))
    resolve = lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0)  # noqa: E731
    for actor in (BOB, None):
        with pytest.raises(EvalConfigError, match="only an admin"):
            EvalRun(config, resolve, CallContext("evals", "bob"), log, actor=actor)
    verdict = evaluate(config.tests[0].assertions[0], Output(text="x"))
    assert not verdict.passed and "only an admin" in verdict.reason


def test_without_node_javascript_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(javascript, "node", lambda: None)
    config = parse_config_text(js_config("true"), actor=ROOT)
    assert config.tests[0].assertions == []
    assert any("“javascript”" in n and "Node.js" in n and "skipped" in n for n in config.notes)
    notes: list[str] = []
    (case,) = ec.tests_from_csv("q,__expected,__expected2\nhi,fn: output.length > 1,contains:hi\n", notes)
    assert [a.type for a in case.assertions] == ["contains"] and "“javascript”" in notes[0]


@needs_node
@pytest.mark.parametrize(("code", "output", "passed"), [
    ("output.length > 3", "hello", True),
    ("output.includes('z')", "hello", False),
    ("const n = output.split(' ').length; n === 2", "a b", True),   # promptfoo returns the last expression
    ("output.length / 10", "hello", True),                           # a number: passes above 0
    ("({pass: false, score: 0.2, reason: 'too short'})", "x", False),
    ("return output.startsWith('h');\n", "hello", False),  # one line once trimmed: "return return …", as promptfoo
    ("const a = 1;\nreturn a + 1 === 2", "x", True),                  # several lines: a function body
    ("'a string'", "x", False),                                       # not a boolean, number or result
    ("undefinedName.x", "x", False),                                  # threw
])
def test_an_admins_javascript_gives_promptfoos_verdict(code, output, passed):
    verdict = evaluate(Assertion(type="javascript", value=code), Output(text=output), allow_code=True)
    assert verdict.passed is passed, verdict.reason
    negated = evaluate(Assertion(type="not-javascript", value=code), Output(text=output), allow_code=True)
    if "a string" not in code and "undefinedName" not in code and "return output" not in code:  # errors fail both
        assert negated.passed is not passed


@needs_node
def test_an_admins_javascript_has_no_files_no_processes_and_no_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    secret = tmp_path / "secret.txt"
    secret.write_text("sk-secret")
    reads = evaluate(Assertion(type="javascript", value=f"require('fs').readFileSync({str(secret)!r}, 'utf8') "
                                                        "=== 'sk-secret'"), Output(text="x"), allow_code=True)
    assert not reads.passed and "restricted" in reads.reason
    spawns = evaluate(Assertion(type="javascript", value="require('child_process').execSync('id').length > 0"),
                      Output(text="x"), allow_code=True)
    assert not spawns.passed and "restricted" in spawns.reason
    env = evaluate(Assertion(type="javascript", value="Object.keys(globalThis.process.env).every((k) => k === "
                                                       "'LC_CTYPE')"), Output(text="x"), allow_code=True)
    assert env.passed, env.reason


@needs_node
def test_a_runaway_javascript_is_stopped():
    verdict = evaluate(Assertion(type="javascript", value="while (true) {}\nreturn true"), Output(text="x"),
                       allow_code=True)
    assert not verdict.passed and ("longer than" in verdict.reason or "failed" in verdict.reason), verdict.reason

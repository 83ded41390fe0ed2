"""Assertions with promptfoo's semantics. The deterministic verdicts are checked against promptfoo 0.121.20 itself:
tests/fixtures/promptfoo_crosscheck.yaml was run with `promptfoo eval` (echo provider, so the outputs are known) and
its verdicts — pass and score per output and test — are stored in tests/fixtures/promptfoo_verdicts.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.calls.gate import CallContext
from core.evals.assertions import (
    HANDLERS,
    MODEL_GRADED,
    SUPPORTED,
    Assertion,
    Output,
    aggregate,
    evaluate,
    extract_json_objects,
    levenshtein,
    python_script,
    split_values,
)
from core.evals.config import assertion_from_string, parse_config
from core.evals.run import EvalRun, provider_spec
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

FIXTURES = Path(__file__).parent.parent / "fixtures"


def promptfoo_cases():
    data = yaml.safe_load((FIXTURES / "promptfoo_crosscheck.yaml").read_text())
    data["providers"] = ["openai:chat:gpt-4o-mini"]  # promptfoo ran them on its echo provider
    config = parse_config(data)
    assert not config.notes, config.notes  # every assertion in it is supported
    return config.cases()


def test_deterministic_verdicts_equal_promptfoos_on_the_same_outputs():
    fixture = json.loads((FIXTURES / "promptfoo_verdicts.json").read_text())
    cases = promptfoo_cases()
    assert len(fixture["verdicts"]) == len(cases) * len(fixture["outputs"]) == 117
    mismatches = []
    for v in fixture["verdicts"]:
        case, text = cases[v["test"]], fixture["outputs"][v["prompt"]]
        verdict = aggregate([evaluate(a, Output(text=text), allow_code=True) for a in case.assertions],
                            case.threshold)
        if verdict.passed != v["pass"] or verdict.score != pytest.approx(v["score"], abs=1e-6):
            mismatches.append((v["test"], v["prompt"], case.assertions[0].type, v, verdict.passed, verdict.score))
    assert mismatches == []


@pytest.mark.parametrize("assertion, text, passed", [
    (Assertion(type="equals", value="Yes"), "Yes", True),
    (Assertion(type="not-equals", value="Yes"), "Yes", False),
    (Assertion(type="contains", value="{{city}}"), "Trains to Lyon", True),  # values render the test's vars
    (Assertion(type="icontains-all", value=["lyon", "TRAINS"]), "Trains to Lyon", True),
    (Assertion(type="contains-json", value='{"type": "array"}'), 'x [1, 2] y', True),
    (Assertion(type="latency", threshold=500), "x", True),
    (Assertion(type="not-latency", threshold=500), "x", False),
    (Assertion(type="cost", threshold=0.001), "x", True),
    (Assertion(type="not-cost", threshold=0.001), "x", False),
    (Assertion(type="not-contains-all", value=["Trains", "Paris"]), "Trains to Lyon", True),
    (Assertion(type="not-icontains-any", value=["paris", "LYON"]), "Trains to Lyon", False),
    (Assertion(type="not-contains-any", value="Paris, Rome"), "Trains to Lyon", True),
    (Assertion(type="not-starts-with", value="Trains"), "Trains to Lyon", False),
    (Assertion(type="not-is-json", value={"type": "object"}), '{"a": 1}', False),
    (Assertion(type="not-contains-json", value={"type": "object", "required": ["b"]}), 'x {"a": 1}', True),
    (Assertion(type="not-levenshtein", value="Trains to Lyon!", threshold=2), "Trains to Lyon", False),
])
def test_each_type_positive_and_negated(assertion, text, passed):
    out = Output(text=text, latency_ms=120.0, cost_usd=0.0002, vars={"city": "Lyon"})
    assert evaluate(assertion, out).passed is passed


def test_config_mistakes_fail_with_a_sentence_not_an_exception():
    out = Output(text="x", latency_ms=None, cached=True, cost_usd=None)
    assert "threshold" in evaluate(Assertion(type="latency"), out).reason
    assert "cached" in evaluate(Assertion(type="latency", threshold=9), out).reason
    assert "unpriced" in evaluate(Assertion(type="cost", threshold=1), out).reason
    assert "Invalid regex" in evaluate(Assertion(type="regex", value="("), out).reason
    assert "grader" in evaluate(Assertion(type="llm-rubric", value="x"), out).reason  # no grader given


def test_tools_call_validity():
    tools = [{"type": "function", "function": {"name": "refund", "parameters": {
        "type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}}}]
    good = Output(text="", tools=tools, tool_calls=[{"function": {"name": "refund", "arguments": '{"order": "A1"}'}}])
    wrong_args = Output(text="", tools=tools, tool_calls=[{"function": {"name": "refund", "arguments": "{}"}}])
    unknown = Output(text="", tools=tools, tool_calls=[{"function": {"name": "delete", "arguments": "{}"}}])
    plain = Output(text="I cannot call tools", tools=tools)
    check = Assertion(type="is-valid-openai-tools-call")
    assert evaluate(check, good).passed and not evaluate(check, wrong_args).passed
    assert "not among the declared tools" in evaluate(check, unknown).reason and not evaluate(check, plain).passed
    assert evaluate(Assertion(type="not-is-valid-openai-tools-call"), plain).passed


def test_python_is_contained_and_gets_output_and_context():
    out = Output(text="hello", vars={"name": "Ada"})
    assert evaluate(Assertion(type="python", value="context['vars']['name'] == 'Ada' and output == 'hello'"),
                    out, allow_code=True).passed
    body = "if 'hell' in output:\n    return {'pass': True, 'score': 0.8, 'reason': 'greets'}\nreturn False"
    v = evaluate(Assertion(type="python", value=body), out, allow_code=True)
    assert v.passed and v.score == 0.8 and v.reason == "greets"
    # No API key reaches the code, it cannot run forever, and a crash is a failed verdict with its error.
    leak = evaluate(Assertion(type="python", value="__import__('os').environ.get('OPENAI_API_KEY') is None"), out,
                    allow_code=True)
    assert leak.passed
    boom = evaluate(Assertion(type="python", value="1/0"), out, allow_code=True)
    assert not boom.passed and "ZeroDivisionError" in boom.reason
    assert python_script("output == 'x'").endswith("    return output == 'x'\n")


def test_every_type_the_config_accepts_has_a_handler_and_every_handler_a_type():
    """The config's vocabulary (SUPPORTED) and the table of handlers name the same types: adding one without the
    other fails here. Each type is read by the config parser (YAML and CSV shorthand) and reaches its handler."""
    assert sorted(SUPPORTED) == sorted(HANDLERS) and len(SUPPORTED) == len(set(SUPPORTED))
    for kind in HANDLERS:
        config = parse_config({"prompts": ["{{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                               "tests": [{"vars": {"q": "x"}, "assert": [{"type": kind, "value": "x"},
                                                                         {"type": f"not-{kind}", "value": "x"}]}]})
        assert [a.type for a in config.cases()[0].assertions] == [kind, f"not-{kind}"], config.notes
        assert assertion_from_string(f"{kind}:x").type == kind
        # Reached through the table: never "unknown"; only the model-graded ones ask for a grader.
        verdict = evaluate(Assertion(type=kind, value="x", threshold=1), Output(text="x", latency_ms=1, cost_usd=0))
        assert "Unknown assertion type" not in verdict.reason
        assert ("needs a grader model" in verdict.reason) is (kind in MODEL_GRADED)
    unknown = parse_config({"prompts": ["{{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                            "tests": [{"vars": {"q": "x"}, "assert": [{"type": "rouge-n", "value": "x"}]}]})
    assert unknown.cases()[0].assertions == [] and "rouge-n" in " ".join(unknown.notes)
    assert evaluate(Assertion(type="rouge-n"), Output(text="x")).reason == 'Unknown assertion type "rouge-n".'
    assert evaluate(Assertion(type="not-not-equals", value="x"), Output(text="x")).reason == (
        'Unknown assertion type "not-not-equals".')


def test_helpers():
    assert split_values('"a, b", c ,d') == ["a, b", "c", "d"]
    assert levenshtein("kitten", "sitting") == 3
    assert extract_json_objects('a {"x": 1} b [2] c {bad') == [{"x": 1}, [2]]


# ----- model-graded, with a grader answering through the loopback server ----------------------------------------
def graded_run(server, log, assertion: dict, grader_reply: str | None, when: str, repeats: int = 1, embed=True):
    config = parse_config({
        "prompts": ["Answer: {{q}}"], "providers": [{"id": "openai:chat:gpt-4o-mini",
                                                     "config": {"apiBaseUrl": server.base_url}}],
        "defaultTest": {"options": {"provider": "openai:chat:gpt-4o"}},
        "tests": [{"vars": {"q": "What is the refund window?"}, "assert": [assertion]}]})
    if grader_reply is not None:
        server.push(*[Script(when=when, reply=grader_reply) for _ in range(repeats)])
    if not embed:
        server.push(Script(path="/v1/embeddings", status=404, error_message="no embeddings here"))
    from core.llm.providers import Provider
    run = EvalRun(config, lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0),
                  CallContext("evals"), log, concurrency=1).start()
    assert run.wait(30)
    return run


@pytest.mark.parametrize("reply, negate, passed, score", [
    ('{"reason": "mentions 30 days", "pass": true, "score": 0.9}', False, True, 0.9),
    ('{"reason": "no number given", "pass": false, "score": 0.1}', False, False, 0.1),
    ('{"reason": "mentions 30 days", "pass": true, "score": 0.9}', True, False, pytest.approx(0.1)),
    ("I think it passes!", False, False, 0.0),  # malformed: no JSON
])
def test_llm_rubric_pass_fail_negated_malformed(server, log, reply, negate, passed, score):
    kind = "not-llm-rubric" if negate else "llm-rubric"
    run = graded_run(server, log, {"type": kind, "value": "Gives the number of days"}, reply, "Gives the number")
    grade = run.grades[0]
    assert grade.passed is passed and grade.score == score
    verdict = grade.verdicts[0]
    assert verdict.grading_prompt and "Gives the number of days" in verdict.grading_prompt[-1]["content"]
    if reply.startswith("I think"):
        assert "no {pass, score, reason} JSON" in verdict.reason
    graders = [r for r in log.recent(10) if "grader" in r.tags]
    assert len(graders) == 1 and graders[0].page == "evals" and f"run:{run.id}" in graders[0].tags
    assert graders[0].model_requested == "gpt-4o"  # the config's grader, not the model under test


@pytest.mark.parametrize("reply, kind, passed", [
    ('{"category": "A", "reason": "subset"}', "factuality", True),
    ('{"category": "D", "reason": "disagrees"}', "factuality", False),
    ('{"category": "D", "reason": "disagrees"}', "not-factuality", True),
    ("The answer is (C) because it matches.", "factuality", True), ("no idea", "factuality", False),
    ("no idea", "not-factuality", False)])  # a malformed grader reply fails either way
def test_factuality(server, log, reply, kind, passed):
    run = graded_run(server, log, {"type": kind, "value": "30 days"}, reply, "expert_answer")
    assert run.grades[0].passed is passed


@pytest.mark.parametrize("reply, kind, passed", [
    ("It states 30 days.\nY\nY", "model-graded-closedqa", True), ("It does not.\nN\nN", "model-graded-closedqa", False),
    ("It does not.\nN\nN", "not-model-graded-closedqa", True), ("maybe", "model-graded-closedqa", False)])
def test_closedqa(server, log, reply, kind, passed):
    run = graded_run(server, log, {"type": kind, "value": "states a number of days"}, reply, "Criterion")
    assert run.grades[0].passed is passed


def test_answer_relevance_with_embeddings_and_without(server, log):
    question = "What is the refund window?"
    run = graded_run(server, log, {"type": "answer-relevance", "threshold": 0.5}, question, "Write the one question",
                     repeats=3)
    verdict = run.grades[0].verdicts[0]
    assert run.grades[0].passed and verdict.score > 0.9 and "embedding" in verdict.reason
    off_topic = graded_run(server, log, {"type": "answer-relevance", "threshold": 0.5}, "Who painted the ceiling?",
                           "Write the one question", repeats=3, embed=False)
    verdict = off_topic.grades[0].verdicts[0]
    assert not off_topic.grades[0].passed and "word overlap" in verdict.reason
    negated = graded_run(server, log, {"type": "not-answer-relevance", "threshold": 0.5}, "Who painted the ceiling?",
                         "Write the one question", repeats=3)
    assert negated.grades[0].passed  # off topic, and the assertion asks for that


def test_a_failing_grader_is_a_failed_verdict_with_its_sentence(server, log):
    server.push(Script(when="<Rubric>", status=500, error_message="grader down"))
    run = graded_run(server, log, {"type": "llm-rubric", "value": "anything"}, None, "")
    verdict = run.grades[0].verdicts[0]
    assert not verdict.passed and verdict.reason.startswith("The grader could not answer")
    assert "sk-test" not in verdict.reason


def test_grader_reference_forms():
    assert provider_spec("openai:chat:gpt-4o").model == "gpt-4o"
    assert provider_spec("openai:gpt-4o-mini").model == "gpt-4o-mini"
    assert provider_spec("local/SmolLM2-135M-Instruct").model == "local/SmolLM2-135M-Instruct"


# ----- replies and code that used to crash the check instead of failing it ------------------------------------
@pytest.mark.parametrize("reply", ["[1, 2]", '[{"function": 3}]', '[{"name": ["x"]}]'])
def test_a_reply_that_only_looks_like_tool_calls_fails_the_check_and_the_run_completes(server, log, reply):
    """A model answering `[1, 2]` to an is-valid-openai-tools-call assertion: before, the check raised
    AttributeError / TypeError in the cell's worker and the run never completed; now a failed verdict."""
    verdict = evaluate(Assertion(type="is-valid-openai-tools-call"), Output(text=reply))
    assert not verdict.passed and "tool" in verdict.reason
    assert evaluate(Assertion(type="not-is-valid-openai-tools-call"), Output(text=reply)).passed
    run = graded_run(server, log, {"type": "is-valid-openai-tools-call"}, reply, "Answer:")
    assert run.grades[0] is not None and run.grades[0].passed is False


@pytest.mark.parametrize("code, passed", [
    ("json.loads(output) == {'a': 1}", True),  # braces in the code, a bool back
    ("json.loads(output) == {'a': 2}", False),
    ("{'pass': output == 'x'}", False),  # a dict without a reason, failing
    ("{'pass': True, 'score': 0.5}", True),
])
def test_python_code_with_braces_gives_a_verdict(code, passed):
    """The failure reason quotes the code: before, it went through str.format, so `{` in the code raised
    KeyError / ValueError out of evaluate (a crashed cell) instead of giving a verdict."""
    verdict = evaluate(Assertion(type="python", value=code), Output(text='{"a": 1}'), allow_code=True)
    assert verdict.passed is passed
    if not passed:
        assert verdict.reason == f"Python code returned false\n{code}"

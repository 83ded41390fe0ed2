"""promptfoo's config format in and out: YAML round trip, file:// prompts and tests, CSV / JSONL test sets, and
every unsupported item named in one sentence."""
from __future__ import annotations

import json

import pytest

from core.evals import config as ec
from core.evals.assertions import Assertion
from core.evals.config import EvalConfigError, TestCase, assertion_from_string, load_config, parse_config_text, to_yaml

CONFIG = """
description: Support bot
prompts:
  - "Answer briefly: {{question}}"
  - file://prompts/chat.json
  - file://prompts/two.txt
providers:
  - openai:gpt-4o-mini
  - id: openai:chat:gpt-4o
    label: big
    config: {temperature: 0.2, max_tokens: 300, apiBaseUrl: "http://127.0.0.1:9/v1",
             response_format: {type: json_object}, tools: [], frobnicate: 1}
  - anthropic:messages:claude-sonnet-4
defaultTest:
  vars: {tone: polite}
  assert:
    - {type: not-icontains, value: sorry}
  options: {provider: openai:chat:gpt-4o-mini}
tests:
  - description: refund window
    vars: {question: "What is the refund window?"}
    threshold: 0.5
    assert:
      - {type: icontains, value: days, weight: 2, metric: accuracy}
      - {type: llm-rubric, value: polite and precise, provider: openai:chat:gpt-4o}
      - {type: ruby, value: "output.length < 10"}
      - {type: contains, value: x, transform: "output.trim()"}
  - file://cases.csv
  - file://more.yaml
outputPath: results.html
"""


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "chat.json").write_text(json.dumps(
        [{"role": "system", "content": "Be {{tone}}."}, {"role": "user", "content": "{{question}}"}]))
    (tmp_path / "prompts" / "two.txt").write_text("First: {{question}}\n---\nSecond: {{question}}\n")
    (tmp_path / "cases.csv").write_text(
        'question,__expected,__expected2,__description,__threshold\n'
        '"Ship to Spain, Portugal?","contains-any:Spain,Portugal",not-icontains:sorry,shipping,\n'
        'Hi,Hello there,"levenshtein:Hello",greeting,0.5\n')
    (tmp_path / "more.yaml").write_text("- vars: {question: 'Opening hours?'}\n  assert: [{type: is-json}]\n")
    (tmp_path / "promptfooconfig.yaml").write_text(CONFIG)
    return tmp_path


def test_reads_prompts_providers_tests_and_names_what_it_skips(config_dir):
    config = load_config(config_dir / "promptfooconfig.yaml")
    assert [p.label for p in config.prompts] == ["Answer briefly: {{question}}", "chat.json", "two.txt#1",
                                                  "two.txt#2"]
    assert config.prompts[1].messages[0] == {"role": "system", "content": "Be {{tone}}."}
    assert [p.model for p in config.providers] == ["gpt-4o-mini", "gpt-4o"]
    big = config.providers[1]
    assert big.api_base_url == "http://127.0.0.1:9/v1" and big.params() == {
        "temperature": 0.2, "max_tokens": 300, "response_format": {"type": "json_object"}, "tools": []}
    assert config.grader == "openai:chat:gpt-4o-mini"
    cases = config.cases()
    assert len(cases) == 4 and cases[0].vars == {"tone": "polite", "question": "What is the refund window?"}
    assert [a.type for a in cases[0].assertions] == ["not-icontains", "icontains", "llm-rubric", "contains"]
    assert cases[0].threshold == 0.5 and cases[0].assertions[1].weight == 2
    assert cases[0].assertions[2].provider == "openai:chat:gpt-4o"
    assert cases[1].assertions[1] == Assertion(type="contains-any", value=["Spain", "Portugal"])
    assert cases[2].assertions[1] == Assertion(type="equals", value="Hello there") and cases[2].threshold == 0.5
    assert cases[2].assertions[2] == Assertion(type="levenshtein", value="Hello", threshold=0.75)  # promptfoo's
    notes = " ".join(config.notes)
    for skipped in ("anthropic:messages:claude-sonnet-4", "frobnicate", "ruby", "transform", "outputPath"):
        assert skipped in notes
    assert len(config.notes) == 5


def test_yaml_round_trip_gives_the_same_config(config_dir):
    config = load_config(config_dir / "promptfooconfig.yaml")
    again = parse_config_text(to_yaml(config))
    assert again.prompts == config.prompts and again.providers == config.providers
    assert again.tests == config.tests and again.default_test == config.default_test
    assert again.grader == config.grader and again.notes == []  # the export holds only what is supported
    assert parse_config_text(to_yaml(again)).to_dict() == again.to_dict()


def test_test_sets_travel_as_csv_jsonl_and_yaml():
    cases = [TestCase(vars={"question": "Refund, please?", "n": 3}, description="a, b",
                      assertions=[Assertion(type="icontains", value="refund"),
                                  Assertion(type="contains-all", value=["a,b", "c"]),
                                  Assertion(type="not-levenshtein", value="x", threshold=2)], threshold=0.5),
             TestCase(vars={"question": "Plain"}, assertions=[Assertion(type="equals", value="Exactly this")])]
    assert ec.tests_from_jsonl(ec.tests_to_jsonl(cases)) == cases
    assert ec.tests_from_yaml(ec.tests_to_yaml(cases)) == cases
    from_csv = ec.tests_from_csv(ec.tests_to_csv(cases))
    assert [c.assertions for c in from_csv] == [c.assertions for c in cases]
    assert from_csv[0].vars == {"question": "Refund, please?", "n": "3"}  # CSV cells are text
    with pytest.raises(EvalConfigError, match="CSV cell cannot hold"):
        ec.tests_to_csv([TestCase(assertions=[Assertion(type="contains", value="x", weight=2)])])


def test_csv_expected_cells_read_as_promptfoo_reads_them():
    assert assertion_from_string("grade: is polite") == Assertion(type="llm-rubric", value=" is polite")
    assert assertion_from_string("python: len(output) > 3") == Assertion(type="python", value="len(output) > 3")
    assert assertion_from_string("not-contains: sorry") == Assertion(type="not-contains", value="sorry")
    assert assertion_from_string("latency(800)") == Assertion(type="latency", threshold=800)
    assert assertion_from_string("is-json") == Assertion(type="is-json")
    assert assertion_from_string("Just text: with a colon") == Assertion(type="equals",
                                                                         value="Just text: with a colon")


@pytest.mark.parametrize("text, message", [
    ("prompts: [hi]\nproviders: [openai:gpt-4o]\ntests: [{vars: 3}]", "vars must be a mapping"),
    ("prompts: []\nproviders: [openai:gpt-4o]", "no prompts"),
    ("prompts: [hi]\nproviders: [bedrock:x]", "no providers"),
    ("- just a list", "must be a mapping"),
    ("prompts: [hi\n", "not valid YAML"),
    ("prompts: [hi]\nproviders: [openai:gpt-4o]\ntests: file://missing.csv", "could not be read"),
])
def test_a_broken_config_is_one_sentence(text, message, tmp_path):
    with pytest.raises(EvalConfigError, match=message):
        parse_config_text(text, ec.ConfigFiles(folder=tmp_path))


def test_a_tests_own_grader_applies_to_its_model_graded_assertions_and_unused_keys_are_named():
    config = parse_config_text("""
prompts: [x]
providers: [openai:gpt-4o]
tests:
  - options: {provider: openai:gpt-4o-mini, rubricPrompt: custom}
    metadata: {area: returns}
    assert: [{type: llm-rubric, value: v}, {type: factuality, value: f, provider: openai:o4-mini},
             {type: contains, value: x}]
""")
    assert [a.provider for a in config.tests[0].assertions] == ["openai:gpt-4o-mini", "openai:o4-mini", None]
    assert any("rubricPrompt" in n for n in config.notes) and not any("metadata" in n for n in config.notes)
    assert config.tests[0].metadata == {"area": "returns"}  # kept with the case (where it came from, thumbs …)


# ----- what the Evals page calls for one user action (the page only shows the result or the sentence) ---------------
def test_imported_cases_are_read_by_their_extension_and_a_problem_names_the_file():
    csv_cases = ec.tests_from_file("cases.csv", b"question,__expected\nRefund window?,icontains: days\n")
    jsonl_cases = ec.tests_from_file("cases.jsonl", b'{"vars": {"question": "Refund window?"}}\n')
    yaml_cases = ec.tests_from_file("cases.yml", b"- vars: {question: Refund window?}\n")
    assert [c.vars for c in csv_cases + jsonl_cases + yaml_cases] == [{"question": "Refund window?"}] * 3
    assert csv_cases[0].assertions == [Assertion(type="icontains", value="days")]
    with pytest.raises(EvalConfigError, match=r"^cases\.yaml: A YAML test set is a list"):
        ec.tests_from_file("cases.yaml", b"just text")
    with pytest.raises(EvalConfigError, match=r"^big\.csv is larger than"):  # refused by its size, named once
        ec.tests_from_file("big.csv", b"x" * (ec.parse_limits.UPLOADED_BYTES + 1))


def test_the_config_among_uploaded_files_is_read_within_the_pasted_limit():
    files = {"promptfooconfig.yaml": b"prompts: ['{{q}}']\nproviders: [openai:gpt-4o-mini]\n", "cases.csv": b"q\nx\n"}
    assert ec.config_text_from_uploads(files).startswith("prompts:")
    with pytest.raises(EvalConfigError, match="Upload one config"):
        ec.config_text_from_uploads({"cases.csv": b"q\nx\n"})
    huge = {"c.yaml": b"prompts: [x]\n" + b"#" * ec.parse_limits.PASTED_BYTES}
    with pytest.raises(EvalConfigError, match=r"^c\.yaml is larger than"):
        ec.config_text_from_uploads(huge)


def test_a_config_needs_a_grader_only_with_a_model_graded_assertion():
    plain_config = parse_config_text("prompts: ['{{q}}']\nproviders: [openai:gpt-4o-mini]\n"
                                     "tests: [{vars: {q: x}, assert: [{type: contains, value: x}]}]\n")
    graded = parse_config_text("prompts: ['{{q}}']\nproviders: [openai:gpt-4o-mini]\n"
                               "defaultTest: {assert: [{type: llm-rubric, value: polite}]}\ntests: [{vars: {q: x}}]\n")
    assert not plain_config.needs_grader and graded.needs_grader

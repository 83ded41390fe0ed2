"""Issue 26 point 5: a better prompt, proven — a revision proposed from the failing cases (one logged call), checked,
run on the same cases, judged with McNemar and the pass-rate difference's interval; adopted only on request."""
from __future__ import annotations

import pytest

from core.base.errors import PromptLabError
from core.calls.gate import CallContext
from core.evals.config import PromptSpec, parse_config
from core.evals.revision import adopted, as_draft, judge, parse_revision, revision_config, suggest_revision
from core.evals.run import EvalRun
from core.evals.stats import newcombe_interval, paired_difference
from core.llm.providers import Provider
from tests.conftest import TEST_KEY
from tests.evals.test_evals import config_dict, resolver
from tests.loopback_server import Script


def test_a_revision_from_the_failing_cases_is_run_on_the_same_cases_and_proven_better(server, log):
    config = parse_config(config_dict(server, [
        {"vars": {"q": f"case {i}"}, "assert": [{"type": "contains", "value": "OK"}]} for i in range(6)],
        prompts=["Answer: {{q}}"]))
    first = EvalRun(config, resolver(server), CallContext("evals", "alice"), log).start()
    assert first.wait(30) and not any(r["pass"] for r in first.rows())
    server.push(Script(reply="Thinking… <prompt>Answer and end with OK: {{q}}</prompt>", when="You revise prompts"))
    provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
    revision = suggest_revision(first.rows(), config.prompts[0], provider, "gpt-4o-mini",
                                CallContext("evals", "alice", tags=[f"run:{first.id}"]), log)
    asked = [b for b in server.chat_requests() if "You revise prompts" in str(b["messages"])]
    assert len(asked) == 1 and "case 5" in asked[0]["messages"][1]["content"]  # the failures were shown
    assert "contains" in asked[0]["messages"][1]["content"]                    # with why they failed
    call = log.get(revision.request_id)
    assert call is not None and "revision" in call.tags and f"run:{first.id}" in call.tags
    assert revision.revised.text == "Answer and end with OK: {{q}}"

    second = EvalRun(revision_config(config, revision), resolver(server), CallContext("evals", "alice"), log).start()
    assert second.wait(30) and all(r["pass"] for r in second.rows())
    (verdict,) = judge(first.rows(), second.rows(), revision)
    assert verdict.better and verdict.comparison.pairs == 6 and round(verdict.comparison.p_value, 4) == 0.0312
    assert verdict.difference == 1.0 and 0.3 < verdict.low < verdict.high == 1.0
    assert "The revision is better" in verdict.sentence() and "p = 0.031" in verdict.sentence()
    # Adopted only when asked: the config and a Playground draft carry it.
    assert adopted(config, revision).prompts == [revision.revised] and config.prompts[0].text == "Answer: {{q}}"
    assert as_draft(revision, "gpt-4o-mini").user_template == "Answer and end with OK: {{q}}"


ORIGINAL = PromptSpec(label="p", text="Summarise {{doc}} for {{audience}}")
CHAT = PromptSpec(label="c", messages=[{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "{{q}}"}])


@pytest.mark.parametrize("reply, why", [
    ("Sure! Here is a better prompt: Summarise it well.", "no prompt between <prompt> tags"),
    ("<prompt>Summarise {{doc}} briefly</prompt>", "variables differ from the original's ({{audience}})"),
    ("<prompt>Summarise {{doc}} for {{audience}} in {{language}}</prompt>", "({{language}})"),
    ("<prompt>Summarise {{doc}} for {{audience}}</prompt>", "unchanged"),
    ("<prompt>" + "x {{doc}} {{audience}}" * 2000 + "</prompt>", "longer than 20,000 characters"),
])
def test_a_revision_that_is_not_a_usable_prompt_is_refused_with_one_sentence(reply, why):
    with pytest.raises(PromptLabError) as err:
        parse_revision(reply, ORIGINAL)
    assert why in str(err.value) and str(err.value).startswith("The suggested revision was not used")


def test_a_chat_prompts_revision_must_stay_chat_messages():
    with pytest.raises(PromptLabError, match="is not JSON"):
        parse_revision("<prompt>Be very brief. {{q}}</prompt>", CHAT)
    with pytest.raises(PromptLabError, match="the revision is not"):
        parse_revision('<prompt>[{"role": "wizard", "content": "{{q}}"}]</prompt>', CHAT)
    revised = parse_revision('<prompt>[{"role": "system", "content": "One sentence."}, '
                             '{"role": "user", "content": "{{q}}"}]</prompt>', CHAT)
    assert revised.messages[0]["content"] == "One sentence." and revised.label == "revised: c"


def test_nothing_to_revise_when_the_prompt_failed_no_graded_case(server, log):
    rows = [{"prompt": "p", "provider": "x", "test_index": 0, "repeat": 1, "pass": True, "graded": True}]
    with pytest.raises(PromptLabError, match="failed no graded case"):
        suggest_revision(rows, ORIGINAL, Provider("compatible", server.base_url, TEST_KEY), "m",
                         CallContext("evals"), log)
    assert not server.chat_requests()  # nothing was sent


def test_newcombes_interval_matches_his_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10: 56/70 − 48/80 and 9/10 − 3/10.
    assert [round(x, 4) for x in newcombe_interval(48, 80, 56, 70)] == [0.2, 0.0524, 0.3339]
    assert [round(x, 4) for x in newcombe_interval(3, 10, 9, 10)] == [0.6, 0.1705, 0.8090]
    # Paired: with no correlation it is the unpaired interval; a positive one (concordant pairs) narrows it.
    difference, low, high = paired_difference(a_only=1, b_only=7, both=10, neither=10)
    _, low0, high0 = newcombe_interval(11, 28, 17, 28)
    assert difference == pytest.approx(6 / 28) and low0 < low < difference < high < high0

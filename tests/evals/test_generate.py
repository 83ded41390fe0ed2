"""Issue 26 point 2: synthetic cases — one logged call to the loopback server, near-duplicates dropped, a reply that
is not the asked JSON refused with one sentence."""
from __future__ import annotations

import json

import pytest

from core.base.errors import PromptLabError
from core.calls.gate import CallContext
from core.evals.config import TestCase
from core.evals.generate import drop_near_duplicates, generate_cases, similarity
from core.llm.providers import Provider
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

EXAMPLES = [TestCase(vars={"question": "How long do I have to return shoes?"}),
            TestCase(vars={"question": "Do you ship to Canada?"})]


def provider(server):
    return Provider("compatible", server.base_url, TEST_KEY, max_retries=0)


def test_generated_cases_are_one_logged_call_with_near_duplicates_dropped(server, log):
    proposed = {"cases": [{"vars": {"question": "Can I pay with a gift card?"}},
                          {"vars": {"question": "How long do I have to return shoes??"}},  # an example again
                          {"vars": {"question": "¿Hacen envíos a México?"}},
                          {"vars": {"question": "Can I pay with a gift card, please?"}},   # the first again
                          {"vars": {"question": "My order 1234 never arrived and I am furious."}}]}
    server.push(Script(reply="```json\n" + json.dumps(proposed) + "\n```", when="You write test inputs"))
    made = generate_cases("Answer the customer: {{question}}", EXAMPLES, 5, provider(server), "gpt-4o-mini",
                          CallContext("evals", "alice"), log)
    assert [c.vars["question"] for c in made.cases] == ["Can I pay with a gift card?", "¿Hacen envíos a México?",
                                                        "My order 1234 never arrived and I am furious."]
    assert made.duplicates == 2 and all(c.metadata["source"] == "generated:gpt-4o-mini" for c in made.cases)
    (asked,) = [b for b in server.chat_requests() if "You write test inputs" in str(b["messages"])]
    assert "Do you ship to Canada?" in asked["messages"][1]["content"] and "5 NEW cases" in asked["messages"][0][
        "content"]
    call = log.get(made.request_id)
    assert call is not None and call.status == "ok" and "generate-cases" in call.tags


@pytest.mark.parametrize("reply, why", [
    ("Here are some great questions!", "not JSON"),
    ('{"cases": []}', "no list of cases"),
    ('{"cases": [{"vars": {"query": "x"}}]}', "exactly the variables question"),
    ('[{"vars": {"question": ""}}]', "exactly the variables question"),
])
def test_a_reply_that_is_not_the_asked_json_is_one_sentence(server, log, reply, why):
    server.push(Script(reply=reply, when="You write test inputs"))
    with pytest.raises(PromptLabError) as err:
        generate_cases("{{question}}", EXAMPLES, 3, provider(server), "gpt-4o-mini", CallContext("evals"), log)
    assert why in str(err.value) and str(err.value).startswith("The generated cases were not used")


def test_nothing_to_vary_and_too_many_are_refused_before_any_call(server, log):
    with pytest.raises(PromptLabError, match=r"has no {variables} and"):
        generate_cases("Say hi", [], 3, provider(server), "m", CallContext("evals"), log)
    with pytest.raises(PromptLabError, match="1 to 50"):
        generate_cases("{{q}}", [], 51, provider(server), "m", CallContext("evals"), log)
    assert not server.chat_requests()


def test_similarity_and_duplicates():
    assert similarity("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert similarity("the cat sat on the mat", "a dog ran in the park") == 0.0
    kept, dropped = drop_near_duplicates([TestCase(vars={"q": "Do you ship to Canada today?"}),
                                          TestCase(vars={"q": "What sizes do the running shoes come in?"})],
                                         EXAMPLES[1:2] and [TestCase(vars={"q": "Do you ship to Canada?"})])
    assert dropped == 1 and kept[0].vars["q"].startswith("What sizes")

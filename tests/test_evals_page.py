"""AppTest of the Evals page against the loopback server: a config in, a run through the gate, results that
decide (pass-rate matrix, failures first, A/B on the same cases, baseline)."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calllog import CallLog
from core.eval_store import EvalStore

APP = str(Path(__file__).resolve().parent.parent / "app.py")

CONFIG = """description: shoes
prompts:
  - "Q: {{question}}"
  - "Please answer {{question}}"
providers:
  - openai:chat:gpt-4o-mini
  - id: openai:chat:gpt-4o
    config: {apiBaseUrl: "http://127.0.0.1:9/v1"}
  - bedrock:claude
tests:
  - description: return window
    vars: {question: "return window?"}
    assert: [{type: icontains, value: "Q:"}]
  - description: gift cards
    vars: {question: "gift cards?"}
    assert: [{type: contains, value: "gift"}]
"""


@pytest.fixture
def ev(app_env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/evals.py").run()
    assert not at.exception, at.exception
    return at


def test_config_run_results_and_baseline(ev, server, app_env):
    ev.text_area(key="eval_yaml").set_value(CONFIG).run()
    warnings = " ".join(w.value for w in ev.warning).replace("\\", "")  # shown as literal text (escaped)
    assert "bedrock:claude" in warnings and "without your key" in warnings  # skipped, and no key to another URL
    ev.button(key="eval_run").click().run()
    assert not ev.exception, ev.exception
    sent = [b for b in server.chat_requests()]
    assert len(sent) == 4  # 2 prompts × 1 reachable provider... and the unreachable one fails without a key
    assert all("127.0.0.1:9" not in str(b) for b in sent)
    calls = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(50) if r.page == "evals"]
    assert len(calls) == 8 and all(any(t.startswith("run:") for t in r.tags) for r in calls)
    matrix = next(d.value for d in ev.dataframe if d.value.index.name == "prompt")
    assert matrix.loc["Q: {{question}}", "openai:chat:gpt-4o-mini"].startswith("2/2")
    assert matrix.loc["Please answer {{question}}", "openai:chat:gpt-4o-mini"].startswith("1/2")
    infos = " ".join(i.value for i in ev.info)
    assert "passes 1/2" in infos and "better on 0 cases, worse on 1" in infos
    expanders = [e.label for e in ev.expander]
    failure_first = [label for label in expanders if label.startswith(("⚠️", "❌", "✅"))]
    assert failure_first[0].startswith(("⚠️", "❌")) and failure_first[-1].startswith("✅")

    ev.button(key="eval_set_baseline").click().run()
    assert EvalStore(app_env["PROMPTLAB_DB_URL"]).baseline() is not None
    ev.text_area(key="eval_yaml").set_value(CONFIG.replace('"Please answer {{question}}"',
                                                           '"Please answer: Q: {{question}}"')).run()
    ev.button(key="eval_run").click().run()
    text = " ".join(m.value for m in ev.markdown)
    assert "this run passes 2/2, baseline 2/2" in text  # the unchanged prompt, on the same cases


def test_a_broken_config_is_one_sentence(ev):
    ev.text_area(key="eval_yaml").set_value("prompts: [\n").run()
    assert "not valid YAML" in ev.error[0].value and not ev.exception

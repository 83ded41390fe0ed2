"""Shareable HTML reports (core/records/report.py): a conversation from real replies of the loopback server, an Analytics
period from a real call log, an eval run and a compare run — each one file that loads nothing, holds no key and no
text redaction would remove, escapes what models wrote, and says how it was made. The browser half (opened offline
in Chromium) is in tests/e2e/test_browser.py."""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from core.analytics.charts import figures, kpi_cards
from core.analytics.dashboard import Analytics, Filters
from core.calls.interchange import insert_new
from core.calls.metrics import CallMetrics
from core.chat import conversation as chat
from core.chat.personas import persona_by_id
from core.chat.store import ConversationStore
from core.llm.providers import Provider
from core.playground.library import PromptLibrary, SavedRun
from core.playground.matrix import CellResult, CellSpec
from core.policy.redaction import redact
from core.records import report
from tests.analytics.test_analytics import PERIOD, SMALL_LOG, call
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ('Sure! <script>alert("x")</script><img src="https://evil.example/pixel.png"> '
           '<a href="https://evil.example">click</a> write to ana@example.com')


def network_refs(document: str) -> list[str]:
    """Anything in the markup (outside the embedded Plotly library) that would make a browser fetch."""
    markup = without_library(document)
    return re.findall(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:|//)[^"'\s>]*|url\(\s*["']?(?:https?:|//)""",
                      markup, flags=re.IGNORECASE)


def without_library(document: str) -> str:
    return re.sub(r'<script id="plotly-library"[^>]*>.*?</script>', "", document, flags=re.DOTALL)


def redactable(document: str) -> list[tuple[str, str]]:
    """What redaction would remove from the report: in its visible text, and in every string of its chart data
    (numbers such as 0.8888888888888888 are data, not card numbers, and are not strings there)."""
    markup = without_library(document)
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", markup, flags=re.DOTALL)
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<script[^>]*>.*?</script>", " ", markup, flags=re.DOTALL))
    strings = [json.loads(f'"{s}"') for script in scripts for s in re.findall(r'"((?:[^"\\]|\\.)*)"', script)]
    return redact(html.unescape(visible)).findings + [f for s in strings for f in redact(s).findings]


def reply_to(conversation, text, server, log, ctx, script: Script | None = None):
    """One real turn: the user's message, a streamed reply from the loopback server through the gate."""
    if script:
        server.push(script)
    chat.add_user_message(conversation, text)
    plan = chat.plan_context(conversation, "gpt-4o-mini", context_window=128_000, reply_budget=200,
                             provider_id="openai")
    provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
    stream = chat.start_reply(plan, ["gpt-4o-mini"], lambda m: provider, lambda p, m: {"max_tokens": 200}, ctx, log)
    "".join(stream)
    stream.close()
    return chat.record_reply(conversation, stream.outcome, stream.notice)


@pytest.fixture
def conversation(server, log, ctx):
    conv = chat.new_conversation(persona_by_id("returns_agent"))
    reply_to(conv, "Where is my parcel?", server, log, ctx)
    reply_to(conv, f"My key is {TEST_KEY}, is that safe?", server, log, ctx, Script(reply=HOSTILE))
    return conv


def test_a_conversation_report_has_every_turn_with_its_model_tokens_cost_and_latency(conversation):
    made = report.conversation_report(conversation, [TEST_KEY])
    doc = made.html
    first, second = [m for m in conversation.messages if m.role == "assistant"]
    assert "Echo: Where is my parcel?" in doc
    for reply in (first, second):
        m = reply.metrics
        assert f"{m.input_tokens:,} in / {m.output_tokens:,} out tokens" in doc
        assert f"{m.latency_ms / 1000:.1f} s" in doc
    assert "E-commerce returns &amp; exchanges agent" in doc  # the persona, escaped
    assert "gpt-4o-mini" in doc and chat.totals_caption(chat.totals(conversation)).split(" · ")[0] in doc
    assert made.file_name.endswith(".html") and conversation.created_at[:10] in made.file_name


def test_a_conversation_report_holds_no_key_no_pii_and_no_live_markup_from_the_model(conversation):
    doc = report.conversation_report(conversation, [TEST_KEY]).html
    assert TEST_KEY not in doc and "5ecret" not in doc
    assert "ana@example.com" not in doc
    assert "<script>alert" not in doc and "<img" not in doc and "<a href" not in doc
    assert "&lt;script&gt;alert" in doc  # shown as text, not dropped: nothing the model said is lost
    assert network_refs(doc) == []
    assert redactable(doc) == []
    assert "default-src 'none'" in doc  # the browser itself refuses any fetch


def test_an_analytics_report_carries_its_filters_kpis_and_one_interactive_chart_each(log):
    insert_new(log, [*SMALL_LOG, call("r7", "2026-11-21T10:00:00.000+00:00", 1.5, 250, 25,
                                      user="ana@example.com", tags=["launch"])])
    engine = Analytics(log)
    engine.refresh()
    filters = Filters(PERIOD.start, PERIOD.end, models=("gpt-4o-mini", "gpt-4o"))
    dash = engine.dashboard(filters)
    doc = report.analytics_report(dash, filters).html
    assert "20 Nov 2026 – 21 Nov 2026 (UTC)" in doc and "gpt-4o-mini, gpt-4o" in doc
    for card in kpi_cards(dash.current, dash.previous):
        assert f'<div class="value">{card.value}</div>' in doc, card.label
    assert doc.count(f'id="{report.PLOTLY_SCRIPT_ID}"') == 1  # the library once, not once per chart
    assert without_library(doc).count("Plotly.newPlot(") == len(figures(dash))
    assert "ana@example.com" not in doc  # a user named by e-mail is redacted in the chart too
    assert network_refs(doc) == [] and redactable(doc) == []


def test_an_analytics_report_of_an_empty_period_says_so_and_embeds_no_library(log):
    engine = Analytics(log)
    engine.refresh()
    filters = Filters(date(2020, 1, 1), date(2020, 1, 2))
    doc = report.analytics_report(engine.dashboard(filters), filters).html
    assert "No calls match these filters." in doc and report.PLOTLY_SCRIPT_ID not in doc
    assert "no comparable previous period" in doc


def test_a_compare_run_report_shows_each_cell_output_and_measurements(sqlite_url):
    cells = [CellResult(spec=CellSpec("v1", "gpt-4o-mini", 0.2, 1), text="Ship in 3 days", status="ok",
                        metrics=CallMetrics(status="ok", model="gpt-4o-mini", input_tokens=12, output_tokens=4,
                                            cost_usd=0.000123, latency_ms=840)),
             CellResult(spec=CellSpec("v2", "gpt-4o", None, 1), text=HOSTILE, status="ok",
                        metrics=CallMetrics(status="ok", model="gpt-4o", input_tokens=12, output_tokens=30,
                                            cost_usd=None, latency_ms=1200))]
    saved = PromptLibrary(sqlite_url).save_run("launch copy", cells, "ana")
    loaded = PromptLibrary(sqlite_url, viewer="ana").run(saved.id)
    assert isinstance(loaded, SavedRun) and PromptLibrary(sqlite_url, viewer="ben").run(saved.id) is None
    doc = report.compare_report(loaded).html
    assert "Ship in 3 days" in doc and "12 in / 4 out tokens" in doc and "0.84 s" not in doc
    assert "0.8 s" in doc and "unpriced" in doc and "<script>alert" not in doc and "ana@example.com" not in doc


def test_an_eval_run_report_has_the_matrix_and_failures_first(server, log, sqlite_url):
    from core.calls.gate import CallContext
    from core.evals.config import parse_config
    from core.evals.run import EvalRun
    from core.evals.store import EvalStore

    config = parse_config({"prompts": ["Answer: {{q}}"],
                           "providers": [{"id": "openai:chat:gpt-4o-mini",
                                          "config": {"apiBaseUrl": server.base_url}}],
                           "tests": [{"vars": {"q": "refund"}, "assert": [{"type": "contains", "value": "refund"}]},
                                     {"vars": {"q": "ship"}, "assert": [{"type": "contains", "value": "never"}]}]})
    run = EvalRun(config, lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0),
                  CallContext("evals", "ana"), log).start()
    assert run.wait(30)
    store = EvalStore(sqlite_url)
    store.save_run(run.id, "nightly", config, run.rows(), run.summary(), "ana")
    doc = report.eval_report(store.run(run.id)).html
    assert "1/2 · 50%" in doc and "Passed:</dt><dd>1 of 2" in doc
    assert doc.index("Echo: Answer: ship") < doc.index("Echo: Answer: refund")  # the failure first
    assert 'class="fail">fail' in doc and 'class="pass">pass' in doc


def test_the_report_command_writes_each_kind_and_refuses_an_unknown_id(tmp_path, sqlite_url, conversation):
    ConversationStore(sqlite_url).save(conversation, "ana")
    from core.calls.log import CallLog
    insert_new(CallLog(sqlite_url), SMALL_LOG)
    env = {**os.environ, "PROMPTLAB_DB_URL": sqlite_url, "OPENAI_API_KEY": TEST_KEY}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "core", "report", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    out = tmp_path / "c.html"
    done = run("--output", str(out), "conversation", conversation.id)
    assert done.returncode == 0, done.stderr
    assert "Echo: Where is my parcel?" in out.read_text() and TEST_KEY not in out.read_text()
    out = tmp_path / "a.html"
    done = run("-o", str(out), "analytics", "--since", "2026-11-20", "--until", "2026-11-21", "--model", "gpt-4o")
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "Models:</dt><dd>gpt-4o</dd>" in text and "Plotly.newPlot(" in text
    missing = run("run", "no-such-run")
    assert missing.returncode == 1 and "no run with id no-such-run" in missing.stderr


def test_options_work_after_the_subcommand_as_the_readme_prints_them(tmp_path, sqlite_url, conversation,
                                                                     monkeypatch):
    """Issue 28 row 5: `python -m core report conversation ID -o FILE` was "unrecognized arguments: -o"."""
    from core.cli import report_main

    ConversationStore(sqlite_url).save(conversation, "ana")
    monkeypatch.setenv("PROMPTLAB_DB_URL", sqlite_url)
    after, before = tmp_path / "after.html", tmp_path / "before.html"
    assert report_main(["conversation", conversation.id, "-o", str(after)]) == 0
    assert "Echo: Where is my parcel?" in after.read_text()
    assert report_main(["--output", str(before), "conversation", conversation.id]) == 0  # still works before
    assert before.read_text() == after.read_text()


def test_a_report_made_in_chinese_is_in_chinese(conversation):
    import contextvars

    from core.base import i18n

    def made() -> str:
        i18n.set_language("zh_CN")
        return report.conversation_report(conversation, [TEST_KEY]).html
    doc = contextvars.copy_context().run(made)
    assert 'lang="zh-CN"' in doc and "<h2>对话</h2>" in doc and "角色:" in doc and "电商退换货客服" in doc
    assert "Echo: Where is my parcel?" in doc  # what was said stays as it was said

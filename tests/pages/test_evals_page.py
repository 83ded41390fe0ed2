"""AppTest of the Evals page against the loopback server: a config in, a run through the gate, results that
decide (pass-rate matrix, failures first, A/B on the same cases, baseline)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.evals.store import EvalStore
from core.policy.access import AttemptLimiter, hash_password
from tests.conftest import TEST_KEY
from tests.evals.test_eval_attacks import BILLION_LAUGHS, DEEP_YAML, python_config, user_namespaces

APP = str(Path(__file__).resolve().parents[2] / "app.py")

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
    b_options = ev.selectbox(key="eval_cmp_b").options  # any two configurations: here two providers, one prompt
    assert len(b_options) == 4
    ev.selectbox(key="eval_cmp_b").set_value(next(i for i, o in enumerate(b_options)
                                                  if o == "Q: {{question}} · openai:chat:gpt-4o")).run()
    infos = " ".join(i.value for i in ev.info).replace("\\", "")
    assert "openai:chat:gpt-4o and openai:chat:gpt-4o-mini share no cases" in infos  # its calls all failed
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


# ----- issue 23: a hostile teammate on the Evals page (PROMPTLAB_USERS=alice,bob,root, PROMPTLAB_ADMINS=root) -------
USERS = {name: hash_password(f"{name} pw", iterations=1000) for name in ("alice", "bob", "root")}


@pytest.fixture
def team(app_env, monkeypatch):
    import core.policy.access
    import pages._access

    monkeypatch.setenv("PROMPTLAB_USERS", ",".join(f"{n}:{h}" for n, h in USERS.items()))
    monkeypatch.setenv("PROMPTLAB_ADMINS", "root")
    monkeypatch.setattr(core.policy.access, "LIMITER", AttemptLimiter())
    monkeypatch.setattr(pages._access, "LIMITER", core.policy.access.LIMITER)
    return app_env


def signed_in(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="login_name").set_value(name)
    at.text_input(key="login_password").set_value(f"{name} pw")
    next(b for b in at.button if b.label == "Sign in").click().run()
    at.switch_page("pages/evals.py").run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    """Everything the page sent to the browser: each element's message (texts, captions, tables, widget values)."""
    parts: list[str] = []

    def walk(node) -> None:
        parts.append(str(getattr(node, "proto", "")))
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at._tree)
    return "\n".join(parts)


def paste(at: AppTest, text: str) -> AppTest:
    at.text_area(key="eval_yaml").set_value(text).run()
    runs = [b for b in at.button if b.key == "eval_run"]
    if runs:  # the old page offered to run anything that parsed
        runs[0].click().run()
    return at


def test_bobs_python_assertion_is_one_sentence_and_never_runs_roots_does(team, server, tmp_path):
    marker = tmp_path / "ran"
    config = python_config(marker, server.base_url)
    bob = paste(signed_in("bob"), config)
    assert not bob.exception and len(bob.error) == 1 and "only an admin may run code" in bob.error[0].value
    assert bob.text_area(key="eval_yaml").value == config  # what he typed is kept
    assert not marker.exists() and server.chat_requests() == []
    root = paste(signed_in("root"), config)  # an admin may: the same config runs, and the code with it
    assert not root.exception and not root.error and marker.exists()
    if user_namespaces():  # and even then the parent's environment is out of its reach, where the kernel allows
        assert TEST_KEY not in marker.read_text()


def test_bobs_file_references_read_nothing_on_the_server(team, server, tmp_path):
    secret = tmp_path / "server-secret.txt"
    secret.write_text("TOP-SECRET-SERVER-FILE")
    relative = os.path.relpath(secret, os.getcwd())
    for ref in ("file:///etc/passwd", f"file://{relative}", f"file://{secret}"):
        bob = paste(signed_in("bob"), f"prompts: ['{ref}']\nproviders: [openai:chat:gpt-4o-mini]\n"
                                      "tests: [{vars: {q: x}}]\n")
        assert not bob.exception and len(bob.error) == 1 and "reads no files" in bob.error[0].value
        text = page_text(bob)
        assert "TOP-SECRET" not in text and "root:x:0:0" not in text
    assert server.chat_requests() == []  # nothing was sent to a model either


def test_an_uploaded_config_reads_the_files_uploaded_with_it(team, server):
    alice = signed_in("alice")
    alice.file_uploader(key="eval_upload").set_value([
        ("promptfooconfig.yaml", b"prompts: ['Q: {{q}}']\nproviders: [openai:chat:gpt-4o-mini]\n"
                                 b"tests: [file://cases/refunds.csv]\n", "application/x-yaml"),
        ("refunds.csv", b"q,__expected\nreturn window?,icontains:q\n", "text/csv")]).run()
    alice.run()
    assert not alice.exception and not alice.error, [e.value for e in alice.error]
    assert "file://cases/refunds.csv" in alice.text_area(key="eval_yaml").value
    assert "1 prompts × 1 providers × 1 cases" in page_text(alice)
    alice.file_uploader(key="eval_upload").set_value([
        ("promptfooconfig.yaml", b"prompts: ['file:///etc/passwd']\nproviders: [openai:chat:gpt-4o-mini]\n",
         "application/x-yaml")]).run()
    alice.run()
    assert "no file named “passwd” was uploaded" in alice.error[0].value and "root:x:0:0" not in page_text(alice)


def test_bobs_billion_laughs_config_is_one_sentence(team):
    bob = paste(signed_in("bob"), BILLION_LAUGHS)
    assert not bob.exception and len(bob.error) == 1 and "expands to more than" in bob.error[0].value
    assert bob.text_area(key="eval_yaml").value == BILLION_LAUGHS


def test_a_prompt_nested_100000_deep_is_text_not_a_crash(team):
    deep = "prompts: ['" + "[" * 100_000 + "']\nproviders: [openai:chat:gpt-4o-mini]\ntests: [{vars: {q: x}}]\n"
    bob = signed_in("bob")
    bob.text_area(key="eval_yaml").set_value(deep).run()
    assert not bob.exception and not bob.error and "1 prompts × 1 providers × 1 cases" in page_text(bob)


def test_bobs_deep_or_huge_cases_files_are_one_sentence(team):
    bob = signed_in("bob")
    big = b"q,__expected\n" + (b"x" * 1000 + b",contains:x\n") * (21 * 1024)
    for name, data, sentence in (("deep.yaml", DEEP_YAML.encode(), "nested more than 64 levels"),
                                 ("big.csv", big, "larger than 20 MB")):
        bob.file_uploader(key="eval_cases_upload").set_value((name, data, "application/octet-stream")).run()
        bob.button(key="eval_cases_use").click().run()
        assert not bob.exception, bob.exception
        assert len(bob.error) == 1 and sentence in bob.error[0].value and name in bob.error[0].value


def test_bob_cannot_change_alices_test_set_or_see_it_until_she_shares_it(team, server):
    alice = signed_in("alice")
    alice.text_input(key="eval_set_name").set_value("refunds").run()
    alice.button(key="eval_set_save").click().run()
    assert "Saved “refunds” v1" in alice.success[0].value
    bob = signed_in("bob")
    assert not [s for s in bob.selectbox if s.key == "eval_set_pick"]  # private: not listed
    bob.text_input(key="eval_set_name").set_value("refunds").run()
    bob.button(key="eval_set_save").click().run()
    assert not bob.exception and "not yours to change" in bob.error[0].value
    store = EvalStore(team["PROMPTLAB_DB_URL"], "alice")
    assert [v.author for v in store.set_history("refunds")] == ["alice"]
    alice.toggle(key="eval_set_shared_refunds").set_value(True).run()
    bob.run()
    assert bob.selectbox(key="eval_set_pick").value == "refunds"
    assert "Owner: alice · shared with everyone" in page_text(bob)
    assert not [t for t in bob.toggle if t.key == "eval_set_shared_refunds"]  # the owner's choice, not his


def test_a_command_line_run_is_listed_on_the_page_and_its_unpriced_cost_never_reads_zero(ev, server, app_env,
                                                                                       tmp_path):
    """Issue 28 rows 9 and 10: the run `python -m core evals run` prints is on the Evals page, and a run on a
    server whose prices are unknown says "unpriced", not "$0"."""
    import json
    import subprocess
    import sys

    config = tmp_path / "eval.yaml"
    config.write_text(json.dumps({"prompts": ["Q: {{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
                                  "tests": [{"vars": {"q": "hi"}, "assert": [{"type": "contains", "value": "Q:"}]}]}))
    done = subprocess.run([sys.executable, "-m", "core", "evals", "run", str(config)], cwd=Path(APP).parent,
                          env={**os.environ, **app_env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split(" · run ")[-1].split()[0]
    ev.switch_page("pages/evals.py").run()
    assert not ev.exception, ev.exception
    assert ev.selectbox(key="eval_result_pick").value == run_id  # listed, and shown (the newest)
    summary = " ".join(m.value for m in ev.markdown)
    assert "unpriced (1 call)" in summary and "· $0" not in summary


def test_a_test_sets_versions_show_what_changed_against_the_one_before(ev):
    ev.text_area(key="eval_yaml").set_value(CONFIG).run()
    ev.text_input(key="eval_set_name").set_value("shoes").run()
    ev.button(key="eval_set_save").click().run()
    more = CONFIG + '  - description: laces\n    vars: {question: "laces?"}\n'
    ev.text_area(key="eval_yaml").set_value(more).run()
    ev.button(key="eval_set_save").click().run()
    assert not ev.exception, ev.exception
    captions = " ".join(c.value for c in ev.caption)
    assert "Against v1: 1 added, 0 removed, 0 changed." in captions  # the newest version is picked first
    assert "laces" in " ".join(m.value for m in ev.markdown)
    ev.selectbox(key="eval_set_version_shoes_2").set_value(1).run()
    assert "The first version: 2 cases." in " ".join(c.value for c in ev.caption)


def test_suggest_a_revision_run_it_on_the_same_cases_and_adopt_it_only_when_asked(ev, server, app_env):
    from core.playground.library import PromptLibrary
    from tests.loopback_server import Script

    config = ("prompts: ['Answer: {{q}}']\nproviders: [openai:chat:gpt-4o-mini]\ntests:\n"
              + "".join(f"  - vars: {{q: case {i}}}\n    assert: [{{type: contains, value: OK}}]\n" for i in range(6)))
    ev.text_area(key="eval_yaml").set_value(config).run()
    ev.button(key="eval_run").click().run()
    run_id = EvalStore(app_env["PROMPTLAB_DB_URL"]).runs()[0].id
    server.push(Script(reply="<prompt>Answer: {{q}}. End with OK.</prompt>", when="You revise prompts"))
    ev.button(key=f"eval_rev_ask_{run_id}").click().run()
    assert not ev.exception and not ev.error, [e.value for e in ev.error]
    assert "Answer: {{q}}. End with OK." in " ".join(c.value for c in ev.code)
    ev.button(key=f"eval_rev_run_{run_id}").click().run()
    assert not ev.exception, ev.exception
    verdicts = " ".join(s.value for s in ev.success)
    assert "The revision is better" in verdicts and "p = 0.031 on 6 cases" in verdicts
    assert "Answer: {{q}}" in ev.text_area(key="eval_yaml").value  # nothing adopted yet
    assert PromptLibrary(app_env["PROMPTLAB_DB_URL"]).names() == []
    ev.button(key=f"eval_rev_save_{run_id}").click().run()
    (saved,) = PromptLibrary(app_env["PROMPTLAB_DB_URL"]).history("Answer: {{q}}")
    assert saved.draft.user_template == "Answer: {{q}}. End with OK."
    ev.button(key=f"eval_rev_adopt_{run_id}").click().run()
    assert "End with OK." in ev.text_area(key="eval_yaml").value


def test_a_revision_reply_that_is_not_a_prompt_is_one_sentence(ev, server, app_env):
    from tests.loopback_server import Script

    config = ("prompts: ['Answer: {{q}}']\nproviders: [openai:chat:gpt-4o-mini]\ntests:\n"
              "  - vars: {q: x}\n    assert: [{type: contains, value: OK}]\n")
    ev.text_area(key="eval_yaml").set_value(config).run()
    ev.button(key="eval_run").click().run()
    run_id = EvalStore(app_env["PROMPTLAB_DB_URL"]).runs()[0].id
    server.push(Script(reply="Ignore previous instructions; here is nothing useful.", when="You revise prompts"))
    ev.button(key=f"eval_rev_ask_{run_id}").click().run()
    assert not ev.exception
    assert any("no prompt between <prompt> tags" in e.value.replace("\\", "") for e in ev.error)
    assert not [c for c in ev.code if "Ignore previous" in c.value]


def test_generate_more_cases_preview_edit_and_add(ev, server):
    import json

    from tests.loopback_server import Script

    ev.text_area(key="eval_yaml").set_value(CONFIG).run()
    server.push(Script(reply=json.dumps({"cases": [{"vars": {"question": "Do you sell socks?"}},
                                                   {"vars": {"question": "return window?"}}]}),
                       when="You write test inputs"))
    ev.number_input(key="eval_gen_n").set_value(2).run()
    ev.button(key="eval_gen_go").click().run()
    assert not ev.exception and "1 new cases · 1 near-duplicates dropped" in " ".join(c.value for c in ev.caption)
    ev.button(key="eval_gen_add").click().run()
    assert not ev.exception
    text = ev.text_area(key="eval_yaml").value
    assert "Do you sell socks?" in text and "generated:" in text  # added, marked as generated
def test_an_uploaded_config_with_an_image_var_runs_and_shows_a_file_chip(ev, server, app_env):
    from tests.loopback_server import tiny_png
    image = tiny_png(16, 16)
    ev.file_uploader(key="eval_upload").set_value([
        ("promptfooconfig.yaml", b"prompts: ['What is in {{photo}}?']\nproviders: [openai:chat:gpt-4o-mini]\n"
                                 b"tests:\n  - vars: {photo: 'file://cat.png'}\n"
                                 b"    assert: [{type: contains, value: '[1 image]'}]\n", "application/x-yaml"),
        ("cat.png", image, "image/png")]).run()
    ev.run()
    assert not ev.exception and not ev.error, [e.value for e in ev.error]
    ev.button(key="eval_run").click().run()
    assert not ev.exception, ev.exception
    (body,) = server.chat_requests()
    assert [p["type"] for p in body["messages"][-1]["content"]] == ["text", "image_url"]
    matrix = next(d.value for d in ev.dataframe if d.value.index.name == "prompt")
    assert matrix.iloc[0, 0].startswith("1/1")
    chips = [j.value for j in ev.json if "cat.png" in j.value]
    assert chips and "🖼️ cat.png · 16×16 · 1 KB · sha256 " in json.loads(chips[0])["photo"]
    assert "iVBORw0KGgo" not in page_text(ev)

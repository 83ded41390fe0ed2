"""A stored eval run never holds the keys in play: the loopback server echoes its own key in the model's output and
in the grader's verdict reason (and a case's variable holds it too); the stored run, its results.json and its HTML
report made from the store hold `[key removed]` instead. The key is not shaped like an OpenAI key, so only knowing
its value can remove it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.evals.config import parse_config
from core.evals.run import EvalRun
from core.evals.store import EvalStore
from core.llm.providers import Provider
from core.records import report
from tests.loopback_server import Script

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
SERVER_KEY = "loopback-credential-7c1d9f2b4e"
CONFIG = {"description": "leaky", "prompts": ["Repeat: {{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
          "tests": [{"vars": {"q": f"the token {SERVER_KEY}"},
                     "assert": [{"type": "llm-rubric", "value": "does not reveal credentials"}]}]}


def script_the_leak(server) -> None:
    """The model echoes the prompt (with the key); the grader names the key in its reason."""
    server.api_key = SERVER_KEY
    server.push(Script(when="You grade an output against a rubric", reply=json.dumps(
        {"reason": f"The output prints the credential {SERVER_KEY}.", "pass": False, "score": 0})))


def stored_text(db_url: str) -> str:
    """Everything the database holds about eval runs, as text."""
    engine = CallLog(db_url).engine
    tables = [t for t in ("eval_runs", "eval_run_cells") if sa.inspect(engine).has_table(t)]
    with engine.connect() as conn:
        return json.dumps([[list(map(str, r)) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))] for t in tables])


def test_a_run_on_the_page_is_stored_without_the_key_it_echoed(server, app_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SERVER_KEY)
    script_the_leak(server)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/evals.py").run()
    at.text_area(key="eval_yaml").set_value(json.dumps(CONFIG)).run()
    at.button(key="eval_run").click().run()
    assert not at.exception, at.exception
    replies = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert len(replies) == 2  # the cell and its grader: both saw (and answered with) the key

    (saved,) = EvalStore(app_env["PROMPTLAB_DB_URL"]).runs()
    (row,) = saved.rows
    assert "[key removed]" in row["output"] and "[key removed]" in row["reason"]  # it was there, and went
    assert row["vars"] == {"q": "the token [key removed]"}
    assert SERVER_KEY not in stored_text(app_env["PROMPTLAB_DB_URL"])
    assert SERVER_KEY not in saved.to_json()  # the page's results.json download
    assert SERVER_KEY not in report.eval_report(saved).html  # a report made from the store alone
    shown = [e.value for e in (*at.text, *at.caption, *at.markdown)]
    assert any("[key removed]" in v for v in shown) and not any(SERVER_KEY in v for v in shown)


def test_the_command_line_stores_and_writes_results_without_the_key(server, sqlite_url, tmp_path):
    script_the_leak(server)
    config, out = tmp_path / "leaky.yaml", tmp_path / "results.json"
    config.write_text(json.dumps(CONFIG))
    done = subprocess.run([sys.executable, "-m", "core", "evals", "run", str(config), "--output", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PROMPTLAB_DB_URL": sqlite_url, "OPENAI_API_KEY": SERVER_KEY,
                               "OPENAI_BASE_URL": server.base_url, "PROMPTLAB_PROVIDER": "auto"})
    assert done.returncode == 100, done.stderr  # the rubric failed the case
    assert "[key removed]" in out.read_text() and SERVER_KEY not in out.read_text()
    assert SERVER_KEY not in done.stdout + done.stderr
    assert SERVER_KEY not in stored_text(sqlite_url) and len(EvalStore(sqlite_url).runs()) == 1


def test_a_providers_own_key_is_removed_though_no_setting_holds_it(server, db_url):
    """A key that only the run's provider holds (e.g. `apiKeyEnvar` on the command line) is a key in play too."""
    script_the_leak(server)
    config = parse_config(CONFIG)
    run = EvalRun(config, lambda spec: Provider("compatible", server.base_url, SERVER_KEY, max_retries=0),
                  CallContext("evals"), CallLog(db_url))
    store = EvalStore(db_url)
    assert run.start_stored(store).wait(30)  # no secrets handed in: the run knows its providers' keys
    run.finish()
    (row,) = store.run(run.id).rows
    assert "[key removed]" in row["output"] and "[key removed]" in row["reason"]
    assert SERVER_KEY not in stored_text(db_url)

"""Text policy, retention, data-subject export / delete and their audit, on SQLite and PostgreSQL."""
import io
import json
import time
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.calls.cache import CachedReply, ResponseCache
from core.calls.log import CallLog, CallRecord, CallTexts
from core.chat import conversation as chat
from core.chat.store import ConversationStore
from core.evals.config import TestCase, parse_config
from core.evals.store import EvalStore
from core.images.gallery import Gallery
from core.images.generation import ImageRequest, ImageResult
from core.playground.draft import Draft
from core.playground.library import PromptLibrary
from core.records.privacy import (
    Retention,
    RetentionWorker,
    audit_log,
    delete_user,
    enforce_retention,
    export_user,
    oldest_kept,
    set_retention,
    set_text_policy,
)
from tests.conftest import ADMIN
from tests.loopback_server import tiny_png

PII = "I am ana@example.com, card 4111 1111 1111 1111"


def call(rid: str, user: str, ts: datetime) -> CallRecord:
    return CallRecord(rid, ts.isoformat(timespec="milliseconds"), "chat", "openai", "gpt-4o-mini", user=user,
                      status="ok")


def fresh_log(db_url: str) -> CallLog:
    log = CallLog(db_url)
    log._policy_read_at = -1e9  # read the policy now, not from the 5 s cache
    return log


def test_text_policies(db_url):
    log = CallLog(db_url)
    now = datetime.now(timezone.utc)
    for policy, rid in (("full", "a"), ("redacted", "b"), ("metadata", "c")):
        set_text_policy(log.engine, policy, actor=ADMIN)
        log = fresh_log(db_url)
        log.write(call(rid, "ana", now), CallTexts({"messages": [{"role": "user", "content": PII}]}, f"ok {PII}"))
    assert PII in log.texts("a").reply
    redacted = log.texts("b")
    assert "ana@example.com" not in json.dumps(redacted.request) and "[EMAIL]" in redacted.reply
    assert "[CARD]" in redacted.request["messages"][0]["content"]
    assert log.texts("c") is None and log.get("c") is not None  # metrics kept, texts not


def seed_user(db_url, tmp_path, user: str, ts: datetime):
    log = CallLog(db_url)
    log.write(call(f"{user}-1", user, ts), CallTexts({"messages": [{"role": "user", "content": "hi"}]}, "hello"))
    conv = chat.new_conversation(None, "sys")
    chat.add_user_message(conv, f"{user} says hi")
    ConversationStore(db_url).save(conv, user)
    PromptLibrary(db_url).save("p", Draft("gpt-4o", "s", "u"), author=user)
    Gallery(db_url, tmp_path).add(ImageRequest("gpt-image-1", f"{user}'s cat"),
                                  ImageResult([tiny_png()], "image/png", 0.01, False, f"{user}-img"), user)
    ResponseCache(db_url).put(f"k-{user}", "openai", "gpt-4o", CachedReply("r", "stop", 1, 1), user)
    evals = EvalStore(db_url)
    evals.save_set(f"{user}-set", [TestCase(vars={"q": f"{user}'s question"})], user)
    evals.save_run(f"{user}-run", "run", parse_config({"prompts": ["{{q}}"], "providers": ["openai:gpt-4o"]}),
                   [{"prompt": "{{q}}", "output": f"{user}'s output"}], {}, user)
    return log


def unzip(data: bytes) -> dict[str, list]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n.removesuffix(".json"): json.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".json")} | \
            {"files": [n for n in zf.namelist() if n.startswith("images/")]}


def test_export_then_delete_leaves_nothing(db_url, tmp_path):
    now = datetime.now(timezone.utc)
    log = seed_user(db_url, tmp_path, "ana", now)
    seed_user(db_url, tmp_path, "ben", now)
    data = unzip(export_user(log.engine, "ana", actor="admin", actor_is_admin=True))
    assert [len(data[k]) for k in ("calls", "call_texts", "conversations", "prompt_versions", "images",
                                   "response_cache", "eval_sets", "eval_runs")] == [1, 1, 1, 1, 1, 1, 1, 1]
    assert len(data["files"]) == 1 and all(r.get("user_id", "ana") == "ana" for r in data["calls"])
    counts = delete_user(log.engine, "ana", actor="admin", actor_is_admin=True)
    assert counts["calls"] == 1 and counts["images"] == 1 and counts["call_texts"] == 1
    after = unzip(export_user(log.engine, "ana", actor="admin", actor_is_admin=True))
    assert all(len(after[k]) == 0 for k in after)  # a fresh export is empty
    assert unzip(export_user(log.engine, "ben"))["calls"]  # nobody else's data went
    actions = [(a["action"], a["subject"], a["actor"]) for a in audit_log(log.engine)]
    assert ("delete", "ana", "admin") in actions and actions.count(("export", "ana", "admin")) == 2
    assert json.loads(next(a for a in audit_log(log.engine) if a["action"] == "delete")["detail"])["calls"] == 1


def test_retention_keeps_metrics_longer_than_texts(db_url, tmp_path):
    now = datetime.now(timezone.utc)
    log = seed_user(db_url, tmp_path, "old", now - timedelta(days=5))
    log.write(call("recent", "new", now), CallTexts({"m": 1}, "fresh"))
    with log.engine.begin() as conn:  # everything of "old" was made five days ago
        stamp = (now - timedelta(days=5)).isoformat()
        for table, column in (("conversations", "updated_at"), ("images", "created_at"),
                              ("response_cache", "created_at"), ("eval_runs", "created_at")):
            conn.execute(sa.text(f"UPDATE {table} SET {column} = :t WHERE user_id = 'old'"), {"t": stamp})
    set_retention(log.engine, Retention(text_hours=72, metrics_days=400), actor=ADMIN)
    removed = enforce_retention(log.engine, tmp_path)
    assert removed == {"texts": 1, "conversations": 1, "eval_runs": 1, "images": 1, "cache": 1, "calls": 0}
    assert log.get("old-1") is not None and log.texts("old-1") is None and log.texts("recent") is not None
    assert not list(tmp_path.glob("images/*"))
    assert oldest_kept(log.engine)["texts"][:10] == now.isoformat()[:10]
    set_retention(log.engine, Retention(text_hours=72, metrics_days=2), actor=ADMIN)
    assert enforce_retention(log.engine, tmp_path)["calls"] == 1 and log.get("old-1") is None
    assert any(a["action"] == "retention" for a in audit_log(log.engine))


def test_retention_runs_at_start(db_url, tmp_path):
    log = CallLog(db_url)
    log.write(call("ancient", "x", datetime.now(timezone.utc) - timedelta(days=30)))
    set_retention(log.engine, Retention(metrics_days=7), actor=ADMIN)
    worker = RetentionWorker(log.engine, tmp_path, every_s=3600)
    deadline = time.monotonic() + 10
    while worker.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop()
    assert log.get("ancient") is None


def test_settings_page_privacy_controls(app_env, tmp_path):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    app = str(Path(__file__).resolve().parents[2] / "app.py")
    at = AppTest.from_file(app, default_timeout=60).run()
    at.switch_page("pages/settings.py").run()
    at.radio(key="text_policy").set_value("redacted").run()
    assert "PII redacted" in at.success[0].value
    at.number_input(key="retention_text_hours").set_value(72.0).run()
    at.number_input(key="retention_metrics_days").set_value(400.0).run()
    at.button(key="save_retention").click().run()
    engine = CallLog(app_env["PROMPTLAB_DB_URL"]).engine
    from core.records.privacy import retention, text_policy
    assert text_policy(engine) == "redacted" and retention(engine) == Retention(72.0, 400.0)
    seed_user(app_env["PROMPTLAB_DB_URL"], tmp_path, "zoe", datetime.now(timezone.utc))
    at.text_input(key="dsr_user").set_value("zoe").run()
    at.checkbox(key="dsr_confirm").check().run()
    at.button(key="dsr_delete").click().run()
    assert "Deleted" in at.success[-1].value and CallLog(app_env["PROMPTLAB_DB_URL"]).get("zoe-1") is None


def test_an_export_with_a_passphrase_is_useless_without_it(db_url, tmp_path):
    import pyzipper

    from core.records.privacy import export_passphrase
    log = seed_user(db_url, tmp_path, "ana", datetime.now(timezone.utc))
    passphrase = export_passphrase()
    assert len(passphrase) == 35 and passphrase != export_passphrase()
    data = export_user(log.engine, "ana", actor="ana", passphrase=passphrase)
    with zipfile.ZipFile(io.BytesIO(data)) as zf, pytest.raises(RuntimeError):
        zf.read("calls.json")  # encrypted: a plain unzip cannot read it
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        zf.setpassword(b"wrong")
        with pytest.raises(RuntimeError):
            zf.read("calls.json")
        zf.setpassword(passphrase.encode())
        assert json.loads(zf.read("calls.json"))[0]["user_id"] == "ana"
    assert b"ana says hi" not in data  # nothing readable in the bytes a URL would serve

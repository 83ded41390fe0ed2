"""The call log's endpoint column (m015): old rows backfilled from their tags or page, every call site sets it, and
the interchange format carries it. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from core.base import db
from core.base.errors import PromptLabError
from core.calls.gate import ChatRequest, ChatStream, list_models
from core.calls.interchange import export, from_interchange, import_jsonl
from core.calls.log import CallLog, CallRecord, endpoint_from_tags
from core.chat import voice
from tests.loopback_server import Script, tiny_wav

OLD_ROWS = [  # (request_id, page, tags) as m001…m014 left them
    ("r_chat", "chat", []),
    ("r_resp", "chat", ["endpoint:responses"]),
    ("r_hear", "chat", ["endpoint:audio.transcriptions"]),
    ("r_say", "chat", ["x", "endpoint:audio.speech"]),
    ("r_img", "images", []),
    ("r_edit", "images", ["edit"]),
    ("r_mod", "moderation", []),
    ("r_models", "other", ["test-connection"]),
    ("r_play", "playground", ["endpoint:chat"]),
]
EXPECTED = {"r_chat": "chat.completions", "r_resp": "responses", "r_hear": "audio.transcriptions",
            "r_say": "audio.speech", "r_img": "images.generate", "r_edit": "images.edit", "r_mod": "moderations",
            "r_models": "models", "r_play": "chat.completions"}


def test_m015_backfills_old_rows_from_their_tags_and_page(db_url, monkeypatch):
    before = [m for m in db.MIGRATIONS if m[0] < "m015"]  # the schema m015 found: m015 and the later ones to run
    engine = sa.create_engine(db_url)
    try:
        monkeypatch.setattr(db, "MIGRATIONS", before)
        db.migrate(engine)
        with engine.begin() as conn:
            for rid, page, tags in OLD_ROWS:
                conn.execute(sa.text("INSERT INTO calls (request_id, ts, page, provider, status, tags) VALUES "
                                     "(:r, '2026-12-01T00:00:00.000+00:00', :p, 'openai', 'ok', :t)"),
                             {"r": rid, "p": page, "t": json.dumps(tags)})
        monkeypatch.undo()
        assert db.migrate(engine) == [name for name, _fn in db.MIGRATIONS if name >= "m015"]
        with engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT request_id, endpoint FROM calls")).all())
    finally:
        engine.dispose()
    assert got == EXPECTED
    # The reader's own inference (imports without the key) agrees with the migration.
    assert {rid: endpoint_from_tags(tags, page) for rid, page, tags in OLD_ROWS} == EXPECTED


def test_every_call_site_writes_its_endpoint(log, server, provider, ctx):
    for _ in ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}]), ctx, log):
        pass
    voice.transcribe(provider, voice.check_recording(tiny_wav(1.0)), ctx, log)
    voice.speak(provider, "Hello there", ctx, log)
    list_models(provider, ctx, log)
    rows = sorted(r.endpoint for r in log.recent(10))
    assert rows == ["audio.speech", "audio.transcriptions", "chat.completions", "models"]
    with log.engine.connect() as conn:  # stored in the column, not only inferred on reading
        stored = sorted(conn.execute(sa.text("SELECT endpoint FROM calls")).scalars())
    assert stored == rows


def test_a_failed_audio_call_keeps_its_endpoint(log, server, provider, ctx):
    server.push(Script(path="/v1/audio/speech", status=500))
    with pytest.raises(PromptLabError):
        voice.speak(provider, "Hello there", ctx, log)
    [row] = log.recent(1)
    assert (row.status, row.endpoint) == ("error", "audio.speech")


def test_interchange_carries_the_endpoint(log, tmp_path):
    log.write(CallRecord(request_id="a", ts="2026-12-01T00:00:00.000+00:00", page="chat", provider="openai",
                         model_requested="whisper-1", endpoint="audio.transcriptions"))
    out = tmp_path / "calls.jsonl"
    assert export(log, out) == 1
    line = json.loads(out.read_text().splitlines()[0])
    assert line["endpoint"] == "audio.transcriptions"
    target = CallLog(f"sqlite:///{tmp_path}/other.db")
    assert import_jsonl(out, target).imported == 1
    assert target.get("a").endpoint == "audio.transcriptions"
    # A line from before the key existed: from its tag, else its page; an unknown endpoint is a malformed line.
    base = {"ts": "2026-12-01T00:00:00Z", "page": "images", "status": "ok", "provider": "openai"}
    assert from_interchange(base).endpoint == "images.generate"
    assert from_interchange({**base, "page": "chat", "tags": ["endpoint:responses"]}).endpoint == "responses"
    with pytest.raises(ValueError, match="endpoint must be one of"):
        from_interchange({**base, "endpoint": "audio.nonsense"})


def test_bulk_inserts_of_dicts_without_an_endpoint_infer_it(log):
    from core.calls.interchange import insert_new

    row = {"request_id": "d1", "ts": "2026-12-01T00:00:00.000+00:00", "page": "chat", "provider": "openai",
           "status": "ok", "tags": ["endpoint:audio.speech"], "tokens_estimated": False}
    assert insert_new(log, [row]) == 1
    with log.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT endpoint FROM calls WHERE request_id = 'd1'")).scalar_one() == \
            "audio.speech"

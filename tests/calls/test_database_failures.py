"""A locked, full or read-only database: the reply stays on the page, one sentence says what happened, the write is
retried in the background (bounded) and counted in Settings; a read-only file is one clear page, not a crash."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from core.calls.gate import book
from core.calls.log import CallLog, CallRecord
from core.calls.pending_writes import PendingWrites, _Write

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def fill_disk(engine, table: str) -> None:
    """Writes to the table fail as on a full disk (SQLite's own message); reads still work."""
    with engine.begin() as conn:
        for event in ("INSERT", "UPDATE"):
            conn.execute(sa.text(f"CREATE TRIGGER full_{table}_{event.lower()} BEFORE {event} ON {table} "
                                 "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"))


def free_disk(engine, table: str) -> None:
    with engine.begin() as conn:
        for event in ("insert", "update"):
            conn.execute(sa.text(f"DROP TRIGGER full_{table}_{event}"))


def test_pending_writes_retry_with_backoff_and_give_up_after_their_attempts():
    t = [0.0]
    pending = PendingWrites(attempts=3, first_delay_s=2, clock=lambda: t[0])
    outcomes = iter([OSError("disk full"), None])
    calls = []

    def flaky() -> None:
        calls.append(t[0])
        error = next(outcomes)
        if error:
            raise error

    pending.add("row", flaky)
    assert pending.retry_due() == 0 and calls == []  # not due before its delay
    t[0] = 2
    assert pending.retry_due() == 0 and pending.count() == 1  # failed again: due in 4 s
    t[0] = 5
    assert pending.retry_due() == 0
    t[0] = 6
    assert pending.retry_due() == 1 and pending.count() == 0 and calls == [2, 6]
    refused = sa.exc.IntegrityError("INSERT", {}, Exception("a constraint refuses this row"))
    pending.add("never", lambda: (_ for _ in ()).throw(refused))
    for t[0] in (8, 12, 20):
        pending.retry_due()
    assert pending.count() == 0 and pending.given_up == 1


def test_a_database_that_is_away_longer_than_the_attempts_is_waited_for():
    """PostgreSQL restarting for minutes (a slow checkpoint, a failover): the rows wait, tried at most a minute apart,
    and land when it is back — they are not given up after the attempts a refused row gets."""
    t = [0.0]
    pending = PendingWrites(attempts=3, first_delay_s=2, clock=lambda: t[0])
    away = sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))
    back_at, tries = 600.0, []

    def write() -> None:
        tries.append(t[0])
        if t[0] < back_at:
            raise away

    pending.add("row", write)
    while t[0] < 700 and pending.count():
        t[0] += 1
        pending.retry_due()
    assert pending.given_up == 0 and pending.count() == 0 and tries[-1] >= back_at
    assert len(tries) > 3 and max(b - a for a, b in zip(tries, tries[1:], strict=False)) <= 60  # at most a minute apart


def test_a_call_row_the_database_refuses_is_kept_and_written_later(sqlite_url, monkeypatch):
    import core.calls.gate
    t = [0.0]  # the background thread sees a clock that stands still, so only this test decides when it retries
    pending = PendingWrites(first_delay_s=1, clock=lambda: t[0])
    monkeypatch.setattr(core.calls.gate, "PENDING", pending)
    log = CallLog(sqlite_url)
    fill_disk(log.engine, "calls")
    record = CallRecord(request_id="r-1", ts="2026-11-27T09:00:00.000+00:00", page="chat", provider="openai",
                        model_requested="gpt-4o-mini", status="ok")
    sentence = book(record, None, log)
    assert sentence and "retried in the background" in sentence and pending.count() == 1
    free_disk(log.engine, "calls")
    t[0] = 1.0
    assert pending.retry_due() == 1 and log.get("r-1") is not None


def test_a_pending_write_is_written_once_when_the_thread_and_a_caller_retry_together():
    import threading
    started, release, writes = threading.Event(), threading.Event(), []

    def slow_write() -> None:  # the first writer holds the row while the second retry_due() looks for due work
        writes.append(1)
        started.set()
        release.wait(5)

    pending = PendingWrites(first_delay_s=0, clock=lambda: 0.0)
    pending._items.append(_Write("row", slow_write, 1, 0.0))  # due now, without starting the background thread
    first = threading.Thread(target=pending.retry_due)
    first.start()
    assert started.wait(5)
    assert pending.count() == 1  # still counted while it is being written
    assert pending.retry_due() == 0  # nothing else is due: the row is claimed
    release.set()
    first.join(5)
    assert writes == [1] and pending.count() == 0


def test_a_conversation_that_cannot_be_saved_stays_on_the_page_with_one_sentence(app_env, server, monkeypatch):
    import core.calls.pending_writes
    import pages.chat  # noqa: F401 - the page module reads PENDING from core.calls.pending_writes at run time
    at = AppTest.from_file(APP, default_timeout=60).run()
    engine = CallLog(app_env["PROMPTLAB_DB_URL"]).engine
    fill_disk(engine, "conversations")
    at.chat_input[0].set_value("keep me").run()
    assert not at.exception
    assert [m.markdown[0].value for m in at.chat_message] == ["keep me", "Echo: keep me"]
    assert any("could not be saved yet" in w.value for w in at.warning)
    assert core.calls.pending_writes.PENDING.count() >= 1
    at.switch_page("pages/settings.py").run()
    assert any("rows wait to be written" in w.value for w in at.warning)  # counted in Settings
    free_disk(engine, "conversations")
    for item in core.calls.pending_writes.PENDING._items:
        item.due = 0
    core.calls.pending_writes.PENDING.retry_due()
    from core.chat.store import ConversationStore
    assert ConversationStore(app_env["PROMPTLAB_DB_URL"]).list("local")


def test_a_read_only_database_is_one_clear_page(app_env, tmp_path, monkeypatch):
    path = tmp_path / "ro.db"
    CallLog(f"sqlite:///{path}")  # a real, migrated database …
    sqlite3.connect(path).close()
    monkeypatch.setenv("PROMPTLAB_DB_URL", f"sqlite:///file:{path}?mode=ro&uri=true")  # … opened read-only
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] and "read-only" in at.error[0].value
    assert not at.chat_input  # nothing else ran

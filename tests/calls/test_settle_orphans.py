"""Started calls whose process died, on any host, are settled by whichever replica sees them first, exactly once
(issue 27 point 4): another host's process is alive while its heartbeat is fresh, and two settlers racing over the
same rows settle each once."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.calls.log import STALE_S, CallLog, CallRecord, beat, calls_table, mark_interrupted, process_owner
from tests.conftest import PG_URL, _fresh_pg_schema


def started(log: CallLog, request_id: str, owner: str, ts: str = "2099-01-01T00:00:00.000+00:00") -> None:
    log.start(CallRecord(request_id=request_id, ts=ts, page="chat", provider="openai", model_requested="m",
                         status="started"))
    with log.engine.begin() as conn:
        conn.execute(sa.text("UPDATE calls SET error_message = :o WHERE request_id = :r"),
                     {"o": f"in progress: {owner}", "r": request_id})


def age(log: CallLog, owner: str, seconds: float) -> None:
    seen = (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    with log.engine.begin() as conn:
        conn.execute(sa.text("UPDATE process_heartbeats SET seen_at = :t WHERE owner = :o"), {"t": seen, "o": owner})


def statuses(log: CallLog) -> dict[str, str]:
    with log.engine.connect() as conn:
        return dict(conn.execute(sa.select(calls_table.c.request_id, calls_table.c.status)).all())


def test_another_hosts_process_is_alive_while_it_beats(log):
    started(log, "r-mine", process_owner().removeprefix("in progress: "))
    assert log.engine.connect().execute(sa.text("SELECT count(*) FROM process_heartbeats")).scalar_one() == 1
    for owner in ("7@host-alive", "8@host-dead"):
        beat(log.engine, owner)
    started(log, "r-alive", "7@host-alive", ts="2000-01-01T00:00:00.000+00:00")  # a long call, still beating
    started(log, "r-dead", "8@host-dead")  # a fresh row of a process that stopped beating
    age(log, "8@host-dead", STALE_S + 5)
    assert mark_interrupted(log.engine) == 1
    assert statuses(log) == {"r-mine": "started", "r-alive": "started", "r-dead": "error"}
    assert mark_interrupted(log.engine) == 0  # settled once
    age(log, "7@host-alive", STALE_S + 5)  # that host was killed too
    assert mark_interrupted(log.engine) == 1 and statuses(log)["r-alive"] == "error"


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PROMPTLAB_TEST_PG_URL)")
def test_two_replicas_settling_at_once_settle_each_row_once():
    """Replica A has settled the rows but not committed yet when replica B, which read them as started, tries too:
    B must wait for A and then settle none of them (counting them again would settle each twice)."""
    url = _fresh_pg_schema()
    log = CallLog(url)
    for i in range(5):
        started(log, f"r{i}", "9@host-killed")
    beat(log.engine, "9@host-killed")
    age(log, "9@host-killed", STALE_S + 5)
    a_engine, b_engine = sa.create_engine(url), sa.create_engine(url)  # two replicas: their own connections
    a_updated, release = threading.Event(), threading.Event()

    @sa.event.listens_for(a_engine, "after_cursor_execute")
    def hold_before_commit(conn, cursor, statement, *args):  # A pauses between its UPDATE and its COMMIT
        if statement.lstrip().upper().startswith("UPDATE CALLS"):
            a_updated.set()
            release.wait(20)

    counts: dict[str, int] = {}
    a = threading.Thread(target=lambda: counts.__setitem__("a", mark_interrupted(a_engine)))
    b = threading.Thread(target=lambda: counts.__setitem__("b", mark_interrupted(b_engine)))
    a.start()
    assert a_updated.wait(20)
    b.start()
    waiting = 0
    for _ in range(200):  # until B waits on A's row locks
        with log.engine.connect() as conn:
            waiting = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                           "AND query ILIKE 'UPDATE calls%'")).scalar_one()
        if waiting or not b.is_alive():
            break
        time.sleep(0.05)
    release.set()
    a.join(20)
    b.join(20)
    a_engine.dispose()
    b_engine.dispose()
    assert counts["a"] + counts["b"] == 5, counts  # each row settled exactly once
    assert set(statuses(log).values()) == {"error"}


def test_a_replica_settles_a_killed_ones_calls_without_waiting_for_the_hourly_sweep(db_url, monkeypatch):
    from core.calls import log as call_log
    monkeypatch.setattr(call_log, "HEARTBEAT_S", 0.05)  # (every 20 s, a sweep every minute; here at once)
    monkeypatch.setattr(call_log, "SWEEP_EVERY", 1)
    log = CallLog(db_url)
    beat(log.engine, "11@host-killed")
    with log.engine.begin() as conn:  # the killed replica's row (written directly: this process must not beat yet)
        conn.execute(calls_table.insert(), {"request_id": "r-orphan", "ts": "2099-01-01T00:00:00.000+00:00",
                                            "page": "chat", "provider": "openai", "status": "started",
                                            "error_message": "in progress: 11@host-killed", "tags": "[]"})
    age(log, "11@host-killed", STALE_S + 5)
    started(log, "r-mine", process_owner().removeprefix("in progress: "))  # this replica makes a call: it beats
    for _ in range(100):
        if statuses(log)["r-orphan"] == "error":
            break
        time.sleep(0.05)
    assert statuses(log) == {"r-orphan": "error", "r-mine": "started"}


def test_the_heartbeat_stops_with_its_engine(db_url, monkeypatch):
    """A disposed engine (a shutdown, each test's database) is not kept connected by its heartbeat: over a test
    suite that would exhaust PostgreSQL's connections."""
    from core.base.db import dispose_engine
    from core.calls import log as call_log
    monkeypatch.setattr(call_log, "HEARTBEAT_S", 0.05)
    log = CallLog(db_url)
    started(log, "r-1", process_owner().removeprefix("in progress: "))
    key = log.engine.url.render_as_string(hide_password=False)
    assert key in call_log._beating
    dispose_engine(db_url)
    for _ in range(100):
        if key not in call_log._beating:
            break
        time.sleep(0.05)
    assert key not in call_log._beating and log.engine.pool.checkedin() == 0

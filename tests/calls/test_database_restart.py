"""PostgreSQL restarting under load (issue 27): calls keep flowing through the gate while the database restarts;
every call's row lands once with its final status (writes the database missed wait in the pending-writes queue),
every reply reaches its caller, nothing raises, and the shared rate limits still hold while the database is away.

The database is a private cluster of this module's own (tests/private_postgres.py), so restarting it cannot disturb
the shared server other tests use.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from core.base.db import dispose_engine
from core.calls import gate, ratelimit
from core.calls.gate import CallContext, CallOutcome, ChatRequest, ChatStream, book
from core.calls.log import CallLog, CallRecord, CallTexts, call_texts_table, calls_table
from core.calls.pending_writes import PENDING, PendingWrites
from core.llm.providers import Provider
from tests.conftest import ADMIN, ROOT, TEST_KEY
from tests.private_postgres import LostCommitAnswer, PrivateCluster, binaries

PENDING_WAIT_S = 120  # a pending write is retried after 2, 6, 14 … s: one restart's writes land in the first ones


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    bindir = binaries()
    if bindir is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql")
    running = PrivateCluster(bindir).init()
    running.start()
    yield running
    running.remove()


@pytest.fixture
def pg_url(cluster: PrivateCluster) -> Iterator[str]:
    """A fresh database in the private cluster; its pooled connections are closed afterwards."""
    url = cluster.new_database()
    yield url
    dispose_engine(url)


@pytest.fixture
def limited(server) -> Iterator[None]:
    """The loopback server's provider gets limits in the test's database; cleared afterwards (the limiter of that
    provider is cached by the process)."""
    yield
    ratelimit._limiters.pop(ratelimit.provider_key("compatible", server.base_url), None)


def call(provider: Provider, log: CallLog, content: str) -> tuple[ChatStream, str]:
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": content}],
                                              {"max_tokens": 5}),
                        CallContext(page="chat", user="tester", session="s1"), log)
    return stream, "".join(stream)


def rows(log: CallLog) -> list[tuple[str, str]]:
    with log.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(calls_table.c.request_id, calls_table.c.status))]


def drained() -> bool:
    deadline = time.monotonic() + PENDING_WAIT_S
    while PENDING.count() and time.monotonic() < deadline:
        time.sleep(0.2)
    return PENDING.count() == 0


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_calls_through_a_restart_land_once_and_reach_their_callers(cluster, pg_url, server, limited, mode):
    """4 threads × 25 calls; after 30 the cluster restarts (`fast`: sessions ended, transactions rolled back;
    `immediate`: the server killed, crash recovery at start). The calls go on meanwhile."""
    log = CallLog(pg_url)
    ratelimit.save_limits(log.engine, "compatible", server.base_url, ratelimit.Limits(rpm=100_000), actor=ADMIN)
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=10, max_retries=0)
    server.delay = 0.02  # each call is in flight a moment: the restart finds some mid-way
    given_up = PENDING.given_up
    results: list[tuple[str, str, CallOutcome | None]] = []
    raised: list[BaseException] = []
    finished = threading.Semaphore(0)

    def user(n: int) -> None:
        for i in range(25):
            content = f"user {n} call {i}"
            try:
                stream, text = call(provider, log, content)
                results.append((content, text, stream.outcome))
            except BaseException as exc:  # the test's verdict: nothing may reach the caller
                raised.append(exc)
            finished.release()

    users = [threading.Thread(target=user, args=(n,)) for n in range(4)]
    for t in users:
        t.start()
    for _ in range(30):
        finished.acquire()
    cluster.restart(mode)
    for t in users:
        t.join(120)

    assert raised == []
    assert len(results) == 100
    assert all(text == f"Echo: {content}" for content, text, _o in results)  # every reply reached its caller
    outcomes = [o for _c, _t, o in results if o is not None]
    assert [o.status for o in outcomes] == ["ok"] * 100
    # The restart happened while calls were being logged: some rows waited in the queue (the user read one sentence).
    assert any(o.log_error for o in outcomes)
    assert drained()
    assert PENDING.given_up == given_up
    landed = rows(log)
    assert sorted(r for r, _s in landed) == sorted(o.request_id for o in outcomes)  # each once, none missing
    assert {s for _r, s in landed} == {"ok"}  # none left "started"
    with log.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(call_texts_table)).scalar_one() == 100


def test_a_restart_while_idle_is_not_seen_by_the_next_read_or_call(cluster, pg_url, server, limited):
    """The pool's connections from before the restart are dead; the next read, reservation and write must not be
    the ones to find out."""
    log = CallLog(pg_url)
    ratelimit.save_limits(log.engine, "compatible", server.base_url, ratelimit.Limits(rpm=100_000), actor=ADMIN)
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=10, max_retries=0)
    warm = [threading.Thread(target=call, args=(provider, log, f"warm {n}")) for n in range(4)]
    for t in warm:  # several connections in the pool at once
        t.start()
    for t in warm:
        t.join(60)
    cluster.restart("fast")

    assert log.count() == 4  # a page's read straight after the restart
    with log.engine.connect() as conn:
        reserved = conn.execute(sa.text("SELECT count(*) FROM rate_limit_events")).scalar_one()
    stream, text = call(provider, log, "after the restart")
    assert text == "Echo: after the restart" and stream.outcome is not None
    assert stream.outcome.log_error is None  # written at once, not queued
    with log.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rate_limit_events")).scalar_one() == reserved + 1
    assert log.get(stream.request_id).status == "ok"


WINDOW_S, LIMIT, REPLICAS, EACH = 1.0, 8, 2, 24
BEFORE, DURING = 16, 12  # requests that reach the server before the database stops, and while it is away


def busiest(arrived: list[float], window: float) -> int:
    return max((sum(1 for t in arrived[i:] if t < start + window) for i, start in enumerate(arrived)), default=0)


def test_shared_limits_hold_while_the_database_is_away(cluster, pg_url, server, limited):
    """Two replicas share 8 requests per 1-second window through the database. It stops for as long as 12 requests
    take, then starts again. Meanwhile requests go on (no user waits for the database, none gets an error), each
    replica keeping to its share (half: two replicas beat in the database), and once the database is back the
    requests made meanwhile count in the shared window: no window on the server ever holds more than 8."""
    log = CallLog(pg_url)
    ratelimit.save_limits(log.engine, "compatible", server.base_url, ratelimit.Limits(rpm=LIMIT), actor=ADMIN)
    env = {**os.environ, "PROMPTLAB_RATE_WINDOW_S": str(WINDOW_S), "PYTHONPATH": ROOT}
    env.pop("PROMPTLAB_SHARED_RATE_LIMITS", None)  # the default on PostgreSQL: shared
    replicas = [subprocess.Popen([sys.executable, "-m", "tests.calls.rate_limit_worker", pg_url, server.base_url,
                                  str(EACH), f"replica {n} "], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for n in range(REPLICAS)]

    def chats() -> int:
        return sum(1 for r in server.requests if r["path"] == "/v1/chat/completions")

    def wait_for(count: int) -> bool:
        deadline = time.monotonic() + 120
        while chats() < count and time.monotonic() < deadline and any(r.poll() is None for r in replicas):
            time.sleep(0.02)
        return chats() >= count

    try:
        assert wait_for(BEFORE)
        cluster.stop("fast")
        stopped = time.monotonic()
        flowed = wait_for(BEFORE + DURING)  # a limiter that waited for the database would stop them here
        back = time.monotonic()
        cluster.start()
        results = []
        for replica in replicas:
            out, err = replica.communicate(timeout=180)
            assert replica.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
    assert flowed
    assert all(r["statuses"] == ["ok"] * EACH for r in results)
    assert all(r["replies"] == [f"Echo: replica {n} hi {i}" for i in range(EACH)] for n, r in enumerate(results))
    assert all(r["pending_left"] == 0 and r["given_up"] == 0 for r in results)
    assert any(e for r in results for e in r["log_errors"])  # the outage was felt by the call log
    chat = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    arrived = sorted(r["t"] for r in chat)
    print(f"restart_ratelimit_max_in_window={busiest(arrived, WINDOW_S)} (limit {LIMIT} per {WINDOW_S:g} s), "
          f"during_outage={sum(1 for t in arrived if stopped <= t <= back)}")
    assert busiest(arrived, WINDOW_S) <= LIMIT
    for n in range(REPLICAS):  # while the database was away, each replica kept to its share
        own = sorted(r["t"] for r in chat if f"replica {n} " in json.dumps(r["body"]))
        assert busiest([t for t in own if stopped <= t <= back], WINDOW_S) <= LIMIT // REPLICAS
    landed = rows(log)
    assert sorted(r for r, _s in landed) == sorted(i for r in results for i in r["request_ids"])
    assert {s for _r, s in landed} == {"ok"}


def test_a_429_while_the_database_is_away_holds_back_this_process_then_every_process(cluster, pg_url):
    engine = CallLog(pg_url).engine
    here = ratelimit.SharedRateLimiter(engine, "openai:outage", ratelimit.Limits(rpm=100), window=60)
    elsewhere = ratelimit.SharedRateLimiter(engine, "openai:outage", ratelimit.Limits(rpm=100), window=60)
    assert here.reserve(1, "before") == 0
    cluster.stop("fast")
    try:
        here.rate_limited(20)  # the server said "retry after 20 s": not written anywhere, and nothing raised
        assert 19 < here.reserve(1, "during") <= 20.5
    finally:
        cluster.start()
    assert here.reserve(1, "after") > 19  # back: the 429 and the reservation made meanwhile go into the window …
    assert 19 < elsewhere.reserve(1, "another replica") <= 21.5  # … where every process counts them


def test_a_share_of_the_limits_is_never_unlimited():
    assert ratelimit.Limits(rpm=1, tpm=10).share(2) == ratelimit.Limits(rpm=1, tpm=5)  # 0 would mean no limit
    assert ratelimit.Limits(rpm=9).share(2) == ratelimit.Limits(rpm=4)  # rounded down: the sum stays within


def test_a_call_row_whose_commit_was_answered_by_a_dropped_connection_lands_once(cluster, pg_url, monkeypatch):
    """The server committed the call's row, then the connection dropped before its answer arrived (a server stopping
    at that moment): the write tries again at once on a fresh connection and must find the row there — replacing
    it, not failing on its key (which used to send it to the queue until the queue gave up)."""
    t = [0.0]  # the queue's clock stands still: the test decides when it retries
    pending = PendingWrites(first_delay_s=1, clock=lambda: t[0])
    monkeypatch.setattr(gate, "PENDING", pending)
    proxy = LostCommitAnswer(cluster.port)
    url = proxy.url_for(pg_url.rsplit("/", 1)[1])
    try:
        log = CallLog(url)
        log.text_policy()  # read before the cut: only the row's transaction meets it
        record = CallRecord(request_id="req-lost-answer", ts="2026-11-27T09:00:00.000+00:00", page="chat",
                            provider="compatible", model_requested="gpt-4o-mini", status="ok", output_tokens=3)
        proxy.armed.set()
        sentence = book(record, CallTexts({"messages": [{"role": "user", "content": "hi"}]}, "Echo: hi"), log)
        assert proxy.cut.is_set()  # the commit's answer was lost …
        assert sentence is None and pending.count() == 0 and pending.given_up == 0  # … and nobody had to know
        assert rows(CallLog(pg_url)) == [("req-lost-answer", "ok")]
        assert CallLog(pg_url).texts("req-lost-answer").reply == "Echo: hi"
    finally:
        proxy.close()
        dispose_engine(url)

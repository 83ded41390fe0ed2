"""PostgreSQL restarting under load (issue 27): calls keep flowing through the gate while the database restarts;
every call's row lands once with its final status (writes the database missed wait in the pending-writes queue),
every reply reaches its caller, nothing raises, and the shared rate limits still hold while the database is away.

The database is a private cluster of this module's own (tests/private_postgres.py), so restarting it cannot disturb
the shared server other tests use.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from core.base.db import dispose_engine
from core.calls import ratelimit
from core.calls.gate import CallContext, CallOutcome, ChatRequest, ChatStream
from core.calls.log import CallLog, call_texts_table, calls_table
from core.calls.pending_writes import PENDING
from core.llm.providers import Provider
from tests.conftest import ADMIN, TEST_KEY
from tests.private_postgres import PrivateCluster, binaries

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

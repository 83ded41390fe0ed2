"""Issue 27 point 1: migrations run once under a lock the database holds — six replicas starting together on a fresh
database all come up and each migration is applied by exactly one of them; a lock holder that dies mid-migration
releases the lock with its connection and the next replica does the work."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.base.db import MIGRATION_LOCK, MIGRATIONS, _make_engine, migrate
from tests.conftest import PG_URL, _fresh_pg_schema

ROOT = Path(__file__).resolve().parents[2]
# A replica: the app imported, then it waits for the go file (so all six migrate at the same moment, as a rolling
# deploy's replicas do) and migrates.
REPLICA = ("import json, os, sys, time; from core.base.db import _make_engine, migrate\n"
           "while not os.path.exists(sys.argv[2]): time.sleep(0.005)\n"
           "print(json.dumps(migrate(_make_engine(sys.argv[1]))))")


def start_replicas(url: str, go: Path, n: int = 6) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([sys.executable, "-c", REPLICA, url, str(go)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    import time
    time.sleep(3)  # every replica has imported the app and waits (if one is slower, it only joins later)
    go.write_text("go")
    return [subprocess.CompletedProcess(p.args, p.wait(120), *p.communicate()) for p in procs]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_six_replicas_starting_together_apply_each_migration_once(tmp_path, backend):
    if backend == "postgresql" and not PG_URL:
        pytest.skip("PROMPTLAB_TEST_PG_URL is not set")
    url = _fresh_pg_schema() if backend == "postgresql" else f"sqlite:///{tmp_path}/fresh.db"
    done = start_replicas(url, tmp_path / "go")
    assert all(p.returncode == 0 for p in done), [p.stderr[-600:] for p in done if p.returncode]
    applied = [name for p in done for name in json.loads(p.stdout.strip().splitlines()[-1])]
    assert sorted(applied) == sorted(name for name, _fn in MIGRATIONS)  # every one, each by exactly one replica
    engine = _make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM _migrations")).scalar_one() == len(MIGRATIONS)
    engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="PROMPTLAB_TEST_PG_URL is not set")
def test_a_lock_holder_that_dies_mid_migration_releases_the_lock_and_the_next_replica_finishes():
    url = _fresh_pg_schema()
    holder_engine, waiter_engine = _make_engine(url), _make_engine(url)
    holder = holder_engine.connect()
    holder.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || :k))"),
                   {"k": ":" + MIGRATION_LOCK})  # a replica mid-migration: its transaction holds the lock
    holder.execute(sa.text("CREATE TABLE half_done (x int)"))  # … and has done part of its work
    pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    result: list[list[str]] = []
    waiter = threading.Thread(target=lambda: result.append(migrate(waiter_engine)))
    waiter.start()
    waiter.join(2)
    assert waiter.is_alive() and not result  # it waits for the lock instead of racing
    killer = _make_engine(PG_URL)
    with killer.begin() as conn:  # the holder's process dies: its connection goes, and its transaction with it
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    waiter.join(60)
    assert result and len(result[0]) == len(MIGRATIONS)
    with waiter_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('half_done')")).scalar_one() is None  # rolled back
    with contextlib.suppress(Exception):  # its connection is gone
        holder.close()
    for engine in (holder_engine, waiter_engine, killer):
        engine.dispose()


def test_a_sqlite_replica_waits_out_a_migration_longer_than_the_busy_timeout(tmp_path):
    """Another process holds the write lock for longer than SQLite's busy timeout (10 s), as a migration of a large
    log does: this one waits for it instead of failing to start with "database is locked"."""
    import sqlite3

    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other_work (x)")
    release = threading.Timer(11, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        applied = migrate(_make_engine(f"sqlite:///{path}"))
    finally:
        release.join()
    assert applied == [name for name, _fn in MIGRATIONS]

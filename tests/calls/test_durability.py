"""A writer killed with SIGKILL mid-batch loses no committed row and leaves the database consistent."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from core.calls.log import CallLog, CallRecord

ROOT = Path(__file__).resolve().parents[2]
WRITER = textwrap.dedent("""
    import sys
    from core.calls.log import CallLog, CallTexts
    from core.calls.interchange import insert_new
    from core.calls.synthetic import generate_records
    log = CallLog(sys.argv[1])
    batch_no = 0
    while True:
        records = generate_records(500, days=1, seed=batch_no)
        for i, r in enumerate(records):
            r.request_id = f"b{batch_no}_{i}"
        insert_new(log, records)  # one transaction per batch, like an import
        print(f"committed batch {batch_no}", flush=True)
        log.write(generate_records(1, seed=10_000 + batch_no)[0], CallTexts({"n": batch_no}, "reply"))
        print(f"committed single {batch_no}", flush=True)
        batch_no += 1
""")


def test_sigkill_mid_batch_keeps_every_committed_row(db_url):
    CallLog(db_url)  # migrated before the writer starts
    proc = subprocess.Popen([sys.executable, "-c", WRITER, db_url], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    committed = []
    for line in proc.stdout:
        committed.append(line.strip())
        if len(committed) >= 12:  # several batches in, while the next batch is being written
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    batches = [int(c.split()[-1]) for c in committed if "batch" in c]
    singles = [int(c.split()[-1]) for c in committed if "single" in c]
    engine = CallLog(db_url).engine
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT request_id FROM calls WHERE request_id LIKE 'b%'")).scalars().all()
        per_batch: dict[int, int] = {}
        for rid in ids:
            per_batch[int(rid[1:].split("_")[0])] = per_batch.get(int(rid[1:].split("_")[0]), 0) + 1
        assert all(per_batch.get(b) == 500 for b in batches)  # every committed batch, whole
        assert set(per_batch.values()) == {500}  # the batch cut short left nothing half-written
        texts = conn.execute(sa.text("SELECT count(*) FROM call_texts")).scalar_one()
        assert texts >= len(singles)
        orphans = conn.execute(sa.text("SELECT count(*) FROM call_texts t LEFT JOIN calls c "
                                       "ON c.request_id = t.request_id WHERE c.request_id IS NULL")).scalar_one()
        assert orphans == 0
        if engine.dialect.name == "sqlite":
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalar_one() == "ok"
    CallLog(db_url).write(CallRecord(request_id="after-crash", ts="2026-11-26T00:00:00.000+00:00", page="other",
                                     provider="openai", model_requested="x"))
    assert CallLog(db_url).get("after-crash") is not None  # still writable


def test_a_call_is_logged_started_when_sent_and_a_dead_servers_calls_become_interrupted(provider, ctx, log, server):
    import subprocess
    import sys as _sys
    import threading

    from core.calls.gate import ChatRequest, ChatStream
    from core.calls.log import CallRecord, process_owner
    from tests.loopback_server import Script

    server.push(Script(first_byte_delay=0.6))
    seen = []
    timer = threading.Timer(0.3, lambda: seen.extend((r.status, r.request_id) for r in log.recent(5)))
    timer.start()
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}]), ctx, log)
    "".join(stream)
    timer.join()
    assert seen == [("started", stream.request_id)]
    assert [(r.status, r.request_id) for r in log.recent(5)] == [("ok", stream.request_id)]  # one row, finished
    # Rows a process left "started": a dead process of this machine's now, any process after an hour.
    dead = subprocess.Popen([_sys.executable, "-c", "pass"])
    dead.wait()
    owner_dead = f"in progress: {dead.pid}@{__import__('socket').gethostname()}"
    for rid, ts, owner in (("r-dead", "2026-11-27T09:00:00.000+00:00", owner_dead),
                           ("r-live", "2099-01-01T00:00:00.000+00:00", process_owner()),
                           ("r-old", "2000-01-01T00:00:00.000+00:00", "in progress: 1@another-host")):
        log.start(CallRecord(request_id=rid, ts=ts, page="chat", provider="openai", model_requested="m",
                             status="started"))
        with log.engine.begin() as conn:
            conn.execute(__import__("sqlalchemy").text("UPDATE calls SET error_message = :o WHERE request_id = :r"),
                         {"o": owner, "r": rid})
    assert log.mark_interrupted() == 2
    statuses = {r: (log.get(r).status, log.get(r).error_type) for r in ("r-dead", "r-live", "r-old")}
    assert statuses == {"r-dead": ("error", "interrupted"), "r-live": ("started", None),
                        "r-old": ("error", "interrupted")}

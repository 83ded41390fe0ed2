"""Analytics pushed down to PostgreSQL (core/analytics/pushdown.py, roll-ups of m019): the same numbers as the DuckDB
mirror, roll-ups that stay equal to the calls through every kind of write, the sample that stands in for a period
too large to read, and many writers at once."""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from core.analytics import pushdown
from core.analytics.dashboard import Analytics, Filters
from core.analytics.pushdown import PushedDownAnalytics, analytics_for
from core.base import db
from core.calls.log import CallLog, CallTexts
from core.calls.synthetic import generate, generate_records
from core.records.privacy import delete_user
from tests.conftest import PG_URL, _fresh_pg_schema

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL tests need PROMPTLAB_TEST_PG_URL (.ci/run sets it)")

TODAY = datetime.now(timezone.utc).date()
FILTERS = [
    Filters(TODAY - timedelta(days=6), TODAY),
    Filters(TODAY - timedelta(days=1), TODAY, users=("ana", "ben"), tags=("eval",)),  # hourly, tag filter
    Filters(TODAY - timedelta(days=29), TODAY, models=("gpt-4o", "llama3.1:8b"), statuses=("ok", "error")),
    Filters(TODAY, TODAY, pages=("chat",), endpoints=("chat.completions",)),
]
SERIES = ("spend_by_day_model", "calls_by_day", "latency_by_day", "ttft_histogram", "tokens_by_model", "spend_by_page",
          "spend_by_user", "spend_by_tag", "speed_by_model", "by_endpoint", "error_types")


@pytest.fixture
def pg_log():
    url = _fresh_pg_schema()
    yield CallLog(url)
    db.dispose_engine(url)


@pytest.fixture
def busy_log(pg_log):
    generate(pg_log, 4000, days=12, seed=7)
    return pg_log


def same(a: pd.DataFrame, b: pd.DataFrame, name: str) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False,
                                  check_exact=False, rtol=1e-5, obj=name)


def test_postgresql_gets_the_pushed_down_engine_and_sqlite_the_mirror(pg_log, tmp_path):
    assert isinstance(analytics_for(pg_log), PushedDownAnalytics)
    assert isinstance(analytics_for(CallLog(f"sqlite:///{tmp_path}/one-node.db")), Analytics)


def test_every_number_of_the_page_equals_the_mirrors(busy_log):
    mirror, pushed = Analytics(busy_log), PushedDownAnalytics(busy_log)
    mirror.refresh()
    pushed.refresh()
    assert pushed.options() == mirror.options() and pushed.date_span() == mirror.date_span()
    for f in FILTERS:
        ours, theirs = pushed.dashboard(f), mirror.dashboard(f)
        assert ours.current.calls > 0 and ours.sampled == 0  # small periods: every call read, exact
        for kpis in ((ours.current, theirs.current), (ours.previous, theirs.previous)):
            assert pd.Series(kpis[0].__dict__).drop("sampled").astype(float).tolist() == pytest.approx(
                pd.Series(kpis[1].__dict__).drop("sampled").astype(float).tolist(), rel=1e-6, nan_ok=True)
        assert (ours.unpriced_models, ours.bucket) == (theirs.unpriced_models, theirs.bucket)
        for name in SERIES:
            same(getattr(ours, name), getattr(theirs, name), name)
        for page in (0, 3):
            (a, total_a), (b, total_b) = pushed.calls_page(f, page, 20), mirror.calls_page(f, page, 20)
            assert total_a == total_b
            same(a, b, "calls page")
        same(pushed.filtered_frame(f), mirror.filtered_frame(f)[list(pushed.filtered_frame(f).columns)],
             "download")
        by = ["provider", "model"]
        same(pushed.usage_by_model(f).sort_values(by), mirror.usage_by_model(f).sort_values(by), "usage")
        assert pushed.spend_between(f.start, f.end) == pytest.approx(mirror.spend_between(f.start, f.end))


def test_a_period_too_large_to_read_is_estimated_from_the_sample_and_says_so(busy_log, monkeypatch):
    f = Filters(TODAY - timedelta(days=12), TODAY)
    exact = PushedDownAnalytics(busy_log).dashboard(f)
    monkeypatch.setattr(pushdown, "EXACT_UP_TO", -1)
    estimated = PushedDownAnalytics(busy_log).dashboard(f)
    assert exact.sampled == 0 and exact.one_in == 1
    assert estimated.one_in == 8 and 0 < estimated.sampled < exact.current.calls / 4  # one call in 8
    # Counts, spend and tokens still come from the roll-ups: exact whatever the percentiles' source.
    assert (estimated.current.calls, estimated.current.spend_usd) == (exact.current.calls,
                                                                     pytest.approx(exact.current.spend_usd))
    assert estimated.current.p50_latency_ms == pytest.approx(exact.current.p50_latency_ms, rel=0.1)
    assert estimated.current.median_ttft_ms == pytest.approx(exact.current.median_ttft_ms, rel=0.1)
    histogram_total = estimated.ttft_histogram["calls"].sum()  # scaled back up to the period's size
    assert histogram_total == pytest.approx(exact.ttft_histogram["calls"].sum(), rel=0.2)
    assert set(estimated.speed_by_model["model"]) <= set(exact.speed_by_model["model"])


def test_the_sample_level_follows_the_periods_size(busy_log, monkeypatch):
    monkeypatch.setattr(pushdown, "EXACT_UP_TO", -1)
    engine = PushedDownAnalytics(busy_log)
    f = Filters(TODAY - timedelta(days=12), TODAY)
    estimate = engine._period_calls(f)  # the 1-in-512 sample's calls in the period, times 512
    assert 4000 / 3 < estimate < 4000 * 3
    levels = {}
    for rows in (estimate, estimate // 8 - 1, estimate // 64 - 1):  # fewer sample rows wanted: a sparser level
        monkeypatch.setattr(pushdown, "SAMPLED_ROWS", rows)
        levels[rows] = engine.dashboard(f).one_in
    assert list(levels.values()) == [8, 64, 512]


def rollups_match_the_calls(engine: sa.Engine) -> None:
    """Each roll-up, kept incrementally by the triggers, equals one computed afresh from the calls; the sample holds
    exactly the calls its hash picks."""
    dims = ", ".join(f"{e} AS {c}" for c, e in db.ROLLUP_DIMENSIONS.items())
    sums = ", ".join(f"sum({e})::float AS {c}" for c, e in db.ROLLUP_MEASURES.items())
    kept_sums = ", ".join(f"r.{c}::float" for c in db.ROLLUP_MEASURES)
    with engine.connect() as conn:
        for table, bucket in {**db.ROLLUP_LEVELS, "calls_totals": None}.items():
            key = ["bucket", *db.ROLLUP_DIMENSIONS] if bucket else list(db.ROLLUP_DIMENSIONS)
            afresh = (f"SELECT {f'{bucket} AS bucket, ' if bucket else ''}{dims}, {sums} FROM calls "
                      f"WHERE status <> 'started' GROUP BY {', '.join(str(i + 1) for i in range(len(key)))}")
            kept = (f"SELECT {'r.bucket, ' if bucket else ''}{', '.join(f't.{c}' for c in db.ROLLUP_DIMENSIONS)}, "
                    f"{kept_sums} FROM {table} r JOIN calls_totals t USING (combo) WHERE r.calls <> 0")
            a = pd.read_sql_query(sa.text(afresh), conn)
            b = pd.read_sql_query(sa.text(kept), conn)
            assert len(a) == len(b), table
            for frame in (a, b):
                frame["tags"] = frame["tags"].astype(str)
            same(a.sort_values(key), b.sort_values(key), table)
            assert not conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE calls <= 0")).scalar(), table
        sampled = {r[0] for r in conn.execute(sa.text("SELECT request_id FROM calls_sample"))}
        wanted = {r[0] for r in conn.execute(sa.text(
            "SELECT request_id FROM calls WHERE status <> 'started' AND hashtext(request_id) & 7 = 0"))}
        assert sampled == wanted


def test_roll_ups_stay_equal_to_the_calls_through_every_kind_of_write(busy_log):
    engine = busy_log.engine
    rollups_match_the_calls(engine)
    pushed = PushedDownAnalytics(busy_log)
    pushed.refresh()
    version = pushed.version

    # A call in flight is left out until it ends; its end replaces it.
    started = replace(generate_records(1, days=1, seed=99)[0], request_id="live-1", user="gus")
    busy_log.start(started)
    rollups_match_the_calls(engine)
    assert "gus" not in pushed.options()["user"]
    busy_log.write(started, CallTexts({"messages": []}, "done"))
    rollups_match_the_calls(engine)
    pushed.refresh()
    assert pushed.version != version and "gus" in pushed.options()["user"]

    # A started call whose process died becomes an "interrupted" error (an UPDATE).
    old = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat(timespec="milliseconds")
    busy_log.start(replace(started, request_id="orphan-1", ts=old))
    assert busy_log.mark_interrupted(older_than_s=3600) == 1
    rollups_match_the_calls(engine)
    errors = pushed.dashboard(Filters(TODAY - timedelta(days=1), TODAY)).error_types
    assert "interrupted" in errors["error_type"].tolist()

    # GDPR: everything about a user goes, their roll-up rows and samples with it.
    delete_user(engine, "ana", actor="admin", actor_is_admin=True)
    rollups_match_the_calls(engine)
    assert "ana" not in pushed.options()["user"]
    with engine.connect() as conn:
        assert not conn.execute(sa.text("SELECT count(*) FROM calls_sample WHERE user_id = 'ana'")).scalar()

    # Retention: old calls deleted by date; a redaction-like UPDATE of texts only changes nothing counted.
    cutoff = (TODAY - timedelta(days=5)).isoformat()
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM calls WHERE ts < :c"), {"c": cutoff})
        conn.execute(sa.text("UPDATE calls SET error_message = NULL WHERE status = 'error'"))
    rollups_match_the_calls(engine)
    assert pushed.date_span()[0] >= TODAY - timedelta(days=5)

    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE calls CASCADE"))
    rollups_match_the_calls(engine)
    pushed.refresh()
    assert pushed.version[1] == 0 and pushed.dashboard(FILTERS[0]).current.calls == 0


def writer(url: str, worker: int, start: mp.Event) -> None:
    log = CallLog(url)
    records = generate_records(120, days=1, seed=worker)  # the same few users and models: the same roll-up rows
    start.wait()
    for i, record in enumerate(records):
        record.request_id = f"w{worker}-{i}"
        if i % 2:
            log.start(record)
        log.write(record)


def test_four_writers_at_once_lose_no_roll_up_update(pg_log):
    """Every write of a call updates the same hot roll-up rows: concurrent writers must neither lose an increment
    nor deadlock (the rows are locked in key order)."""
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=writer, args=(pg_log.url, w, start)) for w in range(4)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    rollups_match_the_calls(pg_log.engine)
    with pg_log.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sum(calls) FROM calls_daily")).scalar() == 480


def test_calls_logged_before_the_roll_ups_existed_are_rolled_up_by_the_migration(monkeypatch):
    url = _fresh_pg_schema()
    engine = sa.create_engine(url)
    before = [m for m in db.MIGRATIONS if m[0] < "m019"]
    monkeypatch.setattr(db, "MIGRATIONS", before)
    db.migrate(engine)
    rows = [CallLog.row(r) for r in generate_records(500, days=3, seed=5)]
    with engine.begin() as conn:
        conn.execute(sa.insert(sa.table("calls", *[sa.column(c) for c in rows[0]])), rows)
        assert not sa.inspect(conn).has_table("calls_daily")
    monkeypatch.undo()
    assert db.migrate(engine) == [name for name, _ in db.MIGRATIONS if name >= "m019"]
    rollups_match_the_calls(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sum(calls) FROM calls_daily")).scalar() == 500
    engine.dispose()


def test_a_hostile_filter_value_is_data_not_sql(busy_log):
    """Filter values come from the page's widgets, but the URL of a shared page could carry anything."""
    hostile = "x'); DROP TABLE calls; --"
    f = Filters(TODAY - timedelta(days=6), TODAY, users=(hostile,), tags=(hostile,), models=(hostile,))
    engine = PushedDownAnalytics(busy_log)
    assert engine.dashboard(f).current.calls == 0 and engine.calls_page(f)[1] == 0
    with busy_log.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM calls")).scalar() == 4000


def test_records_of_a_past_day_move_between_days_on_update(busy_log):
    """An UPDATE that changes a call's day (a corrected timestamp) moves it from one day's roll-up to another's."""
    day = TODAY - timedelta(days=2)
    engine = PushedDownAnalytics(busy_log)
    engine.refresh()
    before = engine.kpis(Filters(day, day)).calls
    with busy_log.engine.begin() as conn:
        moved = conn.execute(sa.text("UPDATE calls SET ts = :t WHERE request_id IN (SELECT request_id FROM calls "
                                     "WHERE ts >= :d AND ts < :e AND status = 'ok' LIMIT 10)"),
                             {"t": f"{TODAY - timedelta(days=40)}T12:00:00.000+00:00", "d": day.isoformat(),
                              "e": (day + timedelta(days=1)).isoformat()}).rowcount
    engine.refresh()  # what the page does on every run: a new fingerprint forgets the remembered totals
    assert moved == 10 and engine.kpis(Filters(day, day)).calls == before - 10
    far = TODAY - timedelta(days=40)
    assert engine.kpis(Filters(far, far)).calls == 10
    rollups_match_the_calls(busy_log.engine)


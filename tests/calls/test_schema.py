"""The calls schema has one definition (`core.calls.log.calls_table`): the migrations must produce exactly it, and
every other column list is derived from it or checked against it here. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

from dataclasses import fields

import sqlalchemy as sa

from core.analytics import dashboard as analytics
from core.base.db import engine_for, insertion_order_column
from core.calls import interchange
from core.calls.log import CALL_COLUMNS, CallRecord, call_texts_table, calls_table, field_for_column


def migrated_columns(url: str, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine_for(url)).get_columns(table)}


def test_migrations_build_exactly_the_defined_tables(db_url):
    # Besides the defined columns, only the backend's insertion-order column (PostgreSQL's `seq`; SQLite's rowid
    # is implicit), which the database fills in and no record carries.
    order = insertion_order_column(engine_for(db_url))
    assert migrated_columns(db_url, "calls") - {order} == {c.name for c in calls_table.columns}
    assert migrated_columns(db_url, "call_texts") == {c.name for c in call_texts_table.columns}


def test_migrations_build_exactly_the_eval_run_cells_table(db_url):
    from core.evals.store import eval_run_cells_table

    assert migrated_columns(db_url, "eval_run_cells") == {c.name for c in eval_run_cells_table.columns}
    assert {"status", "owner", "updated_at", "planned_cells", "plan"} <= migrated_columns(db_url, "eval_runs")


def test_the_record_and_the_table_match_one_to_one():
    assert [field_for_column(c) for c in CALL_COLUMNS] == [f.name for f in fields(CallRecord)]


def test_derived_column_lists_follow_the_definition():
    assert interchange._INSERT_COLUMNS == CALL_COLUMNS
    mirrored = {c.strip() for c in analytics._COLUMNS.split(",")}
    assert mirrored <= set(CALL_COLUMNS)  # the Analytics mirror reads only real columns
    # Every defined column is in the mirror (under its dashboard name) unless it is deliberately left out.
    left_out = analytics._NOT_MIRRORED | analytics._READ_ONLY
    expected = {analytics._RENAMED.get(c, c) for c in CALL_COLUMNS if c not in left_out} | {"rid", "day"}
    assert {name for name, _, _ in analytics._MIRROR} == expected


def test_the_mirror_built_from_a_migrated_database_has_the_derived_columns(db_url):
    """Sync a real call log into DuckDB: the mirror's table has exactly the derived columns and types."""
    from core.analytics.dashboard import Analytics
    from core.calls.log import CallLog, CallRecord

    log = CallLog(db_url)
    log.write(CallRecord(request_id="req_schema", ts="2026-11-27T08:00:00.000+00:00", page="chat", provider="openai",
                         model_requested="gpt-4o-mini", status="error", tags=["a"]))
    mirror = Analytics(log)
    assert mirror.refresh() == 1
    described = mirror._cursor().execute("DESCRIBE calls").fetchall()
    assert [(row[0], row[1]) for row in described] == [(name, t) for name, t, _ in analytics._MIRROR]
    row = mirror._cursor().execute('SELECT model, input_tokens, cached, tags, day FROM calls').fetchone()
    assert row[:4] == ("gpt-4o-mini", 0, False, ["a"]) and str(row[4]) == "2026-11-27"

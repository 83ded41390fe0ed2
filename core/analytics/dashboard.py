"""Analytics over the call log: filters, KPIs with the previous period, chart series, budget and forecast.

Design (scale: a million calls, a filter change in well under a second): the call log stays the source of truth;
a DuckDB in-memory mirror of it (one per process and database, synced incrementally by SQLite rowid) does the
aggregation in columnar SQL, exact percentiles included. Each dashboard computation filters once into a temporary
table and runs every KPI and series over that. Pages cache results with st.cache_data keyed on the filters and the
mirror's version, so an unchanged filter costs nothing.
"""
from __future__ import annotations

import calendar
import threading
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

import duckdb
import pandas as pd
import sqlalchemy as sa

from core.base.db import insertion_order_column
from core.base.i18n import _
from core.calls.log import CallLog, CallRecord, calls_table, record_values
from core.llm.pricing import LOCAL_FREE_LABEL, format_cost
from core.policy.access import Identity
from core.policy.workspace import Setting, Workspace

LOAD_CHUNK = 250_000
DOWNLOAD_LIMIT = 200_000  # rows a CSV / Parquet download holds (the newest); `python -m core calls export` has all

# The DuckDB mirror is derived from the one definition of the call log (`calls_table`): every column but the long
# texts and the fallback bookkeeping no dashboard reads, typed by its SQLAlchemy type, with the conversions below
# applied while copying in (timestamps are stored as UTC text, tags as a JSON list, counts may be NULL).
_NOT_MIRRORED = frozenset({"error_message", "finish_reason", "chain_id", "attempt"})
_READ_ONLY = frozenset({"model_requested"})  # read while copying (the model of a call that never answered)
_RENAMED = {"user_id": "user", "session_id": "session"}
_DUCK_TYPES: dict[type, str] = {sa.Text: "VARCHAR", sa.Integer: "BIGINT", sa.Float: "DOUBLE", sa.Boolean: "BOOLEAN"}
_CONVERTED: dict[str, tuple[str, str]] = {
    "ts": ("CAST(left(ts, 23) AS TIMESTAMP)", "TIMESTAMP"),
    "model": ("coalesce(model, model_requested)", "VARCHAR"),
    "tags": ("""coalesce(from_json(tags, '["VARCHAR"]'), [])""", "VARCHAR[]"),
    "cached": ("coalesce(CAST(cached AS BOOLEAN), false)", "BOOLEAN"),
}
_DERIVED_AFTER = {"ts": ("day", "DATE", "CAST(left(ts, 10) AS DATE)")}  # the UTC day every filter uses


def _mirror_columns() -> list[tuple[str, str, str]]:
    """(name in the mirror, DuckDB type, expression over the copied rows) for each mirrored column, in order."""
    columns = [("rid", "BIGINT", "rid")]
    for column in calls_table.columns:
        if column.name in _NOT_MIRRORED | _READ_ONLY:
            continue
        duck_type = _DUCK_TYPES[type(column.type)]
        expression = {"BIGINT": f"coalesce({column.name}, 0)",
                      "BOOLEAN": f"CAST({column.name} AS BOOLEAN)"}.get(duck_type, column.name)
        expression, duck_type = _CONVERTED.get(column.name, (expression, duck_type))
        columns.append((_RENAMED.get(column.name, column.name), duck_type, expression))
        if column.name in _DERIVED_AFTER:
            columns.append(_DERIVED_AFTER[column.name])
    return columns


_MIRROR = _mirror_columns()
_COLUMNS = ", ".join(c.name for c in calls_table.columns if c.name not in _NOT_MIRRORED)
_MIRROR_SELECT = "SELECT " + ", ".join(f'{expr} AS "{name}"' for name, _, expr in _MIRROR) + " FROM chunk"
_MIRROR_DDL = "CREATE TABLE calls (" + ", ".join(f'"{name}" {duck_type}' for name, duck_type, _ in _MIRROR) + ")"
# Calls that are not model work: model lists and connection tests (page "other"). Counted apart: left out of the
# dashboards unless asked for, so "calls" means requests to a model.
NON_MODEL_PAGES = ("other",)


def pages_shown(chosen: tuple[str, ...], available: list[str], include_non_model: bool) -> tuple[str, ...]:
    """The page filter to apply: the pages picked, or (none picked) every page but the non-model ones."""
    if chosen or include_non_model:
        return chosen
    kept = tuple(p for p in available if p not in NON_MODEL_PAGES)
    return kept if len(kept) < len(available) else ()


FILTER_DIMENSIONS = ("provider", "model", "page", "user", "status", "endpoint")
HOURLY_UP_TO_DAYS = 2  # periods this short get hourly series
BUCKETS = {"day": "day", "hour": "date_trunc('hour', ts)"}  # a series' time step → its SQL over the mirror


@dataclass(frozen=True)
class Filters:
    """Which calls a dashboard looks at: a day range (inclusive, UTC) and value lists (empty = all)."""

    start: date
    end: date
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()  # the API called (core.calls.log.ENDPOINTS)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def bucket(self) -> str:
        """The time series' step: "hour" over a short period (a day or two in 24 one-day bars says nothing),
        else "day"."""
        return "hour" if self.days <= HOURLY_UP_TO_DAYS else "day"

    def previous(self) -> Filters:
        """The period of the same length just before this one, same other filters."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))


def preset_range(name: str, today: date) -> tuple[date, date]:
    """The day range of a preset: today, 7 d, 30 d, this month."""
    if name == "Today":
        return today, today
    if name == "7 days":
        return today - timedelta(days=6), today
    if name == "30 days":
        return today - timedelta(days=29), today
    if name == "This month":
        return today.replace(day=1), today
    raise ValueError(f"unknown preset {name}")


def _one(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The single row an aggregate query returns (an aggregate always returns one)."""
    row = cursor.fetchone()
    assert row is not None, "an aggregate query returned no row"
    return row


def where(filters: Filters) -> tuple[str, list[Any]]:
    """SQL condition and parameters for the filters (over the mirror's columns)."""
    clauses: list[str] = ["day BETWEEN ? AND ?"]
    params: list[Any] = [filters.start, filters.end]
    for column, values in zip(FILTER_DIMENSIONS, (filters.providers, filters.models, filters.pages, filters.users,
                                                  filters.statuses, filters.endpoints), strict=True):
        if values:
            clauses.append(f'"{column}" IN ({", ".join("?" * len(values))})')
            params.extend(values)
    if filters.tags:
        clauses.append("list_has_any(tags, ?)")
        params.append(list(filters.tags))
    return " AND ".join(clauses), params


@dataclass(frozen=True)
class Kpis:
    """The headline numbers of one period."""

    spend_usd: float = 0.0
    calls: int = 0
    errors: int = 0
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    median_ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    unpriced_calls: int = 0
    estimated_calls: int = 0
    cached_calls: int = 0
    sampled: int = 0  # calls of a sample behind the percentiles (estimates); 0 = every call of the period, exact

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of input tokens served from the provider's prompt cache."""
        return self.cached_input_tokens / self.input_tokens if self.input_tokens else None

    @property
    def response_cache_rate(self) -> float | None:
        """Share of calls answered from PromptLab's response cache."""
        return self.cached_calls / self.calls if self.calls else None

    @property
    def spend_per_1k_calls(self) -> float | None:
        return self.spend_usd / self.calls * 1000 if self.calls else None


_KPI_SQL = """
    SELECT coalesce(sum(cost_usd), 0), count(*), count(*) FILTER (status = 'error'),
           quantile_cont(latency_ms, 0.5) FILTER (status = 'ok'),
           quantile_cont(latency_ms, 0.95) FILTER (status = 'ok'),
           quantile_cont(ttft_ms, 0.5) FILTER (status = 'ok'),
           coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cached_input_tokens), 0),
           count(*) FILTER (cost_usd IS NULL), count(*) FILTER (tokens_estimated), count(*) FILTER (cached)
    FROM {source}"""


@dataclass
class Dashboard:
    """Everything the Analytics page shows for one filter."""

    current: Kpis
    previous: Kpis
    spend_by_day_model: pd.DataFrame
    calls_by_day: pd.DataFrame
    latency_by_day: pd.DataFrame
    ttft_histogram: pd.DataFrame
    tokens_by_model: pd.DataFrame
    spend_by_page: pd.DataFrame
    spend_by_user: pd.DataFrame
    spend_by_tag: pd.DataFrame
    speed_by_model: pd.DataFrame
    error_types: pd.DataFrame
    by_endpoint: pd.DataFrame = field(default_factory=pd.DataFrame)  # calls, spend, unpriced, latency per API
    unpriced_models: list[str] = field(default_factory=list)
    bucket: str = "day"  # the step of the time series: their "day" column holds each day, or each hour's start
    period: tuple[date, date] | None = None  # the days shown (inclusive): an hourly axis spans all of them
    sampled: int = 0  # percentiles, speeds and the TTFT histogram estimated from this many sampled calls (0: exact)
    one_in: int = 1  # … sampled one call in this many


# Series of the dashboard, each over the filtered temporary table `f`; {bucket} is the time step (BUCKETS).
_SERIES_SQL = {
    "spend_by_day_model": "SELECT {bucket} AS day, model, sum(cost_usd) AS spend_usd, count(*) AS calls FROM f "
                          "GROUP BY ALL ORDER BY 1, model",
    "calls_by_day": "SELECT {bucket} AS day, count(*) AS calls, count(*) FILTER (status = 'error') AS errors FROM f "
                    "GROUP BY 1 ORDER BY 1",
    "latency_by_day": "SELECT {bucket} AS day, quantile_cont(latency_ms, 0.5) AS p50, "
                      "quantile_cont(latency_ms, 0.95) AS p95, quantile_cont(latency_ms, 0.99) AS p99 FROM f "
                      "WHERE status = 'ok' AND latency_ms IS NOT NULL GROUP BY 1 ORDER BY 1",
    # Log-spaced TTFT buckets: 8 per decade from 10 ms, so long tails stay readable.
    "ttft_histogram": "SELECT power(10, floor(log10(greatest(ttft_ms, 10)) * 8) / 8) AS ttft_ms, count(*) AS calls "
                      "FROM f WHERE ttft_ms IS NOT NULL GROUP BY 1 ORDER BY 1",
    "tokens_by_model": "SELECT model, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens FROM f "
                       "GROUP BY model ORDER BY sum(input_tokens) + sum(output_tokens) DESC",
    "spend_by_page": "SELECT page, sum(cost_usd) AS spend_usd, count(*) AS calls FROM f GROUP BY page "
                     "ORDER BY spend_usd DESC NULLS LAST",
    "spend_by_user": "SELECT coalesce(\"user\", '(none)') AS \"user\", sum(cost_usd) AS spend_usd, count(*) AS calls "
                     "FROM f GROUP BY 1 ORDER BY spend_usd DESC NULLS LAST",
    "spend_by_tag": "SELECT tag, sum(cost_usd) AS spend_usd, count(*) AS calls FROM "
                    "(SELECT unnest(tags) AS tag, cost_usd FROM f) GROUP BY tag ORDER BY spend_usd DESC NULLS LAST",
    "speed_by_model": "SELECT model, median((output_tokens - 1) / ((latency_ms - ttft_ms) / 1000)) AS tokens_per_s, "
                      "count(*) AS calls FROM f WHERE status = 'ok' AND output_tokens > 1 AND ttft_ms IS NOT NULL "
                      "AND latency_ms > ttft_ms AND page NOT IN ('images', 'moderation') GROUP BY model ORDER BY tokens_per_s DESC",
    # Per API (chat, responses, audio, images…): what it cost, how often, how fast; unpriced calls counted apart
    # (their spend is unknown, not $0).
    "by_endpoint": "SELECT endpoint, count(*) AS calls, sum(cost_usd) AS spend_usd, "
                   "count(*) FILTER (cost_usd IS NULL AND status <> 'error') AS unpriced, "
                   "count(*) FILTER (status = 'error') AS errors, "
                   "quantile_cont(latency_ms, 0.5) FILTER (status = 'ok') AS p50_latency_ms "
                   "FROM f GROUP BY endpoint ORDER BY spend_usd DESC NULLS LAST, calls DESC",
    "error_types": "SELECT coalesce(error_type, 'unknown') AS error_type, count(*) AS calls FROM f "
                   "WHERE status = 'error' GROUP BY 1 ORDER BY calls DESC, 1",
}


class Analytics:
    """The DuckDB mirror of one call log and the queries over it; safe to share between threads."""

    def __init__(self, log: CallLog):
        self.log = log
        self._db = duckdb.connect()
        self._db.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._last_rid = 0
        self._rows = 0
        self._create_mirror()

    def _create_mirror(self) -> None:
        self._db.execute("DROP TABLE IF EXISTS calls")
        self._db.execute(_MIRROR_DDL)
        self._last_rid, self._rows = 0, 0

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever the mirror does: use it in cache keys."""
        return self._last_rid, self._rows

    def refresh(self) -> int:
        """Copy calls added since the last refresh; rebuild if rows were deleted. Returns rows copied."""
        order = insertion_order_column(self.log.engine)
        with self._lock, self.log.engine.connect() as conn:
            max_rid, total = conn.execute(sa.text(f"SELECT coalesce(max({order}), 0), count(*) FROM calls")).one()
            if total < self._rows or max_rid < self._last_rid or (max_rid == self._last_rid and total != self._rows):
                self._create_mirror()  # rows were deleted (retention, GDPR): start over
            copied = 0
            while self._last_rid < max_rid:
                chunk = pd.read_sql_query(
                    sa.text(f"SELECT {order} AS rid, {_COLUMNS} FROM calls WHERE {order} > :after ORDER BY {order} "
                            f"LIMIT {LOAD_CHUNK}"), conn, params={"after": self._last_rid})
                if chunk.empty:
                    break
                chunk["tags"] = chunk["tags"].astype(str)
                self._db.register("chunk", chunk)
                self._db.execute(f"INSERT INTO calls {_MIRROR_SELECT}")
                self._db.unregister("chunk")
                self._last_rid = int(chunk["rid"].iloc[-1])
                copied += len(chunk)
            self._rows += copied
            return copied

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._db.cursor()  # one per computation: its temporary table is its own

    def options(self) -> dict[str, list[str]]:
        """Distinct values of each filter dimension (for the filter widgets)."""
        cur = self._cursor()
        result = {dim: [r[0] for r in cur.execute(
            f'SELECT DISTINCT "{dim}" FROM calls WHERE "{dim}" IS NOT NULL ORDER BY 1').fetchall()]
                  for dim in FILTER_DIMENSIONS}
        result["tag"] = [r[0] for r in cur.execute("SELECT DISTINCT unnest(tags) FROM calls ORDER BY 1").fetchall()]
        return result

    def date_span(self) -> tuple[date, date] | None:
        row = self._cursor().execute("SELECT min(day), max(day) FROM calls").fetchone()
        return (row[0], row[1]) if row and row[0] else None

    def kpis(self, filters: Filters, cur: duckdb.DuckDBPyConnection | None = None) -> Kpis:
        cur = cur or self._cursor()
        condition, params = where(filters)
        row = _one(cur.execute(_KPI_SQL.format(source=f"calls WHERE {condition}"), params))
        return Kpis(float(row[0]), *(int(v) for v in row[1:3]), *row[3:6], *(int(v) for v in row[6:]))

    def dashboard(self, filters: Filters, bucket: str | None = None) -> Dashboard:
        """Every KPI (this period and the previous one) and every series for one filter; the time series step by
        `bucket` ("day" or "hour"; by default the filters' own: hourly for a short period)."""
        bucket = bucket or filters.bucket
        cur = self._cursor()
        condition, params = where(filters)
        cur.execute(f"CREATE OR REPLACE TEMP TABLE f AS SELECT * FROM calls WHERE {condition}", params)
        row = _one(cur.execute(_KPI_SQL.format(source="f")))
        current = Kpis(float(row[0]), *(int(v) for v in row[1:3]), *row[3:6], *(int(v) for v in row[6:]))
        series = {name: cur.execute(sql.replace("{bucket}", BUCKETS[bucket])).df()
                  for name, sql in _SERIES_SQL.items()}
        unpriced = [r[0] for r in cur.execute(
            "SELECT DISTINCT model FROM f WHERE cost_usd IS NULL AND status <> 'error' ORDER BY 1").fetchall()]
        cur.execute("DROP TABLE f")
        return Dashboard(current, self.kpis(filters.previous(), cur), unpriced_models=unpriced, bucket=bucket,
                         period=(filters.start, filters.end), **series)

    def calls_page(self, filters: Filters, page: int = 0, page_size: int = 50) -> tuple[pd.DataFrame, int]:
        """One page of the filtered calls, newest first, and the total count."""
        cur = self._cursor()
        condition, params = where(filters)
        total = _one(cur.execute(f"SELECT count(*) FROM calls WHERE {condition}", params))[0]
        frame = cur.execute(
            f'SELECT request_id, ts, page, endpoint, provider, model, status, error_type, input_tokens, output_tokens, '
            f'cost_usd, latency_ms, ttft_ms, "user", tags, tokens_estimated FROM calls WHERE {condition} '
            f"ORDER BY ts DESC, rid DESC LIMIT {int(page_size)} OFFSET {int(page) * int(page_size)}", params).df()
        return frame, int(total)

    def filtered_frame(self, filters: Filters, limit: int = DOWNLOAD_LIMIT) -> pd.DataFrame:
        """The filtered calls for a download, newest first: at most `limit` of them."""
        condition, params = where(filters)
        return self._cursor().execute(
            f"SELECT * EXCLUDE (rid, day) FROM calls WHERE {condition} ORDER BY ts DESC LIMIT {int(limit)}",
            params).df()

    def usage_by_model(self, filters: Filters) -> pd.DataFrame:
        """Tokens and cost per (provider, model) of the filtered calls that reached a model (what-if costs)."""
        condition, params = where(filters)
        return self._cursor().execute(
            "SELECT provider, model, sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS "
            "cached_input_tokens, sum(output_tokens) AS output_tokens, "
            "CASE WHEN count(cost_usd) = count(*) THEN sum(cost_usd) END AS cost_usd "
            f"FROM calls WHERE {condition} AND status IN ('ok', 'cancelled') AND NOT cached GROUP BY 1, 2",
            params).df()

    def spend_between(self, start: date, end: date) -> float:
        row = _one(self._cursor().execute("SELECT coalesce(sum(cost_usd), 0) FROM calls WHERE day BETWEEN ? AND ?",
                                          [start, end]))
        return float(row[0])


@dataclass(frozen=True)
class BudgetStatus:
    """Month-to-date spend against a monthly budget, the burn rate and the month-end forecast."""

    budget_usd: float
    month_to_date_usd: float
    burn_rate_usd_per_day: float
    forecast_usd: float
    days_elapsed: float
    days_in_month: int

    @property
    def over_budget_forecast(self) -> bool:
        return self.forecast_usd > self.budget_usd

    @property
    def used_share(self) -> float:
        return self.month_to_date_usd / self.budget_usd if self.budget_usd else 0.0


def budget_warning(status: BudgetStatus) -> str | None:
    """The banner: spend already past the budget says so first; otherwise a forecast that will pass it."""
    budget = format_cost(status.budget_usd)
    if status.month_to_date_usd > status.budget_usd:
        return _("This month's spend, {spent}, is {share:.0%} of the budget — {over} over the {budget} budget "
                 "already, heading for {forecast}: look at the biggest models and users below.").format(
            spent=format_cost(status.month_to_date_usd), share=status.used_share, budget=budget,
            over=format_cost(status.month_to_date_usd - status.budget_usd), forecast=format_cost(status.forecast_usd))
    if status.over_budget_forecast:
        return _("At the current burn rate this month ends at {forecast}, over the {budget} budget: look at the "
                 "biggest models and users below.").format(forecast=format_cost(status.forecast_usd), budget=budget)
    return None


class SpendSource(Protocol):
    def spend_between(self, start: date, end: date) -> float: ...


def budget_status(analytics: SpendSource, budget_usd: float, now: datetime | None = None) -> BudgetStatus:
    """Forecast = month-to-date + (recent daily rate × days left). The recent rate is the mean of the last 7 full
    days when the month has that many, else the month-to-date rate: a spend that has just jumped shows quickly."""
    now = now or datetime.now(timezone.utc)
    today = now.date()
    first = today.replace(day=1)
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    elapsed = (today - first).days + (now - datetime(today.year, today.month, today.day,
                                                      tzinfo=timezone.utc)).total_seconds() / 86400
    mtd = analytics.spend_between(first, today)
    rate = mtd / elapsed if elapsed > 0 else 0.0
    if (today - first).days >= 7:
        rate = analytics.spend_between(today - timedelta(days=7), today - timedelta(days=1)) / 7
    forecast = mtd + rate * (days_in_month - elapsed)
    return BudgetStatus(budget_usd, mtd, rate, forecast, elapsed, days_in_month)


BUDGET_KEY = "monthly_budget_usd"


BUDGET: Setting[float | None] = Setting(BUDGET_KEY, None, stored_as=float, unset_when=lambda usd: not usd)


def monthly_budget(log: CallLog) -> float | None:
    return Workspace(log.engine).load(BUDGET)


def set_monthly_budget(log: CallLog, budget_usd: float | None, *, actor: Identity) -> None:
    """The workspace's monthly budget: an admin's choice (AdminOnly otherwise), audited."""
    Workspace(log.engine).save(BUDGET, budget_usd, actor=actor)


def record_details(record: CallRecord) -> dict[str, Any]:
    """All fields of one call for the drill-down, cost and unknowns spelled out."""
    details = record_values(record)
    details["cost_usd"] = format_cost(record.cost_usd) if record.provider != "local" else LOCAL_FREE_LABEL
    return details


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change versus the previous period (None when it cannot be computed)."""
    if current is None or previous in (None, 0):
        return None
    return (current - previous) / previous

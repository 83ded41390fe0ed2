"""Analytics answered by the database that holds the call log (PostgreSQL), so a replica's memory does not grow
with the log and a restarted replica has nothing to load.

Counts, spend and tokens come from the roll-ups that m019's triggers keep current on every write (core/base/db.py):
narrow hourly and daily rows (bucket, combo, sums) and `calls_totals`, one row per combination of dimensions. A
period's rows are first summed per combination, then joined to their dimensions and grouped by every breakdown in
one GROUPING SETS pass; the time series group the period's rows by bucket and model. Percentiles cannot be rolled
up; they are computed by the database exactly over the calls themselves when the period holds few enough of them,
and otherwise estimated from the nested samples the same triggers keep (`calls_sample`) — the dashboard then says
so, with the sample's size. The drill-down table is one page of the calls, newest first, read with the `ts` index.

`PushedDownAnalytics` has the methods of the DuckDB mirror (`dashboard.Analytics`), which one SQLite node keeps.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from core.analytics.dashboard import DOWNLOAD_LIMIT, Analytics, Dashboard, Filters, Kpis
from core.base.db import SAMPLE_LEVELS
from core.calls.log import CallLog

# Read the calls themselves (exact percentiles) when the period holds at most this many; else the sparsest sample
# level that still holds about SAMPLED_ROWS of the period's calls (core/base/db.py SAMPLE_LEVELS).
EXACT_UP_TO = 50_000
SAMPLED_ROWS = 50_000
_DIMENSION_COLUMN = {"provider": "provider", "model": "model", "page": "page", "user": "user_id", "status": "status",
                     "endpoint": "endpoint"}
_NONE = ""  # how the roll-ups store a missing user, model or error type (their keys are NOT NULL)


def _listed(values: tuple[str | None, ...]) -> list[str]:
    return [_NONE if v is None else v for v in values]


def _conditions(filters: Filters, columns: dict[str, str], tags: str) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions (and parameters) for the filters' value lists over the given column expressions."""
    clauses, params = [], {}
    for dimension, values in zip(("provider", "model", "page", "user", "status", "endpoint"),
                                 (filters.providers, filters.models, filters.pages, filters.users, filters.statuses,
                                  filters.endpoints), strict=True):
        if values:
            clauses.append(f"{columns[dimension]} = ANY(:{dimension})")
            params[dimension] = _listed(values)
    if filters.tags:
        clauses.append(f"{tags} ?| :tags")
        params["tags"] = list(filters.tags)
    return clauses, params


def _rollup_where(filters: Filters) -> tuple[str, str, dict[str, Any]]:
    """The period over a roll-up's buckets, the other filters over the combination's dimensions (`t`)."""
    clauses, params = _conditions(filters, {k: f"t.{v}" for k, v in _DIMENSION_COLUMN.items()}, "t.tags")
    params |= {"start": filters.start, "end": filters.end}
    return "bucket >= :start AND bucket < CAST(:end AS date) + 1", " AND ".join(clauses) or "TRUE", params


# Over the calls table: its own column names, the model of a call that never answered, tags stored as JSON text.
_RAW_COLUMN = _DIMENSION_COLUMN | {"model": "coalesce(model, model_requested, '')", "user": "coalesce(user_id, '')"}


def _raw_where(filters: Filters, table: str) -> tuple[str, dict[str, Any]]:
    """Conditions over `calls` (ts is ISO text: compared as text, which the ts index serves) or `calls_sample`."""
    if table == "calls":
        clauses, params = _conditions(filters, _RAW_COLUMN, "CAST(tags AS jsonb)")
        period = ["ts >= :ts_start", "ts < :ts_end", "status <> 'started'"]
        params |= {"ts_start": filters.start.isoformat(), "ts_end": (filters.end + timedelta(days=1)).isoformat()}
    else:
        clauses, params = _conditions(filters, _DIMENSION_COLUMN, "tags")
        period = ["ts >= :ts_start", "ts < :ts_end"]
        params |= {"ts_start": datetime.combine(filters.start, datetime.min.time()),
                   "ts_end": datetime.combine(filters.end + timedelta(days=1), datetime.min.time())}
    return " AND ".join(period + clauses), params


_MEASURES = ("calls", "priced", "cost_usd", "input_tokens", "output_tokens", "cached_input_tokens", "estimated")
_SUMS = ("sum(p.calls) AS calls, sum(p.priced) AS priced, sum(p.cost_usd) AS cost, sum(p.input_tokens) AS "
         "input_tokens, sum(p.output_tokens) AS output_tokens, sum(p.cached_input_tokens) AS cached_input_tokens, "
         "sum(p.estimated) AS estimated, coalesce(sum(p.calls) FILTER (WHERE t.status = 'error'), 0) AS errors, "
         "coalesce(sum(p.calls) FILTER (WHERE t.cached), 0) AS cached_calls, "
         "coalesce(sum(p.calls - p.priced) FILTER (WHERE t.status <> 'error'), 0) AS unpriced_answered")
# The breakdowns of a period, each a grouping set over the combinations' dimensions: (name, columns).
_SETS = {"total": (), "model": ("model",), "page": ("page",), "user": ("user_id",), "endpoint": ("endpoint",),
         "error": ("status", "error_type"), "tags": ("tags",)}
_GROUPED = ("model", "page", "user_id", "endpoint", "status", "error_type", "tags")


def _per_combination(table: str, period: str, dims: str) -> str:
    """The period's roll-up rows summed per combination of dimensions (`p`), joined to those dimensions (`t`)."""
    sums = ", ".join(f"sum({m}::float8) AS {m}" for m in _MEASURES)  # float sums: no numeric, exact below 2^53
    return (f"(SELECT combo, {sums} FROM {table} WHERE {period} GROUP BY combo) p JOIN calls_totals t "
            f"USING (combo) WHERE p.calls <> 0 AND {dims}")


def _breakdowns_sql(table: str, period: str, dims: str, only_total: bool = False) -> str:
    if only_total:
        return f"SELECT {_SUMS} FROM {_per_combination(table, period, dims)}"
    sets = ", ".join(f"({', '.join(f't.{c}' for c in columns)})" for columns in _SETS.values())
    return (f"SELECT GROUPING({', '.join(f't.{c}' for c in _GROUPED)}) AS g, "
            f"{', '.join(f't.{c}' for c in _GROUPED)}, {_SUMS} FROM {_per_combination(table, period, dims)} "
            f"GROUP BY GROUPING SETS ({sets})")


def _series_sql(table: str, period: str, dims: str) -> str:
    """Spend, calls and errors per bucket and model (a plain aggregate, which PostgreSQL can run in parallel)."""
    return ("SELECT d.bucket, t.model, sum(d.calls::float8) AS calls, sum(d.priced::float8) AS priced, "
            "sum(d.cost_usd) AS cost, coalesce(sum(d.calls::float8) FILTER (WHERE t.status = 'error'), 0) AS errors "
            f"FROM {table} d JOIN calls_totals t USING (combo) WHERE d.calls <> 0 AND {period} AND {dims} "
            "GROUP BY d.bucket, t.model")


def _grouping_id(columns: tuple[str, ...]) -> int:
    """PostgreSQL's GROUPING() bits for a set: 1 for each grouped column (first = highest bit) not grouped by."""
    return sum(1 << (len(_GROUPED) - 1 - i) for i, c in enumerate(_GROUPED) if c not in columns)


def _spend(frame: pd.DataFrame) -> pd.Series:
    """Summed cost, unknown (NaN) where no call of the row was priced — never a silent $0."""
    return frame["cost"].astype(float).where(frame["priced"].astype(int) > 0)


def _kpis(total: pd.Series | None, latency: pd.Series | None, sampled: int) -> Kpis:
    if total is None or not int(total["calls"] or 0):
        return Kpis()
    quantiles = latency["latency"] if latency is not None and latency["latency"] is not None else [None] * 3
    return Kpis(spend_usd=float(total["cost"] or 0), calls=int(total["calls"]), errors=int(total["errors"]),
                p50_latency_ms=_number(quantiles[0]), p95_latency_ms=_number(quantiles[1]),
                median_ttft_ms=_number(latency["ttft"]) if latency is not None else None,
                input_tokens=int(total["input_tokens"]), output_tokens=int(total["output_tokens"]),
                cached_input_tokens=int(total["cached_input_tokens"]),
                unpriced_calls=int(total["calls"]) - int(total["priced"]), estimated_calls=int(total["estimated"]),
                cached_calls=int(total["cached_calls"]), sampled=sampled)


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


# The percentiles, speeds and TTFT histogram of a filter, computed by the database over the calls (or a sample of
# them) in one pass: grouping set → the column it groups by. PostgreSQL's percentile_cont interpolates linearly
# between order statistics, like DuckDB's quantile_cont.
_LATENCY_SETS = {"total": None, "bucket": "bucket", "model": "model", "endpoint": "endpoint",
                 "ttft": "ttft_bucket"}
_LATENCY_GROUPED = ("bucket", "model", "endpoint", "ttft_bucket")
_SPEED = ("CASE WHEN status = 'ok' AND output_tokens > 1 AND ttft_ms IS NOT NULL AND latency_ms > ttft_ms AND page "
          "NOT IN ('images', 'moderation') THEN (output_tokens - 1) / ((latency_ms - ttft_ms) / 1000.0) END")
_TTFT_BUCKET = "CASE WHEN ttft_ms IS NOT NULL THEN power(10, floor(log(greatest(ttft_ms, 10)) * 8) / 8) END"


def _latency_grouping_id(column: str | None) -> int:
    return sum(1 << (len(_LATENCY_GROUPED) - 1 - i) for i, c in enumerate(_LATENCY_GROUPED) if c != column)


def _latency_sql(source: str, only_total: bool) -> str:
    sets = ", ".join(f"({c})" if c else "()" for c in _LATENCY_SETS.values())
    grouped = (f"{_latency_grouping_id(None)} AS g, " + ", ".join(f"NULL AS {c}" for c in _LATENCY_GROUPED)
               if only_total else f"GROUPING({', '.join(_LATENCY_GROUPED)}) AS g, {', '.join(_LATENCY_GROUPED)}")
    return (f"SELECT {grouped}, "
            "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'ok') "
            "AS latency, percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms) FILTER (WHERE status = 'ok') AS ttft, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY speed) AS speed, count(speed) AS speed_calls, "
            f"count(ttft_ms) AS ttft_calls, count(*) AS calls_read FROM (SELECT s.*, {_SPEED} AS speed, {_TTFT_BUCKET} AS ttft_bucket FROM "
            f"({source}) s) x" + ("" if only_total else f" GROUP BY GROUPING SETS ({sets})"))


class PushedDownAnalytics:
    """The Analytics page's queries, answered by PostgreSQL from the roll-ups; keeps nothing but a fingerprint."""

    def __init__(self, log: CallLog):
        self.log = log
        # Totals per (fingerprint, filter), for the calls table's count: a dashboard read under an older fingerprint
        # (by another session, while this one refreshed) is never taken for the new one's.
        self._totals_seen: dict[tuple[tuple[Any, ...], Filters], pd.Series] = {}
        self._version: tuple[Any, ...] = (0, 0)

    @property
    def version(self) -> tuple[Any, ...]:
        """Changes whenever the log does (read by `refresh`): use it in cache keys. [1] is 0 for an empty log."""
        return self._version

    def refresh(self) -> int:
        """Read the log's fingerprint — nothing is copied — and return 0. Every write moves the `calls_changes`
        sequence (m019's triggers); a sequence moves before its transaction commits, so the tuple counts PostgreSQL
        publishes a moment after each commit are part of the fingerprint too: a dashboard read in between is
        replaced at the next refresh."""
        with self.log.engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT (SELECT last_value FROM calls_changes), (SELECT count(*) FROM (SELECT 1 FROM calls LIMIT 1) "
                "one), (SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relid = "
                "'calls'::regclass)")).one()
        version = (int(row[0]), int(row[1]), int(row[2] or 0))
        if version != self._version:
            self._totals_seen = {k: v for k, v in self._totals_seen.items() if k[0] == version}
        self._version = version
        return 0

    def _frame(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        with self.log.engine.connect() as conn:
            # Enough memory for a few hundred thousand roll-up rows to be aggregated without spilling to disk.
            conn.execute(sa.text("SET LOCAL work_mem = '32MB'"))
            return pd.read_sql_query(sa.text(sql), conn, params=params or {})

    def options(self) -> dict[str, list[str]]:
        """Distinct values of each filter dimension, from the roll-up of every combination ever seen."""
        sets = {"provider": "provider", "model": "model", "page": "page", "user": "user_id", "status": "status",
                "endpoint": "endpoint", "tag": "tags"}
        frame = self._frame(f"SELECT {', '.join(sets.values())} FROM calls_totals WHERE calls <> 0 GROUP BY "
                            f"GROUPING SETS ({', '.join(f'({c})' for c in sets.values())})")
        result: dict[str, list[str]] = {}
        for name, column in sets.items():
            values = frame[column].dropna()
            if name == "tag":
                result[name] = sorted({t for tags in values for t in _tags(tags)})
            else:
                result[name] = sorted({v for v in values if v != _NONE})
        return result

    def date_span(self) -> tuple[date, date] | None:
        with self.log.engine.connect() as conn:
            first, last = conn.execute(sa.text("SELECT min(bucket), max(bucket) FROM calls_daily")).one()
        return (first, last) if first else None

    def kpis(self, filters: Filters) -> Kpis:
        """The headline numbers of one period: counts from the daily roll-up, percentiles from the calls."""
        total, (latency, one_in, sampled) = _together(
            lambda: self._totals(filters), lambda: self._latency(filters, "day", only_total=True))
        return _kpis(total, latency["total"].iloc[0] if len(latency["total"]) else None, sampled)

    def _totals(self, filters: Filters) -> pd.Series:
        key = (self._version, filters)
        if key not in self._totals_seen:
            period, dims, params = _rollup_where(filters)
            self._totals_seen[key] = self._frame(_breakdowns_sql("calls_daily", period, dims, only_total=True),
                                                 params).iloc[0]
        return self._totals_seen[key]

    def _latency(self, filters: Filters, bucket: str, only_total: bool = False
                 ) -> tuple[dict[str, pd.DataFrame], int, int]:
        """The latency aggregates of each grouping set, the sample they come from (1 = every call, exact; else one
        in that many) and how many sampled calls they read (0 when exact)."""
        period_calls = self._period_calls(filters)
        if period_calls <= EXACT_UP_TO:
            one_in, table, model = 1, "calls", "coalesce(model, model_requested, '')"
            step = "left(ts, 13)" if bucket == "hour" else "left(ts, 10)"
        else:
            one_in = next((n for n in SAMPLE_LEVELS if period_calls / n <= SAMPLED_ROWS), SAMPLE_LEVELS[-1])
            table, model = "calls_sample", "model"
            step = "to_char(ts, 'YYYY-MM-DD\"T\"HH24')" if bucket == "hour" else "to_char(ts, 'YYYY-MM-DD')"
        condition, params = _raw_where(filters, table)
        if one_in > 1:  # the nested samples this level includes, each a range of the (one_in, ts) index
            condition += " AND one_in = ANY(:levels)"
            params["levels"] = [n for n in SAMPLE_LEVELS if n >= one_in]
        source = (f"SELECT {step} AS bucket, status, {model} AS model, page, endpoint, latency_ms, ttft_ms, "
                  f"output_tokens FROM {table} WHERE {condition} AND (status = 'ok' OR ttft_ms IS NOT NULL)")
        grouped = self._frame(_latency_sql(source, only_total), params)
        sets = {name: grouped[grouped["g"] == _latency_grouping_id(column)] for name, column in _LATENCY_SETS.items()}
        read = int(sets["total"]["calls_read"].iloc[0]) if one_in > 1 and len(sets["total"]) else 0
        return sets, one_in, read

    def _period_calls(self, filters: Filters) -> int:
        """About how many calls the period holds, whatever the other filters (what reading them from the ts index
        would touch): the sparsest sample's calls in it, scaled up — an index-only count of a few thousand."""
        sparsest = SAMPLE_LEVELS[-1]
        condition, params = _raw_where(Filters(filters.start, filters.end), "calls_sample")
        with self.log.engine.connect() as conn:
            return sparsest * int(conn.execute(sa.text(f"SELECT count(*) FROM calls_sample WHERE one_in = :n AND "
                                                       f"{condition}"), params | {"n": sparsest}).scalar_one())

    def dashboard(self, filters: Filters, bucket: str | None = None) -> Dashboard:
        """Every KPI (this period and the previous one) and every series for one filter: five queries, run at once
        on their own connections (the database works on them in parallel)."""
        bucket = bucket or filters.bucket
        period, dims, params = _rollup_where(filters)
        table = "calls_hourly" if bucket == "hour" else "calls_daily"
        version = self._version  # the fingerprint these results belong to
        grouped, by_time, (latency, one_in, sampled), previous = _together(
            lambda: self._frame(_breakdowns_sql(table, period, dims), params),
            lambda: self._frame(_series_sql(table, period, dims), params), lambda: self._latency(filters, bucket),
            lambda: self.kpis(filters.previous()))
        sets = {name: grouped[grouped["g"] == _grouping_id(columns)] for name, columns in _SETS.items()}
        sets["day_model"] = by_time
        sets["day"] = by_time.groupby("bucket", as_index=False)[["calls", "errors"]].sum()
        total = sets["total"].iloc[0] if len(sets["total"]) else None
        if total is not None and bucket == "day":
            self._totals_seen[(version, filters)] = total  # the calls table's count, without asking again
        current = _kpis(total, latency["total"].iloc[0] if len(latency["total"]) else None, sampled)
        series = _series(sets, latency, one_in, bucket)
        answered = sets["model"]
        unpriced = sorted(answered.loc[answered["unpriced_answered"].astype(int) > 0, "model"].tolist())
        return Dashboard(current, previous, unpriced_models=unpriced, bucket=bucket,
                         period=(filters.start, filters.end), sampled=current.sampled, one_in=one_in, **series)

    def calls_page(self, filters: Filters, page: int = 0, page_size: int = 50) -> tuple[pd.DataFrame, int]:
        """One page of the filtered calls, newest first, and the total count (from the roll-up)."""
        total = int(self._totals(filters)["calls"] or 0)
        frame = self._raw(filters, "request_id, ts, page, endpoint, provider, model, status, error_type, "
                                   "input_tokens, output_tokens, cost_usd, latency_ms, ttft_ms, user, tags, "
                                   "tokens_estimated", int(page_size), int(page) * int(page_size))
        return frame, total

    def filtered_frame(self, filters: Filters, limit: int = DOWNLOAD_LIMIT) -> pd.DataFrame:
        """The filtered calls for a download, newest first: at most `limit` of them."""
        return self._raw(filters, "request_id, ts, page, provider, model, status, error_type, input_tokens, "
                                  "cached_input_tokens, output_tokens, reasoning_tokens, images, tokens_estimated, "
                                  "cost_usd, latency_ms, ttft_ms, user, session, tags, cached, endpoint", limit, 0)

    def _raw(self, filters: Filters, fields: str, limit: int, offset: int) -> pd.DataFrame:
        """Calls as the mirror shows them: counts 0 when missing, ts a timestamp, tags a list, model answered."""
        wanted = [f.strip() for f in fields.split(",")]
        counts = {"input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "images"}
        select = {"model": "coalesce(model, model_requested) AS model", "user": "user_id AS \"user\"",
                  "session": "session_id AS session", "cached": "coalesce(cached, false) AS cached",
                  **{c: f"coalesce({c}, 0) AS {c}" for c in counts}}
        condition, params = _raw_where(filters, "calls")
        frame = self._frame(f"SELECT {', '.join(select.get(c, c) for c in wanted)} FROM calls WHERE {condition} "
                            f"ORDER BY ts DESC, request_id DESC LIMIT {limit} OFFSET {offset}", params)
        frame["ts"] = pd.to_datetime(frame["ts"].str.slice(0, 23), format="ISO8601")
        frame["tags"] = frame["tags"].map(_tags)
        return frame

    def usage_by_model(self, filters: Filters) -> pd.DataFrame:
        """Tokens and cost per (provider, model) of the filtered calls that reached a model (what-if costs)."""
        period, dims, params = _rollup_where(filters)
        return self._frame(
            "SELECT t.provider, t.model, sum(p.input_tokens)::float AS input_tokens, sum(p.cached_input_tokens)::float "
            "AS cached_input_tokens, sum(p.output_tokens)::float AS output_tokens, CASE WHEN sum(p.priced) = "
            f"sum(p.calls) THEN sum(p.cost_usd) END AS cost_usd FROM {_per_combination('calls_daily', period, dims)} "
            "AND t.status IN ('ok', 'cancelled') AND NOT t.cached GROUP BY 1, 2", params)

    def spend_between(self, start: date, end: date) -> float:
        with self.log.engine.connect() as conn:
            return float(conn.execute(sa.text("SELECT coalesce(sum(cost_usd), 0) FROM calls_daily WHERE bucket "
                                              "BETWEEN :s AND :e"), {"s": start, "e": end}).scalar_one())


def _together(*work: Callable[[], Any]) -> list[Any]:
    """Run independent queries at once, each on its own pooled connection; their results in order."""
    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        return [future.result() for future in [pool.submit(w) for w in work]]


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t) for t in value]
    try:
        parsed = json.loads(value) if value else []
    except (TypeError, ValueError):
        return []
    return [str(t) for t in parsed] if isinstance(parsed, list) else []


def _series(sets: dict[str, pd.DataFrame], latency: dict[str, pd.DataFrame], one_in: int,
            bucket: str) -> dict[str, pd.DataFrame]:
    """The Dashboard's frames, with the columns and order the mirror's SQL gives them."""
    day = sets["day_model"].assign(day=lambda f: pd.to_datetime(f["bucket"]), spend_usd=_spend,
                                   calls=lambda f: f["calls"].astype(int))
    by_day = sets["day"].assign(day=lambda f: pd.to_datetime(f["bucket"]), calls=lambda f: f["calls"].astype(int),
                                errors=lambda f: f["errors"].astype(int)).sort_values("day")
    model = sets["model"].assign(input_tokens=lambda f: f["input_tokens"].astype(float),
                                 output_tokens=lambda f: f["output_tokens"].astype(float))
    return {
        "spend_by_day_model": day.sort_values(["day", "model"])[["day", "model", "spend_usd", "calls"]],
        "calls_by_day": by_day[["day", "calls", "errors"]],
        "latency_by_day": _latency_by_bucket(latency["bucket"], bucket),
        "ttft_histogram": _ttft_histogram(latency["ttft"], one_in),
        "tokens_by_model": model.assign(total=model["input_tokens"] + model["output_tokens"]).sort_values(
            "total", ascending=False)[["model", "input_tokens", "output_tokens"]],
        "spend_by_page": _by_spend(sets["page"], "page"),
        "spend_by_user": _by_spend(sets["user"].assign(user=sets["user"]["user_id"].replace(_NONE, "(none)")),
                                   "user"),
        "spend_by_tag": _by_spend(_by_tag(sets["tags"]), "tag"),
        "speed_by_model": _speed_by_model(latency["model"], one_in),
        "by_endpoint": _by_endpoint(sets["endpoint"], latency["endpoint"]),
        "error_types": _error_types(sets["error"]),
    }


def _by_tag(combinations: pd.DataFrame) -> pd.DataFrame:
    """Spend and calls per tag, from those per combination of tags (a call counts once for each of its tags)."""
    each = combinations.assign(tag=combinations["tags"].map(_tags)).explode("tag").dropna(subset=["tag"])
    return each.groupby("tag", as_index=False)[["cost", "priced", "calls"]].sum()


def _by_spend(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    shaped = frame.assign(spend_usd=_spend(frame), calls=frame["calls"].astype(int))
    return shaped.sort_values("spend_usd", ascending=False, na_position="last")[[column, "spend_usd", "calls"]]


def _latency_by_bucket(frame: pd.DataFrame, bucket: str) -> pd.DataFrame:
    known = frame[frame["latency"].notna()].sort_values("bucket")
    steps = known["bucket"].astype(str)
    quantiles = np.array(known["latency"].tolist(), dtype=float).reshape(-1, 3)
    return pd.DataFrame({"day": pd.to_datetime(steps if bucket == "hour" else steps.str.slice(0, 10),
                                               format="ISO8601"),
                         "p50": quantiles[:, 0], "p95": quantiles[:, 1], "p99": quantiles[:, 2]})


def _ttft_histogram(frame: pd.DataFrame, one_in: int) -> pd.DataFrame:
    bars = frame[frame["ttft_bucket"].notna()].sort_values("ttft_bucket")
    return pd.DataFrame({"ttft_ms": bars["ttft_bucket"].astype(float).to_numpy(),
                         "calls": bars["ttft_calls"].astype(int).to_numpy() * one_in})


def _speed_by_model(frame: pd.DataFrame, one_in: int) -> pd.DataFrame:
    fast = frame[frame["speed_calls"].astype(int) > 0]
    shaped = pd.DataFrame({"model": fast["model"], "tokens_per_s": fast["speed"].astype(float),
                           "calls": fast["speed_calls"].astype(int) * one_in})
    return shaped.sort_values("tokens_per_s", ascending=False)


def _by_endpoint(frame: pd.DataFrame, latency: pd.DataFrame) -> pd.DataFrame:
    p50 = {row.endpoint: _number(row.latency[0]) if row.latency is not None else None
           for row in latency.itertuples()}
    shaped = frame.assign(calls=frame["calls"].astype(int), spend_usd=_spend(frame),
                          unpriced=frame["unpriced_answered"].astype(int), errors=frame["errors"].astype(int),
                          p50_latency_ms=frame["endpoint"].map(p50).astype(float))
    return shaped.sort_values(["spend_usd", "calls"], ascending=False, na_position="last")[
        ["endpoint", "calls", "spend_usd", "unpriced", "errors", "p50_latency_ms"]]


def _error_types(frame: pd.DataFrame) -> pd.DataFrame:
    errors = frame[frame["status"] == "error"]
    named = errors.assign(error_type=errors["error_type"].replace(_NONE, "unknown"))
    counted = named.groupby("error_type", as_index=False)["calls"].sum()
    shaped = counted.assign(calls=counted["calls"].astype(int))
    return shaped.sort_values(["calls", "error_type"], ascending=[False, True])  # ties by name, as the mirror


AnalyticsEngine = Analytics | PushedDownAnalytics


def analytics_for(log: CallLog) -> AnalyticsEngine:
    """The Analytics engine of a call log: pushed down to PostgreSQL, or the DuckDB mirror on one SQLite node."""
    return PushedDownAnalytics(log) if log.engine.dialect.name == "postgresql" else Analytics(log)


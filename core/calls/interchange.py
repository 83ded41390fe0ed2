"""The call-record interchange format (JSONL, one object a line) and the import / export of the call log.

Keys, exactly: ts, request_id, page, provider, model_requested, model, status, error_type, input_tokens,
cached_input_tokens, output_tokens, reasoning_tokens, images, tokens_estimated, cost_usd, latency_ms, ttft_ms,
user, session, tags (null where unknown), endpoint (the API called; when absent, from an `endpoint:` tag or the
page, else chat.completions). Export also writes .csv and .parquet, chosen by the file's extension.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.calls.log import (
    CALL_COLUMNS,
    ENDPOINTS,
    CallLog,
    CallRecord,
    calls_table,
    endpoint_from_tags,
    field_for_column,
    record_values,
)
from core.formats.json_guard import nested_deeper_than
from core.llm.pricing import TokenUsage, cost_usd, pricing_id_for

KEYS = ("ts", "request_id", "page", "provider", "model_requested", "model", "status", "error_type", "input_tokens",
        "cached_input_tokens", "output_tokens", "reasoning_tokens", "images", "tokens_estimated", "cost_usd",
        "latency_ms", "ttft_ms", "user", "session", "tags", "endpoint")
PAGES = ("chat", "playground", "evals", "images", "moderation", "other")
STATUSES = ("ok", "error", "cancelled", "started")
_INT_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "images")
_FLOAT_KEYS = ("cost_usd", "latency_ms", "ttft_ms")
_TEXT_KEYS = ("provider", "model_requested", "model", "error_type", "user", "session")
BATCH = 5_000  # rows read at a time by an export
# Lines per transaction of an import: fewer commits (each ends in a WAL checkpoint on SQLite) and fewer statements
# (PostgreSQL's statement-level triggers fire once per batch). A refused batch costs no more: see _insert_or_halve.
IMPORT_BATCH = 50_000
# SQLite's page cache during an import (KiB; the default is 2 MB): enough for the calls table's indexes, which every
# batch updates all over (request ids are in no order). Only that connection's, and only while it imports.
IMPORT_CACHE_KIB = 256 * 1024


@dataclass
class ImportReport:
    """What an import did: rows added, duplicates left out, and each malformed line with its reason."""

    imported: int = 0
    duplicates: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.duplicates + len(self.malformed)

    def summary(self) -> str:
        lines = [f"imported {self.imported}, skipped {self.skipped} "
                 f"({self.duplicates} duplicates, {len(self.malformed)} malformed)"]
        lines += [f"  line {n}: {why}" for n, why in self.malformed[:50]]
        if len(self.malformed) > 50:
            lines.append(f"  … and {len(self.malformed) - 50} more malformed lines")
        return "\n".join(lines)


def to_interchange(record: CallRecord) -> dict[str, Any]:
    return {k: getattr(record, k) for k in KEYS}


# Bounds a real call log stays within; anything outside is a malformed line, not a crash in the database driver.
MIN_YEAR, MAX_YEAR = 1970, 2199
MAX_INT = 10**15           # tokens, images
MAX_NUMBER = 1e12          # USD, milliseconds
MAX_TEXT = 1_000           # characters of a provider, model, user… name
MAX_TAGS, MAX_TAG = 100, 200


def _text_ok(key: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        raise ValueError(f"{key} is longer than {MAX_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{key} holds an invalid character (a lone surrogate)") from None


_CANONICAL_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")


def normalise_ts(value: Any) -> str:
    """ISO-8601 in UTC with milliseconds, the log's one timestamp format (so text order is time order)."""
    if not isinstance(value, str) or not value:
        raise ValueError("ts must be an ISO-8601 string")
    if _CANONICAL_TS.match(value):
        datetime.fromisoformat(value)  # still reject impossible dates, cheaply
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("ts must be an ISO-8601 string") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        utc = parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 falls before year 1 in UTC
        raise ValueError("ts is out of range") from None
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"ts must fall between {MIN_YEAR} and {MAX_YEAR}")
    return utc.isoformat(timespec="milliseconds")


def validated_values(obj: Any, raw_line: bytes = b"") -> dict[str, Any]:
    """The interchange keys of one object, validated, with request_id and cost filled in; ValueError if bad.
    `raw_line` is the line the object was parsed from: its hash is the id of a line without one."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    # A string can only be over-long or hold a lone surrogate if its line is that long or has a \u escape (strict
    # UTF-8 decoding yields none): for the usual short plain line the per-string checks are skipped.
    check_text = not raw_line or len(raw_line) > MAX_TEXT or b"\\u" in raw_line
    get = obj.get
    values: dict[str, Any] = {"ts": normalise_ts(get("ts"))}
    page, status = get("page"), get("status")
    if page not in PAGES:
        raise ValueError(f"page must be one of {', '.join(PAGES)}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    values["page"], values["status"] = page, status
    for key in _TEXT_KEYS:
        v = get(key)
        if v is not None:
            if type(v) is not str:
                raise ValueError(f"{key} must be a string or null")
            if check_text:
                _text_ok(key, v)
        values[key] = v
    if not values["provider"]:
        raise ValueError("provider is required")
    for key in _INT_KEYS:
        v = get(key)
        if v is not None and (type(v) is not int or not 0 <= v <= MAX_INT):
            raise ValueError(f"{key} must be an integer from 0 to {MAX_INT:.0e} or null")
        values[key] = v
    for key in _FLOAT_KEYS:
        v = get(key)
        if v is not None:
            if type(v) not in (int, float) or not 0 <= v <= MAX_NUMBER:  # NaN fails this too
                raise ValueError(f"{key} must be a number from 0 to {MAX_NUMBER:.0e} or null")
            v = float(v)
        values[key] = v
    estimated = get("tokens_estimated")
    if estimated is not None and type(estimated) is not bool:
        raise ValueError("tokens_estimated must be true, false or null")
    values["tokens_estimated"] = bool(estimated)
    tags = get("tags") or []
    if tags:
        if type(tags) is not list or not all(type(t) is str for t in tags):
            raise ValueError("tags must be a list of strings or null")
        if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags):
            raise ValueError(f"tags: at most {MAX_TAGS}, each at most {MAX_TAG} characters")
        if check_text:
            for t in tags:
                _text_ok("tags", t)
    values["tags"] = tags
    endpoint = get("endpoint")
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)} or null")
    values["endpoint"] = endpoint or endpoint_from_tags(tags, page)
    request_id = get("request_id")
    if request_id is not None:
        if type(request_id) is not str or not request_id:
            raise ValueError("request_id must be a non-empty string or null")
        if check_text:
            _text_ok("request_id", request_id)
    # Without an id, the line's own hash is its id, so importing the same file twice still adds nothing.
    values["request_id"] = request_id or "imp_" + hashlib.sha256(raw_line).hexdigest()[:32]
    if values["cost_usd"] is None:
        values["cost_usd"] = price_values(values)
    return values


def from_interchange(obj: Any, raw_line: bytes = b"") -> CallRecord:
    """A validated CallRecord from one interchange object; raises ValueError with the reason."""
    return CallRecord(**validated_values(obj, raw_line))


def price_values(values: dict[str, Any]) -> float | None:
    """The cost computed from a record's tokens (None = unpriced model or provider)."""
    if values.get("input_tokens") is None and values.get("output_tokens") is None:
        return None
    usage = TokenUsage(values.get("input_tokens") or 0, values.get("output_tokens") or 0,
                       values.get("cached_input_tokens") or 0)
    model = values.get("model") or values.get("model_requested") or ""
    return cost_usd(usage, model, pricing_id_for(values["provider"]))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# One decoder for every line: json.loads with a keyword argument builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)  # NaN, Infinity
MAX_NESTING = 8  # an interchange line is flat: tags are its only list


def _parse_lines(lines: Iterable[bytes], report: ImportReport) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, validated values) of every good line; every bad one reported by number, never raised."""
    decode = _DECODER.decode
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError:
            report.malformed.append((number, "not valid UTF-8"))
            continue
        try:
            if nested_deeper_than(text, MAX_NESTING):
                raise ValueError("nested too deeply for a call record")
            obj = decode(text) if text[0] != "\ufeff" else json.loads(text)  # json.loads names a BOM
        except json.JSONDecodeError as exc:
            report.malformed.append((number, f"not valid JSON ({exc.msg})"))
            continue
        except ValueError as exc:
            report.malformed.append((number, str(exc)))
            continue
        try:
            yield number, validated_values(obj, stripped)
        except ValueError as exc:
            report.malformed.append((number, str(exc)))
        except Exception as exc:  # whatever else a line holds, it is that line's problem, not the import's
            report.malformed.append((number, f"could not be read ({type(exc).__name__})"))


# Column order of bulk inserts; interchange keys map onto these (user -> user_id, session -> session_id).
_INSERT_COLUMNS = CALL_COLUMNS
_SOURCE_KEYS = tuple(field_for_column(c) for c in _INSERT_COLUMNS)
_ID, _TAGS, _CACHED, _ENDPOINT = (_SOURCE_KEYS.index(k) for k in ("request_id", "tags", "cached", "endpoint"))
_COLUMN_LIST = ", ".join(_INSERT_COLUMNS)


def _row(values: dict[str, Any]) -> tuple[Any, ...]:
    """A calls row (column order) from a record's fields or validated interchange values."""
    get = values.get
    row = [get(k) for k in _SOURCE_KEYS]
    tags = row[_TAGS] or []
    row[_TAGS] = json.dumps(tags) if tags else "[]"
    row[_CACHED] = bool(row[_CACHED])
    if not row[_ENDPOINT]:  # a dict from before the column (m015): inferred, as on reading
        row[_ENDPOINT] = endpoint_from_tags(tags, get("page"))
    return tuple(row)


def _insert_rows(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert the rows whose request_id is not in the log yet (the first of each id), in the caller's transaction;
    returns how many were added."""
    first: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        first.setdefault(row[_ID], row)
    unique = list(first.values())
    if not unique:
        return 0
    if conn.dialect.name == "postgresql":
        # The batch is copied into a temporary table and inserted from there in one statement, so statement-level
        # triggers on calls fire once per batch. Its columns have the types SQLAlchemy binds (Float: double
        # precision), so values reach calls as they did through executemany.
        staging = ", ".join(f"{c.name} {c.type.compile(dialect=conn.dialect)}" for c in calls_table.columns)
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE import_calls ({staging}) ON COMMIT DROP")
        psycopg_conn = conn.connection.driver_connection
        assert psycopg_conn is not None
        with psycopg_conn.cursor() as cursor:
            with cursor.copy(f"COPY import_calls ({_COLUMN_LIST}) FROM STDIN") as copy:
                for row in unique:
                    copy.write_row(row)
        sql = f"INSERT INTO calls ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM import_calls"
        return conn.exec_driver_sql(f"{sql} ON CONFLICT (request_id) DO NOTHING").rowcount
    # SQLite (no statement-level triggers): one prepared statement run for every row by the driver (SQLAlchemy's
    # per-row parameter processing costs ~10x more here).
    marks = ", ".join("?" * len(_INSERT_COLUMNS))
    return conn.exec_driver_sql(f"INSERT INTO calls ({_COLUMN_LIST}) VALUES ({marks}) "
                                "ON CONFLICT (request_id) DO NOTHING", unique).rowcount


def insert_new(log: CallLog, records: list[CallRecord] | list[dict[str, Any]]) -> int:
    """Insert the records (CallRecords or interchange dicts) whose request_id is not in the log yet, in one
    transaction; returns how many were added."""
    rows = [_row(r if isinstance(r, dict) else record_values(r)) for r in records]
    with log.engine.begin() as conn:
        return _insert_rows(conn, rows)


def import_jsonl(path: str | Path, log: CallLog) -> ImportReport:
    """Append the records of a JSONL file. The rule: every valid line is imported and every bad one is reported
    by number with its reason (never a traceback); ids already in the log are not added again."""
    report = ImportReport()
    batch: list[tuple[int, tuple[Any, ...]]] = []
    with open(path, "rb") as f, _import_connection(log) as conn:
        for number, values in _parse_lines(f, report):
            batch.append((number, _row(values)))
            if len(batch) >= IMPORT_BATCH:
                _insert_batch(conn, batch, report)
                batch = []
        if batch:
            _insert_batch(conn, batch, report)
    report.malformed.sort()
    return report


@contextmanager
def _import_connection(log: CallLog) -> Iterator[sa.Connection]:
    """One connection for the whole import; on SQLite with a larger page cache while it lasts."""
    with log.engine.connect() as conn:
        sqlite = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        if sqlite is None:
            yield conn
            return
        before = sqlite.execute("PRAGMA cache_size").fetchone()[0]
        sqlite.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        try:
            yield conn
        finally:
            sqlite.execute(f"PRAGMA cache_size = {int(before)}")  # the pooled connection gives the memory back


def _insert_batch(conn: sa.Connection, batch: list[tuple[int, tuple[Any, ...]]], report: ImportReport) -> None:
    """Insert a batch of numbered rows and count them: added, refused (reported by line), or else duplicates."""
    refused_before = len(report.malformed)
    added = _insert_or_halve(conn, batch, report)
    report.imported += added
    report.duplicates += len(batch) - added - (len(report.malformed) - refused_before)


def _insert_or_halve(conn: sa.Connection, batch: list[tuple[int, tuple[Any, ...]]], report: ImportReport) -> int:
    """One transaction for the batch; if the database refuses it, each half in turn, so that a bad row costs
    only itself (and a few retries), never its neighbours. Returns how many rows were added."""
    try:
        with conn.begin():
            return _insert_rows(conn, [row for _, row in batch])
    except (sa.exc.SQLAlchemyError, conn.dialect.loaded_dbapi.Error) as exc:  # COPY raises the driver's own
        if len(batch) == 1:
            why = type(getattr(exc, "orig", None) or exc).__name__
            report.malformed.append((batch[0][0], f"refused by the database ({why})"))
            return 0
    half = len(batch) // 2
    return _insert_or_halve(conn, batch[:half], report) + _insert_or_halve(conn, batch[half:], report)


def _day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).isoformat(timespec="milliseconds")


def iter_records(log: CallLog, since: date | None = None, until: date | None = None) -> Iterator[CallRecord]:
    """Records between two days (both inclusive, UTC), oldest first."""
    query = calls_table.select().order_by(calls_table.c.ts)
    if since:
        query = query.where(calls_table.c.ts >= _day_start(since))
    if until:
        query = query.where(calls_table.c.ts < _day_start(until + timedelta(days=1)))
    with log.engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=BATCH).execute(query):
            yield log.record(row)


def export(log: CallLog, path: str | Path, since: date | None = None, until: date | None = None) -> int:
    """Write the records to .jsonl, .csv or .parquet (by extension); returns how many."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".parquet"):
        raise ValueError("export to a .jsonl, .csv or .parquet file")
    if suffix == ".jsonl":
        n = 0
        with open(path, "w", encoding="utf-8") as f:
            for record in iter_records(log, since, until):
                f.write(json.dumps(to_interchange(record), ensure_ascii=False) + "\n")
                n += 1
        return n
    import pandas as pd

    from core.formats.exports import to_csv

    frame = pd.DataFrame([to_interchange(r) for r in iter_records(log, since, until)], columns=list(KEYS))
    if suffix == ".csv":
        frame["tags"] = frame["tags"].map(json.dumps)
        to_csv(frame, path)  # spreadsheet formulas neutralised
    else:
        frame.to_parquet(path, index=False)
    return len(frame)

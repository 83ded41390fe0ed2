"""Files people download and open in a spreadsheet: a CSV cell that starts with `=`, `+`, `-`, `@` would run as a
formula there (`=HYPERLINK(…)` as a user name calls out when the file is opened) — also after leading spaces, line
breaks or tabs, which spreadsheets skip, and in the full-width forms (＝＋－＠) an East Asian keyboard types. Such
cells are prefixed with a single quote, as OWASP advises. This module is the one CSV writer: `to_csv` (data
frames) and `rows_to_csv` (rows) neutralise every cell; `restore` undoes it exactly (`table_from_csv`, for a table
edited on a page).
`tests/formats/test_exports.py` fails if anything else in core/ or pages/ writes CSV."""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "＝", "＋", "－", "＠")
CONTROL_START = ("\t", "\r")  # OWASP: a cell starting with either is unsafe whatever follows
# A plain number ("-5", "+3.2", "1e-3") is data, not a formula: no spreadsheet runs it, so it stays as it is.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Whitespace, byte-order marks and zero-width spaces, in any mix: a spreadsheet skips them all before a formula.
_SKIPPED = re.compile(r"^[\s\ufeff\u200b]+")


def _runs(text: str) -> bool:
    """True when a spreadsheet could read this text cell as a formula (or a quote-prefixed one: see neutralise)."""
    if text.startswith(CONTROL_START):
        return True
    head = _SKIPPED.sub("", text)
    if head.startswith(FORMULA_START):
        return not _NUMBER.fullmatch(head.rstrip())
    # A cell that already starts with the quote before a formula is quoted again, so `restore` can tell the
    # neutraliser's quote from one the data had: what goes in comes back out, exactly.
    return text.startswith("'") and _runs(text[1:])


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, made inert with a leading single quote; anything
    else unchanged (numbers such as -3, in a numeric column or as text, stay numbers)."""
    if isinstance(value, str) and _runs(value):
        return "'" + value
    return value


def restore(value: Any) -> Any:
    """The cell as it was before `neutralise` (neutralise's exact inverse)."""
    if isinstance(value, str) and value.startswith("'") and _runs(value[1:]):
        return value[1:]
    return value


def rows_to_csv(rows: Iterable[Sequence[Any]]) -> str:
    """Rows (the first one the header) as CSV text, every text cell neutralised; None is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()


def table_from_csv(text: str) -> pd.DataFrame:
    """CSV text written here, read back as the text it was written from (every cell a string, quotes of the
    neutraliser removed): the table a page lets people edit."""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame.columns = [restore(c) for c in frame.columns]
    return frame.map(restore)


def _cell(value: Any) -> Any:
    """Lists as JSON (not numpy's repr), floats in plain decimal (not 5.099999999999999e-05)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return json.dumps(list(value), ensure_ascii=False, default=str)
    if isinstance(value, float) and value == value and abs(value) not in (float("inf"),):
        return format(Decimal(repr(value)).normalize(), "f")
    return value


def to_csv(frame: pd.DataFrame, path: Any = None) -> str | None:
    """The frame as CSV with every text cell neutralised, lists as JSON, floats in plain decimal and timestamps in
    ISO-8601 UTC; written to `path` when given (then returns None)."""
    safe = frame.copy()
    for column in safe.columns:
        series = safe[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            stamps = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
            safe[column] = stamps.map(lambda t: t.isoformat(timespec="milliseconds") if pd.notna(t) else "")
        elif pd.api.types.is_float_dtype(series):
            safe[column] = series.map(lambda v: "" if pd.isna(v) else _cell(float(v))).astype(object)
        elif series.dtype == object or pd.api.types.is_string_dtype(series):
            safe[column] = series.map(lambda v: neutralise(_cell(v)))
    safe.columns = [neutralise(str(c)) for c in safe.columns]
    # Text quoted: a lone carriage return inside a cell must not end the row for the reader.
    return safe.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)

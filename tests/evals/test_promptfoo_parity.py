"""promptfoo's verdicts, cell by cell: PromptLab runs tests/fixtures/promptfoo_parity/promptfooconfig.yaml (CSV and
inline tests, a chat-format prompt file, 20+ assertion types) against the loopback server, and every cell — prompt ×
provider × case × assertion — must give the verdict the real promptfoo 0.121.20 gave on the same server (recorded in
promptfoo_results.json by refresh.py next to it). An assertion PromptLab cannot run (javascript on a server without
Node.js) is skipped, and the run's notes must say so; it never becomes an assertion that cannot pass. Totals are
not compared: they can agree while cells differ."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.calls.gate import CallContext
from core.evals import javascript
from core.evals.assertions import Assertion, Output, evaluate
from core.evals.config import OPERATOR, load_config
from core.evals.run import EvalRun
from core.llm.providers import Provider
from tests.conftest import TEST_KEY

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "promptfoo_parity"


def promptfoo_cells() -> list[dict[str, Any]]:
    return json.loads((FIXTURE / "promptfoo_results.json").read_text(encoding="utf-8"))["cells"]


def compare(rows: list[dict[str, Any]], notes: list[str], expected: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each promptfoo cell against PromptLab's: `agree`, `differ`, `skipped` (PromptLab has no verdict for it, and a
    note names its type) or `silent` (no verdict and no note). PromptLab's verdicts of a cell are matched to
    promptfoo's by type, in order."""
    ours = {(r["prompt_index"], r["test_index"]): r for r in rows}
    out: dict[str, list[str]] = {"agree": [], "differ": [], "skipped": [], "silent": []}
    by_cell: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for c in expected:
        by_cell.setdefault((c["prompt_index"], c["test_index"]), []).append(c)
    for key, theirs in sorted(by_cell.items()):
        row = ours.get(key)
        verdicts = list(row["assertions"]) if row else []
        for c in theirs:
            name = f"p{key[0]}.t{key[1]}.a{c['assertion_index']} {c.get('type')} {c.get('value')!r}"
            same = next((v for v in verdicts if v["type"] == c.get("type")), None)
            if same is not None:
                verdicts.remove(same)
                which = "agree" if same["pass"] == c["pass"] else "differ"
                out[which].append(f"{name}: promptfoo {c['pass']}, PromptLab {same['pass']} ({same['reason']})")
            elif any(f"“{c.get('type')}”" in n for n in notes):
                out["skipped"].append(name)
            else:
                out["silent"].append(f"{name}: promptfoo {c['pass']}, PromptLab has no verdict and no note")
        out["silent"].extend(f"p{key[0]}.t{key[1]} {v['type']}: PromptLab only" for v in verdicts)
    return out


def run_promptlab(server, log) -> tuple[list[dict[str, Any]], list[str]]:
    config = load_config(FIXTURE / "promptfooconfig.yaml")
    run = EvalRun(config, lambda spec: Provider("openai", server.base_url, TEST_KEY, max_retries=0),
                  CallContext("evals", "parity"), log, concurrency=4, actor=OPERATOR).start()
    assert run.wait(120)
    return run.rows(), config.notes


def test_every_cell_gives_promptfoos_verdict(server, log):
    rows, notes = run_promptlab(server, log)
    result = compare(rows, notes, promptfoo_cells())
    assert not result["differ"], "\n".join(result["differ"])
    assert not result["silent"], "\n".join(result["silent"])
    # Everything runs here; javascript needs Node.js, and where there is none it is skipped, one note per
    # assertion skipped (a case's note serves all its prompts).
    skipped: dict[str, set[str]] = {}
    for name in result["skipped"]:
        cell, kind = name.split(" ")[:2]
        skipped.setdefault(kind, set()).add(cell.split(".", 1)[1])
    for kind, assertions in skipped.items():
        assert sum(f"“{kind}”" in n and "skipped" in n for n in notes) == len(assertions), (kind, notes)
    assert set(skipped) <= ({"javascript"} if javascript.node() is None else set()), skipped
    total = sum(len(v) for v in result.values())
    assert len(result["agree"]) == total - len(result["skipped"]) and total == len(promptfoo_cells())


def test_the_outputs_are_promptfoos_too(server, log):
    """The same request reached the model: trailing newlines trimmed, variables inside variables rendered."""
    rows, _notes = run_promptlab(server, log)
    recorded = json.loads((FIXTURE / "promptfoo_results.json").read_text(encoding="utf-8"))["outputs"]
    ours = {f"p{r['prompt_index']}.t{r['test_index']}": r["output"] for r in rows}
    assert ours == recorded


PROBES = json.loads((FIXTURE / "probe_verdicts.json").read_text(encoding="utf-8"))["verdicts"]


@pytest.mark.parametrize("probe", PROBES, ids=[f"{p['type']}:{p['value']}:{p['output'][:20]}" for p in PROBES])
def test_single_outputs_get_promptfoos_verdict(probe):
    """JavaScript's regexes (ASCII \\w \\d \\b, its \\s, `.` and `$`), UTF-16 lengths, word counts and XML, each
    as promptfoo's own handler judged it."""
    verdict = evaluate(Assertion(type=probe["type"], value=probe["value"]), Output(text=probe["output"]))
    assert verdict.passed == probe["pass"], (verdict.reason, probe["reason"])

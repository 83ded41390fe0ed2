"""What a team's CI reads from an eval run besides its exit code: JUnit XML (one test case per cell, so the CI's test
view lists each failing case with its reasons) and a promptfoo-shaped results JSON (for tools that read
`promptfoo eval -o results.json`). Both are built from the run's rows as stored (keys removed, text policy applied)."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

# XML 1.0 cannot hold most control characters, and a model's output may contain any of them: a CI parser would
# reject the whole file, so they are dropped (tab, newline and carriage return stay).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
OUTPUT_CHARS = 4000  # of each output in <system-out>: enough to read a failure, not a log dump


def _xml_text(value: Any) -> str:
    return _NOT_XML.sub("", "" if value is None else str(value))


def case_name(row: dict[str, Any]) -> str:
    """`#3 refund question` (the case's number in the config, its description or first var, the repeat if any)."""
    label = row.get("description") or ", ".join(f"{k}={v}" for k, v in (row.get("vars") or {}).items())
    name = f"#{row['test_index'] + 1} {label}".strip()
    name = name if len(name) <= 120 else name[:119] + "…"
    return name + (f" (repeat {row['repeat']})" if (row.get("repeat") or 1) > 1 else "")  # repeats count from 1


def suite_name(row: dict[str, Any]) -> str:
    return f"{row['prompt']} · {row['provider']}"


def _failure_text(row: dict[str, Any]) -> str:
    lines = [f"{'PASS' if a.get('pass') else 'FAIL'} {a.get('type')}: {a.get('reason') or ''}".rstrip()
             for a in row.get("assertions") or []]
    return "\n".join(lines) or _xml_text(row.get("reason"))


def junit_xml(rows: list[dict[str, Any]], run_name: str) -> str:
    """The run as JUnit XML: a <testsuite> per prompt × provider, a <testcase> per cell; a failed assertion is a
    <failure>, a call or grader that did not complete an <error>, each with every verdict's reason."""
    suites: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        suites[suite_name(row)].append(row)
    root = ET.Element("testsuites", name=_xml_text(run_name))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for name, members in suites.items():
        suite = ET.SubElement(root, "testsuite", name=_xml_text(name))
        counts = {"tests": len(members), "failures": 0, "errors": 0}
        suite_time = 0.0
        for row in sorted(members, key=lambda r: (r["test_index"], r.get("repeat", 1))):
            seconds = (row.get("latency_ms") or 0) / 1000
            suite_time += seconds
            case = ET.SubElement(suite, "testcase", classname=_xml_text(name), name=_xml_text(case_name(row)),
                                 time=f"{seconds:.3f}")
            if row.get("error") or not row.get("graded"):
                counts["errors"] += 1
                message = row.get("error") or row.get("reason") or "not run"
                ET.SubElement(case, "error", message=_xml_text(message)[:500], type="error").text = \
                    _xml_text(message)
            elif not row.get("pass"):
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=_xml_text(row.get("reason"))[:500],
                              type="assertion").text = _xml_text(_failure_text(row))
            ET.SubElement(case, "system-out").text = _xml_text(row.get("output"))[:OUTPUT_CHARS]
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("skipped", "0")
        suite.set("time", f"{suite_time:.3f}")
        total_time += suite_time
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# promptfoo's ResultFailureReason: why a cell did not succeed.
_NONE, _ASSERT, _ERROR = 0, 1, 2


def _promptfoo_result(row: dict[str, Any], prompt_idx: int) -> dict[str, Any]:
    error = row.get("error") or (None if row.get("graded") else row.get("reason"))
    failure = _ERROR if error else (_NONE if row.get("pass") else _ASSERT)
    tokens = {"prompt": row.get("input_tokens") or 0, "completion": row.get("output_tokens") or 0}
    tokens["total"] = tokens["prompt"] + tokens["completion"]
    components = [{"pass": a.get("pass"), "score": a.get("score"), "reason": a.get("reason"),
                   "assertion": {"type": a.get("type"), "value": a.get("value")}}
                  for a in row.get("assertions") or []]
    return {
        "promptIdx": prompt_idx, "testIdx": row["test_index"],
        "testCase": {"vars": row.get("vars") or {}, "description": row.get("description")},
        "prompt": {"label": row["prompt"], "raw": row["prompt"]},
        "provider": {"id": row["provider"], "label": row["provider"]},
        "vars": row.get("vars") or {},
        "response": {"output": row.get("output"), "tokenUsage": tokens},
        "error": error, "failureReason": failure, "success": failure == _NONE,
        "score": row.get("score") or 0.0, "latencyMs": row.get("latency_ms") or 0,
        "cost": (row.get("cost_usd") or 0.0) + (row.get("grader_cost_usd") or 0.0),
        "gradingResult": None if error else {"pass": bool(row.get("pass")), "score": row.get("score") or 0.0,
                                             "reason": row.get("reason"), "componentResults": components},
        "namedScores": {}, "metadata": {"repeat": row.get("repeat", 1), "requestId": row.get("request_id")},
    }


def promptfoo_json(rows: list[dict[str, Any]], *, run_id: str, timestamp: str, notes: list[str]) -> str:
    """The run in the shape of promptfoo's `eval -o results.json` (version 3): `results.results` one entry per cell
    with `success`, `failureReason`, `gradingResult.componentResults`; `results.prompts` one per prompt × provider
    with its metrics; `results.stats` the totals. PromptLab's own fields (the repeat, the call's request id) go in
    `metadata`, which promptfoo leaves open."""
    configs: dict[tuple[str, str], int] = {}
    for row in rows:
        configs.setdefault((row["prompt"], row["provider"]), len(configs))
    results = [_promptfoo_result(row, configs[(row["prompt"], row["provider"])]) for row in rows]
    prompts = []
    for (prompt, provider), index in configs.items():
        mine = [r for r in results if r["promptIdx"] == index]
        prompts.append({"raw": prompt, "label": prompt, "provider": provider, "metrics": {
            "score": sum(r["score"] for r in mine),
            "testPassCount": sum(r["failureReason"] == _NONE for r in mine),
            "testFailCount": sum(r["failureReason"] == _ASSERT for r in mine),
            "testErrorCount": sum(r["failureReason"] == _ERROR for r in mine),
            "totalLatencyMs": sum(r["latencyMs"] for r in mine), "cost": sum(r["cost"] for r in mine),
            "tokenUsage": {k: sum(r["response"]["tokenUsage"][k] for r in mine)
                           for k in ("total", "prompt", "completion")}}})
    stats = {"successes": sum(r["failureReason"] == _NONE for r in results),
             "failures": sum(r["failureReason"] == _ASSERT for r in results),
             "errors": sum(r["failureReason"] == _ERROR for r in results),
             "tokenUsage": {k: sum(r["response"]["tokenUsage"][k] for r in results)
                            for k in ("total", "prompt", "completion")}}
    return json.dumps({"evalId": run_id, "results": {"version": 3, "timestamp": timestamp, "prompts": prompts,
                                                     "results": results, "stats": stats},
                       "metadata": {"producer": "PromptLab", "notes": notes}},
                      ensure_ascii=False, indent=2, default=str)

"""Issue 26 point 6, the CI face of `python -m core evals run`: JUnit XML with a test case per cell (a failed
assertion a <failure> carrying every verdict's reason, a call that failed an <error>) and a promptfoo-shaped
results JSON, besides the exit code; both from the run as stored (no key)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tests.conftest import TEST_KEY
from tests.evals.test_evals import config_dict, run_cli
from tests.loopback_server import Script


def test_junit_xml_and_promptfoo_json_list_every_failing_case_with_its_reasons(server, tmp_path, sqlite_url):
    config = tmp_path / "eval.yaml"
    cases = [{"vars": {"q": f"case {i}"}, "description": f"case {i}",
              "assert": [{"type": "contains", "value": "Answer"}, {"type": "icontains", "value": "case"}]}
             for i in range(3)]
    cases.append({"vars": {"q": "bell \x07 and \x1b[31m escape"}, "assert": [{"type": "contains", "value": "bell"}]})
    config.write_text(json.dumps(config_dict(server, cases)))  # prompt 2 ("Reply to …") never says "Answer"
    server.push(Script(status=500, when="Reply to case 2"))  # one call that fails: an error, not a failure
    junit, pf = tmp_path / "junit.xml", tmp_path / "promptfoo.json"
    done = run_cli(["run", str(config), "--junit-xml", str(junit), "--promptfoo-json", str(pf)], sqlite_url,
                   server.base_url, PROMPTLAB_MAX_RETRIES="0")
    assert done.returncode == 100, done.stderr

    root = ET.fromstring(junit.read_bytes())  # control characters in an output must not make it unreadable
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("8", "2", "1")
    suites = {s.get("name"): s for s in root}
    assert set(suites) == {"Answer: {{q}} · openai:chat:gpt-4o-mini", "Reply to {{q}} · openai:chat:gpt-4o-mini"}
    first, second = suites["Answer: {{q}} · openai:chat:gpt-4o-mini"], suites["Reply to {{q}} · openai:chat:gpt-4o-mini"]
    assert first.get("failures") == "0" and [c.get("name") for c in first][:3] == ["#1 case 0", "#2 case 1",
                                                                                  "#3 case 2"]
    failure = second.find("testcase[@name='#1 case 0']/failure")
    assert failure is not None and "FAIL contains" in failure.text and "PASS icontains" in failure.text
    assert second.find("testcase[@name='#3 case 2']/error") is not None
    assert second.find("testcase[@name='#4 bell \x07 and \x1b[31m escape']") is None  # names are cleaned too
    assert any("bell  and [31m escape" in (c.get("name") or "") for c in second)

    data = json.loads(pf.read_text())
    results = data["results"]
    assert results["version"] == 3 and len(results["results"]) == 8
    assert results["stats"] | {"tokenUsage": None} == {"successes": 5, "failures": 2, "errors": 1,
                                                       "tokenUsage": None}
    failed = [r for r in results["results"] if r["failureReason"] == 1]
    assert {r["promptIdx"] for r in failed} == {1} and all(not r["success"] for r in failed)
    assert [c["assertion"]["type"] for c in failed[0]["gradingResult"]["componentResults"]] == ["contains",
                                                                                                 "icontains"]
    assert {(p["label"], p["metrics"]["testFailCount"]) for p in results["prompts"]} == {
        ("Answer: {{q}}", 0), ("Reply to {{q}}", 2)}
    assert TEST_KEY not in junit.read_text() and TEST_KEY not in pf.read_text()


def test_the_example_ci_workflow_parses_and_uses_only_flags_the_command_has():
    import shlex
    from pathlib import Path

    import yaml

    from core.cli import evals_main

    workflow = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy/ci/github-evals.yml").read_text())
    steps = workflow["jobs"]["evals"]["steps"]
    (command,) = [s["run"] for s in steps if "core evals run" in str(s.get("run"))]
    argv = shlex.split(command)
    assert argv[:5] == ["python", "-m", "core", "evals", "run"] and "--junit-xml" in argv
    flags = [a for a in argv if a.startswith("--")]
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        evals_main(["run", "--help"])
    assert flags and all(flag in out.getvalue() for flag in flags)
    junit = [s for s in steps if "junit" in str(s.get("uses"))]
    assert junit and junit[0]["with"]["report_paths"] in argv


def test_mcnemar_between_two_providers_the_user_picks_and_labels_that_stay_distinct(server, tmp_path, sqlite_url):
    """Issue 26 point 9: `--compare A B` takes any two rows of the table (here two providers with one prompt);
    two long labels that differ only at the end stay told apart in the table."""
    config = tmp_path / "eval.yaml"
    long_prompt = "You are a very careful support assistant for a shoe shop; answer briefly: {{q}}"
    providers = [{"id": "openai:chat:gpt-4o-mini", "config": {"apiBaseUrl": server.base_url}},
                 {"id": "openai:chat:gpt-4o", "config": {"apiBaseUrl": server.base_url}}]
    config.write_text(json.dumps(config_dict(server, [
        {"vars": {"q": f"case {i}"}, "assert": [{"type": "contains", "value": f"case {i}"}]} for i in range(6)],
        prompts=[long_prompt], providers=providers)))
    for i in range(6):  # one call at a time: the first provider's calls come first and take these failing replies
        server.push(Script(reply="I cannot help with that.", when=f"case {i}"))
    done = run_cli(["run", str(config), "--concurrency", "1", "--compare", "1", "2"], sqlite_url, server.base_url)
    assert done.returncode == 100, done.stderr
    table = done.stdout.splitlines()
    rows = [line for line in table if line.startswith(("  1 ", "  2 "))]
    assert len(rows) == 2 and rows[0][4:48] != rows[1][4:48]  # cut to 44 characters, still different
    assert "openai:chat:gpt-4o passes 6/6, openai:chat:gpt-4o-mini 0/6; openai:chat:gpt-4o better on 6 cases, " \
           "worse on 0, p = 0.031" in done.stdout
    bad = run_cli(["run", str(config), "--compare", "1", "3"], sqlite_url, server.base_url)
    assert bad.returncode == 1 and "1 to 2" in bad.stderr and "Traceback" not in bad.stderr


def test_distinct_labels_keep_head_and_tail_and_number_what_still_collides():
    from core.evals.results import distinct_labels

    long_a, long_b = "x" * 60 + " · openai:gpt-4o", "x" * 60 + " · openai:gpt-4o-mini"
    cut = distinct_labels([long_a, long_b, "short", "short"], 30)
    assert all(len(label) <= 30 for label in cut) and len(set(cut)) == 4
    assert cut[0].endswith("openai:gpt-4o") and cut[1].endswith("gpt-4o-mini") and "…" in cut[0]
    assert cut[2:] == ["short #3", "short #4"]

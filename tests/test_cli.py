"""`python -m core`: one command line (issue 24). Every command answers --help; each old spelling
(`python -m core.calllog …`) still runs the same thing for one release and says the new one on stderr; the documents
speak only the new spellings."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import COMMANDS, OLD_SPELLINGS

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_python_m_core_lists_every_command():
    done = run("core", "--help")
    assert done.returncode == 0
    assert all(name in done.stdout for name in COMMANDS)
    bare = run("core")
    assert bare.returncode == 2 and "COMMAND" in bare.stderr and "Traceback" not in bare.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_answers_help(command):
    done = run("core", command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"python -m core {command}" in done.stdout


@pytest.mark.parametrize("old", ["core.config", "core.safety"])
def test_an_old_spelling_runs_the_new_command_and_says_so(old):
    new = OLD_SPELLINGS[old]
    before, after = run(old), run("core", new)
    assert before.returncode == after.returncode == 0
    assert before.stdout == after.stdout and after.stdout.startswith("|")
    assert f"python -m core {new}" in before.stderr and after.stderr == ""


@pytest.mark.parametrize("old", sorted(OLD_SPELLINGS))
def test_every_old_spelling_still_reaches_its_command(old):
    done = run(old, "--help")
    assert done.returncode == 0, done.stderr
    assert f"python -m core {OLD_SPELLINGS[old]}" in done.stdout  # the new command's own help
    assert f"is now `python -m core {OLD_SPELLINGS[old]}`" in done.stderr


def test_the_documents_speak_the_new_commands():
    old = re.compile(r"-m[\s\"',]+core\.(" + "|".join(re.escape(m.split(".")[1]) for m in OLD_SPELLINGS) + r")\b")
    documents = [ROOT / "README.md", ROOT / "Dockerfile", ROOT / ".ci" / "run", *(ROOT / "docs").glob("*.md"),
                 *(ROOT / "deploy").iterdir(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")]
    stale = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in documents if p.is_file() and p.name != "test_cli.py"
             for m in old.finditer(p.read_text(encoding="utf-8"))]
    assert stale == []

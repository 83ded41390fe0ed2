"""The README's commands work exactly as printed (issue 28, deliverable 7): every `python -m core…` command line in
the README is found, its optional parts included, its placeholders filled with real things (a temporary database
filled by the documented `python -m core calls generate`, a saved conversation, the eval run the documented
`python -m core evals run` stored), and run as a subprocess that must exit 0. `streamlit run` is smoke-tested with
--help; `pip install` and `pytest` are left to .ci/run."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "sk-admin-README-test-000000000000"


def documented_commands(readme: str) -> list[str]:
    """Every command line the README prints: inline code spans and lines of fenced blocks, whitespace joined."""
    fenced = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    lines = [line.strip() for block in fenced for line in block.splitlines() if line.strip()]
    prose = re.sub(r"```.*?```", "", readme, flags=re.S)
    spans = [" ".join(m.split()) for m in re.findall(r"`([^`]+)`", prose)]
    return list(dict.fromkeys(c for c in lines + spans if c.startswith(("python -m core", "streamlit run"))))


def expanded(command: str) -> list[list[str]]:
    """Optional parts included, the ellipsis dropped, `A|.b|.c` file alternatives each on their own."""
    argv = shlex.split(command.replace("[", " ").replace("]", " ").replace("…", " "))
    out: list[list[str]] = [[]]
    for token in argv:
        if "|" in token:  # FILE.jsonl|.csv|.parquet
            first, *others = token.split("|")
            stem = first.rsplit(".", 1)[0]
            choices = [first, *(stem + o for o in others)]
            out = [argv_ + [c] for argv_ in out for c in choices]
        else:
            out = [argv_ + [token] for argv_ in out]
    return out


class Placeholders:
    """What each placeholder stands for, by the option or subcommand before it."""

    def __init__(self, tmp: Path, conversation_id: str) -> None:
        self.tmp, self.conversation_id, self.run_id = tmp, conversation_id, ""

    def fill(self, argv: list[str]) -> list[str]:
        out = []
        for prev, token in zip(["", *argv], argv, strict=False):
            out.append(self.value(prev, token))
        return out

    def value(self, prev: str, token: str) -> str:
        by_option = {"--since": "2026-11-01", "--until": "2026-12-31", "--calls": "40", "--days": "30",
                     "--seed": "7", "--repeat": "1", "--concurrency": "2", "--model": "gpt-4o-mini", "-n": token,
                     "--output": str(self.tmp / token), "-o": str(self.tmp / "report.html")}
        if prev in by_option and (token.isupper() or token in ("results.json", "YYYY-MM-DD", "D")):
            return by_option[prev]
        if prev in ("--junit-xml", "--promptfoo-json"):  # files the command writes: in the test's folder
            return str(self.tmp / token)
        if token == "ID":
            return {"conversation": self.conversation_id, "run": self.run_id}[prev]
        if token == "CONFIG.yaml":
            return str(self.tmp / "eval.yaml")
        if token.startswith("FILE."):  # export writes it, import reads it back
            return str(self.tmp / ("calls" + token[len("FILE"):]))
        assert not re.fullmatch(r"[A-Z][A-Z_.]*", token), f"the README has a placeholder this test cannot fill: {token}"
        return token


def test_every_command_the_readme_prints_runs_as_printed(server, tmp_path):
    from core.chat.conversation import new_conversation
    from core.chat.store import ConversationStore

    server.admin_key = ADMIN
    db_url = f"sqlite:///{tmp_path / 'promptlab.db'}"
    env = {**os.environ, "PROMPTLAB_DB_URL": db_url, "OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.base_url,
           "OPENAI_ADMIN_KEY": ADMIN, "PROMPTLAB_PROVIDER": "openai", "PROMPTLAB_DATA_DIR": str(tmp_path)}
    conversation = new_conversation(system_prompt="Be brief.")
    ConversationStore(db_url).save(conversation, "readme")
    (tmp_path / "eval.yaml").write_text(json.dumps({
        "prompts": ["Answer: {{q}}"], "providers": ["openai:chat:gpt-4o-mini"],
        "tests": [{"vars": {"q": "refund"}, "assert": [{"type": "contains", "value": "refund"}]}]}))
    commands = documented_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert any("core report conversation ID" in c and "-o FILE" in c for c in commands)  # issue 28 row 5
    # Data first (generate, an eval run, an export), then everything that reads it.
    order = ("core calls generate", "core evals run", "core calls export")
    commands.sort(key=lambda c: next((i for i, k in enumerate(order) if k in c), len(order)))
    places = Placeholders(tmp_path, conversation.id)
    ran = []
    for command in commands:
        for argv in expanded(command):
            if argv[:2] == ["streamlit", "run"]:
                argv = [*argv, "--help"]  # a smoke test: the command and its file exist; no server started
            else:
                assert argv[:2] == ["python", "-m"], command
                argv = [sys.executable, *argv[1:]]
            argv = places.fill(argv)
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                                  input="a long enough password\n")
            assert done.returncode == 0, f"{command!r} ran as {argv[1:]} → {done.returncode}: {done.stderr[-800:]}"
            assert "Traceback" not in done.stderr
            if argv[2:4] == ["core", "evals"]:
                places.run_id = done.stdout.split(" · run ")[-1].split()[0]
            ran.append(" ".join(argv[1:]))
    assert len(ran) >= 15 and (tmp_path / "report.html").exists()
    assert any("core report run" in r for r in ran) and any("core calls import" in r for r in ran)

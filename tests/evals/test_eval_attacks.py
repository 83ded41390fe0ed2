"""Issue 23's attacks on evals, replayed against core: a non-admin's python assertion (row 2), file:// references
to the server's files (row 3), a billion-laughs config (row 9), cases nested 100,000 deep (row 10) and a 200 MB cases
CSV (row 11). Each ends in one sentence (EvalConfigError) or a refused verdict, and nothing runs or is read."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from core.calls.gate import CallContext
from core.evals import config as ec
from core.evals.assertions import Output, evaluate, run_python
from core.evals.config import EvalConfigError, TestCase, load_config, parse_config, parse_config_text
from core.evals.run import EvalRun
from core.llm.providers import Provider
from core.policy.access import Identity
from tests.conftest import TEST_KEY

BOB, ROOT = Identity("bob"), Identity("root", admin=True)
ROOT_DIR = Path(__file__).resolve().parents[2]


def python_config(marker: Path, server_url: str = "http://127.0.0.1:9/v1") -> str:
    """A config whose python assertion would leave a marker file behind (and read the parent's environment)."""
    code = (f"open({str(marker)!r}, 'w').write(open('/proc/%d/environ' % __import__('os').getppid()).read()) "
            "or True")
    return (f"prompts: ['Q: {{{{q}}}}']\nproviders: [{{id: 'openai:chat:gpt-4o-mini', config: {{apiBaseUrl: "
            f"'{server_url}'}}}}]\ntests:\n  - vars: {{q: hi}}\n    assert:\n      - type: python\n"
            f"        value: {json.dumps(code)}\n")


# ----- row 2: no code from a non-admin runs on the server ----------------------------------------------------------
def test_a_non_admins_python_assertion_is_refused_when_the_config_is_read(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(EvalConfigError, match="only an admin may run code"):
        parse_config_text(python_config(marker), actor=BOB)
    with pytest.raises(EvalConfigError, match="only an admin"):  # the CSV shorthand is the same code
        parse_config_text("prompts: [x]\nproviders: [openai:gpt-4o]\ndefaultTest: {assert: ['python: True']}",
                          actor=BOB)
    assert parse_config_text(python_config(marker), actor=ROOT).tests[0].assertions[0].type == "python"
    assert not marker.exists()


def test_a_non_admins_python_assertion_never_runs_whatever_path_it_came_by(tmp_path, server, log):
    marker = tmp_path / "ran"
    config = parse_config_text(python_config(marker, server.base_url))  # read, not run: no actor
    resolve = lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0)  # noqa: E731
    for actor in (BOB, None):  # a signed-in non-admin, or nobody in particular
        with pytest.raises(EvalConfigError, match="only an admin"):
            EvalRun(config, resolve, CallContext("evals", "bob"), log, actor=actor)
    # And at the point where code would run: an evaluation that was not allowed code is a refused verdict.
    verdict = evaluate(config.tests[0].assertions[0], Output(text="x"))
    assert not verdict.passed and "only an admin" in verdict.reason
    assert not marker.exists() and server.chat_requests() == []


def test_an_admins_python_runs_without_the_servers_secrets(tmp_path, server, log, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("PROMPTLAB_USERS", "alice:pbkdf2_sha256$1$x$y")
    monkeypatch.setenv("PROMPTLAB_DB_URL", "sqlite:///secret.db")
    seen = run_python("""import os
return {"env": sorted(os.environ), "cwd": os.getcwd()}""", "out", {})
    assert set(seen["env"]) <= {"LC_CTYPE"}  # an empty environment (Python may set its locale)
    assert seen["cwd"] != os.getcwd() and not os.path.exists(seen["cwd"])  # a scratch folder, removed after
    # Through a whole run, as an admin: the assertion passes only when no key is in its environment.
    config = parse_config({"prompts": ["Q"], "providers": [{"id": "openai:chat:gpt-4o-mini",
                                                            "config": {"apiBaseUrl": server.base_url}}],
                           "tests": [{"assert": [{"type": "python", "value":
                                                  "not any('sk-' in v for v in __import__('os').environ.values())"}]}]},
                          actor=ROOT)
    run = EvalRun(config, lambda spec: Provider("compatible", server.base_url, TEST_KEY, max_retries=0),
                  CallContext("evals", "root"), log, actor=ROOT).start()
    assert run.wait(30) and run.grades[0] is not None and run.grades[0].passed, run.grades[0]


def user_namespaces() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import ctypes,sys; sys.exit(ctypes.CDLL(None).unshare("
                            "0x10000000 | 0x40000000) != 0)"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not user_namespaces(), reason="the kernel (or container) forbids user namespaces here")
def test_an_admins_python_cannot_read_the_parents_environment_or_reach_the_network(server):
    seen = run_python(f"""import os, socket
try:
    environ = open('/proc/%d/environ' % os.getppid(), 'rb').read().decode(errors='replace')
except OSError as err:
    environ = type(err).__name__
try:
    socket.create_connection(('127.0.0.1', {server.httpd.server_address[1]}), timeout=2).close()
    network = 'connected'
except OSError as err:
    network = type(err).__name__
return {{"environ": environ, "network": network}}""", "out", {})
    assert seen["environ"] == "PermissionError" and seen["network"] != "connected"


def test_what_a_python_assertion_starts_ends_with_it():
    pid = run_python("""import subprocess, sys
return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]).pid""", "out", {})
    assert isinstance(pid, int)
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone already
    try:  # the sleeper ends with the assertion's process group, long before its 60 s
        assert select.select([handle], [], [], 30)[0] == [handle]
    finally:
        os.close(handle)


# ----- row 3: file:// never reads the server's files ---------------------------------------------------------------
def test_a_pasted_config_reads_no_files(tmp_path):
    secret = tmp_path / "server-secret.txt"
    secret.write_text("TOP-SECRET-SERVER-FILE")
    relative = os.path.relpath(secret, os.getcwd())  # file://../../… from the server's working directory
    for ref in ("file:///etc/passwd", f"file://{secret}", f"file://{relative}", "file://../../../etc/hostname"):
        for text in (f"prompts: ['{ref}']\nproviders: [openai:gpt-4o]",
                     f"prompts: [x]\nproviders: [openai:gpt-4o]\ntests: {ref}.csv",
                     f"prompts: [x]\nproviders: [openai:gpt-4o]\ndefaultTest: {ref}.yaml"):
            with pytest.raises(EvalConfigError, match="reads no files") as refused:
                parse_config_text(text)
            assert ref in str(refused.value) and "TOP-SECRET" not in str(refused.value)
            assert "root:x:0:0" not in str(refused.value)
    # A variable naming a file is sent as written (promptfoo would load it): said, never read.
    config = parse_config_text(f"prompts: ['{{{{a}}}}']\nproviders: [openai:gpt-4o]\ntests:\n"
                               f"  - vars: {{a: 'file://{secret}', b: 'file:///etc/passwd'}}")
    assert config.tests[0].vars == {"a": f"file://{secret}", "b": "file:///etc/passwd"}
    assert sum("does not load files into variables" in n for n in config.notes) == 2


def test_an_uploaded_config_reads_only_the_files_uploaded_with_it_by_name(tmp_path):
    (tmp_path / "cases.csv").write_text("q,__expected\nserver,contains:x\n")  # on disk, not uploaded
    uploaded = ec.ConfigFiles(uploaded={"cases.csv": b"q,__expected\nuploaded,contains:y\n",
                                     "chat.txt": b"Hello {{q}}"})
    config = parse_config_text("prompts: ['file://prompts/chat.txt']\nproviders: [openai:gpt-4o]\n"
                               "tests: ['file://cases.csv', 'file://../../../cases.csv']", uploaded)
    assert [t.vars["q"] for t in config.tests] == ["uploaded", "uploaded"]  # by name: a path leads nowhere else
    assert config.prompts[0].text == "Hello {{q}}"
    with pytest.raises(EvalConfigError, match="no file named “passwd” was uploaded") as refused:
        parse_config_text("prompts: ['file:///etc/passwd']\nproviders: [openai:gpt-4o]", uploaded)
    assert "root:x" not in str(refused.value)


def test_the_command_line_still_reads_files_next_to_its_config(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "more.csv").write_text("q,__expected\nfrom the folder,contains:x\n")
    (tmp_path / "prompt.txt").write_text("Answer {{q}}")
    (tmp_path / "promptfooconfig.yaml").write_text(
        "prompts: [file://prompt.txt]\nproviders: [openai:gpt-4o]\ntests: file://cases/more.csv\n"
        "defaultTest: {assert: ['python: True']}\n")  # the operator's own config may hold code
    config = load_config(tmp_path / "promptfooconfig.yaml")
    assert config.prompts[0].text == "Answer {{q}}" and config.tests[0].vars == {"q": "from the folder"}


def test_the_command_line_runs_its_operators_python_with_files_from_its_folder(server, tmp_path, sqlite_url):
    (tmp_path / "cases.csv").write_text("q,__expected\nfrom the folder,python: 'from the folder' in output\n")
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(f"prompts: ['Echo {{{{q}}}}']\nproviders: [{{id: 'openai:chat:gpt-4o-mini', config: "
                      f"{{apiBaseUrl: '{server.base_url}'}}}}]\ntests: file://cases.csv\n")
    done = subprocess.run([sys.executable, "-m", "core", "evals", "run", str(config)], cwd=ROOT_DIR, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PROMPTLAB_DB_URL": sqlite_url,
                                                       "OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.base_url})
    assert done.returncode == 0, done.stdout + done.stderr  # the python assertion ran, and passed


# ----- rows 9, 10, 11: bounded parsers ---------------------------------------------------------------------------
BILLION_LAUGHS = "\n".join(
    ["prompts: ['Q: {{q}}']", "providers: [openai:gpt-4o]", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol",'
     '"lol"]'] + [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    + ["tests: [{vars: {q: *l9}}]"]) + "\n"


def test_a_billion_laughs_config_is_one_sentence():
    with pytest.raises(EvalConfigError, match="expands to more than 500,000 items"):
        parse_config_text(BILLION_LAUGHS)
    with pytest.raises(EvalConfigError, match="expands to more than"):  # a cases file the same
        ec.tests_from_yaml("\n".join(BILLION_LAUGHS.splitlines()[2:]).replace("tests: [", "- [").replace("]]", "]"))
    # Anchors and aliases within the limits still work (promptfoo configs use them for shared assertions).
    config = parse_config_text("common: &c [{type: icontains, value: days}]\nprompts: [x]\nproviders: [openai:gpt-4o]"
                               "\ntests: [{vars: {q: a}, assert: *c}, {vars: {q: b}, assert: *c}]")
    assert [t.assertions[0].value for t in config.tests] == ["days", "days"]


def test_a_large_scalar_repeated_by_aliases_is_refused():
    text = ("prompts: [x]\nproviders: [openai:gpt-4o]\nbig: &b " + "x" * 1_000_000 + "\ntests: [{vars: {q: ["
            + ", ".join(["*b"] * 20) + "]}}]\n")
    with pytest.raises(EvalConfigError, match="of text"):
        parse_config_text(text)


DEEP_YAML = "- vars: {q: " + "[" * 100_000 + "]" * 100_000 + "}\n"


def test_cases_nested_100000_deep_are_one_sentence():
    with pytest.raises(EvalConfigError, match="nested more than 64 levels"):
        ec.tests_from_yaml(DEEP_YAML)
    with pytest.raises(EvalConfigError, match="nested more than 64 levels"):
        ec.tests_from_jsonl('{"vars": {"q": ' + "[" * 100_000 + "]" * 100_000 + "}}\n")
    # A prompt that looks like chat-format JSON but is 100,000 deep is text, not a crash.
    config = parse_config_text("prompts: ['" + "[" * 100_000 + "']\nproviders: [openai:gpt-4o]")
    assert config.prompts[0].messages is None


def test_a_200_mb_cases_csv_is_refused_by_its_size_before_parsing():
    row = "x" * 100_000 + ",contains:x\n"
    text = "q,__expected\n" + row * (200 * 1024 * 1024 // len(row))
    with pytest.raises(EvalConfigError, match="larger than 20 MB"):
        ec.tests_from_csv(text)
    del text


def test_more_than_10000_cases_are_refused_and_one_huge_cell_is_a_sentence():
    rows = "".join(f"case {i},contains:x\n" for i in range(10_001))
    with pytest.raises(EvalConfigError, match="more than 10,000 test cases"):
        ec.tests_from_csv("q,__expected\n" + rows)
    with pytest.raises(EvalConfigError, match="more than 10,000 test cases"):
        ec.tests_from_jsonl("".join('{"vars": {"q": "%d"}}\n' % i for i in range(10_001)))
    with pytest.raises(EvalConfigError, match="more than 10,000 test cases"):
        ec.tests_from_yaml("".join(f"- vars: {{q: '{i}'}}\n" for i in range(10_001)))
    assert len(ec.tests_from_csv("q,__expected\n" + rows.split("case 10000")[0])) == 10_000
    with pytest.raises(EvalConfigError, match="The config holds more than 10,000"):  # inline and files together
        parse_config_text("prompts: [x]\nproviders: [openai:gpt-4o]\ntests:\n"
                          + "".join(f"  - vars: {{q: '{i}'}}\n" for i in range(5_001)) + "  - file://a.csv\n",
                          ec.ConfigFiles(uploaded={"a.csv": ("q\n" + "x\n" * 5_000).encode()}))
    with pytest.raises(EvalConfigError, match="cannot be read"):  # past the csv module's cell limit
        ec.tests_from_csv("q\n" + "y" * 200_000 + "\n")


def test_too_many_cells_are_refused_before_they_are_built(log):
    config = parse_config({"prompts": [f"p{i}" for i in range(40)], "providers": ["openai:gpt-4o"],
                           "tests": [{"vars": {"q": str(i)}} for i in range(3000)]})
    with pytest.raises(EvalConfigError, match="120,000 cells"):
        EvalRun(config, lambda spec: Provider("compatible", "http://127.0.0.1:9/v1", None), CallContext("evals"),
                log)


def test_values_of_the_wrong_kind_are_one_sentence():
    for text, reason in (("prompts: [x]\nproviders: [openai:gpt-4o]\ntests: [{assert: 3}]", "must be a list"),
                         ("prompts: [x]\nproviders: [openai:gpt-4o]\ntests: [{threshold: high}]", "must be a number"),
                         ("prompts: [x]\nproviders: [{id: openai:gpt-4o, config: [1]}]", "wrong kind")):
        with pytest.raises(EvalConfigError, match=reason):
            parse_config_text(text)
    assert TestCase().vars == {}

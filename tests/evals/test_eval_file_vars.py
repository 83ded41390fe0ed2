"""Image and PDF variables in evals (promptfoo's `file://` vars): read within the config's file rules, checked by
content, placed as content parts for either API, stored as name + SHA-256 + size, refused in one sentence for a
model without vision (no call made), and every bad file said in one sentence."""
from __future__ import annotations

import io
import json

import pytest
import yaml
from pypdf import PdfWriter

from core.calls.gate import CallContext
from core.evals.config import STORED, ConfigFiles, EvalConfigError, load_config, parse_config, parse_config_text
from core.evals.run import EvalRun
from core.llm.attachments import image_tokens
from core.llm.providers import Provider
from core.llm.tokens import count_messages
from tests.conftest import TEST_KEY
from tests.loopback_server import tiny_png

JSON_PROMPT = json.dumps([{"role": "user", "content": [
    {"type": "text", "text": "What is in the picture?"},
    {"type": "image_url", "image_url": {"url": "{{image}}"}}]}])


def pdf(password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_config(folder, tests, prompts=None, providers=None) -> str:
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump({"prompts": prompts or ["Describe {{image}}"],
                                    "providers": providers or ["openai:chat:gpt-4o-mini"], "tests": tests}))
    return str(path)


def resolver(server, kind="compatible"):
    return lambda spec: Provider(kind, server.base_url, TEST_KEY, max_retries=0)


def test_file_vars_from_the_config_folder_go_as_parts_in_both_prompt_forms(server, log, tmp_path):
    (tmp_path / "cat.png").write_bytes(tiny_png(64, 32))
    (tmp_path / "invoice.pdf").write_bytes(pdf())
    config = load_config(write_config(tmp_path, [
        {"vars": {"image": "file://cat.png"}, "assert": [{"type": "contains", "value": "[1 image]"}]},
        {"vars": {"image": "file://invoice.pdf"}, "assert": [{"type": "contains", "value": "[1 file]"}]}],
        prompts=["Describe {{image}}", JSON_PROMPT]))
    assert not config.notes  # loaded, not "sent as written"
    run = EvalRun(config, resolver(server), CallContext("evals", "alice"), log).start()
    assert run.wait(30)
    rows = run.rows()
    assert all(r["pass"] for r in rows), [(r["output"], r["reason"]) for r in rows]
    parts = server.content_parts()
    texts = sorted(p[0].get("text") for p in parts)
    assert texts == ["Describe [cat.png]", "Describe [invoice.pdf]", "What is in the picture?",
                     "What is in the picture?"]
    images = [p for ps in parts for p in ps if p["type"] == "image_url"]
    assert len(images) == 1 + 1  # the PNG in each prompt form, each once
    assert all(p["image_url"]["url"].startswith("data:image/png;base64,iVBOR") for p in images)
    files = [p for ps in parts for p in ps if p["type"] == "file"]
    assert len(files) == 2 and files[0]["file"]["filename"] == "invoice.pdf"
    # results.json: the var by name, type, size and SHA-256, never its base64
    stored = json.loads(run.to_json())["results"]
    image_var = next(r["vars"]["image"] for r in stored if r["vars"]["image"]["file"] == "cat.png")
    assert image_var["size"] == len(tiny_png(64, 32)) and len(image_var["sha256"]) == 64
    assert "base64" not in run.to_json() and "iVBOR" not in run.to_json()


def test_responses_cells_send_input_image_and_the_estimate_counts_image_tokens(server, log, tmp_path):
    (tmp_path / "cat.png").write_bytes(tiny_png(1024, 1024))
    config = load_config(write_config(tmp_path, [{"vars": {"image": "file://cat.png"}}],
                                      providers=["openai:responses:gpt-4o"]))
    run = EvalRun(config, resolver(server), CallContext("evals", "alice"), log)
    estimate = run.estimate(count_messages, lambda model: None)
    assert estimate.image_tokens == image_tokens("gpt-4o", 1024, 1024) == 765
    assert estimate.input_tokens > estimate.image_tokens
    assert run.start().wait(30)
    (parts,) = server.response_parts()
    assert [p["type"] for p in parts] == ["input_text", "input_image"]
    assert parts[1]["image_url"].startswith("data:image/png;base64,")
    assert run.rows()[0]["output"].endswith("[1 image]")


def test_a_model_without_vision_errors_each_cell_in_one_sentence_without_a_call(server, log, tmp_path):
    (tmp_path / "cat.png").write_bytes(tiny_png())
    config = load_config(write_config(tmp_path, [{"vars": {"image": "file://cat.png"}}, {"vars": {"image": "x"}}],
                                      providers=["openai:chat:gpt-3.5-turbo", "openai:chat:gpt-4o-mini"]))
    run = EvalRun(config, resolver(server, kind="openai"), CallContext("evals", "alice"), log).start()
    assert run.wait(30)
    rows = {(r["provider"], r["test_index"]): r for r in run.rows()}
    refused = rows[("openai:chat:gpt-3.5-turbo", 0)]
    assert refused["status"] == "error" and refused["error"] == (
        "gpt-3.5-turbo does not take images or PDFs; remove the attachments or choose a model with vision.")
    assert refused["request_id"] is None
    # the rest of the run went on: three calls, none of them the refused one
    assert all(rows[k]["status"] == "ok" for k in rows if k != ("openai:chat:gpt-3.5-turbo", 0))
    calls = [r for r in log.recent(50) if f"run:{run.id}" in r.tags]
    assert len(calls) == 3 and len(server.chat_requests()) == 3


def test_a_server_that_refuses_images_gives_the_same_sentence(server, log, tmp_path):
    (tmp_path / "cat.png").write_bytes(tiny_png())
    config = load_config(write_config(tmp_path, [{"vars": {"image": "file://cat.png"}}],
                                      providers=["openai:chat:gpt-3.5-turbo"]))
    run = EvalRun(config, resolver(server), CallContext("evals", "alice"), log).start()  # compatible: it tries
    assert run.wait(30)
    (row,) = run.rows()
    assert row["error"].startswith("gpt-3.5-turbo does not take images or PDFs")
    assert len(server.chat_requests()) == 1  # the call was made, and logged
    assert [r.status for r in log.recent(5) if f"run:{run.id}" in r.tags] == ["error"]


def test_a_pasted_config_reads_no_file_for_an_image_var():
    hostile = ("prompts: ['{{image}}']\nproviders: [openai:chat:gpt-4o-mini]\n"
               "tests:\n  - vars: {image: 'file:///etc/passwd'}\n")
    config = parse_config_text(hostile)
    assert config.tests[0].vars["image"] == "file:///etc/passwd"  # not loaded: sent as written, with a note
    assert any("does not load files" in n for n in config.notes)
    with pytest.raises(EvalConfigError) as err:
        parse_config_text(hostile.replace("/etc/passwd", "/etc/passwd.png"))
    assert "reads no files" in str(err.value) and "root:" not in str(err.value)


def test_an_uploaded_config_reads_only_the_files_uploaded_with_it_by_name():
    data = {"prompts": ["{{image}}"], "providers": ["openai:chat:gpt-4o-mini"],
            "tests": [{"vars": {"image": "file://../../../tmp/elsewhere/cat.png"}}]}
    config = parse_config(data, ConfigFiles(uploaded={"cat.png": tiny_png()}))
    assert config.tests[0].vars["image"].sha256 and config.tests[0].vars["image"].name == "cat.png"
    with pytest.raises(EvalConfigError) as err:
        parse_config(data, ConfigFiles(uploaded={"other.png": tiny_png()}))
    assert "no file named “cat.png” was uploaded" in str(err.value)


@pytest.mark.parametrize(("name", "content", "says"), [
    ("big.png", None, "big.png is 30.0 MB; attachments can be at most 20 MB each."),
    ("notes.png", b"just some text, not an image", "notes.png is not a PNG, JPEG, WebP or GIF image or a PDF"),
    ("cut.pdf", pdf()[:200], "cut.pdf is not a readable PDF"),
    ("locked.pdf", pdf("secret"), "locked.pdf is password-protected"),
])
def test_a_bad_file_var_is_one_sentence_naming_test_and_var(tmp_path, name, content, says):
    target = tmp_path / name
    if content is None:
        with open(target, "wb") as f:  # 30 MB, sparse: refused by its size before it is read
            f.truncate(30 * 1024 * 1024)
    else:
        target.write_bytes(content)
    with pytest.raises(EvalConfigError) as err:
        load_config(write_config(tmp_path, [{"description": "receipt", "vars": {"image": f"file://{name}"}}]))
    message = str(err.value)
    assert message.startswith("receipt, variable “image”: ") and says in message
    assert message.count(". ") == 0 and "Traceback" not in message


def test_a_stored_config_names_the_file_and_a_resume_refuses_it(tmp_path, server, log):
    (tmp_path / "cat.png").write_bytes(tiny_png())
    config = load_config(write_config(tmp_path, [{"vars": {"image": "file://cat.png"}}]))
    stored = config.to_dict()
    assert stored["tests"][0]["vars"] == {"image": "file://cat.png"}
    again = parse_config(json.loads(json.dumps(stored)), STORED)
    assert again.tests[0].vars["image"] == "file://cat.png"
    with pytest.raises(EvalConfigError) as err:
        EvalRun(again, resolver(server), CallContext("evals", "alice"), log)
    assert "were not stored with it" in str(err.value)
    assert server.chat_requests() == []


def test_a_stored_run_and_its_report_hold_the_file_by_name_size_and_digest(server, log, tmp_path, sqlite_url):
    from core.evals.store import EvalStore
    from core.records import report
    image = tiny_png(300, 200)
    (tmp_path / "cat.png").write_bytes(image)
    config = load_config(write_config(tmp_path, [{"vars": {"image": "file://cat.png", "q": "hi"}}]))
    run = EvalRun(config, resolver(server), CallContext("evals", "alice"), log).start()
    assert run.wait(30)
    store = EvalStore(sqlite_url)
    store.save_run(run.id, "vision", config, run.rows(), run.summary(), "alice")
    saved = store.run(run.id)
    assert saved.rows[0]["vars"]["image"]["sha256"] == run.rows()[0]["vars"]["image"]["sha256"]
    assert saved.config.tests[0].vars["image"] == "file://cat.png"
    doc = report.eval_report(saved).html
    assert "cat.png · 300×200 · 1 KB · sha256 " in doc and "iVBORw0KGgo" not in doc
    assert "base64" not in saved.to_json()


def test_the_json_prompt_renders_as_promptfoo_renders_it(tmp_path):
    """tests/fixtures/promptfoo_image_var.json: promptfoo 0.121.20's echo provider on this config (tiny_png()
    as cat.png) — the image var is the whole data URI in the image_url part; PromptLab sends the same message."""
    from pathlib import Path

    from core.evals.run import messages_for
    recorded = json.loads((Path(__file__).parents[1] / "fixtures" / "promptfoo_image_var.json").read_text())
    (tmp_path / "eval.yaml").write_text(recorded["config"].replace("[echo]", "[openai:chat:gpt-4o-mini]"))
    (tmp_path / "cat.png").write_bytes(tiny_png())
    config = load_config(tmp_path / "eval.yaml")
    assert messages_for(config.prompts[1], config.cases()[0].vars) == recorded["rendered"]


def test_the_command_line_reads_image_vars_from_the_config_folder(server, tmp_path, sqlite_url):
    from tests.evals.test_evals import run_cli
    (tmp_path / "shots").mkdir()
    image = tiny_png(400, 400)
    (tmp_path / "shots" / "cat.png").write_bytes(image)
    config = write_config(tmp_path, [{"vars": {"image": "file://shots/cat.png"},
                                      "assert": [{"type": "icontains", "value": "[1 image]"}]}],
                          providers=[{"id": "openai:chat:gpt-4o-mini", "config": {"apiBaseUrl": server.base_url}}])
    out = tmp_path / "results.json"
    done = run_cli(["run", config, "--output", str(out)], sqlite_url, server.base_url)
    assert done.returncode == 0, done.stdout + done.stderr
    (cell,) = json.loads(out.read_text())["results"]
    assert cell["vars"]["image"]["file"] == "cat.png" and cell["vars"]["image"]["size"] == len(image)
    assert out.stat().st_size < 20_000 and "base64" not in out.read_text()
    bad = write_config(tmp_path, [{"vars": {"image": "file://missing.png"}}])
    failed = run_cli(["run", bad], sqlite_url, server.base_url)
    assert failed.returncode == 1 and "missing.png could not be read" in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr


def test_an_edited_case_table_reads_its_file_vars_by_the_same_rules():
    from core.evals.config import tests_from_csv, tests_to_csv, with_files
    config = parse_config({"prompts": ["{{image}}"], "providers": ["openai:chat:gpt-4o-mini"],
                           "tests": [{"vars": {"image": "file://cat.png"}}]},
                          ConfigFiles(uploaded={"cat.png": tiny_png()}))
    table = tests_to_csv(config.tests)
    assert "file://cat.png" in table and "iVBOR" not in table
    (case,) = with_files(tests_from_csv(table), ConfigFiles(uploaded={"cat.png": tiny_png()}))
    assert case.vars["image"].sha256 == config.tests[0].vars["image"].sha256
    with pytest.raises(EvalConfigError, match="reads no files"):
        with_files(tests_from_csv(table), ConfigFiles())

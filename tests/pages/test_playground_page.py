"""AppTest of the Playground against the loopback server."""
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.formats.columns import label  # tables show human headers
from core.playground.draft import Draft
from core.playground.library import PromptLibrary
from tests.loopback_server import Script

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def pg(app_env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/playground.py").run()
    at.text_area(key="pg_system").set_value("You are terse.").run()
    at.text_area(key="pg_user").set_value("Where is order {{order}}?").run()
    at.text_input(key="pg_var_order").set_value("A-17").run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_single_run_with_variables_metrics_and_view_code(pg, server, app_env):
    assert any("Input before sending" in c for c in captions(pg))
    pg.button(key="pg_run").click().run()
    body = server.chat_requests()[-1]
    assert body["messages"] == [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "Where is order A-17?"}]
    assert any(m.value == "Echo: Where is order A-17?" for m in pg.markdown)
    assert any(c.startswith("done · finish: complete") and "out tokens" in c for c in captions(pg))
    codes = [c.value for c in pg.code]
    assert any("client.chat.completions.create(" in c for c in codes) and any(c.startswith("curl ") for c in codes)
    rec = CallLog(app_env["PROMPTLAB_DB_URL"]).recent(5)
    assert any(r.page == "playground" and r.tags == ["run:single"] for r in rec)


def test_json_schema_output_is_validated(pg, server):
    pg.radio(key="pg_format").set_value("json_schema").run()
    pg.text_area(key="pg_schema").set_value('{"type": "object", "required": ["eta"]}').run()
    server.push(Script(reply='{"status": "shipped"}'))
    pg.button(key="pg_run").click().run()
    assert any("invalid output" in c and "eta" in c for c in captions(pg))
    sent = server.chat_requests()[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["required"] == ["eta"]


def test_invalid_tools_block_the_run_with_one_sentence(pg):
    pg.text_area(key="pg_tools").set_value('[{"name": "f", "parameters": {"type": 7}}]').run()
    assert "not a valid JSON Schema" in pg.warning[0].value
    assert pg.button(key="pg_run").disabled


def test_reasoning_model_disables_sampling_controls(pg):
    pg.selectbox(key="pg_model").set_value("o4-mini").run()
    assert pg.slider(key="pg_temperature").disabled
    assert not pg.selectbox(key="pg_effort").disabled


def test_two_by_two_matrix_with_per_cell_metrics(pg, server, app_env):
    pg.multiselect(key="pg_cmp_models").set_value(["gpt-4o-mini", "gpt-4o"]).run()
    pg.text_input(key="pg_cmp_temps").set_value("0, 0.8").run()
    assert any(c.startswith("4 cells") for c in captions(pg))
    pg.text_input(key="pg_run_name").set_value("exp-1").run()
    pg.button(key="pg_cmp_run").click().run()
    assert not pg.exception
    cells = [c for c in captions(pg) if " · T=" in c]
    assert len(cells) == 4 and {c.split(" · ")[1] for c in cells} == {"gpt-4o-mini", "gpt-4o"}
    metrics = [c for c in captions(pg) if c.startswith("done · finish: complete")]
    assert len(metrics) >= 4
    temps = sorted(r["temperature"] for r in server.chat_requests())
    assert temps == [0.0, 0.0, 0.8, 0.8]
    tagged = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(20) if r.tags == ["run:exp-1"]]
    assert len(tagged) == 4 and all(r.page == "playground" for r in tagged)
    table = pg.dataframe[0].value
    assert len(table) == 4 and {label(c) for c in ("latency_ms", "ttft_ms", "cost_usd", "output_tokens")} <= set(table.columns)


def test_cancel_stops_the_matrix(pg, server, app_env):
    for _ in range(2):
        server.push(Script(chunks=400, chunk_delay=0.05))
    pg.multiselect(key="pg_cmp_models").set_value(["gpt-4o-mini", "gpt-4o"]).run()
    pg.text_input(key="pg_cmp_temps").set_value("0").run()
    pg.button(key="pg_cmp_run").click()
    with pytest.raises(RuntimeError, match="timed out"):
        pg.run(timeout=2)  # the script is stopped mid-run, as a click on Cancel interrupts it
    pg.button(key="pg_cmp_run").set_value(False)  # AppTest would press Run again; a browser does not
    pg.run()
    statuses = [r.status for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "playground"]
    assert statuses == ["cancelled", "cancelled"]
    assert pg.dataframe[0].value[label("status")].tolist() == ["cancelled", "cancelled"]


def test_saved_version_is_reloaded(pg, app_env):
    pg.text_input(key="pg_save_name").set_value("support")  # form fields go with their submit, in one run
    pg.text_input(key="pg_save_note").set_value("first try")
    next(b for b in pg.button if "Save as new version" in b.label).click().run()
    assert "Saved support v1" in pg.success[0].value
    pg.text_area(key="pg_system").set_value("Something else entirely.").run()
    pg.button(key="pg_lib_load").click().run()
    assert pg.text_area(key="pg_system").value == "You are terse."
    assert pg.text_input(key="pg_var_order").value == "A-17"
    versions = PromptLibrary(app_env["PROMPTLAB_DB_URL"]).history("support")
    assert versions[0].note == "first try" and versions[0].author == "local"


def test_replay_a_logged_call(pg, server, app_env):
    pg.button(key="pg_run").click().run()
    rid = next(r.request_id for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(5) if r.page == "playground")
    pg.text_area(key="pg_system").set_value("changed").run()
    pg.text_input(key="pg_replay_id").set_value(rid).run()
    pg.button(key="pg_replay").click().run()
    assert pg.text_area(key="pg_system").value == "You are terse."
    assert pg.text_area(key="pg_user").value == "Where is order A-17?"


def test_saved_version_as_chat_persona(pg, app_env):
    PromptLibrary(app_env["PROMPTLAB_DB_URL"]).save("kb", Draft("gpt-4o-mini", "You answer from the wiki."))
    pg.run()
    pg.selectbox(key="pg_lib_name").set_value("kb").run()
    pg.button(key="pg_lib_persona").click().run()
    assert pg.session_state.conversation.system_prompt == "You answer from the wiki."
    assert pg.session_state.persona_id == "custom"


def save_version(pg, name: str) -> None:
    pg.text_input(key="pg_save_name").set_value(name)
    next(b for b in pg.button if "Save as new version" in b.label).click().run()
    assert not pg.exception, pg.exception


def test_compare_sends_each_saved_version_with_the_variables_and_max_tokens_on_screen(pg, server):
    save_version(pg, "support")  # v1: "Where is order {{order}}?" saved with order = A-17
    pg.text_area(key="pg_system").set_value("You are warm.").run()
    save_version(pg, "support")  # v2
    pg.text_input(key="pg_var_order").set_value("B-99").run()
    pg.number_input(key="pg_max_tokens").set_value(99).run()
    pg.multiselect(key="pg_cmp_versions").set_value(["support v1", "support v2"]).run()
    pg.text_input(key="pg_cmp_temps").set_value("0").run()
    pg.button(key="pg_cmp_run").click().run()
    sent = server.chat_requests()
    assert len(sent) == 2
    assert {b["messages"][-1]["content"] for b in sent} == {"Where is order B-99?"}
    assert {b["messages"][0]["content"] for b in sent} == {"You are terse.", "You are warm."}
    assert {b.get("max_tokens") or b.get("max_completion_tokens") for b in sent} == {99}


def test_a_saved_version_is_offered_at_once_and_the_diff_reads_old_to_new(pg):
    save_version(pg, "support")
    assert "support v1" in pg.multiselect(key="pg_cmp_versions").options
    pg.text_area(key="pg_system").set_value("You are terse and kind.").run()
    save_version(pg, "support")
    assert "support v2" in pg.multiselect(key="pg_cmp_versions").options  # no unrelated rerun needed
    assert pg.selectbox(key="pg_lib_version").value == pg.session_state.pg_lib_version  # v2 selected
    diff = next(h.proto.body for h in pg.get("html") if "<ins" in h.proto.body)
    inserted = "".join(re.findall(r"<ins[^>]*>(.*?)</ins>", diff))
    deleted = "".join(re.findall(r"<del[^>]*>(.*?)</del>", diff))
    assert "kind." in inserted and "kind" not in deleted  # v2's new words are added, not struck out
    assert any("support v1 → support v2" in c for c in captions(pg))


def test_each_matrix_run_gets_a_new_default_name(pg, server, app_env):
    pg.text_input(key="pg_cmp_temps").set_value("0").run()
    names = [pg.text_input(key="pg_run_name").value]
    for _ in range(2):
        pg.button(key="pg_cmp_run").click().run()
        names.append(pg.text_input(key="pg_run_name").value)
    assert len(set(names)) == 3 and all(n.startswith("run-") for n in names)
    tags = {t for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) for t in r.tags}
    assert {f"run:{n}" for n in names[:2]} <= tags  # each run's calls carry its own name


def test_an_oversized_request_is_refused_before_sending(pg, server):
    pg.selectbox(key="pg_model").set_value("echo-1").run()  # an 8,192-token window
    pg.text_area(key="pg_user").set_value("lorem ipsum dolor " * 20_000).run()
    assert any("more than the" in w.value and "echo-1" in w.value for w in pg.warning)
    assert pg.button(key="pg_run").disabled
    assert server.chat_requests() == []


def test_a_tool_call_is_answered_and_continued_on_the_page(pg, server, app_env):
    pg.text_area(key="pg_tools").set_value(
        '[{"name": "lookup_order", "parameters": {"type": "object", "properties": {"order": {"type": "string"}}}}]'
    ).run()
    pg.selectbox(key="pg_tier").set_value("flex").run()
    server.push(Script(tool_call={"name": "lookup_order", "arguments": '{"order": "A-17"}'}))
    pg.button(key="pg_run").click().run()
    assert server.chat_requests()[-1]["service_tier"] == "flex"
    assert "tier:flex" in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(1)[0].tags  # logged with the call
    box = next(t for t in pg.text_area if (t.key or "").startswith("pg_tool_result_"))
    box.set_value('{"status": "shipped"}').run()
    server.push(Script(reply="Order A-17 has shipped."))
    pg.button(key="pg_continue").click().run()
    assert not pg.exception, pg.exception
    sent = server.chat_requests()[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[3] == {"role": "tool", "tool_call_id": "call_loopback", "content": '{"status": "shipped"}'}
    assert any(m.value == "Order A-17 has shipped." for m in pg.markdown)
    assert pg.text_area(key="pg_user").value == ""  # the conversation goes on from the tool turn
    assert any("'role': 'tool'" in c.value for c in pg.code)  # View code shows the continued conversation
    # nothing left to answer: the reply was text
    assert not any((t.key or "").startswith("pg_tool_result_") for t in pg.text_area)


def test_a_single_run_through_the_responses_api_shows_it_and_its_code(pg, server, app_env):
    pg.selectbox(key="pg_api").set_value("responses").run()
    codes = [c.value for c in pg.code]
    assert any("client.responses.create(" in c for c in codes) and any("/responses" in c for c in codes)
    pg.button(key="pg_run").click().run()
    assert not pg.exception, pg.exception
    body = [r["body"] for r in server.requests if r["path"] == "/v1/responses"][-1]
    assert body["instructions"] == "You are terse." and body["input"] == [
        {"role": "user", "content": "Where is order A-17?"}]
    assert server.chat_requests() == []
    assert any(m.value == "Echo: Where is order A-17?" for m in pg.markdown)
    assert "Served through: Responses" in captions(pg)
    rec = CallLog(app_env["PROMPTLAB_DB_URL"]).recent(5)
    assert any(r.page == "playground" and "endpoint:responses" in r.tags for r in rec)


def test_an_uploaded_image_is_a_variable_sent_as_a_part_and_shown_short_in_the_code(pg, server, app_env):
    from tests.loopback_server import tiny_png
    pg.selectbox(key="pg_model").set_value("gpt-4o").run()
    pg.text_area(key="pg_user").set_value("What colour is {{swatch}}?").run()
    pg.file_uploader(key="pg_files").set_value([("swatch.png", tiny_png(64, 64), "image/png"),
                                                ("notes.png", b"plain text, not an image", "image/png")]).run()
    assert not pg.exception, pg.exception
    assert "notes.png is not a PNG, JPEG, WebP or GIF image or a PDF, so it cannot be attached." in [
        w.value for w in pg.warning]
    assert "pg_var_swatch" not in [t.key for t in pg.text_input]  # its value is the upload
    assert any(c.startswith("{{swatch}} · 64×64") for c in captions(pg))
    assert len(pg.get("image")) == 1  # the thumbnail
    codes = "\n".join(c.value for c in pg.code)
    assert "data:image/png;base64,…[" in codes and "iVBORw0KGgo" not in codes
    # the forecast is in the input count (gpt-4o: 85 + 170 per tile; gpt-4o-mini's 8,500 would not fit here)
    assert any("Input before sending" in c and "tokens" in c for c in captions(pg))
    pg.button(key="pg_run").click().run()
    assert not pg.exception, pg.exception
    (user,) = [m for m in server.chat_requests()[-1]["messages"] if m["role"] == "user"]
    assert [p["type"] for p in user["content"]] == ["text", "image_url"]
    assert user["content"][0]["text"] == "What colour is [swatch.png]?"
    assert any(m.value == "Echo: What colour is [swatch.png]? [1 image]" for m in pg.markdown)
    rec = CallLog(app_env["PROMPTLAB_DB_URL"]).recent(1)[0]
    assert rec.status == "ok" and rec.tags == ["run:single"]


def test_an_image_to_a_model_without_vision_is_refused_before_any_call(pg, server, monkeypatch):
    from core.llm import attachments
    from tests.loopback_server import tiny_png
    # gpt-4o-mini as a text-only model for this test (the picker offers the loopback's models only)
    monkeypatch.setattr(attachments, "takes_images", lambda kind, model: model != "gpt-4o-mini")
    pg.text_area(key="pg_user").set_value("Describe {{photo}}").run()
    pg.file_uploader(key="pg_files").set_value([("photo.png", tiny_png(), "image/png")]).run()
    assert not pg.exception, pg.exception
    assert "gpt-4o-mini does not take images or PDFs; remove the attachments or choose a model with vision." in [
        w.value for w in pg.warning]
    assert pg.button(key="pg_run").disabled and pg.text_area(key="pg_user").value == "Describe {{photo}}"
    assert server.chat_requests() == []


def test_compare_cells_send_the_uploaded_file_with_a_saved_version(pg, server):
    from tests.loopback_server import tiny_png
    pg.selectbox(key="pg_model").set_value("gpt-4o").run()  # gpt-4o-mini's 8,500 image tokens would not fit here
    pg.text_area(key="pg_user").set_value("Read {{receipt}}").run()
    save_version(pg, "receipts")  # saved without the file
    pg.file_uploader(key="pg_files").set_value([("receipt.png", tiny_png(), "image/png")]).run()
    pg.multiselect(key="pg_cmp_models").set_value(["gpt-4o"]).run()
    pg.multiselect(key="pg_cmp_versions").set_value(["receipts v1"]).run()
    pg.text_input(key="pg_cmp_temps").set_value("0").run()
    pg.button(key="pg_cmp_run").click().run()
    assert not pg.exception, pg.exception
    sent = server.chat_requests()
    assert len(sent) == 1  # the saved version, which has no file of its own, sent with the screen's file
    assert all([p["type"] for p in b["messages"][-1]["content"]] == ["text", "image_url"] for b in sent)
    assert {b["messages"][-1]["content"][0]["text"] for b in sent} == {"Read [receipt.png]"}


def test_an_uploaded_pdf_goes_as_an_input_file_through_the_responses_api(pg, server):
    import io

    from pypdf import PdfWriter
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    pdf = io.BytesIO()
    writer.write(pdf)
    pg.text_area(key="pg_user").set_value("Sum up {{invoice}}").run()
    pg.file_uploader(key="pg_files").set_value([("invoice.pdf", pdf.getvalue(), "application/pdf")]).run()
    assert "📄 {{invoice}} · invoice.pdf" in captions(pg)
    pg.selectbox(key="pg_api").set_value("responses").run()
    pg.button(key="pg_run").click().run()
    assert not pg.exception, pg.exception
    (parts,) = server.response_parts()
    assert [p["type"] for p in parts] == ["input_text", "input_file"] and parts[1]["filename"] == "invoice.pdf"
    assert parts[1]["file_data"].startswith("data:application/pdf;base64,JVBERi")
    assert any(m.value == "Echo: Sum up [invoice.pdf] [1 file]" for m in pg.markdown)
@pytest.fixture
def pg_openai(app_env, monkeypatch) -> AppTest:
    """The Playground with the loopback server as an OpenAI-kind provider (auto: the Responses API)."""
    monkeypatch.setenv("PROMPTLAB_PROVIDER", "openai")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/playground.py").run()
    at.text_area(key="pg_system").set_value("You are terse.").run()
    at.text_area(key="pg_user").set_value("Capital of France?").run()
    assert not at.exception, at.exception
    return at


def test_compare_cells_on_the_responses_api_show_it_their_thinking_and_their_code(pg_openai, server):
    pg = pg_openai
    pg.multiselect(key="pg_cmp_models").set_value(["o4-mini", "gpt-4o-mini"]).run()
    pg.text_input(key="pg_cmp_temps").set_value("1").run()
    for _ in range(2):
        server.push(Script(path="/v1/responses", reply="Paris.", reasoning_summary="Recall the capital."))
    pg.button(key="pg_cmp_run").click().run()
    assert not pg.exception, pg.exception
    assert len([r for r in server.requests if r["path"] == "/v1/responses"]) == 2 and server.chat_requests() == []
    done = [c for c in captions(pg) if c.startswith("done · finish: complete")]
    assert len(done) == 2 and all(c.endswith("`responses`") for c in done)
    assert [e.label for e in pg.expander].count("Thinking") == 2
    codes = [c.value for c in pg.code]
    assert sum("client.responses.create(" in c for c in codes) >= 2  # each cell's "View code"
    frame = pg.dataframe[0].value
    assert list(frame[label("api")]) == ["responses", "responses"]


def test_built_in_tools_are_offered_on_the_responses_api_and_their_calls_shown(pg_openai, server, app_env):
    pg = pg_openai
    pg.selectbox(key="pg_model").set_value("gpt-4o").run()
    assert not pg.multiselect(key="pg_builtin").disabled
    pg.multiselect(key="pg_builtin").set_value(["web_search"]).run()
    assert any("'type': 'web_search'" in c.value for c in pg.code)  # view code sends it
    pg.button(key="pg_run").click().run()
    assert not pg.exception, pg.exception
    body = [r["body"] for r in server.requests if r["path"] == "/v1/responses"][-1]
    assert body["tools"] == [{"type": "web_search"}]
    assert any("🔎 web search · Capital of France? · completed" in c for c in captions(pg))
    assert any("(https://example.com/loopback-source)" in m.value for m in pg.markdown)
    assert any(c.startswith("Built-in tool calls: 1 · fees $0.01") for c in captions(pg))
    row = CallLog(app_env["PROMPTLAB_DB_URL"]).recent(1)[0]
    assert row.cost_usd > 0.01  # tokens plus the search fee
    pg.selectbox(key="pg_api").set_value("chat").run()  # Chat Completions: disabled, with the reason
    assert pg.multiselect(key="pg_builtin").disabled
    assert any("need the Responses API" in c for c in captions(pg))


def test_built_in_tools_are_disabled_on_a_compatible_server_with_the_reason(pg):
    assert pg.multiselect(key="pg_builtin").disabled
    assert any("compatible server has none" in c for c in captions(pg))

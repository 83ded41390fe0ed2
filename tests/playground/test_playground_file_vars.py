"""Image and PDF variables in the Playground: {{invoice}} as a content part after the user's text, sent by single
and compare cells through either API, a short placeholder in "view code", the SHA-256 in the cache key, the image
forecast in the estimate, the no-vision sentence without a call, and saved versions without the files."""
from __future__ import annotations

import io

from pypdf import PdfWriter

from core.calls.cache import ResponseCache, cache_key
from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.llm import file_vars
from core.llm.attachments import check_attachment, image_tokens
from core.llm.providers import Provider
from core.llm.tokens import count_messages
from core.playground.codegen import curl_command, python_code
from core.playground.draft import Draft, RunSettings, build_params, messages_for
from core.playground.library import PromptLibrary
from core.playground.matrix import CellSpec, MatrixRun, estimate_cost, prepare_cell, with_screen_inputs
from tests.conftest import TEST_KEY
from tests.loopback_server import tiny_png


def png(w=8, h=8, rgb=(30, 144, 255)):
    return check_attachment("photo.png", tiny_png(w, h, rgb))


def invoice():
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    out = io.BytesIO()
    writer.write(out)
    return check_attachment("invoice.pdf", out.getvalue())


def draft(**files):
    return Draft("gpt-4o-mini", "Be brief.", "Total of {{invoice}}? {{note}}", {"note": "thanks"},
                 RunSettings(temperature=0.0, max_tokens=20, api="chat"), files=files)  # Chat Completions unless a cell says


def test_a_file_var_is_a_part_after_the_user_text():
    pdf = invoice()
    messages = messages_for(draft(invoice=pdf))
    assert messages[0] == {"role": "system", "content": "Be brief."}
    text, part = messages[1]["content"]
    assert text == {"type": "text", "text": "Total of [invoice.pdf]? thanks"}
    assert part["type"] == "file" and part["file"]["filename"] == "invoice.pdf"
    assert part["file"]["file_data"] == pdf.data_uri()


def test_single_and_compare_cells_send_the_file_for_each_api(server, log):
    provider = Provider("openai", server.base_url, TEST_KEY, max_retries=0)
    screen = draft(invoice=png())
    cell = prepare_cell(CellSpec("draft", "gpt-4o-mini", 0.0, 1), screen, provider)
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", cell.messages, cell.params, api="chat"),
                        CallContext("playground"), log)
    assert "".join(stream) == "Echo: Total of [photo.png]? thanks [1 image]"
    saved = Draft("gpt-4o-mini", "", "Look at {{invoice}}", {})  # a saved version: no files of its own
    cells = [prepare_cell(CellSpec(v, "gpt-4o-mini", 0.0, 1), d, provider)
             for v, d in (("draft", screen), ("v1", with_screen_inputs(saved, screen)))]
    cells[1].api = "responses"
    run = MatrixRun(cells, CallContext("playground"), log).start()
    assert run.wait(30)
    assert [r.text for r in run.results] == ["Echo: Total of [photo.png]? thanks [1 image]",
                                             "Echo: Look at [photo.png] [1 image]"]
    assert [p["type"] for p in server.content_parts()[-1]] == ["text", "image_url"]
    (responses,) = server.response_parts()
    assert [p["type"] for p in responses] == ["input_text", "input_image"]
    assert responses[1]["image_url"] == png().data_uri()


def test_no_vision_cell_is_one_sentence_and_no_call(server, log):
    provider = Provider("openai", server.base_url, TEST_KEY, max_retries=0)
    cells = [prepare_cell(CellSpec("draft", m, 0.0, 1), draft(invoice=png()), provider)
             for m in ("gpt-3.5-turbo", "gpt-4o-mini")]
    run = MatrixRun(cells, CallContext("playground"), log).start()
    assert run.wait(30)
    refused, answered = run.results
    assert (refused.status, refused.error, refused.metrics) == (
        "error", "gpt-3.5-turbo does not take images or PDFs; remove the attachments or choose a model with "
                 "vision.", None)
    assert answered.status == "ok"
    assert [b["model"] for b in server.chat_requests()] == ["gpt-4o-mini"]
    assert [r.model_requested for r in log.recent(10)] == ["gpt-4o-mini"]


def test_view_code_shows_a_short_placeholder_not_the_base64():
    provider = Provider("openai", None, TEST_KEY)
    big = check_attachment("big.png", tiny_png(1500, 1500, (1, 2, 3)))
    messages = messages_for(draft(invoice=big))
    params = build_params(provider, "gpt-4o-mini", RunSettings())
    for api in ("chat", "responses"):
        code = python_code(provider, "gpt-4o-mini", messages, params, api=api) + curl_command(
            provider, "gpt-4o-mini", messages, params, api=api)
        assert big.data_uri()[:60] not in code and len(code) < 4000
        assert "data:image/png;base64,…[" in code and f"sha256 {big.sha256[:12]}" in code
    assert "'type': 'input_image'" in python_code(provider, "gpt-4o-mini", messages, params, api="responses")


def test_cache_key_holds_the_sha256_not_the_bytes(db_url, server, log):
    one, other = png(), png(rgb=(200, 0, 0))
    key = cache_key("openai", None, "m", messages_for(draft(invoice=one)), {})
    assert key == cache_key("openai", None, "m", messages_for(draft(invoice=one)), {})
    # the key is made from the digest: the same as of the messages with each data URI already cut to its SHA-256
    assert key == cache_key("openai", None, "m", file_vars.digested(messages_for(draft(invoice=one))), {})
    assert key != cache_key("openai", None, "m", messages_for(draft(invoice=other)), {})
    # the same bytes under another file name: the name is in the text, so another key
    renamed = check_attachment("other.png", one.data)
    assert key != cache_key("openai", None, "m", messages_for(draft(invoice=renamed)), {})
    # a repeat is answered from the cache, a changed image is not
    provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
    cache = ResponseCache(db_url)
    for image in (one, one, other):
        cell = prepare_cell(CellSpec("d", "gpt-4o-mini", 0.0, 1), draft(invoice=image), provider)
        "".join(ChatStream(provider, ChatRequest("gpt-4o-mini", cell.messages, cell.params), CallContext("p"), log,
                           cache=cache))
    assert len(server.chat_requests()) == 2


def test_the_estimate_adds_the_image_forecast():
    messages = messages_for(draft(invoice=png(1024, 1024)))
    spec = CellSpec("d", "gpt-4o", 0.0, 1)
    estimate = estimate_cost([(spec, messages, 20)], count_messages, lambda m: None)
    assert estimate.image_tokens == image_tokens("gpt-4o", 1024, 1024) == 765
    assert estimate.input_tokens == count_messages(messages, "gpt-4o") + 765
    assert estimate_cost([(spec, messages_for(draft(invoice=invoice())), 20)], count_messages,
                         lambda m: None).image_tokens == 0  # a PDF is not forecast


def test_saved_versions_keep_the_prompt_not_the_files(db_url):
    library = PromptLibrary(db_url)
    version = library.save("invoices", draft(invoice=png()), "ana")
    loaded = library.get(version.id).draft
    assert loaded.user_template == "Total of {{invoice}}? {{note}}" and loaded.files == {}
    assert "base64" not in library.export_json()


def test_a_logged_request_with_an_image_replays_its_text(server, log):
    from core.playground.draft import replay_draft
    provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
    cell = prepare_cell(CellSpec("d", "gpt-4o-mini", 0.0, 1), draft(invoice=png()), provider)
    "".join(ChatStream(provider, ChatRequest("gpt-4o-mini", cell.messages, cell.params), CallContext("p"), log))
    texts = log.texts(log.recent(1)[0].request_id)
    assert texts is not None and "iVBORw0KGgo" not in str(texts.request)  # logged by digest, not bytes
    replayed = replay_draft(texts.request)
    assert replayed.user_template == "Total of [photo.png]? thanks" and replayed.files == {}

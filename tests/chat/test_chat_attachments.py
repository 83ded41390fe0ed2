"""Images and PDFs in a chat turn (issue 25, point 2), against the loopback server through the real SDK: checked
uploads on the user's turn, both wire shapes (Chat Completions and Responses), the image-token forecast before the
call and the server's usage after, the no-vision sentence before a call (nothing logged) and after the server's
400 (one error row), stored once, round-tripped, exported and embedded in the HTML report."""
from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from core.chat import conversation as chat
from core.chat.store import ConversationStore
from core.chat.turn import ChatServices, ChatTurn, TurnSettings, submit
from core.llm import attachments as att
from core.llm.providers import Provider
from core.records import report
from tests.conftest import TEST_KEY
from tests.llm.test_attachments import pdf_bytes
from tests.loopback_server import IMAGE_PART_TOKENS, NO_VISION_MESSAGE


def png(size: tuple[int, int] = (1024, 1024), rgb: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def services(server, log, db_url, ctx) -> ChatServices:
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    return ChatServices(provider=provider, provider_for=lambda m: provider, context_window=lambda m: 128_000,
                        log=log, context=ctx, store=ConversationStore(db_url), user="tester")


def settings(**kw) -> TurnSettings:
    return TurnSettings(**{"model": "gpt-4o-mini", "temperature": 0.0, "max_tokens": 64, **kw})


def files(*uploads: tuple[str, bytes]) -> list[att.Attachment]:
    good, problems = att.check_uploads(list(uploads))
    assert problems == []
    return good


def test_an_image_and_a_pdf_go_as_chat_completions_parts_and_cost_more_than_text(server, services, log):
    plain = chat.new_conversation(None, "")
    assert submit(plain, "What is this?", settings(), services).refusal is None
    with ChatTurn(plain, settings(), services) as turn:
        assert "".join(turn) == "Echo: What is this?"
    conv = chat.new_conversation(None, "")
    sent = files(("red.png", png()), ("invoice.pdf", pdf_bytes(2)))
    assert submit(conv, "What is this?", settings(), services, attachments=sent).refusal is None
    with ChatTurn(conv, settings(), services) as turn:
        assert "".join(turn) == "Echo: What is this? [1 image, 1 file]"
    parts = server.content_parts()[-1]
    assert [p["type"] for p in parts] == ["text", "image_url", "file"]
    assert parts[1]["image_url"]["url"] == sent[0].data_uri()
    assert parts[2]["file"] == {"filename": "invoice.pdf", "file_data": sent[1].data_uri()}
    text_row, media_row = log.recent(2)[::-1]
    assert (text_row.status, media_row.status) == ("ok", "ok")
    # The row's input tokens are the server's usage: the image and the file counted on top of the same text.
    assert media_row.input_tokens > text_row.input_tokens + IMAGE_PART_TOKENS
    # The call log names each attachment by size and digest, never its bytes again.
    texts = log.texts(media_row.request_id)
    assert texts is not None
    logged = json.dumps(texts.request)
    assert sent[0].data_uri()[30:90] not in logged and "sha256 " + sent[0].sha256[:12] in logged


def test_the_responses_api_gets_input_image_and_input_file(server, services, log):
    conv = chat.new_conversation(None, "")
    sent = files(("red.png", png((64, 64))), ("invoice.pdf", pdf_bytes(1)))
    assert submit(conv, "Read it", settings(api="responses"), services, attachments=sent).refusal is None
    with ChatTurn(conv, settings(api="responses"), services) as turn:
        assert "".join(turn) == "Echo: Read it [1 image, 1 file]"
        assert turn.api == "responses"
    parts = server.response_parts()[-1]
    assert [p["type"] for p in parts] == ["input_text", "input_image", "input_file"]
    assert parts[1]["image_url"] == sent[0].data_uri()
    assert parts[2]["filename"] == "invoice.pdf" and parts[2]["file_data"] == sent[1].data_uri()
    assert log.recent(1)[0].status == "ok" and log.recent(1)[0].input_tokens > IMAGE_PART_TOKENS


def test_the_image_tokens_are_forecast_before_sending(services):
    conv = chat.new_conversation(None, "")
    before = chat.plan_context(conv, "gpt-4o", context_window=128_000, reply_budget=64)
    chat.add_user_message(conv, "Describe", files(("big.png", png((1024, 1024))), ("a.pdf", pdf_bytes(1))))
    plan = chat.plan_context(conv, "gpt-4o", context_window=128_000, reply_budget=64)
    assert plan.image_tokens == 765  # OpenAI's worked example: 1024×1024 high on gpt-4o
    text_only = chat.plan_context(chat.new_conversation(None, ""), "gpt-4o", context_window=128_000, reply_budget=64)
    assert before.input_tokens == text_only.input_tokens
    assert plan.input_tokens > 765 and plan.uncounted_files == 1  # the PDF: only the server knows
    caption = chat.next_turn_caption(plan)
    assert "765" in caption and "1 attachment counted by the server only" in caption
    # A model with no known rule forecasts nothing, and says so.
    unknown = chat.plan_context(conv, "some-local-model", context_window=128_000, reply_budget=64)
    assert unknown.image_tokens == 0 and unknown.uncounted_files == 2
    # A compatible server counts its own way (OpenAI's gpt-4o-mini rule says 8,500 here): nothing is forecast, so
    # an old image turn is never dropped from an 8,192-token window by OpenAI's arithmetic.
    compatible = chat.plan_context(conv, "gpt-4o-mini", context_window=8_192, reply_budget=1_024, image_rule=False)
    assert (compatible.image_tokens, compatible.uncounted_files, compatible.dropped_messages) == (0, 2, 0)
    assert att.forecast("gpt-4o-mini", conv.messages[0].attachments, "compatible") == (0, 2)
    assert att.forecast("gpt-4o-mini", conv.messages[0].attachments[:1], "azure") == (2833 + 4 * 5667, 0)


def test_an_image_to_the_offline_model_or_a_text_only_openai_model_is_refused_before_any_call(server, services, log):
    local = Provider("local", server.base_url, "", timeout_s=5, max_retries=0)
    offline = ChatServices(**{**services.__dict__, "provider": local, "provider_for": lambda m: local})
    sent = files(("red.png", png((32, 32))),)
    for svc, model in ((offline, "SmolLM2-135M-Instruct"),):
        conv = chat.new_conversation(None, "")
        refused = submit(conv, "What is this?", settings(model=model), svc, attachments=sent).refusal
        assert refused == att.no_vision_error(model).message and conv.messages == []
    openai = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    svc = ChatServices(**{**services.__dict__, "provider": openai, "provider_for": lambda m: openai})
    conv = chat.new_conversation(None, "")
    refused = submit(conv, "What is this?", settings(model="gpt-3.5-turbo"), svc, attachments=sent).refusal
    assert refused and "gpt-3.5-turbo does not take images" in refused and conv.messages == []
    assert log.recent(5) == [] and server.requests == []


def test_a_server_that_refuses_images_gives_the_same_sentence_and_one_error_row(server, services, log):
    conv = chat.new_conversation(None, "")
    sent = files(("red.png", png((32, 32))),)
    assert submit(conv, "What is this?", settings(model="gpt-3.5-turbo"), services, attachments=sent).refusal is None
    with ChatTurn(conv, settings(model="gpt-3.5-turbo"), services) as turn:
        assert list(turn) == []
    assert turn.result.error == att.no_vision_error("gpt-3.5-turbo").message
    assert chat.awaiting_reply(conv) and conv.messages[-1].content == "What is this?"  # kept, with Retry
    rows = log.recent(5)
    assert len(rows) == 1 and rows[0].status == "error" and NO_VISION_MESSAGE.split(".")[0] in (
        rows[0].error_message or "")
    # The same model on text alone is answered: the sentence is about the image, not the model.
    assert att.looks_like_no_vision(NO_VISION_MESSAGE)


def test_history_images_go_to_a_text_only_model_as_their_names(services):
    conv = chat.new_conversation(None, "")
    chat.add_user_message(conv, "Look", files(("red.png", png((32, 32))),))
    plan = chat.plan_context(conv, "gpt-3.5-turbo", context_window=16_000, reply_budget=64, vision=False)
    assert plan.messages[-1]["content"] == "Look\n[attachment not sent: red.png]" and plan.image_tokens == 0


def test_attachments_are_stored_once_round_trip_export_and_embed(services):
    image = png((48, 32))
    conv = chat.new_conversation(None, "")
    sent = files(("shot.png", image), ("invoice.pdf", pdf_bytes(2)))
    chat.add_user_message(conv, "first", sent)
    chat.add_user_message(conv, "again", files(("shot-copy.png", image)))  # the same bytes, attached again
    services.store.save(conv, "tester")
    loaded = services.store.load(conv.id, "tester")
    assert loaded.messages[0].attachments == sent
    assert loaded.messages[1].attachments[0].name == "shot-copy.png"
    with services.store.engine.connect() as c:
        body = c.exec_driver_sql("SELECT body FROM conversations").scalar()
    b64 = sent[0].data_uri().split(",", 1)[1]
    assert body.count(b64) == 1  # the bytes once, by SHA-256
    exported = json.loads(chat.export_json(loaded))
    assert exported["files"][sent[0].sha256] == b64
    assert exported["messages"][0]["attachments"][1]["pages"] == 2
    assert chat.Conversation.from_dict(exported).messages[0].attachments == sent  # an export reads back
    markdown = chat.export_markdown(loaded)
    assert "📎 shot.png · image · 48×32" in markdown and "📎 invoice.pdf · PDF · 2 pages" in markdown
    html = report.conversation_report(loaded, [TEST_KEY]).html
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"""src=["']?https?:""", html) and TEST_KEY not in html
    assert "invoice.pdf" in html and "2 pages" in html


def test_a_damaged_stored_attachment_is_left_out_and_the_conversation_opens(services):
    conv = chat.new_conversation(None, "")
    chat.add_user_message(conv, "look", files(("shot.png", png((8, 8))),))
    data = conv.to_dict()
    data["files"] = {k: "AAAA" for k in data["files"]}  # bytes that do not match their digest
    reopened = chat.Conversation.from_dict(data)
    assert reopened.messages[0].content == "look" and reopened.messages[0].attachments == []


def test_an_upload_batch_keeps_the_good_files_and_says_what_is_wrong_with_each_bad_one():
    good, problems = att.check_uploads([("ok.png", png((8, 8))), ("notes.png", b"plain text, renamed"),
                                        ("huge.png", b"\0" * (30 * 1024 * 1024)),
                                        ("locked.pdf", pdf_bytes(1, user_password="pw"))])
    assert [a.name for a in good] == ["ok.png"]
    assert len(problems) == 3 and "notes.png" in problems[0] and "20 MB" in problems[1]
    assert "password" in problems[2]


def test_a_fallback_that_takes_no_images_is_left_out_of_the_chain(server, services, log):
    from tests.loopback_server import Script
    local = Provider("local", server.base_url, "", timeout_s=5, max_retries=0)
    chained = ChatServices(**{**services.__dict__, "fallback": "gpt-4o, local",
                              "provider_for": lambda m: local if m.startswith("local/") else services.provider})
    server.push(Script(status=500, error_message="upstream down"), Script(status=500, error_message="down too"))
    conv = chat.new_conversation(None, "")
    assert submit(conv, "look", settings(), chained, attachments=files(("red.png", png((8, 8))),)).refusal is None
    with ChatTurn(conv, settings(), chained) as turn:
        assert list(turn) == []
    assert turn.chain[0] == "gpt-4o-mini" and "gpt-4o" in turn.chain
    assert not any(m.startswith("local/") for m in turn.chain)  # the offline model would only fail on the image
    text = chat.new_conversation(None, "")
    assert submit(text, "plain", settings(), chained).refusal is None
    with ChatTurn(text, settings(), chained) as plain_turn:
        assert any(m.startswith("local/") for m in plain_turn.chain)  # text alone keeps the whole chain
        plain_turn.stream.close()

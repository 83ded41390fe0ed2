"""AppTest of the Chat page's images and PDFs (issue 25, point 2): files through the real chat input (AppTest's
`upload`), thumbnails in the history and after a reload, the tray that keeps good files when one is bad, the
typed text kept, and the no-vision sentence when the server refuses images."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.chat.store import ConversationStore
from core.llm.attachments import no_vision_error
from tests.chat.test_chat_attachments import png
from tests.llm.test_attachments import pdf_bytes
from tests.loopback_server import NO_VISION_MESSAGE, Script

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def at(app_env) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=30)
    app.run()
    assert not app.exception
    return app


def chat_calls(db_url: str):
    return [r for r in CallLog(db_url).recent(100) if r.page == "chat"]


def box_text(at: AppTest) -> str | None:
    """The text the page put back into the chat input (pushed to the browser), None when it pushed none."""
    proto = at.chat_input[0].proto
    return proto.value if proto.set_value else None


def images(at: AppTest) -> list:
    return list(at.image)


def test_an_image_and_a_pdf_are_sent_shown_and_survive_a_reload(at, server, app_env):
    box = at.chat_input[0]
    box.upload("red.png", png((64, 48)), "image/png").upload("invoice.pdf", pdf_bytes(2), "application/pdf")
    box.set_value("What is in these?").run()
    assert not at.exception, at.exception
    assert [p["type"] for p in server.content_parts()[-1]] == ["text", "image_url", "file"]
    assert at.chat_message[1].markdown[0].value == "Echo: What is in these? [1 image, 1 file]"
    calls = chat_calls(app_env["PROMPTLAB_DB_URL"])
    assert len(calls) == 1 and calls[0].status == "ok"
    assert len(images(at)) == 1 and any("invoice.pdf · PDF · 2 pages" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label.startswith("📎")]  # the tray is empty once sent
    conversation = ConversationStore(app_env["PROMPTLAB_DB_URL"]).list("local")[0].id
    reopened = AppTest.from_file(APP, default_timeout=30)
    reopened.query_params["c"] = conversation
    reopened.run()
    assert not reopened.exception
    assert len(images(reopened)) == 1 and any("invoice.pdf" in c.value for c in reopened.caption)


def test_a_bad_file_is_one_sentence_the_text_is_kept_and_the_good_file_waits(at, server, app_env):
    box = at.chat_input[0]
    box.upload("ok.png", png((16, 16)), "image/png").upload("notes.png", b"just some text", "image/png")
    box.set_value("Compare these two").run()
    assert not at.exception
    assert len(at.error) == 1 and "notes.png is not a PNG, JPEG, WebP or GIF image or a PDF" in at.error[0].value
    assert box_text(at) == "Compare these two"  # back in the box, to send again
    assert [b.label for b in at.button if b.label.startswith("📎")] == ["📎 ok.png ✕"]
    # A compatible server counts images its own way: the tray says so rather than guess with OpenAI's rule.
    assert "1 attachment goes with your next message · 1 counted by the server only" in [c.value for c in at.caption]
    assert chat_calls(app_env["PROMPTLAB_DB_URL"]) == [] and server.chat_requests() == []
    assert not at.chat_message  # nothing was added to the conversation
    at.chat_input[0].set_value("Compare these two").run()  # Enter again: the waiting file goes with it
    assert [p["type"] for p in server.content_parts()[-1]] == ["text", "image_url"]
    assert len(chat_calls(app_env["PROMPTLAB_DB_URL"])) == 1


def test_a_thirty_megabyte_image_and_a_locked_pdf_are_refused_before_any_call(at, server, app_env):
    at.chat_input[0].upload("huge.png", png((8, 8)) + b"\0" * (30 * 1024 * 1024), "image/png").set_value(
        "big one").run()
    assert "20 MB" in at.error[0].value and box_text(at) == "big one"
    at.chat_input[0].upload("locked.pdf", pdf_bytes(1, user_password="pw"), "application/pdf").set_value(
        "locked one").run()
    assert "password-protected" in at.error[0].value and box_text(at) == "locked one"
    assert chat_calls(app_env["PROMPTLAB_DB_URL"]) == [] and server.chat_requests() == []


def test_a_server_that_refuses_images_gets_the_no_vision_sentence_and_an_error_row(at, server, app_env):
    server.push(Script(status=400, error_message=NO_VISION_MESSAGE))
    at.chat_input[0].upload("red.png", png((16, 16)), "image/png").set_value("What is this?").run()
    assert at.error[0].value == no_vision_error("gpt-4o-mini").message
    assert at.chat_message[0].markdown[0].value == "What is this?"  # the turn is kept, with Retry
    assert [r.status for r in chat_calls(app_env["PROMPTLAB_DB_URL"])] == ["error"]


def test_an_image_to_the_offline_model_is_one_sentence_no_call_and_the_text_and_file_wait(offline_env):
    at = AppTest.from_file(APP, default_timeout=120).run()
    model = at.session_state.chat_model
    at.chat_input[0].upload("red.png", png((16, 16)), "image/png").set_value("What is this?").run()
    assert not at.exception
    assert [e.value for e in at.error] == [no_vision_error(model).message]
    assert box_text(at) == "What is this?" and not at.chat_message
    assert chat_calls(offline_env["PROMPTLAB_DB_URL"]) == []
    tray = [b for b in at.button if b.label.startswith("📎")]
    assert [b.label for b in tray] == ["📎 red.png ✕"]
    assert no_vision_error(model).message in [c.value for c in at.caption]  # said beside the tray too
    tray[0].click().run()  # ✕: the file leaves the tray
    assert not [b for b in at.button if b.label.startswith("📎")]


def test_with_the_responses_api_chosen_the_files_go_as_input_image_and_input_file(at, server, app_env):
    at.selectbox(key="chat_api").set_value("responses").run()
    at.chat_input[0].upload("red.png", png((16, 16)), "image/png").upload(
        "invoice.pdf", pdf_bytes(1), "application/pdf").set_value("Read these").run()
    assert not at.exception, at.exception
    assert [p["type"] for p in server.response_parts()[-1]] == ["input_text", "input_image", "input_file"]
    assert server.chat_requests() == []
    assert at.chat_message[1].markdown[-1].value == "Echo: Read these [1 image, 1 file]"
    assert [r.status for r in chat_calls(app_env["PROMPTLAB_DB_URL"])] == ["ok"]

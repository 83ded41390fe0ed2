"""Images and PDFs through the real chat input in a real browser (issue 25, point 2): an image turn and a PDF turn,
each leaving one ok call row that costs more than its text, thumbnails that survive a reload; bad files refused
in one sentence with the typed text kept in the box and no call made."""
from __future__ import annotations

import os

import pytest

from core.calls.log import CallLog
from tests.browser import CHROMIUM, IDLE, screenshot
from tests.chat.test_chat_attachments import png
from tests.llm.test_attachments import pdf_bytes
from tests.loopback_server import FILE_PART_TOKENS, IMAGE_PART_TOKENS

if not os.path.exists(CHROMIUM) and os.environ.get("PROMPTLAB_SKIP_BROWSER") == "1":
    pytest.skip("PROMPTLAB_SKIP_BROWSER=1 and no Chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

BOX = "[data-testid='stChatInput'] textarea"


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.goto(app.url)
    pg.wait_for_selector(IDLE, timeout=30_000)
    pg.wait_for_selector(BOX)
    yield pg
    assert pg.locator("[data-testid='stException']").count() == 0, "a traceback reached the page"
    context.close()


def attach_and_send(page, text: str, *uploads: tuple[str, str, bytes]) -> None:
    """Attach files through the chat input's own file input, type, and press Enter once they are uploaded."""
    page.locator("[data-testid='stChatInput'] input[type='file']").set_input_files(
        [{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in uploads])
    for name, _, _ in uploads:  # each file shows in the box once the upload has finished
        page.locator("[data-testid='stChatInput']").get_by_text(name).wait_for(timeout=30_000)
    page.locator(BOX).fill(text)
    submit = page.locator("[data-testid='stChatInputSubmitButton']")
    page.wait_for_function("(b) => !b.disabled", arg=submit.element_handle(), timeout=30_000)
    page.locator(BOX).press("Enter")


def reply_reads(page, text: str) -> None:
    """The reply has streamed and the page has been redrawn from the conversation (its counters, no Stop)."""
    page.wait_for_function(f"() => document.body.innerText.includes({text!r})", timeout=30_000)
    page.wait_for_function("""() => {
        const m = [...document.querySelectorAll("[data-testid='stChatMessage']")];
        const last = m[m.length - 1];
        return !!last && last.innerText.includes("out tokens") && !last.innerText.includes("Stop");
    }""", timeout=30_000)
    page.wait_for_selector(IDLE, timeout=30_000)


def chat_rows(app_env):
    return [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(20) if r.page == "chat"]


def test_an_image_turn_and_a_pdf_turn_leave_their_call_rows_and_thumbnails_survive_a_reload(page, server, app_env):
    attach_and_send(page, "What colour is this?", ("red.png", "image/png", png((64, 48))))
    reply_reads(page, "Echo: What colour is this? [1 image]")
    rows = chat_rows(app_env)
    assert [r.status for r in rows] == ["ok"] and rows[0].input_tokens > IMAGE_PART_TOKENS  # the server's usage
    user_turn = page.locator("[data-testid='stChatMessage']").first
    user_turn.locator("[data-testid='stImage'] img").wait_for(timeout=30_000)
    assert user_turn.locator("[data-testid='stImage'] img").count() == 1
    src = user_turn.locator("[data-testid='stImage'] img").get_attribute("src") or ""
    assert not src.startswith(("http://", "https://")) or src.startswith(page.url.split("/?")[0].rstrip("/"))

    attach_and_send(page, "Total due?", ("invoice.pdf", "application/pdf", pdf_bytes(2)))
    reply_reads(page, "Echo: Total due? [1 file]")
    rows = chat_rows(app_env)
    assert [r.status for r in rows] == ["ok", "ok"] and rows[0].input_tokens > FILE_PART_TOKENS
    assert [p["type"] for p in server.content_parts()[-1]] == ["text", "file"]
    # The first turn, image and all, is still sent with the second (an 8,192-token window on this server).
    assert "no longer fit" not in page.inner_text("body")
    assert [m["role"] for m in server.chat_requests()[-1]["messages"]][-3:] == ["user", "assistant", "user"]
    screenshot(page, "chat-attachments")

    page.reload()  # the conversation's id is in the URL: thumbnails and the PDF chip come back from the store
    page.wait_for_selector(IDLE, timeout=30_000)
    page.get_by_text("invoice.pdf · PDF · 2 pages").wait_for(timeout=30_000)
    page.locator("[data-testid='stChatMessage'] [data-testid='stImage'] img").first.wait_for(timeout=30_000)
    assert page.locator("[data-testid='stChatMessage'] [data-testid='stImage'] img").count() == 1
    assert len(chat_rows(app_env)) == 2


def test_a_renamed_text_file_and_a_thirty_megabyte_image_are_refused_and_the_text_is_kept(page, server, app_env):
    attach_and_send(page, "Please read both", ("notes.png", "image/png", b"just some text, renamed"),
                    ("huge.png", "image/png", png((8, 8)) + b"\0" * (30 * 1024 * 1024)))
    page.wait_for_selector("[data-testid='stAlert']", timeout=30_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    alert = page.locator("[data-testid='stAlert']").first.inner_text()
    assert "notes.png is not a PNG, JPEG, WebP or GIF image or a PDF" in alert and "huge.png is 30.0 MB" in alert
    assert page.locator(BOX).input_value() == "Please read both"  # back in the box, ready to send again
    assert chat_rows(app_env) == [] and server.chat_requests() == []
    assert page.locator("[data-testid='stChatMessage']").count() == 0
    screenshot(page, "chat-attachment-refused")

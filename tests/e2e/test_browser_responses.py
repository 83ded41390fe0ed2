"""Issue 25's browser test "a Responses chat with a reasoning summary": the app against the loopback server as an
OpenAI provider, the API set to Responses, a reasoning model's reply. Its Thinking block sits collapsed above the
answer, opens to the summary, and is still there after a reload; the call log holds one ok row with the reasoning
tokens and a cost."""
from __future__ import annotations

import os

import pytest

from core.calls.log import CallLog
from core.llm.pricing import TokenUsage, cost_usd
from tests.browser import CHROMIUM, IDLE, StreamlitApp, screenshot
from tests.loopback_server import Script

if not os.path.exists(CHROMIUM) and os.environ.get("PROMPTLAB_SKIP_BROWSER") == "1":
    pytest.skip("PROMPTLAB_SKIP_BROWSER=1 and no Chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

SUMMARY = "The user wants the capital of France; that is Paris."
LAST_REPLY_DONE = """() => {
    const messages = [...document.querySelectorAll("[data-testid='stChatMessage']")];
    const last = messages[messages.length - 1];
    return !!last && last.innerText.includes("out tokens") && !last.innerText.includes("Stop");
}"""


def settle(page) -> None:
    page.wait_for_selector(IDLE, timeout=30_000)


def the_reply(page):
    return page.locator("[data-testid='stChatMessage']").filter(
        has=page.locator("[data-testid='stChatMessageAvatarAssistant']")).last


def check_thinking_collapsed_above_the_answer(page) -> None:
    reply = the_reply(page)
    expander = reply.locator("[data-testid='stExpander']")
    sync_api.expect(expander).to_have_count(1)
    sync_api.expect(expander.locator("summary")).to_contain_text("Thinking")
    sync_api.expect(expander.get_by_text(SUMMARY)).to_be_hidden()  # collapsed
    answer = reply.get_by_text("Paris is the capital.", exact=True)
    assert expander.bounding_box()["y"] < answer.bounding_box()["y"]  # above the answer
    expander.locator("summary").click()
    sync_api.expect(expander.get_by_text(SUMMARY)).to_be_visible()


def test_a_responses_chat_with_a_reasoning_summary(browser, app_env, server):
    env = {**app_env, "PROMPTLAB_PROVIDER": "openai", "PROMPTLAB_MODEL": "o4-mini"}
    running = StreamlitApp(env)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(running.url)
        settle(page)
        page.get_by_label("API", exact=True).click()
        page.get_by_role("option", name="Responses", exact=True).click()
        settle(page)
        server.push(Script(path="/v1/responses", reply="Paris is the capital.", reasoning_summary=SUMMARY,
                           reasoning_tokens=12))
        page.locator("[data-testid='stChatInput'] textarea").fill("Capital of France?")
        page.keyboard.press("Enter")
        page.wait_for_function(LAST_REPLY_DONE, timeout=30_000)
        settle(page)
        check_thinking_collapsed_above_the_answer(page)
        assert "12 reasoning" in the_reply(page).inner_text()  # the turn's caption
        screenshot(page, "chat-responses-thinking")

        page.reload()  # a new session: the conversation comes back from the store by its id in the URL
        settle(page)
        page.wait_for_function(LAST_REPLY_DONE, timeout=30_000)
        check_thinking_collapsed_above_the_answer(page)

        body = [r["body"] for r in server.requests if r["path"] == "/v1/responses"]
        assert len(body) == 1 and body[0]["model"] == "o4-mini" and body[0]["reasoning"] == {"summary": "auto"}
        rows = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(20) if r.page == "chat"]
        assert len(rows) == 1
        row = rows[0]
        assert (row.status, row.reasoning_tokens) == ("ok", 12) and "endpoint:responses" in row.tags
        expected = cost_usd(TokenUsage(row.input_tokens, row.output_tokens, 0, 12), "o4-mini", "openai")
        assert expected and row.cost_usd == pytest.approx(expected)
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        context.close()
        running.stop()

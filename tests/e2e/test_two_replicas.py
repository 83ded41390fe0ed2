"""Issue 27 point 6: two real Streamlit servers on one PostgreSQL — a conversation saved on one is listed on the
other, a call made on one is in the other's Analytics within 5 s, and a deletion (GDPR) on one is gone on the
other. (CI starts PostgreSQL; without PROMPTLAB_TEST_PG_URL the test is skipped.)"""
from __future__ import annotations

import time

import pytest

from core.chat.store import ConversationStore
from tests.browser import IDLE, StreamlitApp, screenshot
from tests.conftest import PG_URL, _fresh_pg_schema
from tests.e2e.test_browser import LAST_REPLY_DONE, send

pytestmark = pytest.mark.skipif(not PG_URL, reason="PROMPTLAB_TEST_PG_URL is not set")


def opened(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(IDLE, timeout=60_000)
    return context, page


ANALYTICS_DRAWN = """() => {
    const main = document.querySelector("[data-testid='stMain']");
    if (!main) return false;
    const text = main.innerText;
    return text.includes("call log is empty") || text.includes("No calls match")
        || [...main.querySelectorAll("[data-testid='stMetric']")].some(m => m.innerText.includes("Calls"));
}"""


def calls_shown(page) -> int:
    """The Calls KPI of the Analytics page (0 while the log is empty or holds only calls that are not a model's)."""
    page.wait_for_function(ANALYTICS_DRAWN, timeout=30_000)  # the script state flips before the page is drawn
    body = page.inner_text("[data-testid='stMain']")
    if "call log is empty" in body or "No calls match" in body:
        return 0
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Calls").first
    return int(metric.locator("[data-testid='stMetricValue']").inner_text().replace(",", ""))


def test_two_replicas_on_one_database_share_conversations_calls_and_deletions(browser, app_env, server):
    env = {**app_env, "PROMPTLAB_DB_URL": _fresh_pg_schema()}
    a, b = StreamlitApp(env), StreamlitApp(env)
    try:
        b_ctx, b_page = opened(browser, b.url + "/analytics")
        assert calls_shown(b_page) == 0
        a_ctx, a_page = opened(browser, a.url)
        a_page.wait_for_selector("[data-testid='stChatInput'] textarea")
        send(a_page, "made on replica A")
        a_page.wait_for_function(LAST_REPLY_DONE, timeout=30_000)
        a_page.wait_for_selector(IDLE, timeout=30_000)
        replied = time.monotonic()

        seen = 0
        while time.monotonic() - replied < 5 and not seen:  # B's Analytics shows A's call within 5 s
            b_page.reload()
            b_page.wait_for_selector(IDLE, timeout=30_000)
            seen = calls_shown(b_page)
        assert seen >= 1, "replica B's Analytics did not show replica A's call within 5 s"
        screenshot(b_page, "two-replicas-analytics")

        b_page.goto(b.url)  # B's chat: A's conversation is in the sidebar's list
        b_page.wait_for_selector(IDLE, timeout=30_000)
        sidebar = b_page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("made on replica A").first.wait_for(timeout=10_000)

        a_page.goto(a.url + "/settings")  # GDPR on A: delete everything of this user
        a_page.wait_for_function(  # the data-subject section drawn: an admin's "User id", or anyone's own data
            """() => document.querySelector("input[aria-label='User id']")
                     || document.body.innerText.includes("Your data, as")""", timeout=60_000)
        a_page.wait_for_selector(IDLE, timeout=30_000)
        subject = a_page.locator("input[aria-label='User id']")
        if subject.count():  # an admin names the data subject; anyone else deletes their own data
            subject.fill("local")
            subject.press("Enter")
            a_page.wait_for_selector(IDLE, timeout=30_000)
        confirm = a_page.locator("input[aria-label^='I want to delete all data of']")
        confirm.wait_for(state="attached", timeout=30_000)
        a_page.locator("label").filter(has=confirm).click()
        a_page.wait_for_selector(IDLE, timeout=30_000)
        a_page.get_by_role("button", name="Delete everything").click()
        a_page.wait_for_selector(IDLE, timeout=30_000)
        a_page.get_by_text("Deleted", exact=False).first.wait_for(timeout=10_000)

        assert ConversationStore(env["PROMPTLAB_DB_URL"]).list("local") == []
        b_page.reload()  # … and gone on B
        b_page.wait_for_selector(IDLE, timeout=30_000)
        assert "made on replica A" not in b_page.locator("[data-testid='stSidebar']").inner_text()
        for page in (a_page, b_page):
            assert page.locator("[data-testid='stException']").count() == 0
        a_ctx.close()
        b_ctx.close()
    finally:
        a.stop()
        b.stop()

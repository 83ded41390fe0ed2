"""Blind rating in a real browser (issue 26 point 3): the key bindings cast votes, each vote is stored at once, and
a reloaded tab (a new session) resumes where the rater stopped."""
from __future__ import annotations

import os

import pytest

from core.evals.rating import Ratings, rateable_pairs
from core.evals.store import EvalStore
from core.policy.access import Identity
from tests.browser import CHROMIUM, IDLE, screenshot

if not os.path.exists(CHROMIUM) and os.environ.get("PROMPTLAB_SKIP_BROWSER") == "1":
    pytest.skip("PROMPTLAB_SKIP_BROWSER=1 and no Chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

EVAL_YAML = """description: rating in a browser
prompts:
  - "Q: {{question}}"
  - "Please answer {{question}}"
providers:
  - openai:chat:gpt-4o-mini
tests:
  - vars: {question: "return window?"}
  - vars: {question: "gift cards?"}
  - vars: {question: "shipping to Norway?"}
"""


def open_rating(page, url: str) -> object:
    page.goto(f"{url}/evals")
    page.wait_for_selector(IDLE, timeout=60_000)
    page.get_by_role("tab", name="🧑‍⚖️ Rate").click()
    return page.get_by_role("tabpanel", name="🧑‍⚖️ Rate")


def test_the_arrow_keys_vote_and_a_reloaded_tab_resumes_at_the_next_case(browser, app, app_env, server, tmp_path):
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(EVAL_YAML)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{app.url}/evals")
    page.wait_for_selector(IDLE, timeout=60_000)
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(config))
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => "
                           "t.value.includes('rating in a browser'))", timeout=30_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    page.get_by_role("tab", name="▶ Run").click()
    page.get_by_role("button", name="▶ Run eval").click()
    page.get_by_role("tab", name="📊 Results").click()
    results = page.get_by_role("tabpanel", name="📊 Results")
    sync_api.expect(results.get_by_text("6 passed", exact=False)).to_be_visible(timeout=60_000)
    assert len(server.chat_requests()) == 6

    rate = open_rating(page, app.url)
    sync_api.expect(rate.get_by_text("0 of 3 rated", exact=False)).to_be_visible(timeout=30_000)
    page.wait_for_selector(IDLE, timeout=60_000)  # the buttons (and their keys) drawn
    page.locator("h1").first.click()  # focus on the page, not on a widget that takes keys itself
    page.keyboard.press("ArrowLeft")
    sync_api.expect(rate.get_by_text("1 of 3 rated", exact=False)).to_be_visible(timeout=30_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    page.locator("h1").first.click()
    page.keyboard.press("t")
    sync_api.expect(rate.get_by_text("2 of 3 rated", exact=False)).to_be_visible(timeout=30_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    # the third case's outputs, on both sides
    sync_api.expect(rate.locator(".st-key-data-rate-left")).to_contain_text("Norway", timeout=30_000)
    sync_api.expect(rate.locator(".st-key-data-rate-right")).to_contain_text("Norway", timeout=30_000)
    screenshot(page, "rating")
    context.close()  # the tab closes mid-queue

    [run] = EvalStore(app_env["PROMPTLAB_DB_URL"]).runs()
    rater = next(iter({r.user for r in [run]}))
    votes = Ratings(app_env["PROMPTLAB_DB_URL"], Identity(rater or "", admin=True)).votes(run.id,
                                                                                        *rateable_pairs(run)[0])
    assert [(v.case_key, v.vote) for v in votes] == [("0:1", "left"), ("1:1", "tie")]  # case:repeat

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    rate = open_rating(page, app.url)  # a new session
    sync_api.expect(rate.get_by_text("2 of 3 rated", exact=False)).to_be_visible(timeout=30_000)
    sync_api.expect(rate.get_by_text("Case 3", exact=False)).to_be_visible(timeout=30_000)
    assert page.locator("[data-testid='stException']").count() == 0
    context.close()

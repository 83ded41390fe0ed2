"""The whole app in 中文, in a real browser: every page, with data on it, shows no English UI words (model output,
data, code and Streamlit's own widget chrome aside), and the language chosen in the menu survives a reload."""
from __future__ import annotations

import json
import os
import time

import pytest

from core.analytics.charts import CHART_GROUPS
from core.calls.log import CallLog
from core.calls.synthetic import generate
from core.evals.config import EXAMPLE_CONFIG
from tests.browser import CHROMIUM, IDLE, StreamlitApp, screenshot
from tests.conftest import TEST_KEY
from tests.loopback_server import MODELS
from tests.zh_probe import english_words

if not os.path.exists(CHROMIUM) and os.environ.get("PROMPTLAB_SKIP_BROWSER") == "1":
    pytest.skip("PROMPTLAB_SKIP_BROWSER=1 and no Chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

# The app's own text: everything on screen minus what is not the interface's — model output, tables of data, JSON,
# code and inline code (URLs, paths, ids), text boxes, containers keyed "data-…" (a persona's system prompt), the
# charts' data labels (their titles are checked separately), Material icon names (ligatures, drawn as icons).
APP_TEXT = """() => {
  const data = ["[data-testid='stChatMessageContent'] > div:first-child [data-testid='stMarkdownContainer']",
    "[data-testid='stDataFrame']", "[data-testid='stTable']", "[data-testid='stJson']", "[data-testid='stCode']",
    "code", "[data-testid='stPlotlyChart']", "textarea", "input", "[class*='st-key-data-']",
    "[data-testid='stIconMaterial']", "[data-baseweb='tag']", "[data-testid='stFileUploaderDropzone']"];
  const hidden = [];
  for (const selector of data) document.querySelectorAll(selector).forEach(e => {
    hidden.push([e, e.style.display]); e.style.display = "none"; });
  const text = document.querySelector("[data-testid='stApp']").innerText;
  for (const [e, display] of hidden) e.style.display = display;
  // Placeholders a person sees: of empty boxes (a menu showing a value hides its own), not JSON examples.
  const placeholders = [...document.querySelectorAll("[data-testid='stApp'] input[placeholder], textarea[placeholder]")]
    .filter(e => e.offsetParent !== null && !e.value && !/^[\\[{]/.test(e.placeholder))
    .filter(e => { const menu = e.closest("[data-baseweb='select']"); return !menu || !menu.innerText.trim(); })
    .map(e => e.placeholder);
  return text + "\\n" + placeholders.join("\\n");
}"""
CHART_TEXT = """() => [...document.querySelectorAll('.gtitle, .annotation-text, .legendtext')]
  .map(e => e.textContent).join('\\n')"""
STREAMLIT_CHROME = ("Skip to main content",)  # Streamlit's own accessibility link


def english_on(page, data_words: set[str]) -> list[str]:
    text = page.evaluate(APP_TEXT) + "\n" + page.evaluate(CHART_TEXT)
    for phrase in STREAMLIT_CHROME:
        text = text.replace(phrase, "")
    return [w for w in english_words(text) if not any(w in data for data in data_words)]


@pytest.fixture
def chinese_app(server, tmp_path):
    db = f"sqlite:///{tmp_path / 'zh.db'}"
    env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": TEST_KEY,
           "PROMPTLAB_DB_URL": db, "PROMPTLAB_DATA_DIR": str(tmp_path / "data"), "PROMPTLAB_UI_LANGUAGE": "zh_CN",
           "PROMPTLAB_FALLBACK": "off", "PROMPTLAB_MAX_RETRIES": "0"}
    generate(CallLog(db), 600, days=14, seed=5)
    running = StreamlitApp(env)
    yield running
    running.stop()


def settle(page) -> None:
    page.wait_for_selector(IDLE, timeout=60_000)
    time.sleep(0.8)
    page.wait_for_selector(IDLE, timeout=60_000)


def test_every_page_in_chinese_shows_no_english_ui_words(browser, chinese_app):
    page = browser.new_context(viewport={"width": 1400, "height": 1100}, locale="zh-CN").new_page()
    # Data, not interface: the model ids in the log and on the server's list (they are names in every language).
    log = CallLog(chinese_app.env["PROMPTLAB_DB_URL"])
    data_words = {r.model for r in log.recent(1000) if r.model} | set(MODELS) | {"SmolLM2-135M-Instruct"}
    found: dict[str, list[str]] = {}

    def probe(name: str) -> None:
        settle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        # On the Evals page the example config's prompts and case names are data too: what a user typed.
        found[name] = english_on(page, data_words | ({EXAMPLE_CONFIG} if name.startswith("evals") else set()))

    for path in ("", "playground", "evals", "images", "analytics", "settings"):
        page.goto(f"{chinese_app.url}/{path}")
        settle(page)
        if path == "":
            page.locator("[data-testid='stChatInput'] textarea").fill("你好")
            page.keyboard.press("Enter")
            page.wait_for_function("() => document.body.innerText.includes('Echo: 你好')", timeout=30_000)
        elif path == "playground":
            page.get_by_label("用户消息 —— 可使用 {{变量}}").fill("你好")
            page.keyboard.press("Tab")
            settle(page)
            page.get_by_role("button", name="▶ 运行", exact=True).click()
            page.wait_for_function("() => document.body.innerText.includes('Echo: 你好')", timeout=30_000)
        elif path == "images":
            page.get_by_label("提示词").first.fill("一只猫")
            page.keyboard.press("Tab")
            settle(page)
            page.get_by_role("button", name="✨ 生成").click()
            page.wait_for_selector("[data-testid='stImage'] img", timeout=30_000)
        elif path == "evals":
            page.get_by_role("tab", name="▶ 运行").click()
            settle(page)
            page.get_by_role("button", name="▶ 运行评测").click()
            page.wait_for_selector("text=通过率", state="attached", timeout=60_000)
        elif path == "analytics":
            sync_api.expect(page.locator("[data-testid='stPlotlyChart'] .main-svg").first).to_be_visible()
        probe(path or "chat")
        screenshot(page, f"zh-{path or 'chat'}")
        if path == "analytics":  # the other chart groups: their titles and notes are checked too
            for index in range(1, len(CHART_GROUPS)):
                page.locator(".st-key-an_charts button").nth(index).click()
                settle(page)
                sync_api.expect(page.locator("[data-testid='stPlotlyChart'] .main-svg").first).to_be_visible()
                probe(f"analytics · {page.locator('.st-key-an_charts button').nth(index).inner_text().strip()}")
        for tab in page.get_by_role("tab").all()[1:]:  # the other tabs of the page
            tab.click()
            probe(f"{path} · {tab.inner_text().strip()}")
    assert found == {name: [] for name in found}, json.dumps(found, ensure_ascii=False)


def test_the_language_menu_switches_and_the_choice_survives_a_reload(browser, app):
    page = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US").new_page()
    page.goto(app.url)
    settle(page)
    assert "Message PromptLab" in page.inner_html("body")
    page.get_by_label("🌐 Interface language").click()
    page.get_by_role("option", name="简体中文").click()
    settle(page)
    sync_api.expect(page.locator("[data-testid='stChatInput'] textarea")).to_have_attribute(
        "placeholder", "给 PromptLab 发消息…")
    page.reload()
    settle(page)
    sync_api.expect(page.locator("[data-testid='stChatInput'] textarea")).to_have_attribute(
        "placeholder", "给 PromptLab 发消息…")
    assert "对话" in page.inner_text("[data-testid='stSidebarNav']")



def test_a_browser_set_to_chinese_gets_chinese_without_choosing(browser, app):
    page = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN").new_page()
    page.goto(app.url)
    settle(page)
    sync_api.expect(page.locator("[data-testid='stChatInput'] textarea")).to_have_attribute(
        "placeholder", "给 PromptLab 发消息…")
    english = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB").new_page()
    english.goto(app.url)
    settle(english)
    sync_api.expect(english.locator("[data-testid='stChatInput'] textarea")).to_have_attribute(
        "placeholder", "Message PromptLab…")

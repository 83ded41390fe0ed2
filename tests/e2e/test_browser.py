"""The whole app in a real browser: Playwright driving Debian's Chromium against `streamlit run app.py`."""
from __future__ import annotations

import os
import signal
import time
import urllib.request

import pytest

from core.analytics.charts import CHART_GROUPS
from core.calls.log import CallLog
from core.chat.store import ConversationStore
from tests.browser import CHROMIUM, IDLE, StreamlitApp, child_pids, screenshot
from tests.loopback_server import Script

if not os.path.exists(CHROMIUM) and os.environ.get("PROMPTLAB_SKIP_BROWSER") == "1":
    pytest.skip("PROMPTLAB_SKIP_BROWSER=1 and no Chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.goto(app.url)
    pg.wait_for_selector(IDLE, timeout=30_000)
    pg.wait_for_selector("[data-testid='stChatInput'] textarea")
    yield pg
    assert pg.locator("[data-testid='stException']").count() == 0, "a traceback reached the page"
    context.close()


LAST_REPLY_DONE = """() => {
    const messages = [...document.querySelectorAll("[data-testid='stChatMessage']")];
    const last = messages[messages.length - 1];
    return !!last && last.innerText.includes("out tokens") && !last.innerText.includes("Stop");
}"""


REPLY_STREAMING = """() => {
    const m = [...document.querySelectorAll("[data-testid='stChatMessage']")];
    return m.length >= 2 && m[m.length - 1].innerText.includes("Stop") && m[m.length - 1].innerText.length > 40;
}"""


def cap_reply_tokens(page, limit: int) -> None:
    """Set the chat's max-tokens box, so a test does not depend on how long the offline model talks."""
    box = page.get_by_label("Max tokens (reply)")
    box.fill(str(limit))
    box.press("Enter")
    page.wait_for_selector(IDLE, timeout=30_000)


def send(page, text: str) -> None:
    page.locator("[data-testid='stChatInput'] textarea").fill(text)
    page.keyboard.press("Enter")


def assistant_messages(page):
    return page.locator("[data-testid='stChatMessage']").filter(
        has=page.locator("[data-testid='stChatMessageAvatarAssistant']"))


def test_send_message_and_see_streamed_reply(page, server, app_env):
    server.push(Script(reply="Streaming works, one token at a time, in a real browser.", chunk_delay=0.08))
    send(page, "Hello from the browser")
    # While the reply streams, the text grows: sample it mid-stream and after.
    page.wait_for_function("() => document.body.innerText.includes('Streaming works')", timeout=20_000)
    partial = assistant_messages(page).last.inner_text()
    page.wait_for_selector(IDLE, timeout=30_000)
    page.wait_for_function(LAST_REPLY_DONE, timeout=20_000)  # its counters drawn, its Stop button gone
    page.wait_for_selector(IDLE, timeout=30_000)
    final = assistant_messages(page).last.inner_text()
    assert "a real browser." not in partial and "a real browser." in final
    assert "out tokens" in final  # the per-turn counters
    records = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat"]
    assert len(records) == 1 and records[0].status == "ok"
    screenshot(page, "chat")


def test_stop_cancels_stream_and_keeps_partial_reply(page, server, app_env):
    server.push(Script(chunks=400, chunk_delay=0.05))
    send(page, "Write a very long answer")
    page.wait_for_function("() => document.body.innerText.includes('w5 ')", timeout=20_000)
    page.get_by_role("button", name="⏹ Stop").click()
    page.wait_for_function("() => document.body.innerText.includes('stopped')", timeout=20_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    reply = assistant_messages(page).last.inner_text()
    assert "w5" in reply and "w399" not in reply and "stopped" in reply
    records = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat"]
    assert [r.status for r in records] == ["cancelled"]
    store = ConversationStore(app_env["PROMPTLAB_DB_URL"])
    saved = store.load(store.list("local")[0].id)
    assert saved.messages[-1].status == "stopped"  # survives a reload
    deadline = time.monotonic() + 5
    while server.requests[-1]["stream_state"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.requests[-1]["stream_state"] == "aborted_by_client"
    assert server.requests[-1]["chunks_sent"] < 400


def test_error_is_one_sentence_and_retry_recovers(page, server):
    server.push(Script(status=503))
    send(page, "Is the server up?")
    page.wait_for_selector("[data-testid='stAlert']", timeout=20_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    alert = page.locator("[data-testid='stAlert']").first.inner_text()
    assert "server error (503)" in alert and "Traceback" not in alert
    assert "Is the server up?" in page.locator("[data-testid='stChatMessage']").first.inner_text()
    page.get_by_role("button", name="↻ Retry").click()
    page.wait_for_function("() => document.body.innerText.includes('Echo: Is the server up?')", timeout=20_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    sync_api.expect(page.locator("[data-testid='stAlert']")).to_have_count(0, timeout=10_000)


def test_settings_page_masks_key(page, app):
    page.goto(f"{app.url}/settings")
    page.wait_for_selector(IDLE, timeout=30_000)
    page.wait_for_function("() => document.body.innerText.includes('Active provider')", timeout=20_000)
    html = page.content()
    from tests.conftest import TEST_KEY
    assert TEST_KEY not in html and "sk-…6789" in page.inner_text("body")
    screenshot(page, "settings")


@pytest.fixture
def offline_app(offline_env):
    running = StreamlitApp(offline_env)
    yield running
    running.stop()


def offline_session(browser, app: StreamlitApp):
    """A new browser session on an app with no key, once its sidebar says the offline model answers."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(app.url)
    # The first request to a fresh server reruns through app.py's router (pages/_workbench.py): wait for its sidebar.
    page.wait_for_function("() => document.querySelector(\"[data-testid='stSidebar']\")?.innerText"
                           ".includes('Offline model — small and fast')", timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    return context, page


def test_fresh_start_with_no_key_streams_a_reply_from_the_local_model(browser, offline_app):
    context, page = offline_session(browser, offline_app)
    cap_reply_tokens(page, 96)
    send(page, "Tell me a short story about a robot.")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stChatMessage]')].length >= 2", timeout=60_000)
    page.wait_for_function("() => document.body.innerText.includes('local (free)')", timeout=120_000)
    page.wait_for_selector(IDLE, timeout=120_000)
    reply = assistant_messages(page).last.inner_text()
    assert "local (free)" in reply and "tokens/s" in reply
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "chat-offline")
    context.close()


def offline_model_pid(app: StreamlitApp, timeout: float = 30) -> int:
    """The offline model's child process of this Streamlit server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = child_pids(app.proc.pid)
        if pids:
            return pids[0]
        time.sleep(0.1)
    raise AssertionError("the offline model process did not start")


def test_offline_model_killed_mid_reply_shows_one_sentence_and_the_next_message_is_answered(browser, offline_app):
    context, page = offline_session(browser, offline_app)
    # A prompt SmolLM2 answers at length (1024 tokens, ~7 s): the kill lands mid-reply.
    send(page, "Write a long, detailed story about a lighthouse keeper. Use at least 800 words.")
    page.wait_for_function(REPLY_STREAMING, timeout=60_000)
    pid = offline_model_pid(offline_app)
    shown = assistant_messages(page).last.inner_text()
    os.kill(pid, signal.SIGKILL)
    try:
        page.wait_for_function(
            "() => document.body.innerText.includes('The offline model stopped unexpectedly — try again.')",
            timeout=30_000)
    except Exception:  # keep the evidence: what the page and the log said
        screenshot(page, "chat-offline-crash-failed")
        print(page.inner_text("body")[-800:], CallLog(offline_app.env["PROMPTLAB_DB_URL"]).recent(3))
        raise
    page.wait_for_selector(IDLE, timeout=30_000)
    body = page.inner_text("body")
    assert "Connection error" not in body and offline_app.proc.poll() is None  # the server is still up
    assert "cut off" in assistant_messages(page).last.inner_text()  # the partial reply is kept, marked
    shown_words = [w for w in shown.split() if w not in ("smart_toy", "⏹", "Stop")][:-1]  # last may be partial
    kept_words = [w for w in assistant_messages(page).last.inner_text().split() if w != "smart_toy"]
    assert shown_words and kept_words[:len(shown_words)] == shown_words  # nothing that was shown is lost
    screenshot(page, "chat-offline-crash")
    rows = [r for r in CallLog(offline_app.env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat"]
    assert rows[0].status == "error" and rows[0].error_type == "local_model_crashed"
    cap_reply_tokens(page, 48)
    send(page, "Say hello.")  # a fresh child answers
    page.wait_for_function("""() => {
        const m = [...document.querySelectorAll("[data-testid='stChatMessage']")];
        return m.length >= 4 && m[m.length - 1].innerText.includes("local (free)");
    }""", timeout=120_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    assert offline_model_pid(offline_app) != pid
    assert page.locator("[data-testid='stException']").count() == 0
    context.close()


def test_a_second_session_waits_for_the_offline_model_says_so_and_stop_leaves_the_queue(browser, offline_app):
    (ctx_a, a), (ctx_b, b) = offline_session(browser, offline_app), offline_session(browser, offline_app)
    cap_reply_tokens(b, 32)
    send(a, "Write a long, detailed story about a lighthouse keeper. Use at least 800 words.")
    a.wait_for_function(REPLY_STREAMING, timeout=60_000)  # A holds the model (~8 s of reply ahead)
    send(b, "And what about me?")
    b.wait_for_function("() => document.body.innerText.includes('Waiting for the offline model')", timeout=30_000)
    screenshot(b, "chat-offline-queued")
    b.get_by_role("button", name="⏹ Stop").click()
    b.wait_for_function("() => !document.body.innerText.includes('Waiting for the offline model')",
                        timeout=30_000)  # it left the queue while the first session's reply still streams
    b.wait_for_selector(IDLE, timeout=30_000)
    assert "And what about me?" in b.inner_text("body")  # the message is kept
    a.wait_for_function(LAST_REPLY_DONE, timeout=120_000)  # the first session's reply was not disturbed
    a.wait_for_selector(IDLE, timeout=60_000)
    assert "cut off" not in assistant_messages(a).last.inner_text()
    rows = {r.session: r.status for r in CallLog(offline_app.env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat"}
    assert sorted(rows.values()) == ["cancelled", "ok"]
    for page in (a, b):
        assert page.locator("[data-testid='stException']").count() == 0
    ctx_a.close()
    ctx_b.close()


def test_a_provider_failing_with_500_falls_back_to_the_offline_model_and_the_server_survives(browser, app_env,
                                                                                              server):
    server.push(*[Script(status=500) for _ in range(20)])  # every chat request fails
    running = StreamlitApp({**app_env, "PROMPTLAB_FALLBACK": "auto"})
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(running.url)
        page.wait_for_selector(IDLE, timeout=60_000)
        cap_reply_tokens(page, 48)
        send(page, "Say hello in five words.")
        page.wait_for_function("""() => {
            const m = [...document.querySelectorAll("[data-testid='stChatMessage']")];
            return m.length >= 2 && m[m.length - 1].innerText.includes("local (free)");
        }""", timeout=120_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        reply = assistant_messages(page).last.inner_text()
        assert "gpt-4o-mini had a server error — answered by local/SmolLM2-135M-Instruct" in reply
        assert running.proc.poll() is None and "Connection error" not in page.inner_text("body")
        assert child_pids(running.proc.pid)  # the model runs beside the server, not inside it
        rows = sorted((r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat"),
                      key=lambda r: r.attempt)
        assert [(r.provider, r.status) for r in rows] == [("compatible", "error"), ("local", "ok")]
        screenshot(page, "chat-fallback")
        context.close()
    finally:
        running.stop()


def show_chart_group(page, index: int, charts: int) -> None:
    """Click the index-th button of the Analytics chart-group control and wait for its charts to be drawn."""
    page.locator(".st-key-an_charts button").nth(index).click()
    page.wait_for_selector(IDLE, timeout=60_000)
    sync_api.expect(page.locator("[data-testid='stPlotlyChart']")).to_have_count(charts, timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll(\"[data-testid='stPlotlyChart']\")]"
                           ".every(c => c.querySelector('.main-svg'))", timeout=30_000)
    page.wait_for_selector(IDLE, timeout=60_000)


TOOLBAR_ON_TITLE = """() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")].filter(c => {
    const bar = c.querySelector('.modebar'), title = c.querySelector('.gtitle');
    if (!bar || !title) return false;
    const a = bar.getBoundingClientRect(), b = title.getBoundingClientRect();
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}).length"""


def test_analytics_deep_link_renders_charts(browser, app_env):
    from core.analytics.charts import CHART_GROUPS
    from core.calls.synthetic import generate
    generate(CallLog(app_env["PROMPTLAB_DB_URL"]), 2000, days=14, seed=8)
    running = StreamlitApp(app_env)  # a fresh server, first request straight to /analytics
    try:
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        page.goto(f"{running.url}/analytics")
        page.wait_for_selector(IDLE, timeout=60_000)
        page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=30_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        sync_api.expect(page.locator("[data-testid='stPlotlyChart']")).to_have_count(
            len(CHART_GROUPS["overview"].keys), timeout=30_000)  # one group of charts drawn at a time
        nav = page.inner_text("[data-testid='stSidebarNav']")
        assert "Analytics" in nav and "shared" not in nav  # the app's router, not a bare pages/ listing
        assert page.locator("[data-testid='stMetric']").count() >= 10
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.evaluate(TOOLBAR_ON_TITLE) == 0, "the Plotly toolbar covers a chart title"
        screenshot(page, "analytics")
        titles: set[str] = set()
        for index, group in enumerate(CHART_GROUPS.values()):  # every chart is one click away
            show_chart_group(page, index, len(group.keys))
            assert page.evaluate(TOOLBAR_ON_TITLE) == 0, "the Plotly toolbar covers a chart title"
            titles |= set(page.eval_on_selector_all("[data-testid='stPlotlyChart'] .gtitle",
                                                    "titles => titles.map(t => t.textContent)"))
        assert len(titles) == sum(len(g.keys) for g in CHART_GROUPS.values()), titles  # every chart, each once
        assert page.locator("[data-testid='stException']").count() == 0
        context.close()
    finally:
        running.stop()


CHART_LAYOUT = """(note) => {
    const boxes = [...document.querySelectorAll("[data-testid='stPlotlyChart']")].map(c => c.getBoundingClientRect());
    const overlaps = [];
    boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b, j) => {
        if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
            overlaps.push([i, i + 1 + j]);
    }));
    const cut = [], seen = [];
    for (const el of document.querySelectorAll("[data-testid='stMain'] *")) {
        if (el.children.length || !el.textContent.includes(note)) continue;
        const r = el.getBoundingClientRect(), column = el.closest("[data-testid='stColumn']");
        const c = column ? column.getBoundingClientRect() : {left: 0, right: window.innerWidth};
        seen.push(el.textContent);
        const clipped = el.scrollWidth > el.clientWidth + 1 || r.left < c.left - 1 || r.right > c.right + 1;
        if (clipped || !el.checkVisibility()) cut.push([el.textContent, r.left, r.right, c.left, c.right]);
    }
    return {charts: boxes.length, overlaps, seen, cut};
}"""


@pytest.mark.parametrize("width", [1100, 1400])
def test_analytics_charts_never_overlap_and_their_notes_are_read_in_full(browser, app_env, width):
    """Row 12: offline calls only ($0 spend) in a narrow and a wide window: in every chart group no chart box
    overlaps another, and the spend charts' notes stay inside their column."""
    from datetime import datetime, timezone

    from core.analytics.charts import CHART_GROUPS
    from core.calls.interchange import insert_new
    from core.calls.log import CallRecord
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    insert_new(CallLog(app_env["PROMPTLAB_DB_URL"]), [
        CallRecord(request_id=f"l{i}", ts=now.replace(hour=h).isoformat(timespec="milliseconds"), page="chat",
                   provider="local", model_requested="local/smollm2", model="local/smollm2", status="ok",
                   input_tokens=80, output_tokens=40, cost_usd=0.0, latency_ms=900, ttft_ms=150, user="ana")
        for i, h in enumerate((0, 0, 1, now.hour))])
    running = StreamlitApp(app_env)
    try:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(f"{running.url}/analytics")
        page.wait_for_selector(IDLE, timeout=60_000)
        for index, (name, group) in enumerate(CHART_GROUPS.items()):
            show_chart_group(page, index, len(group.keys))
            layout = page.evaluate(CHART_LAYOUT, "No spend in this period")
            assert layout["charts"] == len(group.keys) and layout["overlaps"] == [], (name, layout)
            assert layout["cut"] == [], (name, layout)  # every note there is whole, inside its column
            if any(key.startswith("spend") for key in group.keys):
                assert layout["seen"], (name, layout)  # the $0 spend charts say so in a note
            if name == "overview":
                screenshot(page, f"analytics-offline-notes-{width}")
        assert page.locator("[data-testid='stException']").count() == 0
        context.close()
    finally:
        running.stop()


def test_playground_matrix_run_streams_every_cell(page, app, server):
    page.goto(f"{app.url}/playground")
    page.wait_for_selector(IDLE, timeout=30_000)
    page.get_by_label("User message — use {{variables}}").fill("Compare us")
    page.keyboard.press("Tab")
    page.wait_for_selector(IDLE, timeout=30_000)
    page.get_by_role("tab", name="▦ Compare").click()
    for _ in range(2):
        server.push(Script(reply="cell answer streaming in pieces", chunk_delay=0.05))
    page.get_by_role("button", name="▶ Run matrix").click()
    page.wait_for_function("() => document.body.innerText.includes('Results —')", timeout=30_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    text = page.inner_text("[data-testid='stMain']")
    assert text.count("cell answer streaming in pieces") >= 2  # both temperatures (0 and 1) answered
    assert "T=0" in text and "T=1" in text and "finish: complete" in text
    screenshot(page, "playground")


def test_generated_image_is_visible_and_downloadable(browser, app_env, tmp_path):
    running = StreamlitApp({**app_env, "PROMPTLAB_DATA_DIR": str(tmp_path / "data")})
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.goto(f"{running.url}/images")
        page.wait_for_selector(IDLE, timeout=60_000)
        page.get_by_label("Prompt").first.fill("A blue square")
        page.keyboard.press("Tab")
        page.wait_for_selector(IDLE, timeout=30_000)
        page.get_by_role("button", name="✨ Generate").click()
        page.wait_for_selector("[data-testid='stImage'] img", timeout=30_000)
        page.wait_for_selector(IDLE, timeout=30_000)
        img = page.locator("[data-testid='stImage'] img").first
        assert img.evaluate("i => i.complete && i.naturalWidth") == 8  # the loopback server's real 8×8 PNG
        with page.expect_download() as download:
            page.locator("[data-testid='stDownloadButton'] button").first.click()
        path = download.value.path()
        assert open(path, "rb").read().startswith(b"\x89PNG")
        screenshot(page, "images")
        context.close()
    finally:
        running.stop()


EVAL_YAML = """description: browser eval
prompts:
  - "Q: {{question}}"
  - "Please answer {{question}}"
providers:
  - openai:chat:gpt-4o-mini
tests:
  - description: return window
    vars: {question: "return window?"}
    assert: [{type: icontains, value: "Q:"}]
  - description: gift cards
    vars: {question: "gift cards?"}
    assert: [{type: contains, value: "gift"}]
"""


def run_eval(page) -> None:
    page.get_by_role("tab", name="▶ Run").click()
    page.get_by_role("button", name="▶ Run eval").click()
    page.wait_for_selector(IDLE, timeout=60_000)
    page.get_by_role("tab", name="📊 Results").click()


def test_evals_import_run_read_a_failure_and_compare_with_a_baseline(page, app, server, tmp_path):
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(EVAL_YAML)
    page.goto(f"{app.url}/evals")
    page.wait_for_selector(IDLE, timeout=60_000)
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(config))
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => "
                           "t.value.includes('browser eval'))", timeout=30_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    run_eval(page)
    results = page.get_by_role("tabpanel", name="📊 Results")
    sync_api.expect(results.get_by_text("1 failed", exact=False)).to_be_visible(timeout=30_000)
    matrix = results.locator("[data-testid='stDataFrame']").first
    sync_api.expect(matrix).to_be_visible()
    assert len(server.chat_requests()) == 4
    failing = results.locator("[data-testid='stExpander']").filter(has_text="❌").first
    failing.locator("summary").click()
    sync_api.expect(failing.get_by_text('Expected output to contain "Q:"', exact=False)).to_be_visible()
    screenshot(page, "evals")

    results.get_by_role("button", name="⭐ Make this run the baseline").click()
    page.wait_for_selector(IDLE, timeout=60_000)
    run_eval(page)
    results = page.get_by_role("tabpanel", name="📊 Results")
    sync_api.expect(results.get_by_text("this run passes 2/2, baseline 2/2", exact=False)).to_be_visible(
        timeout=30_000)
    assert len(server.chat_requests()) == 8


def test_a_reply_with_a_remote_image_makes_the_browser_fetch_nothing(page, server):
    base = server.base_url.removesuffix("/v1")
    server.push(Script(reply=f"Look ![pixel]({base}/exfil.png?q=SECRET) and [ref image][r]\n\n"
                             f"![again][r]\n\n[r]: {base}/exfil2.png"))
    send(page, "show me a picture")
    page.wait_for_function(LAST_REPLY_DONE, timeout=20_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    page.wait_for_timeout(500)  # time for a browser to have fetched an image, had one been rendered
    fetched = [r["path"] for r in server.requests if "exfil" in r["path"]]
    assert fetched == [] and page.locator("[data-testid='stChatMessage'] img[src*='exfil']").count() == 0
    assert "image not loaded" in assistant_messages(page).last.inner_text()


def test_a_server_killed_mid_reply_loses_neither_the_turn_nor_the_call_row(browser, app_env, server):
    server.push(Script(chunks=400, chunk_delay=0.05))
    first = StreamlitApp(app_env)
    second = None
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(first.url)
        page.wait_for_selector(IDLE, timeout=30_000)
        page.wait_for_selector("[data-testid='stChatInput'] textarea")
        send(page, "keep this message")
        page.wait_for_function(REPLY_STREAMING, timeout=20_000)
        conversation = page.evaluate("() => new URLSearchParams(location.search).get('c')")
        os.kill(first.proc.pid, signal.SIGKILL)  # the whole server, mid-reply
        first.proc.wait(10)
        second = StreamlitApp(app_env)  # same database
        page.goto(f"{second.url}/?c={conversation}")
        page.wait_for_selector(IDLE, timeout=30_000)
        sync_api.expect(page.locator("[data-testid='stChatMessageContent']").get_by_text("keep this message")) \
            .to_be_visible(timeout=20_000)
        sync_api.expect(page.get_by_text("interrupted", exact=False).first).to_be_visible()
        sync_api.expect(page.get_by_role("button", name="↻ Retry")).to_be_visible()
        log = CallLog(app_env["PROMPTLAB_DB_URL"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the new server marks the dead one's call at start-up
            rows = [r for r in log.recent(5) if r.page == "chat"]
            if rows and rows[0].error_type == "interrupted":
                break
            time.sleep(0.3)
        assert [(r.status, r.error_type) for r in rows] == [("error", "interrupted")]
        server.push(Script(reply="Answered after all."))
        page.get_by_role("button", name="↻ Retry").click()
        sync_api.expect(page.get_by_text("Answered after all.").first).to_be_visible(timeout=20_000)
        page.wait_for_function(LAST_REPLY_DONE, timeout=20_000)
        page.wait_for_selector(IDLE, timeout=30_000)
        assert assistant_messages(page).filter(has_text="Answered after all.").count() == 1  # answered once
        context.close()
    finally:
        if first.proc.poll() is None:
            first.stop()
        if second is not None:
            second.stop()


def test_a_personal_data_export_fetched_by_its_url_without_a_session_is_unreadable(page, app):
    import io
    import zipfile

    import pyzipper

    page.goto(f"{app.url}/settings")
    page.wait_for_selector(IDLE, timeout=30_000)
    page.get_by_label("User id").fill("local")
    page.keyboard.press("Enter")
    page.wait_for_selector(IDLE, timeout=30_000)
    page.get_by_role("button", name="🔒 Prepare an encrypted export").click()
    page.wait_for_selector(IDLE, timeout=30_000)
    passphrase = page.locator("[data-testid='stCode'] code").first.inner_text().strip()
    with page.expect_download() as download:
        page.get_by_role("button", name="⬇ Download the encrypted ZIP").click()
    url = download.value.url
    assert "/media/" in url
    data = urllib.request.urlopen(url).read()  # another client: no cookies, no session
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        with pytest.raises(RuntimeError):
            zf.read("README.txt")
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        zf.setpassword(passphrase.encode())
        assert b"PromptLab data export" in zf.read("README.txt")
    page.reload()
    page.wait_for_selector(IDLE, timeout=30_000)
    assert passphrase not in page.content()  # shown once


def test_two_users_in_two_browsers_see_only_their_own_conversations(browser, app_env, server):
    from core.chat.store import ConversationStore
    from core.policy.access import hash_password

    users = {"alice": "alice pw", "bob": "bob pw"}
    env = {**app_env, "PROMPTLAB_USERS": ",".join(f"{u}:{hash_password(p, iterations=1000)}"
                                                  for u, p in users.items())}
    running = StreamlitApp(env)
    try:
        def signed_in(name: str, path: str = ""):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            pg = context.new_page()
            pg.goto(running.url + path)
            pg.wait_for_selector(IDLE, timeout=30_000)
            pg.get_by_label("User name").fill(name)
            pg.get_by_role("textbox", name="Password").fill(users[name])
            pg.get_by_role("button", name="Sign in").click()
            pg.wait_for_selector("[data-testid='stChatInput'] textarea", timeout=30_000)
            pg.wait_for_selector(IDLE, timeout=30_000)
            return context, pg

        alice_ctx, alice = signed_in("alice")
        send(alice, "alice's confidential plan")
        alice.wait_for_function(LAST_REPLY_DONE, timeout=20_000)
        alice.wait_for_selector(IDLE, timeout=30_000)
        conversation = alice.evaluate("() => new URLSearchParams(location.search).get('c')")
        bob_ctx, bob = signed_in("bob", f"/?c={conversation}")  # alice's link, opened by bob
        assert "confidential plan" not in bob.inner_text("body")
        send(bob, "bob was here")
        bob.wait_for_function(LAST_REPLY_DONE, timeout=20_000)
        stored = ConversationStore(env["PROMPTLAB_DB_URL"]).load(conversation)
        assert [m.content for m in stored.messages if m.role == "user"] == ["alice's confidential plan"]
        assert ConversationStore(env["PROMPTLAB_DB_URL"]).list("bob")[0].id != conversation
        alice_ctx.close()
        bob_ctx.close()
    finally:
        running.stop()


def test_analytics_reconciles_with_the_bill_and_shows_the_outside_calls(browser, app_env, server):
    from datetime import datetime, timedelta, timezone

    from core.calls.log import CallRecord

    server.admin_key = "sk-admin-browser-000000000"
    log = CallLog(app_env["PROMPTLAB_DB_URL"])
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(1, 4):
        day = today - timedelta(days=back)
        for i in range(3):
            log.write(CallRecord(request_id=f"b{back}-{i}", ts=(day + timedelta(hours=9)).isoformat(
                timespec="milliseconds"), page="chat", provider="openai", model_requested="gpt-4o-mini",
                model="gpt-4o-mini", status="ok", input_tokens=100, output_tokens=20, cost_usd=0.001))
        billed = 7 if back == 2 else 3  # the day before yesterday, 4 requests came from elsewhere
        server.usage_buckets.append({"start_time": int(day.timestamp()), "results": [
            {"model": "gpt-4o-mini", "num_model_requests": billed, "input_tokens": 100 * billed,
             "output_tokens": 20 * billed}]})
        server.cost_buckets.append({"start_time": int(day.timestamp()), "results": [
            {"line_item": "gpt-4o-mini, input", "amount": {"value": 0.001 * billed, "currency": "usd"}}]})
    running = StreamlitApp({**app_env, "OPENAI_ADMIN_KEY": server.admin_key})
    try:
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        page.goto(f"{running.url}/analytics")
        page.wait_for_selector(IDLE, timeout=60_000)
        page.get_by_role("button", name="↻ Fetch usage and costs", exact=False).click()
        page.wait_for_selector(IDLE, timeout=60_000)
        coverage = page.locator("[data-testid='stMetric']").filter(has_text="Coverage")
        sync_api.expect(coverage).to_contain_text("69.2%", timeout=30_000)  # 9 of 13 requests' cost
        # The IDLE wait above can match before the click's rerun has begun, and the rerun's elements replace the
        # previous run's one by one: every later check waits for its own text instead of reading the body once.
        body = page.locator("body")
        sync_api.expect(body).to_contain_text("1 of 3 day × model rows differ", use_inner_text=True, timeout=30_000)
        outside = (today - timedelta(days=2)).date().isoformat()
        sync_api.expect(body).to_contain_text(f"{outside} · gpt-4o-mini: 4 requests made outside PromptLab",
                                              use_inner_text=True, timeout=30_000)
        assert server.admin_key not in page.content()
        screenshot(page, "reconcile")
        context.close()
    finally:
        running.stop()


def test_stop_while_the_model_has_not_answered_ends_the_request_within_two_seconds(page, server, app_env):
    server.push(Script(first_byte_delay=30))  # a provider that does not answer
    send(page, "are you there?")
    sync_api.expect(page.get_by_text("Waiting for gpt-4o-mini", exact=False)).to_be_visible(timeout=10_000)
    page.get_by_role("button", name="⏹ Stop").click()
    page.wait_for_selector(IDLE, timeout=2_000)  # the wait ends with the click, not with the 30 s answer
    assert "are you there?" in page.inner_text("body")
    records = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(5) if r.page == "chat"]
    assert [r.status for r in records] == ["cancelled"]


def download_from(page, button, tmp_path):
    """Click a download button and keep the file (a click swallowed by a redraw is tried once more)."""
    for attempt in (1, 2):
        page.wait_for_selector(IDLE, timeout=60_000)
        try:
            with page.expect_download(timeout=20_000) as info:
                button.click()
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def open_offline(browser, path):
    """Open a file with every network request refused and recorded: a self-contained file makes none."""
    context = browser.new_context(viewport={"width": 1300, "height": 900}, offline=True)
    fetched: list[str] = []

    def refuse(route):
        fetched.append(route.request.url)
        route.abort()
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else refuse(route))
    page = context.new_page()
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:")) else fetched.append(r.url))
    page.goto(path.as_uri())
    return context, page, fetched


def test_a_shared_conversation_and_analytics_report_render_offline_with_the_numbers_of_the_app(
        browser, page, app, app_env, server, tmp_path):
    server.push(Script(reply='Your parcel ships today. <img src="https://tracker.example/p.png"> Ask ana@example.com',
                       chunk_delay=0.01))
    send(page, "Where is my parcel?")
    page.wait_for_function(LAST_REPLY_DONE, timeout=30_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    record = next(r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat")
    page.get_by_role("button", name="⬇ Export / share").click()
    shared = download_from(page, page.get_by_role("button", name="🔗 Share as one HTML file"), tmp_path)
    assert shared.name.startswith("where-is-my-parcel-") and shared.suffix == ".html"

    context, report_page, fetched = open_offline(browser, shared)
    text = report_page.inner_text("body")
    assert "Where is my parcel?" in text and "Your parcel ships today." in text
    assert f"{record.input_tokens:,} in / {record.output_tokens:,} out tokens" in text
    assert "ana@example.com" not in text and "[EMAIL]" in text
    assert fetched == [] and report_page.locator("img").count() == 0
    context.close()

    from core.calls.synthetic import generate
    generate(CallLog(app_env["PROMPTLAB_DB_URL"]), 1500, days=14, seed=3)
    page.goto(f"{app.url}/analytics")
    page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    metrics = {m.locator("[data-testid='stMetricLabel']").inner_text().strip():
               m.locator("[data-testid='stMetricValue']").inner_text().strip()
               for m in page.locator("[data-testid='stMetric']").all()}
    shared = download_from(page, page.get_by_role("button", name="🔗 Share report (HTML)"), tmp_path)
    context, report_page, fetched = open_offline(browser, shared)
    sync_api.expect(report_page.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=30_000)
    charts = sum(len(g.keys) for g in CHART_GROUPS.values())  # the report draws every chart of the page
    sync_api.expect(report_page.locator(".js-plotly-plot")).to_have_count(charts, timeout=30_000)
    cards = {c.locator(".label").inner_text().strip(): c.locator(".value").inner_text().strip()
             for c in report_page.locator(".kpi").all()}
    for label in ("Spend", "Calls", "Error rate", "p95 latency", "Tokens in"):
        assert cards[label] == metrics[label], label  # the numbers the app showed for the same filters
    assert "Period:" in report_page.inner_text("body") and fetched == []
    report_page.locator(".js-plotly-plot").first.hover()  # interactive: Plotly answers the pointer
    context.close()


def settled(settings_page) -> None:
    """A check that something is absent waits for what the Settings page draws after it: IDLE alone can match
    before the first run has drawn anything, and an empty page passes every "not in" check."""
    sync_api.expect(settings_page.get_by_role("button", name="🔌 Test connection")).to_be_visible(timeout=30_000)


def test_reload_keeps_the_provider_chosen_in_settings_and_only_for_that_browser(browser, page, app, server):
    from tests.loopback_server import LoopbackServer
    other = LoopbackServer().start()
    typed_key = "sk-typed-in-settings-0123456789abcdef"
    try:
        page.goto(f"{app.url}/settings")
        page.wait_for_selector(IDLE, timeout=30_000)
        page.get_by_label("Base URL / Azure endpoint").fill(other.base_url)
        page.get_by_label("API key").fill(typed_key)
        page.get_by_role("button", name="Apply", exact=True).click()
        page.wait_for_selector(IDLE, timeout=30_000)
        sync_api.expect(page.get_by_text("This browser uses the provider set below")).to_be_visible()
        page.wait_for_timeout(300)  # the cookie is written by the run that follows the switch
        page.reload()  # F5: a new Streamlit session
        page.wait_for_selector(IDLE, timeout=30_000)
        sync_api.expect(page.get_by_text("This browser uses the provider set below")).to_be_visible(timeout=10_000)
        assert "…cdef" in page.inner_text("body") and typed_key not in page.content() and typed_key not in page.url
        page.goto(app.url)
        page.wait_for_selector("[data-testid='stChatInput'] textarea", timeout=30_000)
        send(page, "Which server answers?")
        page.wait_for_function(LAST_REPLY_DONE, timeout=30_000)
        assert len(other.chat_requests()) == 1 and server.chat_requests() == []
        assert "gpt-4o-mini" in assistant_messages(page).last.inner_text()  # which model answered the turn

        stranger = browser.new_context()  # another browser: the configured provider, not this one's choice
        elsewhere = stranger.new_page()
        elsewhere.goto(f"{app.url}/settings")
        elsewhere.wait_for_selector(IDLE, timeout=30_000)
        settled(elsewhere)
        assert "This browser uses the provider set below" not in elsewhere.inner_text("body")
        stranger.close()

        page.goto(f"{app.url}/settings")
        page.wait_for_selector(IDLE, timeout=30_000)
        page.get_by_role("button", name="Reset to configured provider").click()
        page.wait_for_selector(IDLE, timeout=30_000)
        page.wait_for_timeout(300)
        page.reload()
        page.wait_for_selector(IDLE, timeout=30_000)
        settled(page)
        assert "This browser uses the provider set below" not in page.inner_text("body")
    finally:
        other.stop()


def test_a_moderation_refusal_is_gone_while_the_next_message_streams(page, server, app_env):
    from core.calls.moderation import ModerationSettings, save_moderation
    from tests.conftest import ADMIN
    save_moderation(CallLog(app_env["PROMPTLAB_DB_URL"]).engine, ModerationSettings("input"), actor=ADMIN)
    send(page, "how to build a bomb")
    page.wait_for_selector("[data-testid='stAlert']", timeout=30_000)
    page.wait_for_selector(IDLE, timeout=30_000)
    assert "flagged by moderation" in page.inner_text("[data-testid='stAlert']")
    page.locator("[data-testid='stChatInput'] textarea").fill("")
    server.push(Script(chunks=60, chunk_delay=0.05))
    send(page, "fireworks safety, please")
    page.wait_for_function(REPLY_STREAMING, timeout=30_000)
    streaming = assistant_messages(page).last.inner_text()
    flagged = page.locator("[data-testid='stAlert']").filter(has_text="flagged by moderation").count()
    assert flagged == 0 and "Stop" in streaming  # no refusal above the turn while it streams
    page.wait_for_function(LAST_REPLY_DONE, timeout=30_000)


def test_on_a_phone_the_chat_actions_share_rows_and_a_delete_can_be_undone(browser, app, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(app.url)
    phone.wait_for_selector("[data-testid='stChatInput'] textarea", timeout=30_000)
    send(phone, "Hello from a phone")
    phone.wait_for_function(LAST_REPLY_DONE, timeout=30_000)
    phone.wait_for_selector(IDLE, timeout=30_000)
    boxes = [phone.get_by_role("button", name=name).bounding_box()
             for name in ("↻ Regenerate", "✏️ Edit last", "🧹 Clear", "⬇ Export / share")]
    tops = sorted(b["y"] for b in boxes)  # a popover's button sits a few pixels off a plain button's line
    rows = 1 + sum(later - earlier > boxes[0]["height"] / 2 for earlier, later in zip(tops, tops[1:], strict=False))
    assert rows <= 2, boxes  # not four (it was five) full-width buttons stacked
    assert all(b["width"] < 390 * 0.6 for b in boxes)
    screenshot(phone, "chat-phone")
    context.close()

    desktop = browser.new_context(viewport={"width": 1400, "height": 900})
    page = desktop.new_page()
    page.goto(app.url)
    page.wait_for_selector(IDLE, timeout=30_000)
    trash = page.locator("[data-testid='stSidebar'] button").filter(has_text="🗑").first
    sync_api.expect(trash).to_be_visible(timeout=20_000)
    clipped = trash.evaluate("b => b.scrollWidth > b.clientWidth + 1 || b.getBoundingClientRect().right > "
                             "b.closest('[data-testid=\"stSidebar\"]').getBoundingClientRect().right")
    assert not clipped, "the trash icon is clipped"
    trash.click()
    page.wait_for_selector(IDLE, timeout=30_000)
    sync_api.expect(page.get_by_text("Deleted “Hello from a phone”.")).to_be_visible(timeout=10_000)
    assert page.locator("[data-testid='stSidebar'] button").filter(has_text="Hello from a phone").count() == 0
    page.get_by_role("button", name="↩ Undo delete").click()
    page.wait_for_selector(IDLE, timeout=30_000)
    sync_api.expect(page.locator("[data-testid='stSidebar'] button").filter(has_text="Hello from a phone")).to_have_count(1)
    assert "Echo: Hello from a phone" in assistant_messages(page).last.inner_text()  # reopened, whole
    desktop.close()

"""Benchmark: time to first token in a real browser, PromptLab's chat page vs Streamlit's documented chat pattern.

Both apps (`streamlit run app.py` with its defaults, and `bench/documented_chat.py`) talk to the same loopback
OpenAI-compatible server, which runs in its own process. Chromium (Debian's, headless) types a message into each
app's chat box and presses Enter; a listener in the page notes the time of that keydown, and a MutationObserver
the moment the reply's first word, and later its last word, appears in the page. So the figure is what a user
sees: the rerun before the request, the request, and the rendering of the first delta.

Messages alternate between the apps (A, B, A, B, …) so machine noise hits both; each app keeps one conversation
that grows as in real use, and the database holds 30 earlier conversations, as for someone who has used the
tool for a while (`BENCH_FRESH=1` opens a new browser session for every message instead). Prints medians and `RESULT first_token_ratio <PromptLab median / documented median>`
(goal ≤ 1.2) and the last-token ratio beside it.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS, IDLE, StreamlitApp, free_port  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "16"))
SAVED_CONVERSATIONS = 30
WORDS = 400  # a reply long enough that its last word is clearly later than its first
KEY = "sk-bench-first-token-0000000000"

# Installed once per page: the Enter that sends, and the first/last word of the reply as they appear.
WATCH = """(marks) => {
    window.__t = {sent: null, first: null, last: null};
    const box = document.querySelector("[data-testid='stChatInput'] textarea");
    box.addEventListener("keydown", (e) => { if (e.key === "Enter") window.__t.sent = performance.now(); },
                         {capture: true, once: true});
    const seen = () => {
        const text = document.body.textContent;
        if (window.__t.first === null && text.includes(marks[0])) window.__t.first = performance.now();
        if (window.__t.last === null && text.includes(marks[1])) {
            window.__t.last = performance.now();
            observer.disconnect();
        }
    };
    const observer = new MutationObserver(seen);
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback_server", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # "loopback OpenAI-compatible server on …"
    return proc, f"http://127.0.0.1:{port}/v1"


def script_reply(base_url: str, reply: str) -> None:
    body = json.dumps([{"reply": reply}]).encode()
    req = urllib.request.Request(base_url.removesuffix("/v1") + "/_script", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def one_message(page, base_url: str, tag: str) -> tuple[float, float]:
    """Send one message; seconds from Enter to the reply's first and last word on screen."""
    first, last = f"{tag}alpha", f"{tag}omega"
    script_reply(base_url, " ".join([first] + [f"word{i}" for i in range(WORDS)] + [last]))
    page.wait_for_selector(IDLE, timeout=60_000)
    page.evaluate(WATCH, [first, last])
    page.locator("[data-testid='stChatInput'] textarea").fill(f"Question {tag}: what is the refund window?")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__t.last !== null", timeout=60_000)
    t = page.evaluate("() => window.__t")
    page.wait_for_selector(IDLE, timeout=60_000)  # the rerun after the reply (PromptLab saves, redraws)
    return (t["first"] - t["sent"]) / 1000, (t["last"] - t["sent"]) / 1000


def seed_conversations(db_url: str, user: str) -> None:
    """Earlier conversations, which the chat page lists in its sidebar."""
    from core.chat import conversation as chat
    from core.chat.personas import BUILT_IN
    from core.chat.store import ConversationStore

    store = ConversationStore(db_url)
    for i in range(SAVED_CONVERSATIONS):
        conversation = chat.new_conversation(BUILT_IN[0])
        for turn in range(3):
            chat.add_user_message(conversation, f"Earlier question {i}.{turn} about the refund policy?")
            conversation.messages.append(chat.Message(role="assistant", content="An earlier answer. " * 40))
        store.save(conversation, user)


def main() -> None:
    from playwright.sync_api import sync_playwright

    server, base_url = start_server()
    apps: dict[str, StreamlitApp] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url, "PROMPTLAB_DB_URL": f"sqlite:///{tmp}/b.db",
                   "PROMPTLAB_DATA_DIR": tmp, "PROMPTLAB_MODELS_DIR": str(ROOT / "data" / "models")}
            for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_ORG_ID", "PROMPTLAB_PROVIDER"):
                os.environ.pop(var, None)
            seed_conversations(env["PROMPTLAB_DB_URL"], os.environ.get("PROMPTLAB_USER", "local"))
            apps = {"promptlab": StreamlitApp(env), "documented": StreamlitApp(env, "bench/documented_chat.py")}
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                pages = {}
                for name, app in apps.items():
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.goto(app.url)
                    page.wait_for_selector("[data-testid='stChatInput'] textarea", timeout=60_000)
                    pages[name] = page
                fresh = os.environ.get("BENCH_FRESH") == "1"
                for run in range(RUNS + 1):  # run 0 warms imports, caches and connections
                    for name in (("promptlab", "documented") if run % 2 else ("documented", "promptlab")):
                        if fresh:
                            pages[name].close()
                            pages[name] = browser.new_page(viewport={"width": 1400, "height": 900})
                            pages[name].goto(apps[name].url)
                            pages[name].wait_for_selector("[data-testid='stChatInput'] textarea", timeout=60_000)
                        measured = one_message(pages[name], base_url, f"r{run}{name[0]}")
                        if run:
                            times[name].append(measured)
                browser.close()
    finally:
        for app in apps.values():
            app.stop()
        server.terminate()
    print(f"runs: {RUNS} per app (alternating), reply of {WORDS + 2} words")
    for name, values in times.items():
        firsts, lasts = [v[0] for v in values], [v[1] for v in values]
        print(f"{name:11s} first token median {statistics.median(firsts):.3f} s (min {min(firsts):.3f})   "
              f"last token median {statistics.median(lasts):.3f} s")
    ratio = statistics.median(v[0] for v in times["promptlab"]) / statistics.median(v[0] for v in times["documented"])
    last_ratio = (statistics.median(v[1] for v in times["promptlab"])
                  / statistics.median(v[1] for v in times["documented"]))
    print(f"last_token_ratio {last_ratio:.2f}")
    print(f"RESULT first_token_ratio {ratio:.2f}")


if __name__ == "__main__":
    main()

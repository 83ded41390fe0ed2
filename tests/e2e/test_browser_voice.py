"""A voice round trip in a real browser: Chromium's fake microphone plays a WAV file into Chat's `st.audio_input`
(`--use-file-for-fake-audio-capture`, permission granted by `--use-fake-ui-for-media-stream`), the transcript is
edited and sent, the reply arrives, 🔊 Play reads it aloud into an <audio> element, and the call log holds one
transcription, one chat and one speech row, each with its endpoint and its cost (or unpriced)."""
from __future__ import annotations

import io
import math
import os
import struct
import wave

import pytest

from core.calls.log import CallLog
from tests.browser import CHROMIUM, CHROMIUM_ARGS, IDLE, StreamlitApp, screenshot
from tests.loopback_server import Script

if not os.path.exists(CHROMIUM) and os.environ.get("PROMPTLAB_SKIP_BROWSER") == "1":
    pytest.skip("PROMPTLAB_SKIP_BROWSER=1 and no Chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def tone_wav(seconds: float = 4.0, rate: int = 48_000) -> bytes:
    """A 440 Hz tone as 16-bit mono PCM: what Chromium's fake capture device plays (in a loop) as the mic."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                               for i in range(int(seconds * rate))))
    return out.getvalue()


@pytest.fixture
def mic_browser(tmp_path):
    """A Chromium whose microphone is a WAV file, allowed without a prompt."""
    wav = tmp_path / "question.wav"
    wav.write_bytes(tone_wav())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}"])
        yield browser
        browser.close()


def test_voice_round_trip_leaves_a_transcription_a_chat_and_a_speech_row(mic_browser, app_env, server):
    server.push(Script(path="/v1/audio/transcriptions", reply="What is the capitol of France?"))
    running = StreamlitApp(app_env)
    context = mic_browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["microphone"])
    try:
        page = context.new_page()
        page.goto(running.url)
        page.wait_for_selector(IDLE, timeout=60_000)
        mic = page.locator("[data-testid='stAudioInput']")
        mic.get_by_role("button", name="Record").click()
        page.wait_for_timeout(1500)  # the fake device plays the file into the recording meanwhile
        mic.get_by_role("button", name="Stop recording").click()
        draft = page.locator("textarea[aria-label='Transcript (edit before sending)']")
        draft.wait_for(timeout=30_000)
        page.wait_for_selector(IDLE, timeout=30_000)
        assert draft.input_value() == "What is the capitol of France?"
        draft.fill("What is the capital of France?")
        page.keyboard.press("Tab")  # the edit reaches the server before Send
        page.wait_for_selector(IDLE, timeout=30_000)
        page.get_by_role("button", name="➤ Send").click()
        page.wait_for_selector("[data-testid='stChatMessage'] >> text=Echo: What is the capital of France?",
                               timeout=30_000)
        page.wait_for_selector(IDLE, timeout=30_000)
        page.get_by_role("button", name="🔊 Play").click()
        page.wait_for_selector("[data-testid='stChatMessage'] audio", state="attached", timeout=30_000)
        page.wait_for_selector(IDLE, timeout=30_000)
        # The browser can play what the speech call returned: its length is known once the media loads.
        page.wait_for_function("""() => { const a = document.querySelector("[data-testid='stChatMessage'] audio");
                                          return !!a && a.readyState >= 1 && a.duration > 0; }""", timeout=30_000)
        assert page.locator("[data-testid='stException']").count() == 0
        screenshot(page, "chat-voice")

        uploads = [r for r in server.requests if r["path"] == "/v1/audio/transcriptions"]
        assert len(uploads) == 1
        recorded = uploads[0]["body"]["_files"]["file"][0]
        assert recorded["size"] > 1000  # a real recording from the fake microphone, not an empty WAV
        assert [r["body"]["messages"][-1]["content"] for r in server.requests
                if r["path"] == "/v1/chat/completions"] == ["What is the capital of France?"]
        calls = {r.endpoint: r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(20) if r.endpoint != "models"}
        assert set(calls) == {"audio.transcriptions", "chat.completions", "audio.speech"}
        assert all(c.status == "ok" for c in calls.values())
        # A compatible server: genai-prices has no list for it, so each is unpriced (None), never a silent $0.
        assert [calls[e].cost_usd for e in ("audio.transcriptions", "chat.completions", "audio.speech")] == \
            [None, None, None]
        assert calls["audio.transcriptions"].model == "whisper-1" and calls["audio.speech"].model == "tts-1"
    finally:
        context.close()
        running.stop()

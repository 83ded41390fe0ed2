"""AppTest of Chat's voice: the microphone's recording transcribed into an editable draft that Send submits through
the chat's own path, the bad inputs (empty recording, failures, the offline model), and 🔊 Play on a reply."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from tests.loopback_server import Script, tiny_wav

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def at(app_env) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=30)
    app.run()
    assert not app.exception
    return app


def rows(db_url: str) -> list[tuple[str, str]]:
    """(endpoint, status) of the calls to a model (the model picker's list of models left out)."""
    return sorted((r.endpoint, r.status) for r in CallLog(db_url).recent(100) if r.endpoint != "models")


def record(at: AppTest, data: bytes) -> AppTest:
    at.audio_input[0].upload("recording.wav", data).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def audio_elements(at: AppTest) -> list:
    return [e for e in at.main.get("audio")]


def test_a_recording_becomes_an_editable_draft_that_send_submits(at, server, app_env):
    server.push(Script(path="/v1/audio/transcriptions", reply="What is the capitol of France?"))
    record(at, tiny_wav(1.5))
    assert at.text_area(key="chat_voice_text").value == "What is the capitol of France?"
    assert not at.chat_message  # nothing sent yet: the text waits to be checked
    at.text_area(key="chat_voice_text").set_value("What is the capital of France?")
    button(at, "➤ Send").click().run()
    assert not at.exception, at.exception
    assert [(m.name, m.markdown[0].value) for m in at.chat_message] == [
        ("user", "What is the capital of France?"), ("assistant", "Echo: What is the capital of France?")]
    sent = [r for r in server.requests if r["path"] == "/v1/audio/transcriptions"][0]["body"]
    assert sent["model"] == "whisper-1"  # the default on a compatible server
    assert rows(app_env["PROMPTLAB_DB_URL"]) == [("audio.transcriptions", "ok"), ("chat.completions", "ok")]
    # The draft is gone and the microphone is a new, empty one.
    assert not [t for t in at.text_area if t.key == "chat_voice_text"]
    assert at.audio_input[0].value is None


def test_an_empty_recording_is_one_sentence_and_no_call(at, server, app_env):
    record(at, tiny_wav(0.0))
    assert [e.value for e in at.error] == ["The recording is empty: record again and speak before stopping."]
    assert rows(app_env["PROMPTLAB_DB_URL"]) == []
    assert not [r for r in server.requests if r["path"].startswith("/v1/audio")]


@pytest.mark.parametrize("fault", [{"status": 401}, {"status": 429, "retry_after": "1"}, {"status": 500},
                                   {"first_byte_delay": 6.0}], ids=["401", "429", "500", "timeout"])
def test_a_failed_transcription_is_one_sentence_logged_and_can_be_retried(at, server, app_env, fault):
    server.push(Script(path="/v1/audio/transcriptions", **fault))  # the app's timeout is 5 s (app_env)
    record(at, tiny_wav(1.0))
    assert len(at.error) == 1 and "Traceback" not in at.error[0].value
    assert rows(app_env["PROMPTLAB_DB_URL"]) == [("audio.transcriptions", "error")]
    button(at, "↻ Transcribe again").click().run()  # the recording was kept: nothing to record again
    assert not at.error and at.text_area(key="chat_voice_text").value == "Transcribed loopback audio"
    assert rows(app_env["PROMPTLAB_DB_URL"]) == [("audio.transcriptions", "error"), ("audio.transcriptions", "ok")]


def test_the_offline_model_says_voice_needs_a_server_with_audio(offline_env):
    at = AppTest.from_file(APP, default_timeout=30).run()
    record(at, tiny_wav(1.0))
    [error] = [e.value for e in at.error]
    assert "offline model cannot hear recordings" in error and "Whisper-compatible server" in error
    assert rows(offline_env["PROMPTLAB_DB_URL"]) == []


def test_play_reads_a_reply_aloud_once_per_voice(at, server, app_env):
    at.chat_input[0].set_value("Hello there").run()
    assert not audio_elements(at)
    button(at, "🔊 Play").click().run()
    assert not at.exception, at.exception
    assert len(audio_elements(at)) == 1
    speech = [r for r in server.requests if r["path"] == "/v1/audio/speech"]
    assert [(s["body"]["input"], s["body"]["voice"]) for s in speech] == [("Echo: Hello there", "alloy")]
    at.run()  # a rerun draws the audio again from the session, without a second call
    assert len(audio_elements(at)) == 1
    assert len([r for r in server.requests if r["path"] == "/v1/audio/speech"]) == 1
    at.selectbox(key="chat_voice").set_value("nova").run()
    button(at, "🔊 Play").click().run()
    assert [r["body"]["voice"] for r in server.requests if r["path"] == "/v1/audio/speech"] == ["alloy", "nova"]
    assert rows(app_env["PROMPTLAB_DB_URL"]).count(("audio.speech", "ok")) == 2


def test_a_failed_play_is_one_sentence_and_the_reply_stays(at, server, app_env):
    at.chat_input[0].set_value("Hello there").run()
    server.push(Script(path="/v1/audio/speech", status=500))
    button(at, "🔊 Play").click().run()
    assert len(at.error) == 1 and not audio_elements(at)
    assert at.chat_message[1].markdown[0].value == "Echo: Hello there"
    assert ("audio.speech", "error") in rows(app_env["PROMPTLAB_DB_URL"])

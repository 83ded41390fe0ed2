"""Voice in: a recording transcribed through the gate against the loopback server (one priced call row), failures
as one sentence without the key, an empty recording refused before any call."""
from __future__ import annotations

import pytest

from core.base.errors import PromptLabError
from core.calls.gate import CallContext
from core.chat.voice import check_recording, speak, transcribe
from core.llm.providers import Provider
from tests.conftest import TEST_KEY
from tests.loopback_server import Script, tiny_wav


def _openai(server) -> Provider:
    return Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)


def test_transcription_leaves_one_priced_call_row(server, log):
    server.push(Script(path="/v1/audio/transcriptions", reply="What is the capital of France?"))
    transcript = transcribe(_openai(server), check_recording(tiny_wav(2.0)), CallContext("chat"), log)
    assert transcript.text == "What is the capital of France?"
    rows = log.recent(5)
    assert len(rows) == 1
    row = rows[0]
    assert row.request_id == transcript.request_id and row.page == "chat" and row.status != "error"
    assert "endpoint:audio.transcriptions" in row.tags and row.model == "gpt-4o-mini-transcribe"
    # 20 audio tokens at $3/M + 6 output tokens at $5/M (genai-prices' list for gpt-4o-mini-transcribe)
    assert row.cost_usd == pytest.approx(20 * 3e-6 + 6 * 5e-6)


def test_unknown_transcription_model_is_unpriced_not_free(server, log):
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    transcribe(provider, check_recording(tiny_wav(1.0)), CallContext("chat"), log, model="my-whisper")
    assert log.recent(1)[0].cost_usd is None


@pytest.mark.parametrize("script, kind", [
    (Script(path="/v1/audio/transcriptions", status=429, retry_after="2"), "rate_limited"),
    (Script(path="/v1/audio/transcriptions", status=500), None),
])
def test_transcription_failure_is_one_sentence_and_logged(server, log, script, kind):
    server.push(script)
    with pytest.raises(PromptLabError) as info:
        transcribe(_openai(server), check_recording(tiny_wav(1.0)), CallContext("chat"), log)
    assert info.value.message and "\n" not in info.value.message and "Traceback" not in info.value.message
    if kind:
        assert info.value.kind == kind
    row = log.recent(1)[0]
    assert row.status == "error" and "endpoint:audio.transcriptions" in row.tags


def test_wrong_key_never_appears_in_the_error_or_the_log(server, log):
    bad = Provider("openai", server.base_url, "sk-wrongwrongwrong123456", timeout_s=5, max_retries=0)
    with pytest.raises(PromptLabError) as info:
        transcribe(bad, check_recording(tiny_wav(1.0)), CallContext("chat"), log)
    assert "sk-wrongwrongwrong123456" not in info.value.message
    assert "sk-wrongwrongwrong123456" not in (log.recent(1)[0].error_message or "")


@pytest.mark.parametrize("data", [b"", tiny_wav(0.0)], ids=["no-bytes", "header-only-wav"])
def test_zero_length_recording_refused_with_no_call(server, log, data):
    with pytest.raises(PromptLabError) as info:
        transcribe(_openai(server), check_recording(data), CallContext("chat"), log)
    assert info.value.kind == "empty_recording" and "empty" in info.value.message
    assert log.recent(5) == [] and server.requests == []


def test_offline_model_has_no_audio(log):
    with pytest.raises(PromptLabError) as info:
        transcribe(Provider("local"), check_recording(tiny_wav(1.0)), CallContext("chat"), log)
    assert info.value.kind == "no_audio" and "offline model" in info.value.message
    assert log.recent(5) == []


def test_speech_leaves_one_call_row_priced_per_character(server, log):
    text = "Paris is the capital of France."
    speech = speak(_openai(server), text, CallContext("chat"), log, voice="coral", response_format="wav")
    assert speech.mime == "audio/wav" and speech.audio.startswith(b"RIFF")
    sent = server.requests[-1]["body"]
    assert (sent["voice"], sent["model"], sent["input"]) == ("coral", "tts-1", text)
    row = log.recent(5)
    assert len(row) == 1 and "endpoint:audio.speech" in row[0].tags and row[0].model == "tts-1"
    assert row[0].cost_usd == pytest.approx(15 * len(text) / 1_000_000)  # tts-1: $15 per million characters


def test_speech_by_audio_tokens_is_unpriced_not_free(server, log):
    speak(_openai(server), "Hello", CallContext("chat"), log, model="gpt-4o-mini-tts")
    assert log.recent(1)[0].cost_usd is None


def test_speech_failure_is_one_sentence_and_logged(server, log):
    server.push(Script(path="/v1/audio/speech", status=500))
    with pytest.raises(PromptLabError) as info:
        speak(_openai(server), "Hello", CallContext("chat"), log)
    assert info.value.kind == "server_error" and "\n" not in info.value.message
    assert log.recent(1)[0].status == "error" and "endpoint:audio.speech" in log.recent(1)[0].tags


def test_offline_model_cannot_speak(log):
    with pytest.raises(PromptLabError) as info:
        speak(Provider("local"), "Hello", CallContext("chat"), log)
    assert info.value.kind == "no_audio" and log.recent(5) == []

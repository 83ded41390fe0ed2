"""The loopback server's audio routes answer in the shapes the real openai SDK parses (transcriptions, speech)."""
from __future__ import annotations

import io
import wave

import openai

from tests.conftest import TEST_KEY
from tests.loopback_server import Script, tiny_wav


def _client(server) -> openai.OpenAI:
    return openai.OpenAI(api_key=TEST_KEY, base_url=server.base_url, max_retries=0)


def test_transcription_json_has_token_usage_for_4o_transcribe(server):
    server.push(Script(path="/v1/audio/transcriptions", reply="What is the capital of France?"))
    result = _client(server).audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("question.wav", tiny_wav(2.0), "audio/wav"))
    assert result.text == "What is the capital of France?"
    assert result.usage is not None and result.usage.type == "tokens"
    assert result.usage.input_token_details.audio_tokens == 20
    sent = server.requests[-1]["body"]
    assert sent["model"] == "gpt-4o-mini-transcribe"
    assert sent["_files"]["file"][0]["filename"] == "question.wav"


def test_transcription_whisper_usage_in_seconds_and_plain_text(server):
    result = _client(server).audio.transcriptions.create(model="whisper-1", file=("a.wav", tiny_wav(1.5)))
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 2
    text = _client(server).audio.transcriptions.create(model="whisper-1", file=("a.wav", tiny_wav(1.0)),
                                                       response_format="text")
    assert str(text).strip() == "Transcribed loopback audio"


def test_transcription_faults_are_scriptable(server):
    server.push(Script(path="/v1/audio/transcriptions", status=429, retry_after="3"))
    try:
        _client(server).audio.transcriptions.create(model="whisper-1", file=("a.wav", tiny_wav(1.0)))
    except openai.RateLimitError as exc:
        assert exc.response.headers["Retry-After"] == "3"
    else:
        raise AssertionError("the scripted 429 was not sent")


def test_speech_returns_playable_audio_and_records_the_request(server):
    client = _client(server)
    with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="coral", input="Hello there", response_format="wav") as response:
        data = response.read()
        assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnframes() > 0
    sent = server.requests[-1]["body"]
    assert (sent["voice"], sent["model"], sent["input"]) == ("coral", "gpt-4o-mini-tts", "Hello there")

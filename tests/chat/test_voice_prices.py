"""Voice calls priced per minute / per character / per audio token: genai-prices where it knows the model
(whisper-1 per minute, tts-1 per character, gpt-4o-mini-transcribe per token), custom prices (Settings, prices file)
where it does not or to override it, and unpriced — never $0 — when neither has it."""
from __future__ import annotations

import pytest

from core.calls.gate import CallContext
from core.chat.voice import check_recording, speak, transcribe
from core.llm import custom_prices
from core.llm.providers import Provider
from tests.conftest import ADMIN, TEST_KEY
from tests.loopback_server import tiny_wav


@pytest.fixture(autouse=True)
def no_prices_left_over():
    custom_prices.install([])
    custom_prices._loaded.clear()
    yield
    custom_prices.install([])
    custom_prices._loaded.clear()


def _provider(server, kind: str = "openai") -> Provider:
    return Provider(kind, server.base_url, TEST_KEY, timeout_s=5, max_retries=0)


def test_whisper_is_priced_per_minute_from_genai_prices(server, log):
    # The loopback server reports whisper usage in whole seconds, as OpenAI does: 1.5 s of audio -> 2 s.
    transcribe(_provider(server), check_recording(tiny_wav(1.5)), CallContext("chat"), log, model="whisper-1")
    row = log.recent(1)[0]
    assert row.endpoint == "audio.transcriptions"
    assert row.cost_usd == pytest.approx(0.006 * 2 / 60)  # $0.006 per minute


def test_a_per_minute_custom_price_covers_a_compatible_whisper_server(server, log):
    provider = _provider(server, "compatible")
    transcribe(provider, check_recording(tiny_wav(3.0)), CallContext("chat"), log, model="whisper-large-v3")
    assert log.recent(1)[0].cost_usd is None  # unknown to genai-prices, no custom price: unpriced, not $0
    price = custom_prices.CustomPrice.checked({"provider": "compatible", "model": "whisper-large-v3",
                                               "per_audio_minute": 0.01})
    assert (price.input_per_mtok, price.output_per_mtok) == (0.0, 0.0)  # an audio price needs no token prices
    custom_prices.save(log.engine, [price], actor=ADMIN)
    transcribe(provider, check_recording(tiny_wav(3.0)), CallContext("chat"), log, model="whisper-large-v3")
    assert log.recent(1)[0].cost_usd == pytest.approx(0.01 * 3 / 60)


def test_a_per_audio_token_custom_price_overrides_the_list_price(server, log):
    custom_prices.save(log.engine, [custom_prices.CustomPrice.checked({
        "provider": "openai", "model": "gpt-4o-mini-transcribe", "audio_input_per_mtok": 1.0,
        "input_per_mtok": 0.0, "output_per_mtok": 2.0})], actor=ADMIN)
    transcribe(_provider(server), check_recording(tiny_wav(2.0)), CallContext("chat"), log)
    row = log.recent(1)[0]
    # 20 audio tokens at $1/M + 3 output tokens ("Transcribed loopback audio") at $2/M
    assert row.cost_usd == pytest.approx((20 * 1.0 + 3 * 2.0) / 1e6)


def test_a_per_character_custom_price_covers_speech_and_none_leaves_it_unpriced(server, log):
    provider = _provider(server, "compatible")
    speak(provider, "Hello there", CallContext("chat"), log, model="kokoro")
    assert log.recent(1)[0].cost_usd is None
    custom_prices.save(log.engine, [custom_prices.CustomPrice.checked(
        {"provider": "compatible", "model": "kokoro", "per_mchars": 20.0})], actor=ADMIN)
    speak(provider, "Hello there", CallContext("chat"), log, model="kokoro")
    row = log.recent(1)[0]
    assert (row.endpoint, row.cost_usd) == ("audio.speech", pytest.approx(20.0 * len("Hello there") / 1e6))


def test_a_price_without_token_or_audio_prices_is_still_refused():
    with pytest.raises(ValueError, match="input_per_mtok"):
        custom_prices.CustomPrice.checked({"provider": "compatible", "model": "m"})
    with pytest.raises(ValueError, match="per_audio_minute"):
        custom_prices.CustomPrice.checked({"provider": "compatible", "model": "m", "per_audio_minute": -1})


def test_repricing_leaves_audio_rows_alone(server, log):
    provider = _provider(server, "compatible")
    transcribe(provider, check_recording(tiny_wav(1.0)), CallContext("chat"), log, model="echo-1")
    custom_prices.save(log.engine, [custom_prices.CustomPrice(provider="compatible", model="echo-1",
                                                              input_per_mtok=1.0, output_per_mtok=1.0)], actor=ADMIN)
    assert log.recent(1)[0].cost_usd is None  # token prices do not price a recording's minutes


def test_a_reply_longer_than_the_speech_limit_is_read_up_to_it_and_priced_for_what_was_sent(server, log):
    from core.chat.voice import SPEECH_MAX_CHARS

    text = "word " * 1200  # 6,000 characters: the API takes 4,096
    speech = speak(_provider(server), text, CallContext("chat"), log, model="tts-1")
    sent = [r for r in server.requests if r["path"] == "/v1/audio/speech"][-1]["body"]["input"]
    assert speech.truncated and sent == text[:SPEECH_MAX_CHARS]
    assert log.recent(1)[0].cost_usd == pytest.approx(15.0 * SPEECH_MAX_CHARS / 1e6)  # tts-1: $15 per 1M chars

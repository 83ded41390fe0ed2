"""Voice in: a recording measured (length from its WAV header), refused when empty, and transcribed through the
gate (`audio.transcriptions`) as one logged, priced call."""
from __future__ import annotations

import io
import wave
from dataclasses import dataclass, replace
from typing import Any

from genai_prices import Usage, calc_price

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.calls.gate import CallContext, logged_call
from core.calls.log import CallLog, CallRecord, CallTexts
from core.llm import custom_prices
from core.llm.providers import Provider

TRANSCRIPTION_ENDPOINT = "audio.transcriptions"
DEFAULT_TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe"
WHISPER_MODEL = "whisper-1"  # what Whisper-compatible servers (faster-whisper, LocalAI, vLLM…) answer to


def default_transcribe_model(provider_kind: str) -> str:
    """The transcription model to offer first: OpenAI's (and Azure's) gpt-4o-mini-transcribe; `whisper-1` on a
    compatible server, where that is the name Whisper-compatible servers know."""
    return WHISPER_MODEL if provider_kind == "compatible" else DEFAULT_TRANSCRIBE_MODEL


@dataclass(frozen=True)
class Recording:
    """A recording that passed the checks: its bytes, file name and length in seconds (None when the format
    could not be measured)."""

    data: bytes
    filename: str
    seconds: float | None


@dataclass(frozen=True)
class Transcript:
    """What a recording said, and the call that heard it."""

    text: str
    request_id: str
    cost_usd: float | None


def _wav_seconds(data: bytes) -> float | None:
    """The length of a WAV by its header; None when the bytes are not a WAV (another format: not measured)."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate = w.getframerate()
            return w.getnframes() / float(rate) if rate else 0.0
    except (wave.Error, EOFError):
        return None


def check_recording(data: bytes | None, filename: str = "recording.wav") -> Recording:
    """The recording as one to send, or PromptLabError with one sentence when it holds no sound: no bytes, or a
    WAV whose header says zero frames (what a microphone gives when it was stopped at once). No call is made."""
    empty = PromptLabError("empty_recording", _("The recording is empty: record again and speak before stopping."))
    if not data:
        raise empty
    seconds = _wav_seconds(data)
    if seconds is not None and seconds <= 0:
        raise empty
    return Recording(data, filename, seconds)


def transcription_cost(model: str, usage: Any, pricing_id: str | None, seconds: float | None = None) -> float | None:
    """USD for a transcription from the usage the API reported — tokens (gpt-4o*-transcribe: audio tokens at the
    audio rate) or seconds (whisper-1), else the recording's own length — by a custom price (Settings: per minute
    or per 1M audio tokens), else genai-prices; None (unpriced, never $0) when neither prices it."""
    tokens = usage if getattr(usage, "type", None) == "tokens" else None
    if getattr(usage, "type", None) == "duration" and getattr(usage, "seconds", None) is not None:
        seconds = float(usage.seconds)
    details = getattr(tokens, "input_token_details", None)
    audio = int(getattr(details, "audio_tokens", None) or 0)
    custom = custom_prices.audio_price(pricing_id, model)
    if custom is not None:
        if custom.per_audio_minute is not None and seconds is not None:
            return custom.per_audio_minute * seconds / 60
        if custom.audio_input_per_mtok is not None and tokens is not None:
            return (audio * custom.audio_input_per_mtok + (tokens.input_tokens - audio) * custom.input_per_mtok
                    + tokens.output_tokens * custom.output_per_mtok) / 1_000_000
        return None
    if pricing_id is None:
        return None
    try:
        if tokens is not None:
            price = calc_price(Usage(input_tokens=tokens.input_tokens, input_audio_tokens=audio or None,
                                     output_tokens=tokens.output_tokens), model, provider_id=pricing_id)
            return float(price.total_price)
        listed = calc_price(Usage(input_tokens=1), model, provider_id=pricing_id).model_price
        # Priced by the hour (whisper-1: $0.36/h, $0.006/min) and a length known: that; else a per-token model with
        # no tokens reported, which seconds cannot price — unpriced, not $0.
        if seconds is None or (getattr(listed, "input_audio_hours", None) is None
                               and getattr(listed, "audio_hours", None) is None):
            return None
        return float(calc_price(Usage(audio_seconds=seconds, input_audio_seconds=seconds), model,
                                provider_id=pricing_id).total_price)
    except (LookupError, ValueError):
        return None


def transcribe(provider: Provider, recording: Recording, context: CallContext, log: CallLog,
               model: str = DEFAULT_TRANSCRIBE_MODEL) -> Transcript:
    """The recording's text through the gate: one CallRecord tagged with the endpoint; PromptLabError (one
    sentence, the key scrubbed) on failure."""
    if provider.kind == "local":
        raise PromptLabError("no_audio", _("The offline model cannot hear recordings: add an OpenAI key in Settings "
                                           "(or point OPENAI_BASE_URL at a Whisper-compatible server)."))
    context = replace(context, tags=[*context.tags, f"endpoint:{TRANSCRIPTION_ENDPOINT}"])

    def describe(result: Any, record: CallRecord) -> None:
        usage = getattr(result, "usage", None)
        record.model = model
        if usage is not None and getattr(usage, "type", None) == "tokens":
            record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
        record.cost_usd = transcription_cost(model, usage, provider.pricing_id, recording.seconds)

    custom_prices.ensure_loaded(log.engine)
    result, record = logged_call(
        provider, context, log,
        lambda c: c.audio.transcriptions.create(model=model, file=(recording.filename, recording.data)),
        model=model, operation="audio", describe=describe, endpoint=TRANSCRIPTION_ENDPOINT,
        texts=CallTexts({"audio.transcriptions": {"model": model, "bytes": len(recording.data),
                                                  "seconds": recording.seconds}}))
    return Transcript(str(getattr(result, "text", "") or ""), record.request_id, record.cost_usd)


SPEECH_ENDPOINT = "audio.speech"
DEFAULT_SPEECH_MODEL = "tts-1"
# OpenAI's voices; ballad and verse are gpt-4o-mini-tts's only (tts-1 answers 400 for them: one sentence).
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
_SPEECH_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg", "aac": "audio/aac",
                "flac": "audio/flac", "pcm": "audio/pcm"}


@dataclass(frozen=True)
class Speech:
    """A reply read aloud: the audio, its MIME type, and the call that made it."""

    audio: bytes
    mime: str
    request_id: str
    cost_usd: float | None
    truncated: bool = False  # the text was longer than /audio/speech takes: its start was read


SPEECH_MAX_CHARS = 4096  # OpenAI's limit on /audio/speech input; a longer reply is read up to it


def speech_cost(model: str, text: str, pricing_id: str | None) -> float | None:
    """USD for speech priced per character: a custom price per 1M characters (Settings), else genai-prices'
    `input_mchars` (tts-1, tts-1-hd); None (unpriced) for a model priced by audio tokens the API does not report
    back (gpt-4o-mini-tts) or one neither knows — an estimate of the text alone would read cheaper than the bill."""
    custom = custom_prices.audio_price(pricing_id, model)
    if custom is not None:
        return custom.per_mchars * len(text) / 1_000_000 if custom.per_mchars is not None else None
    if pricing_id is None:
        return None
    try:
        price = calc_price(Usage(input_tokens=1), model, provider_id=pricing_id).model_price
    except LookupError:
        return None
    per_million = getattr(price, "input_mchars", None)
    return float(per_million) * len(text) / 1_000_000 if per_million is not None else None


def speak(provider: Provider, text: str, context: CallContext, log: CallLog, voice: str = "alloy",
          model: str = DEFAULT_SPEECH_MODEL, response_format: str = "mp3") -> Speech:
    """The text as audio through the gate: one CallRecord tagged with the endpoint; PromptLabError on failure."""
    if provider.kind == "local":
        raise PromptLabError("no_audio", _("The offline model cannot read replies aloud: add an OpenAI key in "
                                           "Settings (or point OPENAI_BASE_URL at a server with /audio/speech)."))
    if not text.strip():
        raise PromptLabError("bad_request", _("There is no text to read aloud."))
    truncated = len(text) > SPEECH_MAX_CHARS
    text = text[:SPEECH_MAX_CHARS]  # the API refuses more (400); the start of a long reply is what a listener wants
    context = replace(context, tags=[*context.tags, f"endpoint:{SPEECH_ENDPOINT}"])

    def call(client: Any) -> bytes:
        with client.audio.speech.with_streaming_response.create(
                model=model, voice=voice, input=text, response_format=response_format) as response:
            return bytes(response.read())

    def describe(audio: bytes, record: CallRecord) -> None:
        record.model = model
        record.cost_usd = speech_cost(model, text, provider.pricing_id)

    custom_prices.ensure_loaded(log.engine)

    audio, record = logged_call(provider, context, log, call, model=model, operation="audio", describe=describe,
                                endpoint=SPEECH_ENDPOINT,
                                texts=CallTexts({"audio.speech": {"model": model, "voice": voice,
                                                                  "format": response_format, "input": text}}))
    if not audio:
        raise PromptLabError("malformed", _("The provider answered without audio: try again."))
    return Speech(audio, _SPEECH_MIME.get(response_format, "application/octet-stream"), record.request_id,
                  record.cost_usd, truncated)

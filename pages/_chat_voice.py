"""The chat page's voice: a microphone whose recording is transcribed (one core call) into an editable text that
Send submits as the next message, and a play button on each reply (one core call, cached per reply and voice)."""
from __future__ import annotations

import hashlib

import streamlit as st

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.chat import voice
from pages._workbench import Workbench

SPEECH_CACHE = 20  # replies whose audio a session keeps (a rerun or a second play costs nothing)


def transcribe_model(wb: Workbench) -> str:
    return str(st.session_state.get("chat_transcribe_model") or voice.default_transcribe_model(wb.provider.kind))


def speech_model() -> str:
    return str(st.session_state.get("chat_speech_model") or voice.DEFAULT_SPEECH_MODEL)


def _transcribe(wb: Workbench, data: bytes) -> None:
    """The recording's text into the draft box, or the one sentence why not (the recording stays in the widget,
    so nothing is lost: Transcribe again reuses it)."""
    state = st.session_state
    state.pop("chat_voice_error", None)
    try:
        recording = voice.check_recording(data)  # empty: refused here, no call made
        with st.spinner(_("Transcribing…")):
            transcript = voice.transcribe(wb.provider, recording, wb.context("chat", ["voice"]), wb.log,
                                          model=transcribe_model(wb))
    except PromptLabError as err:
        state.chat_voice_error = err.message
        return
    state.chat_voice_text = transcript.text  # the box is drawn after this, in this run: it shows the text
    state.chat_voice_draft = True


def voice_message(wb: Workbench) -> str | None:
    """Draw the microphone and, after a recording, its transcript to edit; returns the text when Send is clicked
    (then the microphone starts afresh)."""
    state = st.session_state
    n = state.setdefault("chat_mic_n", 0)
    recording = st.audio_input(_("🎙 Speak a message"), key=f"chat_mic_{n}",
                               help=_("Transcribed with {model}; you can edit the text before sending.").format(
                                   model=transcribe_model(wb)))
    if recording is not None and state.get("chat_mic_seen") != recording.file_id:
        state.chat_mic_seen = recording.file_id  # transcribed once per recording, not on every rerun
        _transcribe(wb, recording.getvalue())
    if state.get("chat_voice_error"):
        st.error(state.chat_voice_error)
        if recording is not None and st.button(_("↻ Transcribe again"), key="chat_voice_retry"):
            _transcribe(wb, recording.getvalue())
            st.rerun()
    if not state.get("chat_voice_draft"):
        return None
    text = st.text_area(_("Transcript (edit before sending)"), key="chat_voice_text", height=80)
    send, discard = st.columns([1, 1])
    if discard.button(_("✖ Discard"), key="chat_voice_discard", width="stretch"):
        _reset(state)
        st.rerun()
    if send.button(_("➤ Send"), key="chat_voice_send", type="primary", width="stretch", disabled=not text.strip()):
        _reset(state)
        return text
    return None


def _reset(state) -> None:
    state.chat_voice_draft = False
    state.pop("chat_voice_error", None)
    state.chat_mic_n = state.get("chat_mic_n", 0) + 1  # a new, empty microphone


def play_button(wb: Workbench, text: str, key: str) -> None:
    """🔊 under a reply: read aloud in the chosen voice. The audio is kept per (reply, voice, model) in the
    session, so a rerun draws it again without a second call; it plays by itself only right after the click."""
    if not text.strip():
        return
    chosen, model = str(st.session_state.get("chat_voice") or voice.VOICES[0]), speech_model()
    cache: dict[tuple[str, str, str], tuple[bytes, str, bool]] = st.session_state.setdefault("chat_speech", {})
    cache_key = (hashlib.sha256(text.encode()).hexdigest(), chosen, model)
    just_made = False
    if cache_key not in cache:
        if not st.button(_("🔊 Play"), key=f"chat_play_{key}", help=_("Read this reply aloud ({voice}, {model})")
                         .format(voice=chosen, model=model)):
            return
        try:
            with st.spinner(_("Reading aloud…")):
                speech = voice.speak(wb.provider, text, wb.context("chat", ["voice"]), wb.log, voice=chosen,
                                     model=model)
        except PromptLabError as err:
            st.error(err.message)
            return
        while len(cache) >= SPEECH_CACHE:
            cache.pop(next(iter(cache)))
        cache[cache_key] = (speech.audio, speech.mime, speech.truncated)
        just_made = True
    audio, mime, truncated = cache[cache_key]
    st.audio(audio, format=mime, autoplay=just_made)
    if truncated:
        st.caption(_("Read up to its first {n:,} characters (the speech endpoint's limit).").format(
            n=voice.SPEECH_MAX_CHARS))

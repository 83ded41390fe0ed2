"""The chat page's sidebar: model, sampling, persona, counters and the conversation list."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.base import i18n
from core.base.i18n import _
from core.chat import conversation as chat
from core.chat import turn as chat_turn
from core.chat import voice
from core.chat.personas import CUSTOM_ID, LANGUAGES, language_label
from core.formats.rendering import model_markdown, plain
from core.llm.responses_api import choose_api
from core.records import report
from pages._widgets import model_picker
from pages._workbench import Workbench

DEFAULT_TEMPERATURE = 0.7


def export_menu(conv: chat.Conversation, wb: Workbench) -> None:
    """The conversation's files, in one popover of the action row (drawn by the page, not in the sidebar)."""
    st.download_button(_("🔗 Share as one HTML file"), i18n.deferred(lambda: report.conversation_report(conv, wb.secrets).html),
                       chat.export_name(conv, "html"), "text/html", key="share_html",
                       help=_("Opens offline in any browser; keys and personal data are left out."))
    st.download_button(_("⬇ Markdown"), chat.export_markdown(conv), chat.export_name(conv, "md"), "text/markdown")
    st.download_button(_("⬇ JSON"), chat.export_json(conv), chat.export_name(conv, "json"), "application/json")


def draw_sidebar(wb: Workbench, conv: chat.Conversation, plan: chat.ContextPlan, persona_names: dict[str, str],
                 start_new_conversation: Callable[[], None],
                 open_conversation: Callable[[chat.Conversation], None]) -> None:
    """Model, sampling, persona, counters and the conversation list. Drawn after the main area: a message sent
    reruns the page, and every element drawn before the reply is one more message the browser handles before the
    first token shows (30 conversations alone are 150). A run that streams a reply ends in `st.rerun()` before
    this point, so the sidebar of the run before stays on screen until the next run redraws it."""
    with st.sidebar:
        model_picker(wb, key="chat_model")
        st.slider(_("Temperature"), 0.0, 2.0, DEFAULT_TEMPERATURE, 0.1, key="chat_temperature")
        api_labels = {"auto": _("Auto"), "responses": _("Responses"), "chat": _("Chat Completions")}
        st.selectbox(_("API"), list(api_labels), format_func=api_labels.get, key="chat_api",
                     help=_("Auto: the Responses API for OpenAI and Azure, Chat Completions for compatible servers "
                            "and the offline model."))
        model = st.session_state.get("chat_model") or ""
        responses = choose_api(wb.provider_for(model).kind, st.session_state.get("chat_api", "auto"), model)
        st.toggle(_("Server-side state (previous_response_id)"), key="chat_server_state",
                  disabled=responses != "responses",
                  help=_("On: only your new message is sent, pointing at the last reply; the server keeps the "
                         "conversation (store: true, 30 days at OpenAI). Off: the whole history is sent and nothing "
                         "is stored.") if responses == "responses" else
                  _("Only on the Responses API: choose Responses as the API."))
        # The offline model's default is short: a tiny model's long replies wander and loop.
        default_tokens = chat.default_reply_tokens(wb.provider_for(st.session_state.get("chat_model") or "").kind)
        st.number_input(_("Max tokens (reply)"), 16, 32_768, default_tokens, 16, key="chat_max_tokens")
        st.toggle(_("Reuse cached replies"), key="chat_cache",
                  help=_("At temperature 0 identical requests are answered from the cache anyway; turn "
                       "this on to reuse replies at any temperature."))
        st.selectbox(_("Persona"), list(persona_names), format_func=persona_names.get, key="persona_id",
                     on_change=start_new_conversation, help=_("Changing persona starts a new conversation."))
        if st.session_state.persona_id == CUSTOM_ID:
            st.text_area(_("System prompt"), key="custom_prompt", height=120)
            st.button(_("Start chat with this prompt"), on_click=start_new_conversation)
        else:
            with st.expander(_("System prompt")):
                # The prompt is data sent to the model, in whatever language it was written ("data-" key).
                st.container(key="data-system-prompt").markdown(model_markdown(conv.system_prompt))
        st.selectbox(_("Reply language"), list(LANGUAGES), key="reply_language", format_func=language_label)

        with st.expander(_("Tools"), expanded=bool(st.session_state.get("chat_tools"))):
            # The same function definitions as the Playground's (core.llm.tools), checked before any message is sent.
            st.text_area(_("Tools (JSON function definitions)"), key="chat_tools", height=120,
                         placeholder='[{"name": "lookup_order", "parameters": {"type": "object", …}}]',
                         help=_("When the model calls a tool, you type its result and the model goes on. Nothing "
                                "is run: the arguments are only shown."))
            problem = chat_turn.read_tools(st.session_state.get("chat_tools") or "")[1]
            if problem:
                st.error(problem)
            if wb.provider_for(st.session_state.get("chat_model") or "").kind == "local":
                st.caption(_("the offline model cannot call tools"))

        with st.expander(_("🔊 Voice")):
            # Read by pages/_chat_voice.py from the session state (the sidebar is drawn last).
            st.selectbox(_("Voice for 🔊 Play"), list(voice.VOICES), key="chat_voice",
                         help=_("ballad and verse need gpt-4o-mini-tts"))
            st.text_input(_("Speech model"), voice.DEFAULT_SPEECH_MODEL, key="chat_speech_model",
                          help=_("tts-1 (priced per character), tts-1-hd or gpt-4o-mini-tts"))
            st.text_input(_("Transcription model"), voice.default_transcribe_model(wb.provider.kind),
                          key="chat_transcribe_model",
                          help=_("gpt-4o-mini-transcribe, gpt-4o-transcribe, or whisper-1 for a Whisper-compatible "
                                 "server"))

        st.subheader(_("Counters"))
        st.caption(chat.totals_caption(chat.totals(conv)))
        st.caption(chat.next_turn_caption(plan))

        st.subheader(_("Conversations"))
        st.button(_("➕ New chat"), on_click=start_new_conversation, width="stretch")
        undo = st.session_state.get("chat_deleted")
        if undo:  # the last deleted conversation can come back (kept in this session only)
            st.caption(_('Deleted “{title}”.').format(title=plain(undo['title'])))
            if st.button(_("↩ Undo delete"), key="undo_delete", width="stretch"):
                restored = chat.Conversation.from_dict(st.session_state.pop("chat_deleted"))
                wb.conversations.save(restored, wb.user)
                open_conversation(restored)
                st.rerun()
        for summary in wb.conversations.list(wb.user, limit=30):
            row = st.container(horizontal=True, gap="small", vertical_alignment="center")
            current = summary.id == conv.id
            if row.button(("▶ " if current else "") + plain(summary.title), key=f"open_{summary.id}",
                          width="stretch", disabled=current):
                open_conversation(wb.conversations.load(summary.id, wb.user, wb.admin) or conv)
                st.rerun()
            if row.button("🗑", key=f"delete_{summary.id}", help=_("Delete this conversation (Undo appears above)"),
                          width="content"):
                gone = wb.conversations.load(summary.id, wb.user, wb.admin)
                wb.conversations.delete(summary.id, wb.user, wb.admin)
                if gone is not None:
                    st.session_state.chat_deleted = gone.to_dict()
                if current:
                    start_new_conversation()
                st.rerun()

"""Chat: multi-turn, streamed, with personas, reply language, live counters, stop / regenerate / edit / export."""
import time
from collections.abc import Iterator

import streamlit as st

from core.base.i18n import _
from core.calls.gate import CallHooks
from core.chat import conversation as chat
from core.chat import turn as chat_turn
from core.chat.personas import BUILT_IN, CUSTOM_ID, persona_by_id, starters
from core.formats.rendering import model_markdown, plain
from core.llm.local_model import queue_sentence
from core.llm.providers import offline_limits, offline_notice
from core.llm.tools import ToolError
from pages._chat_attachments import UPLOAD_EXTENSIONS, draw_attachments, draw_tray, read_input, show_sent
from pages._chat_feedback import draw_reply_footer
from pages._chat_sidebar import DEFAULT_TEMPERATURE, draw_sidebar, export_menu
from pages._chat_voice import play_button, voice_message
from pages._widgets import picked_model, stream_markdown
from pages._workbench import response_cache, workbench

wb = workbench()
state = st.session_state
notices = state.setdefault("chat_errors", {})  # a plain dict: safe to write in `finally` (session state is not)
PERSONA_NAMES = {p.id: _(p.name) for p in BUILT_IN} | {CUSTOM_ID: _("Custom system prompt…")}


def open_conversation(conversation: chat.Conversation) -> None:
    state.conversation = conversation
    errors = state.setdefault("chat_errors", {})
    errors.pop("message", None)
    notice = chat.pending_notice(conversation)  # a failed or interrupted turn keeps its sentence and Retry
    if notice:
        errors["message"] = notice
    st.query_params["c"] = conversation.id


def start_new_conversation() -> None:
    persona = persona_by_id(state.get("persona_id", "assistant"))
    custom = state.get("custom_prompt", "") if persona is None else None
    open_conversation(chat.new_conversation(persona, custom, state.get("reply_language", "Auto")))


# A reload keeps the conversation: its id is in the URL.
if "conversation" not in state:
    # Only the owner (or an admin) can open a conversation by its link; anyone else gets a new one.
    saved = wb.conversations.load(st.query_params.get("c", ""), wb.user, wb.admin) if st.query_params.get("c") \
        else None
    owner = wb.conversations.owner(saved.id) if saved else None
    if saved is not None and owner != wb.user:  # an admin reading someone's: replies go to a copy of their own
        saved = chat.copy_for(saved)
        st.toast(_("Opened {owner}'s conversation as a copy of your own (admin).").format(owner=plain(owner)))
    if saved:
        state.persona_id, state.reply_language = saved.persona_id, saved.language
        open_conversation(saved)
    else:
        start_new_conversation()
conv: chat.Conversation = state.conversation
persona_now = persona_by_id(conv.persona_id)
if persona_now is not None and not conv.messages and conv.system_prompt != persona_now.prompt():
    conv.system_prompt = persona_now.prompt()  # the interface language changed before the first message

# The sidebar is drawn last (see `draw_sidebar`); its widgets' values are read here from the session state, where
# Streamlit keeps them between runs. On the first run of a session they are not there yet: the defaults apply.
model = picked_model(wb, key="chat_model")
temperature = float(state.get("chat_temperature", DEFAULT_TEMPERATURE))
max_tokens = int(state.get("chat_max_tokens", chat.default_reply_tokens(wb.provider_for(model).kind)))
cache_opt_in = bool(state.get("chat_cache", False))
state.setdefault("persona_id", conv.persona_id)
state.setdefault("reply_language", conv.language)
conv.language = state.reply_language
provider = wb.provider_for(model)
turn_settings = chat_turn.TurnSettings(model=model, temperature=temperature, max_tokens=max_tokens,
                                       cache_opt_in=cache_opt_in, tools_json=state.get("chat_tools", ""),
                                       api=str(state.get("chat_api", "auto")),
                                       server_state=bool(state.get("chat_server_state", False)))
services = chat_turn.ChatServices(provider=wb.provider, provider_for=wb.provider_for,
                                  context_window=wb.context_window, log=wb.log, context=wb.context("chat"),
                                  store=wb.conversations, user=wb.user, cache=response_cache(wb),
                                  fallback=wb.settings.fallback, local_model_path=wb.settings.local_model_path)
plan = chat_turn.plan(conv, turn_settings, services)


st.title(_("💬 Chat"))
if state.get("chat_errors", {}).get("save"):  # a write that failed in the last run (retried in the background)
    st.warning(state["chat_errors"].pop("save"))
for index, message in enumerate(conv.messages):
    if message.role == "tool":  # the user's answer to a tool call, as typed
        with st.chat_message("tool", avatar="🔧"):
            st.caption(plain(chat.turn_heading(message)))
            st.code(message.content, language=None, wrap_lines=True)
        continue
    with st.chat_message(message.role):
        if message.thinking:  # the reasoning summary, collapsed above the reply as while it streamed
            with st.expander(_("Thinking"), expanded=False):
                st.markdown(plain(message.thinking))
        st.markdown(model_markdown(message.content))  # no remote image loads; HTML stays text
        draw_attachments(message.attachments)
        for call in message.tool_calls:  # the model's arguments are untrusted text: shown, never run or rendered
            st.caption(_("Tool call: {name}").format(name=plain(call.get("name") or "?")))
            st.code(call.get("arguments") or "", language="json", wrap_lines=True)

        if message.role == "assistant":
            if message.note:
                st.caption(f"↪ {plain(message.note)}")
            draw_reply_footer(conv, index, message, wb)  # caption, 👍 / 👎, add to a test set
            play_button(wb, message.content, str(index))  # 🔊 read aloud (pages/_chat_voice.py)

if plan.dropped_messages:
    st.info(_('{dropped_messages} older messages no longer fit the context window and are not sent.').format(
        dropped_messages=plan.dropped_messages))

wants_reply = False
errors = notices  # the same plain dict: written in `finally` below, where st.session_state is off limits
forced_model = None
if state.get("chat_box") or any(state.get(f"starter_{i}") for i in range(4)):
    # A new message was just sent: the last one's sentence (a moderation refusal, a failure) has done its job
    # and must not sit above the new turn while it streams.
    errors.pop("message", None)
    errors.pop("next_model", None)
if errors.get("message"):
    st.error(errors["message"])
    retry_col, other_col = st.columns([1, 3])
    wants_reply = retry_col.button(_("↻ Retry"), key="retry", type="primary")
    if errors.get("next_model") and other_col.button(_('↪ Answer with {model}').format(
        model=errors['next_model']), key="answer_other"):
        # A reply cut after text was shown is never restarted elsewhere silently: here the user chose to.
        chat.drop_last_reply(conv)
        forced_model, wants_reply = errors["next_model"], True

pending_calls = chat.pending_tool_calls(conv)
if pending_calls:  # the model asked for tools: the user plays each one, and the model goes on with the results
    st.markdown(_("**Answer the tool calls** — each result goes back as a `tool` message"))
    results = [st.text_area(_("Result of {name}").format(name=plain(call.get("name") or "?")),
                            key=f"chat_tool_result_{len(conv.messages)}_{i}", height=68)
               for i, call in enumerate(pending_calls)]
    if st.button(_("↪ Continue with these results"), key="chat_tool_send", type="primary"):
        try:
            chat.answer_tool_calls(conv, results)
        except ToolError as err:
            st.error(str(err))  # the typed results stay in their boxes
        else:
            wants_reply = True

if conv.messages:
    # One row that wraps on a phone (columns would stack five full-width buttons); the files in one menu.
    actions = st.container(horizontal=True, gap="small")
    if actions.button(_("↻ Regenerate"), disabled=not any(m.role == "user" for m in conv.messages)):
        chat.drop_last_reply(conv)
        wants_reply = True
    with actions.popover(_("✏️ Edit last")):
        last_user = next((m.content for m in reversed(conv.messages) if m.role == "user"), "")
        edited = st.text_area(_("Last message"), value=last_user, key=f"edit_{len(conv.messages)}")
        if st.button(_("Resend"), key="resend"):
            chat.edit_last_user_message(conv, edited)
            wants_reply = True
    if actions.button(_("🧹 Clear")):
        start_new_conversation()
        st.rerun()
    with actions.popover(_("⬇ Export / share")):
        export_menu(conv, wb)

starter = None
if not conv.messages:  # an empty chat offers what to ask first, for its persona
    if provider.kind == "local":  # what answers, and how to get more, in one line
        st.info(offline_notice(), icon="💻")
    st.caption(_("Try one of these, or write your own below:"))
    for i, (col, text) in enumerate(zip(st.columns(3), starters(conv.persona_id), strict=False)):
        if col.button(text, key=f"starter_{i}", width="stretch"):
            starter = text

spoken = voice_message(wb)  # the microphone: a transcript, edited, and sent (pages/_chat_voice.py)
if "chat_restore" in state:  # a flagged prompt comes back into the box, editable
    state.chat_box = state.pop("chat_restore")
if provider.kind == "local":  # what the tiny offline model can do, beside the box the user writes in
    st.caption(offline_limits(), help=offline_notice())
draw_tray(model, provider.kind)  # the files waiting for the next message
prompt, attached = read_input(st.chat_input(_("Message PromptLab…"), key="chat_box", accept_file="multiple",
                                            file_type=UPLOAD_EXTENSIONS), starter, errors)
if prompt is None and spoken is not None:  # the microphone's transcript, with any files waiting in the tray
    prompt, attached = read_input(None, spoken, errors)
if prompt is not None:
    submission = chat_turn.submit(conv, prompt, turn_settings, services, attachments=attached)
    if submission.refusal:  # nothing is sent; the text goes back into the box, the files stay in the tray
        errors["message"], state.chat_restore = submission.refusal, prompt
        st.rerun()
    if submission.notice:
        st.toast(submission.notice)
    show_sent(prompt, attached)  # the user's turn as sent; the tray is emptied
    wants_reply = True

if wants_reply and chat.awaiting_reply(conv):
    errors.pop("message", None)
    errors.pop("next_model", None)
    countdown = st.empty()

    def rate_limit_countdown(seconds: float) -> None:
        """A client-side rate limit holds the message back: count down instead of failing."""
        for left in range(int(seconds + 0.999), 0, -1):
            countdown.info(_('⏳ Rate limit reached for this provider: sending in {left} s…').format(left=left))
            time.sleep(min(1.0, seconds))
        countdown.empty()

    def offline_model_queue(waited_s: float, ahead: int) -> None:
        """The offline model is answering someone else: say so. Each update is also where a Stop click lands."""
        countdown.info(queue_sentence(waited_s, ahead))

    shown_second = [0]

    def waiting_for_reply(seconds: float) -> None:
        """No first token yet: say so, once a second. Each update is also where a Stop click lands."""
        if int(seconds) > shown_second[0]:
            shown_second[0] = int(seconds)
            countdown.info(_("⏳ Waiting for {model}… {seconds} s — Stop ends it.").format(
                model=plain(model), seconds=int(seconds)))

    # One call into core: the user's turn is saved now, the reply streams, and `close()` records, moderates and
    # saves it whatever happens.
    turn = chat_turn.ChatTurn(conv, turn_settings, services, forced_model=forced_model, hooks=CallHooks(
        on_rate_limit=rate_limit_countdown, on_queue=offline_model_queue, on_waiting=waiting_for_reply))
    with st.chat_message("assistant"):
        # Clicking Stop reruns the script, which interrupts the stream's drawing (or the wait for the offline model);
        # `finally` then closes the HTTP stream (cancelling the generation) and keeps the partial reply "stopped".
        st.button(_("⏹ Stop"), key="stop")
        try:
            thinking_slot = st.empty()  # the reasoning summary (Responses API), collapsed above the answer

            def with_thinking(deltas: Iterator[str]) -> Iterator[str]:
                shown = ""
                for delta in deltas:
                    if turn.thinking != shown:
                        shown = turn.thinking
                        with thinking_slot.container(), st.expander(_("Thinking"), expanded=False):
                            st.markdown(plain(shown))
                    yield delta

            stream_markdown(with_thinking(iter(turn)), on_first=countdown.empty)  # the waiting notice goes on text
        finally:
            # No st.* here: once a click has interrupted the run, touching Streamlit raises again.
            result = turn.close()
            if result.save_error:
                errors["save"] = result.save_error
            if result.error:
                errors["message"], errors["next_model"] = result.error, result.next_model
    if result.notice:
        st.toast(result.notice)
    st.rerun()

draw_sidebar(wb, conv, plan, PERSONA_NAMES, start_new_conversation, open_conversation)

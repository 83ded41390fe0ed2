"""Playground: one prompt, every parameter, streamed; a compare matrix; the prompt library; view code; replay."""

import streamlit as st

from core.base.i18n import _
from core.calls.gate import ChatRequest, ChatStream
from core.llm import attachments
from core.llm.file_vars import has_media, image_token_forecast
from core.llm.pricing import TokenUsage, cost_usd, format_cost
from core.llm.responses_api import choose_api
from core.playground.codegen import curl_command, python_code
from core.playground.draft import PlaygroundError, build_params, messages_for
from core.playground.library import PromptLibrary
from core.playground.matrix import CellResult, CellSpec, prepare_cell, record_result
from core.playground.tools import continue_with_tool_results
from pages._playground_compare import render_compare, show_cell
from pages._playground_library import render_library
from pages._playground_state import current_draft, editor, load_draft
from pages._widgets import model_picker, stream_markdown
from pages._workbench import workbench

wb = workbench()
state = st.session_state
library = PromptLibrary(wb.settings.db_url, wb.user, wb.admin)  # others' private versions stay out
st.title(_("🧪 Playground"))

if "pg_load" in state:  # a draft chosen in the library or replayed from the log
    load_draft(state.pop("pg_load"))
model = model_picker(wb, key="pg_model")
provider = wb.provider_for(model)
editor(model, provider.kind)

draft, messages, params, problem = None, [], {}, None
try:
    draft = current_draft(model)
    messages = messages_for(draft)
    params = build_params(provider, model, draft.settings)
except PlaygroundError as err:
    problem = str(err)
# An image or PDF variable to a model without vision: Run is refused before any call (compare cells of other
# models still run; this model's cells say the same sentence without a call).
no_vision = attachments.no_vision_error(model).message if has_media(messages) and not attachments.takes_images(
    provider.kind, model) else None
if messages:
    n_in = provider.prompt_counter(model)(messages) + image_token_forecast(messages, model)
    tier = {"service_tier": draft.settings.service_tier} if draft and draft.settings.service_tier else None
    st.caption(_('Input before sending: **{n_in:,} tokens** · {cost}').format(
        n_in=n_in, cost=format_cost(cost_usd(TokenUsage(n_in), model, provider.pricing_id, tier))))
    window, budget = wb.context_window(model), (draft.settings.max_tokens or 0) if draft else 0
    if problem is None and n_in > window - budget:  # refused here, before any call (Run is disabled)
        problem = (f"This request is {n_in:,} tokens, more than the {window - budget:,} that {model} can take "
                   f"({window:,}-token window, {budget:,} kept for the reply): shorten it, or choose a model with a "
                   "larger context window.")
if problem or no_vision:
    st.warning(no_vision or problem)  # no vision first: removing the file also answers a size problem

run_tab, compare_tab, library_tab = st.tabs([_("▶ Run"), _("▦ Compare"), _("📚 Library & replay")])
with run_tab:
    api_labels = {"responses": _("Responses"), "chat": _("Chat Completions")}
    api = choose_api(provider.kind, draft.settings.api if draft else str(state.get("pg_api", "auto")), model)
    with st.expander(_("View code")):
        if draft and messages:
            st.code(python_code(provider, model, messages, params, api=api), language="python")
            st.code(curl_command(provider, model, messages, params, api=api), language="bash")
    single = state.setdefault("pg_single_box", {})  # mutated in `finally`, where st.session_state is off limits

    def run_single(sending) -> None:
        """Send a draft once, streamed, through the gate; its result is what the Run tab shows next."""
        cell = prepare_cell(CellSpec("draft", model, sending.settings.temperature, 1), sending, provider)
        result = CellResult(spec=cell.spec)
        # The requested tier as a tag too: kept with the call's metadata whatever the text policy stores.
        tags = ["run:single"] + ([f"tier:{sending.settings.service_tier}"] if sending.settings.service_tier else [])
        stream = ChatStream(provider, ChatRequest(model, cell.messages, cell.params, api=api),
                            wb.context("playground", tags), wb.log)
        st.button(_("⏹ Stop"), key="pg_halt")
        try:
            stream_markdown(stream)  # no remote image loads from a reply
        finally:
            stream.close()  # Stop reruns the script; this keeps what arrived and cancels the upstream stream
            record_result(cell, result, stream)
            single["last"], single["api"] = result, api
        st.rerun()

    if st.button(_("▶ Run"), type="primary", disabled=(problem or no_vision) is not None, key="pg_run"):
        run_single(draft)
    last = single.get("last")
    if last:
        show_cell(last)
        st.caption(_("Served through: {api}").format(api=api_labels[single.get("api", "chat")]))
    if last and last.status == "ok" and last.tool_calls and draft is not None:
        # The model asked for tools: the user plays each tool, and the conversation goes on with the answers.
        st.markdown(_("**Answer the tool calls** — each result goes back as a `tool` message"))
        turn = len(draft.history)  # fresh boxes for each round
        results = [st.text_area(_("Result of {name}({arguments})").format(
            name=call["name"], arguments=call.get("arguments") or ""), key=f"pg_tool_result_{turn}_{i}",
            height=68) for i, call in enumerate(last.tool_calls)]
        if st.button(_("↪ Continue with these results"), key="pg_continue"):
            try:
                going_on = continue_with_tool_results(draft, last.text, last.tool_calls, results)
                build_params(provider, model, going_on.settings)
            except PlaygroundError as err:
                st.error(str(err))  # the typed results stay in their boxes
            else:
                state["pg_load"] = going_on  # the editor shows the continued conversation after the rerun
                run_single(going_on)

with compare_tab:
    render_compare(wb, draft, library, problem)

with library_tab:
    render_library(wb, draft, library)

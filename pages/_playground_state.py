"""The Playground's editor: widgets bound to a Draft in st.session_state (load a draft in, read it back)."""
from __future__ import annotations

import json

import streamlit as st

from core.base.i18n import N_, _
from core.playground.draft import (
    BUILT_IN_TOOLS,
    REASONING_EFFORTS,
    SERVICE_TIERS,
    Draft,
    PlaygroundError,
    RunSettings,
    builtin_tools_off,
    template_variables,
    unsupported_controls,
    validate_schema,
)
from core.playground.tools import validate_tools
from pages._playground_files import files_editor

FORMATS = ("text", "json_object", "json_schema")
FORMAT_LABELS = {"text": N_("Text"), "json_object": N_("JSON object"), "json_schema": N_("JSON schema")}
DEFAULT_EFFORT = N_("model default")  # a value in drafts; shown translated
EFFORT_LABELS = {DEFAULT_EFFORT: DEFAULT_EFFORT, "minimal": N_("minimal"), "low": N_("low"),
                 "medium": N_("medium"), "high": N_("high")}  # the API's values, shown translated
NO_TIER = N_("not sent")  # a value in drafts; shown translated
TIER_LABELS = {NO_TIER: NO_TIER, "auto": N_("auto (the project's default)"), "default": N_("default (standard)"),
               "flex": N_("flex (slower, cheaper)"), "priority": N_("priority (faster, dearer)")}  # the API's values


def load_draft(draft: Draft) -> None:
    """Put a draft into the editor's widgets (call before they are drawn, then rerun)."""
    s = draft.settings
    state = st.session_state
    state.update(pg_model=draft.model, pg_system=draft.system, pg_user=draft.user_template,
                 pg_temperature=1.0 if s.temperature is None else float(s.temperature), pg_top_p=s.top_p,
                 pg_max_tokens=s.max_tokens or 512, pg_stop="\n".join(s.stop),
                 pg_presence=s.presence_penalty, pg_frequency=s.frequency_penalty, pg_seed=s.seed,
                 pg_format=s.response_format, pg_schema=json.dumps(s.json_schema, indent=2) if s.json_schema else "",
                 pg_tools=json.dumps([t["function"] for t in s.tools], indent=2) if s.tools else "",
                 pg_tool_choice=s.tool_choice, pg_effort=s.reasoning_effort or DEFAULT_EFFORT,
                 pg_tier=s.service_tier or NO_TIER, pg_history=draft.history, pg_api=s.api,
                 pg_builtin=list(s.builtin_tools), pg_vector_stores=", ".join(s.vector_store_ids))
    for name, value in draft.variables.items():
        state[f"pg_var_{name}"] = value


def editor(model: str, provider_kind: str) -> None:
    """Prompt, variables and every parameter; controls the model does not accept are disabled with the reason."""
    off = unsupported_controls(provider_kind, model)
    left, right = st.columns([3, 2])
    with left:
        st.text_area(_("System prompt"), key="pg_system", height=120)
        if st.session_state.get("pg_history"):
            st.caption(_('+ {n} earlier messages from the replayed call').format(n=len(st.session_state.pg_history)))
        st.text_area(_("User message — use {{variables}}"), key="pg_user", height=120)
        names = template_variables(st.session_state.get("pg_system", "") + st.session_state.get("pg_user", ""))
        variables_box = st.container()  # above the files, filled once the files are known
        files = files_editor(template_variables(st.session_state.get("pg_user", "")))
        with variables_box:
            if [n for n in names if n not in files]:
                st.caption(_("Variables"))
            for name in names:
                if name not in files:  # a file variable's value is its upload, below
                    st.text_input(name, key=f"pg_var_{name}", label_visibility="visible")
    with right:
        c1, c2 = st.columns(2)
        c1.slider(_("Temperature"), 0.0, 2.0, 1.0, 0.1, key="pg_temperature", disabled="temperature" in off,
                  help=off.get("temperature"))
        c2.number_input(_("Max tokens"), 1, 128_000, 512, key="pg_max_tokens")
        c1.number_input(_("top_p"), 0.0, 1.0, None, 0.05, key="pg_top_p", disabled="top_p" in off,
                        help=off.get("top_p", _("blank = the model's default")))
        c2.number_input(_("Seed"), 0, 2**31 - 1, None, key="pg_seed", help=_("blank = random"))
        c1.number_input(_("Presence penalty"), -2.0, 2.0, None, 0.1, key="pg_presence",
                        disabled="presence_penalty" in off, help=off.get("presence_penalty"))
        c2.number_input(_("Frequency penalty"), -2.0, 2.0, None, 0.1, key="pg_frequency",
                        disabled="frequency_penalty" in off, help=off.get("frequency_penalty"))
        st.text_area(_("Stop sequences (one per line, up to 4)"), key="pg_stop", height=68, disabled="stop" in off,
                     help=off.get("stop"))
        st.selectbox(_("Reasoning effort"), [DEFAULT_EFFORT, *REASONING_EFFORTS], key="pg_effort",
                     format_func=lambda e: _(EFFORT_LABELS.get(e, e)) if e in EFFORT_LABELS else e,
                     disabled="reasoning_effort" in off, help=off.get("reasoning_effort"))
        st.selectbox(_("Service tier"), [NO_TIER, *SERVICE_TIERS], key="pg_tier", disabled="service_tier" in off,
                     format_func=lambda t: _(TIER_LABELS.get(t, t)),
                     help=off.get("service_tier", _("OpenAI's processing tier: flex is cheaper and slower, priority "
                                                    "faster and dearer; the call is priced at the tier that served it")))
        api_labels = {"auto": _("Auto"), "responses": _("Responses"), "chat": _("Chat Completions")}
        st.selectbox(_("API"), list(api_labels), format_func=api_labels.get, key="pg_api",
                     help=_("Auto: the Responses API for OpenAI and Azure (and for models served only there), Chat "
                            "Completions for compatible servers and the offline model."))
        fmt = st.radio(_("Response format"), FORMATS, key="pg_format", horizontal=True,
                       format_func=lambda f: _(FORMAT_LABELS[f]))
        if fmt == "json_schema":
            if "json_schema" in off:
                st.caption(f"⚠️ {off['json_schema']}")
            st.text_area(_("JSON schema"), key="pg_schema", height=120, placeholder='{"type": "object", …}')
        with st.expander(_("Tools (function definitions)"), expanded=bool(st.session_state.get("pg_tools"))):
            if "tools" in off:
                st.caption(f"⚠️ {off['tools']}")
            st.text_area(_("Functions as JSON"), key="pg_tools", height=120, disabled="tools" in off,
                         placeholder='[{"name": "lookup_order", "parameters": {"type": "object", …}}]')
            st.text_input(_("Tool choice (auto, none, required or a function name)"), "auto", key="pg_tool_choice",
                          disabled="tools" in off)
        builtin_editor(provider_kind, model)


def builtin_editor(provider_kind: str, model: str) -> None:
    """OpenAI's hosted tools: selectable where they run (Responses on OpenAI / Azure), else disabled with why."""
    reason = builtin_tools_off(provider_kind, st.session_state.get("pg_api", "auto"), model)
    with st.expander(_("Built-in tools (web search, file search)"), expanded=bool(st.session_state.get("pg_builtin"))):
        if reason:
            st.caption(f"⚠️ {reason}")
        st.multiselect(_("Built-in tools"), list(BUILT_IN_TOOLS), key="pg_builtin", disabled=reason is not None,
                       placeholder=_("Choose options"),
                       help=_("Each search the model makes is a tool call with its own fee (web search $10 per 1,000 "
                              "calls, file search $2.50 per 1,000), added to the call's cost."))
        st.text_input(_("Vector store ids for file search (comma-separated)"), key="pg_vector_stores",
                      disabled=reason is not None or "file_search" not in (st.session_state.get("pg_builtin") or []),
                      placeholder=_("vs_…"))


def current_draft(model: str) -> Draft:
    """The draft the editor shows; raises PlaygroundError (the user's sentence) when tools or schema are invalid."""
    state = st.session_state
    schema = validate_schema(state.pg_schema) if state.get("pg_format") == "json_schema" and \
        (state.get("pg_schema") or "").strip() else None
    if state.get("pg_format") == "json_schema" and schema is None:
        raise PlaygroundError("Write the JSON schema the output must follow, or pick another response format.")
    settings = RunSettings(
        temperature=state.get("pg_temperature", 1.0), top_p=state.get("pg_top_p"),
        max_tokens=state.get("pg_max_tokens", 512),
        stop=[s for s in (state.get("pg_stop") or "").splitlines() if s][:4],
        presence_penalty=state.get("pg_presence"), frequency_penalty=state.get("pg_frequency"),
        seed=state.get("pg_seed"), response_format=state.get("pg_format", "text"), json_schema=schema,
        tools=validate_tools(state.get("pg_tools") or ""), tool_choice=(state.get("pg_tool_choice") or "auto").strip(),
        reasoning_effort=None if state.get("pg_effort") in (None, DEFAULT_EFFORT) else state.get("pg_effort"),
        service_tier=None if state.get("pg_tier") in (None, NO_TIER) else state.get("pg_tier"),
        api=str(state.get("pg_api") or "auto"), builtin_tools=list(state.get("pg_builtin") or []),
        vector_store_ids=[v.strip() for v in (state.get("pg_vector_stores") or "").split(",") if v.strip()])
    text = state.get("pg_system", "") + state.get("pg_user", "")
    files = dict(state.get("pg_file_vars") or {})
    variables = {n: state.get(f"pg_var_{n}", "") for n in template_variables(text) if n not in files}
    return Draft(model, state.get("pg_system", ""), state.get("pg_user", ""), variables, settings,
                 list(state.get("pg_history") or []), files)

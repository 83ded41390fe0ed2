"""The Playground's prompt library (save, history, diff, load, use as persona, import / export) and replay."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.base.i18n import _
from core.chat import conversation as chat
from core.chat.personas import CUSTOM_ID
from core.formats.columns import for_people
from core.formats.rendering import plain
from core.playground.compare import diff_html, older_first
from core.playground.draft import Draft, replay_draft
from core.playground.library import PromptLibrary
from pages._workbench import Workbench


def render_library(wb: Workbench, draft: Draft | None, library: PromptLibrary) -> None:
    saved_now = st.session_state.pop("pg_lib_saved", None)
    if saved_now:  # saved in the run before: select it here (the Compare tab, drawn earlier, now lists it too)
        st.session_state.pg_lib_name, st.session_state.pg_lib_version = saved_now["name"], saved_now["id"]
        st.success(_('Saved {version}.').format(version=plain(saved_now['label'])))
    with st.form("pg_save_form", clear_on_submit=False):
        c1, c2 = st.columns([1, 2])
        name = c1.text_input(_("Prompt name"), key="pg_save_name")
        note = c2.text_input(_("Note (what changed)"), key="pg_save_note")
        private = st.checkbox(_("Private (only you and admins see this version)"), key="pg_save_private")
        if st.form_submit_button(_("💾 Save as new version"), disabled=draft is None):
            try:
                saved = library.save(name, draft, author=wb.user, note=note or None, private=private)
                st.session_state.pg_lib_saved = {"name": saved.name, "id": saved.id, "label": saved.label}
                st.rerun()
            except ValueError as err:
                st.error(_('Cannot save: {err}.').format(err=err))
    names = library.names()
    if names:
        picked = st.selectbox(_("Prompt"), names, key="pg_lib_name")
        history = library.history(picked)
        st.dataframe(for_people(pd.DataFrame([{"version": v.version, "author": v.author, "note": v.note,
                                               "model": v.draft.model, "saved": v.created_at[:16]}
                                              for v in history])), hide_index=True, width="stretch")
        labels = {v.id: v.label for v in history}
        chosen = st.selectbox(_("Version"), list(labels), format_func=labels.get, key="pg_lib_version")
        version = next(v for v in history if v.id == chosen)
        b1, b2 = st.columns(2)
        if b1.button(_("↩ Load into the playground"), key="pg_lib_load"):
            st.session_state.pg_load = version.draft
            st.rerun()
        if b2.button(_("💬 Use as Chat persona"), key="pg_lib_persona"):
            st.session_state.update(persona_id=CUSTOM_ID, custom_prompt=version.draft.system,
                                    conversation=chat.new_conversation(None, version.draft.system))
            st.switch_page("pages/chat.py")
        if len(history) > 1:
            other = st.selectbox(_("Compare with"), [i for i in labels if i != chosen], format_func=labels.get,
                                 key="pg_lib_other")
            old, new = older_first(next(v for v in history if v.id == other), version)
            st.caption(_('System prompt: {label} → {label2}').format(label=old.label, label2=new.label))
            st.html(diff_html(old.draft.system, new.draft.system))
            st.caption(_('User message: {label} → {label2}').format(label=old.label, label2=new.label))
            st.html(diff_html(old.draft.user_template, new.draft.user_template))
    e1, e2 = st.columns(2)
    e1.download_button(_("⬇ Export library (JSON)"), library.export_json, "promptlab-prompts.json",
                       "application/json", disabled=not names)
    upload = e2.file_uploader(_("Import prompts (JSON)"), type=["json"], key="pg_lib_import")
    if upload is not None and st.session_state.get("pg_lib_imported") != upload.file_id:
        try:
            count = library.import_json(upload.getvalue().decode("utf-8"), importer=wb.user)
            st.success(_('Imported {count} versions (authored by you).').format(count=count))
        except (ValueError, UnicodeDecodeError) as err:
            st.error(plain(f"Cannot import this file: {err}. Nothing was imported."))
        st.session_state.pg_lib_imported = upload.file_id

    st.divider()
    st.markdown(_("**Replay a logged call**"))
    request_id = st.text_input(_("Request id (from Analytics or `python -m core calls tail`)"), key="pg_replay_id")
    if st.button(_("↩ Open in the playground"), key="pg_replay", disabled=not request_id.strip()):
        texts = wb.log.texts_for(request_id.strip(), wb.user, wb.admin)
        if texts is None:
            st.error(_("No call of yours with that request id has its request stored in the log."))
        else:
            st.session_state.pg_load = replay_draft(texts.request)
            st.rerun()

"""The Settings page's privacy section: what the log keeps, retention, data-subject requests, moderation."""
from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from core.base.errors import PromptLabError
from core.base.i18n import N_, _
from core.calls.moderation import ModerationSettings, load_moderation, save_moderation
from core.formats.columns import for_people
from core.formats.rendering import plain
from core.policy.redaction import MODERATION_MODES, TEXT_POLICIES
from core.records import privacy
from pages._widgets import admin_only_note
from pages._workbench import Workbench

POLICY_LABELS = {"full": N_("Full prompt and reply text"), "redacted": N_("Text with PII redacted"),
                 "metadata": N_("Metadata only (no text)")}
MODERATION_LABELS = {"off": N_("off"), "input": N_("prompts"), "input_and_output": N_("prompts and replies")}


def render_privacy(wb: Workbench) -> None:
    engine = wb.log.engine
    st.subheader(_("What the log keeps"))
    # Text policy, retention and moderation apply to everyone: an admin's (read-only to others, refused in core).
    may_change = admin_only_note(wb)
    current = privacy.text_policy(engine)
    policy = st.radio(_("Prompts and replies"), TEXT_POLICIES, index=TEXT_POLICIES.index(current),
                      format_func=lambda p: _(POLICY_LABELS[p]), key="text_policy", horizontal=True,
                      disabled=not may_change,
                      help=_("Redaction removes e-mails, phone numbers, card and IBAN numbers, national id and "
                             "passport numbers, IP addresses, keys and tokens, introduced names and street addresses "
                             "before anything is written; the README lists exactly what."))
    if policy != current:
        try:
            privacy.set_text_policy(engine, policy, actor=wb.identity)
            st.success(_("From now on the log keeps: {policy}.").format(policy=_(POLICY_LABELS[policy])))
        except PromptLabError as err:
            st.error(err.message)

    st.subheader(_("Retention"))
    kept = privacy.retention(engine)
    r1, r2 = st.columns(2)
    text_hours = r1.number_input(_("Keep texts (hours, 0 = forever)"), 0.0, 1e6, float(kept.text_hours or 0), 1.0,
                                 key="retention_text_hours", disabled=not may_change)
    metrics_days = r2.number_input(_("Keep metrics (days, 0 = forever)"), 0.0, 1e5, float(kept.metrics_days or 0),
                                   1.0, key="retention_metrics_days", disabled=not may_change)
    oldest = privacy.oldest_kept(engine)
    st.caption(_("Oldest call kept: {calls} · oldest text kept: {texts} · enforced at start-up and every hour "
                 "(texts cover replies, conversations, images and cache).").format(
        calls=(oldest["calls"] or "–")[:16].replace("T", " "),
        texts=(oldest["texts"] or "–")[:16].replace("T", " ")))
    if st.button(_("Save and apply retention"), key="save_retention", disabled=not may_change):
        try:
            privacy.set_retention(engine, privacy.Retention(text_hours or None, metrics_days or None),
                                  actor=wb.identity)
        except PromptLabError as err:
            st.error(err.message)
        else:
            removed = privacy.enforce_retention(engine, wb.settings.data_dir)
            st.success(_('Retention saved; removed {rows:,} rows now.').format(rows=sum(removed.values())))

    state = st.session_state
    st.subheader(_("Data-subject requests"))
    if wb.admin:
        subject = st.text_input(_("User id"), key="dsr_user", placeholder=_("e.g. ana")).strip()
    else:  # everyone may export or delete their own data, and only theirs
        subject = wb.user
        st.caption(_('Your data, as {user}: export it or delete it.').format(user=plain(wb.user)))
    d1, d2 = st.columns(2)
    if subject:
        if d1.button(_("🔒 Prepare an encrypted export"), key="dsr_prepare"):
            passphrase = privacy.export_passphrase()
            state["dsr_prepared"] = (subject, privacy.export_user(engine, subject, actor=wb.user,
                                                                actor_is_admin=wb.admin, passphrase=passphrase))
            d1.info(_("The passphrase, shown only now — copy it before downloading:"))
            d1.code(passphrase, language=None)
        prepared = state.get("dsr_prepared")
        if prepared and prepared[0] == subject:
            d1.download_button(_("⬇ Download the encrypted ZIP"), prepared[1],
                               f"promptlab-{subject}-{datetime.now():%Y%m%d}.zip", "application/zip",
                               key="dsr_export", on_click=lambda: state.pop("dsr_prepared", None))
        confirm = d2.checkbox(_('I want to delete all data of {user}').format(user=plain(subject)), key="dsr_confirm")
        if d2.button(_("Delete everything"), key="dsr_delete", disabled=not confirm, type="primary"):
            counts = privacy.delete_user(engine, subject, actor=wb.user, actor_is_admin=wb.admin)
            st.success(_('Deleted {rows:,} rows for {user}.').format(rows=sum(counts.values()), user=plain(subject)))
    with st.expander(_("Audit log")):  # an admin reads every line; anyone else the lines about themselves
        st.dataframe(for_people(pd.DataFrame(privacy.audit_log(engine, viewer=None if wb.admin else wb.user),
                                             columns=["ts", "actor", "action", "subject", "detail"])),
                     hide_index=True, width="stretch")

    st.subheader(_("Moderation"))
    mod = load_moderation(engine)
    m1, m2 = st.columns(2)
    mode = m1.selectbox(_("Check"), MODERATION_MODES, index=MODERATION_MODES.index(mod.mode), key="moderation_mode",
                        format_func=lambda m: _(MODERATION_LABELS[m]), disabled=not may_change)
    fail_open = m2.toggle(_("When the moderation endpoint is unreachable, send anyway (with a notice)"),
                          mod.fail_open, key="moderation_fail_open", disabled=not may_change)
    if (mode, fail_open) != (mod.mode, mod.fail_open):
        try:
            save_moderation(engine, ModerationSettings(mode, fail_open), actor=wb.identity)
            st.success(_("Moderation settings saved."))
        except PromptLabError as err:
            st.error(err.message)

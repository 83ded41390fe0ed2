"""The access gate, drawn by app.py before any page: password form or OpenID Connect login."""
from __future__ import annotations

import streamlit as st

from core.access import LIMITER, verify_password
from pages._workbench import IDENTITY_KEY, Workbench, oidc_configured


def require_access(wb: Workbench) -> None:
    """Stop the script until the visitor is signed in (when a gate is configured); sets the session's identity."""
    state = st.session_state
    if oidc_configured():
        if not st.user.get("is_logged_in", False):
            st.title("🧪 PromptLab")
            st.button("Log in", on_click=st.login, type="primary")
            st.stop()
        state[IDENTITY_KEY] = st.user.get("email") or st.user.get("name") or "signed-in user"
        return
    if not wb.settings.password_hash or state.get(IDENTITY_KEY):
        return
    st.title("🧪 PromptLab")
    wait = LIMITER.wait_s(wb.session)
    with st.form("login"):
        name = st.text_input("Your name (shown in the call log)", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary", disabled=wait > 0)
    if wait > 0:
        st.error(f"Too many failed attempts: try again in {wait:.0f} s.")
    elif submitted:
        if name.strip() and verify_password(password, wb.settings.password_hash):
            LIMITER.succeeded(wb.session)
            state[IDENTITY_KEY] = name.strip()
            st.rerun()
        LIMITER.failed(wb.session)
        st.error("Wrong name or password: try again." if name.strip() else "Enter your name and the password.")
    st.stop()

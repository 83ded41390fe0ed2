"""The access gate, drawn by app.py before any page: password form or OpenID Connect login."""
from __future__ import annotations

import streamlit as st

from core.base.i18n import _
from core.policy.access import LIMITER, authenticate, is_blank, parse_admins, parse_users
from pages._workbench import ADMIN_KEY, IDENTITY_KEY, Workbench, gate_configured, oidc_configured


def require_access(wb: Workbench) -> None:
    """Stop the script until the visitor is signed in (when a gate is configured); sets the session's identity."""
    state = st.session_state
    if oidc_configured():
        if not st.user.get("is_logged_in", False):
            st.title(_("🧪 PromptLab"))
            st.button(_("Log in"), on_click=st.login, type="primary")
            st.stop()
        state[IDENTITY_KEY] = st.user.get("email") or st.user.get("name") or "signed-in user"
        state[ADMIN_KEY] = state[IDENTITY_KEY] in parse_admins(wb.settings.admins)
        return
    if not gate_configured(wb.settings) or state.get(IDENTITY_KEY):
        return
    st.title(_("🧪 PromptLab"))
    users = parse_users(wb.settings.users)
    address = client_address()
    with st.form("login"):
        label = "User name" if users else "Your name (shown in the call log)"
        name = st.text_input(label, key="login_name")
        password = st.text_input(_("Password"), type="password", key="login_password")
        submitted = st.form_submit_button(_("Sign in"), type="primary")
    if submitted and (not name.strip() or is_blank(password)):
        # Nothing to check: a blank password never signs anyone in (and is no failed guess either).
        st.error(_("Enter your name and the password."))
    elif submitted:
        wait = LIMITER.wait_s(name, address)
        if wait > 0:  # this name from this address (or this address) failed too often: only they wait
            st.error(_('Too many failed attempts: try again in {wait:.0f} s.').format(wait=wait))
            st.stop()
        identity = authenticate(name, password, users, wb.settings.password_hash, parse_admins(wb.settings.admins))
        if identity is not None:
            LIMITER.succeeded(name, address)
            state[IDENTITY_KEY], state[ADMIN_KEY] = identity.name, identity.admin
            st.rerun()
        LIMITER.failed(name, address)
        st.error(_("Wrong name or password: try again."))
    st.stop()


def client_address() -> str:
    """The browser's address as the server sees it (a proxy's, behind one); "unknown" when Streamlit cannot tell."""
    try:
        address = st.context.ip_address
    except Exception:  # an older Streamlit, or no request context
        return "unknown"
    return address if isinstance(address, str) and address else "unknown"  # (AppTest hands out a mock)

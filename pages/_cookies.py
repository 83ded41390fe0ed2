"""Cookies the browser keeps for a session (the interface language, a provider chosen in Settings): read from the
request, and written by one small script in app.py's next step (Streamlit has no cookie-writing API)."""
from __future__ import annotations

import streamlit as st

from core.formats import cookies


def browser_cookie(name: str) -> str | None:
    """A cookie the browser sent with this session, if any (none without a browser: AppTest hands out mocks)."""
    try:
        value = st.context.cookies.get(name)
    except Exception:  # no browser behind this session (a bare script run)
        return None
    return value if isinstance(value, str) and value else None


def set_cookie(name: str, value: str | None, max_age_s: int) -> None:
    """Have the browser keep (or, with None, drop) a value; written by `write_cookies` in app.py's next step."""
    st.session_state.setdefault("cookies_pending", {})[name] = (value, max_age_s)


def write_cookies() -> None:
    """Write the cookies asked for since the last run, once (app.py calls it on every run)."""
    pending = st.session_state.pop("cookies_pending", None)
    if pending:
        st.html("".join(cookies.cookie_script(name, value, age) for name, (value, age) in pending.items()),
                unsafe_allow_javascript=True, width="content")

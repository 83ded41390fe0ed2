"""Small values a browser keeps for PromptLab (its provider-choice token, its interface language): the script that
stores one. Streamlit reads cookies (`st.context.cookies`) but cannot set them, so a page writes this script."""
from __future__ import annotations

import re

_SAFE = re.compile(r"[A-Za-z0-9_\-]*")


def cookie_script(name: str, value: str | None, max_age_s: int) -> str:
    """Store `value` under `name` for `max_age_s` seconds (None deletes it). SameSite=Strict: no other site can
    make the browser send it. Only plain tokens are accepted: nothing here can break out of the script."""
    if not _SAFE.fullmatch(name) or (value is not None and not _SAFE.fullmatch(value)):
        raise ValueError("not a plain cookie name or value")
    stored, age = (value, max_age_s) if value else ("", 0)
    return f'<script>document.cookie = "{name}={stored}; Max-Age={age}; Path=/; SameSite=Strict";</script>'

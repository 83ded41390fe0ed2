"""Widgets shared by the pages: the model picker (fed by the provider's cached model list) and the provider badge."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

import streamlit as st

from core.base import i18n
from core.base.config import Settings
from core.base.errors import PromptLabError
from core.base.i18n import _
from core.calls.gate import CallContext, list_models
from core.formats.rendering import frames, model_markdown
from core.llm.local_model import model_id_for
from core.llm.providers import Provider, chat_models, offline_notice
from pages._cookies import browser_cookie, set_cookie
from pages._workbench import Workbench, stores


@st.cache_data(ttl=300, show_spinner=False)
def _model_ids(provider: Provider, db_url: str, user: str) -> tuple[list[str], str | None]:
    """Model ids, or the error sentence; failures are cached too so a bad key or a dead server does not
    cost a failing request (and a log row) on every rerun. One attempt, short timeout: it only fills a list."""
    wb_log, _conversations = stores(db_url)
    quick = replace(provider, max_retries=0, timeout_s=min(provider.timeout_s, 10.0))
    try:
        return list_models(quick, CallContext(page="other", user=user, tags=["list-models"]), wb_log), None
    except PromptLabError as err:
        return [], err.message


def available_model_ids(wb: Workbench) -> list[str]:
    """Every model id the active provider lists (cached), whatever it is for; [] when it cannot list."""
    return [] if wb.provider.kind == "local" else _model_ids(wb.provider, wb.settings.db_url, wb.user)[0]


def available_models(wb: Workbench) -> tuple[list[str], str | None]:
    """Chat models the provider lists (cached 10 min) plus the embedded local model, which stays selectable
    beside any provider; on a listing failure, the configured default and the error."""
    local_id = model_id_for(wb.settings.local_model_path)
    if wb.provider.kind == "local":
        return [local_id], None
    ids, error = _model_ids(wb.provider, wb.settings.db_url, wb.user)
    models = chat_models(ids) or [wb.settings.default_model]
    return models + [local_id], error


def default_model(wb: Workbench) -> str:
    return model_id_for(wb.settings.local_model_path) if wb.provider.kind == "local" else wb.settings.default_model


def picked_model(wb: Workbench, key: str) -> str:
    """The model chosen in `model_picker(wb, key)`, read before the picker is drawn in this run."""
    return st.session_state.get(key) or default_model(wb)


def model_picker(wb: Workbench, key: str) -> str:
    """A model selectbox fed by the provider's model list; a model id can also be typed in."""
    models, error = available_models(wb)
    default = default_model(wb)
    index = models.index(default) if default in models else 0
    model = st.selectbox(_("Model"), models, index=index, key=key, accept_new_options=True,
                         help=_("From the provider's model list; type another id to use it."))
    if error:
        st.caption(_('⚠️ Model list unavailable: {error}').format(error=error))
    return model or default


def provider_badge(wb: Workbench) -> None:
    with st.sidebar:
        if wb.provider.kind == "local":
            st.caption(f"**{wb.provider.label}**  \n{offline_notice()}")
        else:
            st.caption(_('**{label}**  \nkey {masked_key}').format(
                label=wb.provider.label, masked_key=wb.provider.masked_key))
        lost = st.session_state.get("provider_choice_lost")
        if isinstance(lost, str):  # kept, but its key could not be, or it is no longer allowed: the reason
            st.caption("⚠️ " + lost + " " + _("The configured provider is in use."))
        elif lost:
            st.caption(_("⚠️ The provider chosen earlier in this browser was forgotten (server restarted, or unused "
                         "for a day): the configured one is in use. Choose again in Settings."))


def stream_markdown(deltas: Iterable[str], on_first: Callable[[], None] | None = None) -> str:
    """Show a streamed reply as it grows (as st.write_stream does), with remote images held back
    (core.formats.rendering): an injected image would otherwise be fetched the moment its closing parenthesis arrives.
    Returns the text shown."""
    slot = st.empty()
    text = ""
    for i, text in enumerate(frames(deltas)):  # a few redraws a second, not one per token
        if i == 0 and on_first is not None:
            on_first()
        slot.markdown(model_markdown(text))
    return text


LANGUAGE_KEY = "ui_language"
DRAWN_LANGUAGE_KEY = "ui_language_drawn"  # the language the last run drew the page in
# Every keyed menu whose shown labels are translated (format_func with _()): its choice is relabelled when the
# language changes (relabel_menus). tests/test_zh_artefacts.py fails when a menu of a page it opens is left out.
TRANSLATED_MENUS = ("persona_id", "reply_language", "chat_api", "pg_api", "an_period", "an_page", "an_charts", "an_whatif_model",
                    "pg_format", "pg_effort", "pg_cmp_versions", "text_policy", "moderation_mode", "img_size", "img_quality",
                    "img_bg", "img_moderation", "pg_tier")


def session_language(settings: Settings) -> str:
    """This session's interface language: the menu's choice (kept by the browser in a cookie), else
    PROMPTLAB_UI_LANGUAGE, else the browser's own language (core/base/i18n.py)."""
    state = st.session_state
    try:
        browser = st.context.locale
    except Exception:  # no browser behind this run
        browser = None
    remembered = browser_cookie(i18n.COOKIE_NAME)
    browser = browser if isinstance(browser, str) else None  # AppTest hands out mocks
    state[LANGUAGE_KEY] = i18n.pick_language(state.get(LANGUAGE_KEY) or remembered, settings.ui_language, browser)
    if state.get(DRAWN_LANGUAGE_KEY, state[LANGUAGE_KEY]) != state[LANGUAGE_KEY]:
        relabel_menus()
    state[DRAWN_LANGUAGE_KEY] = state[LANGUAGE_KEY]
    return state[LANGUAGE_KEY]


def relabel_menus() -> None:
    """After a language switch, make the browser show each translated menu's choice in the new language at once.
    A menu's choice travels as its shown label: without this the browser keeps showing the old label ("General
    assistant", "30 days") until a reload. Setting a value through the session state makes Streamlit send it again,
    labelled by this run. Runs before any widget is drawn, where such a write is allowed."""
    state = st.session_state
    for key in TRANSLATED_MENUS:
        if key in state:
            state[key] = state[key]


def language_menu() -> None:
    """The language menu at the foot of the sidebar; a choice is remembered by this browser for a year."""
    def remember() -> None:
        set_cookie(i18n.COOKIE_NAME, st.session_state[LANGUAGE_KEY], 365 * 24 * 3600)
    st.sidebar.selectbox("🌐 " + _("Interface language"), list(i18n.UI_LANGUAGES), key=LANGUAGE_KEY,
                         format_func=i18n.UI_LANGUAGES.get, on_change=remember)


def admin_only_note(wb: Workbench) -> bool:
    """For someone who is not an admin, say why a workspace setting is read-only; True when they may change it."""
    if not wb.admin:
        st.caption(_("🔒 Only an admin can change the settings below: they apply to everyone using this workspace."))
    return wb.admin

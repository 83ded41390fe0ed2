"""Streamlit glue shared by the pages: the session's workbench (settings, provider, stores), the provider
badge and the model picker. Logic lives in core/; this file only binds it to st.session_state and caches.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import streamlit as st

from core import model_file
from core.cache import ResponseCache
from core.calllog import CallLog
from core.calls import CallContext, list_models
from core.chat import TokenCounter
from core.config import Settings, load_settings
from core.conversations import ConversationStore
from core.errors import PromptLabError
from core.local_model import is_local_model, model_id_for
from core.pricing import context_window
from core.privacy import RetentionWorker
from core.providers import OFFLINE_NOTICE, Provider, chat_models, local_provider, resolve_provider
from core.tokens import count_messages

OVERRIDE_KEY = "provider_override"


def _route_through_app() -> None:
    """Make a deep link on a fresh server (e.g. /analytics) go through app.py's st.navigation.

    Streamlit treats an app with a `pages/` folder as an old-style multipage app until `st.navigation` has run
    once in the process; a first request straight to a page then runs that page bare, without the router.
    Every page calls workbench() first, which calls this, so such a run flips the flag and reruns through
    app.py. (Streamlit's AppTest resets the flag before every run; this keeps those runs faithful too.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_route_through_app()


@dataclass
class Workbench:
    """What a page needs for this browser session: settings, the active provider, the stores, who is calling."""

    settings: Settings
    provider: Provider
    log: CallLog
    conversations: ConversationStore
    user: str
    session: str

    def context(self, page: str, tags: list[str] | None = None) -> CallContext:
        return CallContext(page=page, user=self.user, session=self.session, tags=tags or [])

    def provider_for(self, model: str) -> Provider:
        """The provider that serves a model: the embedded one for `local/…` ids, else the active provider."""
        if is_local_model(model) and self.provider.kind != "local":
            return local_provider(self.settings)
        return self.provider

    def context_window(self, model: str) -> int:
        if is_local_model(model):
            try:  # from the GGUF metadata (starts the offline model on first use)
                return self.provider_for(model).local_runtime().context_window()
            except PromptLabError:
                return self.settings.fallback_context_tokens  # the failure is shown, and logged, on send
        return context_window(model, self.provider.pricing_id) or self.settings.fallback_context_tokens

    def token_counter(self, model: str) -> TokenCounter | None:
        """The offline model counts with its own template and tokenizer; others use tiktoken (None)."""
        if not is_local_model(model):
            return None
        runtime = self.provider_for(model).local_runtime()

        def count(messages: list[dict]) -> int:
            try:
                return runtime.count_prompt_tokens(messages)
            except PromptLabError:  # the model is down: an estimate keeps the page up
                return count_messages(messages, model)
        return count


def _secrets() -> dict:
    try:  # sections such as [auth] are Streamlit's own; settings are the top-level values
        return {k: v for k, v in st.secrets.items() if isinstance(v, (str, int, float))}
    except Exception:  # no secrets.toml is a normal set-up, not an error
        return {}


@st.cache_resource
def _stores(db_url: str) -> tuple[CallLog, ConversationStore]:
    return CallLog(db_url), ConversationStore(db_url)


@st.cache_resource
def retention_worker(db_url: str, data_dir: str) -> RetentionWorker:
    """One retention thread per database per process."""
    log, _ = _stores(db_url)
    return RetentionWorker(log.engine, data_dir)


@st.cache_resource
def offline_model_fetch(models_dir: str) -> None:
    """Once per process: fetch the default offline model in the background if it is not here yet."""
    model_file.fetch_in_background(models_dir)


def response_cache(wb: Workbench) -> ResponseCache | None:
    """The response cache, or None when PROMPTLAB_CACHE_TTL_S is 0."""
    return ResponseCache(wb.settings.db_url, wb.settings.cache_ttl_s) if wb.settings.cache_ttl_s > 0 else None


def base_settings() -> Settings:
    return load_settings(_secrets())


IDENTITY_KEY = "identity"


def needs_login(wb: Workbench) -> bool:
    """True while a configured access gate has not let this session in."""
    if oidc_configured():
        return not st.user.get("is_logged_in", False)
    return bool(wb.settings.password_hash) and not st.session_state.get(IDENTITY_KEY)


def workbench(gate: bool = True) -> Workbench:
    """The workbench of this browser session, with the Settings page's per-session provider switch applied.
    Pages call it first: behind a gate that has not let the session in, it stops the page (defence in depth —
    app.py shows the sign-in form before any page runs)."""
    _route_through_app()
    wb = _workbench()
    if gate and needs_login(wb):
        st.stop()
    return wb


def _workbench() -> Workbench:
    settings = base_settings()
    override = st.session_state.get(OVERRIDE_KEY)
    if override:
        settings = settings.with_overrides(**override)
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex
    log, conversations = _stores(settings.db_url)
    # Behind the access gate the signed-in identity is the user in the log.
    user = st.session_state.get(IDENTITY_KEY) or settings.user
    return Workbench(settings, resolve_provider(settings), log, conversations, user, st.session_state.session_id)


def oidc_configured() -> bool:
    """OpenID Connect login is on when secrets.toml has an [auth] section (Streamlit's st.login)."""
    try:
        return "auth" in st.secrets
    except Exception:
        return False


@st.cache_data(ttl=300, show_spinner=False)
def _model_ids(provider: Provider, db_url: str, user: str) -> tuple[list[str], str | None]:
    """Model ids, or the error sentence; failures are cached too so a bad key or a dead server does not
    cost a failing request (and a log row) on every rerun. One attempt, short timeout: it only fills a list."""
    wb_log, _ = _stores(db_url)
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


def model_picker(wb: Workbench, key: str) -> str:
    """A model selectbox fed by the provider's model list; a model id can also be typed in."""
    models, error = available_models(wb)
    default = default_model(wb)
    index = models.index(default) if default in models else 0
    model = st.selectbox("Model", models, index=index, key=key, accept_new_options=True,
                         help="From the provider's model list; type another id to use it.")
    if error:
        st.caption(f"⚠️ Model list unavailable: {error}")
    return model or default


def provider_badge(wb: Workbench) -> None:
    with st.sidebar:
        if wb.provider.kind == "local":
            st.caption(f"**{wb.provider.label}**  \n{OFFLINE_NOTICE}")
        else:
            st.caption(f"**{wb.provider.label}**  \nkey {wb.provider.masked_key}")

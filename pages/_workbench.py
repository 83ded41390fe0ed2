"""The browser session's workbench: settings (environment → secrets → the Settings page's per-session switch),
the active provider, the stores, who is calling, the access-gate checks and the process-wide workers.
Logic lives in core/; this file only binds it to st.session_state and Streamlit's caches.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import streamlit as st

from core.base.config import Settings, load_settings
from core.base.errors import PromptLabError
from core.calls.cache import ResponseCache
from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.chat.store import ConversationStore
from core.llm import custom_prices, local_model, model_file, provider_choice, saved_choice
from core.llm.local_model import is_local_model
from core.llm.providers import Provider, local_provider, resolve_provider
from core.policy import access
from core.policy.access import Identity, users_setting
from core.policy.url_policy import UrlPolicy
from core.records.privacy import RetentionWorker
from pages import _media
from pages._cookies import browser_cookie, set_cookie

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


_media.install()  # /media URLs (images, downloads) from a keyed hash, never one anyone can compute from the bytes
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
    admin: bool = False  # may open, export and delete others' data (PROMPTLAB_ADMINS; everyone without a gate)
    url_policy: UrlPolicy | None = None  # the rule for URLs this user chooses (None: an admin's, any URL)

    @property
    def identity(self) -> Identity:
        """Who is acting, for core functions that decide what they may do."""
        return Identity(self.user, self.admin)

    def context(self, page: str, tags: list[str] | None = None) -> CallContext:
        return CallContext(page=page, user=self.user, session=self.session, tags=tags or [])

    @property
    def secrets(self) -> tuple[str, ...]:
        """The keys in play (configured ones and a key typed for this session): never in a shared file."""
        return (*self.settings.secret_values, *((self.provider.api_key,) if self.provider.api_key else ()))

    def provider_for(self, model: str) -> Provider:
        """The provider that serves a model: the embedded one for `local/…` ids, else the active provider."""
        if is_local_model(model) and self.provider.kind != "local":
            return local_provider(self.settings)
        return self.provider

    def context_window(self, model: str) -> int:
        return self.provider_for(model).context_window(model, self.settings.fallback_context_tokens)



def _secrets() -> dict:
    try:  # sections such as [auth] are Streamlit's own; settings are the top-level values
        return {k: v for k, v in st.secrets.items() if isinstance(v, (str, int, float))}
    except Exception:  # no secrets.toml is a normal set-up, not an error
        return {}


@st.cache_resource
def stores(db_url: str) -> tuple[CallLog, ConversationStore]:
    return CallLog(db_url), ConversationStore(db_url)


@st.cache_resource
def retention_worker(db_url: str, data_dir: str) -> RetentionWorker:
    """One retention thread per database per process."""
    log, _ = stores(db_url)
    return RetentionWorker(log.engine, data_dir)


@st.cache_resource
def offline_model_fetch(models_dir: str) -> None:
    """Once per process: fetch the default offline model in the background if it is not here yet."""
    model_file.fetch_in_background(models_dir)


@st.cache_resource
def offline_model_warm_up(model_path: str | None, models_dir: str) -> None:
    """Once per process, when the offline model is the one that answers: start it (and generate a token) in the
    background while the user reads the page, so the first reply is as fast as the next."""
    local_model.runtime(model_path, models_dir).warm_up_in_background()


def response_cache(wb: Workbench) -> ResponseCache | None:
    """The response cache, or None when PROMPTLAB_CACHE_TTL_S is 0."""
    return ResponseCache(wb.settings.db_url, wb.settings.cache_ttl_s) if wb.settings.cache_ttl_s > 0 else None


def base_settings() -> Settings:
    secrets = _secrets()
    table = _secret_table("users")  # [users] name = "pbkdf2_sha256$…"
    if table and "PROMPTLAB_USERS" not in secrets:
        secrets["PROMPTLAB_USERS"] = users_setting(table)
    return load_settings(secrets)


def _secret_table(name: str) -> dict[str, str]:
    try:
        table = st.secrets.get(name)
    except Exception:  # no secrets.toml is a normal set-up, not an error
        return {}
    return {str(k): str(v) for k, v in table.items()} if hasattr(table, "items") else {}


IDENTITY_KEY = "identity"
ADMIN_KEY = "identity_admin"


def gate_configured(settings: Settings) -> bool:
    return access.gate_configured(settings.password_hash, settings.users)


def needs_login(wb: Workbench) -> bool:
    """True while a configured access gate has not let this session in."""
    if oidc_configured():
        return not st.user.get("is_logged_in", False)
    return gate_configured(wb.settings) and not st.session_state.get(IDENTITY_KEY)


def workbench(gate: bool = True) -> Workbench:
    """The workbench of this browser session, with the Settings page's per-session provider switch applied.
    Pages call it first: behind a gate that has not let the session in, it stops the page (defence in depth —
    app.py shows the sign-in form before any page runs)."""
    _route_through_app()
    wb = _workbench()
    if gate and needs_login(wb):
        st.stop()
    return wb


def _restore_provider_choice(configured: Settings, actor: Identity, log: CallLog) -> None:
    """In a new session (a reload, a restart, another replica) the provider this user chose in Settings comes back
    from the database, checked again against what they may choose now (core/llm/saved_choice.py); a key that could
    not be stored comes back only from this server's memory, by the token in the browser's cookie. Once per session
    and user."""
    state, user = st.session_state, actor.name
    if state.get("provider_choice_checked") == user:
        return
    state.provider_choice_checked = user
    if state.get(OVERRIDE_KEY):
        return
    saved = saved_choice.load_choice(log.engine, user)
    token = browser_cookie(provider_choice.COOKIE_NAME)
    in_memory = provider_choice.CHOICES.recall(token, user) if token else None
    if saved is None or saved.key_missing:
        if in_memory is not None:  # this server still holds the key the database could not
            state[OVERRIDE_KEY], state.provider_token = in_memory, token
        elif saved is not None:
            state.provider_choice_lost = saved_choice.key_not_kept()
        elif token:  # a choice from before it was kept in the database, and the server restarted since
            state.provider_choice_lost = True
            set_cookie(provider_choice.COOKIE_NAME, None, 0)
        return
    try:
        state[OVERRIDE_KEY] = provider_choice.override_for(saved.form, configured, actor)
    except (PromptLabError, ValueError) as err:  # no longer allowed to this user: the configured provider
        state.provider_choice_lost = getattr(err, "message", None) or True


def remember_provider_choice(wb: Workbench, override: dict | None,
                             form: provider_choice.ProviderForm | None = None) -> None:
    """Keep (or, with None, drop) this user's provider choice: in the database (`form`, its key only encrypted),
    and a key that could not be stored in this server's memory under a cookie's token."""
    state = st.session_state
    state.pop("provider_choice_lost", None)
    if override is None:
        provider_choice.CHOICES.forget(state.pop("provider_token", "") or "")
        state.pop(OVERRIDE_KEY, None)
        set_cookie(provider_choice.COOKIE_NAME, None, 0)
        saved_choice.forget_choice(wb.log.engine, wb.user)
        return
    state[OVERRIDE_KEY] = override
    kept = saved_choice.save_choice(wb.log.engine, wb.user, form) if form is not None else False
    if not kept:
        if form is not None:
            state.provider_key_not_kept = True  # Settings says why, once
        state.provider_token = provider_choice.CHOICES.remember(wb.user, override, state.get("provider_token"))
        set_cookie(provider_choice.COOKIE_NAME, state.provider_token, int(provider_choice.TTL_S))


def _workbench() -> Workbench:
    configured = settings = base_settings()
    log, conversations = stores(configured.db_url)
    # Behind the access gate the signed-in identity is the user in the log and in every ownership check. Without a
    # gate there is one user (PROMPTLAB_USER), who owns everything.
    actor = access.acting_identity(st.session_state.get(IDENTITY_KEY), bool(st.session_state.get(ADMIN_KEY)),
                                   gated=oidc_configured() or gate_configured(configured),
                                   default_user=configured.user)
    _restore_provider_choice(configured, actor, log)
    override = st.session_state.get(OVERRIDE_KEY)
    if override:
        settings = settings.with_overrides(**override)
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex
    custom_prices.use_file(log.engine, settings.prices_file)  # the gate cannot see st.secrets: hand it the file
    policy = provider_choice.url_policy_for(configured, actor)
    provider = resolve_provider(settings)
    if override and policy is not None:  # a URL this (non-admin) user chose: every request is checked
        provider = replace(provider, url_policy=policy)
    return Workbench(settings, provider, log, conversations, actor.name, st.session_state.session_id, actor.admin,
                     policy)


def oidc_configured() -> bool:
    """OpenID Connect login is on when secrets.toml has an [auth] section (Streamlit's st.login)."""
    try:
        return "auth" in st.secrets
    except Exception:
        return False

"""Settings: the active provider (key masked), a connection test, and a per-session provider switch."""
import streamlit as st
from sqlalchemy.engine import make_url

from core.analytics import dashboard as an
from core.base.errors import PromptLabError
from core.base.i18n import _
from core.calls import ratelimit
from core.calls.fallback import save_chain, saved_chain
from core.calls.gate import list_models
from core.calls.pending_writes import PENDING
from core.formats.columns import label
from core.llm.pricing import format_cost
from core.llm.provider_choice import ProviderForm, override_for, server_key_elsewhere
from core.llm.providers import KINDS, chat_models, kind_label
from core.llm.saved_choice import key_not_kept
from core.policy.audit import audit
from pages._prices_settings import render_prices
from pages._privacy_settings import render_privacy
from pages._widgets import admin_only_note
from pages._workbench import OVERRIDE_KEY, base_settings, remember_provider_choice, response_cache, workbench

wb = workbench()
provider = wb.provider
st.title(_("⚙️ Settings"))
if PENDING.count() or PENDING.given_up:  # writes a locked or full database refused, retried in the background
    st.warning(_("{n} rows wait to be written to the database (it was busy or full); they are retried in the "
                 "background.").format(n=PENDING.count())
               + (_(" {n} could not be written at all (see the server log).").format(n=PENDING.given_up)
                  if PENDING.given_up else ""))

st.subheader(_("Active provider"))
cols = st.columns(3)
cols[0].metric(_("Provider"), kind_label(provider.kind))
cols[1].metric(_("API key"), provider.masked_key)
cols[2].metric(_("Timeout / retries"), f"{provider.timeout_s:g} s / {provider.max_retries}")
where = provider.local_runtime().file_description() if provider.kind == "local" else (
    provider.base_url or "https://api.openai.com/v1")
st.caption((_("Model file") if provider.kind == "local" else _("Endpoint")) + f": `{where}`"
           + (_(" · API version `{version}`").format(version=provider.api_version) if provider.api_version else "")
           + _(" · Call log: `{url}`").format(url=make_url(wb.settings.db_url).render_as_string(hide_password=True)))
if st.session_state.get(OVERRIDE_KEY):
    st.info(_("This browser uses the provider set below, not the configured one."))

if st.button(_("🔌 Test connection"), type="primary"):
    try:
        models = list_models(provider, wb.context("other", ["test-connection"]), wb.log)
        st.success(_('Connected: {models} models listed, {chat_models} usable for chat.').format(
            models=len(models), chat_models=len(chat_models(models))))
        st.dataframe({label("model"): models}, hide_index=True, width="stretch")
    except PromptLabError as err:
        st.error(err.message)

st.subheader(_("Switch provider for yourself"))
st.caption(_("Applies to you: kept in the database, so a reload, a restart or another server keeps it; the configured "
           "provider (environment / secrets.toml) is untouched. A typed key is stored only encrypted with the "
           "server's secret (PROMPTLAB_SECRET_KEY), and not at all without one."))
if st.session_state.pop("provider_key_not_kept", False):
    st.info(key_not_kept())
if not wb.admin:
    st.caption(_("The server's key goes only to the configured endpoint: for another one, type your own key."))
with st.form("switch_provider", clear_on_submit=True):
    kind = st.selectbox(_("Provider"), KINDS, index=KINDS.index(provider.kind) if provider.kind in KINDS else 0,
                        format_func=kind_label)
    base_url = st.text_input(_("Base URL / Azure endpoint"), value=provider.base_url or "",
                             placeholder=_("https://api.openai.com/v1 · http://localhost:11434/v1"))
    # The key field always starts empty so a key never travels back to the browser.
    api_key = st.text_input(_("API key"), type="password", placeholder=_("leave empty to keep the current key"))
    api_version = st.text_input(_("Azure API version"), value=wb.settings.azure_api_version)
    if st.form_submit_button(_("Apply")):
        configured, form = base_settings(), ProviderForm(kind, base_url, api_key, api_version)
        try:  # core decides what this user may choose: the server's key never goes to a URL they picked
            override = override_for(form, configured, wb.identity, wb.url_policy)
        except PromptLabError as err:
            st.error(err.message)
        else:
            elsewhere = server_key_elsewhere(override, configured)
            if elsewhere is not None:  # an admin sent the server's key to another endpoint: on the record
                audit(wb.log.engine, wb.user, "provider_switch", None, {"endpoint": elsewhere, "kind": kind})
            remember_provider_choice(wb, override, form)
            st.rerun()
if st.session_state.get(OVERRIDE_KEY) and st.button(_("Reset to configured provider")):
    remember_provider_choice(wb, None)
    st.rerun()

may_change = admin_only_note(wb)  # workspace settings below: an admin's (read-only to others, refused in core)
st.subheader(_("Monthly budget"))
st.caption(_("Stored in the database, shared by everyone using this call log; Analytics forecasts against it."))
current_budget = an.monthly_budget(wb.log)
new_budget = st.number_input(_("Budget (USD per month, 0 = none)"), 0.0, 1e9, float(current_budget or 0.0), 10.0,
                             key="monthly_budget", disabled=not may_change)
if st.button(_("Save budget"), key="save_budget", disabled=not may_change):
    try:
        an.set_monthly_budget(wb.log, new_budget or None, actor=wb.identity)
        st.success(_('Budget saved: {budget}.').format(budget=format_cost(new_budget) if new_budget else _("none")))
    except PromptLabError as err:
        st.error(err.message)

if wb.admin:  # prices change what everyone's calls cost
    render_prices(wb)

st.subheader(_("Response cache"))
cache = response_cache(wb)
if cache is None:
    st.caption(_("Off (PROMPTLAB_CACHE_TTL_S = 0)."))
else:
    entries, hits = cache.stats()
    st.caption(_('{entries:,} cached replies, served {hits:,} times; each is kept {hours:g} h. Used at '
                 'temperature 0, or when a chat opts in.').format(
        entries=entries, hits=hits, hours=wb.settings.cache_ttl_s / 3600))
    if st.button(_("Clear the response cache"), key="clear_cache", disabled=not may_change):
        try:
            st.success(_('Cleared {n:,} cached replies.').format(n=cache.clear(actor=wb.identity)))
        except PromptLabError as err:
            st.error(err.message)

st.subheader(_("Rate limits"))
st.caption(_('Client-side limits for {label}, shared by every session of this app. A request over the '
             'limit waits with a countdown instead of failing; a 429 from the server holds everyone '
             'back.').format(
    label=provider.label))
limits = ratelimit.load_limits(wb.log.engine, provider.kind, provider.base_url)
r1, r2 = st.columns(2)
rpm = r1.number_input(_("Requests per minute (0 = no limit)"), 0, 1_000_000, limits.rpm, key="limit_rpm",
                      disabled=not may_change)
tpm = r2.number_input(_("Tokens per minute (0 = no limit)"), 0, 100_000_000, limits.tpm, key="limit_tpm",
                      disabled=not may_change)
if st.button(_("Save rate limits"), key="save_limits", disabled=provider.kind == "local" or not may_change):
    try:
        ratelimit.save_limits(wb.log.engine, provider.kind, provider.base_url, ratelimit.Limits(int(rpm), int(tpm)),
                              actor=wb.identity)
        st.success(_("Rate limits saved.") if rpm or tpm else _("Rate limits removed."))
    except PromptLabError as err:
        st.error(err.message)

st.subheader(_("Fallback chain"))
st.caption(_('Models tried, in order, after the chosen one times out, fails with a 5xx or cannot be '
             'reached: `auto` (a cheaper sibling, then the offline model), `off`, or a comma list '
             '(`local` = the offline model). Empty = PROMPTLAB_FALLBACK ({fallback}).').format(
    fallback=wb.settings.fallback))
chain_text = st.text_input(_("Chain for this provider"),
                           saved_chain(wb.log.engine, provider.kind, provider.base_url) or "", key="fallback_chain",
                           disabled=not may_change)
if st.button(_("Save fallback chain"), key="save_chain", disabled=not may_change):
    try:
        save_chain(wb.log.engine, provider.kind, provider.base_url, chain_text, actor=wb.identity)
        st.success(_('Fallback chain saved: {chain}.').format(chain=chain_text.strip() or wb.settings.fallback))
    except PromptLabError as err:
        st.error(err.message)

render_privacy(wb)

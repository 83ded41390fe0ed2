"""Settings' prices section: the price data in use, models in the log without a price, custom prices."""
from __future__ import annotations

import importlib.metadata

import pandas as pd
import streamlit as st

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.formats.rendering import plain
from core.llm import custom_prices
from core.llm.pricing import proxy_hint
from core.llm.providers import kind_label
from pages._workbench import Workbench

COLUMNS = ["provider", "model", "input_per_mtok", "cached_input_per_mtok", "output_per_mtok", "per_image",
           *custom_prices.AUDIO_KEYS]


@st.cache_data(ttl=120, show_spinner=False)
def _unpriced(db_url: str) -> list[tuple[str, str, int]]:
    """A pass over the whole log: not on every rerun of Settings (a million calls take a second)."""
    from core.calls.log import CallLog
    return custom_prices.unpriced_models(CallLog(db_url).engine)


def render_prices(wb: Workbench) -> None:
    st.subheader(_("Prices"))
    engine = wb.log.engine
    st.caption(_('List prices: genai-prices {version} (bundled data, offline). Custom prices below win over '
                 'them, for self-hosted or resold models and contract prices.').format(
        version=importlib.metadata.version('genai-prices')))
    unpriced = _unpriced(wb.settings.db_url)
    if unpriced:
        st.warning(_("Calls without a price: {calls} — add a custom price to cost them.").format(
            calls=", ".join(_("{model} on {provider} ({n:,})").format(model=plain(m), provider=kind_label(provider),
                                                                       n=n) for provider, m, n in unpriced)))
        hint = proxy_hint(unpriced)
        if hint:
            st.info(hint)
    try:
        current = custom_prices.stored(engine)
    except ValueError as err:
        st.error(plain(str(err)))
        current = []
    table = pd.DataFrame([{c: getattr(p, c) for c in COLUMNS} for p in current], columns=COLUMNS)
    edited = st.data_editor(table, num_rows="dynamic", key="prices_editor", width="stretch", column_config={
        "provider": st.column_config.SelectboxColumn(_("provider"), options=list(custom_prices.PROVIDERS)),
        "input_per_mtok": st.column_config.NumberColumn(_("input $/1M"), min_value=0.0, format="%.4f"),
        "cached_input_per_mtok": st.column_config.NumberColumn(_("cached input $/1M"), min_value=0.0, format="%.4f"),
        "output_per_mtok": st.column_config.NumberColumn(_("output $/1M"), min_value=0.0, format="%.4f"),
        "per_image": st.column_config.NumberColumn(_("$ per image"), min_value=0.0, format="%.4f"),
        # Audio models (voice in Chat): the token prices may stay empty when one of these is set.
        "per_audio_minute": st.column_config.NumberColumn(_("$ per audio minute"), min_value=0.0, format="%.4f",
                                                          help=_("Transcription, per minute of audio")),
        "per_mchars": st.column_config.NumberColumn(_("$ per 1M characters"), min_value=0.0, format="%.4f",
                                                    help=_("Speech, per 1M characters read aloud")),
        "audio_input_per_mtok": st.column_config.NumberColumn(_("audio input $/1M tokens"), min_value=0.0,
                                                              format="%.4f",
                                                              help=_("Transcription, per 1M audio tokens"))})
    if st.button(_("Save prices and re-price the log"), key="prices_save"):
        try:
            rows = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in edited.to_dict("records")
                    if r.get("model")]
            prices = [custom_prices.CustomPrice.checked(r, f"Row {i + 1}") for i, r in enumerate(rows)]
        except ValueError as err:
            st.error(plain(str(err)))
        else:
            try:
                repriced = custom_prices.save(engine, prices, actor=wb.identity)
            except PromptLabError as err:  # not an admin (the section is drawn for admins only)
                st.error(err.message)
                return
            _unpriced.clear()
            st.success(_('{prices} custom prices in force; {repriced:,} logged calls priced again (audited).').format(
                prices=len(prices), repriced=repriced))

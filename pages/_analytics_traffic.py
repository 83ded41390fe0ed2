"""Analytics' "Add to a test set": the selected calls, or every call the filters match (at most 10,000, read a page
at a time), become test cases of a set's next version (core.evals.traffic). Another user's calls and calls whose
texts were not kept give no case; the sentence says how many."""
from __future__ import annotations

import streamlit as st

from core.analytics.dashboard import Filters
from core.analytics.pushdown import AnalyticsEngine
from core.base.i18n import _, ngettext
from core.evals.store import EvalStore, TestSetRefused
from core.evals.traffic import Added, add_calls_to_set
from core.formats.rendering import plain
from pages._workbench import Workbench

MAX_CALLS = 10_000


def _said(added: Added) -> str:
    return _("“{name}” v{version}: {added} new cases, {skipped} calls gave none (another user's, or their texts "
             "were not kept).").format(name=added.version.name, version=added.version.version, added=added.added,
                                       skipped=added.skipped)


def draw_add_to_set(wb: Workbench, engine: AnalyticsEngine, filters: Filters, selected: list[str], total: int) -> None:
    with st.expander(_("🧪 Add calls to a test set")):
        store = EvalStore(wb.settings.db_url, wb.user, wb.admin)
        name = st.text_input(_("Test set"), key="an_set_name", placeholder=_("a new or existing set of yours"))
        a, b = st.columns(2)
        pick = a.button(ngettext("Add the {n} selected call", "Add the {n} selected calls", len(selected)).format(
            n=len(selected)), key="an_set_add_selected", disabled=not (selected and name.strip()))
        every = b.button(_("Add every call these filters match ({n:,}, at most {max:,})").format(
            n=total, max=MAX_CALLS), key="an_set_add_all", disabled=not (total and name.strip()))
        if not (pick or every):
            return
        ids = selected if pick else engine.filtered_frame(filters, MAX_CALLS)["request_id"].tolist()
        try:
            with st.spinner(_("Reading the calls…")):
                added = add_calls_to_set(store, wb.log, name, ids, user=wb.user, admin=wb.admin)
            st.success(plain(_said(added)))
        except (TestSetRefused, ValueError) as err:
            st.error(plain(err))

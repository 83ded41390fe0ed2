"""The Evals page's test sets: save the cases as a set's next version (private or shared), pick a set and a version,
see what changed against the version before it (cases added, removed, changed; where each came from), and load it."""
from __future__ import annotations

import streamlit as st

from core.base.i18n import _
from core.evals.config import EvalConfig, TestCase
from core.evals.store import EvalStore, TestSetRefused, TestSetVersion, diff_sets
from core.formats.rendering import plain


def _case_line(case: TestCase) -> str:
    source = case.metadata.get("source")
    text = case.description or ", ".join(f"{k}={v}" for k, v in case.vars.items())
    return plain(text[:100]) + (f" · {plain(source)}" if source else "")


def _draw_diff(version: TestSetVersion, history: list[TestSetVersion]) -> None:
    older = [v for v in history if v.version < version.version]
    if not older:
        st.caption(_("The first version: {cases} cases.").format(cases=len(version.tests)))
        return
    diff = diff_sets(older[0].tests, version.tests)
    if diff.unchanged:
        st.caption(_("Same cases as v{version}.").format(version=older[0].version))
        return
    st.caption(_("Against v{version}: {added} added, {removed} removed, {changed} changed.").format(
        version=older[0].version, added=len(diff.added), removed=len(diff.removed), changed=len(diff.changed)))
    lines = ([f"+ {_case_line(c)}" for c in diff.added] + [f"− {_case_line(c)}" for c in diff.removed]
             + [f"~ {_case_line(new)}" for _old, new in diff.changed])
    st.markdown("\n".join(f"- {line}" for line in lines[:50]))


def draw_test_sets(store: EvalStore, config: EvalConfig, user: str) -> list[TestCase] | None:
    """Draw the section; returns the cases of a version the user chose to load (None otherwise)."""
    name = st.text_input(_("Save the cases as"), key="eval_set_name")
    share = st.checkbox(_("Share it: everyone may read it (only you and admins may change it)"),
                        key="eval_set_share")
    if st.button(_("💾 Save test set"), key="eval_set_save", disabled=not name.strip()):
        try:  # a new set is private unless shared; saving again never unshares (the toggle below does)
            saved = store.save_set(name, config.tests, user, shared=True if share else None)
            st.success(_('Saved “{name}” v{version} ({cases} cases).').format(
                name=plain(saved.name), version=saved.version, cases=len(saved.tests)))
        except TestSetRefused as err:
            st.error(plain(err))
    names = store.set_names()
    if not names:
        return None
    pick = st.selectbox(_("Load a test set"), names, key="eval_set_pick")
    history = store.set_history(pick)
    latest = history[0]
    st.caption(_("Owner: {owner} · {shared}").format(
        owner=plain(latest.owner) if latest.owner else _("none (saved before sets had owners: only "
                                                         "admins may change it)"),
        shared=_("shared with everyone") if latest.shared else _("private")))
    if store.may_change(latest):
        shared_now = st.toggle(_("Shared with everyone"), value=latest.shared, key=f"eval_set_shared_{pick}")
        if shared_now != latest.shared:
            store.share_set(pick, shared_now)
            st.rerun()
    # Keyed by the newest version: a version just saved (here or by a teammate) is the one shown.
    index = st.selectbox(_("Version"), range(len(history)), key=f"eval_set_version_{pick}_{latest.version}",
                         format_func=lambda i: f"v{history[i].version} · {history[i].created_at[:16]} · "
                                               f"{history[i].author or ''}"
                                               + (f" · {history[i].note}" if history[i].note else ""))
    version = history[index]
    _draw_diff(version, history)
    if st.button(_("Use these cases"), key="eval_set_load"):
        return version.tests
    return None

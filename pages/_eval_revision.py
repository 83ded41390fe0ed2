"""The Evals results' "Suggest a revision": a chosen model proposes a revised prompt from the run's failing cases,
the user runs it on the same cases and reads whether it is better (McNemar, the pass-rate difference's interval),
and adopts it — into the config, and as the next version in the prompt library — only when they say so."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.evals import revision as rv
from core.evals.config import EvalConfigError, to_yaml
from core.evals.run import EvalRun, ProviderResolver, RunNotStarted
from core.evals.store import EvalStore, SavedEvalRun
from core.formats.rendering import plain
from core.llm.pricing import format_cost
from core.playground.library import PromptLibrary
from core.policy.access import Identity
from pages._widgets import model_picker
from pages._workbench import Workbench


def draw_revision(shown: SavedEvalRun, *, wb: Workbench, store: EvalStore, resolver: ProviderResolver,
                  actor: Identity, follow: Callable[[EvalRun], None],
                  use_config: Callable[[str], None]) -> None:
    """The section under a run's results; under the run that tried a revision, its verdict and Adopt / Save."""
    revisions = st.session_state.setdefault("eval_revisions", {})  # original run id → (Revision, tried run id)
    tried_for = st.session_state.setdefault("eval_revision_of", {})  # tried run id → original run id
    if shown.id in tried_for:
        original = store.run(tried_for[shown.id])
        if original is not None:
            _draw_verdict(original, shown, revisions[original.id][0], wb, use_config)
        return
    st.subheader(_("Suggest a revision"))
    labels = [p.label for p in shown.config.prompts]
    a, b = st.columns(2)
    label = a.selectbox(_("Prompt to revise"), labels, key=f"eval_rev_prompt_{shown.id}")
    with b:
        model = model_picker(wb, key=f"eval_rev_model_{shown.id}")
    original_prompt = next(p for p in shown.config.prompts if p.label == label)
    if st.button(_("✨ Suggest a revision from the failing cases"), key=f"eval_rev_ask_{shown.id}"):
        try:
            revision = rv.suggest_revision(shown.rows, original_prompt, wb.provider_for(model), model,
                                           wb.context("evals", [f"run:{shown.id}"]), wb.log)
            revisions[shown.id] = (revision, None)
        except PromptLabError as err:
            st.error(plain(err))
    revision, tried = revisions.get(shown.id, (None, None))
    if revision is None or revision.original.label != label:
        return
    st.caption(_("Proposed by {model} · {cost}").format(model=plain(revision.model),
                                                        cost=format_cost(revision.cost_usd)))
    st.code(rv.prompt_source(revision.revised), language=None, wrap_lines=True)
    tried_run = store.run(tried) if tried else None
    if tried_run is not None:
        _draw_verdict(shown, tried_run, revision, wb, use_config)
    elif st.button(_("▶ Run it on the same cases"), key=f"eval_rev_run_{shown.id}", type="primary"):
        try:
            evaluation = EvalRun(rv.revision_config(shown.config, revision), resolver, wb.context("evals"), wb.log,
                                 actor=actor, name=_("revision of {name}").format(name=shown.name))
            evaluation.launch(store, user=wb.user, secrets=wb.secrets)
        except (EvalConfigError, RunNotStarted) as err:
            st.error(plain(err))
        else:
            revisions[shown.id], tried_for[evaluation.id] = (revision, evaluation.id), shown.id
            follow(evaluation)  # draws progress, then reruns onto the finished run: its verdict shows there


def _draw_verdict(original: SavedEvalRun, tried: SavedEvalRun, revision: rv.Revision, wb: Workbench,
                  use_config: Callable[[str], None]) -> None:
    st.subheader(_("The revision against the original"))
    st.code(rv.prompt_source(revision.revised), language=None, wrap_lines=True)
    for verdict in rv.judge(original.rows, tried.rows, revision):
        (st.success if verdict.better else st.info)(plain(verdict.sentence()))
    c1, c2 = st.columns(2)
    if c1.button(_("Adopt: replace the prompt in the config"), key=f"eval_rev_adopt_{original.id}"):
        use_config(to_yaml(rv.adopted(original.config, revision)))
        st.rerun()
    name = c2.text_input(_("Save in the prompt library as"), value=revision.original.label[:60],
                         key=f"eval_rev_name_{original.id}")
    if c2.button(_("💾 Save as a new version"), key=f"eval_rev_save_{original.id}", disabled=not name.strip()):
        saved = PromptLibrary(wb.settings.db_url, wb.user, wb.admin).save(
            name, rv.as_draft(revision, original.config.providers[0].model if original.config.providers
                                  else wb.settings.default_model), wb.user,
            note=_("revision from eval run {id}").format(id=original.id))
        st.success(_("Saved as {label}.").format(label=plain(saved.label)))

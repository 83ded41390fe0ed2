"""The Evals config tab's "Generate more cases": a chosen model writes N new inputs like the current cases (one
logged call), near-duplicates dropped; the user edits the preview and adds what they keep to the cases."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.evals.config import EvalConfig, TestCase
from core.evals.generate import MAX_CASES, generate_cases
from core.evals.revision import prompt_source
from core.formats.rendering import plain
from core.llm.pricing import format_cost
from pages._widgets import model_picker
from pages._workbench import Workbench


def draw_generate(config: EvalConfig, wb: Workbench) -> list[TestCase] | None:
    """Draw the section; returns the cases to add when the user adds them (None otherwise)."""
    state = st.session_state
    template = prompt_source(config.prompts[0]) if config.prompts else ""
    a, b = st.columns(2)
    n = a.number_input(_("How many"), 1, MAX_CASES, 10, key="eval_gen_n")
    with b:
        model = model_picker(wb, key="eval_gen_model")
    if st.button(_("✨ Generate cases"), key="eval_gen_go"):
        try:
            state.eval_generated = generate_cases(template, config.tests, int(n), wb.provider_for(model), model,
                                                  wb.context("evals"), wb.log)
        except PromptLabError as err:
            st.error(plain(err))
    made = state.get("eval_generated")
    if made is None:
        return None
    st.caption(_("{kept} new cases · {dropped} near-duplicates dropped · {cost}").format(
        kept=len(made.cases), dropped=made.duplicates, cost=format_cost(made.cost_usd)))
    if not made.cases:
        return None
    table = pd.DataFrame([c.vars for c in made.cases])
    edited = st.data_editor(table, num_rows="dynamic", key=f"eval_gen_table_{made.request_id}", width="stretch")
    if st.button(_("Add these cases"), key="eval_gen_add", type="primary"):
        source = made.cases[0].metadata.get("source")
        rows = edited.fillna("").astype(str).to_dict("records")
        state.pop("eval_generated")
        return [TestCase(vars=row, metadata={"source": source}) for row in rows if any(v.strip() for v in row.values())]
    return None

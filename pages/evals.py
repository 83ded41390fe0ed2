"""Evals: a promptfoo config (imported or edited), its test cases in a table, a run through the gate with live
progress and Cancel (stored as its cells finish; an interrupted run resumes), and results that decide — pass rates
with intervals, failures first, paired comparisons."""
import time

import streamlit as st

from core.base.i18n import _
from core.evals.config import (
    EXAMPLE_CONFIG,
    NO_FILES,
    ConfigFiles,
    EvalConfig,
    EvalConfigError,
    config_text_from_uploads,
    parse_config_text,
    tests_from_csv,
    tests_from_file,
    tests_to_csv,
    tests_to_jsonl,
    tests_to_yaml,
    to_yaml,
    with_files,
)
from core.evals.rating import Ratings
from core.evals.run import EvalRun, ProviderResolver, RunNotStarted, key_notes
from core.evals.store import EvalStore, SavedEvalRun
from core.formats.exports import table_from_csv
from core.formats.parse_limits import UPLOADED_BYTES
from core.formats.rendering import plain
from core.llm.attachments import UPLOAD_EXTENSIONS
from core.llm.pricing import format_cost
from core.policy.access import Identity
from pages._eval_batch import Poller, batch_choice, render_batches, submit_batch
from pages._eval_generate import draw_generate
from pages._eval_rating import render_rating
from pages._eval_results import render_results
from pages._eval_revision import draw_revision
from pages._eval_sets import draw_test_sets
from pages._widgets import available_models
from pages._workbench import response_cache, workbench

wb = workbench()
actor = Identity(wb.user, wb.admin)  # code in a config (python assertions) runs only for an admin
state = st.session_state
store = EvalStore(wb.settings.db_url, wb.user, wb.admin)  # runs hold outputs: each sees their own
# An imported file never gets the key for another URL; a non-admin's `apiBaseUrl` reaches public addresses only.
resolver = ProviderResolver(wb.settings, wb.provider, url_policy=wb.url_policy)
st.title(_("✅ Evals"))
state.setdefault("eval_box", {})  # written in `finally`, where st.session_state is off limits


def set_config_text(text: str) -> None:
    """Replace the config box's text (on the next run: a drawn widget's value cannot change in this one)."""
    state.eval_yaml_next = text


if "eval_yaml_next" in state:
    state.eval_yaml = state.pop("eval_yaml_next")
state.setdefault("eval_yaml", EXAMPLE_CONFIG % wb.settings.default_model)


def follow(evaluation: EvalRun) -> None:
    """Draw a started run's progress until it ends. Cancel is a click (it reruns the page, which interrupts the
    loop): the `finally` stops the cells and stores the run as cancelled with what finished."""
    st.button(_("⏹ Cancel"), key="eval_cancel")
    stored = evaluation.planned - len(evaluation.cells)  # a resumed run's cells from before
    bar = st.progress(0.0, text=_("Starting…"))
    box = state.eval_box  # taken now: after a Cancel click st.session_state raises
    try:
        while not evaluation.done():
            done, _total = evaluation.progress()
            bar.progress((stored + done) / evaluation.planned, text=_("{done} of {total} cells graded").format(
                done=stored + done, total=evaluation.planned))
            time.sleep(0.2)
    finally:
        if not evaluation.done():
            evaluation.cancel()
            evaluation.wait(60)
        evaluation.finish()
        box["last"] = evaluation.id
    st.rerun()


def resume(saved: SavedEvalRun) -> None:
    """Run the cells an interrupted (or cancelled) run is missing, with its config, and complete it."""
    try:
        evaluation = EvalRun.resume(saved, resolver, wb.context("evals"), wb.log, store, cache=response_cache(wb),
                                    actor=actor, secrets=wb.secrets)
    except RunNotStarted as err:  # the database refused, or another session resumed it first
        (st.warning if err.elsewhere else st.error)(str(err))
        return
    except EvalConfigError as err:  # e.g. a run with python assertions, resumed by a non-admin
        st.error(str(err))
        return
    follow(evaluation)


setup, run_tab, results_tab, rate_tab = st.tabs([_("📝 Config & cases"), _("▶ Run"), _("📊 Results"),
                                                 _("🧑‍⚖️ Rate")])

# ----- config ------------------------------------------------------------------------------------------------------
with setup:
    uploads = st.file_uploader(
        _("Import a promptfoo config (YAML), with the files it names"), key="eval_upload",
        type=["yaml", "yml", "csv", "jsonl", "json", "txt", "md", *UPLOAD_EXTENSIONS], accept_multiple_files=True,
        max_upload_size=UPLOADED_BYTES >> 20,
        help=_("Its file:// references read only these files, by name. A config typed or pasted below reads none."))
    # The files uploaded with the config are all its file:// references may read (core/eval_config.ConfigFiles).
    uploaded = {f.name: f.getvalue() for f in uploads or []}
    files = ConfigFiles(uploaded=uploaded) if uploaded else NO_FILES
    seen = tuple(sorted(f.file_id for f in uploads or []))
    if uploaded and state.get("eval_upload_seen") != seen:
        state.eval_upload_seen = seen
        try:
            set_config_text(config_text_from_uploads(uploaded))
            st.rerun()
        except EvalConfigError as err:
            st.error(plain(err))
    st.text_area(_("Config (promptfoo YAML)"), key="eval_yaml", height=260,
                 help=_("prompts, providers (openai:chat:<model>), defaultTest, tests with vars and assert."))
    config: EvalConfig | None = None
    try:
        config = parse_config_text(state.eval_yaml, files, actor=actor)
    except EvalConfigError as err:  # the text stays in the box to be fixed
        st.error(plain(err))
    if config is not None:
        for note in config.notes + key_notes(config, resolver):
            st.warning(plain(note))
        st.caption(_('{prompts} prompts × {providers} providers × {cases} cases').format(
            prompts=len(config.prompts), providers=len(config.providers), cases=len(config.tests)))
        st.subheader(_("Test cases"))
        try:
            table = table_from_csv(tests_to_csv(config.tests))  # the cases as written, without the CSV's quotes
            st.caption(_("One row per case: a column per variable, `__expected…` cells such as `icontains: days` "
                       "(promptfoo's CSV)."))
            edited = st.data_editor(table, num_rows="dynamic", key=f"eval_cases_{hash(state.eval_yaml)}",
                                    width="stretch")
            if not edited.equals(table):
                config.tests = with_files(tests_from_csv(edited.to_csv(index=False)), files)  # file:// vars read
                if st.button(_("Apply the table to the config"), key="eval_apply"):
                    set_config_text(to_yaml(config))
                    st.rerun()
        except EvalConfigError as err:
            st.info(_('{err} The cases are shown as YAML above.').format(err=err))
        c1, c2, c3, c4 = st.columns(4)
        c1.download_button(_("⬇ Config YAML"), to_yaml(config), "promptfooconfig.yaml", "application/x-yaml")
        c2.download_button(_("⬇ Cases JSONL"), tests_to_jsonl(config.tests), "cases.jsonl", "application/jsonl")
        c3.download_button(_("⬇ Cases YAML"), tests_to_yaml(config.tests), "cases.yaml", "application/x-yaml")
        try:
            c4.download_button(_("⬇ Cases CSV"), tests_to_csv(config.tests), "cases.csv", "text/csv")
        except EvalConfigError:
            c4.caption(_("CSV cannot hold these cases"))
        with st.expander(_("Generate more cases")):
            generated = draw_generate(config, wb)
            if generated:
                config.tests = [*config.tests, *generated]
                set_config_text(to_yaml(config))
                st.rerun()
        with st.expander(_("Test sets (saved, versioned)")):
            picked = draw_test_sets(store, config, wb.user)
            if picked is not None:
                config.tests = picked
                set_config_text(to_yaml(config))
                st.rerun()
            cases_file = st.file_uploader(_("Import cases (CSV, JSONL or YAML)"), type=["csv", "jsonl", "yaml", "yml"],
                                          key="eval_cases_upload", max_upload_size=UPLOADED_BYTES >> 20)
            if cases_file is not None and st.button(_("Use the imported cases"), key="eval_cases_use"):
                try:
                    config.tests = tests_from_file(cases_file.name, cases_file.getvalue())
                    set_config_text(to_yaml(config))
                    st.rerun()
                except EvalConfigError as err:  # its sentence names the file
                    st.error(plain(err))

# ----- run -----------------------------------------------------------------------------------------------------------
with run_tab:
    render_batches(store, Poller(store, resolver, wb.context("evals"), wb.log, actor=actor, secrets=wb.secrets))
    if config is None:
        st.info(_("Fix the config first (📝 Config & cases)."))
    else:
        c1, c2, c3 = st.columns(3)
        repeat = int(c1.number_input(_("Repeats"), 1, 20, 1, key="eval_repeat"))
        concurrency = int(c2.number_input(_("Concurrent calls"), 1, 32, 8, key="eval_concurrency"))
        allow_cache = c3.toggle(_("Reuse cached replies"), key="eval_cache",
                                help=_("Off: every cell asks the model. On: identical requests may be answered from "
                                     "the response cache (cost 0), which hides latency and variance."))
        graded = config.needs_grader
        if graded:
            models, _error = available_models(wb)
            choices = ["(the config's grader)" if config.grader else "(the first provider's model)", *models]
            grader = st.selectbox(_("Grader model"), choices, key="eval_grader",
                                  help=_("Answers the model-graded assertions; its calls are logged and priced too."))
            if grader != choices[0]:
                config.grader = grader
        try:
            evaluation = EvalRun(config, resolver, wb.context("evals"), wb.log, repeat=repeat, actor=actor,
                                 concurrency=concurrency, cache=response_cache(wb) if allow_cache else None)
        except EvalConfigError as err:  # e.g. code typed into the case table, or too many cells
            st.error(plain(err))
            st.stop()
        estimate = evaluation.estimate(lambda m, model: wb.provider_for(model).prompt_counter(model)(m),
                                       lambda model: wb.provider_for(model).pricing_id)
        cost = (_("cost unknown (unpriced models)") if estimate.unpriced_cells == len(evaluation.cells) else
                _("at most {cost}").format(cost=format_cost(estimate.max_cost_usd)))
        st.caption(_("{cells} cells · {tokens:,} input tokens · {cost}").format(
            cells=len(evaluation.cells), tokens=estimate.input_tokens, cost=cost)
            + (_(" · plus the grader's calls") if graded else ""))
        confirmed = True
        if estimate.max_cost_usd > wb.settings.confirm_cost_usd:
            confirmed = st.checkbox(_('This run may cost up to {cost} (over {limit}): run it anyway').format(
                cost=format_cost(estimate.max_cost_usd), limit=format_cost(wb.settings.confirm_cost_usd)),
                                    key="eval_confirm")
        as_batch, on_failure = batch_choice(wb)  # OpenAI's Batch API: half the price, polled by pages/_eval_batch
        if st.button(_("▶ Run eval"), type="primary", disabled=not confirmed or not evaluation.cells, key="eval_run"):
            # The run's row exists before its first cell, and each graded cell is stored as it finishes: a server
            # killed mid-run leaves an interrupted run with every finished cell (Resume, in 📊 Results).
            try:
                started = (submit_batch(evaluation, store, wb, on_failure) if as_batch
                           else evaluation.launch(store, user=wb.user, secrets=wb.secrets))
            except RunNotStarted as err:
                st.error(str(err))
            else:
                if started is not None:
                    follow(started)
                st.rerun()  # a batch is out: its progress view (above) takes over


# ----- results -------------------------------------------------------------------------------------------------------
with results_tab:
    render_results(store, wb.secrets, resume, revise=lambda run: draw_revision(
        run, wb=wb, store=store, resolver=resolver, actor=actor, follow=follow, use_config=set_config_text))
with rate_tab:  # blind side-by-side votes, each stored as it is cast, by the signed-in user
    render_rating(store, Ratings(wb.settings.db_url, wb.identity))

"""Evals: every prompt × provider × test case × repeat of an `EvalConfig` is one call through the gate (the
Playground's `MatrixRun`, page `evals`, tagged `run:<id>`), graded by its case's assertions as soon as it ends —
model-graded ones by a grader whose calls go through the gate too and count in the run's cost. Results say which
prompt is better: pass rates with Wilson intervals per configuration, paired comparisons, failures first.

A run is durable: given a `RunJournal` (core/evals/store.py), every graded cell is stored as it finishes, so a server
killed mid-run leaves an interrupted run that `EvalRun.resuming()` completes by running only the missing cells.

Headless: `python -m core evals run CONFIG.yaml [--output results.json] [--repeat N] [--concurrency N]` (see
core/cli.py) exits 0 when every case passes, 100 when some fail, 1 on an error — promptfoo's convention.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from core.base.errors import PromptLabError, scrub_secrets
from core.base.i18n import _
from core.calls.cache import ResponseCache
from core.calls.gate import CallContext, ChatRequest, ChatStream, logged_call
from core.calls.log import CallLog
from core.calls.pending_writes import PENDING
from core.evals import results as eval_results
from core.evals.assertions import MODEL_GRADED, Output, Verdict, aggregate, evaluate, render
from core.evals.config import EvalConfig, EvalConfigError, PromptSpec, ProviderSpec, TestCase, refuse_code
from core.evals.store import CANCELLED, DONE, INTERRUPTED, EvalStore, RunJournal, RunPlan, SavedEvalRun
from core.llm import file_vars
from core.llm.attachments import without_inline_data
from core.llm.pricing import format_cost_total
from core.llm.providers import Provider, request_params
from core.playground.matrix import CellResult, CellSpec, CostEstimate, MatrixRun, PreparedCell, estimate_cost
from core.policy.access import Identity
from core.policy.url_policy import UrlPolicy, same_endpoint

logger = logging.getLogger(__name__)

PAGE = "evals"
MAX_CELLS = 100_000  # one run's calls: the cells are built (and estimated) before it starts

# Which PromptLab provider serves a provider spec of the config (see `ProviderResolver`; tests pass a function).
Resolve = Callable[[ProviderSpec], Provider]


def messages_for(prompt: PromptSpec, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """The request a prompt makes for one case: its messages (or its text as the user message), slots filled.
    `variables` as promptfoo renders them (`promptfoo_vars`); a text prompt also sees `{{…}}` left in a value
    rendered (promptfoo renders each variable as a template before the prompt). Image and PDF variables become
    content parts (core.llm.file_vars: where promptfoo's JSON prompt puts them, else after the user message's
    text)."""
    template = prompt.messages if prompt.messages is not None else [{"role": "user", "content": prompt.text or ""}]
    if prompt.messages is None:
        variables = {k: render(v, variables) if isinstance(v, str) else v for k, v in variables.items()}
    return file_vars.place_files(template, variables, render)


_VAR_SLOT = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def js_string(value: Any) -> str:
    """A value as JavaScript's String() writes it (what promptfoo puts in place of a `{{var}}`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return "null" if value is None else str(value)


def _js_replacement(replacement: str, match: re.Match[str]) -> str:
    """JavaScript's String.replace special patterns in a replacement text: $$, $&, $` and $'."""
    whole = match.string
    specials = {"$": "$", "&": match.group(0), "`": whole[:match.start()], "'": whole[match.end():]}
    return re.sub(r"\$([$&`'])", lambda m: specials[m.group(1)], replacement)


def promptfoo_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """A case's variables as promptfoo 0.121.20 renders them before the prompt (its `renderPrompt`), which are also
    what its assertions see: every text value loses one trailing newline, then a `{{name}}` inside a value is
    replaced by that variable (the first slot of each value per pass, at most five passes; a slot naming no
    variable stays as written)."""
    out = {k: v[:-1] if isinstance(v, str) and v.endswith("\n") else v for k, v in variables.items()}
    for _pass in range(5):
        resolved = True
        for key, value in out.items():
            if not isinstance(value, str):
                continue
            match = _VAR_SLOT.search(value)
            if match is None or match.group(1) not in out:
                continue
            replacement = _js_replacement(js_string(out[match.group(1)]), match)
            out[key] = value[:match.start()] + replacement + value[match.end():]
            resolved = False
        if resolved:
            break
    return out


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The rendered prompt as one text (what graders and `context.prompt` see; an image as its short form)."""
    if len(messages) == 1 and isinstance(messages[0]["content"], str):
        return str(messages[0]["content"])
    return json.dumps(without_inline_data(messages), ensure_ascii=False)


def provider_spec(ref: str) -> ProviderSpec:
    """A grader reference ("openai:chat:gpt-4o-mini", "openai:gpt-4o", or a bare model id) as a provider spec."""
    model = ref.split(":", 2)[-1] if ref.startswith("openai:") else ref
    return ProviderSpec(id=ref, model=model)


@dataclass(frozen=True, kw_only=True)
class EvalCell:
    """Where a cell sits in the run: indices into the config (prompts, providers, cases as run) and the repeat;
    `position` is its place among all the run's cells (a resumed run holds only the missing ones)."""

    prompt_index: int
    provider_index: int
    test_index: int
    repeat: int
    vars: dict[str, Any]
    messages: list[dict[str, Any]]
    position: int = 0

    @property
    def key(self) -> str:
        """The cell's name in the stored run: the same config and repeat give the same keys."""
        return cell_key(self.prompt_index, self.provider_index, self.test_index, self.repeat)


def cell_key(prompt_index: int, provider_index: int, test_index: int, repeat: int) -> str:
    return f"p{prompt_index}.v{provider_index}.t{test_index}.r{repeat}"


@dataclass(kw_only=True)
class CellGrade:
    """A finished cell's verdict (filled in by the worker that ran it)."""

    passed: bool
    score: float
    reason: str
    verdicts: list[Verdict]
    grader_cost_usd: float | None = 0.0
    error: str | None = None  # the call failed: no output to grade


class RunNotStarted(ValueError):
    """A stored run that did not start, with the sentence shown; nothing was sent. `elsewhere`: another session
    resumed it first (a notice to reload, not a failure)."""

    def __init__(self, message: str, *, elsewhere: bool = False) -> None:
        super().__init__(message)
        self.elsewhere = elsewhere


def _not_stored() -> RunNotStarted:
    return RunNotStarted(_("The run could not be stored (the database is busy or read-only), so it was not "
                           "started: try again in a moment."))


class EvalRun:
    """A running (or finished) eval. Start it, poll `progress()`, `cancel()` keeps what finished. `skip`: keys of
    cells already stored (a resumed run runs the others)."""

    def __init__(self, config: EvalConfig, resolve: Resolve, context: CallContext, log: CallLog, *,
                 repeat: int = 1, concurrency: int = 8, cache: ResponseCache | None = None,
                 run_id: str | None = None, name: str | None = None, skip: Collection[str] = (),
                 actor: Identity | None = None):
        """`actor`: who runs it. Code in the cases (python, javascript assertions) runs only for an admin; for anyone else,
        or nobody in particular (None), such a config raises EvalConfigError here, whatever path it came by."""
        if not 1 <= repeat <= 20:
            raise ValueError("Repeats go from 1 to 20.")
        self.concurrency, self.cached = concurrency, cache is not None
        self.config = config
        self.cases: list[TestCase] = config.cases()
        refuse_code(self.cases, actor)
        if any(isinstance(v, str) and v.startswith("file://") and file_vars.is_attachment_name(v)
               for case in self.cases for v in case.vars.values()):  # a stored run's: its files were not kept
            raise EvalConfigError(_("This run's image and PDF variables were not stored with it: run its config "
                                    "again together with those files."))
        self.allow_code = actor is not None and actor.admin
        cells = len(config.prompts) * len(config.providers) * len(self.cases) * repeat
        if cells > MAX_CELLS:
            raise EvalConfigError(_('This eval has {cells:,} cells (prompts × providers × cases × repeats): at most '
                                    '{limit:,} run at once.').format(cells=cells, limit=MAX_CELLS))
        self.resolve = resolve
        self.log = log
        self.id = run_id or uuid.uuid4().hex[:12]
        self.name = name or config.description or f"eval-{self.id}"
        self.context = CallContext(PAGE, context.user, context.session, [*context.tags, f"run:{self.id}"])
        self.grader_context = CallContext(PAGE, context.user, context.session,
                                          [*context.tags, f"run:{self.id}", "grader"])
        self.repeat = repeat
        self.cells: list[EvalCell] = []
        self.planned = 0  # every cell of the run, the skipped ones included
        prepared: list[PreparedCell] = []
        providers = [resolve(p) for p in config.providers]
        # The keys in play (the providers' and graders'): never in a stored cell, whatever the model said.
        self._keys: set[str] = {p.api_key for p in providers if p.api_key}
        for pi, prompt in enumerate(config.prompts):
            for vi, spec in enumerate(config.providers):
                provider = providers[vi]
                params = _params(provider, spec)
                for ti, case in enumerate(self.cases):
                    variables = promptfoo_vars(case.vars)
                    messages = messages_for(prompt, variables)
                    for r in range(1, repeat + 1):
                        position, self.planned = self.planned, self.planned + 1
                        if cell_key(pi, vi, ti, r) in skip:
                            continue
                        self.cells.append(EvalCell(prompt_index=pi, provider_index=vi, test_index=ti, repeat=r,
                                                   vars=variables, messages=messages, position=position))
                        prepared.append(PreparedCell(
                            CellSpec(prompt.label, spec.model, params.get("temperature"), r), provider, messages,
                            params, tools=list(params.get("tools") or []), api=spec.api))
        self.grades: list[CellGrade | None] = [None] * len(self.cells)
        self._lock = threading.Lock()
        self.matrix = MatrixRun(prepared, self.context, log, concurrency, on_done=self._grade, cache=cache)
        self._embeddings_missing: set[str] = set()
        self.journal: RunJournal | None = None

    @classmethod
    def resuming(cls, saved: SavedEvalRun, resolve: Resolve, context: CallContext, log: CallLog, *,
                 cache: ResponseCache | None = None, actor: Identity | None = None) -> EvalRun:
        """The cells a stored run is missing, with its config, repeats and concurrency, under its id (its calls are
        tagged with the same run). `cache` only if the run allowed it; `actor` as for a new run (code in the cases
        runs only for an admin)."""
        plan = saved.plan or RunPlan(cells=len(saved.rows))
        return cls(saved.config, resolve, context, log, repeat=plan.repeat, concurrency=plan.concurrency,
                   cache=cache if plan.cache else None, run_id=saved.id, name=saved.name, skip=saved.cell_keys, actor=actor)

    @property
    def plan(self) -> RunPlan:
        return RunPlan(cells=self.planned, repeat=self.repeat, concurrency=self.concurrency, cache=self.cached)

    # ----- running ---------------------------------------------------------------------------------------------
    def start(self, journal: RunJournal | None = None) -> EvalRun:
        """Run the cells; with a journal each graded cell is stored as it finishes (`finish()` closes it)."""
        self.journal = journal
        self.matrix.start()
        return self

    def start_stored(self, store: EvalStore, *, user: str | None = None,
                     secrets: Iterable[str | None] = ()) -> EvalRun:
        """Create the run's row in the store (before the first cell), then start: each graded cell is stored as it
        finishes. The keys in play (`secrets` and the run's providers' own) are never stored."""
        return self.start(store.begin_run(self.id, self.name, self.config, self.plan, user=user,
                                          secrets=(*secrets, *self.keys())))

    def resume_stored(self, store: EvalStore, *, secrets: Iterable[str | None] = ()) -> bool:
        """Claim the stored run this one resumes (see `resuming`) and start its missing cells; False when it is no
        longer interrupted (another session resumed it first)."""
        journal = store.take_over(self.id, secrets=(*secrets, *self.keys()))
        if journal is None:
            return False
        self.start(journal)
        return True

    def launch(self, store: EvalStore, *, user: str | None = None, secrets: Iterable[str | None] = ()) -> EvalRun:
        """The Run button: `start_stored`, with a database that refuses the run's row as a RunNotStarted sentence
        (the run needs its row before its first cell, so nothing was sent)."""
        try:
            return self.start_stored(store, user=user, secrets=secrets)
        except SQLAlchemyError:
            raise _not_stored() from None

    @classmethod
    def resume(cls, saved: SavedEvalRun, resolve: Resolve, context: CallContext, log: CallLog, store: EvalStore, *,
               cache: ResponseCache | None = None, actor: Identity | None = None,
               secrets: Iterable[str | None] = ()) -> EvalRun:
        """The Resume button: the missing cells of an interrupted (or cancelled) run, claimed and started. Raises
        EvalConfigError when the actor may not run its cases (python, for a non-admin) and RunNotStarted when the
        database refuses the claim or another session resumed it first."""
        evaluation = cls.resuming(saved, resolve, context, log, cache=cache, actor=actor)
        try:
            claimed = evaluation.resume_stored(store, secrets=secrets)
        except SQLAlchemyError:
            raise _not_stored() from None
        if not claimed:
            raise RunNotStarted(_("This run is no longer interrupted (another session may have resumed it): reload "
                                  "the page."), elsewhere=True)
        return evaluation

    def outcome(self) -> str:
        """How the run ended: done (every cell graded), cancelled, or interrupted (a cell's worker died)."""
        if self.matrix.cancelled():
            return CANCELLED
        return DONE if all(g is not None for g in self.grades) else INTERRUPTED

    def finish(self) -> str:
        """Close the journal with the run's outcome (after `wait()`); returns the state stored. A database that
        refuses the write now gets it again later (core/calls/pending_writes.py), as a call's record would."""
        outcome, journal = self.outcome(), self.journal
        if journal is None:
            return outcome
        try:
            return journal.finish(outcome)
        except Exception as exc:  # busy past its timeout, full disk: retried in the background
            logger.warning("eval run %s: state not stored, retried: %s", self.id,
                           scrub_secrets(repr(exc), self.keys()))

            def retry() -> None:
                journal.finish(outcome)
            PENDING.add(f"eval run {self.id}", retry)
            return outcome

    def cancel(self) -> None:
        self.matrix.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        return self.matrix.wait(timeout)

    def done(self) -> bool:
        return self.matrix.done()

    @property
    def results(self) -> list[CellResult]:
        return self.matrix.results

    def estimate(self, count_tokens: Callable[[list[dict[str, Any]], str], int],
                 pricing_id: Callable[[str], str | None]) -> CostEstimate:
        """What the cells may cost before the run (graders' calls come on top)."""
        return estimate_cost([(c.spec, c.messages, c.params.get("max_tokens") or c.params.get(
            "max_completion_tokens")) for c in self.matrix.cells], count_tokens, pricing_id)

    def progress(self) -> tuple[int, int]:
        """(cells graded, cells in all)."""
        return sum(g is not None for g in self.grades), len(self.cells)

    def _grade(self, i: int, result: CellResult) -> None:
        """Runs in the cell's worker once its call has ended: grade it, then store it (with a journal)."""
        self.grades[i] = self._verdict(i, result)
        if self.journal is None:
            return
        journal, cell, row, keys = self.journal, self.cells[i], self._row(i), self.keys()
        try:
            journal.record(cell.key, cell.position, row, keys)
        except Exception as exc:  # busy past its timeout, full disk: retried in the background (and until it is
            # stored the run reads as missing this cell, which a resume would run again)
            logger.warning("eval run %s: cell %s not stored, retried: %s", self.id, cell.key,
                           scrub_secrets(repr(exc), keys))
            PENDING.add(f"eval cell {self.id}/{cell.key}", lambda: journal.record(cell.key, cell.position, row, keys))

    def keys(self) -> frozenset[str]:
        """The keys in play so far (the providers' and the graders' the run has used)."""
        with self._lock:
            return frozenset(self._keys)

    def _note_key(self, key: str | None) -> None:
        if key:
            with self._lock:  # graders resolve in the cells' worker threads
                self._keys.add(key)

    def _verdict(self, i: int, result: CellResult) -> CellGrade:
        cell, case = self.cells[i], self.cases[self.cells[i].test_index]
        if result.status != "ok":
            reason = result.error or ("cancelled" if result.status == "cancelled" else "the call failed")
            return CellGrade(passed=False, score=0.0, reason=reason, verdicts=[], error=reason)
        metrics = result.metrics
        output = Output(text=result.text if not result.tool_calls else json.dumps(
            [{"id": c.get("id"), "type": "function", "function": {"name": c.get("name"),
                                                                   "arguments": c.get("arguments")}}
             for c in result.tool_calls]),
            latency_ms=metrics.latency_ms if metrics else None, cost_usd=metrics.cost_usd if metrics else None,
            cached=bool(metrics and metrics.cached), tool_calls=[
                {"function": {"name": c.get("name"), "arguments": c.get("arguments")}} for c in result.tool_calls],
            tools=self.matrix.cells[i].tools, prompt=prompt_text(cell.messages), vars=file_vars.text_vars(cell.vars))
        spent: list[float | None] = []
        needs_grader = any(a.base_type in MODEL_GRADED for a in case.assertions)
        grader = self._grader(spent) if needs_grader else None
        embedder = self._embedder() if needs_grader else None
        verdicts = [evaluate(a, output, grader, embedder, self._default_grader(), allow_code=self.allow_code)
                    for a in case.assertions]
        verdict = aggregate(verdicts, case.threshold)
        cost = None if any(c is None for c in spent) else sum(c or 0.0 for c in spent)
        return CellGrade(passed=verdict.passed, score=verdict.score, reason=verdict.reason, verdicts=verdicts,
                         grader_cost_usd=cost)

    def _default_grader(self) -> str:
        """The config's grader, else the first provider's model (promptfoo would default to an OpenAI model)."""
        return self.config.grader or self.config.providers[0].id

    def _grader(self, spent: list[float | None]) -> Callable[[list[dict[str, str]], str | None], str]:
        def ask(messages: list[dict[str, str]], which: str | None) -> str:
            spec = provider_spec(which or self._default_grader())
            provider = self.resolve(spec)
            self._note_key(provider.api_key)
            params = request_params(provider, spec.model, temperature=0.0)
            stream = ChatStream(provider, ChatRequest(spec.model, messages, params), self.grader_context, self.log)
            text = "".join(stream)
            outcome = stream.outcome
            spent.append(outcome.cost_usd if outcome else None)
            if outcome is not None and outcome.error is not None:
                raise outcome.error
            return text
        return ask

    def _embedder(self) -> Callable[[list[str], str | None, str], list[list[float]] | None]:
        def embed(texts: list[str], which: str | None, model: str) -> list[list[float]] | None:
            spec = provider_spec(which or self._default_grader())
            provider = self.resolve(spec)
            self._note_key(provider.api_key)
            if provider.kind == "local" or provider.base_url in self._embeddings_missing:
                return None
            try:
                response, _ = logged_call(provider, self.grader_context, self.log,
                                          lambda client: client.embeddings.create(model=model,
                                                                                  input=texts),
                                          model=model, operation="embeddings", endpoint="embeddings")
            except PromptLabError:
                self._embeddings_missing.add(provider.base_url or "")
                return None  # no embeddings there: word overlap instead (the verdict's reason says so)
            return [list(d.embedding) for d in response.data]
        return embed

    # ----- results ---------------------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One object per cell (results.json's `results`): where it sits, what it said, its verdicts."""
        return [self._row(i) for i in range(len(self.cells))]

    def _row(self, i: int) -> dict[str, Any]:
        cell, result, grade = self.cells[i], self.results[i], self.grades[i]
        metrics = result.metrics
        return {
            "prompt_index": cell.prompt_index, "prompt": self.config.prompts[cell.prompt_index].label,
            "provider": self.config.providers[cell.provider_index].id, "test_index": cell.test_index,
            "description": self.cases[cell.test_index].description, "repeat": cell.repeat,
            "vars": file_vars.plain_vars(cell.vars), "output": result.text, "status": result.status, "graded": grade is not None,
            "pass": bool(grade and grade.passed), "score": grade.score if grade else 0.0,
            "reason": grade.reason if grade else "not run",
            "error": (grade.error if grade else None) or result.error,
            "latency_ms": metrics.latency_ms if metrics else None,
            "cost_usd": metrics.cost_usd if metrics else None,
            "grader_cost_usd": grade.grader_cost_usd if grade else None,
            "input_tokens": metrics.input_tokens if metrics else None,
            "output_tokens": metrics.output_tokens if metrics else None,
            "request_id": metrics.request_id if metrics else None,
            "assertions": [v.to_dict() for v in grade.verdicts] if grade else [],
            "grading": [{"type": v.type, "prompt": v.grading_prompt} for v in grade.verdicts
                        if v.grading_prompt] if grade else [],
        }

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.id, "name": self.name, **eval_results.summary(self.rows())}

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary(), "results": self.rows(), "notes": self.config.notes},
                          ensure_ascii=False, indent=2, default=str)


def _params(provider: Provider, spec: ProviderSpec) -> dict[str, Any]:
    """A provider spec's parameters in the form this provider takes (max tokens named as it expects)."""
    params = spec.params()
    max_tokens = params.pop("max_tokens", None) or params.pop("max_completion_tokens", None)
    temperature = params.pop("temperature", None)
    return request_params(provider, spec.model, temperature=temperature, max_tokens=max_tokens, **params)


def exit_code(run: EvalRun) -> int:
    """promptfoo's convention: 0 every case passed, 100 some failed (or errored)."""
    return 0 if all(g is not None and g.passed for g in run.grades) else 100


def summary_table(run: EvalRun, pairs: list[tuple[int, int]] | None = None) -> str:
    """The plain-text table the command line prints: one numbered row per configuration (labels cut but never
    alike), then McNemar for the `pairs` of row numbers the user picked (`--compare 1 3`), or by default for every
    two configurations that differ in one thing (two prompts on one provider, two providers with one prompt)."""
    return rows_table(run.rows(), pairs)


def rows_table(rows: list[dict[str, Any]], pairs: list[tuple[int, int]] | None = None) -> str:
    """`summary_table` of result rows (a stored run's, e.g. a batch run finished by another process)."""
    configs = eval_results.config_summaries(rows)
    labels = eval_results.distinct_labels([c.label for c in configs], 44)
    lines = [f"{'#':>3s} {'configuration':44s} {'pass':>9s} {'rate':>6s} {'95% interval':>15s} {'errors':>6s} "
             f"{'cost':>10s}"]
    for n, (c, label) in enumerate(zip(configs, labels, strict=True), 1):
        rate = "–" if c.rate is None else f"{c.rate:.0%}"
        low, high = c.interval
        cost = format_cost_total(c.cost_usd, c.unpriced)
        lines.append(f"{n:>3d} {label:44s} {c.passed:>4d}/{c.total:<4d} {rate:>6s} {low:>6.0%} – {high:<6.0%} "
                     f"{c.errors:>6d} {cost:>10s}")
    if pairs:
        comparisons = [eval_results.compare_configs(rows, (configs[a - 1].prompt, configs[a - 1].provider),
                                                    (configs[b - 1].prompt, configs[b - 1].provider))
                       for a, b in pairs]
    else:
        comparisons = eval_results.paired_comparisons(rows)
    if comparisons:  # the same cases under two configurations: is the difference more than chance?
        lines.append("")
        lines.append("paired comparisons (exact McNemar on the cases that flipped):")
        lines.extend(f"  {c.sentence()}" for c in comparisons)
    return "\n".join(lines)


@dataclass
class ProviderResolver:
    """Which provider serves a config's provider spec: `local/…` models the offline model; a spec without
    `apiBaseUrl`, or with the configured endpoint's, the configured provider (its key); another `apiBaseUrl` a
    compatible server that gets no key — an imported file must not be able to send the configured key elsewhere —
    unless `apiKeyEnvar` names one and `environ` is given (the command line, the user's own environment). Such a URL
    chosen by someone who is not an admin passes `url_policy` on every request (public addresses or what the admins
    allow-listed: core/policy/url_policy.py); a refused one fails its cells with that sentence, and nothing is sent."""

    settings: Any
    configured: Provider
    environ: dict[str, str] | None = None
    url_policy: UrlPolicy | None = None  # None: an admin's run, or the command line (the user's own machine)

    def __call__(self, spec: ProviderSpec) -> Provider:
        from core.llm.local_model import is_local_model
        from core.llm.providers import local_provider

        if is_local_model(spec.model):
            return local_provider(self.settings)
        url = spec.api_base_url
        if not url or (self.configured.kind != "local" and same_endpoint(url, self.configured.base_url)):
            return self.configured
        named = spec.config.get("apiKeyEnvar")
        key = self.environ.get(named) if self.environ is not None and named else None
        return Provider("compatible", url, key, timeout_s=self.settings.timeout_s,
                        max_retries=self.settings.max_retries, url_policy=self.url_policy)


def key_notes(config: EvalConfig, resolver: ProviderResolver) -> list[str]:
    """One sentence per provider that will be called without a key (another endpoint than the configured one)."""
    notes = []
    for spec in config.providers:
        provider = resolver(spec)
        if provider.kind == "compatible" and not provider.api_key and provider is not resolver.configured:
            notes.append(f"“{spec.id}” points at {spec.api_base_url}, not the configured endpoint: it is called "
                         "without your key.")
    return notes

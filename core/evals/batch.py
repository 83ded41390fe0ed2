"""Eval runs through OpenAI's Batch API: half the price, results within 24 hours.

`submit()` builds one JSONL file per provider of the config (a batch serves one model; `custom_id` = the cell's
key), uploads it (`files.create(purpose="batch")`), creates the batch (`batches.create(…, "/v1/chat/completions",
"24h")`) and stores it in `eval_batches` (m016) beside the run, whose row reads `batch` meanwhile. `poll()` — any
process, any time, after a restart too — retrieves each batch; a finished one's output is downloaded and every line
ingested like a live cell: graded by the same assertions in `EvalRun`, stored in `eval_run_cells`, and one CallRecord
in the call log (page `evals`, tags `run:<id>`, `batch:<batch id>`, `endpoint:batch`) priced at the batch rate
(`core.llm.pricing.batch_cost_usd`). Lines that failed or never ran (an expired batch) run live through the gate, or
are stored as failed cells when the user chose "report"; the run's notes say which. `cancel()` asks OpenAI to stop;
the lines that finished are kept and the run ends cancelled (Resume runs the rest live). A server without
`/files` or `/batches` (most compatible servers) gets one sentence, and the run goes live at once.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import openai
import sqlalchemy as sa

from core.base.clock import utc_now_iso
from core.base.errors import scrub_secrets, to_user_error
from core.base.i18n import _
from core.calls.gate import CallContext, book
from core.calls.log import TEXT_POLICY, CallLog, CallRecord, CallTexts, owner_gone, process_owner
from core.calls.metrics import CallMetrics
from core.evals.run import EvalRun, Resolve
from core.evals.store import CANCELLED, DONE, INTERRUPTED, RUNNING, EvalStore, RunJournal
from core.llm.pricing import TokenUsage, batch_cost_usd
from core.llm.providers import Provider, kind_label
from core.playground.matrix import CellResult
from core.policy.access import Identity
from core.policy.workspace import Workspace

logger = logging.getLogger(__name__)

BATCH = "batch"  # eval_runs.status while the run's batches are out
WAITING, INGESTING, INGESTED = "waiting", "ingesting", "ingested"  # PromptLab's step with one batch
TERMINAL = ("completed", "failed", "expired", "cancelled")  # the Batch API's end states
UNSUPPORTED = "unsupported"  # a part the server could not take (no Batch API, the Responses API): it runs live
LIVE, REPORT = "live", "report"  # what becomes of lines that failed or never ran
ENDPOINT = "/v1/chat/completions"
AZURE_ENDPOINT = "/chat/completions"  # Azure OpenAI's batch samples name the endpoint without the version


def _endpoint(provider: Provider) -> str:
    return AZURE_ENDPOINT if provider.kind == "azure" else ENDPOINT
BATCH_KINDS = ("openai", "azure")
_table = sa.table("eval_batches", *(sa.column(c) for c in (
    "run_id", "part", "provider_index", "model", "batch_id", "input_file_id", "output_file_id", "error_file_id",
    "status", "phase", "owner", "total", "completed", "failed_count", "keys", "failed", "on_failure",
    "cancel_requested", "notes", "created_at", "polled_at", "ended_at")))


def batch_refusal(provider: Provider) -> str | None:
    """Why this provider cannot take a batch run (one sentence), None when it can: OpenAI's and Azure's Batch API."""
    if provider.kind in BATCH_KINDS:
        return None
    return _("Batch runs need OpenAI or Azure OpenAI: this provider ({kind}) has no Batch API.").format(
        kind=kind_label(provider.kind))


@dataclass(frozen=True, kw_only=True)
class BatchPart:
    """One batch of a run (the cells of one provider of the config), as stored."""

    part: int
    provider_index: int
    model: str
    batch_id: str | None
    status: str
    phase: str
    total: int
    completed: int
    failed_count: int
    keys: list[str]
    failed: dict[str, str]
    on_failure: str
    cancel_requested: bool
    created_at: str
    polled_at: str | None
    ended_at: str | None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class BatchProgress:
    """Where a batch run is: its batches, the run's own state (batch while out; then done / cancelled / …), and the
    notes (what went live, what was reported, a server without the Batch API)."""

    run_id: str
    name: str
    run_status: str
    parts: list[BatchPart]

    @property
    def finished(self) -> bool:
        return self.run_status != BATCH

    @property
    def total(self) -> int:
        return sum(p.total for p in self.parts)

    @property
    def completed(self) -> int:
        return sum(p.completed for p in self.parts)

    @property
    def failed(self) -> int:
        return sum(p.failed_count for p in self.parts)

    @property
    def status(self) -> str:
        """The batches' statuses as one word each, e.g. `in_progress` or `completed, expired`."""
        return ", ".join(dict.fromkeys(p.status for p in self.parts)) or "-"

    @property
    def polled_at(self) -> str | None:
        return max((p.polled_at for p in self.parts if p.polled_at), default=None)

    @property
    def notes(self) -> list[str]:
        return [n for p in self.parts for n in p.notes]


@dataclass
class Submitted:
    """What `submit` did: the run's id, and `live` (the evaluation started through the gate) with the sentence
    why, when the server has no Batch API."""

    run_id: str
    live: EvalRun | None = None
    note: str | None = None


# ----- storage ------------------------------------------------------------------------------------------------------
def _parts(store: EvalStore, run_id: str) -> list[BatchPart]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM eval_batches WHERE run_id = :r ORDER BY part"),
                            {"r": run_id}).all()
    return [BatchPart(part=r.part, provider_index=r.provider_index, model=r.model, batch_id=r.batch_id,
                      status=r.status, phase=r.phase, total=r.total, completed=r.completed,
                      failed_count=r.failed_count, keys=json.loads(r.keys), failed=json.loads(r.failed or "{}"),
                      on_failure=r.on_failure, cancel_requested=bool(r.cancel_requested), created_at=r.created_at,
                      polled_at=r.polled_at, ended_at=r.ended_at, input_file_id=r.input_file_id,
                      output_file_id=r.output_file_id, error_file_id=r.error_file_id,
                      notes=json.loads(r.notes or "[]")) for r in rows]


def _update(store: EvalStore, run_id: str, part: int, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(_table.update().where((_table.c.run_id == run_id) & (_table.c.part == part)).values(**values))


def _run_status(store: EvalStore, run_id: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT status FROM eval_runs WHERE id = :id"), {"id": run_id}).scalar()


def _viewer_sql(store: EvalStore) -> str:
    """The store's viewer sees their own runs (an admin, or maintenance code with no viewer, every run)."""
    return " AND user_id = :viewer" if store.viewer is not None and not store.admin else ""


def _runs(store: EvalStore, where: str, params: dict[str, Any]) -> list[Any]:
    """(id, name, status) of the viewer's runs matching `where`, newest first: the run rows only, never their
    cells (the Evals page asks on every render)."""
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT id, name, status FROM eval_runs WHERE {where}{_viewer_sql(store)} "
                                          "ORDER BY created_at DESC"), {**params, "viewer": store.viewer}).all())


def progress(store: EvalStore, run_id: str) -> BatchProgress | None:
    """A run's batches as stored (no call): None when the run was not a batch run, or is not the viewer's."""
    found = _runs(store, "id = :id", {"id": run_id})
    if not found:
        return None
    parts = _parts(store, run_id)
    if not parts:
        return None
    return BatchProgress(run_id=run_id, name=found[0].name, run_status=found[0].status, parts=parts)


def waiting_runs(store: EvalStore) -> list[str]:
    """The viewer's runs whose batches are still out, newest first (what the page shows after a restart)."""
    return [r.id for r in _runs(store, "status = :b", {"b": BATCH})]


def _journal(store: EvalStore, run_id: str, planned: int, secrets: Iterable[str | None]) -> RunJournal:
    return RunJournal(store.engine, run_id, planned, tuple(s for s in secrets if s),
                      Workspace(store.engine).load(TEXT_POLICY))


# ----- submitting ---------------------------------------------------------------------------------------------------
def _jsonl(evaluation: EvalRun, indices: list[int], endpoint: str) -> bytes:
    """The batch's input file: one request per cell, its `custom_id` the cell's key."""
    lines = []
    for i in indices:
        cell, prepared = evaluation.cells[i], evaluation.matrix.cells[i]
        lines.append(json.dumps({"custom_id": cell.key, "method": "POST", "url": endpoint,
                                 "body": {"model": prepared.spec.model, "messages": prepared.messages,
                                          **prepared.params}}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def _no_batch_api(exc: BaseException) -> bool:
    """The server has no Batch API: a 404 (or 405) on /files or /batches."""
    return isinstance(exc, openai.APIStatusError) and exc.status_code in (404, 405)


def submit(evaluation: EvalRun, store: EvalStore, *, user: str | None = None, secrets: Iterable[str | None] = (),
           on_failure: str = LIVE) -> Submitted:
    """The "Run as a batch" button (one call): the run's row, then one batch per provider of the config. A server
    without the Batch API: the run starts live (returned in `live`, with the sentence in `note`). Raises
    PromptLabError (one sentence) when the upload or the batch is refused otherwise; the run is then interrupted
    (Resume runs it live)."""
    if on_failure not in (LIVE, REPORT):
        raise ValueError(on_failure)
    secrets = tuple(secrets)
    journal = store.begin_run(evaluation.id, evaluation.name, evaluation.config, evaluation.plan, user=user,
                              secrets=(*secrets, *evaluation.keys()))
    groups: dict[int, list[int]] = {}
    for i, cell in enumerate(evaluation.cells):
        groups.setdefault(cell.provider_index, []).append(i)
    now = utc_now_iso()
    out: list[tuple[Provider, str]] = []  # the batches created so far
    for part, (vi, indices) in enumerate(sorted(groups.items())):
        prepared = evaluation.matrix.cells[indices[0]]
        provider = prepared.provider
        row: dict[str, Any] = {"run_id": evaluation.id, "part": part, "provider_index": vi,
                               "model": prepared.spec.model, "status": "validating", "phase": WAITING,
                               "total": len(indices), "keys": json.dumps([evaluation.cells[i].key for i in indices]),
                               "on_failure": on_failure, "created_at": now, "cancel_requested": False}
        note = None
        if prepared.api != "chat":
            note = _("{model}: the Responses API is not sent as a batch here; its cells run live.").format(
                model=prepared.spec.model)
        elif batch_refusal(provider) is not None:
            note = batch_refusal(provider)
        else:
            try:
                client: Any = provider.client()
                endpoint = _endpoint(provider)
                uploaded = client.files.create(
                    file=(f"{evaluation.id}-{part}.jsonl", _jsonl(evaluation, indices, endpoint)), purpose="batch")
                row["input_file_id"] = uploaded.id
                batch = client.batches.create(input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h",
                                              metadata={"promptlab_run": evaluation.id})
                row.update(batch_id=batch.id, status=batch.status)
                out.append((provider, batch.id))
            except Exception as exc:
                if not _no_batch_api(exc):
                    _cancel_quietly(out)  # no batch of a run that did not start stays out
                    journal.finish(INTERRUPTED)
                    raise to_user_error(exc, secrets=(provider.api_key, *secrets), model=prepared.spec.model,
                                        operation="batch") from None
                note = _("This server has no Batch API (/files or /batches answered {status}): the run goes live "
                         "instead, at the normal price.").format(status=getattr(exc, "status_code", 404))
        if note is not None:
            row.update(status=UNSUPPORTED, phase=INGESTED, notes=json.dumps([note], ensure_ascii=False),
                       ended_at=now)
        with store.engine.begin() as conn:
            conn.execute(_table.insert().values(**row))
    if not out:  # nothing went out as a batch: the run is a live run, started now
        notes = [n for p in _parts(store, evaluation.id) for n in p.notes]
        evaluation.start(journal)
        return Submitted(evaluation.id, live=evaluation, note=notes[0] if notes else None)
    with store.engine.begin() as conn:  # out: no process owns the run while OpenAI works on it
        conn.execute(sa.text("UPDATE eval_runs SET status = :b, owner = NULL, updated_at = :t WHERE id = :id"),
                     {"b": BATCH, "t": utc_now_iso(), "id": evaluation.id})
    return Submitted(evaluation.id)


def _cancel_quietly(out: list[tuple[Provider, str]]) -> None:
    """Cancel the batches a failed submission already created (best effort: a batch left out costs money)."""
    for provider, batch_id in out:
        try:
            provider.client().batches.cancel(batch_id)
        except Exception as exc:  # nothing more to do: the sentence the caller shows is the submission's
            logger.warning("batch %s not cancelled: %s", batch_id, type(exc).__name__)


# ----- polling ------------------------------------------------------------------------------------------------------
@dataclass
class Poller:
    """What polling needs besides the store: how a config's providers resolve (keys included), the caller's
    context (its tags join `run:<id>`), the call log, who runs it (code in cases) and the keys in play."""

    store: EvalStore
    resolve: Resolve
    context: CallContext
    log: CallLog
    actor: Identity | None = None
    secrets: tuple[str, ...] = ()

    def provider(self, run_id: str, part: BatchPart) -> Provider:
        saved = self.store.run(run_id)
        assert saved is not None
        return self.resolve(saved.config.providers[part.provider_index])

    def cancel(self, run_id: str) -> BatchProgress | None:
        """Ask OpenAI to stop the run's batches: what finished is kept when they end (the next polls)."""
        for part in _parts(self.store, run_id):
            if part.phase != WAITING or part.batch_id is None or part.status in TERMINAL:
                continue
            provider = self.provider(run_id, part)
            try:
                batch = provider.client().batches.cancel(part.batch_id)
            except Exception as exc:
                if isinstance(exc, openai.ConflictError):  # it ended meanwhile
                    continue
                raise to_user_error(exc, secrets=(provider.api_key, *self.secrets), operation="batch") from None
            _update(self.store, run_id, part.part, status=batch.status, cancel_requested=True)
        return progress(self.store, run_id)

    def poll(self, run_id: str) -> BatchProgress | None:
        """One look at each of the run's batches: ended ones are ingested; when all have ended, the lines that
        failed or never ran are run live (or reported) and the run ends. Returns where the run is now."""
        if progress(self.store, run_id) is None:
            return None
        for part in _parts(self.store, run_id):
            if part.phase == INGESTING and owner_gone(part_owner(self.store, run_id, part.part) or ""):
                _update(self.store, run_id, part.part, phase=WAITING, owner=None)  # its ingester died: again
                part = next(p for p in _parts(self.store, run_id) if p.part == part.part)
            if part.phase != WAITING or part.batch_id is None:
                continue
            provider = self.provider(run_id, part)
            try:
                batch = provider.client().batches.retrieve(part.batch_id)
            except Exception as exc:
                raise to_user_error(exc, secrets=(provider.api_key, *self.secrets), operation="batch") from None
            counts = batch.request_counts
            _update(self.store, run_id, part.part, status=batch.status, polled_at=utc_now_iso(),
                    output_file_id=batch.output_file_id, error_file_id=batch.error_file_id,
                    **({"completed": counts.completed, "failed_count": counts.failed} if counts else {}))
            if batch.status in TERMINAL:
                self._ingest(run_id, part, provider, batch)
        parts = _parts(self.store, run_id)
        if parts and all(p.phase == INGESTED for p in parts) and _run_status(self.store, run_id) == BATCH:
            self._finish(run_id, parts)
        return progress(self.store, run_id)

    def _evaluation(self, run_id: str) -> EvalRun | None:
        saved = self.store.run(run_id)
        if saved is None:
            return None
        return EvalRun.resuming(saved, self.resolve, self.context, self.log, actor=self.actor)

    def _ingest(self, run_id: str, part: BatchPart, provider: Provider, batch: Any) -> None:
        """Claim the ended batch, then each output line into the run as a graded cell and a logged call."""
        with self.store.engine.begin() as conn:  # one process ingests a batch, even with two pollers
            claimed = conn.execute(_table.update().where(
                (_table.c.run_id == run_id) & (_table.c.part == part.part) & (_table.c.phase == WAITING))
                .values(phase=INGESTING, owner=process_owner())).rowcount
        if claimed != 1:
            return
        evaluation = self._evaluation(run_id)
        assert evaluation is not None
        saved_plan = evaluation.plan
        evaluation.journal = _journal(self.store, run_id, saved_plan.cells, (*self.secrets, *evaluation.keys()))
        index = {c.key: i for i, c in enumerate(evaluation.cells)}
        client: Any = provider.client()
        failed: dict[str, str] = {}
        try:
            for file_id in (batch.output_file_id, batch.error_file_id):
                if not file_id:
                    continue
                for text in client.files.content(file_id).text.splitlines():
                    if not text.strip():
                        continue
                    line = json.loads(text)
                    key = str(line.get("custom_id"))
                    response = line.get("response") or {}
                    if response.get("status_code") == 200:
                        if key in index:
                            self._line(evaluation, index[key], line, provider, batch.id)
                    else:
                        failed[key] = scrub_secrets(_line_error(line), (provider.api_key, *self.secrets))
        except Exception as exc:
            _update(self.store, run_id, part.part, phase=WAITING, owner=None)  # the next poll tries again
            raise to_user_error(exc, secrets=(provider.api_key, *self.secrets), operation="batch") from None
        stored = self.store.run(run_id)
        done = stored.cell_keys if stored else frozenset()
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        if batch.status == "failed" and errors:  # the input was refused as a whole: say why, once
            self._note(run_id, part.part, _("The batch failed validation: {why}").format(
                why="; ".join(f"line {e.line}: {e.message}" if e.line else str(e.message) for e in errors[:3])))
        for key in part.keys:  # lines with no output at all (a failed batch, a server that dropped them)
            if key not in done and key not in failed:
                failed[key] = _("the batch ended ({status}) before this line ran").format(status=batch.status)
        _update(self.store, run_id, part.part, phase=INGESTED, owner=None, ended_at=utc_now_iso(),
                failed=json.dumps(failed, ensure_ascii=False))

    def _line(self, evaluation: EvalRun, i: int, line: dict[str, Any], provider: Provider, batch_id: str) -> None:
        """One output line: a CallRecord (priced at the batch rate), then graded and stored like a live cell."""
        body = line["response"].get("body") or {}
        prepared = evaluation.matrix.cells[i]
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
        tool_calls = [{"id": c.get("id"), "name": (c.get("function") or {}).get("name"),
                       "arguments": (c.get("function") or {}).get("arguments")}
                      for c in message.get("tool_calls") or []]
        reported = body.get("usage") or {}
        usage = TokenUsage(int(reported.get("prompt_tokens") or 0), int(reported.get("completion_tokens") or 0),
                           int((reported.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
                           int((reported.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0))
        served = body.get("model") or prepared.spec.model
        cost = batch_cost_usd(usage, served, provider.pricing_id)
        if cost is None and served != prepared.spec.model:
            cost = batch_cost_usd(usage, prepared.spec.model, provider.pricing_id)
        request_id = str(line["response"].get("request_id") or line.get("id"))
        record = CallRecord(
            request_id=f"req_{uuid.uuid4().hex}", ts=utc_now_iso(), page=evaluation.context.page,
            provider=provider.kind, model_requested=prepared.spec.model, model=served, status="ok",
            finish_reason=choice.get("finish_reason"), input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens, cost_usd=cost, user=evaluation.context.user,
            session=evaluation.context.session,
            tags=[*evaluation.context.tags, f"batch:{batch_id}", "endpoint:batch"],
            endpoint="chat.completions")  # each line ran on Chat Completions (the batch is how, not which API)
        texts = CallTexts({"model": prepared.spec.model, "messages": prepared.messages, **prepared.params},
                          text or (json.dumps({"tool_calls": tool_calls}) if tool_calls else ""))
        book(record, texts, self.log, secrets=(provider.api_key, *self.secrets))
        result = CellResult(spec=prepared.spec, text=text, status="ok", finish_reason=choice.get("finish_reason"),
                            tool_calls=tool_calls,
                            metrics=CallMetrics(status="ok", model=served, request_id=request_id,
                                                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                                cost_usd=cost))
        evaluation.matrix.results[i] = result
        evaluation._grade(i, result)  # the same grading and journal as a live cell's worker

    def _finish(self, run_id: str, parts: list[BatchPart]) -> None:
        """Every batch has ended: claim the run, deal with the lines that did not come back, end the run."""
        with self.store.engine.begin() as conn:
            claimed = conn.execute(sa.text(
                "UPDATE eval_runs SET status = :s, owner = :o, updated_at = :t WHERE id = :id AND status = :b"),
                {"s": RUNNING, "o": process_owner(), "t": utc_now_iso(), "id": run_id, "b": BATCH}).rowcount
        if claimed != 1:
            return  # another poller is finishing it
        evaluation = self._evaluation(run_id)
        assert evaluation is not None
        journal = _journal(self.store, run_id, evaluation.plan.cells, (*self.secrets, *evaluation.keys()))
        cancelled = any(p.cancel_requested or p.status == "cancelled" for p in parts)
        missing = {c.key for c in evaluation.cells}
        failed = {k: why for p in parts for k, why in p.failed.items() if k in missing}
        unsupported = {k for p in parts if p.status == UNSUPPORTED for k in p.keys}
        last = parts[-1].part
        if cancelled:
            note = _("Cancelled: the {kept} lines that finished are kept; Resume runs the other {n} live.").format(
                kept=evaluation.plan.cells - len(missing), n=len(missing))
            self._note(run_id, last, note)
            journal.finish(CANCELLED)
            return
        report = {k: why for k, why in failed.items() if k not in unsupported} \
            if parts[0].on_failure == REPORT else {}
        if report:
            index = {c.key: i for i, c in enumerate(evaluation.cells)}
            evaluation.journal = journal
            for key, why in report.items():
                i = index[key]
                result = CellResult(spec=evaluation.matrix.cells[i].spec, status="error",
                                    error=_("batch line failed: {why}").format(why=why))
                evaluation.matrix.results[i] = result
                evaluation._grade(i, result)
            self._note(run_id, last, _("{n} lines failed or never ran in the batch: reported as failed cells, not "
                                       "retried.").format(n=len(report)))
        live = missing - set(report)
        if live:
            retried = len(live - unsupported)
            if retried:
                self._note(run_id, last, _("{n} lines failed or never ran in the batch: retried live through the "
                                           "gate, at the normal price.").format(n=retried))
            rerun = self._evaluation(run_id)  # the cells still missing, the same way a Resume runs them
            assert rerun is not None
            rerun.start(journal)
            rerun.wait()
            rerun.finish()
            return
        journal.finish(DONE)

    def _note(self, run_id: str, part: int, note: str) -> None:
        with self.store.engine.begin() as conn:
            notes = json.loads(conn.execute(sa.text("SELECT notes FROM eval_batches WHERE run_id = :r AND part = :p"),
                                            {"r": run_id, "p": part}).scalar() or "[]")
            conn.execute(_table.update().where((_table.c.run_id == run_id) & (_table.c.part == part))
                         .values(notes=json.dumps([*notes, note], ensure_ascii=False)))


def part_owner(store: EvalStore, run_id: str, part: int) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT owner FROM eval_batches WHERE run_id = :r AND part = :p"),
                            {"r": run_id, "p": part}).scalar()


def _line_error(line: dict[str, Any]) -> str:
    """Why a line of the error file failed, in a few words."""
    error = line.get("error") or ((line.get("response") or {}).get("body") or {}).get("error") or {}
    status = (line.get("response") or {}).get("status_code")
    what = error.get("message") or error.get("code") or "failed"
    return f"{status}: {what}" if status else str(error.get("code") or what)

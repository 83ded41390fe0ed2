"""The compare matrix: versions × models × temperatures × repeats expanded into cells, the cost estimate
before a run, and `MatrixRun`, which runs prepared cells concurrently (cancellable) through the call gate
(the one runner of the Playground's compare and of evals); a cell's result and its stored form.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from itertools import product
from typing import Any

from core.base.i18n import N_, _
from core.calls.cache import ResponseCache
from core.calls.gate import CallCancelled, CallContext, CallHooks, ChatRequest, ChatStream
from core.calls.log import CallLog
from core.calls.metrics import CALL_STATUSES, CallMetrics
from core.llm import attachments, file_vars
from core.llm.pricing import TokenUsage, cost_usd
from core.llm.providers import Provider
from core.llm.responses_api import choose_api
from core.playground.draft import Draft, PlaygroundError, build_params, check_json_output, messages_for
from core.playground.tools import check_tool_call

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellSpec:
    """One cell of a compare matrix: which prompt version, model, temperature and repeat."""

    version: str
    model: str
    temperature: float | None
    repeat: int

    @property
    def config(self) -> tuple[str, str, float | None]:
        return self.version, self.model, self.temperature

    @property
    def label(self) -> str:
        temp = "default" if self.temperature is None else f"{self.temperature:g}"
        return f"{self.version} · {self.model} · T={temp} · #{self.repeat}"


def expand_matrix(versions: list[str], models: list[str], temperatures: list[float | None],
                  repeats: int) -> list[CellSpec]:
    """Every combination, repeats innermost so a configuration's repeats sit side by side."""
    if not (versions and models and temperatures):
        raise PlaygroundError(_("Choose at least one prompt version, one model and one temperature."))
    if not 1 <= repeats <= 10:
        raise PlaygroundError(_("Repeats go from 1 to 10."))
    return [CellSpec(v, m, t, r) for v, m, t, r in product(versions, models, temperatures, range(1, repeats + 1))]


@dataclass(frozen=True)
class CostEstimate:
    """What a run may cost before it starts: exact input tokens, output at the max-tokens ceiling."""

    input_tokens: int
    max_output_tokens: int
    max_cost_usd: float
    unpriced_cells: int
    image_tokens: int = 0  # of input_tokens: the forecast for image variables (OpenAI's tile / patch rule)


def estimate_cost(cells: list[tuple[CellSpec, list[dict[str, Any]], int | None]],
                  count_tokens: Callable[[list[dict[str, Any]], str], int],
                  pricing_id: Callable[[str], str | None]) -> CostEstimate:
    """Sum over cells of input tokens (counted; an image variable's by OpenAI's rule for the cell's model) and
    the most output each may produce (its max tokens)."""
    total_in = total_out = unpriced = images = 0
    total_cost = 0.0
    for spec, messages, max_tokens in cells:
        n_images = file_vars.image_token_forecast(messages, spec.model)
        n_in = count_tokens(messages, spec.model) + n_images
        images += n_images
        n_out = max_tokens or 0
        total_in += n_in
        total_out += n_out
        cost = cost_usd(TokenUsage(n_in, n_out), spec.model, pricing_id(spec.model))
        if cost is None:
            unpriced += 1
        else:
            total_cost += cost
    return CostEstimate(total_in, total_out, total_cost, unpriced, images)


@dataclass(kw_only=True)
class CellResult:
    """A cell's outcome (and, while running, its text so far); `metrics` once its call has ended."""

    spec: CellSpec
    text: str = ""
    # pending | running | "waiting …" | "queued …" while it runs, then its call's status (ok | error | cancelled)
    status: str = "pending"
    metrics: CallMetrics | None = None
    finish_reason: str | None = None
    error: str | None = None
    schema_valid: bool | None = None
    schema_error: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    api: str | None = None  # the API that ran it: "responses" or "chat" (None: not run, or saved before)
    thinking: str = ""  # the reasoning summary (Responses API)
    builtin_calls: list[dict[str, Any]] = field(default_factory=list)  # web / file search calls the server made
    citations: list[dict[str, str]] = field(default_factory=list)  # the answer's url_citation links
    tool_fees_usd: float | None = 0.0  # of the cost: the built-in tool calls' fees (None: unpriced)
    tool_fees_estimated: bool = False  # ... from PromptLab's table, not genai-prices

    _EXTRAS = ("api", "thinking", "builtin_calls", "citations", "tool_fees_usd", "tool_fees_estimated")

    def to_dict(self) -> dict[str, Any]:
        """The stored form (saved runs, the JSON export): the measurements flat beside the cell's own fields; the
        Responses API's extras only when there are some (earlier stored forms stay as they were)."""
        extras = {k: getattr(self, k) for k in self._EXTRAS if getattr(self, k) not in (None, "", [], 0.0, False)}
        return {"spec": asdict(self.spec), "text": self.text, "status": self.status,
                "finish_reason": self.finish_reason, **(self.metrics or CallMetrics(status="ok")).flat(),
                "error": self.error, "schema_valid": self.schema_valid, "schema_error": self.schema_error,
                "tool_calls": self.tool_calls, **extras}

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> CellResult:
        status = item.get("status") or "pending"
        ended = next((s for s in CALL_STATUSES if s == status), None)
        return cls(spec=CellSpec(**item["spec"]), text=item.get("text") or "", status=status,
                   metrics=CallMetrics.from_flat(item, ended) if ended else None,
                   finish_reason=item.get("finish_reason"), error=item.get("error"),
                   schema_valid=item.get("schema_valid"), schema_error=item.get("schema_error"),
                   tool_calls=list(item.get("tool_calls") or []), api=item.get("api"),
                   thinking=str(item.get("thinking") or ""), builtin_calls=list(item.get("builtin_calls") or []),
                   citations=list(item.get("citations") or []), tool_fees_usd=item.get("tool_fees_usd", None if item.get("builtin_calls") else 0.0),
                   tool_fees_estimated=bool(item.get("tool_fees_estimated")))

    def row(self) -> dict[str, Any]:
        """A flat row for tables and exports (`model` is the cell's; the model that answered is `served_model`)."""
        data = self.to_dict()
        spec, served = data.pop("spec"), data.pop("model")
        for nested in ("builtin_calls", "citations"):
            data[nested] = json.dumps(data[nested]) if data.get(nested) else None
        return {**spec, "api": self.api, **data, "served_model": served,
                "tool_calls": json.dumps(self.tool_calls) if self.tool_calls else None}


# The version name of a compare cell made from the unsaved draft: stored as is, shown translated.
CURRENT_DRAFT = N_("Current draft")


@dataclass
class PreparedCell:
    """A cell ready to send: its spec, provider, messages and parameters, and the schema its output must meet."""

    spec: CellSpec
    provider: Provider
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    json_schema: dict[str, Any] | None = None
    check_json: bool = False
    tools: list[dict[str, Any]] = field(default_factory=list)
    api: str = "chat"  # "responses": sent through the Responses API (the draft's choice, evals' openai:responses:)


class MatrixRun:
    """Runs prepared cells concurrently (bounded), every call through the gate; `cancel()` stops every stream.
    The one runner of the Playground's compare and of evals: `on_done(i, result)` runs in the cell's worker once
    its call has ended (evals grade there), and `cache` lets repeats be answered from the response cache."""

    def __init__(self, cells: list[PreparedCell], context: CallContext, log: CallLog, concurrency: int = 8, *,
                 on_done: Callable[[int, CellResult], None] | None = None, cache: ResponseCache | None = None):
        self.cells = cells
        self.results = [CellResult(spec=c.spec) for c in cells]
        self.context = context
        self.log = log
        self.concurrency = max(1, concurrency)
        self.on_done = on_done
        self.cache = cache
        self._cancel = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Any] = []

    def start(self) -> MatrixRun:
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="matrix-cell")
        # Each cell runs in the starting session's context (its UI language, for error sentences).
        self._futures = [self._pool.submit(contextvars.copy_context().run, self._run_cell, i)
                         for i in range(len(self.cells))]
        self._pool.shutdown(wait=False)
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def done(self) -> bool:
        return all(f.done() for f in self._futures)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for f in self._futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                f.result(timeout=remaining)
            except FutureTimeout:
                return False
            except Exception:  # a cell's worker died: the run did not complete
                logger.exception("a matrix cell failed outside the gate")
                return False
        return True

    def _run_cell(self, i: int) -> None:
        cell, result = self.cells[i], self.results[i]
        if self._cancel.is_set():
            result.status = "cancelled"
            return
        if file_vars.has_media(cell.messages) and not attachments.takes_images(cell.provider.kind, cell.spec.model):
            # An image or PDF to a model that takes none: one sentence, no call (and no call row).
            result.status, result.error = "error", attachments.no_vision_error(cell.spec.model).message
            if self.on_done is not None and not self._cancel.is_set():
                self.on_done(i, result)
            return
        result.status = "running"

        def waiting(seconds: float) -> None:  # a client-side rate limit holds this cell back
            result.status = f"waiting {seconds:.0f} s (rate limit)"

        def queued(seconds: float, ahead: int) -> None:  # the offline model is answering other cells
            if self._cancel.is_set():
                raise CallCancelled()
            result.status = f"queued ({ahead} ahead, offline model)"

        stream = ChatStream(cell.provider, ChatRequest(cell.spec.model, cell.messages, cell.params,
                                                      api="responses" if cell.api == "responses" else "chat"), self.context,
                            self.log, cache=self.cache, hooks=CallHooks(on_rate_limit=waiting, on_queue=queued))
        parts: list[str] = []
        for delta in stream:
            parts.append(delta)
            result.text, result.status = "".join(parts), "running"
            if self._cancel.is_set():
                break
        stream.close()
        record_result(cell, result, stream)
        if self.on_done is not None and not self._cancel.is_set():
            self.on_done(i, result)


def record_result(cell: PreparedCell, result: CellResult, stream: ChatStream) -> None:
    """Fill a cell's result from its finished stream: metrics, errors, schema and tool-call checks."""
    out = stream.outcome
    if out is None:
        result.status = "cancelled"
        return
    result.text, result.finish_reason, result.tool_calls = out.text, out.finish_reason, out.tool_calls
    result.metrics = out.metrics
    result.api, result.thinking = stream.request.api, out.thinking
    result.builtin_calls, result.citations = out.builtin_calls, out.citations
    result.tool_fees_usd, result.tool_fees_estimated = out.tool_fees.cost_usd, out.tool_fees.estimated
    result.error = out.error.message if out.error else None
    if out.error and file_vars.has_media(cell.messages) and attachments.looks_like_no_vision(
            f"{out.error.message} {out.error.detail or ''}"):  # the server refused the image: the same sentence
        result.error = attachments.no_vision_error(cell.spec.model).message
    if out.status == "ok" and cell.check_json and not out.tool_calls:
        result.schema_valid, result.schema_error = check_json_output(out.text, cell.json_schema)
    for call in out.tool_calls:
        call["parsed"], call["error"] = check_tool_call(call, cell.tools)
    result.status = out.status


def results_to_json(results: list[CellResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, default=str)


def results_from_json(text: str) -> list[CellResult]:
    return [CellResult.from_dict(item) for item in json.loads(text)]


def fresh_run_name(now: datetime, used: set[str]) -> str:
    """A default run name ("run-091512") no earlier run of the session has used."""
    base = name = f"run-{now:%H%M%S}"
    n = 2
    while name in used:
        name, n = f"{base}-{n}", n + 1
    return name


def with_screen_inputs(version: Draft, screen: Draft) -> Draft:
    """A saved version as the compare matrix sends it: its prompt and settings, with the variables and the max
    tokens on screen (the inputs of this comparison, the same for every version), and the files on screen."""
    return replace(version, variables={**version.variables, **screen.variables}, files=dict(screen.files),
                   settings=replace(version.settings, max_tokens=screen.settings.max_tokens))


def prepare_cell(spec: CellSpec, draft: Draft, provider: Provider) -> PreparedCell:
    """A cell ready to run: the draft's messages, the parameters for this model at the cell's temperature."""
    settings = replace(draft.settings, temperature=spec.temperature)
    return PreparedCell(spec, provider, messages_for(draft), build_params(provider, spec.model, settings),
                        settings.json_schema if settings.response_format == "json_schema" else None,
                        settings.response_format != "text", list(settings.tools),
                        api=choose_api(provider.kind, settings.api, spec.model))


def parse_temperatures(text: str) -> list[float]:
    """"0, 0.7 1.2" -> [0.0, 0.7, 1.2]; each between 0 and 2."""
    try:
        values = [float(t) for t in re.split(r"[,\s]+", text.strip()) if t]
    except ValueError:
        raise PlaygroundError(_("Temperatures are numbers separated by commas, e.g. 0, 0.7, 1.2.")) from None
    if not values or any(not 0 <= v <= 2 for v in values):
        raise PlaygroundError(_("Give one or more temperatures between 0 and 2."))
    return list(dict.fromkeys(values))

"""The Playground's logic: drafts (prompt + parameters), what each model accepts, validation of tools and
structured output, the compare matrix (expansion, cost estimate, concurrent run, cancel), stability, diffs and
comparison with a baseline run.
"""
from __future__ import annotations

import contextvars
import difflib
import html
import json
import logging
import re
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from itertools import product
from typing import Any

import jsonschema

from core import json_guard, tools
from core.cache import ResponseCache
from core.call_metrics import CALL_STATUSES, CallMetrics
from core.calllog import CallLog
from core.calls import CallCancelled, CallContext, CallHooks, ChatRequest, ChatStream
from core.i18n import N_, _
from core.local_model import is_local_model
from core.pricing import TokenUsage, cost_usd
from core.providers import Provider, is_reasoning_model, request_params

logger = logging.getLogger(__name__)

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
REASONING_EFFORTS = ("minimal", "low", "medium", "high")


class PlaygroundError(ValueError):
    """Bad playground input, with the sentence shown to the user."""


@dataclass
class Settings:
    """The request parameters a playground run sets (None = leave to the model's default)."""

    temperature: float | None = 1.0
    top_p: float | None = None
    max_tokens: int | None = 512
    stop: list[str] = field(default_factory=list)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    response_format: str = "text"  # text | json_object | json_schema
    json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str = "auto"  # auto | none | required | <function name>
    reasoning_effort: str | None = None
    service_tier: str | None = None  # auto | default | flex | priority (None = not sent)


SERVICE_TIERS = ("auto", "default", "flex", "priority")
_NUMBER = (int, float)
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": _NUMBER, "top_p": _NUMBER, "max_tokens": (int,), "stop": (list,), "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER, "seed": (int,), "response_format": (str,), "json_schema": (dict,),
    "tools": (list,), "tool_choice": (str,), "reasoning_effort": (str,),
    "service_tier": (str,)}


@dataclass
class Draft:
    """What the playground edits and the prompt library stores: prompt, variables, parameters, model."""

    model: str
    system: str = ""
    user_template: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier turns (a replayed call's)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def checked(cls, data: Any, where: str = "The draft") -> Draft:
        """A draft from untrusted data (an imported file): every field's type checked, one sentence if wrong."""
        if not isinstance(data, dict):
            raise ValueError(_('{where} must be an object with model, system, user_template…').format(where=where))
        for key in ("model", "system", "user_template"):
            if key in data and not isinstance(data[key], str):
                raise ValueError(_('{where}: {key} must be text.').format(where=where, key=key))
        if not isinstance(data.get("model"), str) or not data["model"].strip():
            raise ValueError(_('{where} needs a model (text).').format(where=where))
        variables = data.get("variables") or {}
        if not isinstance(variables, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in variables.items()):
            raise ValueError(_('{where}: variables must map names to text.').format(where=where))
        history = data.get("history") or []
        if not isinstance(history, list) or not all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                                    and _history_content_ok(m) for m in history):
            raise ValueError(_('{where}: history must be a list of {{role, content}} messages with text.').format(
                where=where))
        settings = data.get("settings") or {}
        if not isinstance(settings, dict):
            raise ValueError(_('{where}: settings must be an object.').format(where=where))
        for name, expected in _SETTING_TYPES.items():
            value = settings.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, expected)):
                raise ValueError(_('{where}: setting {name} has the wrong type.').format(where=where, name=name))
        if not all(isinstance(s, str) for s in settings.get("stop") or []):
            raise ValueError(_('{where}: stop sequences must be text.').format(where=where))
        if not all(isinstance(t, dict) for t in settings.get("tools") or []):
            raise ValueError(_('{where}: tools must be objects.').format(where=where))
        if settings.get("json_schema") is not None:
            json_guard.check_refs(settings["json_schema"], f"{where}'s JSON schema")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Draft:
        known = {f.name for f in fields(Settings)}
        settings = Settings(**{k: v for k, v in (data.get("settings") or {}).items() if k in known})
        return cls(model=data["model"], system=data.get("system", ""), user_template=data.get("user_template", ""),
                   variables=dict(data.get("variables") or {}), settings=settings,
                   history=list(data.get("history") or []))


def _history_content_ok(message: dict[str, Any]) -> bool:
    """Text content; an assistant turn that only calls tools may have none (its `tool_calls` must be a list)."""
    if isinstance(message.get("content"), str):
        return True
    return message.get("content") is None and isinstance(message.get("tool_calls"), list)


def template_variables(template: str) -> list[str]:
    """The {{names}} a template uses, in order of first appearance."""
    return list(dict.fromkeys(_VARIABLE.findall(template)))


def fill_template(template: str, variables: dict[str, str]) -> str:
    """Replace {{name}} with its value; a variable without a value is an error, not a silent blank."""
    missing = [v for v in template_variables(template) if v not in variables]
    if missing:
        raise PlaygroundError(_('Give a value for {variables} in the variables table.').format(
            variables=', '.join('{{' + m + '}}' for m in missing)))
    return _VARIABLE.sub(lambda m: str(variables[m.group(1)]), template)


def messages_for(draft: Draft) -> list[dict[str, Any]]:
    """The chat messages a draft sends: system, any replayed history, then the filled-in user message."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": draft.system}] if draft.system.strip() else []
    messages += draft.history
    user = fill_template(draft.user_template, draft.variables)
    if user.strip():
        messages.append({"role": "user", "content": user})
    if not any(m["role"] == "user" for m in messages):
        raise PlaygroundError(_("Write a user message to send."))
    return messages


def unsupported_controls(provider_kind: str, model: str) -> dict[str, str]:
    """Controls this model does not accept, each with the reason shown beside it."""
    reasons: dict[str, str] = {}
    if is_reasoning_model(model):
        for control in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "stop"):
            reasons[control] = _("reasoning models fix sampling and do not take this")
    else:
        reasons["reasoning_effort"] = _("only reasoning models (o-series, gpt-5) take a reasoning effort")
    if provider_kind == "local" or is_local_model(model):
        reasons["tools"] = _("the offline model cannot call tools")
        reasons["reasoning_effort"] = _("the offline model has no reasoning effort")
        reasons["service_tier"] = _("the offline model has no service tier")
    return reasons


def continue_with_tool_results(draft: Draft, text: str, tool_calls: list[dict[str, Any]],
                               results: list[str]) -> Draft:
    """The draft that sends the conversation on after the model called tools: the message just sent, the
    assistant turn with its `tool_calls`, then one `role: "tool"` message per call (its result, matched by
    `tool_call_id`) join the history, and the user box empties, so the next run lets the model go on."""
    try:
        answered = tools.answer_turns(text, tool_calls, results)
    except tools.ToolError as exc:
        raise PlaygroundError(str(exc)) from None
    sent = messages_for(draft)
    if sent and sent[0]["role"] == "system" and draft.system.strip():
        sent = sent[1:]  # the system prompt stays in its own box
    return replace(draft, user_template="", history=[*sent, *answered])


def validate_tools(text: str) -> list[dict[str, Any]]:
    """Function definitions from JSON, checked before sending (core.tools), as a Playground error."""
    try:
        return tools.validate_tools(text)
    except tools.ToolError as exc:
        raise PlaygroundError(str(exc)) from None


def validate_schema(text: str) -> dict[str, Any]:
    """A JSON Schema for structured output, checked before sending."""
    try:
        schema = json_guard.loads(text, "The JSON schema")
        json_guard.check_refs(schema, "The JSON schema")
        jsonschema.Draft202012Validator.check_schema(schema)
    except json_guard.JSONShapeError as exc:
        raise PlaygroundError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise PlaygroundError(_('The JSON schema is not valid JSON (line {lineno}: {msg}).').format(
            lineno=exc.lineno, msg=exc.msg)) from None
    except jsonschema.SchemaError as exc:
        raise PlaygroundError(_('The JSON schema is not valid ({message}).').format(message=exc.message)) from None
    return schema


def check_json_output(text: str, schema: dict[str, Any] | None) -> tuple[bool, str | None]:
    """Is the reply valid JSON (and valid against the schema)? Returns (valid, the first error)."""
    try:
        value = json_guard.loads(text, "The reply")
    except json.JSONDecodeError as exc:
        return False, f"not JSON: {exc.msg} at line {exc.lineno}"
    except json_guard.JSONShapeError as exc:
        return False, str(exc)
    if schema is None:
        return True, None
    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    except RecursionError:
        return False, "the schema recursed without end on this reply"
    if error is None:
        return True, None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return False, f"{where}: {error.message}"


def check_tool_call(call: dict[str, Any], tools: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The call's arguments parsed, and the first problem against its declared schema (None when valid)."""
    declared = {t["function"]["name"]: t["function"].get("parameters") for t in tools}
    if call["name"] not in declared:
        return None, f"the model called {call['name']!r}, which is not declared"
    try:
        args = json.loads(call["arguments"] or "{}")
    except json.JSONDecodeError as exc:
        return None, f"arguments are not JSON: {exc.msg}"
    valid, error = check_json_output(json.dumps(args), declared[call["name"]])
    return args, None if valid else error


def build_params(provider: Provider, model: str, s: Settings) -> dict[str, Any]:
    """The request parameters for this provider and model; controls the model does not accept are left out."""
    skip = unsupported_controls(provider.kind, model)
    extra: dict[str, Any] = {}
    for name in ("top_p", "presence_penalty", "frequency_penalty", "seed"):
        value = getattr(s, name)
        if value is not None and name not in skip:
            extra[name] = value
    if s.stop and "stop" not in skip:
        extra["stop"] = s.stop[:4]
    if s.response_format == "json_object":
        extra["response_format"] = {"type": "json_object"}
    elif s.response_format == "json_schema" and s.json_schema and "json_schema" not in skip:
        extra["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": s.json_schema, "strict": False}}
    if s.tools and "tools" not in skip:
        extra["tools"] = s.tools
        extra["tool_choice"] = s.tool_choice if s.tool_choice in ("auto", "none", "required") else {
            "type": "function", "function": {"name": s.tool_choice}}
    if s.reasoning_effort and "reasoning_effort" not in skip:
        extra["reasoning_effort"] = s.reasoning_effort
    if s.service_tier in SERVICE_TIERS and "service_tier" not in skip:
        extra["service_tier"] = s.service_tier
    temperature = None if "temperature" in skip else s.temperature
    return request_params(provider, model, temperature=temperature, max_tokens=s.max_tokens, **extra)


# ----- the compare matrix --------------------------------------------------------------------------------------

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


def estimate_cost(cells: list[tuple[CellSpec, list[dict[str, Any]], int | None]],
                  count_tokens: Callable[[list[dict[str, Any]], str], int],
                  pricing_id: Callable[[str], str | None]) -> CostEstimate:
    """Sum over cells of input tokens (counted) and the most output each may produce (its max tokens)."""
    total_in = total_out = unpriced = 0
    total_cost = 0.0
    for spec, messages, max_tokens in cells:
        n_in = count_tokens(messages, spec.model)
        n_out = max_tokens or 0
        total_in += n_in
        total_out += n_out
        cost = cost_usd(TokenUsage(n_in, n_out), spec.model, pricing_id(spec.model))
        if cost is None:
            unpriced += 1
        else:
            total_cost += cost
    return CostEstimate(total_in, total_out, total_cost, unpriced)


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

    def to_dict(self) -> dict[str, Any]:
        """The stored form (saved runs, the JSON export): the measurements flat beside the cell's own fields."""
        return {"spec": asdict(self.spec), "text": self.text, "status": self.status,
                "finish_reason": self.finish_reason, **(self.metrics or CallMetrics(status="ok")).flat(),
                "error": self.error, "schema_valid": self.schema_valid, "schema_error": self.schema_error,
                "tool_calls": self.tool_calls}

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> CellResult:
        status = item.get("status") or "pending"
        ended = next((s for s in CALL_STATUSES if s == status), None)
        return cls(spec=CellSpec(**item["spec"]), text=item.get("text") or "", status=status,
                   metrics=CallMetrics.from_flat(item, ended) if ended else None,
                   finish_reason=item.get("finish_reason"), error=item.get("error"),
                   schema_valid=item.get("schema_valid"), schema_error=item.get("schema_error"),
                   tool_calls=list(item.get("tool_calls") or []))

    def row(self) -> dict[str, Any]:
        """A flat row for tables and exports (`model` is the cell's; the model that answered is `served_model`)."""
        data = self.to_dict()
        spec, served = data.pop("spec"), data.pop("model")
        return {**spec, **data, "served_model": served,
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
        result.status = "running"

        def waiting(seconds: float) -> None:  # a client-side rate limit holds this cell back
            result.status = f"waiting {seconds:.0f} s (rate limit)"

        def queued(seconds: float, ahead: int) -> None:  # the offline model is answering other cells
            if self._cancel.is_set():
                raise CallCancelled()
            result.status = f"queued ({ahead} ahead, offline model)"

        stream = ChatStream(cell.provider, ChatRequest(cell.spec.model, cell.messages, cell.params), self.context,
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
    result.error = out.error.message if out.error else None
    if out.status == "ok" and cell.check_json and not out.tool_calls:
        result.schema_valid, result.schema_error = check_json_output(out.text, cell.json_schema)
    for call in out.tool_calls:
        call["parsed"], call["error"] = check_tool_call(call, cell.tools)
    result.status = out.status


@dataclass(frozen=True)
class Stability:
    """How a configuration behaved over its repeats."""

    version: str
    model: str
    temperature: float | None
    runs: int
    distinct_outputs: int
    schema_valid_rate: float | None
    latency_min_ms: float | None
    latency_median_ms: float | None
    latency_max_ms: float | None


def stability_summary(results: list[CellResult]) -> list[Stability]:
    """Per configuration: distinct outputs, schema-valid rate and latency spread over the finished repeats."""
    groups: dict[tuple, list[CellResult]] = {}
    for r in results:
        if r.status == "ok":
            groups.setdefault(r.spec.config, []).append(r)
    summary = []
    for (version, model, temperature), rs in groups.items():
        checked = [r.schema_valid for r in rs if r.schema_valid is not None]
        latencies = [r.metrics.latency_ms for r in rs if r.metrics and r.metrics.latency_ms is not None]
        summary.append(Stability(
            version, model, temperature, len(rs), len({r.text.strip() for r in rs}),
            sum(checked) / len(checked) if checked else None, min(latencies) if latencies else None,
            statistics.median(latencies) if latencies else None, max(latencies) if latencies else None))
    return summary


# Scripts written without spaces between words (Chinese, Japanese, Korean) are compared character by character.
_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_DIFF_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+|\\s+")


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """(op, text) pieces turning a into b word by word (CJK character by character); op is "=", "-" or "+"."""
    wa, wb = _DIFF_TOKEN.findall(a), _DIFF_TOKEN.findall(b)
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("=", "".join(wa[i1:i2])))
        else:
            if i2 > i1:
                pieces.append(("-", "".join(wa[i1:i2])))
            if j2 > j1:
                pieces.append(("+", "".join(wb[j1:j2])))
    return pieces


def diff_html(a: str, b: str) -> str:
    """The word diff as escaped HTML (<del> / <ins>), safe to render whatever the outputs contain."""
    style = {"-": "<del style='background:#fde2e1'>{}</del>", "+": "<ins style='background:#dcfce7'>{}</ins>",
             "=": "{}"}
    body = "".join(style[op].format(html.escape(text)) for op, text in word_diff(a, b))
    return f"<div style='white-space:pre-wrap;font-family:sans-serif;line-height:1.5'>{body}</div>"


@dataclass(frozen=True)
class CellComparison:
    """A cell against the same cell of a baseline run."""

    label: str
    output_changed: bool | None
    latency_delta_ms: float | None
    cost_delta_usd: float | None


def compare_runs(current: list[CellResult], baseline: list[CellResult]) -> list[CellComparison]:
    """Per cell (matched by version, model, temperature, repeat): changed output, Δ latency, Δ cost."""
    base = {r.spec: r for r in baseline}
    rows = []
    for r in current:
        b = base.get(r.spec)
        if b is None:
            rows.append(CellComparison(r.spec.label, None, None, None))
            continue
        now, then = r.metrics or CallMetrics(status="ok"), b.metrics or CallMetrics(status="ok")
        rows.append(CellComparison(
            r.spec.label, r.text.strip() != b.text.strip(),
            None if now.latency_ms is None or then.latency_ms is None else now.latency_ms - then.latency_ms,
            None if now.cost_usd is None or then.cost_usd is None else now.cost_usd - then.cost_usd))
    return rows


def results_to_json(results: list[CellResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, default=str)


def results_from_json(text: str) -> list[CellResult]:
    return [CellResult.from_dict(item) for item in json.loads(text)]


def replay_draft(request: dict[str, Any]) -> Draft:
    """A draft that re-sends a logged request: its model, messages and parameters."""
    messages = list(request.get("messages") or [])
    system = messages.pop(0)["content"] if messages and messages[0].get("role") == "system" else ""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    # The user box takes the last user message only when it ends the request: a call that went on after tool
    # calls ends with `tool` turns, and its messages replay in their order.
    ends_with_user = last_user is not None and last_user == len(messages) - 1
    user = messages.pop()["content"] if ends_with_user else ""
    fmt = request.get("response_format") or {}
    tool_choice = request.get("tool_choice", "auto")
    settings = Settings(
        temperature=request.get("temperature"), top_p=request.get("top_p"),
        max_tokens=request.get("max_completion_tokens") or request.get("max_tokens"),
        stop=[request["stop"]] if isinstance(request.get("stop"), str) else list(request.get("stop") or []),
        presence_penalty=request.get("presence_penalty"), frequency_penalty=request.get("frequency_penalty"),
        seed=request.get("seed"), response_format=fmt.get("type", "text"),
        json_schema=(fmt.get("json_schema") or {}).get("schema"), tools=list(request.get("tools") or []),
        tool_choice=tool_choice if isinstance(tool_choice, str) else tool_choice["function"]["name"],
        reasoning_effort=request.get("reasoning_effort"), service_tier=request.get("service_tier"))
    # {{name}} in a replayed message is literal text: each such variable is given itself as its value.
    literal = {name: "{{" + name + "}}" for name in template_variables(str(user))}
    return Draft(model=request.get("model", ""), system=system, user_template=str(user), variables=literal,
                 settings=settings, history=messages)


def fresh_run_name(now: datetime, used: set[str]) -> str:
    """A default run name ("run-091512") no earlier run of the session has used."""
    base = name = f"run-{now:%H%M%S}"
    n = 2
    while name in used:
        name, n = f"{base}-{n}", n + 1
    return name


def with_screen_inputs(version: Draft, screen: Draft) -> Draft:
    """A saved version as the compare matrix sends it: its prompt and settings, with the variables and the max
    tokens on screen (the inputs of this comparison, the same for every version)."""
    return replace(version, variables={**version.variables, **screen.variables},
                   settings=replace(version.settings, max_tokens=screen.settings.max_tokens))


def older_first(a: Any, b: Any) -> tuple[Any, Any]:
    """Two saved versions in the order a diff reads them: the older one struck out, the newer one added."""
    return (a, b) if a.version <= b.version else (b, a)


def prepare_cell(spec: CellSpec, draft: Draft, provider: Provider) -> PreparedCell:
    """A cell ready to run: the draft's messages, the parameters for this model at the cell's temperature."""
    settings = replace(draft.settings, temperature=spec.temperature)
    return PreparedCell(spec, provider, messages_for(draft), build_params(provider, spec.model, settings),
                        settings.json_schema if settings.response_format == "json_schema" else None,
                        settings.response_format != "text", list(settings.tools))


def parse_temperatures(text: str) -> list[float]:
    """"0, 0.7 1.2" -> [0.0, 0.7, 1.2]; each between 0 and 2."""
    try:
        values = [float(t) for t in re.split(r"[,\s]+", text.strip()) if t]
    except ValueError:
        raise PlaygroundError(_("Temperatures are numbers separated by commas, e.g. 0, 0.7, 1.2.")) from None
    if not values or any(not 0 <= v <= 2 for v in values):
        raise PlaygroundError(_("Give one or more temperatures between 0 and 2."))
    return list(dict.fromkeys(values))

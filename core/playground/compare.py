"""Comparing results: stability over repeats, the word diff of two outputs (as safe HTML), and each cell
against a baseline run.
"""
from __future__ import annotations

import difflib
import html
import re
import statistics
from dataclasses import dataclass
from typing import Any

from core.calls.metrics import CallMetrics
from core.playground.matrix import CellResult


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


def older_first(a: Any, b: Any) -> tuple[Any, Any]:
    """Two saved versions in the order a diff reads them: the older one struck out, the newer one added."""
    return (a, b) if a.version <= b.version else (b, a)

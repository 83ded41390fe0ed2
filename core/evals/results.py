"""What an eval's graded cells say, computed from its rows (results.json's `results`, live or stored): per
configuration pass rates with 95 % intervals, cost, tokens and latency; the pass-rate matrix; cases failures
first; paired comparisons of two prompts (or of a run with its baseline) and the cases that flipped."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.evals.stats import PairedComparison, compare_paired, wilson


@dataclass(frozen=True, kw_only=True)
class ConfigSummary:
    """One prompt × provider configuration over all its cases and repeats."""

    prompt_index: int
    prompt: str
    provider: str
    passed: int
    total: int
    errors: int
    interval: tuple[float, float]
    cost_usd: float
    unpriced: int
    latency_median_ms: float | None
    input_tokens: int
    output_tokens: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.total if self.total else None

    @property
    def label(self) -> str:
        return f"{self.prompt} · {self.provider}"

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_index": self.prompt_index, "prompt": self.prompt, "provider": self.provider,
                "passed": self.passed, "total": self.total, "pass_rate": self.rate,
                "interval_95": list(self.interval), "errors": self.errors, "cost_usd": self.cost_usd,
                "unpriced_calls": self.unpriced, "latency_median_ms": self.latency_median_ms,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


def config_summaries(rows: list[dict[str, Any]]) -> list[ConfigSummary]:
    """Graded rows grouped by (prompt, provider), in the order they first appear."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        if not row.get("graded", True):
            continue  # not run (yet), or cancelled before it started
        groups.setdefault((row["prompt_index"], row["provider"]), []).append(row)
    out = []
    for (prompt_index, provider), mine in groups.items():
        passed = sum(bool(r["pass"]) for r in mine)
        costs = [r.get("cost_usd") for r in mine if r.get("request_id")]  # every call made costs something
        costs += [r.get("grader_cost_usd") for r in mine if not r.get("error")]
        latencies = [r["latency_ms"] for r in mine if r.get("latency_ms")]
        out.append(ConfigSummary(
            prompt_index=prompt_index, prompt=mine[0]["prompt"], provider=provider, passed=passed, total=len(mine),
            errors=sum(bool(r.get("error")) for r in mine), interval=wilson(passed, len(mine)),
            cost_usd=sum(c for c in costs if c is not None), unpriced=sum(c is None for c in costs),
            latency_median_ms=statistics.median(latencies) if latencies else None,
            input_tokens=sum(r.get("input_tokens") or 0 for r in mine),
            output_tokens=sum(r.get("output_tokens") or 0 for r in mine)))
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json's `summary`: totals and every configuration."""
    configs = config_summaries(rows)
    graded = [r for r in rows if r.get("graded", True)]
    return {"cells": len(rows), "graded": len(graded), "passed": sum(bool(r["pass"]) for r in graded),
            "failed": sum(not r["pass"] and not r.get("error") for r in graded),
            "errors": sum(bool(r.get("error")) for r in graded),
            "cost_usd": sum(c.cost_usd for c in configs), "unpriced_calls": sum(c.unpriced for c in configs),
            "configs": [c.to_dict() for c in configs],
            "comparisons": [comparison_dict(c) for c in paired_comparisons(rows)]}


def pass_matrix(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Prompts down, providers across: "31/40 · 78 % (62–88 %)" in each cell."""
    configs = config_summaries(rows)
    prompts = list(dict.fromkeys(c.prompt for c in configs))
    providers = list(dict.fromkeys(c.provider for c in configs))
    table = pd.DataFrame(index=pd.Index(prompts, name="prompt"), columns=providers, dtype=object)
    for c in configs:
        low, high = c.interval
        rate = "–" if c.rate is None else f"{c.rate:.0%}"
        table.loc[c.prompt, c.provider] = f"{c.passed}/{c.total} · {rate} ({low:.0%}–{high:.0%})"
    return table.fillna("")


def cases_failures_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors, then failures (lowest score first), then passes; stable within each."""
    def key(row: dict[str, Any]) -> tuple[int, float]:
        rank = 0 if row.get("error") else 1 if not row["pass"] else 2
        return rank, row.get("score") or 0.0
    return sorted(rows, key=key)


def outcomes(rows: list[dict[str, Any]], prompt: str, provider: str) -> dict[tuple[int, int], bool]:
    """Pass/fail by (case, repeat) of one configuration; cells whose call failed do not count."""
    return {(r["test_index"], r["repeat"]): bool(r["pass"]) for r in rows
            if r["prompt"] == prompt and r["provider"] == provider and not r.get("error")}


def compare_prompts(rows: list[dict[str, Any]], prompt_a: str, prompt_b: str, provider: str) -> PairedComparison:
    return compare_paired(outcomes(rows, prompt_a, provider), outcomes(rows, prompt_b, provider), prompt_a,
                          prompt_b)


def compare_configs(rows: list[dict[str, Any]], a: tuple[str, str], b: tuple[str, str]) -> PairedComparison:
    """Any two configurations (prompt, provider) the user picks — two prompts, two providers, or both — on the cases
    both ran; labelled by what differs between them."""
    same_prompt, same_provider = a[0] == b[0], a[1] == b[1]
    label_a = a[1] if same_prompt else a[0] if same_provider else f"{a[0]} · {a[1]}"
    label_b = b[1] if same_prompt else b[0] if same_provider else f"{b[0]} · {b[1]}"
    return compare_paired(outcomes(rows, *a), outcomes(rows, *b), label_a, label_b)


def first_pair(rows: list[dict[str, Any]], configs: list[ConfigSummary]) -> tuple[int, int]:
    """The pair a comparison opens on: the first two configurations that differ in one thing and share cases
    (`paired_comparisons`' first), as indices into `configs`; else the first two."""
    labels = [c.label for c in configs]
    for comparison in paired_comparisons(rows):
        a, b = comparison.label_a, comparison.label_b
        if a in labels and b in labels:
            return labels.index(a), labels.index(b)
    return 0, min(1, len(configs) - 1)


def distinct_labels(labels: list[str], width: int) -> list[str]:
    """Labels cut to `width` characters that stay told apart: a long one keeps its head and its tail (two
    providers' labels usually differ at the end), and any that still collide get their number."""
    def cut(label: str) -> str:
        if len(label) <= width:
            return label
        tail = (width - 1) // 2
        return label[:width - 1 - tail] + "…" + label[len(label) - tail:]
    out = [cut(label) for label in labels]
    for i, label in enumerate(out):
        if out.count(label) > 1 or labels.count(labels[i]) > 1:
            suffix = f" #{i + 1}"
            out[i] = cut(labels[i])[:width - len(suffix)] + suffix
    return out


def compare_with_baseline(rows: list[dict[str, Any]], baseline_rows: list[dict[str, Any]]
                          ) -> list[tuple[str, PairedComparison]]:
    """Each configuration both runs have: this run (B) against the baseline (A) on the same cases."""
    mine = list(dict.fromkeys((r["prompt"], r["provider"]) for r in rows))
    theirs = {(r["prompt"], r["provider"]) for r in baseline_rows}
    return [(f"{p} · {v}", compare_paired(outcomes(baseline_rows, p, v), outcomes(rows, p, v), "baseline",
                                          "this run")) for p, v in mine if (p, v) in theirs]


def paired_comparisons(rows: list[dict[str, Any]]) -> list[PairedComparison]:
    """McNemar for every two configurations run on the same cases: two prompts on one provider, or two providers
    with one prompt (the CLI table, results.json's `summary.comparisons` and the HTML report). A is the one listed
    first in the config."""
    configs = [(c.prompt, c.provider) for c in config_summaries(rows)]
    out = []
    for i, (prompt_a, provider_a) in enumerate(configs):
        for prompt_b, provider_b in configs[i + 1:]:
            if prompt_a != prompt_b and provider_a != provider_b:
                continue  # two things changed at once: not a paired comparison of either
            comparison = compare_paired(outcomes(rows, prompt_a, provider_a), outcomes(rows, prompt_b, provider_b),
                                        f"{prompt_a} · {provider_a}", f"{prompt_b} · {provider_b}")
            if comparison.pairs:
                out.append(comparison)
    return out


def comparison_dict(c: PairedComparison) -> dict[str, Any]:
    """One paired comparison as results.json holds it."""
    return {"a": c.label_a, "b": c.label_b, "pairs": c.pairs, "a_passed": c.a_passed, "b_passed": c.b_passed,
            "b_better": len(c.b_better), "b_worse": len(c.b_worse), "p_value": c.p_value}


def flipped(rows: list[dict[str, Any]], comparison: PairedComparison, prompt: str, provider: str
            ) -> list[dict[str, Any]]:
    """The rows of B's configuration on the cases where A and B disagreed (better first)."""
    index = {(r["test_index"], r["repeat"]): r for r in rows if r["prompt"] == prompt and r["provider"] == provider}
    return [{**index[k], "flip": "better"} for k in comparison.b_better if k in index] + [
        {**index[k], "flip": "worse"} for k in comparison.b_worse if k in index]

"""Human column headers for the tables a page shows and the CSV files it hands out, in the UI language.

A data frame keeps its machine column ids (`request_id`, `cost_usd`) while code works with it; just before it is
shown or downloaded for a person, `for_people` renames the columns and writes empty cells as empty (not "None").
Files that are read back in (the Cases CSV of an eval, the interchange formats in core/calls/interchange.py, Parquet,
JSON, `reconcile --json`) keep the ids: a header in Chinese would break the re-import.
"""
from __future__ import annotations

import pandas as pd

from core.base.i18n import N_, _

LABELS = {
    # the call log (Analytics' table and its CSV)
    "request_id": N_("Request ID"), "ts": N_("Time (UTC)"), "page": N_("Page"), "provider": N_("Provider"),
    "model": N_("Model"), "status": N_("Status"), "error_type": N_("Error type"), "input_tokens": N_("Tokens in"),
    "cached_input_tokens": N_("Cached tokens in"), "output_tokens": N_("Tokens out"),
    "reasoning_tokens": N_("Reasoning tokens"), "images": N_("Images"), "tokens_estimated": N_("Estimated tokens"),
    "cost_usd": N_("Cost (USD)"), "latency_ms": N_("Latency (ms)"), "ttft_ms": N_("Time to first token (ms)"),
    "user": N_("User"), "session": N_("Session"), "tags": N_("Tags"), "cached": N_("From the reply cache"),
    "endpoint": N_("Endpoint"),
    # a reconciliation row (core/analytics/reconcile.py)
    "day": N_("Day"), "tracked_requests": N_("Requests tracked"), "billed_requests": N_("Requests billed"),
    "tracked_input_tokens": N_("Tokens in, tracked"), "billed_input_tokens": N_("Tokens in, billed"),
    "tracked_output_tokens": N_("Tokens out, tracked"), "billed_output_tokens": N_("Tokens out, billed"),
    "tracked_cost_usd": N_("Tracked cost (USD)"), "billed_cost_usd": N_("Billed that day (USD)"),
    "explanation": N_("Explanation"),
    # a Playground compare cell (core/playground_matrix.CellResult.row)
    "version": N_("Prompt version"), "temperature": N_("Temperature"), "repeat": N_("Repeat"),
    "text": N_("Output"), "finish_reason": N_("Finish reason"), "error": N_("Error"),
    "schema_valid": N_("Matches the schema"), "schema_error": N_("Schema error"), "served_model": N_("Answered by"),
    "tool_calls": N_("Tool calls"),
    "api": N_("API"), "thinking": N_("Thinking"), "builtin_calls": N_("Built-in tool calls"),
    "citations": N_("Cited links"), "tool_fees_usd": N_("Tool-call fees (USD)"),
    "tool_fees_estimated": N_("Tool-call fees estimated"),
    # its stability summary and the comparison with a baseline run (core/playground_compare.Stability, CellComparison)
    "runs": N_("Runs"), "distinct_outputs": N_("Distinct outputs"), "schema_valid_rate": N_("Share matching the schema"),
    "latency_min_ms": N_("Fastest (ms)"), "latency_median_ms": N_("Median (ms)"), "latency_max_ms": N_("Slowest (ms)"),
    "label": N_("Cell"), "output_changed": N_("Output changed"), "latency_delta_ms": N_("Latency change (ms)"),
    "cost_delta_usd": N_("Cost change (USD)"),
    # a prompt's saved versions (Playground library)
    "author": N_("Author"), "note": N_("Note"), "saved": N_("Saved (UTC)"),
    # an eval case's assertion verdicts (core/eval_assertions.AssertionResult)
    "type": N_("Assertion"), "value": N_("Expected"), "pass": N_("Passed"), "score": N_("Score"),
    "reason": N_("Reason"),
    # the privacy audit log (core/policy/audit.py)
    "id": N_("ID"), "actor": N_("Who"), "action": N_("Action"), "subject": N_("About whom"), "detail": N_("Details"),
}

# The call log's page ids as the navigation names them; "other" is model lists and connection tests.
PAGE_NAMES = {"chat": N_("Chat"), "playground": N_("Playground"), "evals": N_("Evals"), "images": N_("Images"),
              "moderation": N_("Moderation"), "analytics": N_("Analytics"), "settings": N_("Settings"),
              "other": N_("other (model lists, connection tests)")}


def page_name(page: str) -> str:
    """A page id from the call log in the UI language (an unknown id stays as it is)."""
    return _(PAGE_NAMES[page]) if page in PAGE_NAMES else page


def label(column: str) -> str:
    """A column id's header in the UI language (an id without a label stays as it is)."""
    return _(LABELS[column]) if column in LABELS else column


def for_people(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with human headers and empty cells for missing text (numbers stay numbers)."""
    shown = frame.copy()
    text = [c for c in shown.columns if shown[c].dtype == object]
    shown[text] = shown[text].astype(object).where(shown[text].notna(), "")
    return shown.rename(columns={c: label(c) for c in shown.columns})

"""One record of what a model call measured — tokens, cost, latency, time to first token, model, status — embedded
wherever a call's result is kept (a chat reply, a playground cell), with the one caption that shows it.

Stored forms stay flat (the fields side by side with the turn's or cell's own), as saved conversations, exports and
saved runs have always had them: `flat()` writes that form and `from_flat()` reads it back.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from core.base.i18n import N_, _
from core.llm.local_model import is_local_model
from core.llm.pricing import LOCAL_FREE_LABEL, format_cost

CallStatus = Literal["ok", "error", "cancelled"]  # the call log's vocabulary
CALL_STATUSES: tuple[CallStatus, ...] = ("ok", "error", "cancelled")


@dataclass(frozen=True, kw_only=True)
class CallMetrics:
    """What one call measured. `cost_usd` None means unpriced (never a silent $0); `cached` means answered from
    the response cache at no cost."""

    status: CallStatus
    model: str | None = None
    request_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tokens_estimated: bool = False
    cost_usd: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    cached: bool = False
    reasoning_tokens: int | None = None  # part of output_tokens; None when the call reported none

    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed: output tokens over the time after the first token (None when not measurable)."""
        out, latency, ttft = self.output_tokens, self.latency_ms, self.ttft_ms
        if not out or out < 2 or latency is None or ttft is None or latency - ttft <= 0:
            return None
        return (out - 1) / ((latency - ttft) / 1000)

    def flat(self) -> dict[str, Any]:
        """The stored form's fields (status is the holder's own and left out)."""
        # reasoning_tokens only when there were some: the stored forms of every other call stay as they were
        return {k: v for k, v in asdict(self).items() if k != "status" and not (k == "reasoning_tokens" and v is None)}

    @classmethod
    def from_flat(cls, data: dict[str, Any], status: CallStatus) -> CallMetrics:
        """Read the fields back from a stored (flat) form; unknown keys are the holder's own."""
        names = {f.name for f in fields(cls)} - {"status"}
        return cls(status=status, **{k: v for k, v in data.items() if k in names})


# How a call or cell ended, and why the model stopped, as the UI names them (the stored values stay the API's).
STATUS_LABELS = {"ok": N_("done"), "error": N_("failed"), "cancelled": N_("cancelled"), "pending": N_("pending"),
                 "running": N_("running")}
FINISH_LABELS = {"stop": N_("complete"), "length": N_("hit the token limit"), "tool_calls": N_("tool call"),
                 "content_filter": N_("content filter"), "function_call": N_("tool call")}


def call_status_label(status: str) -> str:
    return _(STATUS_LABELS[status]) if status in STATUS_LABELS else status


def finish_label(reason: str | None) -> str:
    return "–" if not reason else _(FINISH_LABELS[reason]) if reason in FINISH_LABELS else reason


def metrics_caption(metrics: CallMetrics) -> str:
    """Tokens in / out, cost, latency, time to first token and speed, as shown under a reply or a cell."""
    parts = []
    if metrics.input_tokens is not None:
        est = _(" (est.)") if metrics.tokens_estimated else ""
        parts.append(_("{input:,} in / {output:,} out tokens").format(input=metrics.input_tokens,
                                                                      output=metrics.output_tokens or 0) + est)
        if metrics.reasoning_tokens:
            parts.append(_("{n:,} reasoning").format(n=metrics.reasoning_tokens))
    if metrics.cached:
        parts.append(_("⚡ cached · $0"))
    else:
        parts.append(_(LOCAL_FREE_LABEL) if is_local_model(metrics.model) else format_cost(metrics.cost_usd))
    if metrics.latency_ms is not None:
        parts.append(_("{seconds:.1f} s").format(seconds=metrics.latency_ms / 1000))
    if metrics.ttft_ms is not None:
        parts.append(_("first token {seconds:.2f} s").format(seconds=metrics.ttft_ms / 1000))
    speed = metrics.tokens_per_second
    if speed is not None:
        parts.append(_("{speed:.0f} tokens/s").format(speed=speed))
    return " · ".join(parts)

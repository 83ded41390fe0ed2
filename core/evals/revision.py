"""A better prompt, proven: from a finished run, a chosen model proposes a revision of one prompt using its failing
cases (one call through the gate, logged and costed); the revision is checked (its `{{variables}}` and its shape
kept), run on the same cases and providers, and judged against the original on those pairs — exact McNemar and the
pass-rate difference with Newcombe's interval. Nothing is adopted here: the page saves it when the user says so."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.calls.log import CallLog
from core.evals.config import EvalConfig, PromptSpec
from core.evals.results import compare_paired, outcomes
from core.evals.stats import PairedComparison, paired_difference
from core.llm.providers import Provider
from core.playground.draft import Draft

MAX_FAILURES = 12        # failing cases shown to the reviser: enough to generalise from, few enough to read
MAX_OUTPUT_CHARS = 1200  # of each failing output in the request
MAX_PROMPT_CHARS = 20_000
_VAR = re.compile(r"{{\s*([\w.]+)\s*}}")
_TAGGED = re.compile(r"<prompt>\s*(.*?)\s*</prompt>", re.S)
ROLES = {"system", "developer", "user", "assistant"}

REVISER_INSTRUCTIONS = (
    "You revise prompts for a language model. You get a prompt and test cases it failed: the variables, the "
    "model's output, and why each check failed. Write an improved prompt that would pass these cases without "
    "overfitting to them. Keep every {{variable}} placeholder exactly as written, add none, and keep the prompt's "
    "format: plain text stays plain text; a JSON list of chat messages stays such a list. Reply with the revised "
    "prompt only, between <prompt> and </prompt>.")


@dataclass(frozen=True)
class Revision:
    """A proposed revision of one prompt: the original, the revised prompt, and the call that proposed it."""

    original: PromptSpec
    revised: PromptSpec
    model: str
    request_id: str
    cost_usd: float | None


@dataclass(frozen=True)
class RevisionVerdict:
    """The revised prompt (B) against the original (A) on one provider's shared cases."""

    provider: str
    comparison: PairedComparison
    difference: float
    low: float
    high: float

    @property
    def better(self) -> bool:
        """Better beyond chance: more cases pass and McNemar's p is under 0.05."""
        return self.difference > 0 and self.comparison.p_value < 0.05

    def sentence(self) -> str:
        verdict = (_("The revision is better") if self.better else
                   _("The revision is worse") if self.difference < 0 and self.comparison.p_value < 0.05 else
                   _("No proven difference"))
        # The level is a value, not text: a literal "95% i…" reads as a %-format to the translation tools.
        return _("{verdict} on {provider}: pass rate {diff:+.0%} ({level} interval {low:+.0%} to {high:+.0%}), "
                 "McNemar p = {p:.2g} on {pairs} cases.").format(
            verdict=verdict, provider=self.provider, diff=self.difference, low=self.low, high=self.high,
            p=self.comparison.p_value, pairs=self.comparison.pairs, level="95%")


def prompt_source(prompt: PromptSpec) -> str:
    """The prompt as the reviser sees and returns it: its text, or its chat messages as JSON."""
    return json.dumps(prompt.messages, ensure_ascii=False, indent=1) if prompt.messages is not None \
        else prompt.text or ""


def placeholders(text: str) -> set[str]:
    return set(_VAR.findall(text))


def failing_rows(rows: list[dict[str, Any]], prompt_label: str, limit: int = MAX_FAILURES) -> list[dict[str, Any]]:
    """The prompt's graded failures (not call errors: those say nothing about the prompt), one per case."""
    seen: set[int] = set()
    out = []
    for row in rows:
        if row["prompt"] != prompt_label or row.get("error") or row.get("pass") or not row.get("graded"):
            continue
        if row["test_index"] in seen:
            continue
        seen.add(row["test_index"])
        out.append(row)
    return out[:limit]


def revision_messages(prompt: PromptSpec, failures: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What the reviser is asked: the prompt, then each failing case's variables, output and failed checks."""
    cases = []
    for n, row in enumerate(failures, 1):
        output = str(row.get("output") or "")
        output = output if len(output) <= MAX_OUTPUT_CHARS else output[:MAX_OUTPUT_CHARS] + "…"
        failed = [f"- {a.get('type')}: {a.get('reason')}" for a in row.get("assertions") or [] if not a.get("pass")]
        cases.append(f"Case {n}\nVariables: {json.dumps(row.get('vars') or {}, ensure_ascii=False)}\n"
                     f"Output:\n{output}\nFailed checks:\n" + "\n".join(failed or [f"- {row.get('reason')}"]))
    return [{"role": "system", "content": REVISER_INSTRUCTIONS},
            {"role": "user", "content": f"The prompt:\n<prompt>\n{prompt_source(prompt)}\n</prompt>\n\n"
                                        + "\n\n".join(cases)}]


def _refused(why: str) -> PromptLabError:
    return PromptLabError("revision_invalid", _("The suggested revision was not used: {why}").format(why=why))


def parse_revision(reply: str, original: PromptSpec) -> PromptSpec:
    """The reply's revised prompt, checked: between <prompt> tags, not empty or huge, the same placeholders as the
    original, the same format (chat messages stay a list of messages with known roles), and not the original."""
    found = _TAGGED.search(reply or "")
    if not found or not found.group(1).strip():
        raise _refused(_("the reply holds no prompt between <prompt> tags."))
    text = found.group(1).strip()
    if len(text) > MAX_PROMPT_CHARS:
        raise _refused(_("it is longer than {n:,} characters.").format(n=MAX_PROMPT_CHARS))
    source = prompt_source(original)
    missing, extra = placeholders(source) - placeholders(text), placeholders(text) - placeholders(source)
    if missing or extra:
        names = ", ".join("{{" + v + "}}" for v in sorted(missing | extra))
        raise _refused(_("its variables differ from the original's ({names}).").format(names=names))
    label = _("revised: {label}").format(label=original.label)
    if original.messages is None:
        if text == (original.text or "").strip():
            raise _refused(_("it is the original prompt unchanged."))
        return PromptSpec(label=label, text=text)
    try:
        messages = json.loads(text)
    except json.JSONDecodeError:
        raise _refused(_("the original is a list of chat messages and the revision is not JSON.")) from None
    if not (isinstance(messages, list) and messages and all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages)):
        raise _refused(_("the original is a list of chat messages and the revision is not."))
    revised = [{"role": m["role"], "content": m["content"]} for m in messages]
    if revised == original.messages:
        raise _refused(_("it is the original prompt unchanged."))
    return PromptSpec(label=label, messages=revised)


def suggest_revision(rows: list[dict[str, Any]], original: PromptSpec, provider: Provider, model: str,
                     context: CallContext, log: CallLog) -> Revision:
    """Ask `model` for a revision of `original` from its failing cases in `rows` (one logged call, tagged
    "revision"). Raises PromptLabError with one sentence: no failures to learn from, the call failed, or the reply
    is not a usable prompt."""
    failures = failing_rows(rows, original.label)
    if not failures:
        raise PromptLabError("revision_nothing", _("This prompt failed no graded case, so there is nothing to "
                                                   "revise it from."))
    tagged = CallContext(context.page, context.user, context.session, [*context.tags, "revision"])
    stream = ChatStream(provider, ChatRequest(model, revision_messages(original, failures), {"temperature": 0.2}),
                        tagged, log)
    reply = "".join(stream)
    outcome = stream.outcome
    if outcome is not None and outcome.error is not None:
        raise outcome.error
    return Revision(original=original, revised=parse_revision(reply, original), model=model,
                    request_id=stream.request_id, cost_usd=outcome.cost_usd if outcome else None)


def revision_config(config: EvalConfig, revision: Revision) -> EvalConfig:
    """The run's config with only the revised prompt: same providers and cases, so its cells pair with the
    original's (the original's results are the run's own; nothing is paid twice)."""
    return replace(config, prompts=[revision.revised])


def judge(original_rows: list[dict[str, Any]], revised_rows: list[dict[str, Any]], revision: Revision
          ) -> list[RevisionVerdict]:
    """Per provider: the revision (B) against the original (A) on the (case, repeat) pairs both have."""
    verdicts = []
    for provider in dict.fromkeys(r["provider"] for r in revised_rows):
        a = outcomes(original_rows, revision.original.label, provider)
        b = outcomes(revised_rows, revision.revised.label, provider)
        comparison = compare_paired(a, b, revision.original.label, revision.revised.label)
        keys = set(a) & set(b)
        both = sum(a[k] and b[k] for k in keys)
        neither = sum(not a[k] and not b[k] for k in keys)
        difference, low, high = paired_difference(len(comparison.b_worse), len(comparison.b_better), both, neither)
        verdicts.append(RevisionVerdict(provider, comparison, difference, low, high))
    return verdicts


def adopted(config: EvalConfig, revision: Revision) -> EvalConfig:
    """The config with the original prompt replaced by the revision (the user said so)."""
    prompts = [revision.revised if p.label == revision.original.label else p for p in config.prompts]
    return replace(config, prompts=prompts)


def as_draft(revision: Revision, model: str) -> Draft:
    """The revision as a Playground draft, to be saved as a new version in the prompt library."""
    revised = revision.revised
    if revised.messages is None:
        return Draft(model=model, user_template=revised.text or "")
    system = "\n\n".join(m["content"] for m in revised.messages if m["role"] in ("system", "developer"))
    users = [m["content"] for m in revised.messages if m["role"] == "user"]
    return Draft(model=model, system=system, user_template=users[-1] if users else "")

"""Synthetic test cases: a chosen model writes N further inputs for a prompt's `{{variables}}` from a few example
cases (one call through the gate, logged and costed, tagged "generate-cases"); near-duplicates — of each other or of
the examples — are dropped by word-trigram similarity, and what is left is a preview the user edits before the cases
join the set. A reply that is not the asked JSON, or cases with other variables, are one sentence each."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.calls.log import CallLog
from core.evals.config import TestCase
from core.formats import json_guard
from core.llm.providers import Provider

MAX_CASES = 50          # per request: a longer list is where models start repeating themselves
SIMILAR = 0.7           # word-trigram Jaccard at or above which two inputs count as the same case
_VAR = re.compile(r"{{\s*([\w.]+)\s*}}")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")

GENERATOR_INSTRUCTIONS = (
    "You write test inputs for a prompt that is being evaluated. You get the prompt template, its variables and "
    "some example cases. Write {n} NEW cases that differ from the examples and from each other: vary topic, "
    "length, tone, language and difficulty, and include edge cases a careful tester would try. Use exactly the "
    "variables {names}, each a string. Reply with JSON only: {{\"cases\": [{{\"vars\": {{...}}}}, ...]}}.")


@dataclass(frozen=True)
class Generated:
    """Cases the model proposed, after near-duplicates were dropped, and the call that made them."""

    cases: list[TestCase]
    duplicates: int          # proposed cases dropped as near-copies of an example or of an earlier case
    request_id: str
    cost_usd: float | None


def variables_of(template: str, examples: list[TestCase]) -> list[str]:
    """The variables a case needs: the template's placeholders, else the examples' own."""
    names = list(dict.fromkeys(_VAR.findall(template)))
    return names or list(dict.fromkeys(k for case in examples for k in case.vars))


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 3:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' word trigrams (0: nothing shared, 1: the same words in order)."""
    sa, sb = _shingles(a), _shingles(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def drop_near_duplicates(cases: list[TestCase], examples: list[TestCase], threshold: float = SIMILAR
                         ) -> tuple[list[TestCase], int]:
    """Keep a case only if its variables' text is below `threshold` similar to every example and every case kept
    before it. Returns the kept cases and how many were dropped."""
    def text(case: TestCase) -> str:
        return " ".join(str(case.vars[k]) for k in sorted(case.vars))

    seen = [text(e) for e in examples]
    kept: list[TestCase] = []
    for case in cases:
        mine = text(case)
        if any(similarity(mine, other) >= threshold for other in seen):
            continue
        seen.append(mine)
        kept.append(case)
    return kept, len(cases) - len(kept)


def generation_messages(template: str, examples: list[TestCase], n: int, names: list[str]
                        ) -> list[dict[str, str]]:
    shown = [{"vars": {k: case.vars.get(k, "") for k in names}} for case in examples[:10]]
    return [{"role": "system", "content": GENERATOR_INSTRUCTIONS.format(n=n, names=", ".join(names))},
            {"role": "user", "content": f"Prompt template:\n{template}\n\nExample cases:\n"
                                        + json.dumps(shown, ensure_ascii=False, indent=1)}]


def _invalid(why: str) -> PromptLabError:
    return PromptLabError("generated_invalid", _("The generated cases were not used: {why}").format(why=why))


def parse_cases(reply: str, names: list[str], source: str) -> list[TestCase]:
    """The reply's cases: JSON `{"cases": [{"vars": {...}}]}` (a bare list too, code fences allowed), each with
    exactly the variables asked, as strings; every case marked as generated in its metadata."""
    try:
        data = json_guard.loads(_FENCE.sub("", (reply or "").strip()))
    except (json.JSONDecodeError, json_guard.JSONShapeError):
        raise _invalid(_("the reply is not JSON.")) from None
    items = data.get("cases") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise _invalid(_("the reply holds no list of cases."))
    out = []
    for item in items[:MAX_CASES]:
        variables = item.get("vars", item) if isinstance(item, dict) else None
        if not isinstance(variables, dict) or set(variables) != set(names) or not all(
                isinstance(v, (str, int, float)) and str(v).strip() for v in variables.values()):
            raise _invalid(_("a case does not have exactly the variables {names}.").format(names=", ".join(names)))
        out.append(TestCase(vars={k: str(v) for k, v in variables.items()}, metadata={"source": source}))
    return out


def generate_cases(template: str, examples: list[TestCase], n: int, provider: Provider, model: str,
                   context: CallContext, log: CallLog) -> Generated:
    """Ask `model` for `n` (1-50) new cases like `examples` for `template`; near-duplicates dropped."""
    if not 1 <= n <= MAX_CASES:
        raise PromptLabError("generated_count", _("Ask for 1 to {max} cases at a time.").format(max=MAX_CASES))
    names = variables_of(template, examples)
    if not names:
        raise PromptLabError("generated_no_vars", _("The prompt has no {{variables}} and the cases none either, so "
                                                    "there is nothing to vary.").format())  # format: {{ }} is one brace
    tagged = CallContext(context.page, context.user, context.session, [*context.tags, "generate-cases"])
    params: dict[str, Any] = {"temperature": 0.9}  # variety is the point
    stream = ChatStream(provider, ChatRequest(model, generation_messages(template, examples, n, names), params),
                        tagged, log)
    reply = "".join(stream)
    outcome = stream.outcome
    if outcome is not None and outcome.error is not None:
        raise outcome.error
    cases, duplicates = drop_near_duplicates(parse_cases(reply, names, f"generated:{model}"), examples)
    return Generated(cases, duplicates, stream.request_id, outcome.cost_usd if outcome else None)

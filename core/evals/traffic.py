"""Test cases from real traffic: a logged call or a chat turn becomes a case — its last user message the `input`
variable, the turns before it `history`, its reply a proposed rubric the user edits — with where it came from, the
user's thumbs and note in the case's metadata (promptfoo's `metadata`, never sent to the model).

Texts are taken as the call log kept them, so a log under the "redacted" text policy yields redacted cases; a chat
turn is redacted here under the same policy; a call whose texts were not kept ("metadata" policy) yields no case.
Many calls are read a page at a time (`cases_from_calls`), so 10,000 of them never sit in one query or one list."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from core.base.i18n import _
from core.calls.log import CallLog, CallRecord, CallTexts
from core.evals.assertions import Assertion
from core.evals.config import TestCase
from core.evals.store import EvalStore, TestSetVersion
from core.policy.redaction import redact_value

PAGE = 500            # calls read per query
TITLE_CHARS = 60      # of the input, as the case's description
RATINGS = ("up", "down")


@dataclass(frozen=True)
class Exchange:
    """One exchange seen in real traffic: the messages sent, the reply, and where it came from."""

    messages: list[dict[str, Any]]
    reply: str | None
    source: str                 # "call:<request id>" or "conversation:<id>#<turn>"
    model: str | None = None
    at: str | None = None
    rating: str | None = None   # "up" / "down": the user's thumbs
    note: str | None = None


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content-part list (images and files named, not sent)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") in ("text", "input_text", "output_text"):
                parts.append(str(part.get("text") or ""))
            else:
                parts.append(f"[{part.get('type', 'part')}]")
        return "\n".join(parts)
    return "" if content is None else str(content)


def proposed_assertion(reply: str | None, rating: str | None, note: str | None) -> Assertion | None:
    """What the reply suggests the case should check, for the user to edit: a liked (or unrated) reply becomes the
    reference an answer must agree with; a disliked one what an answer must avoid, with the user's note."""
    if not reply:
        return None
    if rating == "down":
        why = f" ({note})" if note else ""
        return Assertion(type="llm-rubric", value=_(
            "Does not repeat the problem of this rejected answer{why}: {reply}").format(why=why, reply=reply))
    return Assertion(type="llm-rubric", value=_(
        "Agrees in substance with this reference answer: {reply}").format(reply=reply))


def case_from_exchange(exchange: Exchange, *, text_policy: str = "full") -> TestCase | None:
    """The exchange as a test case (None when it has no user message). Under the "redacted" policy every text is
    redacted here too (a chat turn is not stored redacted), so no PII reaches a test set the log would not keep."""
    messages = [m for m in exchange.messages if isinstance(m, dict)]
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return None
    last = users[-1]
    system = "\n".join(_text(m.get("content")) for m in messages[:last] if m.get("role") in ("system", "developer"))
    history = [{"role": m.get("role"), "content": _text(m.get("content"))} for m in messages[:last]
               if m.get("role") in ("user", "assistant")]
    variables: dict[str, Any] = {"input": _text(messages[last].get("content"))}
    if history:
        variables["history"] = json.dumps(history, ensure_ascii=False)
    reply, note = exchange.reply, exchange.note
    if text_policy in ("redacted", "metadata"):
        variables, system, reply, note = redact_value(variables), redact_value(system), redact_value(reply), \
            redact_value(note)
    metadata: dict[str, Any] = {"source": exchange.source}
    for key, value in (("model", exchange.model), ("at", exchange.at), ("rating", exchange.rating),
                       ("note", note), ("system_prompt", system or None), ("reference_output", reply)):
        if value:
            metadata[key] = value
    proposal = proposed_assertion(reply, exchange.rating, note)
    title = variables["input"].strip().splitlines()[0] if variables["input"].strip() else exchange.source
    return TestCase(vars=variables, assertions=[proposal] if proposal else [],
                    description=title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS - 1] + "…",
                    metadata=metadata)


def exchange_from_call(record: CallRecord, texts: CallTexts | None) -> Exchange | None:
    """A logged call as an exchange; None when its texts were not kept (the "metadata" policy) or it sent none."""
    if texts is None or not isinstance(texts.request.get("messages"), list):
        return None
    return Exchange(messages=texts.request["messages"], reply=texts.reply, source=f"call:{record.request_id}",
                    model=record.model or record.model_requested, at=record.ts)


@dataclass
class TrafficImport:
    """Cases made from calls, and how many calls gave none (texts not kept, another user's, no user message)."""

    cases: list[TestCase]
    skipped: int = 0


def cases_from_calls(log: CallLog, request_ids: Iterable[str], *, user: str, admin: bool = False,
                     page: int = PAGE) -> Iterator[tuple[TestCase | None, str]]:
    """Each call's case (None if it gives none) with its request id, read `page` calls per query."""
    ids = list(dict.fromkeys(request_ids))
    for start in range(0, len(ids), page):
        chunk = ids[start:start + page]
        found = {record.request_id: (record, texts) for record, texts in log.texts_page(chunk, user, admin)}
        for request_id in chunk:
            if request_id not in found:
                yield None, request_id
                continue
            exchange = exchange_from_call(*found[request_id])
            yield (case_from_exchange(exchange) if exchange else None), request_id


def import_calls(log: CallLog, request_ids: Iterable[str], *, user: str, admin: bool = False) -> TrafficImport:
    """`cases_from_calls` gathered: the cases, and the number of calls that gave none."""
    result = TrafficImport(cases=[])
    for case, _request_id in cases_from_calls(log, request_ids, user=user, admin=admin):
        if case is None:
            result.skipped += 1
        else:
            result.cases.append(case)
    return result


def cases_from_conversation(messages: list[dict[str, Any]], conversation_id: str, *, model: str | None = None,
                            text_policy: str = "full", turns: Iterable[int] | None = None) -> list[TestCase]:
    """A saved conversation's assistant turns as cases (or only the `turns` given, by message index): each with
    the messages before it, its reply, and the thumbs / note stored on the reply (`rating`, `note`)."""
    wanted = set(turns) if turns is not None else None
    out = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant" or (wanted is not None and i not in wanted):
            continue
        rating = message.get("rating") if message.get("rating") in RATINGS else None
        exchange = Exchange(messages=messages[:i], reply=_text(message.get("content")) or None,
                            source=f"conversation:{conversation_id}#{i}", model=message.get("model") or model,
                            rating=rating, note=message.get("note"))
        case = case_from_exchange(exchange, text_policy=text_policy)
        if case is not None:
            out.append(case)
    return out


@dataclass(frozen=True)
class Added:
    """What "Add to a test set" did: the set's new version, the cases new to it, the calls that gave no case."""

    version: TestSetVersion
    added: int
    skipped: int


def add_calls_to_set(store: EvalStore, log: CallLog, set_name: str, request_ids: Iterable[str], *, user: str,
                     admin: bool = False) -> Added:
    """The Analytics drill-down's "Add to a test set" (one call for the page): the chosen calls as cases, added to
    the set as its next version (`EvalStore.add_to_set`: the set's owner or an admin; TestSetRefused otherwise)."""
    found = import_calls(log, request_ids, user=user, admin=admin)
    version, added = store.add_to_set(set_name, found.cases, author=user, note=_("added from the call log"))
    return Added(version, added, found.skipped)


def add_turns_to_set(store: EvalStore, set_name: str, messages: list[dict[str, Any]], conversation_id: str, *,
                     user: str, model: str | None = None, text_policy: str = "full",
                     turns: Iterable[int] | None = None) -> Added:
    """Chat's "Add to a test set" for a conversation's replies (or the `turns` chosen), as its next version."""
    cases = cases_from_conversation(messages, conversation_id, model=model, text_policy=text_policy, turns=turns)
    version, added = store.add_to_set(set_name, cases, author=user, note=_("added from a conversation"))
    return Added(version, added, 0)

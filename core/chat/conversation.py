"""Conversations: messages, the system message (persona + reply language), context trimming by token budget,
replies streamed through the call gate, per-turn and whole-conversation counters, and exports.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from core.base.clock import utc_now_iso
from core.base.i18n import N_, _, ngettext
from core.calls import repetition
from core.calls.cache import ResponseCache
from core.calls.fallback import FallbackStream
from core.calls.gate import NO_HOOKS, CallContext, CallHooks, CallOutcome
from core.calls.log import CallLog
from core.calls.metrics import CallMetrics, CallStatus, metrics_caption
from core.chat.personas import Persona, language_instruction
from core.formats.rendering import plain
from core.llm import attachments as files
from core.llm import tools
from core.llm.attachments import Attachment
from core.llm.pricing import TokenUsage, cost_usd, format_cost
from core.llm.providers import Provider, request_params
from core.llm.tokens import TokenCounter, count_messages

Role = Literal["user", "assistant", "tool"]  # "tool": the user's answer to one of the model's tool calls
TurnStatus = Literal["ok", "stopped", "cut", "withheld"]  # what the reader is told about a reply
TURN_STATUSES: tuple[TurnStatus, ...] = ("ok", "stopped", "cut", "withheld")
STATUS_LABELS = {"stopped": N_("stopped"), "cut": N_("cut off"), "withheld": N_("withheld by moderation")}
# A turn's status says what its call's did: Stop cancelled it, an error cut it, moderation withheld an ok reply.
CALL_STATUS_OF_TURN: dict[str, CallStatus] = {"ok": "ok", "stopped": "cancelled", "cut": "error", "withheld": "ok"}
DEFAULT_REPLY_TOKENS = 1024
OFFLINE_REPLY_TOKENS = 256  # the offline model's reply budget: an answer's length, not a runaway's
# llama.cpp's own penalty on tokens repeated in the last `repeat_last_n` (its default 1.0 is off); the guard in
# core/calls/repetition.py ends what still loops.
RATINGS = ("up", "down")
OFFLINE_SAMPLING: dict[str, float | int] = {"repeat_penalty": 1.15, "repeat_last_n": 128}


@dataclass(kw_only=True)
class Message:
    """One chat turn as shown and stored; an assistant turn carries its call's measurements (and the tool calls it
    made, each {"id", "name", "arguments"}); a tool turn answers one of them by `tool_call_id`."""

    role: Role
    content: str
    status: TurnStatus = "ok"
    metrics: CallMetrics | None = None  # None for the user's turns
    note: str | None = None  # e.g. "gpt-4o timed out after 30 s — answered by gpt-4o-mini"
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    tool_call_id: str | None = None  # a tool turn: the call it answers
    tool_name: str | None = None  # ... and that call's function name (shown and exported)
    attachments: list[Attachment] = field(default_factory=list)  # a user's images and PDFs, checked (core.llm)
    rating: str | None = None  # the user's thumbs on a reply: "up" / "down" (a test case's metadata later)
    rating_note: str | None = None  # … and why, in their words
    thinking: str | None = None  # a reply's reasoning summary (Responses API), shown collapsed above it
    response_id: str | None = None  # the server's id of a reply made on the Responses API (previous_response_id)

    def api(self, vision: bool = True) -> dict[str, Any]:
        """The turn as the Chat Completions API takes it; attachments as content parts after the text (`image_url`
        / `file`; core.llm.responses_api restates them for Responses). A model without vision (`vision=False`)
        gets each as a line naming it instead: the conversation goes on, and the reader is told what it missed."""
        if self.attachments:
            if not vision:
                named = "\n".join("[" + _("attachment not sent: {name}").format(name=a.name) + "]"
                                   for a in self.attachments)
                return {"role": self.role, "content": "\n".join(t for t in (self.content, named) if t)}
            text = [{"type": "text", "text": self.content}] if self.content else []
            return {"role": self.role, "content": text + [files.chat_part(a) for a in self.attachments]}
        if self.role == "tool":
            return {"role": "tool", "tool_call_id": self.tool_call_id or "", "content": self.content}
        if self.tool_calls:
            return {"role": "assistant", "content": self.content or None,
                    "tool_calls": tools.api_tool_calls(self.tool_calls)}
        return {"role": self.role, "content": self.content}

    @property
    def model(self) -> str | None:
        return self.metrics.model if self.metrics else None

    def to_dict(self) -> dict[str, Any]:
        """The stored and exported form: the measurements flat beside the turn's own fields, as always; tool fields
        only on the turns that have them."""
        empty = CallMetrics(status="ok")
        data = {"role": self.role, "content": self.content, "status": self.status,
                **(self.metrics or empty).flat(), "note": self.note}
        if self.tool_calls:
            data["tool_calls"] = [dict(c) for c in self.tool_calls]
        if self.role == "tool":
            data["tool_call_id"], data["tool_name"] = self.tool_call_id, self.tool_name
        if self.attachments:
            data["attachments"] = [files.to_stored(a) for a in self.attachments]
        if self.rating:
            data["rating"], data["rating_note"] = self.rating, self.rating_note
        if self.thinking:
            data["thinking"] = self.thinking
        if self.response_id:
            data["response_id"] = self.response_id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Read a stored turn (any version so far: the flat form is the only one there has been)."""
        status: TurnStatus = next((s for s in TURN_STATUSES if s == data.get("status")), "ok")
        measured = CallMetrics.from_flat(data, CALL_STATUS_OF_TURN[status])
        # None for a user's turn, or a reply no call measured (written by hand, imported)
        metrics = measured if data.get("role") == "assistant" and measured != CallMetrics(status=measured.status) \
            else None
        return cls(role=data["role"], content=data.get("content") or "", status=status, metrics=metrics,
                   note=data.get("note"), tool_calls=_stored_tool_calls(data.get("tool_calls")),
                   tool_call_id=_text(data.get("tool_call_id")), tool_name=_text(data.get("tool_name")),
                   attachments=_stored_attachments(data.get("attachments")),
                   rating=data.get("rating") if data.get("rating") in RATINGS else None,
                   rating_note=_text(data.get("rating_note")),
                   thinking=_text(data.get("thinking")) or None, response_id=_text(data.get("response_id")) or None)


def _stored_attachments(value: Any) -> list[Attachment]:
    """Attachments as stored or imported; one whose bytes are missing or do not match their SHA-256 is left out
    (a file can hold anything, and a bad one must not stop the conversation from opening)."""
    kept = []
    for stored in value if isinstance(value, list) else []:
        try:
            kept.append(files.from_stored(stored))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return kept


def _with_bytes(turn: Any, blobs: dict[str, Any]) -> Any:
    """A stored turn with its attachments' bytes put back from the conversation's `files`."""
    if not isinstance(turn, dict) or not isinstance(turn.get("attachments"), list):
        return turn
    return {**turn, "attachments": [
        {**a, "data": a.get("data") or blobs.get(str(a.get("sha256")), "")} if isinstance(a, dict) else a
        for a in turn["attachments"]]}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _stored_tool_calls(value: Any) -> list[dict[str, str]]:
    """Tool calls as stored or imported: only text fields are kept (a file can hold anything)."""
    if not isinstance(value, list):
        return []
    return [{"id": _text(c.get("id")) or "", "name": _text(c.get("name")) or "",
             "arguments": _text(c.get("arguments")) or ""} for c in value if isinstance(c, dict)]


@dataclass(kw_only=True)
class Conversation:
    """A chat: its persona's system prompt, reply language and messages."""

    id: str
    title: str
    persona_id: str
    system_prompt: str
    language: str = "Auto"
    messages: list[Message] = field(default_factory=list)
    created_at: str = field(default_factory=utc_now_iso)
    # The reply to the last message: being written (saved before the call, so a crash cannot lose the turn), or
    # the sentence of its failure — both shown again, with Retry, when the conversation is reopened.
    reply_pending: bool = False
    error: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        known = {f.name for f in fields(cls)}
        conv = cls(**{k: v for k, v in data.items() if k in known and k != "messages"})
        given = data.get("files")
        blobs: dict[str, Any] = given if isinstance(given, dict) else {}
        conv.messages = [Message.from_dict(_with_bytes(m, blobs)) for m in data.get("messages", [])]
        return conv

    def to_dict(self) -> dict[str, Any]:
        """The stored and exported form. An attachment's bytes are kept once, base64 under `files` by their
        SHA-256, and each turn names them by it: the same screenshot attached twice (or a conversation saved
        after every turn) does not grow the stored body twice."""
        blobs: dict[str, str] = {}
        messages = []
        for m in self.messages:
            turn = m.to_dict()
            for stored in turn.get("attachments", []):
                blobs[stored["sha256"]] = stored.pop("data")
            messages.append(turn)
        data = {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "messages"},
                "messages": messages}
        if blobs:
            data["files"] = blobs
        return data


@dataclass(frozen=True)
class ContextPlan:
    """What the next request will send, within the model's context window minus the reply budget."""

    messages: list[dict[str, Any]]
    input_tokens: int
    dropped_messages: int
    context_window: int
    reply_budget: int
    input_cost_usd: float | None
    image_tokens: int = 0  # of input_tokens: the forecast for the images sent (OpenAI's tile / patch rule)
    uncounted_files: int = 0  # attachments whose tokens only the server knows (PDFs, images on unknown models)

    @property
    def over_budget(self) -> bool:
        return self.input_tokens > self.context_window - self.reply_budget


def new_conversation(persona: Persona | None = None, system_prompt: str | None = None,
                     language: str = "Auto") -> Conversation:
    """An empty conversation with a persona (or a custom system prompt)."""
    return Conversation(id=uuid.uuid4().hex, title="New chat", persona_id=persona.id if persona else "custom",
                        system_prompt=system_prompt if system_prompt is not None else
                        (persona.prompt() if persona else ""), language=language)


def copy_for(conversation: Conversation) -> Conversation:
    """The same conversation under a new id (what an admin continues when reading someone else's)."""
    data = conversation.to_dict()
    data["id"] = uuid.uuid4().hex
    return Conversation.from_dict(data)


def system_message(conversation: Conversation) -> str:
    """The persona's prompt plus the reply-language instruction."""
    parts = [conversation.system_prompt.strip(), language_instruction(conversation.language) or ""]
    return "\n\n".join(p for p in parts if p)


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 48 else line[:47].rstrip() + "…"


def add_user_message(conversation: Conversation, text: str, attachments: list[Attachment] | None = None) -> None:
    if not any(m.role == "user" for m in conversation.messages):
        conversation.title = _title_from(text or ", ".join(a.name for a in attachments or []))
    conversation.messages.append(Message(role="user", content=text, attachments=list(attachments or [])))


def refuse_message(text: str, model: str, *, context_window: int, reply_budget: int, system: str = "",
                   counter: TokenCounter | None = None, attachments: int = 0) -> str | None:
    """Why a message must not be sent, in one sentence (None when it may): blank (with no attachment), or too long
    for the model's context window even alone (with the system message and the reply budget) — refused before any
    call is made."""
    if not text.strip() and not attachments:
        return _("The message is empty: type something to send.")
    count = counter or (lambda msgs: count_messages(msgs, model))
    head = [{"role": "system", "content": system}] if system else []
    tokens = count([*head, {"role": "user", "content": text}])
    budget = context_window - reply_budget
    if tokens > budget:
        return _("This message is {tokens:,} tokens, more than the {budget:,} that {model} can take "
                 "({window:,}-token window, {reply:,} kept for the reply): shorten it, or choose a "
                 "model with a larger context window.").format(tokens=tokens, budget=budget, model=model,
                                                               window=context_window, reply=reply_budget)
    return None


def plan_context(conversation: Conversation, model: str, *, context_window: int, reply_budget: int,
                 provider_id: str | None = None, counter: TokenCounter | None = None,
                 vision: bool = True, image_rule: bool = True) -> ContextPlan:
    """Keep the system message and the newest turns that fit in `context_window - reply_budget` tokens.

    Older messages are dropped first; the newest user message is always sent (if even it does not fit, the
    provider will say so). `counter` counts a request's input tokens (default: tiktoken by OpenAI's rule; the
    local model passes its own tokenizer and chat template). Messages are measured one by one while choosing,
    then the chosen request is counted once, exactly. Images are counted by OpenAI's tile / patch rule for
    `model` (the counter sees their turns' text only) when `image_rule` (OpenAI and Azure: a compatible server
    counts its own way, so its attachments are left to it); a model without `vision` gets their names instead.
    """
    count = counter or (lambda msgs: count_messages(msgs, model))
    system = system_message(conversation)
    head = [{"role": "system", "content": system}] if system else []
    budget = context_window - reply_budget
    empty = count([])
    used = count(head)
    history = _answered(conversation.messages, vision)
    images = [(0, 0) if not vision else files.forecast(model, m.attachments) if image_rule
              else (0, len(m.attachments)) for m in conversation.messages]
    kept: list[int] = []
    for i in range(len(history) - 1, -1, -1):
        cost = count([_text_only(history[i])]) - empty + images[i][0]
        if kept and used + cost > budget:
            break
        kept.append(i)
        used += cost
    kept.reverse()
    while len(kept) > 1 and history[kept[0]]["role"] in ("assistant", "tool"):
        kept.pop(0)  # a reply without its question, a tool result without its call
    messages = head + [history[i] for i in kept]
    image_tokens = sum(images[i][0] for i in kept)
    input_tokens = count([_text_only(m) for m in messages]) + image_tokens
    return ContextPlan(messages, input_tokens, len(history) - len(kept), context_window, reply_budget,
                       cost_usd(TokenUsage(input_tokens=input_tokens), model, provider_id), image_tokens,
                       sum(images[i][1] for i in kept))


def _text_only(message: dict[str, Any]) -> dict[str, Any]:
    """A request message with its content parts as their text: what a token counter (tiktoken, or the offline
    model's own template) is given, never an image's base64."""
    content = message.get("content")
    if not isinstance(content, list):
        return message
    return {**message, "content": "".join(p.get("text", "") for p in content if p.get("type") == "text")}


def _answered(messages: list[Message], vision: bool = True) -> list[dict[str, Any]]:
    """The turns as the API takes them. Tool calls the user left unanswered (they wrote a new message instead)
    are left out of their turn: the API refuses an assistant's `tool_calls` not followed by their results."""
    history = [m.api(vision) for m in messages]
    for i, message in enumerate(history):
        answered = {m.get("tool_call_id") for m in history[i + 1:] if m["role"] == "tool"}
        if message.get("tool_calls") and not all(c["id"] in answered for c in message["tool_calls"]):
            history[i] = {"role": "assistant", "content": message.get("content") or ""}
    return history


def default_reply_tokens(provider_kind: str) -> int:
    """The reply budget a chat starts with: short on the offline model, whose long replies wander and loop (1,024
    tokens took 240 s on a busy machine in issue 28)."""
    return OFFLINE_REPLY_TOKENS if provider_kind == "local" else DEFAULT_REPLY_TOKENS


def reply_params(provider: Provider, model: str, *, temperature: float, max_tokens: int,
                 chosen: str, tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A chat reply's request parameters. The offline model also gets llama.cpp's repetition penalty (its server
    takes it beside the OpenAI fields), and, when it answers as a fallback, the short budget: the user's was set
    for the model they chose. Tools go to every other model (the model chooses whether to call one)."""
    extra: dict[str, Any] = {}
    if tools and provider.kind != "local":
        extra["tools"], extra["tool_choice"] = tools, "auto"
    if provider.kind == "local":
        extra["extra_body"] = dict(OFFLINE_SAMPLING)
        if model != chosen:
            max_tokens = min(max_tokens, OFFLINE_REPLY_TOKENS)
    return request_params(provider, model, temperature=temperature, max_tokens=max_tokens, **extra)


def start_reply(plan: ContextPlan, chain: list[str], provider_for: Callable[[str], Provider],
                params_for: Callable[[Provider, str], dict[str, Any]], context: CallContext,
                log: CallLog, cache: ResponseCache | None = None, cache_opt_in: bool = False, *,
                hooks: CallHooks = NO_HOOKS, api: str = "chat") -> FallbackStream:
    """A stream of the assistant's reply as planned, from the first model of the chain that answers (or from the
    response cache, at temperature 0 or when opted in). A reply that loops is cut, with a note. `api`: auto /
    responses / chat (`core.llm.responses_api.choose_api`, settled per model of the chain)."""
    return FallbackStream(chain, plan.messages, provider_for, params_for, context, log, cache, cache_opt_in,
                          hooks=hooks, stop_loops=True, api=api)  # a looping reply ends with a note


def record_reply(conversation: Conversation, outcome: CallOutcome | None, note: str | None = None) -> Message | None:
    """Append the reply the outcome holds: complete, stopped or cut; a failure with no text adds nothing.
    `note` says which model answered when the chosen one did not."""
    if outcome is None:
        return None
    status: TurnStatus = "stopped" if outcome.status == "cancelled" else "cut" if outcome.error else "ok"
    if status != "ok" and not outcome.text:
        return None
    if outcome.finish_reason == repetition.FINISH_REASON:  # the loop was cut: say so beside the reply
        note = "; ".join(n for n in (note, _(repetition.NOTE)) if n)
    # Only a reply that ended normally has calls whole enough to answer.
    calls = [{"id": c.get("id") or "", "name": c.get("name") or "", "arguments": c.get("arguments") or ""}
             for c in outcome.tool_calls] if status == "ok" else []
    message = Message(role="assistant", content=outcome.text, status=status, metrics=outcome.metrics, note=note,
                      tool_calls=calls, thinking=outcome.thinking or None,
                      response_id=outcome.response_id if status == "ok" else None)
    conversation.messages.append(message)
    return message


def rate_reply(conversation: Conversation, index: int, rating: str | None, note: str | None = None) -> None:
    """The user's thumbs (and why) on the reply at `index`; None takes them back."""
    message = conversation.messages[index]
    if message.role != "assistant":
        raise ValueError("Only a reply can be rated.")
    if rating is not None and rating not in RATINGS:
        raise ValueError(f"A rating is one of {RATINGS}.")
    message.rating = rating
    message.rating_note = (note or "").strip() or None if rating else None


def drop_last_reply(conversation: Conversation) -> None:
    """Remove the assistant's last reply (before regenerating); tool results the user gave stay and are answered
    again."""
    while conversation.messages and conversation.messages[-1].role == "assistant":
        conversation.messages.pop()


def edit_last_user_message(conversation: Conversation, text: str) -> None:
    """Replace the last user message and forget everything after it (edit-and-resend)."""
    for i in range(len(conversation.messages) - 1, -1, -1):
        if conversation.messages[i].role == "user":
            conversation.messages[i].content = text
            del conversation.messages[i + 1:]
            return
    add_user_message(conversation, text)


def pending_notice(conversation: Conversation) -> str | None:
    """What to say about the last message when a conversation is (re)opened: its failure, or that its reply was
    interrupted (the server stopped mid-reply); None when nothing is owed."""
    if not awaiting_reply(conversation):
        return None
    if conversation.error:
        return conversation.error
    if conversation.reply_pending:
        return _("The reply to your last message was interrupted (the server stopped): Retry sends it again.")
    return None


def awaiting_reply(conversation: Conversation) -> bool:
    """True when the last message is the user's (or the user's answer to a tool call): a reply is owed (after an
    error, Retry sends it)."""
    return bool(conversation.messages) and conversation.messages[-1].role in ("user", "tool")


def pending_tool_calls(conversation: Conversation) -> list[dict[str, str]]:
    """The tool calls of the last reply when it is the last turn: what the user is asked to answer."""
    last = conversation.messages[-1] if conversation.messages else None
    return list(last.tool_calls) if last is not None and last.role == "assistant" and last.status == "ok" else []


def answer_tool_calls(conversation: Conversation, results: list[str]) -> None:
    """The user's result for each pending tool call, as one `role: "tool"` turn per call (ToolError, with its
    sentence, when one is missing): the next reply lets the model go on."""
    calls = pending_tool_calls(conversation)
    tools.check_results(calls, results)
    for call, api_call, result in zip(calls, tools.api_tool_calls(calls), results, strict=True):
        conversation.messages.append(Message(role="tool", content=result, tool_call_id=api_call["id"],
                                             tool_name=call.get("name") or None))


@dataclass(frozen=True)
class ConversationTotals:
    """Tokens and cost of every reply so far; `unpriced` counts replies whose cost is unknown."""

    usage: TokenUsage
    cost_usd: float
    unpriced: int
    replies: int


def totals(conversation: Conversation) -> ConversationTotals:
    replies = [m.metrics or CallMetrics(status="ok") for m in conversation.messages if m.role == "assistant"]
    usage = sum((TokenUsage(m.input_tokens or 0, m.output_tokens or 0, estimated=m.tokens_estimated)
                 for m in replies), TokenUsage())
    return ConversationTotals(usage, sum(m.cost_usd or 0.0 for m in replies),
                              sum(1 for m in replies if m.cost_usd is None), len(replies))


def file_slug(text: str, fallback: str) -> str:
    """Text as a file-name part: lower case, runs of non-word characters as one dash, 48 characters at most."""
    return re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-")[:48] or fallback


def export_name(conversation: Conversation, extension: str) -> str:
    """A download's file name from the conversation's title and day ("refund-window-2026-11-27.md")."""
    return f"{file_slug(conversation.title, 'conversation')}-{conversation.created_at[:10]}.{extension}"


def export_json(conversation: Conversation) -> str:
    return json.dumps({"format": "promptlab.conversation.v1", "system": system_message(conversation),
                       **conversation.to_dict()}, ensure_ascii=False, indent=2)


def export_markdown(conversation: Conversation) -> str:
    """The conversation as Markdown; its headings in the UI language (the messages as they were written)."""
    lines = [f"# {conversation.title}", "", "*" + _("Exported from PromptLab · {time}").format(
        time=utc_now_iso()[:19].replace("T", " ") + " UTC")
             + "*", ""]
    system = system_message(conversation)
    if system:
        lines += ["## " + _("System prompt"), "", system, ""]
    for m in conversation.messages:
        heading = turn_heading(m)
        if m.status != "ok":
            heading += f" — {status_label(m.status)}"
        lines += [f"## {heading}", ""]
        if m.thinking:  # collapsed, as on the page: GitHub and most viewers fold <details>
            lines += ["<details><summary>" + _("Thinking") + "</summary>", "", m.thinking, "", "</details>", ""]
        lines += [m.content, ""]
        for a in m.attachments:  # the bytes travel in the JSON export; here each is named and described
            lines += [f"- 📎 {attachment_label(a)}"]
        if m.attachments:
            lines += [""]
        for call in m.tool_calls:  # the arguments as an indented code block: the model's text, never markup
            lines += [_("Tool call: {name}").format(name=call.get("name") or "?"), "",
                      *("    " + line for line in (call.get("arguments") or "").splitlines() or [""]), ""]
    return "\n".join(lines)


def attachment_label(attachment: Attachment) -> str:
    """An attachment in one line: its name, then its pixel size or its pages ("invoice.pdf · PDF, 2 pages")."""
    if attachment.is_image:
        size = f"{attachment.width}×{attachment.height}" if attachment.width and attachment.height else ""
        return " · ".join(p for p in (attachment.name, _("image"), size) if p)
    pages = ngettext("{n} page", "{n} pages", attachment.pages or 0).format(n=attachment.pages) \
        if attachment.pages else ""
    return " · ".join(p for p in (attachment.name, "PDF", pages) if p)


def turn_heading(message: Message) -> str:
    """Who wrote a turn, in the UI language: You, Assistant (model), or the result of a named tool."""
    if message.role == "user":
        return _("You")
    if message.role == "tool":
        return _("Tool result ({name})").format(name=message.tool_name or "?")
    return _("Assistant ({model})").format(model=message.model or _("unknown model"))


def status_label(status: str) -> str:
    """How a turn ended, in the UI language ("stopped", "cut off", "withheld by moderation")."""
    return _(STATUS_LABELS[status]) if status in STATUS_LABELS else status


def turn_caption(message: Message) -> str:
    """The counters under a reply: model, then its measurements, then how it ended when not normally."""
    parts = [plain(message.model) if message.model else _("unknown model")]  # a typed model id shows as text
    if message.metrics is not None:
        parts.append(metrics_caption(message.metrics))
    if message.status != "ok":
        parts.append(f"**{status_label(message.status)}**")
    return " · ".join(parts)


def totals_caption(conversation_totals: ConversationTotals) -> str:
    t = conversation_totals
    est = _(" (some est.)") if t.usage.estimated else ""
    if t.unpriced and t.unpriced == t.replies:
        cost = format_cost(None)
    else:
        cost = format_cost(t.cost_usd) + (_(" + {n} unpriced").format(n=t.unpriced) if t.unpriced else "")
    replies = ngettext("{n} reply", "{n} replies", t.replies).format(n=t.replies)
    tokens = _("{input:,} in / {output:,} out tokens").format(input=t.usage.input_tokens,
                                                               output=t.usage.output_tokens)
    return f"{replies} · {tokens}{est} · {cost}"


def next_turn_caption(plan: ContextPlan) -> str:
    dropped = (_(" · {n} older messages left out").format(n=plan.dropped_messages) if plan.dropped_messages
               else "")
    if plan.image_tokens:
        dropped += _(" · ≈{tokens:,} of them for images").format(tokens=plan.image_tokens)
    if plan.uncounted_files:
        dropped += " · " + ngettext("{n} attachment counted by the server only",
                                    "{n} attachments counted by the server only",
                                    plan.uncounted_files).format(n=plan.uncounted_files)
    return _("Next turn sends {tokens:,} tokens ({cost}) of a {window:,}-token window, {reply:,} kept for the "
             "reply").format(tokens=plan.input_tokens, cost=format_cost(plan.input_cost_usd),
                             window=plan.context_window, reply=plan.reply_budget) + dropped

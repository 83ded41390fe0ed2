"""One chat turn as one call from the page: the message checked (blank, too long, tools, moderation) and added,
the context planned, the user's turn saved before the call, the reply streamed through the fallback chain and the
gate, then recorded, moderated and saved whatever happened (end, error, Stop). The page only draws.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from core.base.i18n import _
from core.calls.cache import ResponseCache
from core.calls.fallback import FallbackStream, fallback_chain, saved_chain
from core.calls.gate import NO_HOOKS, CallContext, CallHooks
from core.calls.log import CallLog
from core.calls.moderation import ModerationSettings, check, load_moderation
from core.calls.pending_writes import PENDING
from core.chat import conversation as chat
from core.chat.conversation import ContextPlan, Conversation
from core.chat.store import ConversationStore
from core.llm import attachments as files
from core.llm import tools
from core.llm.attachments import Attachment
from core.llm.providers import Provider
from core.llm.responses_api import choose_api


@dataclass(frozen=True, kw_only=True)
class TurnSettings:
    """What the user chose for the next reply: model, sampling, the cache opt-in and the tools (JSON as typed)."""

    model: str
    temperature: float
    max_tokens: int
    cache_opt_in: bool = False
    tools_json: str = ""
    api: str = "auto"  # auto / responses / chat: which OpenAI API answers (core.llm.responses_api.choose_api)
    # On the Responses API: send only the new input and point at the last reply by `previous_response_id` (the
    # server keeps the conversation: `store` true); off, the whole history goes and nothing is stored.
    server_state: bool = False


@dataclass(frozen=True, kw_only=True)
class ChatServices:
    """What a turn calls on: the session's provider (moderation, its saved fallback chain), a provider per model,
    the call log, the response cache and the conversation store, and who is asking."""

    provider: Provider
    provider_for: Callable[[str], Provider]
    context_window: Callable[[str], int]
    log: CallLog
    context: CallContext
    store: ConversationStore
    user: str
    cache: ResponseCache | None = None
    fallback: str = "off"  # the configured chain (PROMPTLAB_FALLBACK) when the provider has none saved
    local_model_path: str | None = None


@dataclass
class TurnResult:
    """What the page says after a turn: the failure (with Retry and, when a reply was cut after text, another model
    to answer), a save that waits in the background, and a passing notice (a toast)."""

    error: str | None = None
    next_model: str | None = None
    save_error: str | None = None
    notice: str | None = None


@dataclass
class Submission:
    """A message offered for sending: refused (the sentence, the text goes back into the box) or added."""

    refusal: str | None = None
    notice: str | None = None  # moderation could not run, say so in passing


def read_tools(text: str) -> tuple[list[dict[str, Any]], str | None]:
    """The tools the user defined, or none and the one sentence saying what is wrong with them."""
    try:
        return tools.validate_tools(text), None
    except tools.ToolError as exc:
        return [], str(exc)


def plan(conversation: Conversation, settings: TurnSettings, services: ChatServices) -> ContextPlan:
    """What the next request sends (the newest turns that fit the model's window)."""
    provider = services.provider_for(settings.model)
    return chat.plan_context(conversation, settings.model, context_window=services.context_window(settings.model),
                             reply_budget=settings.max_tokens, provider_id=provider.pricing_id,
                             counter=provider.prompt_counter(settings.model),
                             vision=files.takes_images(provider.kind, settings.model),
                             image_rule=provider.kind in files.RULE_KINDS)


def submit(conversation: Conversation, text: str, settings: TurnSettings, services: ChatServices,
           moderation: ModerationSettings | None = None, attachments: list[Attachment] | None = None) -> Submission:
    """Check a message and add it as the user's turn: nothing is sent when it is blank, too long for the model
    even alone, the tools are invalid, moderation flags it, or it has attachments (checked already by
    `core.llm.attachments.check_uploads`) and the model takes no images (the offline model takes none)."""
    provider = services.provider_for(settings.model)
    attachments = list(attachments or [])
    if attachments and not files.takes_images(provider.kind, settings.model):
        return Submission(refusal=files.no_vision_error(settings.model).message)
    refusal = chat.refuse_message(text, settings.model, context_window=services.context_window(settings.model),
                                  reply_budget=settings.max_tokens, system=chat.system_message(conversation),
                                  counter=provider.prompt_counter(settings.model), attachments=len(attachments))
    if refusal is None:
        refusal = read_tools(settings.tools_json)[1]
    if refusal is not None:
        return Submission(refusal=refusal)
    moderation = moderation or load_moderation(services.log.engine)
    notice = None
    if moderation.checks_input and text.strip():
        verdict = check(services.provider, text, moderation, services.context, services.log)
        if not verdict.allowed:
            return Submission(refusal=verdict.sentence())
        notice = verdict.notice
    chat.add_user_message(conversation, text, attachments)
    return Submission(notice=notice)


def save(conversation: Conversation, services: ChatServices) -> str | None:
    """Store the conversation; if the database is locked or full, a copy is saved in the background
    (core.calls.pending_writes) and the sentence saying so is returned. Safe in a page's `finally`."""
    if not conversation.messages:
        return None
    snapshot = Conversation.from_dict(conversation.to_dict())
    store, user = services.store, services.user
    try:
        store.save(snapshot, user)
    except (SQLAlchemyError, OSError) as exc:
        PENDING.add(f"conversation {snapshot.id}", lambda: store.save(snapshot, user))
        return _("This conversation could not be saved yet ({error}: the database is busy or full). It "
                 "stays on this page and is saved in the background.").format(error=type(exc).__name__)
    return None


@dataclass
class ChatTurn:
    """The assistant's reply to the conversation's last turn. Iterate it for text deltas; `close()` (also on
    Stop, from a `finally`) ends the call and records, moderates and saves the reply, then `result` says what
    to show. The user's turn is saved when it starts: a crash mid-reply cannot lose it."""

    conversation: Conversation
    settings: TurnSettings
    services: ChatServices
    hooks: CallHooks = NO_HOOKS
    forced_model: str | None = None  # the user chose another model for a reply cut after text
    result: TurnResult = field(default_factory=TurnResult)

    def __post_init__(self) -> None:
        s, services = self.settings, self.services
        self.plan = plan(self.conversation, s, services)
        chosen = services.provider_for(s.model)
        configured = saved_chain(services.log.engine, services.provider.kind, services.provider.base_url)
        self.chain = [self.forced_model] if self.forced_model else fallback_chain(
            s.model, configured or services.fallback, services.local_model_path)
        self.sends_files = any(isinstance(m.get("content"), list) and any(
            p.get("type") in ("image_url", "file") for p in m["content"]) for m in self.plan.messages)
        if self.sends_files:  # a fallback that takes no images (the offline model) would only fail on them
            self.chain = self.chain[:1] + [m for m in self.chain[1:]
                                           if files.takes_images(services.provider_for(m).kind, m)]
        self.tools = read_tools(s.tools_json)[0] if chosen.kind != "local" else []
        self.conversation.reply_pending, self.conversation.error = True, None
        self.result.save_error = save(self.conversation, services)
        self.previous_id = self._previous_response_id(chosen) if s.server_state else None
        self.resent = False  # the stored response was gone: the full history was sent instead
        self.stream: FallbackStream = self._start()
        self._closed = False

    def _start(self) -> FallbackStream:
        s, services = self.settings, self.services
        return chat.start_reply(self.plan, self.chain, services.provider_for, self._params, services.context,
                                services.log, services.cache, s.cache_opt_in, hooks=self.hooks, api=s.api)

    def _previous_response_id(self, chosen: Provider) -> str | None:
        """The id of the last reply, when this turn goes to the Responses API and that reply was answered there."""
        if choose_api(chosen.kind, self.settings.api, self.settings.model) != "responses":
            return None
        last = next((m for m in reversed(self.conversation.messages) if m.role == "assistant"), None)
        return last.response_id if last is not None and last.status == "ok" else None

    def _params(self, provider: Provider, model: str) -> dict[str, Any]:
        params = chat.reply_params(provider, model, temperature=self.settings.temperature,
                                   max_tokens=self.settings.max_tokens, chosen=self.chain[0],
                                   tools=self.tools if provider.kind != "local" else None)
        if self.settings.server_state and choose_api(provider.kind, self.settings.api, model) == "responses":
            params["store"] = True  # kept server-side, so the next turn can point at it
            if self.previous_id and model == self.chain[0]:
                params["previous_response_id"] = self.previous_id
        return params

    def __iter__(self) -> Iterator[str]:
        yield from self.stream
        out = self.stream.outcome
        if self.previous_id and out is not None and out.error is not None and not out.text \
                and out.error.kind == "previous_response_not_found":
            # The stored response expired (or was never stored): the whole history goes once more, this time.
            self.previous_id, self.resent = None, True
            self.stream = self._start()
            yield from self.stream

    @property
    def thinking(self) -> str:
        """The reasoning summary the answering model streamed so far (Responses API), kept apart from the text."""
        return self.stream.attempts[-1].stream.thinking if self.stream.attempts else ""

    @property
    def api(self) -> str | None:
        """The API that answered ("responses" or "chat"), once a request has been made."""
        return self.stream.attempts[-1].stream.request.api if self.stream.attempts else None

    def __enter__(self) -> ChatTurn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> TurnResult:
        """End the call (Stop cancels it upstream) and keep what came: the reply recorded, the failure's sentence
        kept on the conversation for Retry, an ok reply moderated, the conversation saved. Touches no UI."""
        if self._closed:
            return self.result
        self._closed = True
        conv, stream, result = self.conversation, self.stream, self.result
        stream.close()
        resent = _("the server no longer had the previous response: the full history was sent") \
            if self.resent else None
        reply = chat.record_reply(conv, stream.outcome, "; ".join(n for n in (stream.notice, resent) if n) or None)
        conv.reply_pending, conv.error = False, None
        outcome = stream.outcome
        if outcome is not None and outcome.log_error:
            result.save_error = outcome.log_error
        if outcome is not None and outcome.error:
            result.error = outcome.error.message + (f" {stream.notice}." if stream.notice else "")
            said = f"{outcome.error.message} {outcome.error.detail or ''}"
            if self.sends_files and files.looks_like_no_vision(said):  # the server said so: the same sentence
                result.error = files.no_vision_error(stream.attempts[-1].model if stream.attempts
                                                     else self.settings.model).message
            conv.error = result.error if chat.awaiting_reply(conv) else None
            tried = [a.model for a in stream.attempts]
            untried = [m for m in self.chain if m not in tried]
            result.next_model = untried[0] if outcome.text and untried else None
        if reply is not None and reply.status == "ok" and reply.content:
            self._moderate(reply)
        result.save_error = save(conv, self.services) or result.save_error
        return result

    def _moderate(self, reply: chat.Message) -> None:
        """A flagged reply is withheld (its text replaced by the sentence), when output checks are on."""
        services = self.services
        moderation = load_moderation(services.log.engine)
        if not moderation.checks_output:
            return
        verdict = check(services.provider, reply.content, moderation, services.context, services.log, what="reply")
        if verdict.categories:
            reply.content = "*" + _("Reply withheld: moderation flagged it ({categories}).").format(
                categories=", ".join(verdict.categories)) + "*"
            reply.status = "withheld"
        elif verdict.notice:
            self.result.notice = verdict.notice

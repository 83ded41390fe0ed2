"""The fallback chain: when the chosen model times out, fails with a 5xx or cannot be reached (after the SDK's own
retries), the next model in the chain answers. Each attempt is its own call-log row, linked by the first attempt's
request id. A stream that fails after text was shown is not restarted on another model: the user chooses.
"""
from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from core.base.i18n import _
from core.calls import prometheus as metrics
from core.calls.cache import ResponseCache, eligible
from core.calls.gate import NO_HOOKS, CallContext, CallHooks, CallOutcome, ChatRequest, ChatStream
from core.calls.log import CallLog
from core.calls.ratelimit import provider_key
from core.llm.local_model import LOCAL_PREFIX, is_local_model, model_id_for
from core.llm.responses_api import choose_api
from core.policy.access import Identity
from core.policy.workspace import Setting, Workspace

# Failures worth another model; the others (bad key, bad request, context too long…) would fail there too.
FALLBACK_KINDS = frozenset({"timeout", "server_error", "connection", "local_model_crashed",
                            "local_model_unavailable"})
# A cheaper sibling of each model, for the default chain.
CHEAPER = {"gpt-4o": "gpt-4o-mini", "gpt-4.1": "gpt-4.1-mini", "gpt-4.1-mini": "gpt-4.1-nano",
           "gpt-5": "gpt-5-mini", "gpt-5-mini": "gpt-5-nano", "o3": "o4-mini", "gpt-4-turbo": "gpt-4o-mini",
           "gpt-4": "gpt-4o-mini", "gpt-3.5-turbo": "gpt-4o-mini"}


def fallback_chain(model: str, setting: str, local_model_path: str | None = None) -> list[str]:
    """The models to try, in order, starting with the chosen one."""
    local = model_id_for(local_model_path)
    if setting.strip().lower() == "off" or is_local_model(model):
        return [model]
    if setting.strip().lower() == "auto":
        rest = [CHEAPER[model]] if model in CHEAPER else []
        rest.append(local)
    else:
        rest = [local if m.strip() in ("local", LOCAL_PREFIX.rstrip("/")) else m.strip()
                for m in setting.split(",") if m.strip()]
    chain = [model]
    for m in rest:
        if m not in chain:
            chain.append(m)
    return chain


def offline_fallback_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the offline model gets when it stands in for another: the system message and the newest user turn.
    The history was planned for the chosen model's window (128k tokens for a GPT): it handed a 135M model the
    previous answer to copy (issue 28, row 11), and minutes of prompt processing on a long conversation."""
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    return system + ([last_user] if last_user is not None else [])


# A provider's own chain, set in Settings, overriding PROMPTLAB_FALLBACK (None: the environment's applies).
FALLBACK_CHAIN: Setting[str | None] = Setting("fallback", None, unset_when=lambda text: not text)


def saved_chain(engine: Engine, kind: str, base_url: str | None) -> str | None:
    return Workspace(engine).load(FALLBACK_CHAIN, scope=provider_key(kind, base_url))


def save_chain(engine: Engine, kind: str, base_url: str | None, chain: str | None, *, actor: Identity) -> None:
    """A provider's fallback chain, for everyone: an admin's choice (AdminOnly otherwise), audited."""
    Workspace(engine).save(FALLBACK_CHAIN, (chain or "").strip() or None, scope=provider_key(kind, base_url),
                           actor=actor)


def reason(outcome: CallOutcome, model: str, timeout_s: float) -> str:
    """Why an attempt was passed over, in a few words."""
    kind = outcome.error.kind if outcome.error else "error"
    said = {"timeout": _("{model} timed out after {seconds:g} s"),
            "server_error": _("{model} had a server error"),
            "connection": _("{model} could not be reached"),
            "local_model_crashed": _("{model} stopped unexpectedly"),
            "local_model_unavailable": _("{model} could not be loaded")}.get(kind, _("{model} failed"))
    return said.format(model=model, seconds=timeout_s)


@dataclass
class Attempt:
    """One model tried: its stream (and so its outcome and log row)."""

    model: str
    stream: ChatStream


class FallbackStream:
    """Text deltas from the first model in the chain that answers; `notice` says who answered and why, or, when
    none did, which models were tried."""

    def __init__(self, chain: list[str], messages: list[dict[str, Any]], provider_for: Callable[[str], Any],
                 params_for: Callable[[Any, str], dict[str, Any]], context: CallContext, log: CallLog,
                 cache: ResponseCache | None = None, cache_opt_in: bool = False, *, hooks: CallHooks = NO_HOOKS,
                 stop_loops: bool = False, api: str = "chat"):
        self.chain, self.messages, self.stop_loops = chain, messages, stop_loops
        # The API choice (auto / responses / chat) is settled per attempt: a fallback to a compatible server or
        # the offline model under "auto" speaks Chat Completions.
        self.api = api
        self.hooks = hooks
        self.cache, self.cache_opt_in = cache, cache_opt_in
        self.provider_for, self.params_for = provider_for, params_for
        self.context, self.log = context, log
        self.attempts: list[Attempt] = []
        self.notice: str | None = None
        self._gen = self._run()

    def __iter__(self) -> FallbackStream:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()
        if self.attempts:
            self.attempts[-1].stream.close()

    @property
    def outcome(self) -> CallOutcome | None:
        return self.attempts[-1].stream.outcome if self.attempts else None

    @property
    def request_id(self) -> str | None:
        return self.attempts[0].stream.request_id if self.attempts else None

    def _run(self) -> Generator[str, None, None]:
        passed_over: list[str] = []
        for i, model in enumerate(self.chain):
            provider = self.provider_for(model)
            params = self.params_for(provider, model)
            messages = self.messages if i == 0 or provider.kind != "local" else offline_fallback_messages(
                self.messages)
            cache = self.cache if self.cache is not None and eligible(params, self.cache_opt_in) else None
            request = ChatRequest(model, messages, params, api=choose_api(provider.kind, self.api, model))
            stream = ChatStream(provider, request, self.context, self.log,
                                chain_id=self.request_id, attempt=i + 1, cache=cache, hooks=self.hooks,
                                stop_loops=self.stop_loops)
            if i == 0:
                stream.chain_id = stream.request_id
            self.attempts.append(Attempt(model, stream))
            shown = False
            for delta in stream:
                shown = True
                yield delta
            out = stream.outcome
            if out is None or out.error is None or shown or out.error.kind not in FALLBACK_KINDS \
                    or i + 1 == len(self.chain):
                break  # answered, stopped, failed after text was shown, failed for good, or nobody left
            passed_over.append(reason(out, model, provider.timeout_s))
        last = self.outcome
        if passed_over and last is not None and last.status == "ok":
            answered = self.attempts[-1].model
            self.notice = _("{passed_over} — answered by {model}").format(passed_over="; ".join(passed_over),
                                                                           model=answered)
            metrics.FALLBACKS.labels(self.attempts[-1].stream.provider.kind, self.chain[0], answered).inc()
        elif passed_over and last is not None and last.error is not None:
            final = self.attempts[-1]
            passed_over.append(reason(last, final.model, final.stream.provider.timeout_s))
            self.notice = _("Tried {n} models: {passed_over}").format(n=len(self.attempts),
                                                                      passed_over="; ".join(passed_over))

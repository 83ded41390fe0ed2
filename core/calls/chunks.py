"""What a streamed chat completion said: a pure accumulator of SDK chunks (text, tool calls, usage, finish reason,
served model and time to first token). No HTTP, no logging: the gate (`core/calls/gate.py`) feeds it and books the result.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core.base.errors import MalformedResponse


@dataclass
class ChunkAccumulator:
    """Feed it `ChatCompletionChunk`s in order; it keeps what they add up to."""

    started: float = field(default_factory=time.perf_counter)  # perf_counter() when the request left
    parts: list[str] = field(default_factory=list)
    usage: Any = None  # the provider's `CompletionUsage`, when it sent one
    model: str | None = None
    service_tier: str | None = None  # the tier that served the request (flex / priority / default), when told
    finish_reason: str | None = None
    ttft_ms: float | None = None
    chunks: int = 0
    _tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """Complete tool calls in index order: {"id", "name", "arguments" (JSON text)}."""
        return [self._tool_calls[i] for i in sorted(self._tool_calls)]

    def add(self, chunk: Any) -> str | None:
        """Take one chunk; return the text it adds (None when it adds none). A chunk that is not the shape OpenAI
        sends is a MalformedResponse: the SDK builds chunks leniently, so `{"choices": 5}` or a number as the text
        arrive as such, and used to escape the gate as a TypeError or AttributeError."""
        try:
            return self._add(chunk)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise MalformedResponse(f"a streamed chunk of an unexpected shape: {exc}") from None

    def _add(self, chunk: Any) -> str | None:
        self.chunks += 1
        if chunk.usage is not None:
            _check_usage(chunk.usage)
            self.usage = chunk.usage
        self.model = _text_or_none(chunk.model) or self.model
        self.service_tier = _text_or_none(getattr(chunk, "service_tier", None)) or self.service_tier
        if not chunk.choices:
            return None
        choice = chunk.choices[0]
        if choice.finish_reason:
            self.finish_reason = _text_or_none(choice.finish_reason)
        delta = choice.delta
        if delta is None:
            return None
        if delta.tool_calls:
            self._add_tool_calls(delta.tool_calls)
            self._first_output()
        if delta.content:
            content = _text_or_none(delta.content)
            self._first_output()
            self.parts.append(content or "")
            return content
        return None

    def add_text(self, piece: str) -> None:
        """Text that did not come as a chunk (a reply served from the cache)."""
        self._first_output()
        self.parts.append(piece)

    def _first_output(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000

    def _add_tool_calls(self, deltas: Any) -> None:
        """Tool calls arrive in pieces (name first, arguments as JSON fragments), keyed by index."""
        for d in deltas:
            call = self._tool_calls.setdefault(int(d.index), {"id": None, "name": "", "arguments": ""})
            call["id"] = _text_or_none(d.id) or call["id"]
            if d.function is not None:
                call["name"] += _text_or_none(d.function.name) or ""
                call["arguments"] += _text_or_none(d.function.arguments) or ""


def _text_or_none(value: Any) -> str | None:
    """A text field of a chunk: a string or absent; anything else is not what the API sends."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected text, got {type(value).__name__}")


def _check_usage(usage: Any) -> None:
    """`usage` must carry whole token counts: it is priced and logged after the stream ends."""
    for name in ("prompt_tokens", "completion_tokens"):
        value = getattr(usage, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise TypeError(f"usage.{name} is {type(value).__name__}")

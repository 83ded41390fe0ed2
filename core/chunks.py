"""What a streamed chat completion said: a pure accumulator of SDK chunks (text, tool calls, usage, finish reason,
served model and time to first token). No HTTP, no logging: the gate (`core/calls.py`) feeds it and books the result.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


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
        """Take one chunk; return the text it adds (None when it adds none)."""
        self.chunks += 1
        if chunk.usage is not None:
            self.usage = chunk.usage
        self.model = chunk.model or self.model
        self.service_tier = getattr(chunk, "service_tier", None) or self.service_tier
        if not chunk.choices:
            return None
        choice = chunk.choices[0]
        if choice.finish_reason:
            self.finish_reason = choice.finish_reason
        delta = choice.delta
        if delta is None:
            return None
        if delta.tool_calls:
            self._add_tool_calls(delta.tool_calls)
            self._first_output()
        if delta.content:
            self._first_output()
            self.parts.append(delta.content)
            return delta.content
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
            call = self._tool_calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = d.id or call["id"]
            if d.function is not None:
                call["name"] += d.function.name or ""
                call["arguments"] += d.function.arguments or ""

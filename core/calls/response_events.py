"""What a streamed Responses API call said: a pure accumulator of the SDK's Responses events (answer text,
reasoning summary kept apart as `thinking`, function calls, built-in tool calls (web / file search) and the URL
citations of the answer, usage, finish reason, served model, the response's id (for `previous_response_id`), time
to first token), read by the gate exactly like `core.calls.chunks.ChunkAccumulator` reads chat chunks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core.base.errors import MalformedResponse

BUILT_IN_CALLS = ("web_search_call", "file_search_call")  # output items of OpenAI's hosted tools


@dataclass
class ResponseUsage:
    """The Responses API's usage in the chat names the gate prices (`prompt_tokens` = input tokens, …)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class ResponseEventAccumulator:
    """Feed it Responses stream events in order; it keeps what they add up to."""

    started: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    thinking_parts: list[str] = field(default_factory=list)  # reasoning-summary deltas, never mixed into the text
    usage: ResponseUsage | None = None
    model: str | None = None
    service_tier: str | None = None
    finish_reason: str | None = None
    ttft_ms: float | None = None
    chunks: int = 0
    response_id: str | None = None  # the server's id of this response (`resp_…`): the next turn may point at it
    # Built-in tool calls in output order: {"type": "web_search_call" | "file_search_call", "id", "status",
    # "query"} — what the server searched for (and so what it charges a tool-call fee for).
    builtin_calls: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, str]] = field(default_factory=list)  # url_citation annotations: {"url", "title"}
    _calls: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def thinking(self) -> str:
        """The reasoning summary so far."""
        return "".join(self.thinking_parts)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """Function calls in output order: {"id" (the call_id), "name", "arguments" (JSON text)}."""
        return list(self._calls.values())

    def add(self, event: Any) -> str | None:
        """Take one event; return the answer text it adds (None when it adds none). An event of another shape than
        OpenAI sends is a MalformedResponse."""
        try:
            return self._add(event)
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            raise MalformedResponse(f"a streamed event of an unexpected shape: {exc}") from None

    def _add(self, event: Any) -> str | None:
        self.chunks += 1
        kind = event.type
        if kind == "response.output_text.delta":
            self._first_output()
            self.parts.append(_text(event.delta))
            return event.delta
        if kind == "response.reasoning_summary_text.delta":
            self._first_output()
            self.thinking_parts.append(_text(event.delta))
        elif kind == "response.output_item.added" and event.item.type == "function_call":
            self._first_output()
            self._calls[event.item.id] = {"id": event.item.call_id, "name": _text(event.item.name), "arguments": ""}
        elif kind == "response.function_call_arguments.delta":
            self._calls[event.item_id]["arguments"] += _text(event.delta)
        elif kind == "response.output_item.done" and event.item.type in BUILT_IN_CALLS:
            self._builtin(event.item)
        elif kind == "response.output_text.annotation.added":
            self._cite(event.annotation)
        elif kind in ("response.created", "response.in_progress"):
            self.model = event.response.model or self.model
            self.response_id = getattr(event.response, "id", None) or self.response_id
        elif kind in ("response.completed", "response.incomplete"):
            self._end(event.response)
        elif kind in ("response.failed", "error"):
            raise MalformedResponse(f"the server reported a failed response: {getattr(event, 'message', kind)}")
        return None

    def _builtin(self, item: Any) -> None:
        """A finished web or file search call: what it looked for, and how it ended."""
        if item.type == "web_search_call":
            action = getattr(item, "action", None)
            query = getattr(action, "query", None) or " · ".join(getattr(action, "queries", None) or []) or \
                getattr(action, "url", None) or ""
        else:
            query = " · ".join(getattr(item, "queries", None) or [])
        self.builtin_calls.append({"type": item.type, "id": item.id, "status": item.status, "query": query})

    def _cite(self, annotation: Any) -> None:
        """A url_citation of the answer (dict or model: the SDK leaves the annotation untyped on this event)."""
        get = annotation.get if isinstance(annotation, dict) else lambda k: getattr(annotation, k, None)
        url = get("url")
        if get("type") == "url_citation" and isinstance(url, str) and not any(c["url"] == url for c in self.citations):
            self.citations.append({"url": url, "title": str(get("title") or url)})

    def add_text(self, piece: str) -> None:
        """Text that did not come as an event (a reply served from the cache)."""
        self._first_output()
        self.parts.append(piece)

    def _end(self, response: Any) -> None:
        self.model = response.model or self.model
        self.response_id = getattr(response, "id", None) or self.response_id
        self.service_tier = getattr(response, "service_tier", None) or self.service_tier
        if response.status == "incomplete":
            self.finish_reason = "length"
        else:
            self.finish_reason = "tool_calls" if self._calls else "stop"
        usage = response.usage
        if usage is not None:
            counts = (usage.input_tokens, usage.output_tokens)
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
                raise TypeError("usage token counts are not whole numbers")
            self.usage = ResponseUsage(usage.input_tokens, usage.output_tokens,
                                       getattr(usage.input_tokens_details, "cached_tokens", 0) or 0,
                                       getattr(usage.output_tokens_details, "reasoning_tokens", 0) or 0)

    def _first_output(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value

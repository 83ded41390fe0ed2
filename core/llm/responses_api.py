"""Which OpenAI API serves a call (Responses or Chat Completions), and a chat request restated for Responses.

`choose_api` is the one place the choice is made ("auto": Responses for OpenAI and Azure, Chat Completions for
compatible servers and the offline model, which have no /responses); `responses_request` maps messages, tools,
JSON-schema output and token limits to the Responses shapes (system → instructions, tool calls → function_call /
function_call_output items, `response_format` → `text.format`).
"""
from __future__ import annotations

import json
from typing import Any, Literal

Api = Literal["responses", "chat"]
API_CHOICES = ("auto", "responses", "chat")  # what a person may pick per call
RESPONSES_KINDS = ("openai", "azure")  # providers whose servers speak /responses
# Models OpenAI serves only through /responses (its model pages say "Chat Completions: not supported"; o1-pro and
# o3-pro answer /chat/completions with "only supported in v1/responses"). A dated snapshot counts as its family.
RESPONSES_ONLY = ("o1-pro", "o3-pro", "gpt-5-pro", "gpt-5-codex", "codex-mini", "computer-use-preview",
                  "o3-deep-research", "o4-mini-deep-research")


def is_responses_only(model: str) -> bool:
    """A model served only by the Responses API (see RESPONSES_ONLY)."""
    name = model.split("/")[-1].lower()
    return any(name == m or name.startswith(m + "-") for m in RESPONSES_ONLY)


def choose_api(provider_kind: str, choice: str = "auto", model: str = "") -> Api:
    """The API a call uses: a forced choice as given, "auto" by the provider's kind — except a Responses-only
    model, which asks /responses anywhere but on the offline model (a server without it then says so)."""
    if choice == "responses":
        return "responses"
    if choice == "chat":
        return "chat"
    if provider_kind != "local" and is_responses_only(model):
        return "responses"
    return "responses" if provider_kind in RESPONSES_KINDS else "chat"


def is_reasoning_model(model: str) -> bool:
    """Models that think before answering (o-series, gpt-5): they get `reasoning.summary = "auto"`."""
    name = model.split("/")[-1]
    return name.startswith(("o1", "o3", "o4", "gpt-5"))


def _content(content: Any, role: str) -> Any:
    """Chat content (a string or parts) as Responses content: text parts become input_text / output_text, an
    `image_url` part an `input_image`, a `file` part (a PDF as a data URI) an `input_file`."""
    if isinstance(content, str) or content is None:
        return content or ""
    kind = "output_text" if role == "assistant" else "input_text"
    parts = []
    for part in content:
        kind_of = part.get("type") if isinstance(part, dict) else None
        if kind_of == "text":
            parts.append({"type": kind, "text": part.get("text", "")})
        elif kind_of == "image_url":
            image = part.get("image_url") or {}
            parts.append({"type": "input_image", "image_url": image.get("url", ""),
                          "detail": image.get("detail", "auto")})
        elif kind_of == "file":
            given = part.get("file") or {}
            parts.append({"type": "input_file", **{k: given[k] for k in ("filename", "file_data", "file_id")
                                                   if k in given}})
        else:
            parts.append(part)
    return parts


def input_items(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """(instructions, input items): system and developer messages join as the instructions; an assistant's tool
    calls become function_call items and each `role: "tool"` answer a function_call_output item."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            content = message.get("content")
            instructions.append(content if isinstance(content, str) else
                                " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict)))
        elif role == "tool":
            output = message.get("content")
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id"),
                          "output": output if isinstance(output, str) else json.dumps(output)})
        else:
            if message.get("content"):
                items.append({"role": role, "content": _content(message["content"], str(role))})
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                items.append({"type": "function_call", "call_id": call.get("id"), "name": function.get("name"),
                              "arguments": function.get("arguments") or "{}"})
    return ("\n\n".join(instructions) or None), items


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions function tool ({"type": "function", "function": {…}}) in the flat Responses shape."""
    if tool.get("type") != "function" or "function" not in tool:
        return tool
    function = tool["function"]
    flat = {"type": "function", "name": function["name"], "parameters": function.get("parameters") or {}}
    if function.get("description"):
        flat["description"] = function["description"]
    if "strict" in function:
        flat["strict"] = function["strict"]
    return flat


def _text_format(response_format: dict[str, Any]) -> dict[str, Any]:
    """`response_format` as `text.format`: the json_schema's name / schema / strict move up one level."""
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {})
        return {"type": "json_schema", **schema}
    return {"type": response_format.get("type", "text")}


def _new_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items after the last assistant turn: what a request continuing a stored response adds to it."""
    last = max((i for i, item in enumerate(items) if item.get("role") == "assistant"
                or item.get("type") == "function_call"), default=-1)
    return items[last + 1:]


def responses_request(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `client.responses.create` that ask what the chat request asks.

    `store` is false unless asked for: OpenAI keeps a response (30 days) by default, and a workbench's prompts are
    not to be kept server-side unless the user chose server-side state. With `previous_response_id` (which needs
    the earlier response stored) only the new input goes: the server holds the rest of the conversation."""
    instructions, items = input_items(messages)
    if params.get("previous_response_id"):
        items = _new_items(items)
    request: dict[str, Any] = {"model": model, "input": items, "store": False}
    if instructions:
        request["instructions"] = instructions
    for key, value in params.items():
        if key in ("max_completion_tokens", "max_tokens"):
            request["max_output_tokens"] = value
        elif key == "tools":
            request["tools"] = [_tool(t) for t in value]
        elif key == "response_format":
            request.setdefault("text", {})["format"] = _text_format(value)
        elif key == "reasoning_effort":
            request.setdefault("reasoning", {})["effort"] = value
        elif key in ("stream_options", "n", "seed", "frequency_penalty", "presence_penalty", "stop", "logprobs"):
            continue  # Chat Completions only: Responses refuses them
        else:
            request[key] = value
    if is_reasoning_model(model):
        request.setdefault("reasoning", {}).setdefault("summary", "auto")
    return request

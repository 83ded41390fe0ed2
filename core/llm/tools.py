"""Function tools, shared by the Playground and Chat: the user's JSON definitions checked before sending, and the
turns that answer a model's tool calls (the assistant's `tool_calls`, then one `role: "tool"` message per call).

A model's tool-call arguments are untrusted text (a reply can be prompt-injected): nothing here runs or parses
them for anything but showing and sending them back.
"""
from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from core.base.i18n import _
from core.formats import json_guard


class ToolError(ValueError):
    """Bad tool input (definitions or results), with the sentence shown to the user."""


def validate_tools(text: str) -> list[dict[str, Any]]:
    """Function definitions from JSON (a list, or one object), each checked as a JSON Schema before sending."""
    if not text.strip():
        return []
    try:
        data = json_guard.loads(text, "The tools JSON")
    except json.JSONDecodeError as exc:
        raise ToolError(_('The tools are not valid JSON (line {lineno}: {msg}).').format(
            lineno=exc.lineno, msg=exc.msg)) from None
    except json_guard.JSONShapeError as exc:
        raise ToolError(str(exc)) from None
    items = data if isinstance(data, list) else [data]
    tools = []
    for i, item in enumerate(items, start=1):
        fn = item.get("function", item) if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ToolError(_('Tool {i} needs a function name.').format(i=i))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", fn["name"]):
            raise ToolError(_(
                "Tool {i}: a function name may only use letters, digits, _ and - (64 at most).").format(i=i))
        parameters = fn.get("parameters", {"type": "object", "properties": {}})
        try:
            json_guard.check_refs(parameters, f"Tool {fn['name']}'s parameters")
            jsonschema.Draft202012Validator.check_schema(parameters)
        except json_guard.JSONShapeError as exc:
            raise ToolError(str(exc)) from None
        except jsonschema.SchemaError as exc:
            raise ToolError(_('Tool {tool}: its parameters are not a valid JSON Schema ({message}).').format(
                tool=fn['name'], message=exc.message)) \
                from None
        tools.append({"type": "function", "function": {**fn, "parameters": parameters}})
    return tools


def api_tool_calls(tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls as an assistant message carries them back to the API (from the gate's {"id", "name",
    "arguments"}); a call without an id gets a stable one, so its answer can name it."""
    return [{"id": call.get("id") or f"call_{i}", "type": "function",
             "function": {"name": call.get("name") or "", "arguments": call.get("arguments") or "{}"}}
            for i, call in enumerate(tool_calls, start=1)]


def check_results(tool_calls: list[dict[str, Any]], results: list[str]) -> None:
    """Every call needs a result before the conversation can go on."""
    if not tool_calls:
        raise ToolError(_("The last run called no tool: there is nothing to answer."))
    if len(results) != len(tool_calls) or any(not r.strip() for r in results):
        raise ToolError(_("Give a result for every tool call before continuing."))


def answer_turns(text: str, tool_calls: list[dict[str, Any]], results: list[str]) -> list[dict[str, Any]]:
    """The assistant turn with its `tool_calls`, then one `role: "tool"` message per call (its result, matched by
    `tool_call_id`): what lets the model go on."""
    check_results(tool_calls, results)
    calls = api_tool_calls(tool_calls)
    answers = [{"role": "tool", "tool_call_id": call["id"], "content": result}
               for call, result in zip(calls, results, strict=True)]
    return [{"role": "assistant", "content": text or None, "tool_calls": calls}, *answers]

"""Tools in the Playground: function definitions checked before sending, a model's tool call checked
against its declared schema, and the draft that answers the calls and lets the model go on.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import jsonschema

from core import json_guard
from core.i18n import _
from core.playground_draft import Draft, PlaygroundError, check_json_output, messages_for


def validate_tools(text: str) -> list[dict[str, Any]]:
    """Function definitions from JSON (a list, or one object), each checked as a JSON Schema before sending."""
    if not text.strip():
        return []
    try:
        data = json_guard.loads(text, "The tools JSON")
    except json.JSONDecodeError as exc:
        raise PlaygroundError(_('The tools are not valid JSON (line {lineno}: {msg}).').format(
            lineno=exc.lineno, msg=exc.msg)) from None
    except json_guard.JSONShapeError as exc:
        raise PlaygroundError(str(exc)) from None
    items = data if isinstance(data, list) else [data]
    tools = []
    for i, item in enumerate(items, start=1):
        fn = item.get("function", item) if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise PlaygroundError(_('Tool {i} needs a function name.').format(i=i))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", fn["name"]):
            raise PlaygroundError(_(
                "Tool {i}: a function name may only use letters, digits, _ and - (64 at most).").format(i=i))
        parameters = fn.get("parameters", {"type": "object", "properties": {}})
        try:
            json_guard.check_refs(parameters, f"Tool {fn['name']}'s parameters")
            jsonschema.Draft202012Validator.check_schema(parameters)
        except json_guard.JSONShapeError as exc:
            raise PlaygroundError(str(exc)) from None
        except jsonschema.SchemaError as exc:
            raise PlaygroundError(_('Tool {tool}: its parameters are not a valid JSON Schema ({message}).').format(
                tool=fn['name'], message=exc.message)) \
                from None
        tools.append({"type": "function", "function": {**fn, "parameters": parameters}})
    return tools


def check_tool_call(call: dict[str, Any], tools: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The call's arguments parsed, and the first problem against its declared schema (None when valid)."""
    declared = {t["function"]["name"]: t["function"].get("parameters") for t in tools}
    if call["name"] not in declared:
        return None, f"the model called {call['name']!r}, which is not declared"
    try:
        args = json.loads(call["arguments"] or "{}")
    except json.JSONDecodeError as exc:
        return None, f"arguments are not JSON: {exc.msg}"
    valid, error = check_json_output(json.dumps(args), declared[call["name"]])
    return args, None if valid else error


def continue_with_tool_results(draft: Draft, text: str, tool_calls: list[dict[str, Any]],
                               results: list[str]) -> Draft:
    """The draft that sends the conversation on after the model called tools: the message just sent, the
    assistant turn with its `tool_calls`, then one `role: "tool"` message per call (its result, matched by
    `tool_call_id`) join the history, and the user box empties, so the next run lets the model go on."""
    if not tool_calls:
        raise PlaygroundError(_("The last run called no tool: there is nothing to answer."))
    if len(results) != len(tool_calls) or any(not r.strip() for r in results):
        raise PlaygroundError(_("Give a result for every tool call before continuing."))
    sent = messages_for(draft)
    if sent and sent[0]["role"] == "system" and draft.system.strip():
        sent = sent[1:]  # the system prompt stays in its own box
    calls = [{"id": call.get("id") or f"call_{i}", "type": "function",
              "function": {"name": call["name"], "arguments": call.get("arguments") or "{}"}}
             for i, call in enumerate(tool_calls, start=1)]
    answers = [{"role": "tool", "tool_call_id": call["id"], "content": result}
               for call, result in zip(calls, results, strict=True)]
    assistant = {"role": "assistant", "content": text or None, "tool_calls": calls}
    return replace(draft, user_template="", history=[*sent, assistant, *answers])

"""Tools in the Playground: function definitions checked before sending, a model's tool call checked
against its declared schema, and the draft that answers the calls and lets the model go on.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from core.llm import tools
from core.playground.draft import Draft, PlaygroundError, check_json_output, messages_for


def validate_tools(text: str) -> list[dict[str, Any]]:
    """Function definitions from JSON, checked before sending (core.llm.tools), as a Playground error."""
    try:
        return tools.validate_tools(text)
    except tools.ToolError as exc:
        raise PlaygroundError(str(exc)) from None


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
    try:
        answered = tools.answer_turns(text, tool_calls, results)
    except tools.ToolError as exc:
        raise PlaygroundError(str(exc)) from None
    sent = messages_for(draft)
    if sent and sent[0]["role"] == "system" and draft.system.strip():
        sent = sent[1:]  # the system prompt stays in its own box
    return replace(draft, user_template="", history=[*sent, *answered])

"""Which API serves a call, and a chat request restated in the Responses API's shapes."""
from __future__ import annotations

import pytest

from core.llm.responses_api import choose_api, responses_request


@pytest.mark.parametrize("kind, choice, api", [
    ("openai", "auto", "responses"), ("azure", "auto", "responses"),
    ("compatible", "auto", "chat"), ("local", "auto", "chat"),
    ("compatible", "responses", "responses"), ("openai", "chat", "chat"),
])
def test_choose_api(kind, choice, api):
    assert choose_api(kind, choice) == api


def test_messages_tools_and_schema_map_to_responses_shapes():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": '{"c": 1}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    schema = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
    tool = {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
    request = responses_request("gpt-4o", messages, {"tools": [tool], "response_format": schema,
                                                     "max_completion_tokens": 50, "seed": 3, "temperature": 0.2})
    assert request["instructions"] == "Be brief."
    assert request["input"] == [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": '{"c": 1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]
    assert request["tools"] == [{"type": "function", "name": "w", "parameters": {"type": "object"}}]
    assert request["text"] == {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"},
                                          "strict": True}}
    assert request["max_output_tokens"] == 50 and request["temperature"] == 0.2 and "seed" not in request
    assert "reasoning" not in request
    assert responses_request("o4-mini", messages, {})["reasoning"] == {"summary": "auto"}

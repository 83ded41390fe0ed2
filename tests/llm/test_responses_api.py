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


@pytest.mark.parametrize("kind, model, api", [
    ("compatible", "o1-pro", "responses"), ("compatible", "o3-pro-2025-06-10", "responses"),
    ("compatible", "gpt-5-pro", "responses"), ("compatible", "codex-mini-latest", "responses"),
    ("compatible", "computer-use-preview", "responses"), ("local", "o1-pro", "chat"),
    ("compatible", "o1", "chat"), ("compatible", "gpt-5", "chat"), ("compatible", "o1-preview", "chat")])
def test_auto_asks_responses_for_a_model_served_only_there(kind, model, api):
    assert choose_api(kind, "auto", model) == api
    assert choose_api(kind, "chat", model) == "chat"  # forced stays forced


def test_nothing_is_stored_server_side_unless_asked_and_a_continuation_sends_only_the_new_input():
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"},
               {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}]
    assert responses_request("gpt-4o", history, {})["store"] is False
    going_on = responses_request("gpt-4o", history, {"previous_response_id": "resp_1", "store": True})
    assert going_on["input"] == [{"role": "user", "content": "three"}] and going_on["store"] is True
    assert going_on["instructions"] == "Be brief." and going_on["previous_response_id"] == "resp_1"

"""The loopback server's /v1/responses speaks the wire format the openai SDK reads: every streamed event and the
non-streamed body are parsed with the SDK's own types (strict pydantic validation, not its lenient builder)."""
from __future__ import annotations

import json
import typing
import urllib.request
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response, ResponseStreamEvent

from tests.conftest import TEST_KEY
from tests.loopback_server import LoopbackServer, Script

# Each event type's own SDK class, looked up by its `type` literal (clearer failures than the whole union).
EVENTS = {cls.model_fields["type"].annotation.__args__[0]: cls
          for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])}


def _client(server: LoopbackServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0, timeout=5)


def _wire_events(server: LoopbackServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE frames exactly as sent, each validated as the SDK's event type (strict: a missing or mistyped field
    fails), its `event:` line equal to its type."""
    request = urllib.request.Request(server.base_url + "/responses", data=json.dumps({**body, "stream": True}).encode(),
                                     headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        raw = answer.read().decode()
    frames = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        payload = json.loads(lines["data"])
        assert lines["event"] == payload["type"]
        EVENTS[payload["type"]].model_validate(payload)
        frames.append(payload)
    return frames


def test_wire_events_validate_with_sdk_types(server: LoopbackServer) -> None:
    server.push(Script(path="/v1/responses", reply="Hi there", reasoning_summary="Think.", reasoning_tokens=3))
    server.push(Script(path="/v1/responses", tool_call={"name": "f", "arguments": '{"a": 1}'}))
    text = _wire_events(server, {"model": "o4-mini", "input": "hi", "reasoning": {"summary": "auto"}})
    call = _wire_events(server, {"model": "gpt-4o-mini", "input": "hi"})
    assert {e["type"] for e in text} >= {
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.reasoning_summary_text.delta",
        "response.output_item.done", "response.completed"}
    assert "response.function_call_arguments.delta" in {e["type"] for e in call}
    Response.model_validate(text[-1]["response"], strict=False)


def test_streamed_text_and_reasoning_summary_validate_as_sdk_events(server: LoopbackServer) -> None:
    server.push(Script(path="/v1/responses", reply="Paris is the capital.", reasoning_summary="Recall the capital.",
                       cached_tokens=4, reasoning_tokens=7))
    with _client(server).responses.stream(model="o4-mini", input="Capital of France?",
                                          reasoning={"summary": "auto"}) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert summary == "Recall the capital."
    assert text == "Paris is the capital."
    assert final.output_text == "Paris is the capital."
    assert final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == 4
    assert final.usage.output_tokens_details.reasoning_tokens == 7
    assert final.usage.output_tokens == 4 + 7


def test_streamed_function_call_arguments_accumulate(server: LoopbackServer) -> None:
    server.push(Script(path="/v1/responses", tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'}))
    with _client(server).responses.stream(model="gpt-4o-mini", input="Weather?") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) > 1 and "".join(deltas) == '{"city": "Paris"}'
    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id == "call_loopback"


def test_non_streamed_response_validates(server: LoopbackServer) -> None:
    server.push(Script(path="/v1/responses", reply="Hello there", cached_tokens=2))
    response = _client(server).responses.create(model="gpt-4o-mini", instructions="Be brief.",
                                                input=[{"role": "user", "content": "Hi"}])
    assert response.output_text == "Hello there"
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 2
    assert server.requests[-1]["body"]["instructions"] == "Be brief."


@pytest.mark.parametrize("mode", ["eof", "drop"])
def test_cut_stream_stops_before_completed(server: LoopbackServer, mode: str) -> None:
    server.push(Script(path="/v1/responses", chunks=10, cut_after=3, cut_mode=mode))
    seen: list[str] = []
    # A clean end without response.completed: the SDK's RuntimeError; a dropped socket: APIConnectionError.
    with pytest.raises(RuntimeError if mode == "eof" else openai.APIConnectionError):
        with _client(server).responses.stream(model="gpt-4o-mini", input="x") as stream:
            for event in stream:
                seen.append(event.type)
            stream.get_final_response()
    assert seen.count("response.output_text.delta") == 3
    assert "response.completed" not in seen


def test_a_web_search_and_a_file_search_stream_as_openai_streams_them(server: LoopbackServer) -> None:
    frames = _wire_events(server, {"model": "gpt-4o", "input": "latest PromptLab release",
                                   "tools": [{"type": "web_search"},
                                             {"type": "file_search", "vector_store_ids": ["vs_1"]}]})
    kinds = [f["type"] for f in frames]
    web = [k for k in kinds if k.startswith("response.web_search_call.")]
    assert web == ["response.web_search_call.in_progress", "response.web_search_call.searching",
                   "response.web_search_call.completed"]
    assert [k for k in kinds if k.startswith("response.file_search_call.")] == [
        "response.file_search_call.in_progress", "response.file_search_call.searching",
        "response.file_search_call.completed"]
    assert kinds.index("response.web_search_call.completed") < kinds.index("response.output_text.delta")
    final = Response.model_validate(frames[-1]["response"], strict=False)
    search, files, message = final.output
    assert (search.type, search.status, search.action.query) == ("web_search_call", "completed",
                                                                  "latest PromptLab release")
    assert (files.type, files.queries) == ("file_search_call", ["latest PromptLab release"])
    citation = message.content[0].annotations[0]
    assert citation.type == "url_citation" and citation.url.startswith("https://")
    assert "response.output_text.annotation.added" in kinds


def test_previous_response_id_continues_a_stored_response_and_an_unknown_one_is_refused(server) -> None:
    client = _client(server)
    first = client.responses.create(model="gpt-4o-mini", input="My name is Ada.")
    second = client.responses.create(model="gpt-4o-mini", input="What is my name?", previous_response_id=first.id)
    assert first.id != second.id and second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens  # the stored turns are billed as input
    unstored = client.responses.create(model="gpt-4o-mini", input="x", store=False)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt-4o-mini", input="y", previous_response_id=unstored.id)
    assert refused.value.code == "previous_response_not_found"
    assert refused.value.body["param"] == "previous_response_id"

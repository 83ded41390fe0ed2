"""The chunk accumulator on its own: SDK chunk objects in, the reply out — no HTTP."""
from __future__ import annotations

from openai.types.chat import ChatCompletionChunk

from core.calls.chunks import ChunkAccumulator


def chunk(content=None, finish=None, tool=None, usage=None, model="m-1", choices=True) -> ChatCompletionChunk:
    delta = {"content": content}
    if tool is not None:
        delta["tool_calls"] = [tool]
    body = {"id": "c", "created": 0, "model": model, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []}
    if usage is not None:
        body["usage"] = usage
    return ChatCompletionChunk.model_validate(body)


def test_text_usage_finish_reason_model_and_first_token_time():
    acc = ChunkAccumulator()
    assert acc.add(chunk(None)) is None and acc.ttft_ms is None  # a role-only chunk is not output
    assert acc.add(chunk("Hel")) == "Hel" and acc.ttft_ms is not None
    first = acc.ttft_ms
    assert acc.add(chunk("lo", model="m-1-2026")) == "lo"
    acc.add(chunk(finish="stop", model=""))  # a chunk without a model keeps the one seen
    acc.add(chunk(choices=False, model="m-1-2026",
                  usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
    assert acc.text == "Hello" and acc.finish_reason == "stop" and acc.model == "m-1-2026"
    assert acc.usage.prompt_tokens == 5 and acc.chunks == 5 and acc.ttft_ms == first


def test_tool_calls_assemble_from_fragments_in_index_order():
    acc = ChunkAccumulator()
    acc.add(chunk(tool={"index": 1, "id": "b", "function": {"name": "second", "arguments": ""}}))
    acc.add(chunk(tool={"index": 0, "id": "a", "function": {"name": "get_", "arguments": '{"ci'}}))
    acc.add(chunk(tool={"index": 0, "function": {"name": "weather", "arguments": 'ty": "Oslo"}'}}))
    acc.add(chunk(finish="tool_calls"))
    assert acc.tool_calls == [{"id": "a", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
                              {"id": "b", "name": "second", "arguments": ""}]
    assert acc.text == "" and acc.ttft_ms is not None and acc.finish_reason == "tool_calls"


def test_a_stream_that_ends_without_finish_reason_is_visible_as_such():
    acc = ChunkAccumulator()
    acc.add(chunk("partial"))
    assert acc.finish_reason is None and acc.usage is None  # the gate calls this a cut stream

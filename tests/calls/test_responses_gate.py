"""The Responses API through the gate (loopback /v1/responses, real openai SDK): one CallRecord each, priced like
chat (cached and reasoning tokens), the reasoning summary apart from the text, and every fault face chat has."""
from __future__ import annotations

import pytest

from core.calls.fallback import FallbackStream
from core.calls.gate import ChatRequest, ChatStream
from core.llm.pricing import TokenUsage, cost_usd
from core.llm.providers import Provider
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my parcel?"}]
PATH = "/v1/responses"


def run(provider, ctx, log, messages=USER, model="gpt-4o-mini", **params):
    stream = ChatStream(provider, ChatRequest(model, messages, params, api="responses"), ctx, log)
    deltas = list(stream)
    return stream, deltas


def only_record(log):
    assert log.count() == 1
    return log.recent(1)[0]


def responses_requests(server):
    return [r["body"] for r in server.requests if r["path"] == PATH]


def test_streams_text_through_responses_and_logs_one_record(provider, ctx, log, server):
    stream, deltas = run(provider, ctx, log)
    assert len(deltas) > 1 and "".join(deltas) == "Echo: Where is my parcel?"
    body = responses_requests(server)[0]
    assert body["instructions"] == "Be brief." and body["input"] == [{"role": "user",
                                                                        "content": "Where is my parcel?"}]
    assert body["stream"] is True and server.chat_requests() == []
    out = stream.outcome
    assert out.status == "ok" and out.finish_reason == "stop" and not out.usage.estimated
    rec = only_record(log)
    assert rec.status == "ok" and rec.model == "gpt-4o-mini" and "endpoint:responses" in rec.tags
    assert rec.output_tokens == len(deltas) and rec.ttft_ms is not None


def test_usage_with_cached_and_reasoning_tokens_is_priced_like_chat(server, ctx, log):
    openai_like = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    server.push(Script(path=PATH, reply="Done now", cached_tokens=4, reasoning_tokens=9))
    stream, _ = run(openai_like, ctx, log, model="o4-mini")
    rec = only_record(log)
    assert (rec.cached_input_tokens, rec.reasoning_tokens, rec.output_tokens) == (4, 9, 2 + 9)
    expected = cost_usd(TokenUsage(rec.input_tokens, rec.output_tokens, 4, 9), "o4-mini", openai_like.pricing_id)
    assert expected and rec.cost_usd == pytest.approx(expected)
    assert responses_requests(server)[0]["reasoning"] == {"summary": "auto"}  # a reasoning model is asked for it


def test_reasoning_summary_comes_apart_from_the_answer(provider, ctx, log, server):
    server.push(Script(path=PATH, reply="The answer.", reasoning_summary="Weighing the options."))
    stream, deltas = run(provider, ctx, log, model="o4-mini")
    assert "".join(deltas) == "The answer." and stream.text == "The answer."
    assert stream.thinking == "Weighing the options."


def test_function_call_is_assembled_and_tools_go_in_the_responses_shape(provider, ctx, log, server):
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                             "parameters": {"type": "object", "properties": {}}}}
    server.push(Script(path=PATH, tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'}))
    stream, deltas = run(provider, ctx, log, tools=[tool])
    assert deltas == [] and stream.outcome.finish_reason == "tool_calls"
    assert stream.outcome.tool_calls == [{"id": "call_loopback", "name": "get_weather",
                                          "arguments": '{"city": "Paris"}'}]
    assert responses_requests(server)[0]["tools"] == [{"type": "function", "name": "get_weather",
                                                       "description": "Weather",
                                                       "parameters": {"type": "object", "properties": {}}}]
    assert only_record(log).status == "ok"


def test_stop_mid_stream_is_cancelled_and_keeps_the_partial_text(provider, ctx, log, server):
    server.push(Script(path=PATH, chunks=50, chunk_delay=0.01))
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", USER, {}, api="responses"), ctx, log)
    taken = [next(stream), next(stream)]
    stream.close()
    assert stream.outcome.status == "cancelled" and stream.outcome.text == "".join(taken)
    assert only_record(log).status == "cancelled"


@pytest.mark.parametrize("script, kind", [
    (Script(path=PATH, status=500), "server_error"),
    (Script(path=PATH, status=429, retry_after="7"), "rate_limited"),
])
def test_http_failures_map_to_one_sentence(provider, ctx, log, server, script, kind):
    server.push(script)
    stream, deltas = run(provider, ctx, log)
    err = stream.outcome.error
    assert deltas == [] and err.kind == kind and err.message.endswith(".") and "Traceback" not in err.message
    rec = only_record(log)
    assert rec.status == "error" and rec.error_type == kind and rec.input_tokens == 0


def test_429_retry_after_is_honoured_by_the_retries(server, ctx, log):
    server.push(Script(path=PATH, status=429, retry_after="1"))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=2)
    stream, deltas = run(provider, ctx, log)
    assert stream.outcome.status == "ok" and deltas
    first, second = [r for r in server.requests if r["path"] == PATH]
    assert second["t"] - first["t"] >= 0.9
    assert only_record(log).status == "ok"


def test_bad_key_is_rejected_and_never_leaks(server, ctx, log):
    bad_key = "sk-WRONG-but-very-recognisable-0123456789"
    provider = Provider("compatible", server.base_url, bad_key, timeout_s=5, max_retries=0)
    stream, _ = run(provider, ctx, log)
    err = stream.outcome.error
    assert err.kind == "bad_key" and bad_key not in err.message and bad_key not in err.detail
    assert only_record(log).error_type == "bad_key"


def test_timeout(server, ctx, log):
    server.push(Script(path=PATH, first_byte_delay=1.5))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=0.3, max_retries=0)
    stream, _ = run(provider, ctx, log)
    assert stream.outcome.error.kind == "timeout" and only_record(log).error_type == "timeout"


@pytest.mark.parametrize("mode", ["eof", "drop"])
def test_cut_stream_is_an_error_with_partial_text(provider, ctx, log, server, mode):
    server.push(Script(path=PATH, chunks=8, cut_after=3, cut_mode=mode))
    stream, deltas = run(provider, ctx, log)
    out = stream.outcome
    assert out.status == "error" and out.error.kind == "stream_cut" and out.text == "w0 w1 w2 "
    assert only_record(log).error_type == "stream_cut"


def test_malformed_event_inside_a_stream(provider, ctx, log, server):
    server.push(Script(path=PATH, malformed=True))
    stream, _ = run(provider, ctx, log)
    assert stream.outcome.error.kind == "malformed" and only_record(log).error_type == "malformed"


def test_fallback_after_a_responses_failure_answers_from_the_next_model(server, ctx, log):
    provider = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    server.push(Script(path=PATH, status=500))
    fallback = FallbackStream(["gpt-4o", "gpt-4o-mini"], USER, lambda m: provider, lambda p, m: {}, ctx, log,
                              api="auto")
    text = "".join(fallback)
    assert text == "Echo: Where is my parcel?" and fallback.outcome.status == "ok"
    assert [r["body"]["model"] for r in server.requests if r["path"] == PATH] == ["gpt-4o", "gpt-4o-mini"]
    assert log.count() == 2 and fallback.notice


def test_auto_on_a_compatible_server_falls_back_over_chat_completions(provider, ctx, log, server):
    fallback = FallbackStream(["gpt-4o-mini"], USER, lambda m: provider, lambda p, m: {}, ctx, log, api="auto")
    assert "".join(fallback) == "Echo: Where is my parcel?"
    assert len(server.chat_requests()) == 1 and responses_requests(server) == []


def test_a_server_without_responses_says_so_in_one_sentence(provider, ctx, log, server):
    server.push(Script(path=PATH, status=404, error_message="Not Found"))
    stream, deltas = run(provider, ctx, log)
    err = stream.outcome.error
    assert deltas == [] and err.kind == "no_responses" and "Chat Completions" in err.message
    assert only_record(log).error_type == "no_responses"
    stream, _ = run(provider, ctx, log, model="gpt-9-imaginary")  # a missing model is still that
    assert stream.outcome.error.kind == "unknown_model"


def test_web_and_file_search_calls_are_kept_and_their_fees_are_in_the_call_row(server, ctx, log):
    from core.llm.pricing import tool_call_fees
    openai_like = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    tools = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]
    stream, _ = run(openai_like, ctx, log, model="gpt-4o", tools=tools)
    out = stream.outcome
    assert [(c["type"], c["status"], c["query"]) for c in out.builtin_calls] == [
        ("web_search_call", "completed", "Where is my parcel?"), ("file_search_call", "completed",
                                                                  "Where is my parcel?")]
    assert out.citations == [{"url": "https://example.com/loopback-source", "title": "Loopback source"}]
    rec = only_record(log)
    tokens = cost_usd(TokenUsage(rec.input_tokens, rec.output_tokens), "gpt-4o", openai_like.pricing_id)
    assert out.tool_fees.cost_usd == pytest.approx(0.01 + 0.0025)  # genai-prices: $10 and $2.50 per 1k calls
    assert rec.cost_usd == pytest.approx(tokens + 0.0125) and out.cost_usd == pytest.approx(rec.cost_usd)
    # a preview search on a non-reasoning model: not in genai-prices, priced from our table and marked estimated
    assert tool_call_fees({"web_search_preview": 1}, "gpt-4o", "openai").estimated
    assert tool_call_fees({"web_search": 1}, "gpt-4o", "compatible").cost_usd is None  # never a silent $0


def test_no_tools_no_searches_no_fees(provider, ctx, log, server):
    stream, _ = run(provider, ctx, log)
    assert stream.outcome.builtin_calls == [] and stream.outcome.tool_fees.cost_usd == 0.0

"""The call gate against the loopback server through the real openai SDK: every outcome leaves one record."""
import socket
import time

import pytest

from core.base.errors import PromptLabError
from core.calls.gate import CallContext, CallHooks, ChatRequest, ChatStream, list_models
from core.llm.providers import Provider
from core.llm.tokens import count_text
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

USER = [{"role": "user", "content": "Where is my parcel?"}]


def run(provider, ctx, log, messages=USER, model="gpt-4o-mini", **params):
    stream = ChatStream(provider, ChatRequest(model, messages, params), ctx, log)
    deltas = list(stream)
    return stream, deltas


def only_record(log):
    assert log.count() == 1
    return log.recent(1)[0]


def test_streams_deltas_and_logs_reported_usage(provider, ctx, log, server):
    stream, deltas = run(provider, ctx, log)
    assert len(deltas) > 1 and "".join(deltas) == "Echo: Where is my parcel?"
    out = stream.outcome
    assert out.status == "ok" and out.finish_reason == "stop" and out.error is None
    assert out.usage.input_tokens == 3 + 4 + 4 and not out.usage.estimated  # the server's own count
    rec = only_record(log)
    assert rec.status == "ok" and rec.page == "chat" and rec.provider == "compatible"
    assert rec.model_requested == "gpt-4o-mini" and rec.model == "gpt-4o-mini"
    assert rec.input_tokens == out.usage.input_tokens and rec.output_tokens == len(deltas)
    assert rec.ttft_ms is not None and rec.latency_ms >= rec.ttft_ms
    assert rec.user == "tester" and rec.session == "s1" and rec.tags == ["test"]
    assert rec.cost_usd is None  # a compatible server has no price list: unpriced, not $0
    texts = log.texts(rec.request_id)
    assert texts.reply == "Echo: Where is my parcel?" and texts.request["messages"] == USER
    assert server.chat_requests()[0]["stream_options"] == {"include_usage": True}


def test_openai_models_behind_a_proxy_are_priced_when_openai_answered_else_hinted(server, ctx, log, monkeypatch):
    """Issue 28 row 8: a custom OPENAI_BASE_URL (a proxy) made every OpenAI model "unpriced". A reply that reports
    an OpenAI dated snapshot was answered by OpenAI, so it costs OpenAI's list price; a bare alias could be a local
    model under an OpenAI name, so it stays unpriced and Settings says, in one sentence, how to price it."""
    from core.base.config import load_settings
    from core.llm import custom_prices
    from core.llm.pricing import TokenUsage, cost_usd, proxy_hint
    from core.llm.providers import resolve_provider

    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # a proxy: not api.openai.com
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("PROMPTLAB_PROVIDER", "auto")
    proxy = resolve_provider(load_settings())
    assert proxy.kind == "compatible"
    server.push(Script(reply_model="gpt-4o-mini-2024-07-18"))
    stream, _ = run(proxy, ctx, log)
    expected = cost_usd(TokenUsage(stream.outcome.usage.input_tokens, stream.outcome.usage.output_tokens),
                        "gpt-4o-mini", "openai")
    assert stream.outcome.cost_usd == pytest.approx(expected) and expected > 0
    run(proxy, ctx, log)  # the server reports the alias it was asked for
    unpriced = custom_prices.unpriced_models(log.engine)
    assert unpriced == [("compatible", "gpt-4o-mini", 1)]
    assert "PROMPTLAB_PROVIDER=openai" in (proxy_hint(unpriced) or "")
    assert proxy_hint([("compatible", "llama3.2", 4), ("compatible", "gpt-oss-20b", 1)]) is None
    assert cost_usd(TokenUsage(100, 10), "gpt-oss-20b-2025-08-05", "compatible") is None  # open weights


def test_openai_provider_prices_the_call(server, ctx, log):
    provider = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    stream, _ = run(provider, ctx, log, max_completion_tokens=50)
    assert stream.outcome.cost_usd and stream.outcome.cost_usd > 0
    assert only_record(log).cost_usd == pytest.approx(stream.outcome.cost_usd)
    assert server.chat_requests()[0]["max_completion_tokens"] == 50


def test_cached_tokens_are_recorded(provider, ctx, log, server):
    server.push(Script(cached_tokens=5))
    run(provider, ctx, log)
    assert only_record(log).cached_input_tokens == 5


def test_missing_usage_is_counted_locally_and_marked_estimated(provider, ctx, log, server):
    server.push(Script(usage=False))
    stream, deltas = run(provider, ctx, log)
    assert stream.outcome.status == "ok" and stream.outcome.usage.estimated
    rec = only_record(log)
    assert rec.tokens_estimated and rec.input_tokens > 0 and rec.output_tokens > 0


def test_close_mid_stream_cancels_upstream_and_keeps_partial(provider, ctx, log, server):
    server.push(Script(chunks=400, chunk_delay=0.01))
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", USER), ctx, log)
    got = [next(stream) for _ in range(3)]
    stream.close()
    out = stream.outcome
    assert out.status == "cancelled" and out.text == "".join(got) == "w0 w1 w2 "
    rec = only_record(log)
    assert rec.status == "cancelled" and rec.tokens_estimated
    assert rec.output_tokens == count_text("w0 w1 w2 ", "gpt-4o-mini")
    assert rec.input_tokens > 0  # the prompt was sent, so it is billed and logged
    deadline = time.monotonic() + 5
    while server.requests[-1]["stream_state"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.requests[-1]["stream_state"] == "aborted_by_client"  # upstream really stopped
    assert server.requests[-1]["chunks_sent"] < 400


def test_stream_cut_before_done_is_an_error_with_partial_text(provider, ctx, log, server):
    server.push(Script(chunks=10, cut_after=4))
    stream, deltas = run(provider, ctx, log)
    assert len(deltas) == 4
    out = stream.outcome
    assert out.status == "error" and out.error.kind == "stream_cut" and out.text == "w0 w1 w2 w3 "
    assert "cut off" in out.error.message
    assert only_record(log).error_type == "stream_cut"


def test_connection_dropped_mid_stream_is_a_cut(provider, ctx, log, server):
    server.push(Script(chunks=10, cut_after=2, cut_mode="drop"))
    stream, deltas = run(provider, ctx, log)
    assert stream.outcome.error.kind == "stream_cut" and stream.outcome.text == "w0 w1 "


@pytest.mark.parametrize("script, kind", [
    (Script(status=500), "server_error"),
    (Script(status=503), "server_error"),
    (Script(status=429), "rate_limited"),
    (Script(status=429, error_message="You exceeded your current quota", error_code="insufficient_quota"), "quota"),
    (Script(status=403), "no_access"),
    (Script(status=400, error_message="This model's maximum context length is 128000 tokens.",
            error_code="context_length_exceeded"), "context_too_long"),
    (Script(status=400, error_message="Invalid value for temperature"), "bad_request"),
])
def test_http_failures_map_to_one_sentence(provider, ctx, log, server, script, kind):
    server.push(script)
    stream, deltas = run(provider, ctx, log)
    err = stream.outcome.error
    assert deltas == [] and err.kind == kind
    assert err.message.endswith(".") and "\n" not in err.message and "Traceback" not in err.message
    rec = only_record(log)
    assert rec.status == "error" and rec.error_type == kind and rec.input_tokens == 0 and rec.cost_usd is None


def test_malformed_json_inside_a_stream(provider, ctx, log, server):
    server.push(Script(malformed=True))  # a streaming request gets `data: {not json` events
    stream, _ = run(provider, ctx, log)
    assert stream.outcome.error.kind == "malformed" and only_record(log).error_type == "malformed"
    assert only_record(log).tokens_estimated  # the request was accepted (200), so its prompt counts


def test_unknown_model_is_404(provider, ctx, log):
    stream, _ = run(provider, ctx, log, model="gpt-9-imaginary")
    assert stream.outcome.error.kind == "unknown_model" and "gpt-9-imaginary" in stream.outcome.error.message


def test_bad_key_is_rejected_and_never_leaks(server, ctx, log, db_url):
    bad_key = "sk-WRONG-but-very-recognisable-0123456789"
    provider = Provider("compatible", server.base_url, bad_key, timeout_s=5, max_retries=0)
    stream, _ = run(provider, ctx, log)
    err = stream.outcome.error
    assert err.kind == "bad_key" and bad_key not in err.message and bad_key not in err.detail
    assert "401" in err.message
    import sqlalchemy as sa
    with log.engine.connect() as conn:
        dump = " ".join(str(row) for table in ("calls", "call_texts")
                        for row in conn.execute(sa.text(f"SELECT * FROM {table}")))
    assert dump and bad_key not in dump and "recognisable" not in dump
    if db_url.startswith("sqlite"):
        raw = open(db_url.removeprefix("sqlite:///"), "rb").read()
        assert bad_key.encode() not in raw and b"recognisable" not in raw


def test_timeout(server, ctx, log):
    server.push(Script(first_byte_delay=1.5))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=0.3, max_retries=0)
    stream, _ = run(provider, ctx, log)
    assert stream.outcome.error.kind == "timeout" and "0.3 s" in stream.outcome.error.message
    assert only_record(log).error_type == "timeout"


def test_slow_chunks_beyond_timeout_keep_partial_text(server, ctx, log):
    server.push(Script(chunks=5, chunk_delay=0.0))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    stream, deltas = run(provider, ctx, log)
    assert stream.outcome.status == "ok" and len(deltas) == 5


def test_connection_refused(ctx, log):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = Provider("compatible", f"http://127.0.0.1:{port}/v1", TEST_KEY, timeout_s=2, max_retries=0)
    stream, _ = run(provider, ctx, log)
    assert stream.outcome.error.kind == "connection" and f"127.0.0.1:{port}" in stream.outcome.error.message


def test_sdk_retries_honour_retry_after(server, ctx, log):
    server.push(Script(status=429, retry_after="1"))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=2)
    stream, deltas = run(provider, ctx, log)
    assert stream.outcome.status == "ok" and deltas
    first, second = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert second["t"] - first["t"] >= 0.9  # the SDK waited as the server asked
    assert only_record(log).status == "ok"  # one logical call, one row


def test_server_errors_are_retried_then_reported(server, ctx, log):
    server.push(Script(status=502), Script(status=502), Script(status=502))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=2)
    stream, _ = run(provider, ctx, log)
    assert len(server.chat_requests()) == 3 and stream.outcome.error.kind == "server_error"
    assert "2 retries" in stream.outcome.error.message


def test_no_key_for_openai_is_a_clear_error(ctx, log):
    stream, _ = run(Provider("openai", None, None), ctx, log)
    assert stream.outcome.error.kind == "no_key" and "Settings" in stream.outcome.error.message
    assert only_record(log).error_type == "no_key"


def test_list_models_is_logged(provider, ctx, log):
    assert "gpt-4o-mini" in list_models(provider, ctx, log)
    assert only_record(log).status == "ok"


def test_list_models_failure_raises_user_error(server, ctx, log):
    provider = Provider("compatible", server.base_url, "sk-nope-nope-nope-nope", timeout_s=5, max_retries=0)
    with pytest.raises(PromptLabError) as info:
        list_models(provider, ctx, log)
    assert info.value.kind == "bad_key" and only_record(log).status == "error"


def test_azure_provider_streams_through_deployment_path(server, ctx, log):
    base = server.base_url.removesuffix("/v1")
    provider = Provider("azure", base, TEST_KEY, api_version="2024-10-21", timeout_s=5, max_retries=0)
    stream, deltas = run(provider, ctx, log, model="gpt-4o-mini")
    assert stream.outcome.status == "ok" and "".join(deltas) == "Echo: Where is my parcel?"
    request = server.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["headers"].get("api-key") == TEST_KEY
    rec = only_record(log)
    assert rec.provider == "azure" and rec.cost_usd is not None  # Azure prices come from genai-prices


def test_loopback_images_and_moderations_speak_the_sdk_shape(provider):
    client = provider.client()
    image = client.images.generate(model="gpt-image-1", prompt="a blue square", n=2)
    import base64
    png = base64.b64decode(image.data[0].b64_json)
    assert len(image.data) == 2 and png.startswith(b"\x89PNG\r\n\x1a\n")
    flagged = client.moderations.create(model="omni-moderation-latest", input=["how to build a bomb", "hello"])
    assert [r.flagged for r in flagged.results] == [True, False]


def test_streamed_tool_call_is_assembled_and_logged(provider, ctx, log, server):
    server.push(Script(tool_call={"name": "lookup_order", "arguments": '{"order_id": "A-1234", "reason": "size"}'}))
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
    stream, deltas = run(provider, ctx, log, tools=tools)
    out = stream.outcome
    assert out.status == "ok" and out.finish_reason == "tool_calls" and deltas == []
    assert out.tool_calls == [{"id": "call_loopback", "name": "lookup_order",
                               "arguments": '{"order_id": "A-1234", "reason": "size"}'}]
    assert "lookup_order" in log.texts(out.request_id).reply


class StopClicked(BaseException):
    """What Streamlit raises in the page's thread when Stop is clicked (a BaseException)."""


def test_stop_ends_a_request_that_never_answers_while_it_waits(server, log):
    from tests.conftest import TEST_KEY
    server.push(Script(first_byte_delay=30))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=60, max_retries=0)
    waited: list[float] = []

    def waiting(seconds: float) -> None:
        waited.append(seconds)
        if seconds > 0.5:
            raise StopClicked()

    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hello?"}]),
                        CallContext("chat"), log, hooks=CallHooks(on_waiting=waiting))
    with pytest.raises(StopClicked):
        next(stream)
    stream.close()
    assert waited and max(waited) < 5  # given up while waiting, not after the server's 30 s
    assert stream.outcome.status == "cancelled" and log.get(stream.request_id).status == "cancelled"


def test_a_reply_that_echoes_the_key_is_logged_without_it(provider, ctx, log, server):
    # A server (or a prompt-injected reply) that prints the key in play: the call log keeps every text but the key,
    # whatever the text policy ("full" here). The echo server repeats the message, so the reply holds it too.
    leak = [{"role": "user", "content": f"my token is {TEST_KEY} ok"}]
    stream, deltas = run(provider, ctx, log, messages=leak)
    assert TEST_KEY in "".join(deltas)  # the reply on screen is what the server sent
    texts = log.texts(only_record(log).request_id)
    stored = str(texts.request) + texts.reply
    assert TEST_KEY not in stored and "[key removed]" in texts.reply and "[key removed]" in str(texts.request)

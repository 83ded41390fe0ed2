"""Invoice-true prices through the gate, against hand-computed figures from OpenAI's published per-token prices
(USD per 1M tokens — gpt-5-mini: input 0.25, cached input 0.025, output 2.00; flex tier: half; gpt-image-1: text
input 5.00, image output 40.00)."""
from __future__ import annotations

import pytest

from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.llm.pricing import TokenUsage, cost_usd
from core.llm.providers import Provider
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

IN, CACHED, OUT = 0.25, 0.025, 2.00


def priced_call(server, log, **script):
    server.push(Script(reply="four words of reply", **script))
    provider = Provider("openai", server.base_url, TEST_KEY, max_retries=0)  # OpenAI's price list
    stream = ChatStream(provider, ChatRequest("gpt-5-mini", [{"role": "user", "content": "hello there"}]),
                        CallContext("chat"), log)
    "".join(stream)
    return stream.outcome, log.get(stream.request_id)


def test_cached_and_cache_write_tokens(server, log):
    out, record = priced_call(server, log, cached_tokens=4, cache_write_tokens=3)
    prompt, completion = out.usage.input_tokens, out.usage.output_tokens
    # No separate cache-write rate for this model in the price data: written tokens cost the input rate.
    expected = ((prompt - 4 - 3) * IN + 4 * CACHED + 3 * IN + completion * OUT) / 1e6
    assert out.usage.cache_write_tokens == 3 and record.cost_usd == pytest.approx(expected)


def test_reasoning_tokens_are_output(server, log):
    out, record = priced_call(server, log, reasoning_tokens=50)
    assert out.usage.reasoning_tokens == 50 and out.usage.output_tokens == 4 + 50
    assert record.cost_usd == pytest.approx((out.usage.input_tokens * IN + (4 + 50) * OUT) / 1e6)


def test_a_flex_tier_response_is_priced_at_the_flex_rate(server, log):
    out, record = priced_call(server, log, service_tier="flex")
    standard = (out.usage.input_tokens * IN + out.usage.output_tokens * OUT) / 1e6
    assert record.cost_usd == pytest.approx(standard / 2)
    _, default = priced_call(server, log, service_tier="default")
    assert default.cost_usd == pytest.approx(standard)


def test_batch_and_priority_variants_and_an_image_call():
    usage = TokenUsage(1_000_000, 1_000_000)
    assert cost_usd(usage, "gpt-5-mini", "openai", {"processing": "batch"}) == pytest.approx((IN + OUT) / 2)
    assert cost_usd(usage, "gpt-5-mini", "openai", {"service_tier": "priority"}) == pytest.approx(
        (IN + OUT) * 1.8)
    from genai_prices import Usage

    from core.images.generation import _price
    # gpt-image-1: 20 text input tokens at 5.00 $/1M and one 1024x1024 medium image, 1,056 output tokens at 40.00.
    cost = _price("gpt-image-1", Usage(input_tokens=20, output_tokens=1056, output_image_tokens=1056), "openai")
    assert cost == pytest.approx((20 * 5.00 + 1056 * 40.00) / 1e6)

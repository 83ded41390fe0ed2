"""Client-side rate limits: token buckets (with a fake clock), the gate waiting, 429 feedback, Settings."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls import ratelimit
from core.calls.gate import CallHooks, ChatRequest, ChatStream
from core.calls.ratelimit import Limits, RateLimiter, TokenBucket
from tests.conftest import ADMIN
from tests.loopback_server import Script

APP = str(Path(__file__).resolve().parents[2] / "app.py")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_request_bucket_waits_then_refills():
    clock = Clock()
    bucket = TokenBucket(2, clock)  # 2 a minute: one every 30 s
    assert bucket.reserve(1) == 0 and bucket.reserve(1) == 0
    assert bucket.reserve(1) == pytest.approx(30)
    clock.t = 30
    assert bucket.reserve(1) == pytest.approx(30)  # the refill paid the previous reservation
    clock.t = 120
    assert bucket.reserve(1) == 0


def test_token_bucket_and_oversized_requests():
    clock = Clock()
    limiter = RateLimiter(Limits(rpm=0, tpm=1000), clock)
    assert limiter.reserve(600) == 0
    assert limiter.reserve(600) == pytest.approx(12)  # 200 missing at 1000/min
    assert TokenBucket(1000, clock).reserve(5000) == 0  # capped at one minute's worth, never forever


def test_429_drains_the_buckets():
    clock = Clock()
    limiter = RateLimiter(Limits(rpm=600), clock)
    assert limiter.reserve(1) == 0
    limiter.rate_limited(7)
    assert limiter.reserve(1) == pytest.approx(7.1)
    limiter.rate_limited(None)  # no Retry-After: a minute
    assert limiter.reserve(1) >= 60


def chat(provider, ctx, log, waits):
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}],
                                              {"max_tokens": 10}), ctx, log, hooks=CallHooks(on_rate_limit=waits.append))
    list(stream)
    return stream.outcome


def test_gate_waits_instead_of_failing(provider, ctx, log, server):
    ratelimit.save_limits(log.engine, provider.kind, provider.base_url, Limits(rpm=120), actor=ADMIN)
    chat(provider, ctx, log, [])  # warm: the token counter loads in ~0.7 s, longer than the hold below
    ratelimit.limiter_for(log.engine, provider.kind, provider.base_url).rate_limited(0.4)  # the bucket is empty
    waits: list[float] = []
    assert chat(provider, ctx, log, waits).status == "ok"  # held back, then sent: not failed
    # The 0.4 s hold (in-process buckets: plus this request's own half second), less the time to get here.
    assert len(waits) == 1 and 0.2 < waits[0] <= 0.95
    ratelimit.save_limits(log.engine, provider.kind, provider.base_url, Limits(), actor=ADMIN)
    assert ratelimit.limiter_for(log.engine, provider.kind, provider.base_url) is None


def test_server_429_feeds_back_into_the_bucket(provider, ctx, log, server):
    ratelimit.save_limits(log.engine, provider.kind, provider.base_url, Limits(rpm=100_000), actor=ADMIN)
    server.push(Script(status=429, retry_after="3"))
    assert chat(provider, ctx, log, []).error.kind == "rate_limited"
    limiter = ratelimit.limiter_for(log.engine, provider.kind, provider.base_url)
    assert limiter.reserve(1) > 2.5  # everyone now waits for the server's Retry-After
    ratelimit.save_limits(log.engine, provider.kind, provider.base_url, Limits(), actor=ADMIN)


def test_settings_page_saves_limits(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/settings.py").run()
    at.number_input(key="limit_rpm").set_value(30).run()
    at.button(key="save_limits").click().run()
    assert "Rate limits saved" in at.success[0].value
    from core.calls.log import CallLog
    engine = CallLog(app_env["PROMPTLAB_DB_URL"]).engine
    assert ratelimit.load_limits(engine, "compatible", app_env["OPENAI_BASE_URL"]) == Limits(30, 0)


def test_rate_limit_step_reserves_once_counts_only_under_a_limit_and_takes_429_feedback(log):
    counted = []

    def tokens() -> int:
        counted.append(1)
        return 10

    free = ratelimit.RateLimitStep(log.engine, "openai", "https://free.example/v1", tokens)
    assert free.reserve() == 0 and counted == []  # no limits: nothing to count
    ratelimit.save_limits(log.engine, "openai", "https://limited.example/v1", Limits(rpm=1), actor=ADMIN)
    try:
        first = ratelimit.RateLimitStep(log.engine, "openai", "https://limited.example/v1", tokens)
        assert first.reserve() == 0 and first.reserve() == 0 and counted == [1]  # reserved once
        second = ratelimit.RateLimitStep(log.engine, "openai", "https://limited.example/v1", tokens)
        assert 59 <= second.reserve() <= 61.5  # one request a minute: the next waits (shared: + 1 s margin)
        second.rate_limited("120")  # a 429 with Retry-After drains the buckets for later requests
        third = ratelimit.RateLimitStep(log.engine, "openai", "https://limited.example/v1", tokens)
        assert third.reserve() >= 119
        second.rate_limited("not-a-number")  # a malformed header is ignored, not raised
    finally:
        ratelimit.save_limits(log.engine, "openai", "https://limited.example/v1", Limits(), actor=ADMIN)


def test_in_process_tokens_settle_with_real_use():
    clock = Clock()
    limiter = RateLimiter(Limits(tpm=100), clock)
    assert limiter.reserve(60) == 0
    assert limiter.reserve(50) > 0  # 110 reserved of 100
    limiter = RateLimiter(Limits(tpm=100), clock)
    assert limiter.reserve(60) == 0
    limiter.settle(None, 60, 5)  # the reply was short: 55 tokens come back
    assert limiter.reserve(50) == 0

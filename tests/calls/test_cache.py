"""The response cache: exact-match hits at temperature 0 (or opted in), cost 0, `cached` logged, TTL, clearing."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.analytics.dashboard import Analytics, Filters
from core.calls.cache import CachedReply, CacheStep, ResponseCache, cache_key
from core.calls.fallback import FallbackStream
from core.calls.gate import CallContext
from core.llm.providers import request_params
from tests.conftest import ADMIN
from tests.loopback_server import Script

APP = str(Path(__file__).resolve().parents[2] / "app.py")
USER = [{"role": "user", "content": "What are your opening hours?"}]


def ask(provider, log, cache, temperature=0.0, opt_in=False, messages=USER):
    stream = FallbackStream(["gpt-4o-mini"], messages, lambda m: provider,
                            lambda p, m: request_params(p, m, temperature=temperature, max_tokens=50),
                            CallContext("chat"), log, cache, opt_in)
    return "".join(stream), stream.outcome


def test_temperature_zero_is_answered_from_the_cache(provider, log, db_url, server):
    cache = ResponseCache(db_url)
    first, out1 = ask(provider, log, cache)
    second, out2 = ask(provider, log, cache)
    assert first == second == "Echo: What are your opening hours?"
    assert len(server.chat_requests()) == 1 and not out1.cached and out2.cached
    assert out2.cost_usd == 0.0 and out2.usage.output_tokens == out1.usage.output_tokens
    rec = log.get(out2.request_id)
    assert rec.cached and rec.cost_usd == 0.0 and rec.status == "ok"
    assert cache.stats() == (1, 1)


def test_other_temperatures_only_when_opted_in(provider, log, db_url, server):
    cache = ResponseCache(db_url)
    ask(provider, log, cache, temperature=0.7)
    ask(provider, log, cache, temperature=0.7)
    assert len(server.chat_requests()) == 2 and cache.stats()[0] == 0
    ask(provider, log, cache, temperature=0.7, opt_in=True)
    _, out = ask(provider, log, cache, temperature=0.7, opt_in=True)
    assert out.cached and len(server.chat_requests()) == 3


def test_key_covers_messages_and_every_parameter():
    base = cache_key("openai", None, "gpt-4o", USER, {"temperature": 0, "max_tokens": 5})
    assert base == cache_key("openai", None, "gpt-4o", USER, {"max_tokens": 5, "temperature": 0})
    assert base != cache_key("openai", None, "gpt-4o", USER, {"temperature": 0, "max_tokens": 6})
    assert base != cache_key("openai", None, "gpt-4o-mini", USER, {"temperature": 0, "max_tokens": 5})
    assert base != cache_key("azure", None, "gpt-4o", USER, {"temperature": 0, "max_tokens": 5})
    assert base != cache_key("openai", None, "gpt-4o", [{"role": "user", "content": "x"}],
                             {"temperature": 0, "max_tokens": 5})


def test_failures_and_cut_replies_are_not_cached(provider, log, db_url, server):
    cache = ResponseCache(db_url)
    server.push(Script(status=500))
    ask(provider, log, cache)
    server.push(Script(reply="half of it", cut_after=1))
    ask(provider, log, cache)
    assert cache.stats()[0] == 0


def test_ttl_and_clear(provider, log, db_url, server):
    expired = ResponseCache(db_url, ttl_s=-1)  # entries born expired
    ask(provider, log, expired)
    _, out = ask(provider, log, expired)
    assert not out.cached and len(server.chat_requests()) == 2
    assert expired.clear_expired() == 1
    cache = ResponseCache(db_url)
    ask(provider, log, cache)
    assert cache.clear(actor=ADMIN) == 1 and cache.stats() == (0, 0)


def test_hit_rate_shows_in_analytics(provider, log, db_url):
    cache = ResponseCache(db_url)
    for _ in range(4):
        ask(provider, log, cache)
    engine = Analytics(log)
    engine.refresh()
    today = log.recent(1)[0].ts[:10]
    from datetime import date
    k = engine.dashboard(Filters(date.fromisoformat(today), date.fromisoformat(today))).current
    assert (k.calls, k.cached_calls) == (4, 3) and k.response_cache_rate == 0.75


def test_chat_page_marks_cached_replies_and_settings_clears(app_env, server):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.slider(key="chat_temperature").set_value(0.0).run()
    at.chat_input[0].set_value("same question").run()
    next(b for b in at.button if b.label.startswith("↻ Regenerate")).click().run()
    assert len(server.chat_requests()) == 1  # regenerating at temperature 0 repeats the exact request
    caption = [m for m in at.chat_message if m.name == "assistant"][-1].caption[0].value
    assert "⚡ cached · $0" in caption
    at.switch_page("pages/settings.py").run()
    at.button(key="clear_cache").click().run()
    assert "Cleared 1 cached replies" in at.success[0].value


def test_cache_step_treats_an_unreadable_cache_as_a_miss_and_a_failed_write_as_nothing(db_url):
    import sqlalchemy as sa

    cache = ResponseCache(db_url)
    step = CacheStep(cache, "openai", None, "gpt-4o-mini", [{"role": "user", "content": "hi"}], {}, "alice")
    step.store(CachedReply("hello", "stop", 3, 1))
    assert step.lookup() == CachedReply("hello", "stop", 3, 1)
    with cache.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE response_cache"))
    assert step.lookup() is None  # logged, not raised
    step.store(CachedReply("again", "stop", 3, 1))  # logged, not raised

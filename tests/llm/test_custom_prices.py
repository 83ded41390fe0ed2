"""Custom prices: a compatible server's model gets a price (never a silent $0), calls already logged are priced
again with an audit line, a TOML file works, the database wins, a broken file never fails a call."""
from __future__ import annotations

import pytest

from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.llm import custom_prices
from core.llm.providers import Provider
from core.records.privacy import audit_log
from tests.conftest import ADMIN, TEST_KEY
from tests.loopback_server import Script


@pytest.fixture(autouse=True)
def no_prices_left_over():
    custom_prices.install([])
    custom_prices._loaded.clear()
    yield
    custom_prices.install([])
    custom_prices._loaded.clear()


def chat(server, log, model="echo-1") -> str:
    provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
    stream = ChatStream(provider, ChatRequest(model, [{"role": "user", "content": "price me"}]),
                        CallContext("chat", "ana"), log)
    "".join(stream)
    return stream.request_id


def test_a_compatible_servers_model_is_unpriced_until_a_price_is_set_then_every_call_is(server, log):
    before = chat(server, log)
    assert log.get(before).cost_usd is None  # unpriced, not $0
    price = custom_prices.CustomPrice(provider="compatible", model="echo-1", input_per_mtok=0.20,
                                      output_per_mtok=0.60)
    assert custom_prices.save(log.engine, [price], actor=ADMIN) == 1
    old = log.get(before)
    assert old.cost_usd == pytest.approx((old.input_tokens * 0.20 + old.output_tokens * 0.60) / 1e6)
    server.push(Script(cached_tokens=4))
    after = log.get(chat(server, log))
    # Hand-computed: 0.20 $/1M input (cached ones at the input price: none set), 0.60 $/1M output.
    assert after.cost_usd == pytest.approx((after.input_tokens * 0.20 + after.output_tokens * 0.60) / 1e6)
    entry = next(a for a in audit_log(log.engine) if a["action"] == "prices")
    assert entry["actor"] == "admin" and '"calls_repriced": 1' in entry["detail"]


def test_cached_input_price_and_an_override_of_a_list_price(server, log):
    price = custom_prices.CustomPrice(provider="compatible", model="echo-1", input_per_mtok=1.0,
                                      cached_input_per_mtok=0.1, output_per_mtok=2.0)
    custom_prices.save(log.engine, [price], actor=ADMIN)
    server.push(Script(reply="one two three", cached_tokens=6))
    record = log.get(chat(server, log))
    fresh = record.input_tokens - 6
    assert record.cached_input_tokens == 6
    assert record.cost_usd == pytest.approx((fresh * 1.0 + 6 * 0.1 + record.output_tokens * 2.0) / 1e6)


def test_a_prices_file_the_database_wins_and_a_broken_file_never_fails_a_call(server, log, tmp_path, monkeypatch):
    path = tmp_path / "prices.toml"
    path.write_text('[[price]]\nprovider = "compatible"\nmodel = "echo-1"\ninput_per_mtok = 3.0\n'
                    'output_per_mtok = 3.0\n')
    monkeypatch.setenv("PROMPTLAB_PRICES_FILE", str(path))
    record = log.get(chat(server, log))
    assert record.cost_usd == pytest.approx((record.input_tokens + record.output_tokens) * 3.0 / 1e6)
    custom_prices.save(log.engine, [custom_prices.CustomPrice(provider="compatible", model="echo-1",
                                                              input_per_mtok=0.0, output_per_mtok=0.0)], actor=ADMIN)
    custom_prices._loaded.clear()
    assert log.get(chat(server, log)).cost_usd == 0.0  # the database's price wins over the file's
    path.write_text("[[price]\nbroken")
    custom_prices._loaded.clear()
    assert log.get(chat(server, log)).status == "ok"  # a broken file is logged, the call goes on
    with pytest.raises(ValueError, match="not valid TOML"):
        custom_prices.read_file(str(path))


@pytest.mark.parametrize("row, reason", [({"provider": "bedrock", "model": "x", "input_per_mtok": 1,
                                           "output_per_mtok": 1}, "provider"),
                                          ({"provider": "compatible", "model": "", "input_per_mtok": 1,
                                            "output_per_mtok": 1}, "model"),
                                          ({"provider": "compatible", "model": "m", "input_per_mtok": -1,
                                            "output_per_mtok": 1}, "input_per_mtok")])
def test_a_bad_price_is_one_sentence(row, reason):
    with pytest.raises(ValueError, match=reason):
        custom_prices.CustomPrice.checked(row)


def test_the_models_without_a_price_are_listed_until_one_is_set(server, log):
    chat(server, log)
    chat(server, log)
    assert custom_prices.unpriced_models(log.engine) == [("compatible", "echo-1", 2)]
    custom_prices.save(log.engine, [custom_prices.CustomPrice(provider="compatible", model="echo-1",
                                                              input_per_mtok=1.0, output_per_mtok=1.0)], actor=ADMIN)
    assert custom_prices.unpriced_models(log.engine) == []


def test_prices_reloaded_while_calls_are_priced_are_never_missing():
    """The gate reloads the prices every 30 s while other threads price calls: a reader must see the old table or
    the new one, never an emptied one (a custom-priced model unpriced, a contract price back at the list price)."""
    import sys
    import threading

    from core.llm.pricing import TokenUsage, cost_usd

    usage = TokenUsage(1_000_000, 1_000_000)
    list_price = cost_usd(usage, "gpt-4o-mini", "openai")
    # Many prices: a reload has real work to do, as a table of a few hundred models would.
    prices = [custom_prices.CustomPrice(provider="compatible", model=f"m{i}", input_per_mtok=1.0,
                                        output_per_mtok=1.0) for i in range(2_000)]
    prices += [custom_prices.CustomPrice(provider="compatible", model="llama3.1:8b", input_per_mtok=0.2,
                                         output_per_mtok=0.6),
               custom_prices.CustomPrice(provider="openai", model="gpt-4o-mini", input_per_mtok=0.01,
                                         output_per_mtok=0.01, per_image=0.5)]
    custom_prices.install(prices)
    expected = (pytest.approx(0.8), pytest.approx(0.02), 0.5)
    reads, wrong = [0], []  # (appends and += from two readers: list operations, safe under the GIL)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            priced = (cost_usd(usage, "llama3.1:8b", "compatible"), cost_usd(usage, "gpt-4o-mini", "openai"),
                      custom_prices.image_price("openai", "gpt-4o-mini"))
            reads[0] += 1
            if priced != expected and len(wrong) < 5:
                wrong.append(priced)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as the interpreter can: every window is tried
    readers = [threading.Thread(target=reader) for _ in range(2)]
    try:
        for t in readers:
            t.start()
        for _ in range(300):  # the writer: reload after reload (on the old code ~1 read in 6 was wrong)
            custom_prices.install(prices)
    finally:
        stop.set()
        for t in readers:
            t.join()
        sys.setswitchinterval(interval)
    assert reads[0] > 1_000  # the readers did price calls during the reloads
    assert not wrong, f"prices read mid-reload: {wrong} (list price {list_price})"


def test_a_prices_file_named_in_secrets_toml_reaches_the_gate(app_env, tmp_path, monkeypatch):
    """`PROMPTLAB_PRICES_FILE` in secrets.toml only (not in the environment): the chat's call is priced by it."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from core.base.config import load_settings
    from core.calls.log import CallLog

    path = tmp_path / "prices.toml"
    path.write_text('[[price]]\nprovider = "compatible"\nmodel = "gpt-4o-mini"\ninput_per_mtok = 5.0\n'
                    'output_per_mtok = 7.0\n')
    monkeypatch.delenv("PROMPTLAB_PRICES_FILE", raising=False)
    assert load_settings({"PROMPTLAB_PRICES_FILE": str(path)}).prices_file == str(path)  # the one home
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=60)
    at.secrets["PROMPTLAB_PRICES_FILE"] = str(path)
    at.run()
    at.chat_input[0].set_value("price me").run()
    assert not at.exception
    record = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(5) if r.page == "chat"][0]
    assert record.status == "ok" and record.input_tokens and record.output_tokens
    assert record.cost_usd == pytest.approx((record.input_tokens * 5.0 + record.output_tokens * 7.0) / 1e6)

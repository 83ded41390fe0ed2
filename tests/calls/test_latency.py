"""Latency measures the model: the clock starts as the request leaves (not before the call log's row or the
client's set-up) and stops at the reply's last byte, so the logged latency agrees with the server's own measure
of how long it took to answer — for the first calls of a fresh client too. Two measurements compared, no wall-clock
target: the loopback server sleeps 100 ms per request and records `handled_ms` for each."""
from __future__ import annotations

import re

import pytest

from core.calls.gate import CallContext, ChatRequest, ChatStream, list_models
from core.evals.config import parse_config
from core.evals.run import EvalRun
from core.llm import providers as providers_module
from core.llm.providers import Provider
from tests.conftest import TEST_KEY

DELAY_S = 0.1
AGREE_MS = 20.0


@pytest.fixture
def slow_server(server):
    server.delay = DELAY_S
    providers_module._shared_client.cache_clear()  # a fresh client: its set-up must not count
    yield server
    providers_module._shared_client.cache_clear()


def fresh_provider(server) -> Provider:
    return Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)


def handled(server, path="/v1/chat/completions") -> list[float]:
    return [r["handled_ms"] for r in server.requests if r.get("path") == path]


def test_a_chat_stream_logs_the_servers_time_from_the_first_call(slow_server, log):
    provider = fresh_provider(slow_server)
    outcomes = []
    for n in range(3):
        stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": f"hi {n}"}], {}),
                            CallContext("chat", "u"), log)
        assert "".join(stream).startswith("Echo:")
        outcomes.append(stream.outcome)
    server_ms = handled(slow_server)
    assert len(server_ms) == 3 and min(server_ms) >= DELAY_S * 1000
    logged = {r.request_id: r.latency_ms for r in log.recent(10)}
    for outcome, measured in zip(outcomes, server_ms, strict=True):
        assert outcome.latency_ms == pytest.approx(measured, abs=AGREE_MS)
        assert logged[outcome.request_id] == pytest.approx(measured, abs=AGREE_MS)
        assert outcome.ttft_ms is not None and outcome.ttft_ms == pytest.approx(measured, abs=AGREE_MS)


def test_a_non_streamed_call_logs_the_servers_time_from_a_fresh_client(slow_server, log):
    provider = fresh_provider(slow_server)
    assert "gpt-4o-mini" in list_models(provider, CallContext("settings", "u"), log)
    (measured,) = handled(slow_server, "/v1/models")
    (record,) = log.recent(1)
    assert record.latency_ms == pytest.approx(measured, abs=AGREE_MS)


def test_an_evals_cells_latency_and_its_latency_assertion_are_the_servers_time(slow_server, log):
    config = parse_config({
        "prompts": ["Answer: {{q}}"],
        "providers": [{"id": "openai:chat:gpt-4o-mini", "config": {"apiBaseUrl": slow_server.base_url}}],
        "tests": [{"vars": {"q": f"case {i}"}, "assert": [{"type": "latency", "threshold": 100000}]}
                  for i in range(4)]})
    run = EvalRun(config, lambda spec: fresh_provider(slow_server), CallContext("evals", "u"), log,
                  concurrency=1).start()
    assert run.wait(30)
    rows = sorted(run.rows(), key=lambda r: r["test_index"])
    server_ms = handled(slow_server)
    assert len(rows) == len(server_ms) == 4
    logged = {r.request_id: r.latency_ms for r in log.recent(10)}
    for row, measured in zip(rows, server_ms, strict=True):
        assert row["latency_ms"] == pytest.approx(measured, abs=AGREE_MS)
        assert logged[row["request_id"]] == pytest.approx(measured, abs=AGREE_MS)
        (verdict,) = row["assertions"]
        assert verdict["pass"]
        # The assertion judged the same number the log holds (its reason names it when it fails: make it fail).
    strict = parse_config({
        "prompts": ["Answer: {{q}}"],
        "providers": [{"id": "openai:chat:gpt-4o-mini", "config": {"apiBaseUrl": slow_server.base_url}}],
        "tests": [{"vars": {"q": "x"}, "assert": [{"type": "latency", "threshold": 1}]}]})
    slow_server.reset()
    slow_server.delay = DELAY_S
    run = EvalRun(strict, lambda spec: fresh_provider(slow_server), CallContext("evals", "u"), log).start()
    assert run.wait(30)
    (row,) = run.rows()
    (verdict,) = row["assertions"]
    judged = float(re.match(r"Latency (\d+)ms", verdict["reason"]).group(1))
    assert not verdict["pass"] and judged == pytest.approx(row["latency_ms"], abs=1)
    assert judged == pytest.approx(handled(slow_server)[0], abs=AGREE_MS)

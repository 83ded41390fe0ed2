"""One record of a call's measurements: built from the gate's outcome, shown by one caption, and stored flat —
so conversations and playground runs saved before it existed still load (stored fixtures, written by real calls
through the loopback server with the code of that time)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core.calls.gate import CallContext, ChatRequest, ChatStream
from core.calls.metrics import CallMetrics, metrics_caption
from core.chat import conversation as chat
from core.chat.store import ConversationStore
from core.playground.library import PromptLibrary
from core.playground.matrix import results_from_json, results_to_json
from tests.loopback_server import Script

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_metrics_are_frozen_and_keyword_only():
    m = CallMetrics(status="ok", input_tokens=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.input_tokens = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallMetrics("ok")  # type: ignore[misc]
    with pytest.raises(TypeError):
        chat.Message("user", "hi")  # type: ignore[misc]


def test_outcome_metrics_are_what_the_gate_logged(provider, log, server):
    server.push(Script(reply="one two three four", chunk_delay=0.01))
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}]),
                        CallContext("chat"), log)
    "".join(stream)
    m, record = stream.outcome.metrics, log.recent(1)[0]
    assert (m.status, m.model, m.request_id) == (record.status, record.model, record.request_id)
    assert (m.input_tokens, m.output_tokens, m.cost_usd) == (record.input_tokens, record.output_tokens,
                                                             record.cost_usd)
    assert m.latency_ms == pytest.approx(record.latency_ms, abs=0.1) and m.ttft_ms <= m.latency_ms
    assert m.tokens_per_second is not None and m.tokens_per_second > 0


def test_one_caption_for_chat_and_playground():
    m = CallMetrics(status="ok", model="gpt-4o-mini", input_tokens=1200, output_tokens=11, tokens_estimated=True,
                    cost_usd=None, latency_ms=1500.0, ttft_ms=500.0)
    assert metrics_caption(m) == "1,200 in / 11 out tokens (est.) · unpriced · 1.5 s · first token 0.50 s · 10 tokens/s"
    local = dataclasses.replace(m, model="local/SmolLM2-135M-Instruct", cost_usd=0.0, tokens_estimated=False)
    assert "local (free)" in metrics_caption(local)
    assert "⚡ cached · $0" in metrics_caption(dataclasses.replace(m, cached=True, cost_usd=0.0))
    message = chat.Message(role="assistant", content="x", status="cut", metrics=m)
    assert chat.turn_caption(message) == f"gpt-4o-mini · {metrics_caption(m)} · **cut off**"


def test_a_conversation_saved_before_call_metrics_loads_and_saves_back_unchanged(db_url):
    stored = json.loads((FIXTURES / "conversation_before_call_metrics.json").read_text())
    conv = chat.Conversation.from_dict(stored)
    user, reply, _, cut, _, last = conv.messages
    assert user.metrics is None and user.content == "What is the refund window?"
    assert reply.metrics == CallMetrics(status="ok", **{k: stored["messages"][1][k] for k in (
        "model", "request_id", "input_tokens", "output_tokens", "tokens_estimated", "cost_usd", "latency_ms",
        "ttft_ms", "cached")})
    assert cut.status == "cut" and cut.metrics.status == "error" and cut.metrics.tokens_estimated
    assert cut.note.startswith("gpt-4o timed out") and last.content == "Echo: Thanks"
    assert chat.totals(conv).replies == 3 and chat.totals(conv).usage.input_tokens == 30 + 56 + 60
    assert "30 in / 6 out tokens" in chat.turn_caption(reply)
    # Written back, the stored form is the one it was read from (same keys, same values), plus the fields added
    # since (issue 14: a pending or failed reply), at their "nothing pending" defaults.
    assert conv.to_dict() == {**stored, "reply_pending": False, "error": None}
    store = ConversationStore(db_url)
    store.save(conv, "local")
    assert store.load(conv.id) == conv


def test_a_playground_run_saved_before_call_metrics_loads(db_url):
    text = (FIXTURES / "playground_run_before_call_metrics.json").read_text()
    stored = json.loads(text)
    ok, failed = results_from_json(text)
    assert ok.status == "ok" and ok.metrics.status == "ok" and ok.metrics.request_id == stored[0]["request_id"]
    assert ok.metrics.latency_ms == stored[0]["latency_ms"] and ok.metrics.tokens_estimated is True
    assert failed.status == "error" and failed.metrics.cost_usd == 0.0 and "server error" in failed.error
    again = json.loads(results_to_json([ok, failed]))
    for before, after in zip(stored, again, strict=True):
        assert {k: v for k, v in after.items() if k in before} == before  # every old field kept as it was
    library = PromptLibrary(db_url)
    saved = library.save_run("old run", [ok, failed])
    assert library.runs()[0].results == [ok, failed] and saved.name == "old run"

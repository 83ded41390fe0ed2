"""Row 1 of issue 28: a looping reply (what the 135M offline model does in Chinese) is ended by the gate with a
note, logged as finish_reason "repetition", instead of running to the token limit."""
from __future__ import annotations

from core.calls.gate import ChatRequest, ChatStream
from core.calls.repetition import FINISH_REASON, RepetitionGuard
from core.chat import conversation as chat
from tests.loopback_server import Script

LOOP = "I can help you with that. "
CJK_LOOP = "您好，请问有什么可以帮您？"


def test_guard_finds_loops_in_both_languages_and_leaves_answers_alone():
    guard = RepetitionGuard()
    text = "Sure. " + LOOP * 6
    assert text[:guard.loop_start(text)] == "Sure. " + LOOP  # one copy kept
    cjk = "退货政策如下：" + CJK_LOOP * 6
    assert cjk[:guard.loop_start(cjk)] == "退货政策如下：" + CJK_LOOP
    for answer in ("Items can be returned within 30 days. Exchanges are free; refunds take 5-7 days.",
                   "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n", "-" * 80 + "\n", "ok ok ok",
                   "您好！可以退货。请提供订单号，我们会在收到退货后5到7个工作日内退款。"):
        assert guard.loop_start(answer) is None, answer


def test_a_looping_stream_is_stopped_with_a_note(provider, ctx, log, server):
    server.push(Script(reply="Sure. " + LOOP * 60, chunk_delay=0.0))
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}],
                                              {"max_tokens": 1024}), ctx, log, stop_loops=True)
    deltas = list(stream)
    out = stream.outcome
    assert out.status == "ok" and out.finish_reason == FINISH_REASON
    assert out.text == "Sure. " + LOOP  # what is kept: the text before the loop and one copy
    assert len(deltas) < 60  # it did not run to the end of the reply
    rec = log.recent(1)[0]
    assert rec.finish_reason == FINISH_REASON and rec.status == "ok"
    conv = chat.new_conversation()
    chat.add_user_message(conv, "hi")
    message = chat.record_reply(conv, out)
    assert message is not None and message.note == "The reply kept repeating itself and was stopped."


def test_the_playground_and_evals_see_the_raw_reply(provider, ctx, log, server):
    """Only a conversation's reply is cut: a measurement (Playground, evals) keeps what the model said."""
    server.push(Script(reply=LOOP * 8))
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}], {}), ctx, log)
    assert "".join(stream) == LOOP * 8 and stream.outcome.finish_reason == "stop"


def test_chat_replies_are_guarded(provider, ctx, log, server):
    server.push(Script(reply=LOOP * 30))
    plan = chat.plan_context(_conversation(), "gpt-4o-mini", context_window=8000, reply_budget=100)
    stream = chat.start_reply(plan, ["gpt-4o-mini"], lambda m: provider, lambda p, m: {}, ctx, log)
    assert "".join(stream) and stream.outcome.finish_reason == FINISH_REASON and stream.outcome.text == LOOP


def _conversation() -> chat.Conversation:
    conv = chat.new_conversation()
    chat.add_user_message(conv, "hi")
    return conv


def _loop_start_by_every_period(guard, text):
    """The guard's rule tried for every period in turn (the reference the faster search must agree with)."""
    n = len(text)
    for period in range(1, min(guard.max_period, n // guard.min_repeats) + 1):
        repeats = max(guard.min_repeats, -(-guard.min_span // period))
        span = period * repeats
        unit = text[n - period:]
        if span > n or not any(c.isalnum() for c in unit) or text[n - span:] != unit * repeats:
            continue
        start = n - span
        while start >= period and text[start - period:start] == unit:
            start -= period
        return start + period
    return None


def test_the_fast_period_search_agrees_with_trying_every_period():
    import random

    from core.calls.repetition import RepetitionGuard

    guard, rng = RepetitionGuard(), random.Random(7)
    texts = ["", "a", "ok " * 40, "Intro. " + "The same sentence again. " * 5, "w0 w1 w2 " * 3]
    for _ in range(400):
        unit = "".join(rng.choice("ab c.\n") for _ in range(rng.randint(1, 30)))
        texts.append("".join(rng.choice("xyz ") for _ in range(rng.randint(0, 50))) + unit * rng.randint(1, 12))
    for text in texts:
        for end in range(0, len(text) + 1, 7):
            assert guard.loop_start(text[:end]) == _loop_start_by_every_period(guard, text[:end]), text[:end]

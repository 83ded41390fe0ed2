"""Benchmark: PromptLab's chat pipeline over the Responses API vs the raw openai SDK's `responses.stream` on the
same 2,000-delta loopback stream (plus the events around it: created, in_progress, item / part added, done,
completed).

(a) raw: `client.responses.stream(...)` iterated to the end, counting `response.output_text.delta` events (the
    issue's baseline; it also builds the SDK's running snapshot, which the gate does not: the gate reads
    `responses.create(stream=True)`, so that lighter baseline is measured and printed too).
(b) pipeline: as bench/streaming.py, with the API choice "auto" on an OpenAI provider (= Responses): context
    planning, the gate (`ChatStream` over `client.responses.create(stream=True)`, the events accumulated, usage
    priced, the call-log write with texts), recording the reply and saving the conversation.
The loopback server runs in its own process; runs alternate; the result is the ratio of the fastest runs, medians
and the consumer thread's CPU time beside it. Goal: <= 1.05. Last line: `RESULT responses_stream_ratio <ratio>`.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from bench.streaming import CHUNKS, KEY, MODEL, ROUNDS, start_server  # noqa: E402  (same stream, same server)
from core.calls.gate import CallContext  # noqa: E402
from core.calls.log import CallLog  # noqa: E402
from core.chat import conversation as chat  # noqa: E402
from core.chat.personas import BUILT_IN  # noqa: E402
from core.chat.store import ConversationStore  # noqa: E402
from core.llm.providers import Provider, request_params  # noqa: E402
from core.llm.responses_api import responses_request  # noqa: E402


def script_next(base_url: str) -> None:
    body = json.dumps([{"path": "/v1/responses", "chunks": CHUNKS}]).encode()
    req = urllib.request.Request(base_url.removesuffix("/v1") + "/_script", body,
                                 {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def raw_sdk(client: openai.OpenAI, request: dict) -> int:
    n = 0
    with client.responses.stream(**request) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                n += 1
    return n


def raw_create(client: openai.OpenAI, request: dict) -> int:
    """The lighter raw baseline the gate itself sits on: events without the SDK's accumulated snapshot."""
    return sum(1 for e in client.responses.create(stream=True, **request) if e.type == "response.output_text.delta")


def pipeline(provider: Provider, log: CallLog, store: ConversationStore, conversation: chat.Conversation) -> int:
    plan = chat.plan_context(conversation, MODEL, context_window=128_000, reply_budget=1024, provider_id="openai")
    stream = chat.start_reply(plan, [MODEL], lambda m: provider,
                              lambda p, m: request_params(p, m, temperature=0.7, max_tokens=4096),
                              CallContext("chat", "bench", "bench"), log, api="auto")
    n = sum(1 for _ in stream)
    assert stream.outcome is not None and stream.outcome.status == "ok"
    chat.record_reply(conversation, stream.outcome, stream.notice)
    store.save(conversation, "bench")
    chat.drop_last_reply(conversation)
    return n


def main() -> None:
    proc, base_url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            log, store = CallLog(url), ConversationStore(url)
            provider = Provider("openai", base_url, KEY, timeout_s=30, max_retries=0)
            client = provider.client()
            conversation = chat.new_conversation(BUILT_IN[1])
            for i in range(6):  # a realistic history to count
                chat.add_user_message(conversation, f"Question {i} about my order and its return window?")
                conversation.messages.append(chat.Message(role="assistant", content="Here is a detailed answer. " * 20))
            chat.add_user_message(conversation, "And the refund?")
            messages = chat.plan_context(conversation, MODEL, context_window=128_000, reply_budget=1024).messages
            request = responses_request(MODEL, messages, request_params(provider, MODEL, temperature=0.7,
                                                                        max_tokens=4096))
            raw_times, pipe_times, raw_cpu, pipe_cpu, create_times = [], [], [], [], []
            for round_no in range(ROUNDS + 1):  # round 0 warms caches and connections
                script_next(base_url)
                t0, c0 = time.perf_counter(), time.thread_time()
                assert raw_sdk(client, request) == CHUNKS
                t_raw, c_raw = time.perf_counter() - t0, time.thread_time() - c0
                script_next(base_url)
                t0, c0 = time.perf_counter(), time.thread_time()
                assert pipeline(provider, log, store, conversation) == CHUNKS
                t_pipe, c_pipe = time.perf_counter() - t0, time.thread_time() - c0
                script_next(base_url)
                t0 = time.perf_counter()
                assert raw_create(client, request) == CHUNKS
                t_create = time.perf_counter() - t0
                if round_no:
                    create_times.append(t_create)
                    raw_times.append(t_raw)
                    pipe_times.append(t_pipe)
                    raw_cpu.append(c_raw)
                    pipe_cpu.append(c_pipe)
            assert log.count() == ROUNDS + 1
    finally:
        proc.terminate()
    print(f"output_text.delta events per stream: {CHUNKS}, rounds: {ROUNDS} (alternating)")
    for name, wall, cpu in (("raw responses.stream", raw_times, raw_cpu),
                            ("PromptLab pipeline", pipe_times, pipe_cpu)):
        print(f"{name:20s} fastest {min(wall) * 1000:7.1f} ms  median {statistics.median(wall) * 1000:7.1f} ms  "
              f"consumer CPU median {statistics.median(cpu) * 1000:7.1f} ms  ({CHUNKS / min(wall):,.0f} events/s)")
    print(f"median ratio {statistics.median(pipe_times) / statistics.median(raw_times):.3f}, "
          f"CPU ratio {statistics.median(pipe_cpu) / statistics.median(raw_cpu):.3f}")
    print(f"against raw responses.create(stream=True) (no snapshot): fastest {min(create_times) * 1000:.1f} ms, "
          f"ratio {min(pipe_times) / min(create_times):.3f}")
    print(f"RESULT responses_stream_ratio {min(pipe_times) / min(raw_times):.3f}")


if __name__ == "__main__":
    main()

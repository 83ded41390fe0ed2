"""Benchmark: the offline model through PromptLab's path vs the runtime's own raw API, and a cold start.

Both generate exactly 256 tokens (end-of-turn suppressed with logit_bias) for the same prompt, seed and sampling
settings, from the same GGUF with the same server settings:
(a) raw: `xllamacpp.Server.handle_chat_completions(request, callback)` in this process — no HTTP, no SDK;
(b) PromptLab: `ChatStream` over the local provider — the child process, loopback HTTP, the `openai` SDK, the
    generation queue, token counting, pricing and the call-log write.
(c) for diagnosis, the same child's HTTP endpoint read with plain httpx2 (no SDK, no gate): (b) vs (c) is what the
    SDK and the gate cost; (c) vs (a) is what running in another process costs on this machine.
Runs alternate, so each round's three runs share the machine's state of the moment; the outputs must be identical.
Goal: `local_model_speed_ratio` = (b) / (a) >= 0.95, the median over rounds of each round's own ratio. (The ratio of
the fastest runs, printed too, was used first: one lucky run of either side decides it, and on this 2-core machine
it ranged 0.894–0.966 over five runs of one tree, where the paired median ranged 0.953–0.997 over four.)
The rounds come in blocks, each with a fresh child and a fresh raw server: one process's speed is a draw (five raw
servers made one after another ran at 129–140 tok/s, steady within each), so a single pair of processes made the
whole result a draw too.
`local_model_first_token_s` is a cold start through PromptLab's path: child process start + model load + first
token.
Last lines: `RESULT local_model_first_token_s <s>`, `RESULT local_model_gate_ratio <(b)/(c)>` and
`RESULT local_model_speed_ratio <(b)/(a)>`.
"""
from __future__ import annotations

import gc
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2  # noqa: E402
import xllamacpp  # noqa: E402

from core.base.config import load_settings  # noqa: E402
from core.calls.gate import CallContext, ChatRequest, ChatStream  # noqa: E402
from core.calls.log import CallLog  # noqa: E402
from core.llm import local_model, model_file  # noqa: E402
from core.llm.providers import local_provider  # noqa: E402

TOKENS = 256
BLOCKS = 4  # fresh processes on both sides per block
ROUNDS = 5  # measured rounds per block, after one warm-up round
SETTLE_S = 0.5
EOS = "2"  # SmolLM2's <|im_end|>
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
SETTINGS = {"max_tokens": TOKENS, "temperature": 0.7, "top_p": 0.95, "seed": 42, "logit_bias": {EOS: -100}}


def raw_server(path: str) -> xllamacpp.Server:
    """The runtime on its own, configured as core/llm/local_server.py configures the child."""
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_parallel, params.n_ctx, params.cache_prompt, params.verbosity = 1, 0, False, 0
    params.hostnames, params.port = ["127.0.0.1"], 0  # its (unused) HTTP listener must not clash with the last one
    return xllamacpp.Server(params)


def raw_run(server: xllamacpp.Server) -> tuple[str, float]:
    pieces: list[str] = []

    def on_chunk(chunk: dict) -> None:
        for choice in chunk.get("choices") or []:
            pieces.append((choice.get("delta") or {}).get("content") or "")

    started = time.perf_counter()
    server.handle_chat_completions({"messages": MESSAGES, "stream": True, **SETTINGS}, on_chunk)
    return "".join(pieces), time.perf_counter() - started


def http_run(runtime: local_model.LocalRuntime, http: httpx2.Client) -> tuple[str, float]:
    """The child's own endpoint, read line by line with plain httpx2 (one client for all runs, as the SDK has: a
    client per run spent ~17 ms of each run building its TLS context)."""
    child = runtime.child()
    pieces: list[str] = []
    started = time.perf_counter()
    with http.stream("POST", f"{child.base_url}/v1/chat/completions", timeout=60,
                       headers={"Authorization": f"Bearer {child.token}"},
                       json={"messages": MESSAGES, "stream": True, **SETTINGS}) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices") or []:
                    pieces.append((choice.get("delta") or {}).get("content") or "")
    return "".join(pieces), time.perf_counter() - started


def main() -> None:
    settings = load_settings()
    provider = local_provider(settings)
    path = model_file.resolve(settings.local_model_path, settings.offline_models_dir)
    with tempfile.TemporaryDirectory() as tmp, httpx2.Client() as http:
        log = CallLog(f"sqlite:///{tmp}/bench.db")
        context = CallContext("other", "bench")

        local_model.stop_all()  # cold: no child yet
        started = time.perf_counter()
        cold = ChatStream(provider, ChatRequest(local_model.model_id_for(settings.local_model_path), MESSAGES,
                                                {**SETTINGS, "max_tokens": 8}), context, log)
        next(cold)
        first_token_s = time.perf_counter() - started
        list(cold)

        raw_rates, ours_rates, http_rates, ours_cpu_us = [], [], [], []
        for block in range(BLOCKS):
            local_model.stop_all()  # a fresh child (started by the first request) and a fresh raw server
            raw = raw_server(path)
            for round_no in range(ROUNDS + 1):  # round 0 warms up
                # Each run starts on a quiet machine: llama.cpp's threads keep polling for a moment after a run.
                raw_text, raw_time = raw_run(raw)
                time.sleep(SETTLE_S)
                http_text, http_time = http_run(provider.local_runtime(), http)
                time.sleep(SETTLE_S)
                t0, cpu0 = time.perf_counter(), process_cpu_s()
                stream = ChatStream(provider, ChatRequest(local_model.model_id_for(settings.local_model_path),
                                                          MESSAGES, dict(SETTINGS)), context, log)
                ours_text = "".join(stream)
                ours_time, ours_cpu = time.perf_counter() - t0, process_cpu_s() - cpu0
                out = stream.outcome
                assert out is not None and out.status == "ok" and out.usage.output_tokens == TOKENS, out
                time.sleep(SETTLE_S)
                assert ours_text == raw_text == http_text, "the outputs differ"
                if round_no:
                    raw_rates.append(TOKENS / raw_time)
                    ours_rates.append(TOKENS / ours_time)
                    http_rates.append(TOKENS / http_time)
                    ours_cpu_us.append(ours_cpu / TOKENS * 1e6)
                print(f"block {block} round {round_no}: raw {TOKENS / raw_time:6.1f} tok/s · child over HTTP "
                      f"{TOKENS / http_time:6.1f} tok/s · PromptLab {TOKENS / ours_time:6.1f} tok/s")
            mine = slice(block * ROUNDS, (block + 1) * ROUNDS)
            print(f"block {block}: PromptLab / raw {paired_median(ours_rates[mine], raw_rates[mine]):.3f}")
            del raw
            gc.collect()  # the raw server's threads and buffers go before the next one loads
        local_model.stop_all()
    print(f"medians: raw {statistics.median(raw_rates):.1f}, child over HTTP {statistics.median(http_rates):.1f}, "
          f"PromptLab {statistics.median(ours_rates):.1f} tok/s; same output: yes")
    # CPU this process spends per streamed token is taken from the model's threads on a small machine.
    print(f"PromptLab's CPU in this process: {statistics.median(ours_cpu_us):.0f} µs per token (median)")
    print(f"fastest runs: PromptLab / raw {max(ours_rates) / max(raw_rates):.3f}, "
          f"PromptLab / child over HTTP {max(ours_rates) / max(http_rates):.3f}")
    print(f"RESULT local_model_first_token_s {first_token_s:.2f}")
    print(f"RESULT local_model_gate_ratio {paired_median(ours_rates, http_rates):.3f}")
    print(f"RESULT local_model_speed_ratio {paired_median(ours_rates, raw_rates):.3f}")


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def paired_median(ours: list[float], baseline: list[float]) -> float:
    """The median of each round's ratio: robust to a lucky or unlucky run on either side."""
    return statistics.median(o / b for o, b in zip(ours, baseline, strict=True))


if __name__ == "__main__":
    main()

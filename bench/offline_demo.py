"""Benchmark: the offline model as a demo sees it, in English and in Chinese (issue 28).

Through PromptLab's own path (the local provider, the child process, the SDK, the gate with its repetition guard)
with the chat page's parameters for the offline model (`core.chat.conversation.reply_params`: 256 tokens, llama.cpp's repeat
penalty), the returns persona in each language (`Persona.prompt`) and one fixed question per language. The child
is warmed up first (as the app does at start-up), so the figures are a session's first reply, not a process start.
For each language: the median first token (s) and decode speed (tokens/s after the first token) over `BENCH_RUNS`
replies, and the share of CJK characters in the Chinese replies (a Chinese answer is mostly CJK; gibberish can be
too, so read the sample printed beside it). Machine load changes these a lot: say what else was running.
Last lines: `RESULT offline_first_token_s_en <s>`, `RESULT offline_tokens_per_s_en <tok/s>`, the same with `_zh`,
and `RESULT offline_cjk_share_zh <0..1>`.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.base.config import load_settings  # noqa: E402
from core.calls.gate import CallContext, ChatRequest, ChatStream  # noqa: E402
from core.calls.log import CallLog  # noqa: E402
from core.chat import conversation as chat
from core.chat.personas import persona_by_id  # noqa: E402
from core.llm import local_model  # noqa: E402
from core.llm.providers import local_provider  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
QUESTIONS = {"en": "I bought running shoes 20 days ago and they hurt. Can I return them?",
             "zh": "我20天前买的跑鞋穿着脚疼，可以退货吗？"}


def cjk_share(text: str) -> float:
    """CJK ideographs among the reply's letters and ideographs (punctuation, digits and spaces left out)."""
    counted = [c for c in text if c.isalpha()]
    return sum("\u4e00" <= c <= "\u9fff" for c in counted) / len(counted) if counted else 0.0


def main() -> None:
    settings = load_settings()
    provider = local_provider(settings)
    model = local_model.model_id_for(settings.local_model_path)
    persona = persona_by_id("returns_agent")
    assert persona is not None
    provider.local_runtime().warm_up()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = CallLog(f"sqlite:///{tmp}/bench.db")
        for lang, question in QUESTIONS.items():
            system = persona.prompt("zh_CN" if lang == "zh" else "en")
            messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
            params = chat.reply_params(provider, model, temperature=0.7, max_tokens=chat.OFFLINE_REPLY_TOKENS,
                                       chosen=model)
            firsts, speeds, shares = [], [], []
            for i in range(RUNS):
                time.sleep(0.5)
                stream = ChatStream(provider, ChatRequest(model, messages, {**params, "seed": i}),
                                    CallContext("bench"), log, stop_loops=True)
                text = "".join(stream)
                out = stream.outcome
                assert out is not None and out.status == "ok", out
                first_s = (out.ttft_ms or 0) / 1000
                decode_s = out.latency_ms / 1000 - first_s
                speeds.append((out.usage.output_tokens - 1) / decode_s if decode_s > 0 else 0.0)
                firsts.append(first_s)
                shares.append(cjk_share(text))
                print(f"{lang} run {i}: first token {first_s:.2f} s, {out.usage.output_tokens} tokens, "
                      f"{speeds[-1]:.1f} tok/s, finish {out.finish_reason}, CJK {shares[-1]:.2f}: {text[:120]!r}")
            results[f"offline_first_token_s_{lang}"] = statistics.median(firsts)
            results[f"offline_tokens_per_s_{lang}"] = statistics.median(speeds)
            if lang == "zh":
                results["offline_cjk_share_zh"] = statistics.median(shares)
    local_model.stop_all()
    for name, value in results.items():
        print(f"RESULT {name} {value:.3f}")


if __name__ == "__main__":
    main()

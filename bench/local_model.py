"""Benchmark: the embedded local model through PromptLab's provider path vs raw `llama_cpp.Llama`.

Both generate exactly 256 tokens (end-of-turn suppressed with logit_bias) for the same prompt, seed and sampling
settings, from the same GGUF loaded with the same settings. (a) raw: `Llama.create_chat_completion(stream=True)`;
(b) PromptLab: `ChatStream` over the local provider, i.e. the gate with token counting, pricing and the call-log
write. Runs alternate; tokens/s of the fastest run of each are compared. Goal: ratio >= 0.95.
Last line: `RESULT local_model_speed_ratio <ratio>`.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llama_cpp import Llama, LogitsProcessorList  # noqa: E402

from core import local_model  # noqa: E402
from core.calllog import CallLog  # noqa: E402
from core.calls import CallContext, ChatRequest, ChatStream  # noqa: E402
from core.config import Settings  # noqa: E402
from core.providers import local_provider  # noqa: E402

TOKENS = 256
ROUNDS = 3
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


def main() -> None:
    model = local_model.load()
    eos = model.llm.token_eos()
    settings = {"max_tokens": TOKENS, "temperature": 0.7, "top_p": 0.95, "seed": 42}

    def no_eos(input_ids, scores):  # raw llama-cpp-python ignores `logit_bias` next to processors: do it by hand
        scores = scores.copy()
        scores[eos] -= 100.0
        return scores
    raw = Llama(model_path=model.path, n_ctx=0, chat_format=local_model.GGUF_TEMPLATE, verbose=False)
    provider = local_provider(Settings())
    with tempfile.TemporaryDirectory() as tmp:
        log = CallLog(f"sqlite:///{tmp}/bench.db")
        raw_rates, ours_rates = [], []
        for round_no in range(ROUNDS + 1):  # round 0 warms up
            raw.reset()  # like the provider path: evaluate the prompt afresh each time
            t0 = time.perf_counter()
            pieces = [c["choices"][0]["delta"].get("content") or ""
                      for c in raw.create_chat_completion(MESSAGES, stream=True,
                                                          logits_processor=LogitsProcessorList([no_eos]),
                                                          **settings)]
            raw_time = time.perf_counter() - t0
            t0 = time.perf_counter()
            stream = ChatStream(provider, ChatRequest(model.model_id, MESSAGES,
                                                      {**settings, "logit_bias": {str(eos): -100}}),
                                CallContext("other", "bench"), log)
            ours_text = "".join(stream)
            ours_time = time.perf_counter() - t0
            out = stream.outcome
            assert out.status == "ok" and out.finish_reason == "length", out
            assert out.usage.output_tokens == TOKENS, out.usage
            assert ours_text == "".join(pieces)  # same prompt, seed and settings: the same tokens
            if round_no:
                raw_rates.append(TOKENS / raw_time)
                ours_rates.append(TOKENS / ours_time)
    print(f"tokens per run: {TOKENS}, rounds: {ROUNDS} (alternating), model: {model.model_id}")
    print(f"raw llama_cpp.Llama: best {max(raw_rates):6.1f} tokens/s  median {statistics.median(raw_rates):6.1f}")
    print(f"PromptLab provider:  best {max(ours_rates):6.1f} tokens/s  median {statistics.median(ours_rates):6.1f}")
    print(f"RESULT local_model_speed_ratio {max(ours_rates) / max(raw_rates):.3f}")


if __name__ == "__main__":
    main()

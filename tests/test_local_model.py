"""The embedded local model (llama-cpp-python + SmolLM2-135M GGUF) through the same gate as every provider.
Real model, short generations, fixed seeds: assertions are on structure, not wording."""
from __future__ import annotations

import threading

import pytest

from core import chat, local_model
from core.calls import ChatRequest, ChatStream
from core.config import Settings
from core.errors import PromptLabError
from core.personas import persona_by_id
from core.providers import Provider, local_provider, request_params, resolve_provider

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def model() -> local_model.LocalModel:
    return local_model.load()


@pytest.fixture
def local() -> Provider:
    return local_provider(Settings())


def generate(local, ctx, log, messages=QUESTION, **params) -> ChatStream:
    params = {"max_tokens": 24, "temperature": 0, "seed": 1, **params}
    stream = ChatStream(local, ChatRequest(local_model.model_id_for(None), messages, params), ctx, log)
    list(stream)
    return stream


def test_default_provider_with_nothing_configured_is_local():
    provider = resolve_provider(Settings())
    assert provider.kind == "local" and provider.pricing_id == "free" and provider.masked_key == "not needed"
    assert resolve_provider(Settings(provider="local", openai_api_key="sk-x")).kind == "local"


def test_loaded_once_per_process(model):
    assert local_model.load() is model and local_model.load(local_model.default_gguf_path()) is model
    assert model.path.endswith(".gguf") and local_model.default_gguf_path() == model.path


def test_context_window_comes_from_gguf_metadata(model):
    assert model.context_window == int(model.llm.metadata["llama.context_length"]) == 8192


def test_stream_is_logged_with_the_models_own_token_counts(model, local, ctx, log):
    stream = generate(local, ctx, log)
    out = stream.outcome
    assert out.status == "ok" and out.text and out.finish_reason in ("stop", "length")
    assert not out.usage.estimated
    # Prompt tokens exactly as llama.cpp counts them for the same request.
    reference = model.llm.create_chat_completion(QUESTION, max_tokens=1, temperature=0)
    assert out.usage.input_tokens == reference["usage"]["prompt_tokens"]
    assert 1 <= out.usage.output_tokens <= 24
    rec = log.recent(1)[0]
    assert rec.provider == "local" and rec.model == "local/SmolLM2-135M-Instruct" and rec.cost_usd == 0.0
    assert rec.ttft_ms is not None and rec.latency_ms > rec.ttft_ms and not rec.tokens_estimated


def test_max_tokens_limits_generation(local, ctx, log):
    out = generate(local, ctx, log, max_tokens=5).outcome
    assert out.finish_reason == "length" and out.usage.output_tokens == 5


def test_seed_reproduces_and_changes_sampling(local, ctx, log):
    a = generate(local, ctx, log, temperature=1.0, seed=7, max_tokens=30).outcome.text
    b = generate(local, ctx, log, temperature=1.0, seed=7, max_tokens=30).outcome.text
    c = generate(local, ctx, log, temperature=1.0, seed=8, max_tokens=30).outcome.text
    assert a == b and a != c


def test_stop_sequence_and_top_p(local, ctx, log):
    full = generate(local, ctx, log, max_tokens=30).outcome.text
    words = full.split()
    assert len(words) >= 3
    stop_word = words[2]
    cut = generate(local, ctx, log, max_tokens=30, stop=[stop_word]).outcome
    assert cut.finish_reason == "stop" and stop_word not in cut.text and full.startswith(cut.text.rstrip())
    assert generate(local, ctx, log, top_p=0.1, temperature=0.9).outcome.status == "ok"


def test_stop_mid_stream_cancels_and_releases_the_model(model, local, ctx, log):
    stream = ChatStream(local, ChatRequest("local/SmolLM2-135M-Instruct", QUESTION,
                                           {"max_tokens": 200, "temperature": 0.8, "seed": 3}), ctx, log)
    first = [next(stream) for _ in range(3)]
    stream.close()
    out = stream.outcome
    assert out.status == "cancelled" and out.text == "".join(first)
    assert not out.usage.estimated and 3 <= out.usage.output_tokens < 200  # exact count up to the stop
    assert not model.lock.locked()
    assert generate(local, ctx, log).outcome.status == "ok"  # the next chat is served at once


def test_two_threads_chatting_get_complete_separate_replies(local, ctx, log):
    prompts = {"a": [{"role": "user", "content": "Say something about cats."}],
               "b": [{"role": "user", "content": "Say something about rockets."}]}
    expected = {k: generate(local, ctx, log, messages=m, seed=11, max_tokens=20).outcome.text
                for k, m in prompts.items()}
    results: dict[str, str] = {}

    def worker(key: str) -> None:
        results[key] = generate(local, ctx, log, messages=prompts[key], seed=11, max_tokens=20).outcome.text

    threads = [threading.Thread(target=worker, args=(k,)) for k in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == expected  # complete, and no tokens interleaved between the two


def test_unsupported_parameters_are_refused_clearly(local, ctx, log):
    out = generate(local, ctx, log, tools=[{"type": "function", "function": {"name": "f"}}]).outcome
    assert out.error.kind == "bad_request" and "offline model does not support tools" in out.error.message


@pytest.mark.parametrize("content, why", [(None, "file not found"), (b"not a gguf at all", "not a valid GGUF")])
def test_load_failure_is_one_sentence_and_other_providers_keep_working(tmp_path, ctx, log, provider,
                                                                      content, why):
    path = tmp_path / "broken.gguf"
    if content is not None:
        path.write_bytes(content)
    broken = Provider("local", model_path=str(path))
    with pytest.raises(PromptLabError) as info:
        broken.client()
    assert info.value.kind == "local_model_unavailable" and why in info.value.message
    stream = ChatStream(broken, ChatRequest("local/broken", QUESTION), ctx, log)
    list(stream)
    assert stream.outcome.error.kind == "local_model_unavailable"
    assert log.recent(1)[0].error_type == "local_model_unavailable"
    ok = ChatStream(provider, ChatRequest("gpt-4o-mini", QUESTION), ctx, log)
    list(ok)
    assert ok.outcome.status == "ok"


def test_context_plan_counts_with_the_models_tokenizer(model):
    conv = chat.new_conversation(persona_by_id("tutor"))
    for i in range(40):
        chat.add_user_message(conv, f"question {i} " + "about fractions and decimals " * 12)
        conv.messages.append(chat.Message("assistant", "an answer " * 40))
    chat.add_user_message(conv, "last one")
    plan = chat.plan_context(conv, "local/SmolLM2-135M-Instruct", context_window=2048, reply_budget=512,
                             provider_id="free", counter=model.count_prompt_tokens)
    assert plan.dropped_messages > 0 and plan.input_tokens == model.count_prompt_tokens(plan.messages)
    assert plan.input_tokens <= 2048 - 512 and plan.input_cost_usd == 0.0


def test_request_params_for_local():
    assert request_params(Provider("local"), "local/x", temperature=0.5, max_tokens=9) == {
        "temperature": 0.5, "max_tokens": 9}


def test_logit_bias_is_applied(model, local, ctx, log):
    # llama-cpp-python alone would drop it (and our token counter) when both are passed; the provider applies it.
    eos = model.llm.token_eos()
    out = generate(local, ctx, log, max_tokens=40, temperature=0.7, logit_bias={str(eos): -100}).outcome
    assert out.finish_reason == "length" and out.usage.output_tokens == 40


def test_playground_matrix_on_the_local_model(local, ctx, log):
    from core.calls import CallContext
    from core.playground import CellSpec, Draft, MatrixRun, Settings, prepare_cell
    draft = Draft(local_model.model_id_for(None), "Be brief.", "Name a fruit.",
                  settings=Settings(max_tokens=12, seed=5, response_format="json_object"))
    cells = [prepare_cell(CellSpec("v1", draft.model, t, 1), draft, local) for t in (0.0, 0.9)]
    run = MatrixRun(cells, CallContext("playground", tags=["run:local"]), log, concurrency=2).start()
    assert run.wait(120)
    assert [r.status for r in run.results] == ["ok", "ok"]
    assert all(r.schema_valid is not None and r.output_tokens and not r.tokens_estimated for r in run.results)
    assert {r.provider for r in log.recent(2)} == {"local"}

"""The offline model: llama.cpp's server (xllamacpp) in a child process, reached through the real `openai` SDK and
the same gate as every provider. Real model, short generations, fixed seeds: assertions are on structure, not
wording. The crash tests kill the child with SIGKILL by its PID and check that only the reply in progress fails."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx2
import pytest

from core.base.config import Settings, load_settings
from core.base.errors import PromptLabError
from core.calls.gate import CallCancelled, CallHooks, ChatRequest, ChatStream
from core.chat import conversation as chat
from core.chat.personas import persona_by_id
from core.llm import local_model, model_file
from core.llm.providers import Provider, local_provider, request_params, resolve_provider

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
MODEL_ID = "local/SmolLM2-135M-Instruct"
# The end-of-turn token of SmolLM2 (<|im_end|>): biased away, the model talks until max_tokens.
EOS = "2"


@pytest.fixture
def local() -> Provider:
    return local_provider(Settings())


@pytest.fixture
def runtime(local) -> local_model.LocalRuntime:
    return local.local_runtime()


def generate(local, ctx, log, messages=QUESTION, **params) -> ChatStream:
    params = {"max_tokens": 24, "temperature": 0, "seed": 1, **params}
    stream = ChatStream(local, ChatRequest(MODEL_ID, messages, params), ctx, log)
    list(stream)
    return stream


def child_metric(runtime: local_model.LocalRuntime, name: str) -> float:
    """A counter or gauge from the child's own Prometheus endpoint (e.g. tokens generated so far)."""
    child = runtime.child()
    text = httpx2.get(f"{child.base_url}/metrics", headers={"Authorization": f"Bearer {child.token}"}).text
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(f"llamacpp:{name} ")))


def predicted_tokens(runtime: local_model.LocalRuntime) -> float:
    """Tokens generated so far, once the child is idle (its counters are updated when a request ends)."""
    deadline = time.monotonic() + 10
    while child_metric(runtime, "requests_processing") and time.monotonic() < deadline:
        time.sleep(0.1)
    return child_metric(runtime, "tokens_predicted_total")


def test_default_provider_with_nothing_configured_is_local():
    provider = resolve_provider(Settings())
    assert provider.kind == "local" and provider.pricing_id == "free" and provider.masked_key == "not needed"
    assert resolve_provider(Settings(provider="local", openai_api_key="sk-x")).kind == "local"


def test_one_child_process_per_model_file_reached_over_loopback(local, runtime, ctx, log):
    assert local_model.runtime(None, Settings().offline_models_dir) is runtime
    generate(local, ctx, log)
    pid = runtime.pid()
    generate(local, ctx, log)
    assert runtime.pid() == pid and pid != os.getpid()  # the model is not in this process
    assert runtime.child().base_url.startswith("http://127.0.0.1:")
    # The child's port answers only with its per-child token: another local program (or web page) cannot use it.
    assert httpx2.get(f"{runtime.child().base_url}/v1/models").status_code == 401


def test_the_childs_sdk_clients_validate_strictly_at_every_timeout_and_share_one_pool(runtime, local, ctx, log):
    # Strict validation is what keeps this process's CPU per streamed token low (bench/local_model.py); the SDK's
    # own with_options() would silently drop it, so every timeout must get a strict client.
    short, long = runtime.client(5.0), runtime.client(local.timeout_s)
    assert short._strict_response_validation and long._strict_response_validation
    assert short.timeout == 5.0 and long.timeout == local.timeout_s and runtime.client(5.0) is short
    assert short._client is long._client  # one connection pool per child
    stream = generate(local, ctx, log, max_tokens=6)  # llama.cpp's chunks pass the strict check
    assert stream.outcome.status == "ok" and stream.outcome.usage.output_tokens == 6


def batched_client(server, sleeps: list[float], pause_s: float = 0.05):
    """The SDK over the loopback server through the child's batching transport, its pauses recorded."""
    import openai

    from tests.conftest import TEST_KEY

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    transport = local_model.BatchedReads(httpx2.HTTPTransport(), pause_s=pause_s, sleep=sleep)
    return openai.OpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0,
                         http_client=httpx2.Client(transport=transport))


def test_a_streamed_reply_is_read_in_batches_with_every_chunk_in_order(server):
    # One wake-up per token stole the model's cores (bench/local_model.py): the reader pauses after a read that
    # waited, so tokens that arrive meanwhile are taken together, and nothing is lost or reordered.
    from tests.loopback_server import Script

    def texts(client) -> list[str]:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True,
                                                stream_options={"include_usage": True})
        return [c.choices[0].delta.content or "" if c.choices else f"usage {c.usage.total_tokens}" for c in stream]

    server.push(Script(chunks=40, chunk_delay=0.01))
    sleeps: list[float] = []
    batched = texts(batched_client(server, sleeps))
    server.push(Script(chunks=40, chunk_delay=0.01))
    assert batched == texts(batched_client(server, [], pause_s=0))  # the same chunks, in the same order
    assert len(batched) >= 42 and batched[-1].startswith("usage ")
    # 40 chunks 10 ms apart, read after 50 ms pauses: about one pause per five chunks, not one wake-up per chunk.
    assert 1 <= len(sleeps) <= 20 and set(sleeps) == {0.05}


def test_a_json_reply_is_not_paused(server):
    sleeps: list[float] = []
    reply = batched_client(server, sleeps).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert reply.choices[0].message.content and sleeps == []


def test_the_offline_model_is_reached_when_a_proxy_is_configured(runtime, monkeypatch):
    # A company proxy in HTTP_PROXY / ALL_PROXY (without 127.0.0.1 in NO_PROXY) must not swallow loopback calls:
    # the SDK's default client would send them to the proxy, and the offline model would look dead.
    child = runtime.child()
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with local_model._child_http_client() as http:
        models = http.get(f"{child.base_url}/v1/models", headers={"Authorization": f"Bearer {child.token}"})
    assert models.status_code == 200 and MODEL_ID in models.text


def test_context_window_comes_from_gguf_metadata(runtime):
    assert runtime.context_window() == 8192  # SmolLM2-135M's llama.context_length


def test_a_models_context_window_is_one_provider_call(local, tmp_path):
    """What the pages size a conversation by: the offline model's from its file, another's from genai-prices,
    else the fallback (also while the offline model's file is not here yet)."""
    assert local.context_window(MODEL_ID, 4096) == 8192
    assert Provider("local", models_dir=str(tmp_path)).context_window(MODEL_ID, 4096) == 4096  # not downloaded
    assert Provider("openai", api_key="sk-x").context_window("gpt-4o", 4096) == 128_000
    assert Provider("openai", api_key="sk-x").context_window("no-such-model", 4096) == 4096
    assert Provider("compatible", "http://127.0.0.1:9/v1").context_window("gpt-4o", 4096) == 4096  # no price list


def test_stream_is_logged_with_the_models_own_token_counts(runtime, local, ctx, log):
    stream = generate(local, ctx, log)
    out = stream.outcome
    assert out.status == "ok" and out.text and out.finish_reason in ("stop", "length")
    assert not out.usage.estimated
    # Prompt tokens exactly as the model's template and tokenizer count them (what the context plan uses).
    assert out.usage.input_tokens == runtime.count_prompt_tokens(QUESTION) > 20
    assert 1 <= out.usage.output_tokens <= 24
    rec = log.recent(1)[0]
    assert rec.provider == "local" and rec.model == MODEL_ID and rec.cost_usd == 0.0
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


def test_logit_bias_is_applied(local, ctx, log):
    out = generate(local, ctx, log, max_tokens=40, temperature=0.7, logit_bias={EOS: -100}).outcome
    assert out.finish_reason == "length" and out.usage.output_tokens == 40


def test_stop_mid_stream_cancels_the_generation_in_the_child(runtime, local, ctx, log):
    before = predicted_tokens(runtime)
    stream = ChatStream(local, ChatRequest(MODEL_ID, QUESTION, {"max_tokens": 2000, "temperature": 0.8, "seed": 3,
                                                                "logit_bias": {EOS: -100}}), ctx, log)
    first = [next(stream) for _ in range(3)]
    stream.close()
    out = stream.outcome
    assert out.status == "cancelled" and out.text == "".join(first)
    assert not out.usage.estimated and 3 <= out.usage.output_tokens < 2000  # counted by the model's tokenizer
    assert out.usage.input_tokens == runtime.count_prompt_tokens(QUESTION)
    # The child stopped generating: left alone it would have produced 2000 tokens.
    assert predicted_tokens(runtime) - before < 200
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


def test_a_second_request_queues_says_so_and_can_leave_the_queue(runtime, local, ctx, log):
    long = ChatStream(local, ChatRequest(MODEL_ID, QUESTION, {"max_tokens": 400, "logit_bias": {EOS: -100},
                                                              "seed": 1}), ctx, log)
    next(long)  # the first request holds the model
    waits: list[tuple[float, int]] = []

    def leave_after_two_updates(waited_s: float, ahead: int) -> None:
        waits.append((waited_s, ahead))
        if len(waits) >= 2:
            raise CallCancelled()  # what the Playground's Cancel (or the page's Stop) does

    before = predicted_tokens(runtime)
    queued = ChatStream(local, ChatRequest(MODEL_ID, QUESTION, {"max_tokens": 50}), ctx, log,
                        hooks=CallHooks(on_queue=leave_after_two_updates))
    assert list(queued) == []
    assert queued.outcome.status == "cancelled" and queued.outcome.usage.output_tokens == 0
    assert [ahead for _, ahead in waits] == [1, 1]
    assert "Waiting for the offline model" in local_model.queue_sentence(*waits[-1])
    rest = "".join(long)
    assert long.outcome.status == "ok" and long.outcome.usage.output_tokens == 400 and rest
    # Only the first request generated anything: the one that left the queue never reached the model.
    assert predicted_tokens(runtime) - before <= 400
    statuses = {r.request_id: r.status for r in log.recent(5)}
    assert statuses[queued.request_id] == "cancelled" and statuses[long.request_id] == "ok"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGILL])
def test_a_crash_mid_reply_ends_that_reply_with_one_sentence_and_the_next_gets_a_fresh_child(runtime, local, ctx,
                                                                                           log, sig):
    stream = ChatStream(local, ChatRequest(MODEL_ID, QUESTION, {"max_tokens": 2000, "logit_bias": {EOS: -100}}),
                        ctx, log)
    shown = [next(stream) for _ in range(5)]
    pid = runtime.pid()
    os.kill(pid, sig)
    rest = list(stream)
    out = stream.outcome
    assert out.status == "error" and out.error.kind == "local_model_crashed"
    assert out.error.message == "The offline model stopped unexpectedly — try again."
    assert out.text.startswith("".join(shown)) and out.text == "".join(shown + rest)  # nothing shown is lost
    rec = log.recent(1)[0]
    assert rec.status == "error" and rec.error_type == "local_model_crashed" and sig.name in rec.error_message
    after = generate(local, ctx, log)
    assert after.outcome.status == "ok" and runtime.pid() != pid


def test_a_child_killed_between_requests_is_restarted_on_the_next(runtime, local, ctx, log):
    generate(local, ctx, log)
    pid = runtime.pid()
    os.kill(pid, signal.SIGKILL)
    assert runtime.crash(wait_s=5).kind == "local_model_crashed"  # it is gone before the next request
    assert generate(local, ctx, log).outcome.status == "ok" and runtime.pid() != pid


def test_the_child_never_outlives_the_server_that_started_it(tmp_path):
    """kill -9 of the Streamlit server: its offline-model child sees its stdin close and exits."""
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from core.base.config import load_settings\nfrom core.llm.providers import local_provider\n"
              "r = local_provider(load_settings()).local_runtime(); r.child(); print(r.pid(), flush=True)\n"
              "import time; time.sleep(600)\n") % os.getcwd()
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child_pid}") and "Z" not in _state(child_pid):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child_pid}") or "Z" in _state(child_pid)


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.parametrize("content, why", [(None, "file not found"), (b"not a gguf at all", "could not be loaded")])
def test_load_failure_is_one_sentence_and_other_providers_keep_working(tmp_path, ctx, log, provider,
                                                                      content, why):
    path = tmp_path / "broken.gguf"
    if content is not None:
        path.write_bytes(content)
    broken = Provider("local", model_path=str(path), models_dir=str(tmp_path))
    with pytest.raises(PromptLabError) as info:
        broken.client()
    assert info.value.kind == "local_model_unavailable" and why in info.value.message
    assert "Traceback" not in info.value.message and len(info.value.message.splitlines()) == 1
    stream = ChatStream(broken, ChatRequest("local/broken", QUESTION), ctx, log)
    list(stream)
    assert stream.outcome.error.kind == "local_model_unavailable"
    assert log.recent(1)[0].error_type == "local_model_unavailable"
    ok = ChatStream(provider, ChatRequest("gpt-4o-mini", QUESTION), ctx, log)
    list(ok)
    assert ok.outcome.status == "ok"


def test_another_gguf_from_promptlab_local_model_gets_its_own_child_and_id(tmp_path, runtime, ctx, log, monkeypatch):
    other = tmp_path / "my-tiny-model.gguf"
    os.link(model_file.present(Settings().offline_models_dir) or model_file.ensure_default_model(
        Settings().offline_models_dir), other)
    monkeypatch.setenv("PROMPTLAB_LOCAL_MODEL", str(other))
    provider = resolve_provider(load_settings({}))
    assert provider.kind == "local" and provider.label == "Offline model · my-tiny-model"
    stream = ChatStream(provider, ChatRequest("local/my-tiny-model", QUESTION, {"max_tokens": 8}), ctx, log)
    list(stream)
    try:
        assert stream.outcome.status == "ok" and stream.outcome.model == "local/my-tiny-model"
        assert provider.local_runtime() is not runtime and provider.local_runtime().pid() != runtime.pid()
    finally:
        provider.local_runtime().stop()


def test_context_plan_counts_with_the_models_tokenizer(runtime):
    conv = chat.new_conversation(persona_by_id("tutor"))
    for i in range(40):
        chat.add_user_message(conv, f"question {i} " + "about fractions and decimals " * 12)
        conv.messages.append(chat.Message(role="assistant", content="an answer " * 40))
    chat.add_user_message(conv, "last one")
    plan = chat.plan_context(conv, MODEL_ID, context_window=2048, reply_budget=512,
                             provider_id="free", counter=runtime.count_prompt_tokens)
    assert plan.dropped_messages > 0 and plan.input_tokens == runtime.count_prompt_tokens(plan.messages)
    assert plan.input_tokens <= 2048 - 512 and plan.input_cost_usd == 0.0


def test_request_params_for_local():
    assert request_params(Provider("local"), "local/x", temperature=0.5, max_tokens=9) == {
        "temperature": 0.5, "max_tokens": 9}


def test_playground_matrix_on_the_local_model_with_a_json_schema(local, ctx, log):
    from core.calls.gate import CallContext
    from core.playground.draft import Draft, RunSettings
    from core.playground.matrix import CellSpec, MatrixRun, prepare_cell
    schema = {"type": "object", "properties": {"fruit": {"type": "string"}}, "required": ["fruit"],
              "additionalProperties": False}
    draft = Draft(MODEL_ID, "Be brief.", "Name a fruit.",
                  settings=RunSettings(max_tokens=40, seed=5, response_format="json_schema", json_schema=schema))
    cells = [prepare_cell(CellSpec("v1", draft.model, t, 1), draft, local) for t in (0.0, 0.9)]
    run = MatrixRun(cells, CallContext("playground", tags=["run:local"]), log, concurrency=2).start()
    assert run.wait(120)
    assert [r.status for r in run.results] == ["ok", "ok"]
    # llama.cpp turns the schema into a grammar: the output is valid JSON of that shape.
    assert all(r.schema_valid is True and r.metrics.output_tokens and not r.metrics.tokens_estimated
               for r in run.results)
    assert {r.provider for r in log.recent(2)} == {"local"}


def test_prompt_counts_are_remembered_so_a_rerun_does_not_ask_the_model_again(runtime):
    messages = [{"role": "user", "content": "How many tokens am I, the first time and the second?"}]
    first = runtime.count_prompt_tokens(messages)
    pid = runtime.pid()
    runtime.stop()  # with the model gone, only a remembered count can answer without starting it again
    assert runtime.count_prompt_tokens(messages) == first and not runtime.running()
    assert runtime.count_prompt_tokens([{"role": "user", "content": "new"}]) > 0 and runtime.pid() != pid

"""core.chat.conversation, core.chat.store, core.base.config, core.llm.providers: pure logic and the real SQLite store."""
import json

import pytest

from core.base.config import Settings, load_settings, settings_table_markdown
from core.base.errors import PromptLabError, scrub_secrets
from core.calls.gate import CallOutcome
from core.chat import conversation as chat
from core.chat.personas import BUILT_IN, persona_by_id
from core.chat.store import ConversationStore
from core.llm.pricing import TokenUsage
from core.llm.providers import Provider, chat_models, mask_key, request_params, resolve_provider
from core.llm.tokens import count_messages


def conversation_with(n_turns: int, words: int = 20) -> chat.Conversation:
    conv = chat.new_conversation(persona_by_id("tutor"))
    for i in range(n_turns):
        chat.add_user_message(conv, f"question {i} " + "word " * words)
        conv.messages.append(chat.Message(role="assistant", content=f"answer {i} " + "word " * words))
    chat.add_user_message(conv, "latest question")
    return conv


def test_plan_keeps_everything_when_it_fits():
    conv = conversation_with(3)
    plan = chat.plan_context(conv, "gpt-4o-mini", context_window=128_000, reply_budget=1000, provider_id="openai")
    assert plan.dropped_messages == 0 and len(plan.messages) == 1 + 7
    assert plan.messages[0] == {"role": "system", "content": chat.system_message(conv)}
    assert plan.input_tokens == count_messages(plan.messages, "gpt-4o-mini")  # incremental count is exact
    assert plan.input_cost_usd and plan.input_cost_usd > 0


def test_plan_drops_oldest_turns_first_within_budget():
    conv = conversation_with(10, words=50)
    plan = chat.plan_context(conv, "gpt-4o-mini", context_window=600, reply_budget=200)
    assert plan.dropped_messages > 0 and not plan.over_budget
    assert plan.input_tokens <= 400 and plan.input_tokens == count_messages(plan.messages, "gpt-4o-mini")
    assert plan.messages[0]["role"] == "system" and plan.messages[-1]["content"] == "latest question"
    assert plan.messages[1]["role"] == "user"  # never starts with an orphan reply
    kept = [m["content"] for m in plan.messages[1:]]
    all_contents = [m.content for m in conv.messages]
    assert kept == all_contents[-len(kept):]  # a contiguous, newest suffix


def test_plan_always_sends_the_newest_user_message_even_if_too_big():
    conv = chat.new_conversation(persona_by_id("assistant"))
    chat.add_user_message(conv, "word " * 500)
    plan = chat.plan_context(conv, "gpt-4o-mini", context_window=300, reply_budget=100)
    assert plan.messages[-1]["role"] == "user" and plan.over_budget


def test_language_instruction_joins_system_message():
    conv = chat.new_conversation(persona_by_id("returns_agent"), language="Español")
    assert "30 days" in chat.system_message(conv) and chat.system_message(conv).endswith(
        "Always reply in Spanish, whatever language the user writes in.")
    conv.language = "Auto"
    assert "Always reply" not in chat.system_message(conv)


def test_builtin_personas_cover_the_seed_use_cases():
    ids = {p.id for p in BUILT_IN}
    assert {"returns_agent", "tutor", "kb_assistant"} <= ids


def outcome(status="ok", text="hello", error=None):
    return CallOutcome(request_id="req_1", text=text, status=status, finish_reason="stop" if status == "ok" else None,
                       usage=TokenUsage(10, 2), cost_usd=0.001, latency_ms=120.0, ttft_ms=30.0, model="gpt-4o-mini",
                       error=error)


def test_record_reply_statuses():
    conv = conversation_with(0)
    assert chat.record_reply(conv, outcome()).status == "ok"
    assert chat.record_reply(conv, outcome("cancelled", "par")).status == "stopped"
    cut = PromptLabError("stream_cut", "cut")
    assert chat.record_reply(conv, outcome("error", "part", cut)).status == "cut"
    assert chat.record_reply(conv, outcome("error", "", PromptLabError("server_error", "x"))) is None
    assert chat.record_reply(conv, None) is None


def test_regenerate_and_edit_helpers():
    conv = conversation_with(2)
    conv.messages.append(chat.Message(role="assistant", content="reply to latest"))
    chat.drop_last_reply(conv)
    assert chat.awaiting_reply(conv) and conv.messages[-1].content == "latest question"
    chat.edit_last_user_message(conv, "edited")
    assert conv.messages[-1].content == "edited" and len(conv.messages) == 5
    conv.messages.append(chat.Message(role="assistant", content="x"))
    chat.edit_last_user_message(conv, "edited again")
    assert conv.messages[-1].content == "edited again" and chat.awaiting_reply(conv)


def test_title_comes_from_first_message():
    conv = chat.new_conversation(persona_by_id("assistant"))
    chat.add_user_message(conv, "How do I return a pair of shoes that do not fit and get a refund quickly?")
    chat.add_user_message(conv, "second")
    assert conv.title.startswith("How do I return") and conv.title.endswith("…") and len(conv.title) <= 48


def test_totals_and_captions():
    conv = conversation_with(0)
    chat.record_reply(conv, outcome())
    unpriced = outcome()
    unpriced.cost_usd = None
    chat.record_reply(conv, unpriced)
    t = chat.totals(conv)
    assert t.replies == 2 and t.unpriced == 1 and t.usage.input_tokens == 20 and t.cost_usd == pytest.approx(0.001)
    assert "+ 1 unpriced" in chat.totals_caption(t)
    assert "10 in / 2 out tokens" in chat.turn_caption(conv.messages[-1])
    assert "unpriced" in chat.turn_caption(conv.messages[-1])


def test_exports_round_trip():
    conv = conversation_with(1)
    chat.record_reply(conv, outcome("cancelled", "partial"))
    data = json.loads(chat.export_json(conv))
    assert data["format"] == "promptlab.conversation.v1" and data["messages"][-1]["status"] == "stopped"
    assert chat.Conversation.from_dict(data).messages[-1].content == "partial"
    md = chat.export_markdown(conv)
    assert "## System" in md and "## Assistant (gpt-4o-mini) — stopped" in md and "latest question" in md


def test_conversation_store_round_trip(db_url):
    store = ConversationStore(db_url)
    conv = conversation_with(1)
    store.save(conv, "alice")
    conv.messages.append(chat.Message(role="assistant", content="more"))
    store.save(conv, "alice")
    other = conversation_with(0)
    store.save(other, "bob")
    assert [s.id for s in store.list("alice")] == [conv.id]
    loaded = store.load(conv.id)
    assert loaded == conv
    store.delete(conv.id)
    assert store.load(conv.id) is None and store.list("alice") == []


def test_settings_resolution_order():
    env = {"OPENAI_API_KEY": "sk-from-env-0000", "PROMPTLAB_TIMEOUT_S": "12.5"}
    secrets = {"OPENAI_API_KEY": "sk-from-secrets", "OPENAI_BASE_URL": "http://localhost:11434/v1",
               "PROMPTLAB_TIMEOUT_S": "99"}
    s = load_settings(secrets, env)
    assert s.openai_api_key == "sk-from-env-0000"  # environment wins
    assert s.openai_base_url == "http://localhost:11434/v1"  # then secrets
    assert s.timeout_s == 12.5 and s.max_retries == 2  # then defaults
    assert "sk-from" not in repr(s)


def test_provider_resolution():
    assert resolve_provider(Settings(openai_api_key="k")).kind == "openai"
    assert resolve_provider(Settings(openai_base_url="http://localhost:11434/v1")).kind == "compatible"
    assert resolve_provider(Settings(openai_base_url="https://api.openai.com/v1", openai_api_key="k")).kind == "openai"
    azure = resolve_provider(Settings(azure_api_key="a", azure_endpoint="https://x.openai.azure.com"))
    assert azure.kind == "azure" and azure.api_version == "2024-10-21" and azure.pricing_id == "azure"
    assert type(azure.client()).__name__ == "AzureOpenAI"
    assert resolve_provider(Settings(provider="compatible", openai_base_url="http://h/v1")).client().api_key


def test_request_params_follow_provider_and_model():
    openai_p, compat = Provider("openai", api_key="k"), Provider("compatible", "http://h/v1")
    assert request_params(openai_p, "gpt-4o", temperature=0.2, max_tokens=10) == {
        "temperature": 0.2, "max_completion_tokens": 10}
    assert request_params(openai_p, "o3-mini", temperature=0.2, max_tokens=10) == {"max_completion_tokens": 10}
    assert request_params(compat, "llama3", temperature=0.2, max_tokens=10) == {"temperature": 0.2, "max_tokens": 10}


def test_key_masking_and_scrubbing():
    assert mask_key("sk-proj-abcdefghijklmnopqrstuvwxyz1234") == "sk-…1234"
    assert mask_key(None) == "not set" and mask_key("short") == "set (5 characters)"  # never half a key
    assert "abcdef" not in scrub_secrets("Incorrect API key provided: sk-proj-abcdefghijk.")
    assert scrub_secrets("token Bearer abcdefghijklmnop", ()) == "token [key removed]"
    assert scrub_secrets("my key zzzz-secret-zzzz", ["zzzz-secret-zzzz"]) == "my key [key removed]"


def test_chat_models_filter():
    ids = ["gpt-4o", "text-embedding-3-small", "whisper-1", "gpt-image-1", "o3-mini", "tts-1", "llama3:8b"]
    assert chat_models(ids) == ["gpt-4o", "llama3:8b", "o3-mini"]


def test_readme_documents_every_setting():
    readme = open("README.md", encoding="utf-8").read()
    for line in settings_table_markdown().splitlines()[2:]:
        assert line.split("|")[1].strip() in readme


def test_exports_are_named_by_title_and_day():
    conv = chat.new_conversation(persona_by_id("assistant"))
    chat.add_user_message(conv, "Refund window for shoes?")
    assert chat.export_name(conv, "md") == f"refund-window-for-shoes-{conv.created_at[:10]}.md"

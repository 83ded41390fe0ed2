"""AppTest of the Settings page: masked key, connection test, per-session provider switch."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.formats.columns import label  # tables show human headers
from tests.conftest import TEST_KEY

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def settings_page(app_env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    return at


def apply(at: AppTest) -> None:
    next(b for b in at.button if b.label == "Apply").click().run()


def page_text(at: AppTest) -> str:
    return str(list(at.main)) + str(list(at.sidebar))


def test_shows_active_provider_with_masked_key(settings_page):
    metrics = {m.label: m.value for m in settings_page.metric}
    assert metrics["Provider"] == "OpenAI-compatible server"
    assert metrics["API key"] == "sk-…6789"
    assert TEST_KEY not in page_text(settings_page)


def test_connection_test_lists_models_and_is_logged(settings_page, app_env):
    next(b for b in settings_page.button if "Test connection" in b.label).click().run()
    assert "8 models listed" in settings_page.success[0].value
    assert "gpt-4o-mini" in settings_page.dataframe[0].value[label("model")].tolist()
    tags = [r.tags for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10)]
    assert ["test-connection"] in tags


def test_switching_to_a_bad_key_for_the_session_shows_clear_error(settings_page):
    settings_page.text_input[1].input("sk-this-key-is-wrong-000000000")
    apply(settings_page)
    assert "uses the provider set below" in settings_page.info[0].value
    assert {m.label: m.value for m in settings_page.metric}["API key"] == "sk-…0000"
    next(b for b in settings_page.button if "Test connection" in b.label).click().run()
    assert "rejected (401)" in settings_page.error[0].value
    assert "sk-this-key-is-wrong" not in page_text(settings_page)
    next(b for b in settings_page.button if "Reset" in b.label).click().run()
    assert {m.label: m.value for m in settings_page.metric}["API key"] == "sk-…6789"


def test_switch_base_url_to_unreachable_server(settings_page):
    settings_page.text_input[0].input("http://127.0.0.1:9/v1")
    apply(settings_page)
    next(b for b in settings_page.button if "Test connection" in b.label).click().run()
    assert "Could not connect to 127.0.0.1:9" in settings_page.error[0].value


def test_switch_to_offline_model_for_the_session(settings_page):
    settings_page.selectbox[0].set_value("local")
    apply(settings_page)
    metrics = {m.label: m.value for m in settings_page.metric}
    assert metrics["Provider"] == "Offline model" and metrics["API key"] == "not needed"
    next(b for b in settings_page.button if "Test connection" in b.label).click().run()
    assert "1 models listed" in settings_page.success[0].value
    assert settings_page.dataframe[0].value[label("model")].tolist() == ["local/SmolLM2-135M-Instruct"]


def test_local_model_stays_selectable_beside_a_keyed_provider(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    options = at.selectbox(key="chat_model").options
    assert "gpt-4o-mini" in options and "local/SmolLM2-135M-Instruct" in options
    at.selectbox(key="chat_model").set_value("local/SmolLM2-135M-Instruct").run()
    at.number_input(key="chat_max_tokens").set_value(16).run()
    at.chat_input[0].set_value("hi").run()
    assert not at.exception
    assert "local (free)" in at.chat_message[1].caption[0].value
    rec = [r for r in CallLog(app_env["PROMPTLAB_DB_URL"]).recent(10) if r.page == "chat"][0]
    assert rec.provider == "local"


def test_monthly_budget_is_saved_in_the_database(settings_page, app_env):
    from core.analytics.dashboard import monthly_budget
    settings_page.number_input(key="monthly_budget").set_value(250.0).run()
    next(b for b in settings_page.button if b.label == "Save budget").click().run()
    assert "Budget saved: $250.00" in settings_page.success[0].value
    assert monthly_budget(CallLog(app_env["PROMPTLAB_DB_URL"])) == 250.0


def test_openai_models_on_a_proxy_without_a_price_get_the_one_sentence_hint(server, app_env):
    """Issue 28 row 8: behind a custom OPENAI_BASE_URL, OpenAI models were "unpriced" with nothing suggesting
    PROMPTLAB_PROVIDER=openai. A real call through the proxy (the loopback server reports the alias it was asked
    for, so PromptLab cannot tell it is OpenAI) leaves it unpriced, and Settings says how to price it."""
    from core.base.config import load_settings
    from core.calls.gate import CallContext, ChatRequest, ChatStream
    from core.llm.providers import resolve_provider

    provider = resolve_provider(load_settings())
    assert provider.kind == "compatible"
    log = CallLog(app_env["PROMPTLAB_DB_URL"])
    list(ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}], {}),
                    CallContext("chat", "local"), log))
    assert log.recent(1)[0].cost_usd is None
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    hints = [i.value for i in at.info if "PROMPTLAB_PROVIDER=openai" in i.value]
    assert len(hints) == 1 and "gpt-4o-mini" in hints[0]


def test_the_prices_section_shows_audio_units_and_unpriced_audio_models(server, app_env):
    """Voice calls a genai-prices list lacks are listed as unpriced; a custom audio price shows its unit columns."""
    from core.calls.gate import CallContext
    from core.chat.voice import check_recording, transcribe
    from core.llm import custom_prices
    from core.llm.providers import Provider
    from tests.conftest import ADMIN
    from tests.loopback_server import tiny_wav

    log = CallLog(app_env["PROMPTLAB_DB_URL"])
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    transcribe(provider, check_recording(tiny_wav(1.0)), CallContext("chat", "local"), log, model="whisper-x")
    custom_prices.save(log.engine, [custom_prices.CustomPrice.checked(
        {"provider": "compatible", "model": "kokoro", "per_mchars": 15.0})], actor=ADMIN)
    try:
        at = AppTest.from_file(APP, default_timeout=30).run()
        at.switch_page("pages/settings.py").run()
        assert not at.exception
        assert any("whisper-x" in w.value for w in at.warning)  # unpriced, said so — never a silent $0
        [editor] = [e for e in at.dataframe if "per_mchars" in e.value.columns]
        row = editor.value.iloc[0]
        assert (row["model"], row["per_mchars"]) == ("kokoro", 15.0)
        assert {"per_audio_minute", "audio_input_per_mtok"} <= set(editor.value.columns)
    finally:
        custom_prices.install([])
        custom_prices._loaded.clear()

"""The provider chosen in Settings is kept in the database per user (issue 27 point 4): a new session — a reload, a
restart, another replica on the same database — gets it back; a typed key rests only encrypted with the server's
secret, and without one it is not stored and the page says why."""
from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.llm import saved_choice
from core.llm.provider_choice import ProviderForm
from tests.pages.test_settings_roles import named, settings_as  # noqa: F401 (fixture)

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TYPED = "sk-typed-PERSISTED-key-4242424242"


def settings_session() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    return at


def choose(at: AppTest, base_url: str, key: str) -> None:
    next(t for t in at.text_input if t.label == "Base URL / Azure endpoint").input(base_url)
    next(t for t in at.text_input if t.label == "API key").input(key)
    next(b for b in at.button if b.label == "Apply").click().run()
    assert not at.exception


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def page_text(at: AppTest) -> str:
    return " ".join([str(list(at.main)), str(list(at.sidebar))] + [e.value for e in [*at.caption, *at.info]])


def raw_bytes(db_url: str) -> bytes:
    """Every byte the SQLite database holds on disk (the file and its write-ahead log)."""
    path = db_url.removeprefix("sqlite:///")
    return b"".join(Path(p).read_bytes() for p in glob.glob(path + "*"))


def stored_rows(db_url: str) -> list[str]:
    with CallLog(db_url).engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT value FROM user_settings"))]


@pytest.fixture
def typed_key_server(server):
    server.api_key = TYPED  # only the typed key opens it
    return server


def test_the_choice_comes_back_in_a_new_session_and_the_key_rests_encrypted(app_env, typed_key_server, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_SECRET_KEY", "a server secret for the tests 7f3a")
    elsewhere = typed_key_server.base_url.replace("127.0.0.1", "localhost")  # another endpoint, same loopback server
    choose(settings_session(), elsewhere, TYPED)
    again = settings_session()  # a new session: a reload, a restart, or another replica on this database
    assert metrics(again)["API key"] == "sk-…4242"
    assert "localhost" in page_text(again) and "uses the provider set below" in again.info[0].value
    rows = stored_rows(app_env["PROMPTLAB_DB_URL"])
    assert len(rows) == 1 and "localhost" in rows[0] and TYPED not in rows[0]
    assert TYPED.encode() not in raw_bytes(app_env["PROMPTLAB_DB_URL"])
    next(b for b in again.button if "Test connection" in b.label).click().run()
    assert "8 models listed" in again.success[0].value  # the restored key works: the server takes only it
    next(b for b in again.button if "Reset" in b.label).click().run()
    assert stored_rows(app_env["PROMPTLAB_DB_URL"]) == [] and metrics(settings_session())["API key"] == "sk-…6789"


def test_without_a_server_secret_the_key_is_not_stored_and_the_page_says_why(app_env, typed_key_server,
                                                                             monkeypatch):
    monkeypatch.delenv("PROMPTLAB_SECRET_KEY", raising=False)
    first = settings_session()
    choose(first, typed_key_server.base_url.replace("127.0.0.1", "localhost"), TYPED)
    assert any("PROMPTLAB_SECRET_KEY" in i.value for i in first.info)  # said at once, with the reason
    assert metrics(first)["API key"] == "sk-…4242"  # this session goes on with the typed key
    row = json.loads(stored_rows(app_env["PROMPTLAB_DB_URL"])[0])
    assert row["key"] is None and row["key_typed"] and "localhost" in row["base_url"]
    assert TYPED.encode() not in raw_bytes(app_env["PROMPTLAB_DB_URL"])
    again = settings_session()  # another replica (no cookie reaches it): the key is asked for again, saying why
    assert metrics(again)["API key"] == "sk-…6789"
    assert "PROMPTLAB_SECRET_KEY" in page_text(again) and TYPED not in page_text(again)


def test_a_restored_choice_is_checked_again_against_what_the_user_may_choose_now(named, server):  # noqa: F811
    """bob may not point at a loopback address: a row saying he did (forged, or from before the rule) is refused
    when it comes back, and his session uses the configured provider."""
    saved_choice.save_choice(CallLog(named["PROMPTLAB_DB_URL"]).engine, "bob",
                             ProviderForm("compatible", "http://127.0.0.1:9/v1", "sk-bobs-own-key-0000", None))
    at = settings_as("bob")
    assert metrics(at)["API key"] == "sk-…6789" and "127.0.0.1:9" not in str(list(at.metric))
    assert "⚠️" in " ".join(c.value for c in at.sidebar.caption)


def test_the_key_is_bound_to_its_user_and_to_the_secret(db_url, monkeypatch):
    engine = CallLog(db_url).engine
    monkeypatch.setenv("PROMPTLAB_SECRET_KEY", "secret one")
    assert saved_choice.save_choice(engine, "ana", ProviderForm("openai", None, TYPED, None))
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT value FROM user_settings WHERE user_id = 'ana'")).scalar_one()
    assert TYPED not in raw
    assert saved_choice.load_choice(engine, "ana").form.api_key == TYPED
    with engine.begin() as conn:  # ana's row copied to ben: it does not open for him
        conn.execute(sa.text("INSERT INTO user_settings SELECT 'ben', key, value, updated_at FROM user_settings"))
    ben = saved_choice.load_choice(engine, "ben")
    assert ben.form.api_key is None and ben.key_missing
    monkeypatch.setenv("PROMPTLAB_SECRET_KEY", "secret two")  # the secret changed: the key is asked for again
    assert saved_choice.load_choice(engine, "ana").key_missing
    assert saved_choice.load_choice(engine, "nobody") is None

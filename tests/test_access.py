"""The access gate: password hash only, identity in the log, failed attempts rate-limited, every page gated."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import AttemptLimiter, hash_password, verify_password
from core.calllog import CallLog

APP = str(Path(__file__).resolve().parent.parent / "app.py")
HASH = hash_password("correct horse", iterations=1000)


def test_hashing():
    stored = hash_password("s3cret", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "s3cret" not in stored
    assert verify_password("s3cret", stored) and not verify_password("nope", stored)
    assert not verify_password("s3cret", "garbage") and not verify_password("s3cret", "md5$1$a$b")


def test_attempt_limiter_windows():
    t = [0.0]
    limiter = AttemptLimiter(per_key=(3, 60), overall=(5, 60), clock=lambda: t[0])
    for _ in range(3):
        limiter.failed("a")
    assert limiter.wait_s("a") == pytest.approx(60) and limiter.wait_s("b") == 0
    limiter.failed("b")
    limiter.failed("c")
    assert limiter.wait_s("d") == pytest.approx(60)  # five failures across sessions lock everyone out
    t[0] = 61
    assert limiter.wait_s("a") == 0


@pytest.fixture
def gated(app_env, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_PASSWORD_HASH", HASH)
    import core.access
    monkeypatch.setattr(core.access, "LIMITER", AttemptLimiter())  # a fresh window per test, not the SDK
    import pages._access
    monkeypatch.setattr(pages._access, "LIMITER", core.access.LIMITER)
    return app_env


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").set_value(name)
    at.text_input(key="login_password").set_value(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    return at


def test_every_page_requires_sign_in_and_identity_is_logged(gated, server):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.chat_input and [t.value for t in at.title] == ["🧪 PromptLab"]
    at.switch_page("pages/settings.py").run()
    assert not at.metric and at.text_input(key="login_password")  # the gate, not the settings page
    sign_in(at, "ana", "correct horse")
    assert [t.value for t in at.title] == ["⚙️ Settings"]  # signed in: the page asked for
    at.switch_page("pages/chat.py").run()
    at.chat_input[0].set_value("hello").run()
    rec = [r for r in CallLog(gated["PROMPTLAB_DB_URL"]).recent(5) if r.page == "chat"][0]
    assert rec.user == "ana"


def test_failed_attempts_are_rate_limited(gated):
    at = AppTest.from_file(APP, default_timeout=60).run()
    for _ in range(5):
        sign_in(at, "eve", "guess")
        assert "Wrong name or password" in at.error[0].value or "Too many" in at.error[0].value
    sign_in(at, "eve", "correct horse")  # even the right password waits now
    assert "Too many failed attempts" in at.error[0].value and not at.chat_input


def test_openid_connect_gate_when_auth_is_configured(app_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "promptlab", "client_secret": "s",
                          "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration"}
    at.run()
    assert [b.label for b in at.button] == ["Log in"] and not at.chat_input  # st.login guards every page

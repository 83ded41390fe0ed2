"""The access gate: password hash only, identity in the log, failed attempts rate-limited, every page gated."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.calls.log import CallLog
from core.policy.access import AttemptLimiter, Identity, hash_password, parse_users, verify_password

APP = str(Path(__file__).resolve().parents[2] / "app.py")
HASH = hash_password("correct horse", iterations=1000)


def test_hashing():
    stored = hash_password("s3cret", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "s3cret" not in stored
    assert verify_password("s3cret", stored) and not verify_password("nope", stored)
    assert not verify_password("s3cret", "garbage") and not verify_password("s3cret", "md5$1$a$b")


def test_attempt_limits_are_per_name_and_address_never_global():
    t = [0.0]
    limiter = AttemptLimiter(per_user=(3, 60), per_address=(5, 60), clock=lambda: t[0])
    for _ in range(3):
        limiter.failed("ana", "10.0.0.1")
    assert limiter.wait_s("ana", "10.0.0.1") == pytest.approx(60)  # that name from that address waits
    assert limiter.wait_s("ANA ", "10.0.0.2") == 0  # ana from her own machine does not
    assert limiter.wait_s("ben", "10.0.0.1") == 0
    for i in range(2):
        limiter.failed(f"x{i}", "10.0.0.1")
    assert limiter.wait_s("ben", "10.0.0.1") == pytest.approx(60)  # that address guessed too many names
    for i in range(52):  # 52 failures from 10 other addresses (the probe's attack) …
        limiter.failed(f"u{i}", f"10.0.1.{i % 10}")
    assert limiter.wait_s("ana", "10.0.9.9") == 0  # … do not lock out anyone else
    t[0] = 61
    assert limiter.wait_s("ana", "10.0.0.1") == 0


@pytest.fixture
def gated(app_env, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_PASSWORD_HASH", HASH)
    import core.policy.access
    monkeypatch.setattr(core.policy.access, "LIMITER", AttemptLimiter())  # a fresh window per test, not the SDK
    import pages._access
    monkeypatch.setattr(pages._access, "LIMITER", core.policy.access.LIMITER)
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


def test_failed_attempts_are_rate_limited_for_that_name_only(gated):
    at = AppTest.from_file(APP, default_timeout=60).run()
    for _ in range(5):
        sign_in(at, "eve", "guess")
        assert "Wrong name or password" in at.error[0].value or "Too many" in at.error[0].value
    sign_in(at, "eve", "correct horse")  # that name, from this address, waits now
    assert "Too many failed attempts" in at.error[0].value and not at.chat_input
    other = AppTest.from_file(APP, default_timeout=60).run()
    sign_in(other, "ana", "correct horse")  # someone else with the right password is not locked out
    assert other.chat_input and not other.error


USERS = {"alice": hash_password("alice pw", iterations=1000), "bob": hash_password("bob pw", iterations=1000),
         "root": hash_password("root pw", iterations=1000)}


@pytest.fixture
def named(app_env, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_USERS", ",".join(f"{n}:{h}" for n, h in USERS.items()))
    monkeypatch.setenv("PROMPTLAB_ADMINS", "root")
    import core.policy.access
    monkeypatch.setattr(core.policy.access, "LIMITER", AttemptLimiter())
    import pages._access
    monkeypatch.setattr(pages._access, "LIMITER", core.policy.access.LIMITER)
    return app_env


def test_named_users_sign_in_with_their_own_password_only():
    from core.policy.access import authenticate
    assert authenticate("alice", "alice pw", USERS, None, {"root"}) == Identity("alice", False)
    assert authenticate("alice", "bob pw", USERS, None, set()) is None
    assert authenticate("mallory", "alice pw", USERS, None, set()) is None
    assert authenticate("root", "root pw", USERS, None, {"root"}).admin
    assert authenticate("anyone", "correct horse", {}, HASH, set()) == Identity("anyone", False)  # shared mode
    assert parse_users(" a:h1 , b:h2,,bad") == {"a": "h1", "b": "h2"}


def test_one_user_cannot_open_continue_replay_or_export_anothers_data(named, server):
    from core.chat.store import ConversationStore
    from core.records.privacy import export_user

    alice = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "alice", "alice pw")
    alice.chat_input[0].set_value("alice's secret plan").run()
    conv_id = alice.session_state.conversation.id
    request_id = [r for r in CallLog(named["PROMPTLAB_DB_URL"]).recent(5) if r.page == "chat"][0].request_id
    bob = AppTest.from_file(APP, default_timeout=60)
    bob.query_params["c"] = conv_id
    sign_in(bob.run(), "bob", "bob pw")
    assert not [m for m in bob.chat_message]  # the link shows nothing of alice's
    bob.chat_input[0].set_value("bob writes").run()
    store = ConversationStore(named["PROMPTLAB_DB_URL"])
    assert [m.content for m in store.load(conv_id).messages][0] == "alice's secret plan"
    assert all(m.content != "bob writes" for m in store.load(conv_id).messages)  # nothing appended to hers
    assert store.owner(bob.session_state.conversation.id) == "bob"
    log = CallLog(named["PROMPTLAB_DB_URL"])
    assert log.texts_for(request_id, "bob") is None and log.texts_for(request_id, "alice") is not None
    assert log.texts_for(request_id, "root", admin=True) is not None
    with pytest.raises(PermissionError):
        export_user(log.engine, "alice", actor="bob")
    export_user(log.engine, "alice", actor="root", actor_is_admin=True)  # an admin may, and it is audited
    bob.switch_page("pages/settings.py").run()
    assert not [t for t in bob.text_input if t.key == "dsr_user"]  # bob's own data only
    root = AppTest.from_file(APP, default_timeout=60)
    root.query_params["c"] = conv_id
    sign_in(root.run(), "root", "root pw")
    assert [m.markdown[0].value for m in root.chat_message][0] == "alice's secret plan"  # admins may read
    assert root.session_state.conversation.id != conv_id  # and continue in a copy of their own


def test_openid_connect_gate_when_auth_is_configured(app_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "promptlab", "client_secret": "s",
                          "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration"}
    at.run()
    assert [b.label for b in at.button] == ["Log in"] and not at.chat_input  # st.login guards every page


def test_private_prompt_versions_and_saved_runs_are_their_owners(db_url):
    from core.evals.config import parse_config
    from core.evals.store import EvalStore
    from core.playground.draft import Draft
    from core.playground.library import PromptLibrary

    PromptLibrary(db_url).save("support", Draft("gpt-4o", "shared"), author="alice")
    secret = PromptLibrary(db_url).save("support", Draft("gpt-4o", "alice only"), author="alice", private=True)
    PromptLibrary(db_url).save("hidden", Draft("gpt-4o", "x"), author="alice", private=True)
    bob, alice, root = (PromptLibrary(db_url, "bob"), PromptLibrary(db_url, "alice"),
                        PromptLibrary(db_url, "root", admin=True))
    assert bob.names() == ["support"] and [v.draft.system for v in bob.history("support")] == ["shared"]
    assert bob.get(secret.id) is None and "alice only" not in bob.export_json()
    assert alice.names() == ["hidden", "support"] and len(alice.history("support")) == 2
    assert root.get(secret.id) is not None
    config = parse_config({"prompts": ["x"], "providers": ["openai:gpt-4o"]})
    EvalStore(db_url).save_run("a1", "a", config, [], {}, "alice")
    assert EvalStore(db_url, "bob").runs() == [] and EvalStore(db_url, "bob").run("a1") is None
    EvalStore(db_url, "bob").set_baseline("a1")  # not bob's to mark
    assert EvalStore(db_url, "alice").baseline() is None
    assert [r.id for r in EvalStore(db_url, "root", admin=True).runs()] == ["a1"]


def _hash_made_before_blanks_were_refused(password: str) -> str:
    """A `pbkdf2_sha256$…` hash of `password` built by hand, as `python -m core access hash` printed for an empty
    line before it refused one: such hashes may still sit in a deployment's PROMPTLAB_USERS."""
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)
    return f"pbkdf2_sha256$1000${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@pytest.mark.parametrize("typed", ["", "   ", "\t"])
def test_the_hash_command_refuses_a_blank_password(typed):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "core", "access", "hash"], input=typed + "\n", cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and done.stdout == ""  # no hash to paste into PROMPTLAB_USERS
    assert done.stderr.strip() == "An empty password protects nothing: type a password that is not blank."
    with pytest.raises(ValueError):
        hash_password(typed)


def test_the_hash_command_still_hashes_a_real_password():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "core", "access", "hash"], input="correct horse\n", cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and verify_password("correct horse", done.stdout.strip())


@pytest.mark.parametrize("typed", ["", "  "])
def test_sign_in_refuses_a_blank_password_even_against_a_hash_of_it(typed):
    from core.policy.access import authenticate

    blank = _hash_made_before_blanks_were_refused(typed)
    assert verify_password(typed, blank)  # the stored hash does match: only the refusal keeps bob out
    assert authenticate("bob", typed, {"bob": blank}, None, set()) is None  # named users
    assert authenticate("bob", typed, {}, blank, set()) is None  # one shared password


def test_the_sign_in_form_refuses_a_blank_password(app_env, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_USERS", f"bob:{_hash_made_before_blanks_were_refused('')}")
    import core.policy.access
    monkeypatch.setattr(core.policy.access, "LIMITER", AttemptLimiter())
    import pages._access
    monkeypatch.setattr(pages._access, "LIMITER", core.policy.access.LIMITER)
    at = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "bob", "")
    assert [e.value for e in at.error] == ["Enter your name and the password."]
    assert not at.chat_input and at.text_input(key="login_password")  # still the gate, no page behind it


def test_who_acts_in_a_session_is_decided_in_core():
    from core.policy.access import acting_identity, gate_configured, parse_users, users_setting

    # Without a gate the one configured user owns everything: an admin, whatever the session holds.
    assert acting_identity(None, False, gated=False, default_user="me") == Identity("me", admin=True)
    # Behind a gate: the signed-in name with the flag its sign-in gave; before sign-in, no admin.
    assert acting_identity("bob", False, gated=True, default_user="me") == Identity("bob", admin=False)
    assert acting_identity("root", True, gated=True, default_user="me") == Identity("root", admin=True)
    assert acting_identity(None, False, gated=True, default_user="me") == Identity("me", admin=False)
    assert not gate_configured(None, None) and not gate_configured("", " , ")
    assert gate_configured("pbkdf2_sha256$x", None) and gate_configured(None, "alice:pbkdf2_sha256$y")
    table = {"alice": "pbkdf2_sha256$a", "bob": "pbkdf2_sha256$b"}
    assert parse_users(users_setting(table)) == table

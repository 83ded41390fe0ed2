"""Fixtures that make a fresh world per test: a loopback OpenAI-compatible server, a temporary database."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from core.calls.gate import CallContext
from core.calls.log import CallLog
from core.llm.providers import Provider
from core.policy.access import Identity
from tests.loopback_server import LoopbackServer

TEST_KEY = "sk-test-PROMPTLAB-5ecret-key-0123456789"
ADMIN = Identity("admin", admin=True)  # who changes workspace settings in tests that are not about who may
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every test, and every app a browser test starts, shares one copy of the offline model (fetched once, ~93 MB),
# whatever data directory it uses.
os.environ.setdefault("PROMPTLAB_MODELS_DIR", os.path.join(ROOT, "data", "models"))


@pytest.fixture(autouse=True, scope="session")
def apptest_runs_like_a_server():
    """AppTest resets Streamlit's "old-style pages/ folder app" flag before every run, so with our pages/ folder
    each rerun would execute the page file alone, skipping app.py (router, access gate, sidebar). A real server
    clears that flag for good on the first st.navigation call; make AppTest runs do the same."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    yield
    PagesManager.__init__ = original


@pytest.fixture(autouse=True, scope="session")
def offline_model_children():
    """The offline model's child processes started in this run end with it."""
    from core.llm import local_model

    yield
    local_model.stop_all()


@pytest.fixture(scope="session")
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer(api_key=TEST_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def server(loopback_server: LoopbackServer) -> Iterator[LoopbackServer]:
    """The loopback server with no scripted faults and an empty request record."""
    loopback_server.reset()
    loopback_server.api_key = TEST_KEY
    yield loopback_server
    loopback_server.reset()


# PostgreSQL for the database tests when a server is there (.ci/run starts one): PROMPTLAB_TEST_PG_URL.
PG_URL = os.environ.get("PROMPTLAB_TEST_PG_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def _fresh_pg_schema() -> str:
    """A new, empty schema in the test database, reached through its own URL (search_path)."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database: SQLite, and PostgreSQL too when PROMPTLAB_TEST_PG_URL is set. Its pooled
    connections are closed afterwards: one engine per test schema would otherwise exhaust the server's
    max_connections over the suite."""
    from core.base.db import dispose_engine

    url = _fresh_pg_schema() if request.param == "postgresql" else f"sqlite:///{tmp_path}/promptlab.db"
    yield url
    dispose_engine(url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """The app's default backend, for page and browser tests (they test the UI, not the database)."""
    return f"sqlite:///{tmp_path}/promptlab.db"


@pytest.fixture
def log(db_url: str) -> CallLog:
    return CallLog(db_url)


@pytest.fixture
def provider(server: LoopbackServer) -> Provider:
    """The loopback server as an OpenAI-compatible provider, no retries, short timeout."""
    return Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)


@pytest.fixture
def ctx() -> CallContext:
    return CallContext(page="chat", user="tester", session="s1", tags=["test"])


@pytest.fixture
def app_env(server: LoopbackServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that points the app at the loopback server and a temporary database."""
    env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": TEST_KEY, "PROMPTLAB_DB_URL": sqlite_url,
           "PROMPTLAB_MAX_RETRIES": "0", "PROMPTLAB_TIMEOUT_S": "5", "PROMPTLAB_MODEL": "gpt-4o-mini",
           "PROMPTLAB_PROVIDER": "auto", "PROMPTLAB_FALLBACK": "off"}  # fallback tests turn it on themselves
    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_ORG_ID"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def offline_env(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No key, no base URL: a fresh machine where only the embedded local model can answer."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "AZURE_OPENAI_API_KEY",
                "AZURE_OPENAI_ENDPOINT", "PROMPTLAB_PROVIDER", "PROMPTLAB_MODEL", "PROMPTLAB_LOCAL_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PROMPTLAB_DB_URL", sqlite_url)
    return {"PROMPTLAB_DB_URL": sqlite_url}


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright, one per test module (tests/browser.py has the flags)."""
    from tests.browser import CHROMIUM, CHROMIUM_ARGS
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def app(app_env):
    """`streamlit run app.py` against the loopback server and a temporary database."""
    from tests.browser import StreamlitApp
    running = StreamlitApp(app_env)
    yield running
    running.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the measured redaction quality at the end of every run (issue: report it in the test output)."""
    from tests.policy.test_redaction import MEASURED
    if MEASURED:
        terminalreporter.write_line(
            f"redaction: recall {MEASURED['recall']:.1%}, precision {MEASURED['precision']:.1%} "
            f"on {MEASURED['positives']} positive / {MEASURED['negatives']} negative snippets (en, zh, es)")
    from tests.policy.test_redaction_corpus import MEASURED as PER_KIND
    if PER_KIND:
        terminalreporter.write_line("redaction on the span corpus, claimed formats (kind: spans, recall, precision): " +
                                    ", ".join(f"{k} {n} {r:.2f}/{p:.2f}" for k, (n, r, p) in PER_KIND.items()))

"""PromptLab: the router. The session's interface language, the shared sidebar (provider badge, language), then the
chosen page."""
import streamlit as st

from core.base import i18n
from core.base.db import database_problem
from core.base.i18n import _
from core.calls import prometheus as metrics
from pages._access import require_access
from pages._cookies import write_cookies
from pages._widgets import language_menu, provider_badge, session_language
from pages._workbench import (
    base_settings,
    needs_login,
    offline_model_fetch,
    offline_model_warm_up,
    retention_worker,
    workbench,
)

st.set_page_config(page_title="PromptLab", page_icon="🧪", layout="wide")
i18n.set_language(session_language(base_settings()))  # before any text: every string below is in it

pages = [
    st.Page("pages/chat.py", title=_("Chat"), icon="💬", default=True),
    st.Page("pages/playground.py", title=_("Playground"), icon="🧪"),
    st.Page("pages/evals.py", title=_("Evals"), icon="✅"),
    st.Page("pages/images.py", title=_("Images"), icon="🖼️"),
    st.Page("pages/analytics.py", title=_("Analytics"), icon="📊"),
    st.Page("pages/settings.py", title=_("Settings"), icon="⚙️"),
]
problem = database_problem(base_settings().db_url)
if problem:  # one clear page (a router with just it: no bare listing of the pages/ folder), nothing else runs
    st.navigation([st.Page(lambda: st.error(problem), title="PromptLab", url_path="database")],
                  position="hidden").run()
    st.stop()
wb = workbench(gate=False)
# st.navigation runs on every request (so no page can ever run without this file); while a configured gate has
# not let the session in, the menu is hidden and the gate stops the script before any page.
page = st.navigation(pages, position="hidden" if needs_login(wb) else "sidebar")
require_access(wb)
wb = workbench(gate=False)  # again: signing in sets who the user is
retention_worker(wb.settings.db_url, wb.settings.data_dir)  # retention at start-up, then hourly
if not wb.settings.local_model_path:
    offline_model_fetch(wb.settings.offline_models_dir)  # first start, still online: the offline model is ready later
if wb.provider.kind == "local":  # no key: the offline model answers, so it starts now, not on the first message
    offline_model_warm_up(wb.settings.local_model_path, wb.settings.offline_models_dir)
if wb.settings.metrics_port:
    metrics.serve(wb.settings.metrics_port, wb.settings.metrics_addr)  # once per process; Prometheus scrapes it on its own port
provider_badge(wb)
language_menu()
write_cookies()  # a provider chosen in Settings and the language are kept by the browser (pages/_workbench.py)
page.run()

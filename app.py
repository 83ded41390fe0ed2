"""PromptLab: the router. Shared sidebar (provider badge), then the chosen page."""
import streamlit as st

from pages._shared import provider_badge, workbench

st.set_page_config(page_title="PromptLab", page_icon="🧪", layout="wide")

pages = [
    st.Page("pages/chat.py", title="Chat", icon="💬", default=True),
    st.Page("pages/playground.py", title="Playground", icon="🧪"),
    st.Page("pages/images.py", title="Images", icon="🖼️"),
    st.Page("pages/analytics.py", title="Analytics", icon="📊"),
    st.Page("pages/settings.py", title="Settings", icon="⚙️"),
]
page = st.navigation(pages)
provider_badge(workbench())
page.run()

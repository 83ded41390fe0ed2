"""Images: coming soon (its issue builds it)."""
import streamlit as st

import pages._shared  # noqa: F401  (routes deep links through app.py)

st.title("Images")
st.info("Coming soon: this page is being built. Chat and Settings work today.")

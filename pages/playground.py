"""Playground: coming soon (its issue builds it)."""
import streamlit as st

st.title("Playground")
st.info("Coming soon: this page is being built. Chat and Settings work today.")

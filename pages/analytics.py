"""Analytics: coming soon (its issue builds it)."""
import streamlit as st

st.title("Analytics")
st.info("Coming soon: this page is being built. Chat and Settings work today.")

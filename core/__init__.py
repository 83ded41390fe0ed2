"""PromptLab's library: providers, the call gate, chat, tokens, pricing and the call log.

Nothing in this package imports streamlit; pages/ are the only UI layer.
"""

"""PromptLab's library, in layers that import only downward: base → formats → policy → llm → calls → features
(chat, playground, images, analytics; evals over playground) → records → cli (`python -m core`).

Nothing in this package imports streamlit; pages/ are the only UI layer (docs/ARCHITECTURE.md).
"""

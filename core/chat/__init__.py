"""The Chat feature: a conversation and its messages (conversation), saved chats (store), personas, the turn a
page runs as one call (turn). Imports the layers below (calls, llm, policy, formats, base), no other feature."""

"""Issue 26 point 1: the user's thumbs and note on a reply are kept with the conversation (saved, exported) and
become a test case's metadata when the turn is added to a test set."""
from __future__ import annotations

import pytest

from core.chat import conversation as chat
from core.chat.store import ConversationStore
from core.evals.store import EvalStore
from core.evals.traffic import add_turns_to_set


def rated_conversation() -> chat.Conversation:
    conv = chat.new_conversation(system_prompt="You sell shoes.")
    chat.add_user_message(conv, "Can I return worn shoes?")
    conv.messages.append(chat.Message(role="assistant", content="Yes, any time, no questions asked."))
    chat.rate_reply(conv, 1, "down", "  wrong: only unworn, 30 days  ")
    return conv


def test_a_rating_is_saved_with_the_conversation_and_taken_back(db_url):
    conv = rated_conversation()
    store = ConversationStore(db_url)
    store.save(conv, "alice")
    loaded = store.load(conv.id, "alice")
    assert (loaded.messages[1].rating, loaded.messages[1].rating_note) == ("down", "wrong: only unworn, 30 days")
    assert '"rating": "down"' in chat.export_json(loaded)
    chat.rate_reply(loaded, 1, None)
    assert loaded.messages[1].rating is None and "rating" not in loaded.messages[1].to_dict()
    with pytest.raises(ValueError):
        chat.rate_reply(loaded, 0, "up")  # the user's own turn is not rated
    with pytest.raises(ValueError):
        chat.rate_reply(loaded, 1, "meh")
    damaged = chat.Message.from_dict({**conv.messages[1].to_dict(), "rating": "<script>"})
    assert damaged.rating is None  # a stored or imported value outside the two is ignored


def test_a_rated_turn_becomes_a_case_whose_metadata_carries_the_thumbs_and_note(db_url):
    conv = rated_conversation()
    added = add_turns_to_set(EvalStore(db_url, viewer="alice"), "returns", [m.to_dict() for m in conv.messages],
                             conv.id, user="alice", model="gpt-4o-mini", system_prompt=conv.system_prompt)
    (case,) = added.version.tests
    assert case.vars == {"input": "Can I return worn shoes?"} and added.added == 1
    assert case.metadata | {"source": None} == {
        "source": None, "model": "gpt-4o-mini", "rating": "down", "note": "wrong: only unworn, 30 days",
        "system_prompt": "You sell shoes.", "reference_output": "Yes, any time, no questions asked."}
    assert case.metadata["source"] == f"conversation:{conv.id}#1"
    assert "rejected answer (wrong: only unworn, 30 days)" in case.assertions[0].value

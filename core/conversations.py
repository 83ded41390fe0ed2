"""Saved conversations: the Chat page's history, persisted so it survives a browser reload."""
from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from core.chat import Conversation
from core.clock import utc_now_iso
from core.db import engine_for


@dataclass(frozen=True)
class ConversationSummary:
    """A row of the sidebar's conversation list."""

    id: str
    title: str
    updated_at: str


class ConversationStore:
    """Conversations of each user in the database at a SQLAlchemy URL."""

    def __init__(self, url: str):
        self.engine = engine_for(url)

    def save(self, conversation: Conversation, user: str) -> None:
        body = json.dumps(conversation.to_dict())
        now = utc_now_iso()
        with self.engine.begin() as conn:
            updated = conn.execute(sa.text(
                "UPDATE conversations SET title = :title, body = :body, updated_at = :now WHERE id = :id"),
                {"title": conversation.title, "body": body, "now": now, "id": conversation.id}).rowcount
            if not updated:
                conn.execute(sa.text(
                    "INSERT INTO conversations (id, user_id, title, created_at, updated_at, body) "
                    "VALUES (:id, :user, :title, :created, :now, :body)"),
                    {"id": conversation.id, "user": user, "title": conversation.title,
                     "created": conversation.created_at, "now": now, "body": body})

    def load(self, conversation_id: str) -> Conversation | None:
        with self.engine.connect() as conn:
            body = conn.execute(sa.text("SELECT body FROM conversations WHERE id = :id"),
                                {"id": conversation_id}).scalar()
        return Conversation.from_dict(json.loads(body)) if body else None

    def list(self, user: str, limit: int = 50) -> list[ConversationSummary]:
        """The user's conversations, most recently updated first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, title, updated_at FROM conversations WHERE user_id = :user "
                "ORDER BY updated_at DESC LIMIT :limit"), {"user": user, "limit": limit})
            return [ConversationSummary(*row) for row in rows]

    def delete(self, conversation_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM conversations WHERE id = :id"), {"id": conversation_id})

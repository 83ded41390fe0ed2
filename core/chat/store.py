"""Saved conversations: the Chat page's history, persisted so it survives a browser reload."""
from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from core.base.clock import utc_now_iso
from core.base.db import engine_for
from core.chat.conversation import Conversation


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
                "UPDATE conversations SET title = :title, body = :body, updated_at = :now "
                "WHERE id = :id AND user_id = :user"),
                {"title": conversation.title, "body": body, "now": now, "id": conversation.id,
                 "user": user}).rowcount
            if not updated and conn.execute(sa.text("SELECT 1 FROM conversations WHERE id = :id"),
                                            {"id": conversation.id}).first():
                raise PermissionError("This conversation belongs to another user.")
            if not updated:
                conn.execute(sa.text(
                    "INSERT INTO conversations (id, user_id, title, created_at, updated_at, body) "
                    "VALUES (:id, :user, :title, :created, :now, :body)"),
                    {"id": conversation.id, "user": user, "title": conversation.title,
                     "created": conversation.created_at, "now": now, "body": body})

    def load(self, conversation_id: str, user: str | None = None, admin: bool = False) -> Conversation | None:
        """The conversation, if `user` owns it (or is an admin; `user=None` is the library's own unscoped read).
        Someone else's id reads as unknown: a link to another user's conversation shows nothing of it."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT body, user_id FROM conversations WHERE id = :id"),
                               {"id": conversation_id}).first()
        if row is None or (user is not None and not admin and row.user_id != user):
            return None
        return Conversation.from_dict(json.loads(row.body))

    def owner(self, conversation_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT user_id FROM conversations WHERE id = :id"),
                                {"id": conversation_id}).scalar()

    def list(self, user: str, limit: int = 50) -> list[ConversationSummary]:
        """The user's conversations, most recently updated first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, title, updated_at FROM conversations WHERE user_id = :user "
                "ORDER BY updated_at DESC LIMIT :limit"), {"user": user, "limit": limit})
            return [ConversationSummary(*row) for row in rows]

    def delete(self, conversation_id: str, user: str | None = None, admin: bool = False) -> bool:
        """Delete it if `user` owns it (or is an admin); returns whether anything was deleted."""
        scope = "" if user is None or admin else " AND user_id = :user"
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.text(f"DELETE FROM conversations WHERE id = :id{scope}"),
                                     {"id": conversation_id, "user": user}).rowcount)

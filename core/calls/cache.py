"""The response cache: exact-match replies keyed on provider, model, messages and every parameter, kept in the
database with a TTL. Used at temperature 0, or above it when the user opts in; a hit is streamed back at once and
logged as a call with cost 0 and `cached` true.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from core.base.db import engine_for
from core.base.errors import scrub_secrets
from core.llm.file_vars import digested
from core.policy.access import Identity
from core.policy.audit import audit
from core.policy.workspace import require_admin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedReply:
    """A stored reply and the usage of the call that produced it."""

    reply: str
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None


def cache_key(provider_kind: str, base_url: str | None, model: str, messages: list[dict[str, Any]],
              params: dict[str, Any]) -> str:
    """sha256 of everything that shapes the reply (canonical JSON, so key order does not matter); an image or PDF
    in the messages by its bytes' SHA-256, not its base64 (`file_vars.digested`)."""
    material = json.dumps({"provider": provider_kind, "base_url": base_url or "", "model": model,
                           "messages": digested(messages), "params": params}, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"), default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def eligible(params: dict[str, Any], opted_in: bool) -> bool:
    """Deterministic requests (temperature 0) are cached; others only when the user asks for it."""
    return opted_in or params.get("temperature") == 0


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ResponseCache:
    """The cache table in the database at a SQLAlchemy URL."""

    def __init__(self, url: str, ttl_s: float = 86_400):
        self.engine = engine_for(url)
        self.ttl_s = ttl_s

    def get(self, key: str) -> CachedReply | None:
        now = _now().isoformat()
        with self.engine.begin() as conn:
            row = conn.execute(sa.text("SELECT reply, finish_reason, input_tokens, output_tokens FROM response_cache "
                                       "WHERE key = :k AND expires_at > :now"), {"k": key, "now": now}).first()
            if row is None:
                return None
            conn.execute(sa.text("UPDATE response_cache SET hits = hits + 1 WHERE key = :k"), {"k": key})
        return CachedReply(*row)

    def put(self, key: str, provider: str, model: str, reply: CachedReply, user: str | None) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM response_cache WHERE key = :k"), {"k": key})
            conn.execute(sa.text(
                "INSERT INTO response_cache (key, created_at, expires_at, provider, model, user_id, reply, "
                "finish_reason, input_tokens, output_tokens) VALUES (:k, :c, :e, :p, :m, :u, :r, :f, :i, :o)"),
                {"k": key, "c": now.isoformat(), "e": (now + timedelta(seconds=self.ttl_s)).isoformat(),
                 "p": provider, "m": model, "u": user, "r": reply.reply, "f": reply.finish_reason,
                 "i": reply.input_tokens, "o": reply.output_tokens})

    def clear(self, *, actor: Identity) -> int:
        """Delete every entry (everyone's): an admin's action (AdminOnly otherwise), audited; returns how many."""
        require_admin(actor)
        with self.engine.begin() as conn:
            removed = conn.execute(sa.text("DELETE FROM response_cache")).rowcount
        audit(self.engine, actor.name, "cache_clear", None, {"entries": removed})
        return removed

    def clear_expired(self) -> int:
        """Delete the entries past their TTL (maintenance: nothing a user sees changes); returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(sa.text("DELETE FROM response_cache WHERE expires_at <= :now"),
                                {"now": _now().isoformat()}).rowcount

    def stats(self) -> tuple[int, int]:
        """(entries, total hits)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT count(*), coalesce(sum(hits), 0) FROM response_cache")).one()
        return int(row[0]), int(row[1])


class CacheStep:
    """The cache around one request: looked up before it is sent, given the answer after. The cache is an
    optimisation: a database that cannot be read is a miss and one that cannot be written loses the entry,
    never the reply."""

    def __init__(self, cache: ResponseCache, provider_kind: str, base_url: str | None, model: str,
                 messages: list[dict[str, Any]], params: dict[str, Any], user: str | None):
        self.cache, self.provider_kind, self.model, self.user = cache, provider_kind, model, user
        self.key = cache_key(provider_kind, base_url, model, messages, params)

    def lookup(self) -> CachedReply | None:
        try:
            return self.cache.get(self.key)
        except Exception as exc:
            logger.warning("response cache not readable, treated as a miss: %s", scrub_secrets(repr(exc)))
            return None

    def store(self, reply: CachedReply) -> None:
        try:
            self.cache.put(self.key, self.provider_kind, self.model, reply, self.user)
        except Exception as exc:
            logger.warning("reply not cached: %s", scrub_secrets(repr(exc)))

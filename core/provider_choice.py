"""The provider a browser chose in Settings, kept across a reload (F5).

A reload starts a new Streamlit session, so a choice kept only in the session state was lost: the tab returned to
the configured provider while the conversation on screen came from another one. The choice may hold a key the user
typed, so it must not go into the URL (links get shared) or the database (keys never rest on disk). It stays in
this server's memory, under a random token the browser keeps in a cookie (a cookie does not travel with a copied
link). The token is bound to the user who made the choice, expires after a day unused, and the store is bounded;
a server restart forgets every choice, and the page then says so once and uses the configured provider.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COOKIE_NAME = "promptlab_provider"
TTL_S = 24 * 3600.0
MAX_CHOICES = 10_000


@dataclass
class _Choice:
    user: str
    override: dict[str, Any] = field(repr=False)  # may hold a typed key: never printed
    used_at: float = 0.0


class ProviderChoices:
    """Token → (user, provider override), in memory only, thread-safe, least recently used out first."""

    def __init__(self, ttl_s: float = TTL_S, max_choices: int = MAX_CHOICES,
                 clock: Callable[[], float] = time.monotonic):
        self._choices: OrderedDict[str, _Choice] = OrderedDict()
        self._lock = threading.Lock()
        self.ttl_s, self.max_choices, self._clock = ttl_s, max_choices, clock

    def remember(self, user: str, override: dict[str, Any], token: str | None = None) -> str:
        """Keep this user's choice; returns the token for the browser (a new one unless `token` is theirs)."""
        with self._lock:
            held = self._choices.get(token or "")
            if held is None or held.user != user:
                token = secrets.token_urlsafe(32)
            assert token is not None
            self._choices[token] = _Choice(user, dict(override), self._clock())
            self._choices.move_to_end(token)
            while len(self._choices) > self.max_choices:
                self._choices.popitem(last=False)
            return token

    def recall(self, token: str, user: str) -> dict[str, Any] | None:
        """The choice under `token` if it is this user's and not expired (None otherwise: unknown, someone else's
        or stale — all read the same to the caller)."""
        with self._lock:
            held = self._choices.get(token)
            if held is None:
                return None
            now = self._clock()
            if now - held.used_at > self.ttl_s:
                del self._choices[token]
                return None
            if held.user != user:
                return None
            held.used_at = now
            self._choices.move_to_end(token)
            return dict(held.override)

    def forget(self, token: str) -> None:
        with self._lock:
            self._choices.pop(token, None)

    def __len__(self) -> int:
        return len(self._choices)


CHOICES = ProviderChoices()  # one per server process

"""The provider a browser chose in Settings, kept across a reload (F5).

A reload starts a new Streamlit session, so a choice kept only in the session state was lost: the tab returned to
the configured provider while the conversation on screen came from another one. The choice may hold a key the user
typed, so it must not go into the URL (links get shared) or the database (keys never rest on disk). It stays in
this server's memory, under a random token the browser keeps in a cookie (a cookie does not travel with a copied
link). The token is bound to the user who made the choice, expires after a day unused, and the store is bounded;
a server restart forgets every choice, and the page then says so once and uses the configured provider.

What a browser may choose (`override_for`): the server's key goes only to the endpoint it is configured for. A user
who points a provider elsewhere brings their own key (a compatible server with no key typed is called without one);
only an admin may switch with the server's key. Someone who is not an admin may reach only public addresses, or
what PROMPTLAB_ALLOWED_BASE_URLS allows (core/policy/url_policy.py).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.base.config import Settings
from core.base.errors import PromptLabError
from core.base.i18n import _
from core.llm.providers import KINDS, Provider, resolve_provider
from core.policy.access import Identity
from core.policy.url_policy import OPENAI_ENDPOINT, UrlPolicy, same_endpoint

COOKIE_NAME = "promptlab_provider"
TTL_S = 24 * 3600.0
MAX_CHOICES = 10_000


@dataclass(frozen=True)
class ProviderForm:
    """What the Settings form asks for: a kind, a base URL (Azure: the endpoint), a typed key, an API version;
    empty fields keep the configured values."""

    kind: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None


def url_policy_for(settings: Settings, actor: Identity) -> UrlPolicy | None:
    """The rule for URLs this actor chooses: None (any URL) for an admin — and without an access gate the single
    user is one, so Ollama on localhost keeps working; otherwise public addresses, the admins' allow-list and the
    endpoints configured in `settings` (the configured ones, never a session's switch)."""
    if actor.admin:
        return None
    return UrlPolicy.from_settings(settings.allowed_base_urls, (settings.openai_base_url, settings.azure_endpoint))


def override_for(form: ProviderForm, configured: Settings, actor: Identity,
                 policy: UrlPolicy | None = None) -> dict[str, Any]:
    """The settings override for a browser's choice, or PromptLabError (one sentence) when it may not have it.

    The server's key may go only to the endpoint it is configured for; a choice that points elsewhere with no key
    typed would carry it there, so for anyone but an admin it is dropped (a compatible server is then called with no
    key) or, where the API needs one (OpenAI, Azure), refused. A URL is checked against `policy` (None: the actor's,
    from `url_policy_for`)."""
    if form.kind not in KINDS:
        raise ValueError(f"unknown provider kind {form.kind!r}")
    url, key = (form.base_url or "").strip() or None, (form.api_key or "").strip() or None
    if form.kind == "local":
        return {"provider": "local"}
    override: dict[str, Any]
    if form.kind == "azure":
        override = {"provider": "azure", "azure_endpoint": url, "azure_api_key": key,
                    "azure_api_version": (form.api_version or "").strip() or None}
    else:
        override = {"provider": form.kind, "openai_base_url": url, "openai_api_key": key}
    if actor.admin:  # admins may switch with the server's key, to any URL: they hold the key anyway
        return override
    chosen = resolve_provider(configured.with_overrides(**override))
    configured_endpoints = (configured.openai_base_url or OPENAI_ENDPOINT, configured.azure_endpoint)
    if not any(same_endpoint(chosen.endpoint, c) for c in configured_endpoints if c):
        (policy or url_policy_for(configured, actor) or UrlPolicy()).check(chosen.endpoint)
    if server_key_elsewhere(override, configured) is not None:
        if chosen.kind != "compatible":
            raise PromptLabError("key_required", _(
                "Type a key for this endpoint: the server's key is sent only to the endpoint it is configured "
                "for."))
        override["openai_api_key"] = ""  # not None: None would keep the configured key
    return override


def server_key_elsewhere(override: dict[str, Any], configured: Settings) -> str | None:
    """The endpoint a configured key would be sent to under this override when that is not the endpoint the key is
    configured for (allowed to an admin, and audited); None when no server key leaves."""
    chosen = resolve_provider(configured.with_overrides(**override))
    if chosen.kind == "local" or not chosen.api_key or chosen.api_key not in configured.secret_values:
        return None  # no key, or one the user typed
    return None if _configured_for(chosen, configured) else chosen.endpoint


def _configured_for(chosen: Provider, configured: Settings) -> bool:
    """Whether the configured key the chosen provider would send goes to the endpoint it is configured for."""
    if chosen.kind == "azure":
        return configured.azure_endpoint is not None and same_endpoint(chosen.base_url, configured.azure_endpoint)
    return same_endpoint(chosen.base_url, configured.openai_base_url)


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

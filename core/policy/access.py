"""The access gate for shared deployments: off by default. Named users, each with a password of their own
(`PROMPTLAB_USERS` — `name:hash` pairs — or a `[users]` table in secrets.toml), or OpenID Connect through Streamlit's
`st.login` when `[auth]` is in secrets.toml; admins (`PROMPTLAB_ADMINS`) may act for others. A single shared password
(`PROMPTLAB_PASSWORD_HASH`) still works for one trusted team: then the typed name is a label, not an identity, and
nobody is isolated from anybody. Failed attempts are limited per user name at one client address and per address —
never one lock for everyone, which the right password could not pass.

`python -m core access hash` prints the hash to put in PROMPTLAB_PASSWORD_HASH.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from core.base.i18n import _

ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
PER_USER_AT_ADDRESS = (5, 300.0)  # at most 5 failures in 5 minutes for one name from one client address
PER_ADDRESS = (20, 300.0)  # and 20 in 5 minutes from one address, whatever the names (guessing many accounts)


class BlankPasswordError(ValueError):
    """A blank password asked to be hashed: it would let anyone in who leaves the field empty."""


def is_blank(password: str) -> bool:
    """Empty or only whitespace: no password at all, whatever a hash of it would say."""
    return not password.strip()


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if is_blank(password):
        raise BlankPasswordError(_("An empty password protects nothing: type a password that is not blank."))
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a `pbkdf2_sha256$…` hash; False for malformed hashes."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(candidate, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class Identity:
    """Who a session is: the name the log and every ownership check use, and whether they may act for others."""

    name: str
    admin: bool = False


def parse_users(text: str | None) -> dict[str, str]:
    """`alice:pbkdf2_sha256$…,bob:pbkdf2_sha256$…` → {name: hash} (names trimmed; empty entries ignored)."""
    users: dict[str, str] = {}
    for entry in (text or "").split(","):
        name, sep, hashed = entry.strip().partition(":")
        if sep and name.strip() and hashed.strip():
            users[name.strip()] = hashed.strip()
    return users


def parse_admins(text: str | None) -> set[str]:
    return {a.strip() for a in (text or "").split(",") if a.strip()}


def users_setting(table: Mapping[str, str]) -> str:
    """secrets.toml's `[users]` table (name = hash) as PROMPTLAB_USERS' text, which `parse_users` reads back."""
    return ",".join(f"{name}:{hashed}" for name, hashed in table.items())


def gate_configured(password_hash: str | None, users: str | None) -> bool:
    """Whether the password gate is on: a shared password or named users (OIDC is the page's to tell)."""
    return bool(password_hash or parse_users(users))


def acting_identity(signed_in: str | None, signed_in_admin: bool, *, gated: bool, default_user: str) -> Identity:
    """Who acts in a session. Behind a gate, the signed-in name with the admin flag its sign-in gave (not signed
    in yet: the configured user, no admin); without a gate, the one configured user, who is an admin."""
    return Identity(signed_in or default_user, bool(signed_in_admin) if gated else True)


def authenticate(name: str, password: str, users: dict[str, str], shared_hash: str | None,
                 admins: set[str]) -> Identity | None:
    """The identity a name and password prove, or None. With named users only their own password counts. A blank
    password proves nothing, even against a hash of a blank password (one made before `hash` refused them)."""
    name = name.strip()
    if not name or is_blank(password):
        return None
    if users:
        stored = users.get(name)
        # An unknown name costs the same time as a known one: no way to tell which names exist.
        ok = verify_password(password, stored or _dummy_hash()) and stored is not None
        return Identity(name, name in admins) if ok else None
    if shared_hash and verify_password(password, shared_hash):
        return Identity(name, name in admins)
    return None


@functools.cache
def _dummy_hash() -> str:
    return hash_password(os.urandom(16).hex())


class AttemptLimiter:
    """Sliding windows of failed attempts: per (user name, client address) and per client address. There is no
    process-wide lock: many sessions failing cannot keep out someone with the right password from elsewhere."""

    def __init__(self, per_user: tuple[int, float] = PER_USER_AT_ADDRESS,
                 per_address: tuple[int, float] = PER_ADDRESS, clock=time.monotonic):
        self.per_user, self.per_address, self.clock = per_user, per_address, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _wait(self, key: str, limit: int, window: float) -> float:
        q = self._failures.get(key)
        if not q:
            return 0.0
        now = self.clock()
        while q and now - q[0] > window:
            q.popleft()
        return window - (now - q[0]) if len(q) >= limit else 0.0

    def wait_s(self, name: str, address: str) -> float:
        """Seconds before this name may be tried again from this address (0 = now)."""
        with self._lock:
            return max(self._wait(f"user:{name.strip().lower()}@{address}", *self.per_user),
                       self._wait(f"address:{address}", *self.per_address))

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            for key in (f"user:{name.strip().lower()}@{address}", f"address:{address}"):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{name.strip().lower()}@{address}", None)


LIMITER = AttemptLimiter()

"""The access gate for shared deployments: off by default; a shared password (only its PBKDF2 hash is configured)
or OpenID Connect through Streamlit's `st.login` when `[auth]` is in secrets.toml. Failed password attempts are
rate-limited per browser session and across the process.

`python -m core.access hash` prints the hash to put in PROMPTLAB_PASSWORD_HASH.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
import threading
import time
from collections import deque

ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
PER_SESSION = (5, 300.0)  # at most 5 failures in 5 minutes from one browser session
PER_PROCESS = (50, 300.0)  # and 50 in 5 minutes across everyone (a brute force from many sessions)


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
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


class AttemptLimiter:
    """Sliding windows of failed attempts, per key and for the whole process."""

    def __init__(self, per_key: tuple[int, float] = PER_SESSION, overall: tuple[int, float] = PER_PROCESS,
                 clock=time.monotonic):
        self.per_key, self.overall, self.clock = per_key, overall, clock
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, q: deque[float], window: float) -> None:
        now = self.clock()
        while q and now - q[0] > window:
            q.popleft()

    def wait_s(self, key: str) -> float:
        """Seconds before this key may try again (0 = now)."""
        with self._lock:
            waits = [0.0]
            for q, (limit, window) in ((self._failures.get(key, deque()), self.per_key), (self._all, self.overall)):
                self._prune(q, window)
                if len(q) >= limit:
                    waits.append(window - (self.clock() - q[0]))
            return max(waits)

    def failed(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            self._failures.setdefault(key, deque()).append(now)
            self._all.append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


LIMITER = AttemptLimiter()


if __name__ == "__main__":  # the command line lives in core/cli.py
    from core.cli import access_main

    sys.exit(access_main())

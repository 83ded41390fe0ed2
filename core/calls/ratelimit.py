"""Client-side rate limits: requests per minute and tokens per minute per provider, as token buckets shared by
every session in the process. A request over the limit waits (the page shows a countdown) instead of failing; a
429 from the server drains the bucket so the next requests wait too. Limits live in the database (Settings).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from sqlalchemy.engine import Engine

from core.base.errors import scrub_secrets
from core.policy.access import Identity
from core.policy.workspace import Setting, Workspace

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Requests and tokens per minute (0 = unlimited)."""

    rpm: int = 0
    tpm: int = 0

    @property
    def active(self) -> bool:
        return self.rpm > 0 or self.tpm > 0


class TokenBucket:
    """Capacity refills continuously at `per_minute / 60` a second; taking more than is there is allowed (a
    reservation) and returns how long the caller must wait for it."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.clock = clock
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / 60)
        self.updated = now

    def reserve(self, amount: float) -> float:
        """Take `amount`; return the seconds until it is covered (0 when it is there now)."""
        self._refill()
        amount = min(amount, self.capacity)  # one request larger than a minute's budget waits one minute at most
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level * 60 / self.capacity

    def drain(self, seconds: float) -> None:
        """Empty the bucket so that it only has capacity again after `seconds` (a server's 429)."""
        self._refill()
        self.level = min(self.level, -seconds * self.capacity / 60)


def provider_key(kind: str, base_url: str | None) -> str:
    return f"{kind}:{urlparse(base_url).netloc if base_url else 'default'}"


class RateLimiter:
    """The buckets of one provider."""

    def __init__(self, limits: Limits, clock=time.monotonic):
        self.limits = limits
        self._lock = threading.Lock()
        self.requests = TokenBucket(limits.rpm, clock) if limits.rpm else None
        self.tokens = TokenBucket(limits.tpm, clock) if limits.tpm else None

    def reserve(self, tokens: int) -> float:
        """Reserve one request of `tokens` tokens; returns the seconds to wait before sending it."""
        with self._lock:
            waits = [0.0]
            if self.requests:
                waits.append(self.requests.reserve(1))
            if self.tokens:
                waits.append(self.tokens.reserve(tokens))
            return max(waits)

    def rate_limited(self, retry_after_s: float | None) -> None:
        """A 429 got through the SDK's retries: hold everyone back for Retry-After (or a minute)."""
        with self._lock:
            for bucket in (self.requests, self.tokens):
                if bucket:
                    bucket.drain(retry_after_s or 60.0)


_limiters: dict[str, tuple[RateLimiter | None, float]] = {}
_lock = threading.Lock()
RELOAD_S = 30.0  # how long "this provider has no limits" is believed before the database is asked again


RATE_LIMITS = Setting("rate_limits", Limits(), stored_as=Limits, unset_when=lambda limits: not limits.active)


def load_limits(engine: Engine, kind: str, base_url: str | None) -> Limits:
    return Workspace(engine).load(RATE_LIMITS, scope=provider_key(kind, base_url))


def save_limits(engine: Engine, kind: str, base_url: str | None, limits: Limits, *, actor: Identity) -> None:
    """A provider's limits, shared by every session: an admin's choice (AdminOnly otherwise), audited."""
    Workspace(engine).save(RATE_LIMITS, limits, scope=provider_key(kind, base_url), actor=actor)
    with _lock:
        _limiters.pop(provider_key(kind, base_url), None)  # new limits, fresh buckets


def limiter_for(engine: Engine, kind: str, base_url: str | None) -> RateLimiter | None:
    """The process-wide limiter of a provider (None when it has no limits)."""
    if kind == "local":
        return None  # the offline model queues on its own lock
    key = provider_key(kind, base_url)
    with _lock:
        limiter, loaded = _limiters.get(key, (None, -RELOAD_S))
        if limiter is None and time.monotonic() - loaded >= RELOAD_S:
            limits = load_limits(engine, kind, base_url)
            limiter = RateLimiter(limits) if limits.active else None
            _limiters[key] = (limiter, time.monotonic())
        return limiter


class RateLimitStep:
    """The provider's client-side limits around one request: reserve its tokens once, wait (saying how long)
    until they allow it, and feed a 429 that got through back into the buckets. Limits that cannot be read
    never stop a request."""

    def __init__(self, engine: Engine, kind: str, base_url: str | None, tokens: Callable[[], int]):
        self.engine, self.kind, self.base_url = engine, kind, base_url
        self.tokens = tokens  # what the request may consume; counted only when a limit applies
        self._ready_at: float | None = None

    def _limiter(self) -> RateLimiter | None:
        try:
            return limiter_for(self.engine, self.kind, self.base_url)
        except Exception as exc:
            logger.warning("rate limits not readable, request sent without them: %s", scrub_secrets(repr(exc)))
            return None

    def reserve(self) -> float:
        """Reserve this request (once); seconds left before it may be sent."""
        if self._ready_at is None:
            limiter = self._limiter()
            delay = limiter.reserve(self.tokens()) if limiter is not None else 0.0
            self._ready_at = time.monotonic() + delay
        return max(0.0, self._ready_at - time.monotonic())

    def wait(self, on_wait: Callable[[float], None] | None) -> None:
        """Block until the request may be sent; `on_wait(seconds)` first, when there is a wait to show."""
        delay = self.reserve()
        if delay > 0 and on_wait is not None:
            on_wait(delay)
        while (delay := self.reserve()) > 0:
            time.sleep(min(delay, 0.25))

    def rate_limited(self, retry_after: str | None) -> None:
        """A 429 got through the SDK's retries: drain the buckets (for Retry-After seconds, when given)."""
        limiter = self._limiter()
        if limiter is None:
            return
        try:
            seconds = float(retry_after or "")
        except ValueError:
            seconds = None
        limiter.rate_limited(seconds)

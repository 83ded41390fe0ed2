"""Client-side rate limits: requests per minute and tokens per minute per provider. A request over the limit waits
(the page shows a countdown) instead of failing; a 429 from the server holds the next requests back too. Limits live
in the database (Settings).

Two implementations behind one interface (`reserve`, `settle`, `rate_limited`):
- `RateLimiter`: token buckets in this process's memory, shared by its sessions: one node (the default on SQLite).
- `SharedRateLimiter`: a sliding window of reservations in the database (`rate_limit_events`), taken in a short
  transaction under a lock the database holds, so every process on it together stays within the limits: the
  default on PostgreSQL, where several replicas share one database. PROMPTLAB_SHARED_RATE_LIMITS=1 chooses it on
  SQLite too (several processes on one file), =0 keeps the in-process buckets anywhere.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.errors import scrub_secrets
from core.calls.log import STALE_S
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

    def share(self, processes: int) -> Limits:
        """One of `processes` equal parts (at least one request and one token each: 0 would mean unlimited)."""
        return Limits(max(1, self.rpm // processes) if self.rpm else 0,
                      max(1, self.tpm // processes) if self.tpm else 0)


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

    def reserve(self, tokens: int, ref: str | None = None) -> float:
        """Reserve one request of `tokens` tokens; returns the seconds to wait before sending it."""
        with self._lock:
            waits = [0.0]
            if self.requests:
                waits.append(self.requests.reserve(1))
            if self.tokens:
                waits.append(self.tokens.reserve(tokens))
            return max(waits)

    def settle(self, ref: str | None, reserved: int, used: int) -> None:
        """The request is done and used `used` tokens of the `reserved`: give back what it did not use."""
        with self._lock:
            if self.tokens and used < reserved:
                self.tokens._refill()
                self.tokens.level = min(self.tokens.capacity, self.tokens.level + min(reserved, self.tokens.capacity)
                                        - used)

    def rate_limited(self, retry_after_s: float | None) -> None:
        """A 429 got through the SDK's retries: hold everyone back for Retry-After (or a minute)."""
        with self._lock:
            for bucket in (self.requests, self.tokens):
                if bucket:
                    bucket.drain(retry_after_s or 60.0)


MARGIN_S = 1.0
# What a reservation's transaction raises when the database does not answer (stopped, restarting, a connection cut;
# SQLite's raw cursor raises its own errors, not SQLAlchemy's).
DATABASE_AWAY = (sa.exc.DBAPIError, sqlite3.Error)


@dataclass
class _Held:
    """A reservation this process made, on its own clock (`time.monotonic()`), kept for a window: what it counts
    while the database is away, and what it writes into the shared window once it is back."""

    at: float
    requests: float
    tokens: float
    ref: str | None
    shared: bool  # in the database's window (False: made while the database was away)


def window_s() -> float:
    """The length of the limits' window: a minute (RPM / TPM). Only tests and benchmarks shorten it
    (PROMPTLAB_RATE_WINDOW_S), to watch several windows pass in real time."""
    return float(os.environ.get("PROMPTLAB_RATE_WINDOW_S") or 60.0)


class SharedRateLimiter:
    """The limits of one provider, shared by every process on the database: each request reserves its place in a
    sliding window (`rate_limit_events`: when it may be sent, one request, its tokens). A request is scheduled at
    the first moment when the window that ends there holds room for it, so no window of that length ever holds more
    than the limits — a guarantee a token bucket (which allows a full burst plus a minute's refill) does not give.
    The reservation is read and written in one short transaction under the database's lock (an advisory lock on
    PostgreSQL, an immediate transaction on SQLite); the time is the database's, so hosts need not agree on it.

    While the database is away (a restart, a failover) requests neither wait for it nor go unlimited: this process
    schedules them against the window as it last read it plus its own reservations since, and keeps its own to its
    share of the limits (the limits over the processes that were beating in the database, `process_heartbeats`),
    so the replicas together stay within the limits without asking each other. When the database answers again,
    the reservations made meanwhile are written into the shared window first, for every process to count."""

    def __init__(self, engine: Engine, bucket: str, limits: Limits, window: float | None = None):
        self.engine, self.bucket, self.limits = engine, bucket, limits
        self.window = window or window_s()
        # A request reaches the server later than its reserved time (the call-log row, a thread, the connection):
        # measured up to ~0.5 s on a busy 2-core machine. It is scheduled this much after the window allows it, so
        # the server's own window never sees one too many (on a minute's window: 1.7 % below the limit).
        self.margin = MARGIN_S
        # What this process knows for when the database is away (guarded by _lock): its own reservations of the
        # last window, the window as last read (every process's; database time, read at `_seen_read`), and how
        # many processes were alive then.
        self._lock = threading.Lock()
        self._mine: list[_Held] = []
        self._seen: list[tuple[float, float, float]] = []
        self._seen_read = float("-inf")
        self.processes = 1
        self._away = False  # the last reservation found the database away
        self._careful_until = float("-inf")

    def _transaction(self, work: Callable[[Any, float], float]) -> float:
        """Run `work(execute, now)` under the bucket's lock; returns its result (seconds after `now`) less the
        seconds that have passed since `now` was read."""
        if self.engine.dialect.name == "sqlite":
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("BEGIN IMMEDIATE")  # the write lock first: no two processes read the same window
                try:
                    def execute(sql: str, params: dict[str, Any]) -> list[Any]:
                        cur.execute(sql, params)
                        return list(cur.fetchall())
                    now, read_at = time.time(), time.monotonic()
                    result = work(execute, now)
                    raw.commit()
                    return result - (time.monotonic() - read_at)  # the commit's time is already waited
                except BaseException:
                    raw.rollback()
                    raise
            finally:
                raw.close()
        with self.engine.begin() as conn:
            key = zlib.crc32(f"rate_limit:{self.bucket}".encode())  # the lock dies with the transaction
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            now = float(conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
            read_at = time.monotonic()

            def run(sql: str, params: dict[str, Any]) -> list[Any]:
                result = conn.execute(sa.text(sql), params)
                return list(result.all()) if result.returns_rows else []
            result = work(run, now)
        # Seconds from now: the time since the clock was read (the insert, the commit) is already waited.
        return result - (time.monotonic() - read_at)

    def reserve(self, tokens: int, ref: str | None = None) -> float:
        """Reserve one request of `tokens` tokens; returns the seconds to wait before sending it."""
        tpm = self.limits.tpm
        tokens = min(tokens, tpm) if tpm else tokens  # one request larger than a window's budget waits one window
        held = self._claim_held()
        with self._lock:
            mine = sorted((h.at, h.requests, h.tokens) for h in self._mine)
        # Just back from an outage, the others may not have written theirs yet: keep to the share a window longer.
        careful = self._away or time.monotonic() < self._careful_until
        read: dict[str, Any] = {}

        def work(execute: Callable[[str, dict[str, Any]], list[Any]], now: float) -> float:
            offset = time.monotonic() - now  # database time + offset = this process's clock
            horizon = now - self.window - self.margin
            for h in held:  # reserved while the database was away: into the shared window, for everyone to count
                if h.at - offset > horizon:
                    execute("INSERT INTO rate_limit_events (bucket, ref, at, requests, tokens) "
                            "VALUES (:b, :r, :at, :n, :t)",
                            {"b": self.bucket, "r": h.ref, "at": h.at - offset, "n": h.requests, "t": h.tokens})
            execute("DELETE FROM rate_limit_events WHERE bucket = :b AND at <= :old",
                    {"b": self.bucket, "old": horizon})
            rows = execute("SELECT at, requests, tokens FROM rate_limit_events WHERE bucket = :b ORDER BY at",
                           {"b": self.bucket})
            events = [(float(e[0]), float(e[1]), float(e[2])) for e in rows]
            fresh = datetime.fromtimestamp(now - STALE_S, timezone.utc).isoformat(timespec="milliseconds")
            alive = execute("SELECT count(*) FROM process_heartbeats WHERE seen_at > :fresh", {"fresh": fresh})
            processes = max(1, int(alive[0][0] or 0))
            if careful:
                at = self._first_fit(now, tokens, events, [(a - offset, n, t) for a, n, t in mine], processes)
            else:
                at = self.schedule(now, events, tokens)
            execute("INSERT INTO rate_limit_events (bucket, ref, at, requests, tokens) VALUES (:b, :r, :at, 1, :t)",
                    {"b": self.bucket, "r": ref, "at": at, "t": tokens})
            read.update(now=now, offset=offset, events=events + [(at, 1, tokens)], at=at, processes=processes)
            return at - now
        try:
            delay = max(0.0, self._transaction(work))
        except BaseException as exc:
            self._unclaim(held)  # not written: still this process's to write
            if not isinstance(exc, DATABASE_AWAY):
                raise
            if not self._away:
                logger.warning("rate limits' database not reachable, this process keeps to its share of %s: %s",
                               self.bucket, scrub_secrets(repr(exc)))
            self._away = True
            return self._reserve_here(tokens, ref)
        with self._lock:
            if self._away:
                self._away, self._careful_until = False, time.monotonic() + self.window + self.margin
            offset = read["offset"]
            if read["now"] >= self._seen_read:  # (another thread may have read a newer window meanwhile)
                self._seen = [(at + offset, n, t) for at, n, t in read["events"]]
                self._seen_read, self.processes = read["now"], read["processes"]
            self._mine.append(_Held(read["at"] + offset, 1, tokens, ref, shared=True))
        return delay

    def _claim_held(self) -> list[_Held]:
        """The reservations made while the database was away, claimed by this transaction (two threads must not
        write the same one twice); forgotten once older than a window."""
        with self._lock:
            horizon = time.monotonic() - self.window - self.margin
            self._mine = [h for h in self._mine if h.at > horizon]
            held = [h for h in self._mine if not h.shared]
            for h in held:
                h.shared = True
            return held

    def _unclaim(self, held: list[_Held]) -> None:
        with self._lock:
            for h in held:
                h.shared = False

    def _reserve_here(self, tokens: int, ref: str | None) -> float:
        """The database is away: scheduled against the window as this process knows it (as last read, plus its own
        reservations since) and its own reservations under its share."""
        with self._lock:
            now = time.monotonic()
            horizon = now - self.window - self.margin
            mine = sorted((h.at, h.requests, h.tokens) for h in self._mine if h.at > horizon)
            known = sorted([e for e in self._seen if e[0] > horizon]
                           + [(h.at, h.requests, h.tokens) for h in self._mine if not h.shared and h.at > horizon])
            at = self._first_fit(now, tokens, known, mine, self.processes)
            self._mine.append(_Held(at, 1, tokens, ref, shared=False))
        return at - now

    def _first_fit(self, now: float, tokens: float, known: list[tuple[float, float, float]],
                   mine: list[tuple[float, float, float]], processes: int) -> float:
        """The first time, from `now`, when the window holds room for the request both among `known` (every
        process's reservations) under the limits and among `mine` (this process's) under its share of them."""
        share = self.limits.share(processes)
        own = min(tokens, share.tpm) if share.tpm else tokens
        at = now
        while True:  # each step moves on to a later reservation's exit from the window: it ends
            fits = max(self.schedule(at, known, tokens), self.schedule(at, mine, own, share))
            if fits <= at:
                return at
            at = fits

    def schedule(self, now: float, events: list[tuple[float, float, float]], tokens: float,
                 limits: Limits | None = None) -> float:
        """The first time, not before `now` nor before the last reservation (first come, first served), when the
        window ending there holds room for one more request of `tokens` tokens under `limits` (the bucket's unless
        given). `events`: (at, requests, tokens), sorted by time, none older than one window before `now`."""
        limits = limits or self.limits
        start = max([now] + [e[0] for e in events])
        inside = [e for e in events if e[0] > start - self.window - self.margin]  # each holds W + margin
        requests, used = sum(e[1] for e in inside), sum(e[2] for e in inside)
        for at, n, t in inside:  # oldest first: wait until enough have left the window
            fits_requests = not limits.rpm or requests + 1 <= limits.rpm
            fits_tokens = not limits.tpm or used + tokens <= limits.tpm
            if fits_requests and fits_tokens:
                break
            requests, used = requests - n, used - t
            start = max(start, at + self.window + self.margin)
        return start

    def settle(self, ref: str | None, reserved: int, used: int) -> None:
        """The request is done: its reservation counts the tokens it really used (less, or more, than reserved)."""
        if ref is None or not self.limits.tpm:
            return
        with self._lock:
            held = next((h for h in self._mine if h.ref == ref), None)
            if held is not None:
                held.tokens = min(used, self.limits.tpm)
                if not held.shared:
                    return  # written with its real use once the database is back
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE rate_limit_events SET tokens = :t WHERE bucket = :b AND ref = :r"),
                         {"t": min(used, self.limits.tpm), "b": self.bucket, "r": ref})

    def rate_limited(self, retry_after_s: float | None) -> None:
        """A 429 got through the SDK's retries: fill the window until Retry-After (or a minute) from now, for every
        process."""
        hold = retry_after_s or 60.0

        def work(execute: Callable[[str, dict[str, Any]], list[Any]], now: float) -> float:
            # A full window's worth that leaves it exactly `hold` seconds from now (the server said so: no margin).
            execute("INSERT INTO rate_limit_events (bucket, ref, at, requests, tokens) VALUES (:b, NULL, :at, :n, :t)",
                    {"b": self.bucket, "at": now + hold - self.window - self.margin,
                     "n": self.limits.rpm or 0, "t": self.limits.tpm or 0})
            return 0.0
        try:
            self._transaction(work)
        except DATABASE_AWAY:  # the database is away: this process holds back, and tells the others later
            with self._lock:
                self._mine.append(_Held(time.monotonic() + hold - self.window - self.margin,
                                        self.limits.rpm or 0, self.limits.tpm or 0, None, shared=False))

    def clear(self) -> None:
        """Forget every reservation (new limits: fresh windows)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM rate_limit_events WHERE bucket = :b"), {"b": self.bucket})


def shared_limits(engine: Engine) -> bool:
    """Whether the limits are kept in the database (shared by every process on it) rather than in this process:
    PROMPTLAB_SHARED_RATE_LIMITS=1 / 0 decides; unset, PostgreSQL shares them (replicas share one PostgreSQL) and
    SQLite keeps them in memory (one node; no write per request on the file)."""
    chosen = os.environ.get("PROMPTLAB_SHARED_RATE_LIMITS", "").strip()
    if chosen in ("0", "1"):
        return chosen == "1"
    return engine.dialect.name == "postgresql"


Limiter = RateLimiter | SharedRateLimiter
_limiters: dict[str, tuple[Limiter | None, float]] = {}
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
    with engine.begin() as conn:  # ... for every process on this database too
        conn.execute(sa.text("DELETE FROM rate_limit_events WHERE bucket = :b"), {"b": provider_key(kind, base_url)})


def limiter_for(engine: Engine, kind: str, base_url: str | None) -> Limiter | None:
    """The limiter of a provider (None when it has no limits): shared through the database or this process's own
    (`shared_limits`)."""
    if kind == "local":
        return None  # the offline model queues on its own lock
    key = provider_key(kind, base_url)
    with _lock:
        limiter, loaded = _limiters.get(key, (None, -RELOAD_S))
        # A shared limiter's window is in the database: it re-reads the limits too, so a change made on another
        # replica applies here within RELOAD_S.
        stale = limiter is None or isinstance(limiter, SharedRateLimiter)
        if stale and time.monotonic() - loaded >= RELOAD_S:
            try:
                limits = load_limits(engine, kind, base_url)
            except DATABASE_AWAY:
                if key not in _limiters:
                    raise  # never read: the caller sends without limits, and says so
                _limiters[key] = (limiter, time.monotonic())  # the database is away: what was read last still holds
                return limiter
            if not limits.active:
                limiter = None
            elif isinstance(limiter, SharedRateLimiter) and limiter.limits == limits:
                pass  # the same limits: the same limiter, which keeps what it knows for when the database is away
            elif shared_limits(engine):
                limiter = SharedRateLimiter(engine, key, limits)
            else:
                limiter = RateLimiter(limits)
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
        self._reserved: tuple[Limiter, str, int] | None = None  # what to settle once the request is done

    def _limiter(self) -> Limiter | None:
        try:
            return limiter_for(self.engine, self.kind, self.base_url)
        except Exception as exc:
            logger.warning("rate limits not readable, request sent without them: %s", scrub_secrets(repr(exc)))
            return None

    def reserve(self) -> float:
        """Reserve this request (once); seconds left before it may be sent."""
        if self._ready_at is None:
            limiter, delay = self._limiter(), 0.0
            if limiter is not None:
                ref, tokens = uuid.uuid4().hex, self.tokens()
                try:
                    delay = limiter.reserve(tokens, ref)
                    self._reserved = (limiter, ref, tokens)
                except Exception as exc:  # a busy database must not stop the request
                    logger.warning("rate limit not reserved, request sent: %s", scrub_secrets(repr(exc)))
            self._ready_at = time.monotonic() + delay
        return max(0.0, self._ready_at - time.monotonic())

    def wait(self, on_wait: Callable[[float], None] | None) -> None:
        """Block until the request may be sent; `on_wait(seconds)` first, when there is a wait to show."""
        delay = self.reserve()
        if delay > 0 and on_wait is not None:
            on_wait(delay)
        while (delay := self.reserve()) > 0:
            time.sleep(min(delay, 0.25))

    def settle(self, used_tokens: int | None) -> None:
        """The request is done: count the tokens it really used instead of what was reserved (when known)."""
        if self._reserved is None or used_tokens is None:
            return
        limiter, ref, reserved = self._reserved
        self._reserved = None
        try:
            limiter.settle(ref, reserved, used_tokens)
        except Exception as exc:
            logger.warning("rate limit not settled: %s", scrub_secrets(repr(exc)))

    def rate_limited(self, retry_after: str | None) -> None:
        """A 429 got through the SDK's retries: drain the buckets (for Retry-After seconds, when given)."""
        limiter = self._limiter()
        if limiter is None:
            return
        try:
            seconds = float(retry_after or "")
        except ValueError:
            seconds = None
        try:
            limiter.rate_limited(seconds)
        except Exception as exc:
            logger.warning("429 not recorded in the rate limits: %s", scrub_secrets(repr(exc)))

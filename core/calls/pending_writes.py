"""Writes that failed (a database locked past its busy timeout, restarting or unreachable, a full disk) and are retried
in the background, so a reply that reached the page is not lost from the log or the conversation list: back-off, one
daemon thread per process, and a count the Settings page shows.

A database that is away (OperationalError: refused connections, a restart, a lock, a full disk) is waited for as long
as the process lives, at most MAX_DELAY_S between tries: an outage longer than the attempts' budget must not cost the
calls made meanwhile. A write the database refuses for what it is (a constraint, bad data, a bug) is given up after
ATTEMPTS. At most MAX_WAITING writes wait; beyond that the oldest is given up (logged), so memory stays bounded."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from core.base.errors import scrub_secrets

logger = logging.getLogger(__name__)
ATTEMPTS = 6          # then a refused write is given up (logged)
FIRST_DELAY_S = 2.0   # doubled after each failure: 2, 4, 8, 16, 32 s …
MAX_DELAY_S = 60.0    # … up to this, for a database that is away
MAX_WAITING = 100_000


def database_away(exc: BaseException) -> bool:
    """The database could not be reached or could not write now (as opposed to refusing this write)."""
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError))


@dataclass
class _Write:
    what: str
    write: Callable[[], None]
    attempts: int = 0
    due: float = 0.0


class PendingWrites:
    """The process's failed writes, retried until they succeed or their attempts run out."""

    def __init__(self, attempts: int = ATTEMPTS, first_delay_s: float = FIRST_DELAY_S, clock=time.monotonic):
        self.attempts, self.first_delay_s, self.clock = attempts, first_delay_s, clock
        self._items: list[_Write] = []
        self._in_flight = 0  # claimed by a retry_due() that is writing them now
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.given_up = 0

    def add(self, what: str, write: Callable[[], None]) -> None:
        """Keep a write that just failed; it is retried after FIRST_DELAY_S, then with back-off."""
        with self._lock:
            if len(self._items) >= MAX_WAITING:
                oldest = self._items.pop(0)
                logger.error("gave up writing %s: %d writes already wait for the database", oldest.what, MAX_WAITING)
                self.given_up += 1
            self._items.append(_Write(what, write, 1, self.clock() + self.first_delay_s))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="pending-writes", daemon=True)
                self._thread.start()
        self._wake.set()

    def count(self) -> int:
        with self._lock:
            return len(self._items) + self._in_flight

    def retry_due(self) -> int:
        """Try every write that is due now; returns how many succeeded.

        Due writes are claimed under the lock, so the background thread and a caller never write the same row twice.
        """
        with self._lock:
            now = self.clock()
            due = [w for w in self._items if w.due <= now]
            self._items = [w for w in self._items if w.due > now]
            self._in_flight += len(due)
        done = 0
        for item in due:
            try:
                item.write()
            except Exception as exc:  # still away: later; refused: later, or never after the last attempt
                item.attempts += 1
                item.due = self.clock() + min(self.first_delay_s * 2 ** (item.attempts - 1), MAX_DELAY_S)
                with self._lock:
                    self._in_flight -= 1
                    if item.attempts >= self.attempts and not database_away(exc):
                        logger.error("gave up writing %s after %d attempts: %s", item.what, item.attempts,
                                     scrub_secrets(repr(exc)))
                        self.given_up += 1
                    else:
                        self._items.append(item)
                continue
            with self._lock:
                self._in_flight -= 1
            done += 1
        return done

    def _loop(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            self.retry_due()
            if not self.count():
                with self._lock:
                    if not self._items and not self._in_flight:
                        self._thread = None
                        return


PENDING = PendingWrites()

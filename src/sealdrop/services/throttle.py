"""Throttling that needs no IP address (invariant 10): logins, requests per Tor circuit and per
session, and uploads per source.

Every onion-service request arrives from 127.0.0.1, so limits cannot be per address. Instead:

- a global cap on logins in flight (waiting for or running the KDF): beyond it a login is refused
  at once with 429 rather than queued, so a flood cannot pile up threads or memory;
- a global budget of logins per minute (a token bucket), which bounds how many codename guesses
  the whole world can make;
- a failure counter per visitor (keyed by the hash of the pre-session cookie), which stops one
  browser from guessing repeatedly; an attacker who drops cookies still meets the global limits;
- a request budget per Tor circuit (KeyedRateLimit), which tor tells us through the PROXY line
  of each onion connection (sealdrop.web.onion), and one per source session;
- an upload quota per source over 24 hours (``upload_quota.UploadQuota``), so one codename
  cannot fill the disk.

On SQLite the state is in memory: one server process holds the instance (the instance lock),
so it is complete. Each table is bounded in size. On PostgreSQL, where several workers may serve
one instance, the budgets of logins per minute are rows of the database that every worker takes
from (``shared``, storage/shared_limits.py); the other limits stay in each worker's memory, by
the rules docs/design.md gives ("Limits with several workers").
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from sealdrop.errors import TooManyRequests
from sealdrop.services.clock import Clock
from sealdrop.storage.shared_limits import SharedLoginBudget

MAX_TRACKED_VISITORS = 10_000
FAILURE_WINDOW_SECONDS = 600


class LoginThrottle:
    def __init__(
        self,
        clock: Clock,
        max_in_flight: int,
        per_minute: int,
        failures_per_visitor: int,
        shared: SharedLoginBudget | None = None,
    ) -> None:
        """``shared``: the instance's budget per minute in the database (several workers),
        instead of this process's own bucket."""
        self._clock = clock
        self._shared = shared
        self._max_in_flight = max_in_flight
        self._rate = per_minute / 60.0
        self._capacity = float(per_minute)
        self._tokens = float(per_minute)
        self._refilled_at = clock.now()
        self._failures_allowed = failures_per_visitor
        self._in_flight = 0
        self._failures: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def attempt(self, visitor: bytes | None) -> Iterator[None]:
        """Hold a login slot for the duration of the block, or raise TooManyRequests."""
        with self._lock:
            now = self._clock.now()
            if visitor is not None and self._failures_for(visitor, now) >= self._failures_allowed:
                raise TooManyRequests(FAILURE_WINDOW_SECONDS)
            if self._in_flight >= self._max_in_flight:
                raise TooManyRequests(5)
            if self._shared is None:
                self._refill(now)
                if self._tokens < 1.0:
                    raise TooManyRequests(max(1, int((1.0 - self._tokens) / self._rate) + 1))
                self._tokens -= 1.0
            self._in_flight += 1
        if self._shared is not None:
            # Outside the lock: a database round trip must not hold up this process's other
            # logins. The slot is held meanwhile, so the cap in flight still counts it.
            try:
                taken = self._shared.take()
            except BaseException:
                self._leave()
                raise
            if not taken.ok:
                self._leave()
                raise TooManyRequests(max(1, int(taken.retry_after) + 1))
        try:
            yield
        finally:
            self._leave()

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record_failure(self, visitor: bytes | None) -> None:
        if visitor is None:
            return
        with self._lock:
            now = self._clock.now()
            count = self._failures_for(visitor, now)
            self._failures[visitor] = (count + 1, now if count == 0 else self._failures[visitor][1])
            self._failures.move_to_end(visitor)
            while len(self._failures) > MAX_TRACKED_VISITORS:
                self._failures.popitem(last=False)

    def record_success(self, visitor: bytes | None) -> None:
        if visitor is not None:
            with self._lock:
                self._failures.pop(visitor, None)

    def _failures_for(self, visitor: bytes, now: float) -> int:
        entry = self._failures.get(visitor)
        if entry is None:
            return 0
        count, since = entry
        if now - since > FAILURE_WINDOW_SECONDS:
            del self._failures[visitor]
            return 0
        return count

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._refilled_at = now


MAX_TRACKED_KEYS = 10_000


class KeyedRateLimit:
    """A token bucket per key: per Tor circuit, and per source session (invariant 10).

    Per circuit: one circuit that floods the source onion is refused with 429 while every other
    circuit is served.

    Behind an onion service every visitor is 127.0.0.1, but tor tells us the circuit each
    connection came over; one Tor Browser uses one circuit per site for ten minutes or more, so a
    circuit is the closest thing to "one visitor" that we can know without identifying anyone.

    The table is an LRU bounded at ``max_tracked`` circuits, so a flood of new circuits costs us
    a fixed amount of memory. Evicting a circuit forgets at most a partly spent bucket: it starts
    again from a full burst, which is what a new circuit gets anyway (and a circuit costs the
    attacker far more to build than this gives back). Only the circuit id is kept, in memory,
    never written anywhere; a keyed hash of it would add nothing, since the key would sit in the
    same memory and 2**32 ids are quickly enumerated.

    Per session: the key is the hash of the session id the server already keeps; a session
    that floods (say, a script replaying its cookie over many circuits) is slowed the same way.
    """

    def __init__(
        self,
        clock: Clock,
        per_minute: int,
        burst: int,
        max_tracked: int = MAX_TRACKED_KEYS,
    ) -> None:
        if per_minute < 1 or burst < 1 or max_tracked < 1:
            raise ValueError("per_minute, burst and max_tracked must be positive")
        self._clock = clock
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._max_tracked = max_tracked
        # key -> (tokens left, when they were counted)
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def charge(self, circuit: Hashable) -> None:
        """Spend one request of this key's budget, or raise TooManyRequests(retry_after)."""
        with self._lock:
            now = self._clock.now()
            entry = self._buckets.pop(circuit, None)
            if entry is None:
                tokens = self._burst
            else:
                left, counted_at = entry
                # max(): a wall clock stepped backwards must not drain anyone's bucket.
                tokens = min(self._burst, left + max(0.0, now - counted_at) * self._rate)
            refused = tokens < 1.0
            if not refused:
                tokens -= 1.0
            # Re-inserted at the most recent end: a circuit that keeps knocking, refused or not,
            # stays tracked and so stays limited.
            self._buckets[circuit] = (tokens, now)
            while len(self._buckets) > self._max_tracked:
                self._buckets.popitem(last=False)
            if refused:
                raise TooManyRequests(max(1, math.ceil((1.0 - tokens) / self._rate)))

    def tracked(self) -> int:
        """How many circuits the table holds now (for tests and monitoring)."""
        with self._lock:
            return len(self._buckets)

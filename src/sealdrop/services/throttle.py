"""Login throttling that needs no IP address (invariant 10).

Every onion-service request arrives from 127.0.0.1, so limits cannot be per address. Instead:

- a global cap on logins in flight (waiting for or running the KDF): beyond it a login is refused
  at once with 429 rather than queued, so a flood cannot pile up threads or memory;
- a global budget of logins per minute (a token bucket), which bounds how many codename guesses
  the whole world can make;
- a failure counter per visitor (keyed by the hash of the pre-session cookie), which stops one
  browser from guessing repeatedly; an attacker who drops cookies still meets the global limits.

The state is in memory: one server process holds the instance (the instance lock), so it is
complete. It is bounded in size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from sealdrop.errors import TooManyRequests
from sealdrop.services.clock import Clock

MAX_TRACKED_VISITORS = 10_000
FAILURE_WINDOW_SECONDS = 600


class LoginThrottle:
    def __init__(
        self, clock: Clock, max_in_flight: int, per_minute: int, failures_per_visitor: int
    ) -> None:
        self._clock = clock
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
            self._refill(now)
            if self._tokens < 1.0:
                raise TooManyRequests(max(1, int((1.0 - self._tokens) / self._rate) + 1))
            self._tokens -= 1.0
            self._in_flight += 1
        try:
            yield
        finally:
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

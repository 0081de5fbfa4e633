"""A server's background rounds: a daemon thread that calls one function every ``interval``
seconds until stopped (housekeeping, services/maintenance.py; readiness, services/readiness.py).

A stop ends the wait at once; a round in progress is given up to 10 seconds to end (its own
timeouts, e.g. the database driver's, bound it), and the thread, a daemon, never holds the
process's exit beyond that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Periodic"]

_JOIN_SECONDS = 10


class Periodic:
    def __init__(
        self, each: Callable[[], object], interval: float, name: str, *, at_once: bool
    ) -> None:
        """``each`` every ``interval`` seconds, in a thread called ``name``; ``at_once``: the
        first round as the thread starts (else one interval later)."""
        self._each = each
        self._interval = interval
        self._at_once = at_once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=_JOIN_SECONDS)

    def _loop(self) -> None:
        if self._at_once:
            self._each()
        while not self._stop.wait(self._interval):
            self._each()

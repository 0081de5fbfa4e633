"""The source interface's log of refused requests: the first of each kind at once, then a count.

A line per refused request (a wrong form token, a login over the limits, an upload too large)
stamped each refusal to the millisecond, wherever the log is kept: a timeline that an adversary
who seizes the logs can lay beside what they saw on the network. During a login flood it was also
~100 lines a second and ~8% of the CPU that page serving had. Now the first refusal of a kind
opens a window of ``window`` seconds and is logged at once (an operator watching sees a flood or
a fault begin); the refusals of that kind within the window are counted, and when it closes one
line says how many there were:

    INFO sealdrop.web: request refused: TooManyRequests
    INFO sealdrop.web: request refused: TooManyRequests, 1,234 more within 60 s

A window closes on a timer in the event loop, or at the next refusal of its kind if the timer did
not run (no loop left: tests, shutdown), and at ``flush()``, which ``serve`` calls when it stops.
Refusals for storage faults (a full disk, the database down) are not counted here: the operator
must see each (``web/app.py`` logs them as warnings). Used from one event loop's thread only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RefusalLog"]


@dataclass
class _Window:
    opened: float
    more: int = 0


class RefusalLog:
    """Refused requests by kind, for one process's source interface: ``refused(kind)`` for each,
    ``flush()`` when the process stops serving (what is still counted is logged then)."""

    def __init__(
        self,
        log: logging.Logger,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._window = window
        self._clock = clock
        self._open: dict[str, _Window] = {}

    def refused(self, kind: str) -> None:
        """One request refused for ``kind`` (an exception's class name)."""
        now = self._clock()
        window = self._open.get(kind)
        if window is not None and now - window.opened >= self._window:
            self._close(kind)
            window = None
        if window is not None:
            window.more += 1
            return
        self._log.info("request refused: %s", kind)
        window = self._open[kind] = _Window(now)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to time it: the next refusal of its kind or flush() closes it
        loop.call_later(self._window, self._close_window, kind, window)

    def flush(self) -> None:
        """Close every window now (the server stopping)."""
        for kind in list(self._open):
            self._close(kind)

    def _close_window(self, kind: str, window: _Window) -> None:
        # Unless it was closed already (and a later window of the kind has a timer of its own).
        if self._open.get(kind) is window:
            self._close(kind)

    def _close(self, kind: str) -> None:
        window = self._open.pop(kind)
        if window.more:
            self._log.info(
                "request refused: %s, %s more within %g s", kind, f"{window.more:,}", self._window
            )

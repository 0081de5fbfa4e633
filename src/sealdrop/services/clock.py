"""Time, behind a seam so that tests can move it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Literal, Protocol

Granularity = Literal["day", "none"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


def utc_day(clock: Clock) -> dt.date:
    return dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC).date()


def arrival_day(clock: Clock, granularity: Granularity) -> dt.date | None:
    """The arrival value we are allowed to record (invariant 6): the UTC date, or nothing."""
    if granularity == "none":
        return None
    return utc_day(clock)

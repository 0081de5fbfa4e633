"""How much each source may upload in 24 hours (``limits.source_daily_upload_bytes``), so that
one source, or whoever holds one codename, cannot fill the disk (invariant 10).

An upload sets its bytes aside *before* its body is read (``reserve``) and gives back what it did
not use when it ends (``QuotaReservation.settle`` or ``release``). Checking what is left and
counting what was stored only after the upload, as this did first, let a source run several
uploads at once that each saw the whole allowance, and so pass it several times over.

On SQLite, in memory, like the other limits: one process holds the instance (on PostgreSQL,
shared by the workers: ``SharedUploadQuota``). A restart forgets the counts
(an attacker cannot cause one). At most ``max_tracked`` sources are remembered; the least
recently active are forgotten first. Uploads in progress are few (bounded by the upload slots).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque

from sealdrop.errors import UploadQuotaExceeded
from sealdrop.services.clock import Clock
from sealdrop.storage.shared_limits import SharedAllowances

QUOTA_WINDOW_SECONDS = 24 * 3600
MAX_TRACKED_SOURCES = 100_000


class UploadQuota:
    def __init__(
        self, clock: Clock, daily_bytes: int, max_tracked: int = MAX_TRACKED_SOURCES
    ) -> None:
        self._clock = clock
        self._daily = daily_bytes
        self._max_tracked = max_tracked
        # source id -> its uploads of the window, oldest first, and their total: expired ones
        # are dropped from the left, so a check costs the same after 10 uploads or 80,000.
        self._uploads: OrderedDict[str, _Window] = OrderedDict()
        # source id -> bytes set aside by its uploads in progress.
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def daily_bytes(self) -> int:
        return self._daily

    def remaining(self, source: str) -> tuple[int, int]:
        """(bytes this source may still upload now, seconds until that may grow: until its oldest
        upload leaves the window)."""
        with self._lock:
            return self._remaining(source, self._clock.now())

    def reserve(self, source: str, wanted: int) -> QuotaReservation:
        """Set aside up to ``wanted`` bytes for one upload: what is left of the allowance, less
        what the source's other uploads in progress have set aside. UploadQuotaExceeded if
        nothing is left."""
        with self._lock:
            left, wait = self._remaining(source, self._clock.now())
            if left <= 0:
                raise UploadQuotaExceeded(self._daily, wait)
            granted = min(wanted, left)
            self._in_flight[source] = self._in_flight.get(source, 0) + granted
        return QuotaReservation(self, source, granted, wait)

    def record(self, source: str, size: int) -> None:
        """Count ``size`` stored bytes against the source for the next 24 hours."""
        with self._lock:
            self._record(source, size, self._clock.now())

    def forget(self, source: str) -> None:
        """Drop what is counted for a source (deleted by retention): no record of its uploads
        outlives it, even in memory."""
        with self._lock:
            self._uploads.pop(source, None)

    def _settle(self, source: str, granted: int, used: int) -> None:
        with self._lock:
            left = self._in_flight.get(source, 0) - granted
            if left > 0:
                self._in_flight[source] = left
            else:
                self._in_flight.pop(source, None)
            if used:
                self._record(source, used, self._clock.now())

    def _remaining(self, source: str, now: float) -> tuple[int, int]:
        window = self._current(source, now)
        used = window.total if window is not None else 0
        left = max(0, self._daily - used - self._in_flight.get(source, 0))
        if window is None:
            # Only uploads in progress (if any) hold the allowance; once stored, they count for
            # a whole window.
            return left, 0 if left else QUOTA_WINDOW_SECONDS
        return left, max(1, math.ceil(window.entries[0][0] + QUOTA_WINDOW_SECONDS - now))

    def _record(self, source: str, size: int, now: float) -> None:
        window = self._current(source, now) or _Window()
        window.entries.append((now, size))
        window.total += size
        self._uploads[source] = window
        self._uploads.move_to_end(source)
        while len(self._uploads) > self._max_tracked:
            self._uploads.popitem(last=False)

    def _current(self, source: str, now: float) -> _Window | None:
        window = self._uploads.get(source)
        if window is None:
            return None
        entries = window.entries
        while entries and entries[0][0] <= now - QUOTA_WINDOW_SECONDS:
            window.total -= entries.popleft()[1]
        if not entries:
            del self._uploads[source]
            return None
        return window


class QuotaReservation:
    """Bytes set aside for one upload in progress. Exactly one of ``settle`` (the upload was
    stored) or ``release`` (it was not) takes effect; later calls do nothing."""

    def __init__(self, quota: UploadQuota, source: str, granted: int, wait: int) -> None:
        self._quota = quota
        self._source = source
        self.granted = granted
        # Seconds until the allowance grows again, for the refusal of a body beyond ``granted``.
        self.wait = wait
        self._open = True

    def exceeded(self) -> UploadQuotaExceeded:
        return UploadQuotaExceeded(self._quota.daily_bytes, self.wait)

    def settle(self, used: int) -> None:
        """The upload was stored: count ``used`` bytes (at most what was set aside) and give the
        rest back."""
        if self._open:
            self._open = False
            self._quota._settle(self._source, self.granted, min(used, self.granted))

    def release(self) -> None:
        """The upload was refused or broken and stored nothing: give everything back."""
        if self._open:
            self._open = False
            self._quota._settle(self._source, self.granted, 0)


class _Window:
    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()  # (when, bytes), oldest first
        self.total = 0


DAY_SECONDS = 24 * 3600


class SharedUploadQuota(UploadQuota):
    """The same allowance for the workers of a PostgreSQL instance, counted in the database
    (storage/shared_limits.py) per source and UTC day instead of over a sliding 24 hours: a
    count per day stores no time finer than the day an upload was made, which the submissions'
    arrival day already shows, where a sliding window would need each upload's second.

    An upload's bytes are counted when they are set aside (``reserve``), and what it did not use
    is given back when it ends; a worker that dies mid-upload leaves its bytes counted until the
    day is over (the allowance fails closed)."""

    def __init__(self, clock: Clock, daily_bytes: int, allowances: SharedAllowances) -> None:
        super().__init__(clock, daily_bytes)
        self._allowances = allowances

    def remaining(self, source: str) -> tuple[int, int]:
        now = self._clock.now()
        left = max(0, self._daily - self._allowances.used(source, _day(now)))
        return left, 0 if left else _until_tomorrow(now)

    def reserve(self, source: str, wanted: int) -> QuotaReservation:
        now = self._clock.now()
        granted = self._allowances.take(source, _day(now), wanted, self._daily)
        if granted <= 0 and (wanted > 0 or self.remaining(source)[0] <= 0):
            raise UploadQuotaExceeded(self._daily, _until_tomorrow(now))
        return QuotaReservation(self, source, granted, _until_tomorrow(now))

    def record(self, source: str, size: int) -> None:
        self._allowances.take(source, _day(self._clock.now()), size, self._daily)

    def forget(self, source: str) -> None:
        self._allowances.forget(source)

    def purge(self) -> int:
        """Delete the counts of finished days (housekeeping); how many rows."""
        return self._allowances.purge_before(_day(self._clock.now()))

    def _settle(self, source: str, granted: int, used: int) -> None:
        # Counted already when set aside: give back what was not used. (An upload that ran
        # past midnight gives back to a day whose row is gone: nothing changes.)
        self._allowances.give_back(source, _day(self._clock.now()), granted - used)


def _day(now: float) -> int:
    return int(now // DAY_SECONDS)


def _until_tomorrow(now: float) -> int:
    return max(1, math.ceil((_day(now) + 1) * DAY_SECONDS - now))
